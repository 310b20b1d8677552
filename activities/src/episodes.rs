//! Episode proposals from the transcripts and the summaries' highlights, and what review
//! decides about them.
//!
//! Talk runs (transcribed speech joined across pauses shorter than `break_gap`) become
//! episodes; runs longer than `max_length` are split at their longest pauses, runs shorter than
//! `min_length` are dropped. Only transcript segments with words count as talk, so music or
//! noise that reached the speech map never becomes an episode. Each proposal gets a title and
//! description from the series templates, `tracks` (ISO-8601 durations), a cut list v1.0.0 at
//! the source's own frame rate, and chapters from the highlights inside it, each moved to the
//! start of the words it points at. The description lists the chapters only when YouTube would
//! accept them (at least three, the first at 0:00, each at least 10 s long).

use std::sync::Arc;

use gt_store::Store;
use gt_store::insight::SeriesTemplates;
use gt_types::chat::ChatPeak;
use gt_types::episode::{CUT_LIST_VERSION, Chapter, ClipSummary, EpisodeParams, ReviewStatus};
use gt_types::records::{Interval, TaskStatus, TaskType, VideoClip};
use gt_types::transcript::Transcript;
use gt_types::workflow::{
    ApplyReview, EpisodeEdit, EpisodePublishInput, EpisodePublishOutput, ProposeEpisodesInput,
    ProposedEpisode, ProposedEpisodes, RecordReview, TaskUpdate,
};
use serde_json::{Value, json};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::chat_peaks::{CHAT_REACTION_SECONDS, PeakParams, StreamChat, chat_peaks};
use crate::{invalid_input, store_error};

/// Frame rate used for clips without video (an audio-only recording still gets a cut list).
pub const AUDIO_ONLY_FPS: f64 = 60.0;
/// Chapters closer together than this are merged (YouTube wants at least 10 s each).
pub const MIN_CHAPTER_SECONDS: f64 = 10.0;
/// YouTube shows description chapters only when there are at least this many.
pub const MIN_YOUTUBE_CHAPTERS: usize = 3;

pub struct EpisodeActivitiesImpl {
    pub store: Arc<dyn Store>,
}

impl EpisodeActivitiesImpl {
    /// Chat's peaks over the stream (stored on the stream for the editor), aligned by the
    /// stream's start; none when the stream has no start time or no chat was captured.
    async fn chat_peaks(
        &self,
        user_id: &str,
        stream_id: &str,
        clips: &[VideoClip],
    ) -> Result<Vec<ChatPeak>, ActivityError> {
        let Some(started) = self
            .store
            .stream_start(user_id, stream_id)
            .await
            .map_err(store_error)?
        else {
            return Ok(Vec::new());
        };
        let duration = clips
            .iter()
            .filter_map(|c| Some(c.start_time? + c.metadata.as_ref()?.format.duration))
            .fold(0.0, f64::max);
        let until = started + chrono::TimeDelta::milliseconds((duration * 1000.0) as i64);
        let lines: Vec<StreamChat> = self
            .store
            .chat_between(user_id, started, until)
            .await
            .map_err(store_error)?
            .into_iter()
            .map(|l| StreamChat {
                at: (l.timestamp - started).num_milliseconds() as f64 / 1000.0,
                user: l.user_name,
                message: l.message,
                emotes: l.emote_count.max(0) as u32,
                emote_names: l.emotes,
            })
            .collect();
        let peaks = chat_peaks(&lines, duration, &PeakParams::default());
        self.store
            .set_stream_chat_highlights(user_id, stream_id, &peaks)
            .await
            .map_err(store_error)?;
        Ok(peaks)
    }
}

