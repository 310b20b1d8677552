//! `GET /search?q=&stream_id=&limit=`: hybrid search over the caller's transcript windows: the
//! query's embedding against the windows' (pgvector HNSW) fused with full-text search of the
//! words as typed (Postgres `english` text search), so a remembered phrase finds the window that
//! holds it and a paraphrase still finds what was meant. Each hit says which query words it holds
//! and where (`matched_words`, `highlights`), and links to the moment they were said.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use gt_types::episode::SearchHit;
use serde::Serialize;

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::QueryPairs;
use crate::routes::stream::owned_stream;

pub const MAX_QUERY_CHARS: usize = 1000;
pub const MAX_LIMIT: i64 = 100;

pub fn router() -> Router<AppState> {
    Router::new().route("/search", get(search))
}

#[derive(Debug, Serialize)]
pub struct SearchResults {
    pub items: Vec<SearchHit>,
    /// The embedding model the query and the windows were compared with.
    pub model: String,
    /// How the two rankings were fused (reciprocal rank fusion).
    pub fusion: Fusion,
}

/// The fusion's parameters, so a client can tell why a hit ranks where it does.
#[derive(Debug, Serialize)]
pub struct Fusion {
    /// `k` in 1 / (k + rank).
    pub k: i64,
    /// Windows taken from each ranking.
    pub candidates: i64,
    /// The full-text search configuration of the text ranking and the highlights.
    pub text_search_config: &'static str,
}

async fn search(
    State(state): State<AppState>,
    user: AuthUser,
    query: QueryPairs,
) -> ApiResult<Json<SearchResults>> {
    let q = query.one("q")?.unwrap_or("").trim().to_string();
    if q.is_empty() {
        return Err(ApiError::BadRequest(
            "q (the text to search for) is required".into(),
        ));
    }
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::BadRequest(format!(
            "q is longer than {MAX_QUERY_CHARS} characters"
        )));
    }
    let limit = match query.one("limit")? {
        None => 10,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest(format!("limit must be an integer from 1 to {MAX_LIMIT}"))
            })?,
    };
    let stream_id = query.one("stream_id")?.filter(|s| !s.is_empty());
    if let Some(id) = stream_id {
        owned_stream(&state, &user, id).await?;
    }
    let model = state.embedder.model().to_string();
    let vector = state
        .embedder
        .embed_one(&q)
        .await
        .map_err(|e| ApiError::Unavailable(format!("embedding the query: {e:#}")))?;
    let items = state
        .insight
        .search_windows(&user.user_id, stream_id, &model, &q, &vector, limit)
        .await?;
    if items.is_empty() {
        // Windows embedded with another model cannot be compared with this query: say so.
        let models = state.insight.window_models(&user.user_id).await?;
        if !models.is_empty() && !models.contains(&model) {
            return Err(ApiError::Conflict(format!(
                "your transcripts were embedded with {} but the API embeds queries with {model}; \
                 set GT_EMBEDDING_MODEL to match or re-ingest",
                models.join(", ")
            )));
        }
    }
    let fusion = Fusion {
        k: gt_store::insight::RRF_K,
        candidates: gt_store::insight::candidate_depth(limit),
        text_search_config: gt_store::insight::TEXT_SEARCH_CONFIG,
    };
    Ok(Json(SearchResults {
        items,
        model,
        fusion,
    }))
}
