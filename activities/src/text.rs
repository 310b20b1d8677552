//! What transcripts mean: clip summaries (an OpenAI-compatible chat model with the original's
//! strict JSON schema, or an extractive fallback ranked with local embeddings) and the
//! embedded transcript windows behind search.

use std::collections::HashMap;
use std::sync::Arc;

use gt_ai::{ChatModel, TextEmbedder};
use gt_store::Store;
use gt_store::insight::{SegmentRow, WindowRow};
use gt_types::episode::{
    ClipSummary, Moment, SUMMARY_VERSION, SummaryMethod, TranscriptionErrorNote,
};
use gt_types::transcript::{Transcript, fingerprint};
use gt_types::workflow::{EmbedClip, EmbeddedClip, SummarizeClip, SummarizedClip};
use serde_json::{Value, json};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::{invalid_input, store_error, with_heartbeats};

/// Target window length, seconds and words; windows overlap by about half.
pub const WINDOW_SECONDS: f64 = 30.0;
pub const WINDOW_WORDS: usize = 100;

pub struct TextActivitiesImpl {
    pub store: Arc<dyn Store>,
    pub embedder: TextEmbedder,
    /// `None` without an API key: summaries are extractive.
    pub chat: Option<ChatModel>,
}

fn retryable(e: anyhow::Error) -> ActivityError {
    ActivityError::from(e)
}

#[activities]
impl TextActivitiesImpl {
    #[activity(definition = gt_workflows::contracts::SummarizeClipActivity)]
    pub async fn summarize_clip(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: SummarizeClip,
    ) -> Result<SummarizedClip, ActivityError> {
        let clip = self
            .store
            .get_clip(&input.user_id, &input.key)
            .await
            .map_err(store_error)?;
        let transcript: Transcript = clip
            .transcription
            .clone()
            .and_then(|t| serde_json::from_value(t).ok())
            .ok_or_else(|| {
                invalid_input(format!(
                    "{}: no transcript to summarise (the clip has not been transcribed)",
                    input.key
                ))
            })?;
        let method = if self.chat.is_some() {
            SummaryMethod::Llm
        } else {
            SummaryMethod::Extractive
        };
        let model = match &self.chat {
            Some(c) => c.model.clone(),
            None => self.embedder.model().to_string(),
        };
        // The context is part of the input: a different previous clip means a new summary.
        let source = fingerprint(&(&transcript.text, &input.context, &model));
        if let Some(existing) = clip
            .summary
            .as_ref()
            .and_then(|s| serde_json::from_value::<ClipSummary>(s.clone()).ok())
            && existing.version == SUMMARY_VERSION
            && existing.source == source
        {
            return Ok(outcome(&input.key, &existing, true));
        }
        let mut summary = if transcript.segments.iter().all(|s| s.text.trim().is_empty()) {
            // Nothing was said: nothing to summarise, and the context carries on unchanged.
            ClipSummary {
                summary_context: input.context.clone(),
                ..Default::default()
            }
        } else if let Some(chat) = &self.chat {
            let request = summary_request(&transcript, &input.context);
            let reply = with_heartbeats(
                &ctx,
                std::time::Duration::from_secs(10),
                chat.complete_json(
                    SUMMARY_INSTRUCTIONS,
                    &request,
                    "clip_summary",
                    &summary_schema(),
                ),
            )
            .await?
            .map_err(retryable)?;
            serde_json::from_value::<ClipSummary>(reply).map_err(|e| {
                retryable(anyhow::anyhow!(
                    "{}: the model's summary does not match the schema: {e}",
                    input.key
                ))
            })?
        } else {
            let texts: Vec<String> = transcript.segments.iter().map(|s| s.text.clone()).collect();
            let vectors = self.embedder.embed(texts).await.map_err(retryable)?;
            extractive_summary(&transcript, &vectors, &input.context)
        };
        summary.method = method;
        summary.model = model;
        summary.version = SUMMARY_VERSION.into();
        summary.source = source;
        self.store
            .save_summary(&input.user_id, &input.key, &summary)
            .await
            .map_err(store_error)?;
        Ok(outcome(&input.key, &summary, false))
    }