#[activities]
impl EpisodeActivitiesImpl {
    #[activity(definition = gt_workflows::contracts::ProposeEpisodes)]
    pub async fn propose_episodes(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: ProposeEpisodesInput,
    ) -> Result<ProposedEpisodes, ActivityError> {
        input.params.validate().map_err(invalid_input)?;
        let clips = self
            .store
            .stream_clips(&input.user_id, &input.stream_id)
            .await
            .map_err(store_error)?;
        let templates = self
            .store
            .series_templates(&input.user_id, &input.stream_id)
            .await
            .map_err(store_error)?;
        let peaks = self
            .chat_peaks(&input.user_id, &input.stream_id, &clips)
            .await?;
        let drafts = propose(&input.stream_id, &clips, &templates, &input.params, &peaks);
        let records: Vec<Value> = drafts.iter().map(|d| d.record.clone()).collect();
        self.store
            .replace_proposals(&input.user_id, &input.stream_id, &records)
            .await
            .map_err(store_error)?;
        Ok(ProposedEpisodes {
            episodes: drafts.into_iter().map(|d| d.summary).collect(),
        })
    }

    #[activity(definition = gt_workflows::contracts::RecordReviewActivity)]
    pub async fn record_review(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: RecordReview,
    ) -> Result<(), ActivityError> {
        for (ids, status) in [
            (&input.approve, ReviewStatus::Approved),
            (&input.reject, ReviewStatus::Rejected),
        ] {
            self.store
                .set_review_status(&input.user_id, &input.stream_id, ids, status)
                .await
                .map_err(store_error)?;
        }
        Ok(())
    }

    #[activity(definition = gt_workflows::contracts::ApplyReviewActivity)]
    pub async fn apply_review(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: ApplyReview,
    ) -> Result<(), ActivityError> {
        let mut edits: Vec<(String, Value)> = Vec::with_capacity(input.edits.len());
        let any_moved = input.edits.iter().any(EpisodeEdit::moves_range);
        // A moved range gets its cut list, tracks and (unless the edit sets them) chapters
        // made again, the way proposals make them.
        let context = if any_moved {
            let clips = self
                .store
                .stream_clips(&input.user_id, &input.stream_id)
                .await
                .map_err(store_error)?;
            let proposals = self
                .store
                .proposals(&input.user_id, &input.stream_id)
                .await
                .map_err(store_error)?;
            let peaks = self
                .store
                .stream_chat_highlights(&input.user_id, &input.stream_id)
                .await
                .map_err(store_error)?;
            Some((clips, proposals, peaks))
        } else {
            None
        };
        for e in &input.edits {
            let mut patch = e.patch();
            if let (true, Some((clips, proposals, peaks))) = (e.moves_range(), &context) {
                let current = proposals.iter().find(|p| p["id"] == e.id.as_str());
                let bound = |k: &str| current.and_then(|p| p[k].as_f64()).unwrap_or(0.0);
                let duration = clips
                    .iter()
                    .filter_map(|c| Some(c.start_time? + c.metadata.as_ref()?.format.duration))
                    .fold(0.0, f64::max);
                let (start, end) = e
                    .range(bound("start_time"), bound("end_time"), duration)
                    .map_err(invalid_input)?;
                patch["start_time"] = json!(start);
                patch["end_time"] = json!(end);
                patch["tracks"] = json!([{"start": iso_duration(start), "end": iso_duration(end)}]);
                patch["cut_list"] = cut_list(clips, start, end);
                if e.chapters.is_none() {
                    let talk = stream_talk(clips);
                    patch["chapters"] = json!(chapters(clips, &talk, start, end, peaks));
                }
            }
            edits.push((e.id.clone(), patch));
        }
        self.store
            .apply_review(
                &input.user_id,
                &input.stream_id,
                &edits,
                &input.approve,
                &input.reject,
            )
            .await
            .map_err(store_error)
    }

