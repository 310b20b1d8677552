//! Request and response bodies of the HTTP API (besides the generic `/records` ones).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::workflow::{IngestProgress, StreamIngestOutput};

/// Every error response: `{ "message": "..." }` (the front end shows `message`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    pub message: String,
}

/// `POST /stream`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StreamIngestRequest {
    pub stream_id: String,
    #[serde(default)]
    pub initial_prompt: String,
    #[serde(default)]
    pub initial_summary: String,
    /// Silence/speech parameters for this ingestion (defaults when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<crate::media::AnalysisParams>,
    /// Spoken language as an ISO 639-1 code (`en`); detected when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Wait for review after proposing episodes (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub await_review: Option<bool>,
    /// How talk is cut into episode proposals (defaults when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episodes: Option<crate::episode::EpisodeParams>,
}

/// Longest `initialPrompt`: Whisper reads at most 224 tokens of prompt.
pub const MAX_INITIAL_PROMPT_CHARS: usize = 1_000;
/// Longest `initialSummary`: context for the first clip's summary.
pub const MAX_INITIAL_SUMMARY_CHARS: usize = 20_000;

impl StreamIngestRequest {
    /// What is wrong with the request on its own, if anything (the message names the field).
    pub fn validate(&self) -> Result<(), String> {
        if self.stream_id.trim().is_empty() {
            return Err("streamId must not be empty".into());
        }
        if let Some(lang) = &self.language
            && !(lang.len() == 2 && lang.chars().all(|c| c.is_ascii_lowercase()))
        {
            return Err(format!(
                "language must be a two-letter ISO 639-1 code such as \"en\", got {lang:?}"
            ));
        }
        for (name, text, max) in [
            (
                "initialPrompt",
                &self.initial_prompt,
                MAX_INITIAL_PROMPT_CHARS,
            ),
            (
                "initialSummary",
                &self.initial_summary,
                MAX_INITIAL_SUMMARY_CHARS,
            ),
        ] {
            let n = text.chars().count();
            if n > max {
                return Err(format!(
                    "{name} is {n} characters long; at most {max} are allowed"
                ));
            }
        }
        if let Some(p) = &self.episodes {
            p.validate()
                .map_err(|e| format!("invalid episode parameters: {e}"))?;
        }
        if let Some(p) = &self.analysis {
            p.validate()
                .map_err(|e| format!("invalid analysis parameters: {e}"))?;
        }
        Ok(())
    }
}

/// Answer of the endpoints that start workflows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowStarted {
    /// The workflow id (the front end stores it as the task's id).
    pub id: String,
    pub workflow_id: String,
    pub run_id: String,
    /// False when an execution with this id was already running and was returned instead.
    pub started: bool,
}

/// `GET /stream/{stream_id}/progress`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngestStatus {
    pub workflow_id: String,
    pub run_id: String,
    /// Temporal's execution status: `RUNNING`, `COMPLETED`, `FAILED`, ...
    pub status: String,
    pub progress: IngestProgress,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<StreamIngestOutput>,
    /// Why the ingestion failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why `progress` may be stale (e.g. no worker answered the query).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A record list page: `{items, cursor}`; `cursor` is `null` on the last page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub cursor: Option<String>,
}

/// `POST /render` (the front end's Render button).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RenderRequest {
    pub episode_ids: Vec<String>,
}

/// `POST /upload/youtube` (the front end's Upload to YouTube dialog).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct YouTubeUploadRequest {
    pub episode_ids: Vec<String>,
}

/// Why an episode cannot be published as it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EpisodeValidationError {
    pub episode_id: String,
    pub error: String,
}

/// Answer of `POST /render` and `POST /upload/youtube`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PublishStarted {
    pub message: String,
    pub queued_count: usize,
    pub workflows: Vec<WorkflowStarted>,
}

/// `GET /episodes/{id}/publish`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublishStatus {
    pub workflow_id: String,
    pub run_id: String,
    pub status: String,
    pub progress: crate::publish::PublishProgress,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<crate::workflow::EpisodePublishOutput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `POST /auth/{provider}/url`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthUrlRequest {
    pub scopes: Vec<String>,
    /// Where the front end wants to return after the callback.
    pub redirect_uri: String,
}

/// `POST /auth/{provider}/callback`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AuthCallbackRequest {
    pub code: String,
    pub state: String,
    #[serde(default)]
    pub scope: Vec<String>,
}

/// `{url}`: where the browser goes next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UrlResponse {
    pub url: String,
}
