//! What ingestion makes of a transcript: clip summaries (the original's LLM schema), transcript
//! windows for search, and episode proposals with their cut lists and chapters.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Version of summaries; bumping it makes ingestion summarise again.
pub const SUMMARY_VERSION: &str = "summary-1";
/// Version of the transcript windowing; bumping it re-embeds.
pub const WINDOWS_VERSION: &str = "windows-1";
/// The cut list format every episode carries.
pub const CUT_LIST_VERSION: &str = "1.0.0";

/// A moment the summary points at. Times are clip seconds (as the original's transcript times).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Moment {
    pub timestamp_start: f64,
    pub timestamp_end: f64,
    pub description: String,
    pub reasoning: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TranscriptionErrorNote {
    pub timestamp_start: f64,
    pub description: String,
    pub reasoning: String,
}

/// How a summary was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SummaryMethod {
    /// An OpenAI-compatible chat model with the strict JSON schema.
    #[default]
    Llm,
    /// The local fallback: sentences picked from the transcript, nothing written anew.
    Extractive,
}

/// `video_clips.summary`: the original's fields plus how it was made.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ClipSummary {
    pub title: String,
    pub keywords: Vec<String>,
    pub summary_context: String,
    pub summary_main_discussion: String,
    pub highlights: Vec<Moment>,
    pub attentions: Vec<Moment>,
    pub transcription_errors: Vec<TranscriptionErrorNote>,
    #[serde(default)]
    pub method: SummaryMethod,
    /// The chat model, or the embedding model the extractive summary ranked with.
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub version: String,
    /// Fingerprint of the transcript that was summarised.
    #[serde(default)]
    pub source: String,
}

/// A chapter of an episode; `start` is seconds from the episode's start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Chapter {
    pub start: f64,
    pub title: String,
}

/// Review state of a proposed episode (`episodes.review_status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    #[default]
    AwaitingReview,
    Approved,
    Rejected,
}

impl ReviewStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingReview => "awaiting_review",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }
}

/// One search hit: a transcript window and where it is in the stream. Hits come in order of
/// `rank_score` (reciprocal rank fusion of the vector and the full-text rankings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SearchHit {
    pub stream_id: String,
    pub clip_key: String,
    /// Seconds from the start of the stream.
    pub start: f64,
    pub end: f64,
    pub text: String,
    /// Cosine similarity of the window's and the query's embeddings, 1 = same direction.
    pub score: f64,
    /// Where in the window the query was said: the start (stream seconds) of the transcript
    /// segment sharing most words with the query, else the window's start.
    pub at: f64,
    /// Deep link to that moment in the web UI (`?t=` in seconds, floored to tenths).
    pub link: String,
    /// The fused score the hits are ordered by: the sum over the rankings the window is in of
    /// 1 / (60 + its rank there); the full-text ranking counts twice for a window that holds the
    /// query as a phrase.
    #[serde(default)]
    pub rank_score: f64,
    /// The window's place (1 = first) among the nearest embeddings, if it was among them.
    #[serde(default)]
    pub vector_rank: Option<u32>,
    /// Its place among the windows holding every word of the query (phrase matches first), if
    /// it holds them all.
    #[serde(default)]
    pub text_rank: Option<u32>,
    /// Whether the window holds the query's words in the query's order (a remembered phrase).
    #[serde(default)]
    pub phrase_match: bool,
    /// The query's words (as typed, lower-cased, in query order) that occur in `text`, compared
    /// as full-text search does (English stems: "baking" matches "bake").
    #[serde(default)]
    pub matched_words: Vec<String>,
    /// Where those words are in `text`, in order, for highlighting.
    #[serde(default)]
    pub highlights: Vec<TextRange>,
}

/// A span of a text in characters (Unicode scalar values, not bytes or UTF-16 units):
/// `[start, end)`. In JavaScript, index `Array.from(text)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
// Inline: the OpenAPI document embeds SearchHit's schema, where a `$defs` reference would not
// resolve.
#[schemars(inline)]
pub struct TextRange {
    pub start: u32,
    pub end: u32,
}

/// The words of `text` as full-text search's parser splits them (runs of letters and digits),
/// each with its character range.
pub fn word_ranges(text: &str) -> Vec<(TextRange, &str)> {
    let mut out = Vec::new();
    let mut begin: Option<(u32, usize)> = None;
    let mut chars = 0u32;
    for (byte, c) in text.char_indices() {
        if c.is_alphanumeric() {
            begin.get_or_insert((chars, byte));
        } else if let Some((start, from)) = begin.take() {
            out.push((TextRange { start, end: chars }, &text[from..byte]));
        }
        chars += 1;
    }
    if let Some((start, from)) = begin {
        out.push((TextRange { start, end: chars }, &text[from..]));
    }
    out
}