    #[activity(definition = gt_workflows::contracts::RecordPublishRequest)]
    pub async fn record_publish_request(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: EpisodePublishInput,
    ) -> Result<EpisodePublishOutput, ActivityError> {
        // Rendering and upload are not built yet: the publish request is recorded as a task
        // the streamer sees, and nothing else happens.
        let info = ctx.info();
        self.store
            .upsert_task(&TaskUpdate {
                user_id: input.user_id.clone(),
                task_id: format!("publish-{}", input.episode_id),
                task_type: TaskType::Upload,
                status: TaskStatus::Pending,
                record_id: input.episode_id.clone(),
                workflow_id: info.workflow_id.clone().unwrap_or_default(),
                message: Some("approved for publishing; rendering and upload come later".into()),
                progress: None,
            })
            .await
            .map_err(store_error)?;
        Ok(EpisodePublishOutput {
            episode_id: input.episode_id,
            status: "approved".into(),
            video_id: None,
            render_key: None,
        })
    }
}

/// A proposal: the episode record to store and its short form for the workflow.
#[derive(Debug, Clone)]
pub struct Draft {
    pub record: Value,
    pub summary: ProposedEpisode,
}

/// What was said in the whole stream: every transcript segment with words, in stream seconds,
/// sorted, overlaps merged.
pub fn stream_talk(clips: &[VideoClip]) -> Vec<Interval> {
    let mut all: Vec<Interval> = clips
        .iter()
        .filter_map(|c| {
            let offset = c.start_time?;
            let t: Transcript = serde_json::from_value(c.transcription.clone()?).ok()?;
            Some(
                t.segments
                    .into_iter()
                    .filter(|s| s.text.chars().any(char::is_alphanumeric))
                    .map(move |s| Interval {
                        start: s.start + offset,
                        end: s.end.max(s.start) + offset,
                    }),
            )
        })
        .flatten()
        .collect();
    all.sort_by(|a, b| a.start.total_cmp(&b.start));
    let mut merged: Vec<Interval> = Vec::new();
    for s in all {
        match merged.last_mut() {
            Some(last) if s.start <= last.end => last.end = last.end.max(s.end),
            _ => merged.push(s),
        }
    }
    merged
}

/// Talk runs: speech joined across pauses shorter than `break_gap`, long runs split at their
/// longest pauses, short ones dropped.
pub fn talk_runs(speech: &[Interval], p: &EpisodeParams) -> Vec<Interval> {
    let mut runs: Vec<Vec<Interval>> = Vec::new();
    for s in speech {
        match runs.last_mut() {
            Some(run) if s.start - run.last().unwrap().end < p.break_gap => run.push(*s),
            _ => runs.push(vec![*s]),
        }
    }
    let mut out = Vec::new();
    let mut stack: Vec<Vec<Interval>> = runs.into_iter().rev().collect();
    while let Some(run) = stack.pop() {
        let (start, end) = (run[0].start, run.last().unwrap().end);
        if end - start > p.max_length && run.len() > 1 {
            // Split at the longest pause (ties: the one nearest the middle).
            let mid = (start + end) / 2.0;
            let cut = (1..run.len())
                .max_by(|&a, &b| {
                    let gap = |i: usize| run[i].start - run[i - 1].end;
                    gap(a).total_cmp(&gap(b)).then(
                        (run[b].start - mid)
                            .abs()
                            .total_cmp(&(run[a].start - mid).abs()),
                    )
                })
                .unwrap();
            let (left, right) = run.split_at(cut);
            stack.push(right.to_vec());
            stack.push(left.to_vec());
            continue;
        }
        if end - start >= p.min_length {
            out.push(Interval { start, end });
        }
    }
    out
}

/// `PT1M2.5S`-style duration, as the front end writes episode tracks.
pub fn iso_duration(seconds: f64) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    let (h, m, s) = (ms / 3_600_000, ms / 60_000 % 60, ms % 60_000);
    let mut out = String::from("PT");
    if h > 0 {
        out.push_str(&format!("{h}H"));
    }
    if m > 0 {
        out.push_str(&format!("{m}M"));
    }
    if s > 0 || (h == 0 && m == 0) {
        if s % 1000 == 0 {
            out.push_str(&format!("{}S", s / 1000));
        } else {
            out.push_str(&format!(
                "{}S",
                format!("{:.3}", s as f64 / 1000.0).trim_end_matches('0')
            ));
        }
    }
    out
}

