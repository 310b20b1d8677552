//! Speech to text with whisper.cpp (whisper-rs): the model is loaded once per process, audio is
//! decoded greedily (temperature 0, no fallback, so the reported temperature is the one used),
//! non-speech tokens (music notes, brackets) suppressed, and every text token is returned with
//! its cross-attention (DTW) time; [`crate::timing`] turns tokens into timed words.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::quantize::{QuantType, quantize_model, read_model_index};

use whisper_rs::{
    DtwMode, DtwModelPreset, DtwParameters, FullParams, SamplingStrategy, WhisperContext,
    WhisperContextParameters, WhisperState,
};

/// Encoder positions per second of audio (Whisper: 1500 for a 30 s window).
const AUDIO_CTX_PER_SECOND: f64 = 50.0;
/// Encoder positions added after the audio when the window is fitted (1.28 s of padding, as
/// the model saw after every utterance in training), and the granularity the length is
/// rounded up to.
const AUDIO_CTX_MARGIN: i32 = 64;

/// The encoder window for `samples` of 16 kHz audio: just the audio plus a margin instead of
/// the full 30 s (the encoder's cost grows with its length, and a chunk shorter than a window
/// would otherwise pay for the padding), never more than the model's `full` window.
pub fn fitted_audio_ctx(samples: usize, full: i32) -> i32 {
    let needed = (samples as f64 / 16_000.0 * AUDIO_CTX_PER_SECOND).ceil() as u32;
    let margin = AUDIO_CTX_MARGIN as u32;
    let padded = (needed + margin).div_ceil(margin) * margin;
    (padded.min(i32::MAX as u32) as i32).min(full)
}

/// ggml model files start with the magic 0x67676d6c ("ggml" read as a little-endian u32).
const GGML_MAGIC: [u8; 4] = [0x6c, 0x6d, 0x67, 0x67];

/// Whether the model file at `path` holds quantised weights (its header's type is neither
/// f32 nor f16).
fn is_quantised(path: &Path) -> Result<bool, String> {
    let index = read_model_index(path)?;
    Ok(!matches!(index.hparams.ftype % 1000, 0 | 1))
}

/// Whether `a` was written after `b` (a quantised copy older than its model is made again).
fn newer(a: &Path, b: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    matches!((modified(a), modified(b)), (Some(x), Some(y)) if x >= y)
}

/// Checks that `path` is a ggml model file, with a message naming the path if not.
pub fn check_model_file(path: &Path) -> Result<u64, String> {
    let mut f = std::fs::File::open(path)
        .map_err(|e| format!("Whisper model {}: cannot open: {e}", path.display()))?;
    let mut magic = [0u8; 4];
    f.read_exact(&mut magic).map_err(|_| {
        format!(
            "Whisper model {}: file too short to be a model",
            path.display()
        )
    })?;
    if magic != GGML_MAGIC {
        return Err(format!(
            "Whisper model {}: not a ggml model file (bad magic)",
            path.display()
        ));
    }
    Ok(f.metadata().map(|m| m.len()).unwrap_or(0))
}

/// The Whisper model of this worker process, loaded on first use and kept. Several
/// transcriptions may run at once (each has its own decoding state).
pub struct Transcriber {
    model_path: PathBuf,
    ctx: Mutex<Option<Arc<WhisperContext>>>,
    /// Run the encoder over each chunk's own length ([`fitted_audio_ctx`]) instead of a full
    /// 30 s window.
    fit_window: bool,
    /// Decode with weights quantised to this type: made from the f16 model on first load,
    /// beside it (or in the temp dir when that is read-only) and reused.
    quantization: Option<QuantType>,
    /// Let Whisper write timestamp tokens (segment ends; on by default). Without them a chunk
    /// is decoded in one pass (with them whisper.cpp starts a second pass, encoder and all, at
    /// the last timestamp when the chunk goes on after it), ~2 % faster, but greedy decoding
    /// then falls into repetition loops on some chunks (measured: a sentence repeated to the
    /// token limit), so they stay on. Word times come from the DTW alignment either way.
    timestamp_tokens: bool,
}

/// A decoding state (buffers sized for the model), reused for the chunks of one lane:
/// creating one sizes every compute graph again.
pub struct Session {
    state: WhisperState,
}

/// A text token as decoded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Token {
    pub id: i32,
    /// The token's text (a leading space starts a word).
    pub text: String,
    /// Where the DTW alignment path leaves the token's row, seconds from the start of the
    /// samples: whisper.cpp files each token at the row *after* the one that predicts it, so
    /// this is where the token ends. `None` when no alignment was made for it.
    pub dtw: Option<f64>,
    /// Whisper's own timestamp-token estimate of the token's span (coarse: tenths of seconds
    /// off, and seconds off past the first 30 s window).
    pub t0: f64,
    pub t1: f64,
    pub p: f64,
    pub logprob: f64,
}

