//! What publishing reads and writes: the episode with its sources, the user's publishing
//! settings, server-managed upload state on the episode, and per-user OAuth connections (token
//! sets sealed by the caller; this store never sees them in clear).

use async_trait::async_trait;
use gt_types::records::{Episode, Profile, Series, UploadStatus, VideoClip};
use serde_json::Value;
use sqlx::{Postgres, QueryBuilder, Row};

use crate::error::{StoreError, StoreResult};
use crate::pg::PgStore;
use crate::pipeline::typed_record;

/// An OAuth provider a user can connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    YouTube,
    Twitch,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::YouTube => "youtube",
            Self::Twitch => "twitch",
        }
    }
}

/// A user's connection to a provider.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OAuthConnection {
    /// State of the authorization in flight, compared with the callback's `state`.
    pub csrf_token: Option<String>,
    /// Where the front end wants to go after the callback.
    pub redirect_url: Option<String>,
    pub scopes: Vec<String>,
    /// The token set, sealed (AES-256-GCM) by the caller.
    pub sealed_tokens: Option<String>,
    /// The provider refused the refresh token: the user must connect again.
    pub needs_reconnect: bool,
}

/// Server-managed episode fields a publish step sets; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EpisodePatch {
    pub render_uri: Option<String>,
    pub youtube_video_id: Option<String>,
    /// `Some(None)` clears the session.
    pub youtube_upload_url: Option<Option<String>>,
    pub upload_resume_at_byte: Option<i64>,
    pub upload_status: Option<UploadStatus>,
    pub error_message: Option<Option<String>>,
    pub retry_after_seconds: Option<Option<i64>>,
    pub is_published: Option<bool>,
    /// Merged (top-level keys) into `episodes.publish`.
    pub publish: Option<Value>,
    pub add_upload_attempt: bool,
}

#[async_trait]
pub trait PublishStore: Send + Sync {
    async fn get_episode(&self, user_id: &str, episode_id: &str) -> StoreResult<Episode>;
    /// The user's clips with these keys, in the order asked (missing ones are an error).
    async fn clips_by_key(&self, user_id: &str, keys: &[String]) -> StoreResult<Vec<VideoClip>>;
    /// The user's profile, or the defaults when they never saved one.
    async fn profile(&self, user_id: &str) -> StoreResult<Profile>;
    async fn get_series(&self, user_id: &str, series_id: &str) -> StoreResult<Option<Series>>;
    async fn patch_episode(
        &self,
        user_id: &str,
        episode_id: &str,
        patch: &EpisodePatch,
    ) -> StoreResult<()>;

    async fn oauth(
        &self,
        user_id: &str,
        provider: Provider,
    ) -> StoreResult<Option<OAuthConnection>>;
    /// Records an authorization in flight; existing tokens are kept until new ones arrive.
    async fn begin_oauth(
        &self,
        user_id: &str,
        provider: Provider,
        csrf_token: &str,
        redirect_url: &str,
        scopes: &[String],
    ) -> StoreResult<()>;
    /// Ends the authorization in flight if `state` is the one issued to this user: single use,
    /// so a replayed callback finds nothing. Returns where the user wanted to return.
    async fn take_oauth_state(
        &self,
        user_id: &str,
        provider: Provider,
        state: &str,
    ) -> StoreResult<Option<String>>;
    /// Forgets the user's tokens for the provider (disconnect).
    async fn forget_oauth(&self, user_id: &str, provider: Provider) -> StoreResult<()>;
    /// Stores a (re)sealed token set, ends the authorization in flight and clears
    /// `needs_reconnect`.
    async fn save_oauth_tokens(
        &self,
        user_id: &str,
        provider: Provider,
        sealed_tokens: &str,
    ) -> StoreResult<()>;
    /// The provider refused the refresh token: drop the tokens, ask the user to reconnect.
    async fn mark_oauth_reconnect(&self, user_id: &str, provider: Provider) -> StoreResult<()>;
}