/// `m:ss` / `h:mm:ss` for chapter lists in descriptions.
pub fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).floor() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// The clip's video frame rate (or [`AUDIO_ONLY_FPS`]).
fn fps_of(clip: &VideoClip) -> f64 {
    clip.metadata
        .as_ref()
        .and_then(|m| m.video_tracks().find_map(|v| v.fps))
        .filter(|f| f.is_finite() && *f > 0.0)
        .unwrap_or(AUDIO_ONLY_FPS)
}

fn clip_duration(clip: &VideoClip) -> f64 {
    clip.metadata.as_ref().map_or(0.0, |m| m.format.duration)
}

/// Cut list v1.0.0 for stream interval `[start, end)`: one input per clip it touches, frame
/// numbers at that clip's own frame rate (end exclusive), sections played in order.
pub fn cut_list(clips: &[VideoClip], start: f64, end: f64) -> Value {
    let mut inputs = Vec::new();
    let mut track = Vec::new();
    for clip in clips {
        let Some(offset) = clip.start_time else {
            continue;
        };
        let (a, b) = (
            (start - offset).max(0.0),
            (end - offset).min(clip_duration(clip)),
        );
        if b <= a {
            continue;
        }
        let fps = fps_of(clip);
        let start_frame = (a * fps).floor() as u64;
        let end_frame = ((b * fps).ceil() as u64).max(start_frame + 1);
        track.push(json!({"mediaIndex": inputs.len(), "sectionIndex": 0}));
        inputs.push(json!({
            "s3Location": clip.key,
            "sections": [{"startFrame": start_frame, "endFrame": end_frame}],
        }));
    }
    json!({"version": CUT_LIST_VERSION, "inputMedia": inputs, "outputTrack": track})
}

/// Chapters inside `[start, end)` from the clips' highlights and chat's peaks (stream time),
/// the first at 0. A chat peak marks the moment [`CHAT_REACTION_SECONDS`] before the burst;
/// one with a summary highlight shortly before or after that moment ([`CHAT_FUSION_BEFORE`],
/// [`CHAT_FUSION_AFTER`]) only confirms it (the summary's title is kept). Each mark is moved to the start of the talk it falls in (or the next talk
/// after a pause); one that points at no words inside the episode is dropped, as is one less
/// than [`MIN_CHAPTER_SECONDS`] after the previous chapter or before the episode's end.
pub fn chapters(
    clips: &[VideoClip],
    talk: &[Interval],
    start: f64,
    end: f64,
    peaks: &[ChatPeak],
) -> Vec<Chapter> {
    let summary_marks: Vec<(f64, String)> = clips
        .iter()
        .filter_map(|c| {
            let offset = c.start_time?;
            let s: ClipSummary = serde_json::from_value(c.summary.clone()?).ok()?;
            Some(
                s.highlights
                    .into_iter()
                    .map(move |h| (h.timestamp_start + offset, h.description)),
            )
        })
        .flatten()
        .collect();
    let chat_marks: Vec<(f64, String)> = peaks
        .iter()
        .map(|p| ((p.start - CHAT_REACTION_SECONDS).max(0.0), chat_title(p)))
        .filter(|(t, _)| {
            summary_marks
                .iter()
                .all(|(s, _)| !(t - CHAT_FUSION_BEFORE..=t + CHAT_FUSION_AFTER).contains(s))
        })
        .collect();
    let mut marks: Vec<(f64, String)> = summary_marks
        .into_iter()
        .chain(chat_marks)
        .filter_map(|(t, title)| {
            let words = talk.iter().find(|s| s.end > t)?;
            let at = if words.start > t { words.start } else { t };
            (at >= start - 1.0 && at < end).then_some((at, title))
        })
        .collect();
    marks.sort_by(|a, b| a.0.total_cmp(&b.0));
    let length = end - start;
    let mut out: Vec<Chapter> = Vec::new();
    for (t, title) in marks {
        let at = (t - start).max(0.0);
        let title = chapter_title(&title);
        if out.is_empty() {
            out.push(Chapter { start: 0.0, title });
        } else if at - out.last().unwrap().start >= MIN_CHAPTER_SECONDS
            && length - at >= MIN_CHAPTER_SECONDS
        {
            out.push(Chapter { start: at, title });
        }
    }
    if out.is_empty() {
        out.push(Chapter {
            start: 0.0,
            title: "Start".into(),
        });
    }
    out
}