/// One segment as Whisper ended it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawSegment {
    pub tokens: Vec<Token>,
    pub no_speech_prob: f64,
}

/// One decoded stretch of audio; times are seconds from the start of the samples given.
#[derive(Debug, Clone, Default)]
pub struct Decoded {
    pub language: String,
    pub segments: Vec<RawSegment>,
}

impl Decoded {
    /// Where the last aligned token ends (seconds), `None` when nothing was aligned.
    pub fn last_word_end(&self) -> Option<f64> {
        self.segments
            .iter()
            .flat_map(|s| &s.tokens)
            .filter_map(|t| t.dtw)
            .reduce(f64::max)
    }

    /// Appends `later`, decoded from the samples `offset` seconds on, in this decode's time.
    pub fn append_shifted(&mut self, later: Decoded, offset: f64) {
        if self.language.is_empty() {
            self.language = later.language;
        }
        for mut seg in later.segments {
            for t in &mut seg.tokens {
                t.dtw = t.dtw.map(|d| d + offset);
                t.t0 += offset;
                t.t1 += offset;
            }
            self.segments.push(seg);
        }
    }

    /// Everything said, as Whisper wrote it.
    pub fn text(&self) -> String {
        self.segments
            .iter()
            .flat_map(|s| s.tokens.iter().map(|t| t.text.as_str()))
            .collect::<String>()
            .trim()
            .to_string()
    }
}

impl Transcriber {
    pub fn new(model_path: PathBuf) -> Self {
        // whisper.cpp's own messages go to `tracing` (target whisper_rs::...) instead of stderr.
        whisper_rs::install_logging_hooks();
        Self {
            model_path,
            ctx: Mutex::new(None),
            fit_window: true,
            timestamp_tokens: true,
            quantization: None,
        }
    }

    /// Decodes with weights quantised to `kind` (`None`: the model file as it is). A model
    /// file that is already quantised is used as it is.
    pub fn with_quantization(mut self, kind: Option<QuantType>) -> Self {
        self.quantization = kind;
        self
    }

    /// The model as transcripts record it: the file's name, plus the quantisation made from
    /// it (another model or quantisation transcribes a clip again).
    pub fn model_name(&self) -> String {
        let file = self
            .model_path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        match self.quantization {
            Some(kind) if !matches!(is_quantised(&self.model_path), Ok(true)) => {
                format!("{file}@{kind}")
            }
            _ => file,
        }
    }

