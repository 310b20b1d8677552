//! Authentication: RS256 JWTs verified against a JWKS (Cognito-compatible), and the local
//! signer that stands in for Cognito when the stack runs on one machine.
//!
//! The front end sends `Authorization: <id_token>` without `Bearer`; other clients send
//! `Bearer <token>`. Both are accepted. Cognito ID tokens carry `aud` = app client id; access
//! tokens carry `client_id` instead; either must match the configured audience.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
    RSAKeyParameters, RSAKeyType,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde::{Deserialize, Serialize};
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

/// The caller, as proven by a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    pub user_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// A string or an array of strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_use: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
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
        validation.leeway = 30;
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
        Ok(AuthUser {
            user_id: claims.sub,
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

/// Signs tokens in local mode. The RSA key is generated once and kept in a file (mode 0600) so
/// tokens survive restarts; its public half is the JWKS the API verifies against.
#[derive(Clone)]
pub struct LocalSigner {
    kid: String,
    issuer: String,
    audience: String,
    encoding: Arc<EncodingKey>,
    jwk: Jwk,
}

impl LocalSigner {
    pub const DEFAULT_ISSUER: &'static str = "glowing-telegram-local";
    pub const DEFAULT_AUDIENCE: &'static str = "glowing-telegram";

    /// Loads the key at `path`, generating it first if the file does not exist.
    pub fn load_or_create(path: &Path, issuer: &str, audience: &str) -> anyhow::Result<Self> {
        let key = if path.exists() {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("reading signing key {}", path.display()))?;
            rsa::RsaPrivateKey::from_pkcs1_pem(&pem)
                .with_context(|| format!("{} is not a PKCS#1 RSA private key", path.display()))?
        } else {
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
                .context("generating an RSA key")?;
            let pem = key.to_pkcs1_pem(LineEnding::LF)?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            write_private(path, pem.as_bytes())
                .with_context(|| format!("writing signing key {}", path.display()))?;
            key
        };
        Self::from_key(&key, issuer, audience)
    }

    pub fn from_key(
        key: &rsa::RsaPrivateKey,
        issuer: &str,
        audience: &str,
    ) -> anyhow::Result<Self> {
        let pem = key.to_pkcs1_pem(LineEnding::LF)?;
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes())?;
        let n = URL_SAFE_NO_PAD.encode(key.n().to_bytes_be());
        let e = URL_SAFE_NO_PAD.encode(key.e().to_bytes_be());
        // A stable kid derived from the public key.
        let kid = {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(format!("{n}.{e}").as_bytes());
            URL_SAFE_NO_PAD.encode(&digest[..12])
        };
        let jwk = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::RS256),
                key_id: Some(kid.clone()),
                ..Default::default()
            },
            algorithm: AlgorithmParameters::RSA(RSAKeyParameters {
                key_type: RSAKeyType::RSA,
                n,
                e,
            }),
        };
        Ok(Self {
            kid,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            encoding: Arc::new(encoding),
            jwk,
        })
    }

    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.jwk.clone()],
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// An ID token for `user_id`, valid for `ttl`.
    pub fn mint(&self, user_id: &str, ttl: Duration) -> anyhow::Result<String> {
        let now = jsonwebtoken::get_current_timestamp();
        self.sign(&Claims {
            sub: user_id.to_string(),
            iss: self.issuer.clone(),
            exp: now + ttl.as_secs(),
            iat: Some(now),
            aud: Some(serde_json::Value::String(self.audience.clone())),
            client_id: None,
            token_use: Some("id".into()),
            email: None,
        })
    }

    /// Signs arbitrary claims (tests use it for expired and foreign-audience tokens).
    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }

    pub fn auth_config(&self) -> AuthConfig {
        AuthConfig {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            keys: KeySource::Static(self.jwks()),
        }
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(tmp, path)
}