/// Whether YouTube accepts `chapters` as description chapters of a video `duration` seconds
/// long: at least three, the first at 0:00, each at least 10 s long.
pub fn youtube_accepts(chapters: &[Chapter], duration: f64) -> bool {
    chapters.len() >= MIN_YOUTUBE_CHAPTERS
        && chapters[0].start == 0.0
        && chapters
            .iter()
            .map(|c| c.start)
            .chain([duration])
            .collect::<Vec<_>>()
            .windows(2)
            .all(|w| w[1] - w[0] >= MIN_CHAPTER_SECONDS)
}

/// A summary highlight from this long before a chat peak's moment to [`CHAT_FUSION_AFTER`]
/// after it is the moment chat reacted to (chat follows what happened, so the window reaches
/// further back than forward).
pub const CHAT_FUSION_BEFORE: f64 = 20.0;
pub const CHAT_FUSION_AFTER: f64 = 10.0;

fn chat_title(peak: &ChatPeak) -> String {
    if peak.label.is_empty() {
        "Chat goes wild".into()
    } else {
        format!("Chat: {}", peak.label)
    }
}

fn chapter_title(text: &str) -> String {
    let t = text.trim().trim_end_matches(['.', '!', '?']);
    let words: Vec<&str> = t.split_whitespace().collect();
    if words.len() > 8 {
        format!("{}…", words[..8].join(" "))
    } else {
        words.join(" ")
    }
}

fn fill(template: &str, vars: &[(&str, String)]) -> String {
    let mut out = template.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("${{{k}}}"), v);
    }
    out
}