    /// The file to load: the model, or its quantised copy (made now if missing).
    fn file_to_load(&self) -> Result<PathBuf, String> {
        let Some(kind) = self.quantization else {
            return Ok(self.model_path.clone());
        };
        if is_quantised(&self.model_path)? {
            return Ok(self.model_path.clone());
        }
        let stem = self
            .model_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into());
        let name = format!("{stem}-{kind}.bin");
        let beside = self.model_path.with_file_name(&name);
        let fallback = std::env::temp_dir()
            .join("glowing-telegram-whisper")
            .join(&name);
        for out in [beside, fallback] {
            if out.is_file() && is_quantised(&out).unwrap_or(false) && newer(&out, &self.model_path)
            {
                return Ok(out);
            }
            if let Some(dir) = out.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            match quantize_model(&self.model_path, &out, kind) {
                Ok(report) => {
                    tracing::info!(model = %self.model_path.display(), out = %out.display(), %report, "quantised the Whisper model");
                    return Ok(out);
                }
                Err(e) => {
                    tracing::warn!(out = %out.display(), error = %e, "cannot write the quantised model here")
                }
            }
        }
        Err(format!(
            "cannot write its {kind} copy beside it or in the temp dir"
        ))
    }

    /// Whether Whisper writes timestamp tokens (on by default; off is kept to measure the
    /// difference).
    pub fn with_timestamp_tokens(mut self, on: bool) -> Self {
        self.timestamp_tokens = on;
        self
    }

    /// Whether the encoder runs over each chunk's own length (the default) or a full 30 s
    /// window (as whisper.cpp does by default; kept to measure the difference).
    pub fn with_fitted_window(mut self, fit: bool) -> Self {
        self.fit_window = fit;
        self
    }

    /// A decoding state to reuse across the chunks one thread decodes.
    pub fn session(&self) -> Result<Session, String> {
        let ctx = self.model()?;
        let state = ctx
            .create_state()
            .map_err(|e| format!("Whisper state: {e}"))?;
        Ok(Session { state })
    }

    pub fn model_path(&self) -> &Path {
        &self.model_path
    }

    /// The loaded model. A failed load is not remembered: fixing the file fixes the worker.
    pub fn model(&self) -> Result<Arc<WhisperContext>, String> {
        let mut slot = self.ctx.lock().expect("model lock");
        if let Some(ctx) = slot.as_ref() {
            return Ok(ctx.clone());
        }
        check_model_file(&self.model_path)?;
        let file = self.file_to_load().map_err(|e| {
            format!(
                "Whisper model {}: cannot load: {e}",
                self.model_path.display()
            )
        })?;
        let mut params = WhisperContextParameters::default();
        // Cross-attention alignment of the base model gives word times within tens of ms.
        params.dtw_parameters(DtwParameters {
            mode: DtwMode::ModelPreset {
                model_preset: DtwModelPreset::Base,
            },
            ..Default::default()
        });
        let path = file
            .to_str()
            .ok_or_else(|| format!("Whisper model {}: path is not UTF-8", file.display()))?;
        let ctx = WhisperContext::new_with_params(path, params).map_err(|e| {
            format!(
                "Whisper model {}: cannot load: {e}",
                self.model_path.display()
            )
        })?;
        // whisper.cpp accepts some truncated files; a real model has a vocabulary and layers.
        if ctx.n_vocab() < 1000 || ctx.model_n_audio_layer() < 1 || ctx.model_n_text_layer() < 1 {
            return Err(format!(
                "Whisper model {}: cannot load: not a usable model (vocabulary {}, layers {}/{})",
                self.model_path.display(),
                ctx.n_vocab(),
                ctx.model_n_audio_layer(),
                ctx.model_n_text_layer()
            ));
        }
        let ctx = Arc::new(ctx);
        *slot = Some(ctx.clone());
        Ok(ctx)
    }

    /// Transcribes 16 kHz mono `pcm` on `threads` threads. `progress` receives 0–100; `abort`
    /// stops decoding early (the result is then an error).
    pub fn transcribe(
        &self,
        pcm: &[f32],
        prompt: &str,
        language: Option<&str>,
        threads: usize,
        progress: impl FnMut(i32) + 'static,
        abort: Option<Arc<std::sync::atomic::AtomicBool>>,
    ) -> Result<Decoded, String> {
        let mut session = self.session()?;
        self.transcribe_in(
            &mut session,
            pcm,
            prompt,
            language,
            threads,
            progress,
            abort,
        )
    }

    /// [`Transcriber::transcribe`] in a state of this transcriber's model made by
    /// [`Transcriber::session`].
    #[allow(clippy::too_many_arguments)]
    pub fn transcribe_in(
        &self,
        session: &mut Session,
        pcm: &[f32],
        prompt: &str,
        language: Option<&str>,
        threads: usize,
        progress: impl FnMut(i32) + 'static,
        abort: Option<Arc<std::sync::atomic::AtomicBool>>,
    ) -> Result<Decoded, String> {
        let ctx = self.model()?;
        if pcm.len() < 1600 {
            // Under 0.1 s there is nothing to say, and whisper.cpp refuses very short input.
            return Ok(Decoded::default());
        }
        let state = &mut session.state;
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(threads.max(1) as i32);
        params.set_language(Some(language.unwrap_or("auto")));
        params.set_token_timestamps(true);
        params.set_no_context(true);
        params.set_temperature(0.0);
        params.set_temperature_inc(0.0);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_special(false);
        params.set_print_timestamps(false);
        // Music notes, brackets and the like: Whisper's "[Music]" and "♪" are not speech.
        params.set_suppress_nst(true);
        if self.fit_window {
            params.set_audio_ctx(fitted_audio_ctx(pcm.len(), ctx.n_audio_ctx()));
        }
        params.set_no_timestamps(!self.timestamp_tokens);
        if !prompt.trim().is_empty() {
            params.set_initial_prompt(prompt);
        }
        params.set_progress_callback_safe(progress);
        // whisper-rs 0.16's `set_abort_callback_safe` casts its boxed closure to the wrong type
        // (its trampoline reads garbage and aborts at random: "failed to encode"), so the flag
        // is wired in directly. `abort` outlives `full` below, which is the callback's lifetime.
        if let Some(flag) = &abort {
            unsafe extern "C" fn should_abort(user_data: *mut std::ffi::c_void) -> bool {
                // SAFETY: user_data is the AtomicBool below, alive for the whole decode.
                unsafe {
                    (*(user_data as *const std::sync::atomic::AtomicBool))
                        .load(std::sync::atomic::Ordering::Relaxed)
                }
            }
            // SAFETY: see above; the pointer is only read.
            unsafe {
                params.set_abort_callback(Some(should_abort));
                params.set_abort_callback_user_data(Arc::as_ptr(flag) as *mut std::ffi::c_void);
            }
        }
        state
            .full(params, pcm)
            .map_err(|e| format!("Whisper failed: {e}"))?;
        if abort.is_some_and(|f| f.load(std::sync::atomic::Ordering::Relaxed)) {
            return Err("transcription aborted".into());
        }
        let lang_id = state.full_lang_id_from_state();
        let language = whisper_rs::get_lang_str(lang_id).unwrap_or("").to_string();
        let eot = ctx.token_eot();
        let mut segments = Vec::new();
        for seg in state.as_iter() {
            let mut tokens = Vec::new();
            for i in 0..seg.n_tokens() {
                let Some(tok) = seg.get_token(i) else {
                    continue;
                };
                let data = tok.token_data();
                // Special and timestamp tokens carry no text.
                if data.id >= eot {
                    continue;
                }
                tokens.push(Token {
                    id: data.id,
                    text: tok
                        .to_str_lossy()
                        .map(|t| t.into_owned())
                        .unwrap_or_default(),
                    dtw: (data.t_dtw >= 0).then(|| data.t_dtw as f64 / 100.0),
                    t0: data.t0 as f64 / 100.0,
                    t1: data.t1 as f64 / 100.0,
                    p: f64::from(data.p),
                    logprob: f64::from(data.plog),
                });
            }
            if !tokens.is_empty() {
                segments.push(RawSegment {
                    tokens,
                    no_speech_prob: f64::from(seg.no_speech_probability()),
                });
            }
        }
        Ok(Decoded { language, segments })
    }
}