#[async_trait]
impl PublishStore for PgStore {
    async fn get_episode(&self, user_id: &str, episode_id: &str) -> StoreResult<Episode> {
        let row = sqlx::query("SELECT to_jsonb(t) FROM episodes t WHERE user_id = $1 AND id = $2")
            .bind(user_id)
            .bind(episode_id)
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!(
                "episode '{episode_id}' not found"
            )));
        };
        typed_record(row.try_get(0)?, "episode", episode_id)
    }

    async fn clips_by_key(&self, user_id: &str, keys: &[String]) -> StoreResult<Vec<VideoClip>> {
        let rows = sqlx::query(
            "SELECT id, to_jsonb(t) FROM video_clips t WHERE user_id = $1 AND id = ANY($2)",
        )
        .bind(user_id)
        .bind(keys)
        .fetch_all(self.pool())
        .await?;
        let mut found = std::collections::HashMap::new();
        for row in rows {
            let id: String = row.try_get(0)?;
            let clip: VideoClip = typed_record(row.try_get(1)?, "clip", &id)?;
            found.insert(id, clip);
        }
        keys.iter()
            .map(|k| {
                found
                    .get(k)
                    .cloned()
                    .ok_or_else(|| StoreError::NotFound(format!("clip '{k}' not found")))
            })
            .collect()
    }

    async fn profile(&self, user_id: &str) -> StoreResult<Profile> {
        let row = sqlx::query("SELECT to_jsonb(t) FROM profiles t WHERE user_id = $1 LIMIT 1")
            .bind(user_id)
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(row) => typed_record(row.try_get(0)?, "profile", user_id),
            None => Ok(Profile::default()),
        }
    }

    async fn get_series(&self, user_id: &str, series_id: &str) -> StoreResult<Option<Series>> {
        let row = sqlx::query("SELECT to_jsonb(t) FROM series t WHERE user_id = $1 AND id = $2")
            .bind(user_id)
            .bind(series_id)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| typed_record(r.try_get(0)?, "series", series_id))
            .transpose()
    }

    async fn patch_episode(
        &self,
        user_id: &str,
        episode_id: &str,
        patch: &EpisodePatch,
    ) -> StoreResult<()> {
        let mut q: QueryBuilder<Postgres> =
            QueryBuilder::new("UPDATE episodes SET updated_at = now()");
        if let Some(v) = &patch.render_uri {
            q.push(", render_uri = ").push_bind(v.clone());
        }
        if let Some(v) = &patch.youtube_video_id {
            q.push(", youtube_video_id = ").push_bind(v.clone());
        }
        if let Some(v) = &patch.youtube_upload_url {
            q.push(", youtube_upload_url = ").push_bind(v.clone());
        }
        if let Some(v) = patch.upload_resume_at_byte {
            q.push(", upload_resume_at_byte = ").push_bind(v);
        }
        if let Some(v) = patch.upload_status {
            let v = serde_json::to_value(v).map_err(anyhow::Error::from)?;
            q.push(", upload_status = ")
                .push_bind(v.as_str().unwrap_or_default().to_string());
        }
        if let Some(v) = &patch.error_message {
            q.push(", error_message = ").push_bind(v.clone());
        }
        if let Some(v) = patch.retry_after_seconds {
            q.push(", retry_after_seconds = ").push_bind(v);
        }
        if let Some(v) = patch.is_published {
            q.push(", is_published = ").push_bind(v);
        }
        if let Some(v) = &patch.publish {
            q.push(", publish = coalesce(publish, '{}'::jsonb) || ")
                .push_bind(sqlx::types::Json(v.clone()));
        }
        if patch.add_upload_attempt {
            q.push(", upload_attempts = coalesce(upload_attempts, 0) + 1");
        }
        q.push(" WHERE user_id = ").push_bind(user_id);
        q.push(" AND id = ").push_bind(episode_id);
        let done = q.build().execute(self.pool()).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "episode '{episode_id}' not found"
            )));
        }
        Ok(())
    }

    async fn oauth(
        &self,
        user_id: &str,
        provider: Provider,
    ) -> StoreResult<Option<OAuthConnection>> {
        let row = sqlx::query(
            "SELECT csrf_token, redirect_url, scopes, sealed_tokens, needs_reconnect
             FROM oauth_connections WHERE user_id = $1 AND provider = $2",
        )
        .bind(user_id)
        .bind(provider.as_str())
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let scopes: sqlx::types::Json<Vec<String>> = row.try_get(2)?;
        Ok(Some(OAuthConnection {
            csrf_token: row.try_get(0)?,
            redirect_url: row.try_get(1)?,
            scopes: scopes.0,
            sealed_tokens: row.try_get(3)?,
            needs_reconnect: row.try_get(4)?,
        }))
    }

    async fn begin_oauth(
        &self,
        user_id: &str,
        provider: Provider,
        csrf_token: &str,
        redirect_url: &str,
        scopes: &[String],
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO oauth_connections (user_id, provider, csrf_token, redirect_url, scopes)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (user_id, provider) DO UPDATE
             SET csrf_token = EXCLUDED.csrf_token, redirect_url = EXCLUDED.redirect_url,
                 scopes = EXCLUDED.scopes, updated_at = now()",
        )
        .bind(user_id)
        .bind(provider.as_str())
        .bind(csrf_token)
        .bind(redirect_url)
        .bind(sqlx::types::Json(scopes))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn take_oauth_state(
        &self,
        user_id: &str,
        provider: Provider,
        state: &str,
    ) -> StoreResult<Option<String>> {
        // The state is 256 random bits: comparing it in SQL leaks nothing usable by timing.
        let back: Option<Option<String>> = sqlx::query_scalar(
            "UPDATE oauth_connections SET csrf_token = NULL, updated_at = now()
             WHERE user_id = $1 AND provider = $2 AND csrf_token = $3
             RETURNING redirect_url",
        )
        .bind(user_id)
        .bind(provider.as_str())
        .bind(state)
        .fetch_optional(self.pool())
        .await?;
        Ok(back.map(|url| url.unwrap_or_else(|| "/".into())))
    }

    async fn forget_oauth(&self, user_id: &str, provider: Provider) -> StoreResult<()> {
        sqlx::query("DELETE FROM oauth_connections WHERE user_id = $1 AND provider = $2")
            .bind(user_id)
            .bind(provider.as_str())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn save_oauth_tokens(
        &self,
        user_id: &str,
        provider: Provider,
        sealed_tokens: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO oauth_connections (user_id, provider, sealed_tokens)
             VALUES ($1, $2, $3)
             ON CONFLICT (user_id, provider) DO UPDATE
             SET sealed_tokens = EXCLUDED.sealed_tokens, csrf_token = NULL,
                 needs_reconnect = false, updated_at = now()",
        )
        .bind(user_id)
        .bind(provider.as_str())
        .bind(sealed_tokens)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn mark_oauth_reconnect(&self, user_id: &str, provider: Provider) -> StoreResult<()> {
        sqlx::query(
            "UPDATE oauth_connections SET sealed_tokens = NULL, needs_reconnect = true,
                 updated_at = now()
             WHERE user_id = $1 AND provider = $2",
        )
        .bind(user_id)
        .bind(provider.as_str())
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