/// The stream's episode proposals.
pub fn propose(
    stream_id: &str,
    clips: &[VideoClip],
    templates: &SeriesTemplates,
    params: &EpisodeParams,
    peaks: &[ChatPeak],
) -> Vec<Draft> {
    let talk = stream_talk(clips);
    let runs = talk_runs(&talk, params);
    let total = runs.len();
    runs.into_iter()
        .enumerate()
        .map(|(n, run)| {
            let order_index = templates.max_order_index + n as i64 + 1;
            let chapters = chapters(clips, &talk, run.start, run.end, peaks);
            // The summary title of the clip where the episode starts, for the template.
            let summary_title = clips
                .iter()
                .rfind(|c| c.start_time.is_some_and(|s| s <= run.start))
                .and_then(|c| serde_json::from_value::<ClipSummary>(c.summary.clone()?).ok())
                .map(|s| s.title)
                .unwrap_or_default();
            let vars = [
                ("title", templates.stream_title.clone()),
                ("episode_order_index", order_index.to_string()),
                ("stream_description", templates.stream_description.clone()),
                ("summary_title", summary_title),
                ("part", format!("{} of {total}", n + 1)),
            ];
            let title = fill(&templates.title_template, &vars);
            let mut description = fill(&templates.description_template, &vars);
            if youtube_accepts(&chapters, run.end - run.start) {
                let list = chapters
                    .iter()
                    .map(|c| format!("{} {}", clock(c.start), c.title))
                    .collect::<Vec<_>>()
                    .join("\n");
                description = format!("{}\n\n{list}", description.trim_end())
                    .trim()
                    .to_string();
            }
            let id = format!("{stream_id}-ep-{}", (run.start * 1000.0).round() as u64);
            let record = json!({
                "id": id,
                "title": title,
                "description": description,
                "order_index": order_index,
                "tracks": [{"start": iso_duration(run.start), "end": iso_duration(run.end)}],
                "series_id": templates.series_id,
                "cut_list": cut_list(clips, run.start, run.end),
                "chapters": chapters,
                "start_time": run.start,
                "end_time": run.end,
                "tags": [],
            });
            Draft {
                summary: ProposedEpisode {
                    id,
                    title,
                    start: run.start,
                    end: run.end,
                    chapters: chapters.len() as u32,
                },
                record,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gt_types::media::{FormatInfo, MediaInfo, SpeechMap, StreamInfo};

    fn iv(start: f64, end: f64) -> Interval {
        Interval { start, end }
    }

    #[test]
    fn talk_runs_break_at_long_pauses_split_long_talk_and_drop_short_talk() {
        let p = EpisodeParams {
            break_gap: 20.0,
            min_length: 10.0,
            max_length: 100.0,
        };
        // 0–50 talk (short pauses), 30 s break, 80–95 talk, 25 s break, a 3 s blip.
        let speech = [
            iv(0.0, 20.0),
            iv(25.0, 50.0),
            iv(80.0, 95.0),
            iv(120.0, 123.0),
        ];
        assert_eq!(talk_runs(&speech, &p), vec![iv(0.0, 50.0), iv(80.0, 95.0)]);
        // 0–250 in pieces: split at the longest pauses until each part is ≤ 100 s.
        let long = [
            iv(0.0, 60.0),
            iv(62.0, 90.0),
            iv(99.0, 180.0),
            iv(185.0, 250.0),
        ];
        let runs = talk_runs(&long, &p);
        assert!(runs.iter().all(|r| r.end - r.start <= 100.0), "{runs:?}");
        assert_eq!(runs.first().unwrap().start, 0.0);
        assert_eq!(runs.last().unwrap().end, 250.0);
        assert_eq!(
            runs[0],
            iv(0.0, 90.0),
            "first cut at the 9 s pause: {runs:?}"
        );
    }

    #[test]
    fn iso_durations_and_clocks() {
        assert_eq!(iso_duration(62.5), "PT1M2.5S");
        assert_eq!(iso_duration(0.0), "PT0S");
        assert_eq!(iso_duration(3600.0), "PT1H");
        assert_eq!(iso_duration(3723.25), "PT1H2M3.25S");
        assert_eq!(clock(65.9), "1:05");
        assert_eq!(clock(3725.0), "1:02:05");
    }

    /// A clip whose transcript has a segment of words over each `talk` interval (clip time);
    /// its speech map says the same.
    fn clip(
        key: &str,
        start: f64,
        duration: f64,
        fps: Option<f64>,
        talk: Vec<Interval>,
    ) -> VideoClip {
        let transcript = json!({
            "language": "en",
            "text": "",
            "segments": talk.iter().map(|t| json!({
                "start": t.start, "end": t.end, "text": "some words", "tokens": [1],
                "temperature": 0.0, "avg_logprob": -0.1, "compression_ratio": 1.0,
                "no_speech_prob": 0.0,
            })).collect::<Vec<_>>(),
        });
        let mut streams = vec![];
        if let Some(fps) = fps {
            streams.push(StreamInfo {
                index: 0,
                codec_type: gt_types::media::CodecType::Video,
                codec_name: "h264".into(),
                duration: None,
                bit_rate: None,
                sample_rate: None,
                channels: None,
                width: Some(1280),
                height: Some(720),
                fps: Some(fps),
                frame_rate: None,
                keyframe_interval: None,
                language: None,
                title: None,
            });
        }
        VideoClip {
            id: key.into(),
            key: key.into(),
            start_time: Some(start),
            metadata: Some(MediaInfo {
                format: FormatInfo {
                    duration,
                    ..Default::default()
                },
                streams,
            }),
            speech: Some(SpeechMap {
                speech: talk,
                ..Default::default()
            }),
            transcription: Some(transcript),
            ..Default::default()
        }
    }

    #[test]
    fn cut_lists_use_each_clips_frame_rate_and_span_clip_boundaries() {
        let clips = vec![
            clip("s/a.mkv", 0.0, 100.0, Some(30.0), vec![]),
            clip("s/b.mkv", 100.0, 100.0, Some(60.0), vec![]),
        ];
        let c = cut_list(&clips, 90.0, 110.5);
        assert_eq!(c["version"], "1.0.0");
        assert_eq!(c["inputMedia"][0]["s3Location"], "s/a.mkv");
        assert_eq!(
            c["inputMedia"][0]["sections"][0],
            json!({"startFrame": 2700, "endFrame": 3000})
        );
        assert_eq!(
            c["inputMedia"][1]["sections"][0],
            json!({"startFrame": 0, "endFrame": 630})
        );
        assert_eq!(
            c["outputTrack"],
            json!([{"mediaIndex": 0, "sectionIndex": 0}, {"mediaIndex": 1, "sectionIndex": 0}])
        );
        // Audio-only clips still get frames, at the documented rate.
        let audio = vec![clip("s/c.m4a", 0.0, 10.0, None, vec![])];
        assert_eq!(
            cut_list(&audio, 1.0, 2.0)["inputMedia"][0]["sections"][0]["endFrame"],
            120
        );
    }

    fn summary(highlights: &[(f64, &str)]) -> Value {
        json!({"title": "Castle", "keywords": [], "summary_context": "",
            "summary_main_discussion": "", "attentions": [], "transcription_errors": [],
            "highlights": highlights.iter().map(|(t, d)| json!({
                "timestamp_start": t, "timestamp_end": t + 1.0, "description": d, "reasoning": ""
            })).collect::<Vec<_>>()})
    }

    fn templates() -> SeriesTemplates {
        SeriesTemplates {
            series_id: Some("ser".into()),
            stream_title: "Castle night".into(),
            stream_description: "We storm the castle.".into(),
            title_template: "${title} - Episode ${episode_order_index}".into(),
            description_template: "${stream_description}".into(),
            max_order_index: 4,
        }
    }

    #[test]
    fn proposals_fill_templates_and_chapters_from_highlights() {
        let mut a = clip(
            "s/a.mkv",
            0.0,
            300.0,
            Some(30.0),
            vec![
                iv(5.0, 40.0),
                iv(45.0, 60.0),
                iv(62.0, 100.0),
                iv(240.0, 290.0),
            ],
        );
        a.summary = Some(summary(&[
            (8.0, "The boss has three phases."),
            (30.0, "Second phase"),
            (33.0, "too close"),
            // In the pause before the talk at 45: the chapter starts with the words.
            (41.0, "After the pause"),
            // 8 s before the episode ends: too short for a chapter.
            (92.0, "near the end"),
            (250.0, "Next episode moment"),
        ]));
        let p = EpisodeParams {
            break_gap: 20.0,
            min_length: 10.0,
            max_length: 600.0,
        };
        let drafts = propose("s", &[a], &templates(), &p, &[]);
        assert_eq!(drafts.len(), 2);
        let first = &drafts[0].record;
        assert_eq!(first["title"], "Castle night - Episode 5");
        assert_eq!(drafts[1].record["title"], "Castle night - Episode 6");
        assert_eq!(
            first["tracks"],
            json!([{"start": "PT5S", "end": "PT1M40S"}])
        );
        let chapters: Vec<Chapter> = serde_json::from_value(first["chapters"].clone()).unwrap();
        let starts: Vec<f64> = chapters.iter().map(|c| c.start).collect();
        assert_eq!(starts, vec![0.0, 25.0, 40.0], "{chapters:?}");
        assert_eq!(chapters[0].title, "The boss has three phases");
        assert_eq!(chapters[2].title, "After the pause");
        assert!(youtube_accepts(&chapters, 95.0));
        let description = first["description"].as_str().unwrap();
        assert_eq!(
            description,
            "We storm the castle.\n\n0:00 The boss has three phases\n0:25 Second phase\n0:40 After the pause"
        );
        // One chapter is no chapter list.
        let second = &drafts[1].record;
        assert_eq!(second["chapters"].as_array().unwrap().len(), 1);
        assert_eq!(second["description"], "We storm the castle.");
        // Same input, same ids: re-proposing is idempotent.
        assert_eq!(first["id"], "s-ep-5000");
    }

    fn peak(start: f64, label: &str) -> ChatPeak {
        ChatPeak {
            start,
            end: start + 10.0,
            score: 8.0,
            messages: 30,
            unique_chatters: 25,
            emotes: 20,
            commands: 1,
            label: label.into(),
        }
    }

    /// A chat peak far from every summary highlight becomes a chapter at the moment chat
    /// reacted to (5 s before the burst, moved to the start of that talk); one near a summary
    /// highlight only confirms it.
    #[test]
    fn chat_peaks_add_chapters_unless_a_summary_highlight_is_there() {
        let mut a = clip(
            "s/a.mkv",
            0.0,
            300.0,
            Some(30.0),
            vec![iv(0.0, 100.0), iv(110.0, 200.0)],
        );
        a.summary = Some(summary(&[(5.0, "Intro"), (150.0, "The boss fight")]));
        let talk = stream_talk(std::slice::from_ref(&a));
        let none = chapters(std::slice::from_ref(&a), &talk, 0.0, 200.0, &[]);
        let with = chapters(
            std::slice::from_ref(&a),
            &talk,
            0.0,
            200.0,
            &[
                peak(65.0, "PogChamp"),
                peak(160.0, "GG"),
                peak(112.0, "LUL"),
            ],
        );
        let show = |c: &[Chapter]| {
            c.iter()
                .map(|c| (c.start, c.title.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            show(&none),
            vec![
                (0.0, "Intro".to_string()),
                (150.0, "The boss fight".to_string())
            ]
        );
        assert_eq!(
            show(&with),
            vec![
                (0.0, "Intro".to_string()),
                (60.0, "Chat: PogChamp".to_string()),
                // 107 s is in the pause: the chapter starts with the talk at 110.
                (110.0, "Chat: LUL".to_string()),
                (150.0, "The boss fight".to_string()),
            ],
            "GG at 160 s is the boss fight's moment, not a chapter of its own"
        );
    }

    #[test]
    fn youtube_chapter_rules() {
        let ch = |starts: &[f64]| -> Vec<Chapter> {
            starts
                .iter()
                .map(|&start| Chapter {
                    start,
                    title: "x".into(),
                })
                .collect()
        };
        assert!(youtube_accepts(&ch(&[0.0, 10.0, 20.0]), 30.0));
        assert!(!youtube_accepts(&ch(&[0.0, 10.0]), 30.0), "two");
        assert!(
            !youtube_accepts(&ch(&[1.0, 11.0, 21.0]), 40.0),
            "not at 0:00"
        );
        assert!(
            !youtube_accepts(&ch(&[0.0, 9.0, 20.0]), 40.0),
            "one too short"
        );
        assert!(
            !youtube_accepts(&ch(&[0.0, 10.0, 25.0]), 34.0),
            "the last too short"
        );
    }

    #[test]
    fn speech_without_words_proposes_nothing() {
        // The speech map says talk (music on the mic), the transcript has no words.
        let mut music = clip("s/m.mkv", 0.0, 600.0, None, vec![]);
        music.speech = Some(SpeechMap {
            speech: vec![iv(0.0, 600.0)],
            ..Default::default()
        });
        let drafts = propose("s", &[music], &templates(), &EpisodeParams::default(), &[]);
        assert!(drafts.is_empty());
    }
}
