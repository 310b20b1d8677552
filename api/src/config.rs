//! API configuration: one struct, read from the environment.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use gt_blob_s3::{BlobLocation, BlobRole};
use gt_types::{CPU_TASK_QUEUE, GPU_TASK_QUEUE};
use gt_workflows::client::TemporalTarget;

use crate::auth::{AuthConfig, KeySource, LocalSigner};

/// How tokens are verified.
#[derive(Debug, Clone)]
pub enum AuthMode {
    /// Single-user local stack: RS256 key in this file (created on first start), its public
    /// half served at `/.well-known/jwks.json`.
    Local {
        key_file: PathBuf,
        issuer: String,
        audience: String,
    },
    /// An external issuer such as Cognito.
    External(AuthConfig),
}

#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// `GT_API_ADDR` (default `127.0.0.1:3030`).
    pub listen: SocketAddr,
    /// `DATABASE_URL`.
    pub database_url: String,
    /// `GT_JWKS_URL` or `GT_JWKS_FILE` with `GT_JWT_ISSUER` and `GT_JWT_AUDIENCE`; otherwise
    /// local mode with `GT_JWT_KEY_FILE`.
    pub auth: AuthMode,
    /// `GT_CPU_TASK_QUEUE` (default `gt-cpu`): where workflows are started.
    pub cpu_task_queue: String,
    /// `GT_GPU_TASK_QUEUE` (default `gt-gpu`): where workflows send transcription.
    pub gpu_task_queue: String,
    /// `GT_MAX_BODY_BYTES` (default 16 MiB).
    pub max_body_bytes: usize,
    /// `GT_CORS_ORIGINS`, comma-separated (default: the front end's dev server).
    pub cors_origins: Vec<String>,
    /// Temporal's standard variables (`TEMPORAL_ADDRESS`, ...).
    pub temporal: TemporalTarget,
    /// `GT_RECORD_BACKEND` and `GT_DYNAMODB_*`: where records live (Postgres by default).
    pub records: gt_records_dynamo::RecordBackend,
    /// Where previews and other derived files are: `GT_ARTIFACTS_DIR`, or S3 with
    /// `GT_BLOB_BACKEND=s3` and `GT_S3_*`.
    pub artifacts: gt_blob_s3::BlobLocation,
    /// The recordings the workers read (`GT_RECORDINGS_DIR` or S3): exports name source files
    /// under a local root; storage status and archiving use the store. Optional for the API.
    pub recordings: Option<gt_blob_s3::BlobLocation>,
    /// `GT_MEDIA_KEY`: secret for signed media links (random per start when unset).
    pub media_key: Option<String>,
    /// Query embeddings for search: the same models the workers use (`GT_EMBEDDING_MODEL`,
    /// `GT_EMBED_MODEL_DIR`, `GT_OPENAI_*`).
    pub ai: gt_ai::AiConfig,
    /// The YouTube app users connect to (`GT_YOUTUBE_*`, `GT_TOKEN_KEY`); `None` when not
    /// configured, and then `/auth/youtube/*` and uploads answer that YouTube is not set up.
    pub youtube: Option<gt_youtube::YouTubeApp>,
    /// The Twitch app users connect to and EventSub settings (`GT_TWITCH_*`, `GT_EVENTSUB_*`,
    /// `GT_TOKEN_KEY`); `None` when not configured: `/auth/twitch/*` and `/eventsub/*` then
    /// answer 503.
    pub twitch: Option<gt_twitch::app::TwitchApp>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl ApiConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        let listen = env("GT_API_ADDR")
            .unwrap_or_else(|| "127.0.0.1:3030".into())
            .parse()
            .context("GT_API_ADDR must be host:port")?;
        let external = match (env("GT_JWKS_URL"), env("GT_JWKS_FILE")) {
            (Some(url), None) => Some(KeySource::Url(url)),
            (None, Some(file)) => Some(KeySource::File(file.into())),
            (Some(_), Some(_)) => bail!("set only one of GT_JWKS_URL and GT_JWKS_FILE"),
            (None, None) => None,
        };
        let auth = match external {
            Some(keys) => AuthMode::External(AuthConfig {
                issuer: env("GT_JWT_ISSUER").context("GT_JWT_ISSUER is required with a JWKS")?,
                audience: env("GT_JWT_AUDIENCE")
                    .context("GT_JWT_AUDIENCE (the app client id) is required with a JWKS")?,
                keys,
            }),
            None => AuthMode::Local {
                key_file: env("GT_JWT_KEY_FILE")
                    .map(PathBuf::from)
                    .context("set GT_JWT_KEY_FILE (local mode) or GT_JWKS_URL/GT_JWKS_FILE")?,
                issuer: env("GT_JWT_ISSUER").unwrap_or_else(|| LocalSigner::DEFAULT_ISSUER.into()),
                audience: env("GT_JWT_AUDIENCE")
                    .unwrap_or_else(|| LocalSigner::DEFAULT_AUDIENCE.into()),
            },
        };
        Ok(Self {
            listen,
            database_url: env("DATABASE_URL").context("DATABASE_URL is not set")?,
            auth,
            cpu_task_queue: env("GT_CPU_TASK_QUEUE").unwrap_or_else(|| CPU_TASK_QUEUE.into()),
            gpu_task_queue: env("GT_GPU_TASK_QUEUE").unwrap_or_else(|| GPU_TASK_QUEUE.into()),
            max_body_bytes: env("GT_MAX_BODY_BYTES")
                .map(|v| v.parse())
                .transpose()
                .context("GT_MAX_BODY_BYTES must be a number of bytes")?
                .unwrap_or(16 * 1024 * 1024),
            cors_origins: env("GT_CORS_ORIGINS")
                .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
                .unwrap_or_else(|| {
                    vec![
                        "http://localhost:5173".into(),
                        "http://127.0.0.1:5173".into(),
                    ]
                }),
            temporal: TemporalTarget::default(),
            records: gt_records_dynamo::RecordBackend::from_env()?,
            artifacts: BlobLocation::from_env(
                BlobRole::Artifacts,
                env("GT_ARTIFACTS_DIR").map(PathBuf::from),
            )?,
            recordings: match (
                gt_blob_s3::BlobBackend::from_env()?,
                env("GT_RECORDINGS_DIR").map(PathBuf::from),
            ) {
                (gt_blob_s3::BlobBackend::Local, None) => None,
                (_, dir) => Some(BlobLocation::from_env(BlobRole::Recordings, dir)?),
            },
            media_key: env("GT_MEDIA_KEY"),
            ai: gt_ai::AiConfig::from_env(),
            youtube: gt_youtube::YouTubeApp::from_env().map_err(anyhow::Error::msg)?,
            twitch: gt_twitch::app::TwitchApp::from_env().map_err(anyhow::Error::msg)?,
        })
    }
}