    #[activity(definition = gt_workflows::contracts::EmbedClipActivity)]
    pub async fn embed_clip(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: EmbedClip,
    ) -> Result<EmbeddedClip, ActivityError> {
        let rows = self
            .store
            .transcript_rows(&input.user_id, &input.key)
            .await
            .map_err(store_error)?;
        let windows = windows_of(&rows);
        let texts: Vec<String> = windows.iter().map(|w| w.text.clone()).collect();
        let vectors = with_heartbeats(
            &ctx,
            std::time::Duration::from_secs(10),
            self.embedder.embed(texts),
        )
        .await?
        .map_err(retryable)?;
        let dim = vectors.first().map_or(0, Vec::len);
        let rows: Vec<WindowRow> = windows
            .into_iter()
            .zip(vectors)
            .map(|(w, embedding)| WindowRow {
                stream_start: w.start,
                stream_end: w.end,
                text: w.text,
                embedding,
            })
            .collect();
        self.store
            .replace_windows(
                &input.user_id,
                &input.stream_id,
                &input.key,
                self.embedder.model(),
                &rows,
            )
            .await
            .map_err(store_error)?;
        Ok(EmbeddedClip {
            key: input.key,
            windows: rows.len() as u32,
            model: self.embedder.model().to_string(),
            dim: dim as u32,
        })
    }
}

fn outcome(key: &str, s: &ClipSummary, cached: bool) -> SummarizedClip {
    SummarizedClip {
        key: key.to_string(),
        method: s.method,
        title: s.title.clone(),
        context: s.summary_context.clone(),
        highlights: s.highlights.len() as u32,
        cached,
    }
}

/// What the summary model is asked to do (the original's intent: context continuity across
/// ~20-minute clips, highlights, moments needing attention, likely transcription mistakes).
pub const SUMMARY_INSTRUCTIONS: &str = "You summarise one recorded segment of a live stream for \
the streamer, who will cut it into video episodes. The user message is JSON: `transcription` is \
the segment's transcript as [{start, end, text}] with times in seconds from the start of the \
segment, and `summarization_context` summarises what happened before this segment. Keep \
continuity with that context. Reply with: a short episode-worthy title; keywords; \
summary_context, a compact summary of everything so far that the next segment's summary can \
build on; summary_main_discussion, what this segment is mainly about; highlights, the moments \
worth clipping, with start and end times taken from the transcript and why they stand out; \
attentions, moments the streamer should check before publishing (personal information, \
offensive language, technical problems); transcription_errors, words the transcript most \
likely got wrong, with their time and the probable correct words. Use only times that occur \
in the transcript. Empty lists are fine.";

/// The user message: the original's `{transcription: [{start, end, text}], summarization_context}`.
pub fn summary_request(t: &Transcript, context: &str) -> String {
    let segments: Vec<Value> = t
        .segments
        .iter()
        .map(|s| json!({"start": round2(s.start), "end": round2(s.end), "text": s.text.trim()}))
        .collect();
    json!({"transcription": segments, "summarization_context": context}).to_string()
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// The strict JSON schema of a summary (every field required, no extra fields).
pub fn summary_schema() -> Value {
    let moment = json!({
        "type": "object",
        "properties": {
            "timestamp_start": {"type": "number"},
            "timestamp_end": {"type": "number"},
            "description": {"type": "string"},
            "reasoning": {"type": "string"},
        },
        "required": ["timestamp_start", "timestamp_end", "description", "reasoning"],
        "additionalProperties": false,
    });
    json!({
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "keywords": {"type": "array", "items": {"type": "string"}},
            "summary_context": {"type": "string"},
            "summary_main_discussion": {"type": "string"},
            "highlights": {"type": "array", "items": moment},
            "attentions": {"type": "array", "items": moment},
            "transcription_errors": {"type": "array", "items": {
                "type": "object",
                "properties": {
                    "timestamp_start": {"type": "number"},
                    "description": {"type": "string"},
                    "reasoning": {"type": "string"},
                },
                "required": ["timestamp_start", "description", "reasoning"],
                "additionalProperties": false,
            }},
        },
        "required": ["title", "keywords", "summary_context", "summary_main_discussion",
                     "highlights", "attentions", "transcription_errors"],
        "additionalProperties": false,
    })
}

