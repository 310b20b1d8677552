//! Authentication: RS256 JWTs verified against a JWKS (Cognito-compatible). The token shapes
//! and the local signer live in `gt-auth`, shared with the CLI.
//!
//! The front end sends `Authorization: <id_token>` without `Bearer`; other clients send
//! `Bearer <token>`. Both are accepted. Cognito ID tokens carry `aud` = app client id; access
//! tokens carry `client_id` instead; either must match the configured audience.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
pub use gt_auth::{Claims, LocalSigner};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use tokio::sync::RwLock;

use crate::AppState;
use crate::error::ApiError;

/// Where verification keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A JWKS endpoint, e.g. `https://cognito-idp.<region>.amazonaws.com/<pool>/.well-known/jwks.json`.
    Url(String),
    /// A JWKS JSON file.
    File(PathBuf),
    /// Keys known at start-up (local mode).
    Static(JwkSet),
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub issuer: String,
    pub audience: String,
    pub keys: KeySource,
}

impl AuthConfig {
    /// Verification of the tokens `signer` mints (local mode, tests).
    pub fn local(signer: &LocalSigner) -> Self {
        Self {
            issuer: signer.issuer().to_string(),
            audience: signer.audience().to_string(),
            keys: KeySource::Static(signer.jwks()),
        }
    }
}

/// The caller, as proven by a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    pub user_id: String,
    /// When the token expires (seconds since the epoch): long-lived connections end there.
    pub expires_at: u64,
}

/// Refetch keys on an unknown `kid` at most this often (key rotation without a fetch storm).
const REFRESH_INTERVAL: Duration = Duration::from_secs(30);

struct CachedKeys {
    set: JwkSet,
    fetched: Option<Instant>,
}

pub struct Authenticator {
    config: AuthConfig,
    http: reqwest::Client,
    keys: RwLock<CachedKeys>,
}

fn unauthorized(msg: impl Into<String>) -> ApiError {
    ApiError::Unauthorized(msg.into())
}

impl Authenticator {
    /// Loads the keys once so that a misconfiguration fails at start-up, not on first request.
    pub async fn new(config: AuthConfig) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let set = load_keys(&http, &config.keys).await?;
        Ok(Self {
            config,
            http,
            keys: RwLock::new(CachedKeys {
                set,
                fetched: Some(Instant::now()),
            }),
        })
    }

    async fn key_for(&self, kid: Option<&str>) -> Result<Jwk, ApiError> {
        if let Some(k) = find_key(&self.keys.read().await.set, kid) {
            return Ok(k);
        }
        if matches!(self.config.keys, KeySource::Static(_)) {
            return Err(unauthorized("token signed by an unknown key"));
        }
        let mut cache = self.keys.write().await;
        let stale = cache
            .fetched
            .is_none_or(|t| t.elapsed() >= REFRESH_INTERVAL);
        if stale {
            match load_keys(&self.http, &self.config.keys).await {
                Ok(set) => {
                    cache.set = set;
                    cache.fetched = Some(Instant::now());
                }
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), "refreshing JWKS failed");
                    cache.fetched = Some(Instant::now());
                }
            }
        }
        find_key(&cache.set, kid).ok_or_else(|| unauthorized("token signed by an unknown key"))
    }

    /// Verifies a raw `Authorization` header value.
    pub async fn verify_header(&self, header: &str) -> Result<AuthUser, ApiError> {
        let token = header.trim();
        let token = token
            .strip_prefix("Bearer ")
            .or_else(|| token.strip_prefix("bearer "))
            .unwrap_or(token)
            .trim();
        self.verify(token).await
    }

    pub async fn verify(&self, token: &str) -> Result<AuthUser, ApiError> {
        if token.is_empty() {
            return Err(unauthorized("empty token"));
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| unauthorized("malformed token"))?;
        if header.alg != Algorithm::RS256 {
            return Err(unauthorized(format!(
                "unsupported token algorithm {:?} (RS256 required)",
                header.alg
            )));
        }
        let jwk = self.key_for(header.kid.as_deref()).await?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| unauthorized("unusable signing key"))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        // `aud` is checked below: Cognito access tokens carry `client_id` instead.
        validation.validate_aud = false;
        validation.leeway = gt_auth::LEEWAY_S;
        validation.validate_nbf = true;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| {
            unauthorized(match e.kind() {
                ErrorKind::ExpiredSignature => "token expired",
                ErrorKind::InvalidSignature => "invalid token signature",
                ErrorKind::InvalidIssuer => "token issued by an unexpected issuer",
                ErrorKind::ImmatureSignature => "token not valid yet",
                ErrorKind::MissingRequiredClaim(_) => "token lacks a required claim",
                _ => "invalid token",
            })
        })?;
        let claims = data.claims;
        let aud_ok = match &claims.aud {
            Some(serde_json::Value::String(a)) => *a == self.config.audience,
            Some(serde_json::Value::Array(list)) => list
                .iter()
                .any(|a| a.as_str() == Some(self.config.audience.as_str())),
            _ => {
                claims.token_use.as_deref() == Some("access")
                    && claims.client_id.as_deref() == Some(self.config.audience.as_str())
            }
        };
        if !aud_ok {
            return Err(unauthorized("token issued for another audience"));
        }
        if claims.sub.is_empty() {
            return Err(unauthorized("token has an empty subject"));
        }
        if claims.sub.contains('\0') {
            return Err(unauthorized("token subject contains NUL"));
        }
        if let Some(problem) =
            gt_auth::time_claims_problem(&claims, jsonwebtoken::get_current_timestamp())
        {
            return Err(unauthorized(problem));
        }
        Ok(AuthUser {
            user_id: claims.sub,
            expires_at: claims.exp,
        })
    }
}

fn find_key(set: &JwkSet, kid: Option<&str>) -> Option<Jwk> {
    match kid {
        Some(kid) => set.find(kid).cloned(),
        // Tokens without `kid` are only unambiguous when there is a single key.
        None if set.keys.len() == 1 => set.keys.first().cloned(),
        None => None,
    }
}

async fn load_keys(http: &reqwest::Client, source: &KeySource) -> anyhow::Result<JwkSet> {
    match source {
        KeySource::Static(set) => Ok(set.clone()),
        KeySource::File(path) => {
            let text = tokio::fs::read_to_string(path)
                .await
                .with_context(|| format!("reading JWKS file {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("JWKS file {} is not a JWK set", path.display()))
        }
        KeySource::Url(url) => {
            let resp = http
                .get(url)
                .send()
                .await
                .with_context(|| format!("fetching JWKS from {url}"))?;
            let resp = resp
                .error_for_status()
                .with_context(|| format!("fetching JWKS from {url}"))?;
            resp.json()
                .await
                .with_context(|| format!("JWKS at {url} is not a JWK set"))
        }
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("missing Authorization header"))?
            .to_str()
            .map_err(|_| unauthorized("malformed Authorization header"))?;
        state.auth.verify_header(header).await
    }
}
