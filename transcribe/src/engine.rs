//! Speech to text with whisper.cpp (whisper-rs): the model is loaded once per process, audio is
//! decoded greedily (temperature 0, no fallback, so the reported temperature is the one used),
//! non-speech tokens (music notes, brackets) suppressed, and every text token is returned with
//! its cross-attention (DTW) time; [`crate::timing`] turns tokens into timed words.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use whisper_rs::{
    DtwMode, DtwModelPreset, DtwParameters, FullParams, SamplingStrategy, WhisperContext,
    WhisperContextParameters,
};

/// ggml model files start with the magic 0x67676d6c ("ggml" read as a little-endian u32).
const GGML_MAGIC: [u8; 4] = [0x6c, 0x6d, 0x67, 0x67];

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
        }
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
        let mut params = WhisperContextParameters::default();
        // Cross-attention alignment of the base model gives word times within tens of ms.
        params.dtw_parameters(DtwParameters {
            mode: DtwMode::ModelPreset {
                model_preset: DtwModelPreset::Base,
            },
            ..Default::default()
        });
        let path = self.model_path.to_str().ok_or_else(|| {
            format!(
                "Whisper model {}: path is not UTF-8",
                self.model_path.display()
            )
        })?;
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
        let ctx = self.model()?;
        if pcm.len() < 1600 {
            // Under 0.1 s there is nothing to say, and whisper.cpp refuses very short input.
            return Ok(Decoded::default());
        }
        let mut state = ctx
            .create_state()
            .map_err(|e| format!("Whisper state: {e}"))?;
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