const STOPWORDS: &[&str] = &[
    "the", "a", "an", "and", "or", "but", "of", "to", "in", "on", "at", "for", "with", "is", "are",
    "was", "were", "be", "been", "it", "its", "this", "that", "these", "those", "i", "you", "we",
    "they", "he", "she", "me", "my", "our", "your", "so", "if", "then", "just", "not", "do",
    "does", "did", "have", "has", "had", "will", "can", "all", "what", "there", "here", "from",
    "up", "out", "about", "as", "by", "going", "gonna", "get", "got", "really", "very", "okay",
    "yeah", "oh", "um", "uh", "like", "now", "one", "some", "let", "us", "let's", "it's", "i'm",
    "we're", "that's", "don't", "no", "yes", "into", "over", "them", "his", "her", "their",
];

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// The local fallback: the transcript's most central sentences (degree centrality over
/// embedding similarities, TextRank's one-step form). Nothing is written anew, and the
/// summary says so.
pub fn extractive_summary(t: &Transcript, vectors: &[Vec<f32>], context: &str) -> ClipSummary {
    let n = t.segments.len().min(vectors.len());
    let mut centrality: Vec<(usize, f32)> = (0..n)
        .map(|i| {
            let score: f32 = (0..n)
                .filter(|&j| j != i)
                .map(|j| gt_embed::cosine(&vectors[i], &vectors[j]).max(0.0))
                .sum();
            // Very short sentences ("yeah", "okay") are poor summaries however central.
            let len = words(&t.segments[i].text).count() as f32;
            (i, score * (len / (len + 3.0)))
        })
        .collect();
    centrality.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let top: Vec<usize> = centrality.iter().take(3).map(|c| c.0).collect();
    let mut in_order = top.clone();
    in_order.sort_unstable();
    let main = in_order
        .iter()
        .map(|&i| t.segments[i].text.trim())
        .collect::<Vec<_>>()
        .join(" ");
    let title = top
        .first()
        .map(|&i| clip_words(t.segments[i].text.trim(), 10))
        .unwrap_or_default();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for s in &t.segments {
        for w in words(&s.text) {
            if w.len() > 2 && !STOPWORDS.contains(&w.as_str()) && !w.chars().all(char::is_numeric) {
                *counts.entry(w).or_default() += 1;
            }
        }
    }
    let mut keywords: Vec<(String, usize)> = counts.into_iter().collect();
    keywords.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let highlights = in_order
        .iter()
        .map(|&i| Moment {
            timestamp_start: t.segments[i].start,
            timestamp_end: t.segments[i].end,
            description: t.segments[i].text.trim().to_string(),
            reasoning: "extractive: one of the clip's most central sentences".into(),
        })
        .collect();
    let transcription_errors = t
        .segments
        .iter()
        .filter(|s| s.avg_logprob < -1.0 && !s.text.trim().is_empty())
        .map(|s| TranscriptionErrorNote {
            timestamp_start: s.start,
            description: s.text.trim().to_string(),
            reasoning: format!(
                "extractive: low recognition confidence (average log probability {:.2})",
                s.avg_logprob
            ),
        })
        .collect();
    let summary_context = if context.trim().is_empty() {
        main.clone()
    } else {
        format!("{} {}", clip_words(context.trim(), 60), main)
    };
    ClipSummary {
        title,
        keywords: keywords.into_iter().take(6).map(|k| k.0).collect(),
        summary_context,
        summary_main_discussion: main,
        highlights,
        attentions: Vec::new(),
        transcription_errors,
        method: SummaryMethod::Extractive,
        ..Default::default()
    }
}

/// The first `n` words of `text`, with an ellipsis if cut.
fn clip_words(text: &str, n: usize) -> String {
    let ws: Vec<&str> = text.split_whitespace().collect();
    if ws.len() <= n {
        ws.join(" ")
    } else {
        format!("{}…", ws[..n].join(" "))
    }
}