/// Bytes of `text` over its zlib-compressed size, as OpenAI's Whisper computes it.
pub fn compression_ratio(text: &str) -> f64 {
    if text.is_empty() {
        return 0.0;
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = z.write_all(text.as_bytes());
    let compressed = z.finish().map(|v| v.len()).unwrap_or(1).max(1);
    text.len() as f64 / compressed as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitted_windows_cover_the_audio_with_a_margin_and_never_exceed_the_model() {
        // DTW alignment needs the window to hold every mel frame (2 per position).
        for secs in [0.1f64, 1.0, 7.3, 22.7, 28.6, 29.9, 30.0, 45.0] {
            let samples = (secs * 16_000.0) as usize;
            let ctx = fitted_audio_ctx(samples, 1500);
            assert!(ctx <= 1500, "{secs} s: {ctx}");
            assert!(ctx % 64 == 0 || ctx == 1500, "{secs} s: {ctx}");
            let frames = (secs * 100.0).ceil() as i32;
            assert!(2 * ctx >= frames.min(3000), "{secs} s: {ctx}");
            if secs < 28.0 {
                assert!(f64::from(ctx) >= secs * 50.0 + 64.0, "{secs} s: {ctx}");
            }
        }
        assert_eq!(fitted_audio_ctx(22_700 * 16, 1500), 1216);
        assert_eq!(fitted_audio_ctx(30 * 16_000, 1500), 1500);
    }

    #[test]
    fn model_file_checks_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.bin");
        assert!(check_model_file(&missing).unwrap_err().contains("nope.bin"));
        let bad = dir.path().join("bad.bin");
        std::fs::write(&bad, b"not a model").unwrap();
        assert!(check_model_file(&bad).unwrap_err().contains("bad magic"));
        let good = dir.path().join("good.bin");
        std::fs::write(&good, [0x6c, 0x6d, 0x67, 0x67, 1, 2]).unwrap();
        assert_eq!(check_model_file(&good).unwrap(), 6);
        // The transcriber refuses to load either, naming the file.
        let t = Transcriber::new(bad.clone());
        assert!(t.model().unwrap_err().contains("bad.bin"));
        let t = Transcriber::new(good);
        assert!(t.model().unwrap_err().contains("cannot load"));
    }

    #[test]
    fn compression_ratio_grows_with_repetition() {
        let plain = compression_ratio("The quick brown fox jumps over the lazy dog.");
        let looped = compression_ratio(&"thank you ".repeat(40));
        assert!(plain < 1.5, "{plain}");
        assert!(looped > 5.0, "{looped}");
        assert_eq!(compression_ratio(""), 0.0);
    }
}