/// Lower-case alphanumeric words of `text`.
pub fn plain_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Of `segments` (`(start, text)`, in order), where `query` was said: the start of the run of
/// consecutive segments (up to six) whose words are most like the query's (Jaccard overlap of
/// distinct words; the earliest run on a tie), so a query spanning two sentences links to the
/// first and a query of the second sentence to the second. `None` when no word is shared.
pub fn best_matching_start<'a>(
    query: &str,
    segments: impl IntoIterator<Item = (f64, &'a str)>,
) -> Option<f64> {
    use std::collections::HashSet;
    let wanted: HashSet<String> = plain_words(query).into_iter().collect();
    let segments: Vec<(f64, HashSet<String>)> = segments
        .into_iter()
        .map(|(start, text)| (start, plain_words(text).into_iter().collect()))
        .collect();
    let mut best: Option<(f64, f64)> = None;
    for i in 0..segments.len() {
        let mut words: HashSet<&String> = HashSet::new();
        for (_, seg) in segments.iter().skip(i).take(6) {
            words.extend(seg);
            let shared = words.iter().filter(|w| wanted.contains(w.as_str())).count();
            let union = words.len() + wanted.len() - shared;
            let score = shared as f64 / union.max(1) as f64;
            if shared > 0 && best.is_none_or(|(s, _)| score > s) {
                best = Some((score, segments[i].0));
            }
        }
    }
    best.map(|(_, start)| start)
}

/// The web UI's deep link to second `t` of a stream.
pub fn stream_link(stream_id: &str, t: f64) -> String {
    let encoded: String = url_segment(stream_id);
    format!(
        "/streams/{encoded}?t={:.1}",
        (t.max(0.0) * 10.0).floor() / 10.0
    )
}

/// `s` as one URL path segment (unreserved characters kept, the rest percent-encoded).
fn url_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// How speech becomes episode proposals.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct EpisodeParams {
    /// A silence at least this long (seconds) always ends an episode (a break, "BRB").
    pub break_gap: f64,
    /// Talk shorter than this (seconds) is not an episode on its own.
    pub min_length: f64,
    /// Longer talk is split at its longest pauses until every part fits.
    pub max_length: f64,
}

impl Default for EpisodeParams {
    fn default() -> Self {
        Self {
            break_gap: 120.0,
            min_length: 60.0,
            max_length: 1800.0,
        }
    }
}

impl EpisodeParams {
    pub fn validate(&self) -> Result<(), String> {
        let ok = |v: f64| v.is_finite() && v > 0.0;
        if !ok(self.break_gap) || !ok(self.min_length) || !ok(self.max_length) {
            return Err("break_gap, min_length and max_length must be positive seconds".into());
        }
        if self.min_length > self.max_length {
            return Err(format!(
                "min_length ({}) must not exceed max_length ({})",
                self.min_length, self.max_length
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_matching_segment_gives_the_moment() {
        let segs = [
            (10.0, "Welcome back to the stream."),
            (14.5, "The boss has three phases."),
            (19.0, "The last phase is tricky."),
        ];
        assert_eq!(
            best_matching_start("the boss has three phases", segs),
            Some(14.5)
        );
        assert_eq!(best_matching_start("dragon", segs), None);
        // A query spanning two segments links to the first; its second half to the second.
        assert_eq!(
            best_matching_start("welcome back to the stream the boss has three phases", segs),
            Some(10.0)
        );
        assert_eq!(
            best_matching_start("the last phase is tricky", segs),
            Some(19.0)
        );
        let text = "Ça va? Welcome back, everyone!";
        let words = word_ranges(text);
        let spans: Vec<(u32, u32, &str)> =
            words.iter().map(|(r, w)| (r.start, r.end, *w)).collect();
        assert_eq!(
            spans,
            [
                (0, 2, "Ça"),
                (3, 5, "va"),
                (7, 14, "Welcome"),
                (15, 19, "back"),
                (21, 29, "everyone")
            ]
        );
        let chars: Vec<char> = text.chars().collect();
        for (r, w) in &words {
            let cut: String = chars[r.start as usize..r.end as usize].iter().collect();
            assert_eq!(&cut, w);
        }
        assert_eq!(
            stream_link("s 1/é", 14.56),
            "/streams/s%201%2F%C3%A9?t=14.5"
        );
    }
}