/// A transcript window in stream time.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// Overlapping windows over the segments: each grows until ~30 s or ~100 words, and the next
/// starts about half-way through the previous one, so every sentence appears whole in at least
/// one window.
pub fn windows_of(rows: &[SegmentRow]) -> Vec<Window> {
    let rows: Vec<&SegmentRow> = rows.iter().filter(|r| !r.text.trim().is_empty()).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < rows.len() {
        let start = rows[i].stream_start;
        let mut j = i;
        let mut n_words = 0;
        while j < rows.len() {
            let w = rows[j].text.split_whitespace().count();
            let too_long =
                rows[j].stream_end - start > WINDOW_SECONDS || n_words + w > WINDOW_WORDS;
            if j > i && too_long {
                break;
            }
            n_words += w;
            j += 1;
        }
        out.push(Window {
            start,
            end: rows[j - 1].stream_end,
            text: rows[i..j]
                .iter()
                .map(|r| r.text.trim())
                .collect::<Vec<_>>()
                .join(" "),
        });
        if j == rows.len() {
            break;
        }
        // Next window: from the first segment past the middle of this one (always advancing).
        let middle = start + (rows[j - 1].stream_end - start) / 2.0;
        let next = (i + 1..j)
            .find(|&k| rows[k].stream_start >= middle)
            .unwrap_or(j);
        i = next.max(i + 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use gt_types::transcript::TranscriptSegment;

    fn row(idx: i32, start: f64, end: f64, text: &str) -> SegmentRow {
        SegmentRow {
            idx,
            start,
            end,
            stream_start: start + 100.0,
            stream_end: end + 100.0,
            text: text.into(),
            edited: false,
        }
    }

    #[test]
    fn windows_overlap_cover_every_segment_and_respect_the_limits() {
        let rows: Vec<SegmentRow> = (0..20)
            .map(|i| {
                row(
                    i,
                    f64::from(i) * 5.0,
                    f64::from(i) * 5.0 + 4.5,
                    "one two three four five six",
                )
            })
            .collect();
        let w = windows_of(&rows);
        assert!(w.len() >= 6, "{w:?}");
        for win in &w {
            assert!(win.end - win.start <= WINDOW_SECONDS + 1e-9, "{win:?}");
            assert!(win.text.split_whitespace().count() <= WINDOW_WORDS);
        }
        // Overlap: each window starts before the previous one ends.
        for pair in w.windows(2) {
            assert!(
                pair[1].start < pair[0].end && pair[1].start > pair[0].start,
                "{pair:?}"
            );
        }
        // Coverage: every segment lies inside some window.
        for r in &rows {
            assert!(
                w.iter()
                    .any(|x| x.start <= r.stream_start && r.stream_end <= x.end)
            );
        }
        assert_eq!(w[0].start, 100.0);
        assert_eq!(w.last().unwrap().end, rows.last().unwrap().stream_end);
    }

    #[test]
    fn a_long_segment_is_a_window_of_its_own_and_empty_text_is_skipped() {
        let rows = vec![
            row(0, 0.0, 45.0, "long monologue"),
            row(1, 45.0, 46.0, "   "),
            row(2, 50.0, 52.0, "short"),
        ];
        let w = windows_of(&rows);
        assert_eq!(w.len(), 2, "{w:?}");
        assert_eq!(w[0].text, "long monologue");
        assert_eq!(w[1].text, "short");
        assert!(windows_of(&[]).is_empty());
    }

    #[test]
    fn extractive_summary_picks_central_sentences_in_order() {
        let seg = |s: f64, text: &str| TranscriptSegment {
            start: s,
            end: s + 2.0,
            text: text.into(),
            avg_logprob: -0.3,
            ..Default::default()
        };
        let t = Transcript {
            segments: vec![
                seg(0.0, "The castle boss has three phases."),
                seg(3.0, "Thanks for the follow!"),
                seg(6.0, "The boss in the castle is tricky."),
                seg(9.0, "Castle boss phases are tricky."),
            ],
            ..Default::default()
        };
        // Hand-made unit vectors: the three castle sentences point the same way.
        let v = |x: f32, y: f32| {
            let n = (x * x + y * y).sqrt();
            vec![x / n, y / n]
        };
        let vectors = vec![v(1.0, 0.1), v(0.0, 1.0), v(1.0, 0.2), v(1.0, 0.15)];
        let s = extractive_summary(&t, &vectors, "");
        assert_eq!(s.method, SummaryMethod::Extractive);
        assert_eq!(s.highlights.len(), 3);
        assert!(
            s.highlights
                .windows(2)
                .all(|w| w[0].timestamp_start < w[1].timestamp_start)
        );
        assert!(
            !s.summary_main_discussion.contains("follow"),
            "{}",
            s.summary_main_discussion
        );
        assert!(
            s.keywords.contains(&"castle".to_string()),
            "{:?}",
            s.keywords
        );
        assert!(!s.title.is_empty());
        let chained = extractive_summary(&t, &vectors, "Earlier: the forest level.");
        assert!(
            chained
                .summary_context
                .starts_with("Earlier: the forest level.")
        );
    }

    #[test]
    fn the_schema_requires_every_field_of_the_original() {
        let s = summary_schema();
        let req: Vec<&str> = s["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for f in [
            "title",
            "keywords",
            "summary_context",
            "summary_main_discussion",
            "highlights",
            "attentions",
            "transcription_errors",
        ] {
            assert!(req.contains(&f), "{f}");
            assert!(s["properties"].get(f).is_some(), "{f}");
        }
        // What strict mode returns parses into our type.
        let reply = json!({"title": "t", "keywords": [], "summary_context": "c",
            "summary_main_discussion": "m", "highlights": [{"timestamp_start": 1.0,
            "timestamp_end": 2.0, "description": "d", "reasoning": "r"}], "attentions": [],
            "transcription_errors": [{"timestamp_start": 1.0, "description": "d", "reasoning": "r"}]});
        let parsed: ClipSummary = serde_json::from_value(reply).unwrap();
        assert_eq!(parsed.highlights[0].timestamp_end, 2.0);
    }
}
