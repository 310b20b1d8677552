//! Transcripts: what the speech-to-text step produces, in the original system's shape
//! (`{language, text, segments[{start, end, text, tokens, temperature, avg_logprob,
//! compression_ratio, no_speech_prob}]}`) plus word-level timestamps. Times are clip seconds.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Version of the transcription; bumping it makes ingestion transcribe again.
pub const TRANSCRIPTION_VERSION: &str = "whisper-4";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Transcript {
    /// ISO 639-1 code, detected or configured (empty when nothing was said).
    pub language: String,
    pub text: String,
    pub segments: Vec<TranscriptSegment>,
    #[serde(default)]
    pub version: String,
    /// The model file's name, e.g. `ggml-base.bin`.
    #[serde(default)]
    pub model: String,
    /// Fingerprint of the speech audio (and its time map) that was transcribed.
    #[serde(default)]
    pub source: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TranscriptSegment {
    pub start: f64,
    pub end: f64,
    pub text: String,
    /// Whisper token ids of the text.
    pub tokens: Vec<i32>,
    /// Sampling temperature the segment was decoded at (greedy: 0).
    pub temperature: f64,
    /// Mean log probability of the text tokens.
    pub avg_logprob: f64,
    /// Bytes of text divided by its zlib-compressed size (high = repetitive).
    pub compression_ratio: f64,
    pub no_speech_prob: f64,
    #[serde(default)]
    pub words: Vec<Word>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Word {
    pub word: String,
    pub start: f64,
    pub end: f64,
    pub probability: f64,
}

impl Transcript {
    /// The last `max_chars` characters of the text, cut at a word boundary: the prompt that
    /// carries context into the next clip.
    pub fn tail(&self, max_chars: usize) -> String {
        tail_of(&self.text, max_chars)
    }
}

/// A stable fingerprint (FNV-1a 64 of the JSON) of a value, e.g. the speech audio a transcript
/// was made from.
pub fn fingerprint<T: Serialize>(value: &T) -> String {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The last `max_chars` characters of `text`, starting at a word boundary.
pub fn tail_of(text: &str, max_chars: usize) -> String {
    let text = text.trim();
    let count = text.chars().count();
    if count <= max_chars {
        return text.to_string();
    }
    let start = text
        .char_indices()
        .nth(count - max_chars)
        .map_or(0, |(i, _)| i);
    let cut = &text[start..];
    // Keep the first word only if it starts right at the cut.
    if text[..start].ends_with(char::is_whitespace) {
        return cut.trim_start().to_string();
    }
    match cut.find(char::is_whitespace) {
        Some(i) => cut[i..].trim_start().to_string(),
        None => cut.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_start_at_a_word() {
        assert_eq!(tail_of("  short  ", 20), "short");
        assert_eq!(tail_of("one two three four", 9), "four");
        assert_eq!(tail_of("one two three four", 10), "three four");
        assert_eq!(tail_of("héllo wörld ünïcode", 7), "ünïcode");
    }
}
