//! The GPU pool's activity: transcription of a clip's speech audio.
//!
//! The speech audio is cut into chunks of at most one Whisper window (30 s) at speech-segment
//! boundaries, or at the quietest moment of a longer stretch of talk, so no sentence straddles
//! two windows (Whisper's times go wrong there). Chunks are decoded in `lanes` side by side
//! (on CPUs several one-thread lanes beat one many-thread decode), each lane taking the next
//! chunk when it is free. Only a clip's first chunk is prompted (with the previous clip's tail,
//! or the stream's prompt): prompting every chunk with the one before made Whisper copy the
//! prompt instead of transcribing the audio (WER 0.11 → 0.34 on a real voice with repeated
//! sentences), and prompting within lanes ([`ChunkContext::Conditioned`]) saved 2 errors in
//! 415 words of bench/transcribe, within its noise, for 14 % more time. A prompted chunk can
//! come back with only its first sentence (whisper.cpp then ends a segment at the chunk's end:
//! 3 of 14 chunks on the bench's audio), so every chunk is decoded again from its last word
//! while sound goes on after it ([`decode_chunk`]).
//! After each chunk the transcript so far is written to the artifacts store and the number of
//! finished chunks is heartbeated; a retried attempt reads that number from its heartbeat
//! details and continues from the stored partial transcript. [`crate::timing`] turns each
//! chunk's tokens into words and segments in
//! clip time; rows get stream time too.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use gt_store::{BlobStore, PipelineStore, user_segment};
use gt_types::media::SpeechAudio;
use gt_types::transcript::{
    TRANSCRIPTION_VERSION, Transcript, TranscriptSegment, fingerprint, tail_of,
};
use gt_types::workflow::{TranscribeClip, TranscribedClip};
use serde::{Deserialize, Serialize};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use gt_worker_kit::wav::read_wav;
use gt_worker_kit::{invalid_input, store_error};

use crate::engine::{Decoded, Session, Transcriber};
use crate::timing::{frame_levels, sounds, timed_segments};

/// Characters of context handed from one chunk (or clip) to the next.
pub const PROMPT_CHARS: usize = 200;

/// Longest chunk: one Whisper window.
pub const MAX_CHUNK_S: f64 = 30.0;

/// Longest chunk unless configured (`GT_TRANSCRIBE_CHUNK_S`): with the encoder fitted to each
/// chunk, shorter chunks cost less per second of speech (attention grows with the square of
/// the window), down to where Whisper lacks context (measured in bench/transcribe). On speech
/// audio, where sentences follow each other 0.25 s apart, a 30 s chunk took 4.5 times as long
/// as a 15 s one, which no accuracy measured there made up for.
pub const DEFAULT_CHUNK_S: f64 = 15.0;

pub struct GpuActivitiesImpl {
    pub store: Arc<dyn PipelineStore>,
    pub artifacts: Arc<dyn BlobStore>,
    pub transcriber: Arc<Transcriber>,
    /// Most seconds of speech audio per chunk (the resume granularity; at most one window).
    pub chunk_s: f64,
    /// Chunks decoded at once.
    pub lanes: usize,
    /// Threads per lane.
    pub threads_per_lane: usize,
}

/// `[start, end)` seconds of the speech audio.
pub type Chunk = (f64, f64);

/// Splits the speech audio into chunks of at most `max_s` seconds: whole speech segments where
/// they fit, and a segment longer than that at its quietest 0.2 s in the second half of each
/// window (`levels`: 10 ms loudness of the speech audio).
pub fn plan_chunks(audio: &SpeechAudio, levels: &[f64], max_s: f64) -> Vec<Chunk> {
    let max_s = max_s.clamp(1.0, MAX_CHUNK_S);
    let mut chunks = Vec::new();
    let mut current: Option<Chunk> = None;
    for s in &audio.segments {
        let (a, b) = (s.offset, s.offset + (s.end - s.start));
        current = match current {
            Some((start, _)) if b - start <= max_s => Some((start, b)),
            Some(done) => {
                chunks.push(done);
                Some((a, b))
            }
            None => Some((a, b)),
        };
        // Too long for one window on its own: cut at quiet moments.
        while let Some((start, end)) = current
            && end - start > max_s
        {
            let cut = quietest(levels, start + max_s / 2.0, start + max_s);
            chunks.push((start, cut));
            current = Some((cut, end));
        }
    }
    chunks.extend(current);
    chunks
}

/// Shortest chunk [`plan_for_lanes`] makes to even out the lanes: shorter ones give Whisper
/// too little context.
pub const MIN_BALANCED_CHUNK_S: f64 = 8.0;

/// [`plan_chunks`], with a chunk count that is a multiple of `lanes` where one is possible
/// with chunks of at least [`MIN_BALANCED_CHUNK_S`]: with the encoder fitted to each chunk's
/// length, 6 chunks of 23 s on 2 lanes finish together, where 5 of 27 s leave one lane idle
/// for the last.
pub fn plan_for_lanes(audio: &SpeechAudio, levels: &[f64], max_s: f64, lanes: usize) -> Vec<Chunk> {
    let base = plan_chunks(audio, levels, max_s);
    let lanes = lanes.max(1);
    if lanes == 1 || base.len().is_multiple_of(lanes) {
        return base;
    }
    let total: f64 = base.iter().map(|(a, b)| b - a).sum();
    let max_s = max_s.clamp(1.0, MAX_CHUNK_S);
    let target = base.len().next_multiple_of(lanes);
    if total / (target as f64) < MIN_BALANCED_CHUNK_S {
        return base;
    }
    // Chunk lengths from the even share upwards, in 0.25 s steps: the first plan whose count
    // divides among the lanes.
    let mut limit = total / target as f64;
    while limit < max_s {
        let plan = plan_chunks(audio, levels, limit);
        if plan.len().is_multiple_of(lanes) && plan.len() <= target {
            return plan;
        }
        limit += 0.25;
    }
    base
}

/// The middle of the quietest 0.2 s in `[a, b]` (speech-audio seconds), the latest of equals.
fn quietest(levels: &[f64], a: f64, b: f64) -> f64 {
    const WIDTH: usize = 20;
    let (fa, fb) = (
        (a * 100.0) as usize,
        ((b * 100.0) as usize).min(levels.len()),
    );
    if fb < fa + WIDTH {
        return b;
    }
    // Of equally quiet moments (digital silence) the latest: the longest chunk, the fewest
    // windows.
    let sum = |k: usize| levels[k..k + WIDTH].iter().sum::<f64>();
    let best = (fa..=fb - WIDTH)
        .rev()
        .min_by(|&i, &j| sum(i).total_cmp(&sum(j)))
        .unwrap_or(fa);
    (best + WIDTH / 2) as f64 / 100.0
}

/// The 16 kHz sample index of speech-audio second `t`, within `len`.
fn sample(t: f64, len: usize) -> usize {
    ((t * 16_000.0).round().max(0.0) as usize).min(len)
}

/// What survives an attempt: the finished chunks and their segments (clip time).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Partial {
    /// Fingerprint of the speech audio being transcribed.
    source: String,
    /// Model and transcription version that produced the chunks: another model starts over.
    #[serde(default)]
    model: String,
    chunks_done: u32,
    language: String,
    chunks: BTreeMap<u32, Vec<TranscriptSegment>>,
    /// The chunks the indices refer to (the plan depends on the worker's lanes; a retry on
    /// another worker keeps this one). Empty in partials from before plans were kept, which
    /// were planned by [`plan_chunks`] alone.
    #[serde(default)]
    plan: Vec<Chunk>,
}

/// How chunks get their context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkContext {
    /// Each lane takes the next chunk when it is free; only a clip's first chunk is prompted
    /// (what the activity does).
    Unprompted,
    /// Each lane decodes a run of consecutive chunks and prompts each with the text of the
    /// chunk before it; only the first chunk of each lane's run starts without the text before
    /// it. Measured in bench/transcribe: 2 errors fewer in 415 words (within noise) for 14 %
    /// more time, and on the 1,149-word set greedy decoding fell into a loop (one sentence
    /// written 19 times), so the activity does not use it.
    Conditioned,
}

/// What the lanes decode: chunks of `pcm` (16 kHz mono) and how.
pub struct LaneJob<'a> {
    pub transcriber: &'a Transcriber,
    pub pcm: &'a [f32],
    pub chunks: &'a [Chunk],
    pub language: Option<&'a str>,
    /// Context for chunk 0 (the clip's start).
    pub first_prompt: &'a str,
    pub context: ChunkContext,
    pub threads_per_lane: usize,
    /// Set to stop every lane early (also mid-chunk).
    pub abort: Arc<AtomicBool>,
}

/// `todo` as at most `lanes` runs of consecutive chunks with about the same audio each: a
/// chunk goes to the lane its middle falls in.
pub fn lane_runs(todo: &[u32], chunks: &[Chunk], lanes: usize) -> Vec<Vec<u32>> {
    let lanes = lanes.clamp(1, todo.len().max(1));
    let len = |i: u32| {
        let (a, b) = chunks[i as usize];
        b - a
    };
    let total: f64 = todo.iter().map(|&i| len(i)).sum();
    let mut runs = vec![Vec::new(); lanes];
    let mut before = 0.0;
    for &i in todo {
        let middle = before + len(i) / 2.0;
        let lane = if total > 0.0 {
            (middle / total * lanes as f64) as usize
        } else {
            0
        };
        runs[lane.min(lanes - 1)].push(i);
        before += len(i);
    }
    runs.retain(|r| !r.is_empty());
    runs
}

/// Audio after a chunk's last aligned word that makes [`decode_chunk`] decode again from
/// there, when at least [`UNCOVERED_SOUND_S`] of it is sound.
const UNCOVERED_S: f64 = 1.0;
const UNCOVERED_SOUND_S: f64 = 0.3;
/// Most decoding passes over one chunk.
const MAX_PASSES: usize = 3;

/// Seconds of 10 ms frames in `[a, b)` within `db` of the loudest frame of `levels`.
fn loud_seconds(levels: &[f64], a: f64, b: f64, db: f64) -> f64 {
    let peak = levels.iter().copied().fold(f64::MIN, f64::max);
    let (fa, fb) = (
        ((a * 100.0).max(0.0) as usize).min(levels.len()),
        ((b * 100.0).max(0.0) as usize).min(levels.len()),
    );
    levels[fa..fb.max(fa)]
        .iter()
        .filter(|&&l| l >= peak - db)
        .count() as f64
        / 100.0
}

/// Decodes one chunk prompted with `prompt`, and covers its sound as faster-whisper's seek
/// does: when the last word Whisper wrote ends (by its alignment) more than [`UNCOVERED_S`]
/// before sound that is still to come, the rest is decoded again from that word on, prompted
/// with everything before it. Prompted, whisper.cpp sometimes ends a chunk after its first
/// sentence with a timestamp at the chunk's end, which skips the rest of the chunk. A chunk in
/// which nothing sounds is not decoded at all: given silence, Whisper writes a word anyway (a
/// planned chunk of the 0.8 s of silence that ended bench/transcribe's audio came back as
/// "you").
pub fn decode_chunk(
    job: &LaneJob<'_>,
    session: &mut Session,
    pcm: &[f32],
    prompt: &str,
) -> Result<Decoded, String> {
    cover_chunk(pcm, prompt, |samples, prompt| {
        job.transcriber.transcribe_in(
            session,
            samples,
            prompt,
            job.language,
            job.threads_per_lane,
            |_| {},
            Some(job.abort.clone()),
        )
    })
}

/// [`decode_chunk`]'s passes over `pcm`, each made by `decode(samples, prompt)`.
fn cover_chunk(
    pcm: &[f32],
    prompt: &str,
    mut decode: impl FnMut(&[f32], &str) -> Result<Decoded, String>,
) -> Result<Decoded, String> {
    let levels = frame_levels(pcm);
    let len = pcm.len() as f64 / 16_000.0;
    let mut out = Decoded::default();
    if !sounds(&levels, 0.0, len) {
        return Ok(out);
    }
    let mut from = 0.0;
    let mut pass_prompt = prompt.to_string();
    for _ in 0..MAX_PASSES {
        let lo = sample(from, pcm.len());
        let from_s = lo as f64 / 16_000.0;
        let pass = decode(&pcm[lo..], &pass_prompt)?;
        let wrote_nothing = pass.segments.is_empty();
        out.append_shifted(pass, from_s);
        let end = out.last_word_end().unwrap_or(from_s).max(from_s);
        let uncovered = len - end > UNCOVERED_S
            && loud_seconds(&levels, end + 0.2, len, 25.0) >= UNCOVERED_SOUND_S;
        if !uncovered {
            break;
        }
        if end <= from_s {
            // Whisper wrote nothing over sound: once more without the prompt, which may be
            // what stopped it.
            if !wrote_nothing || pass_prompt.is_empty() {
                break;
            }
            pass_prompt.clear();
            continue;
        }
        from = end;
        pass_prompt = tail_of(&format!("{prompt} {}", out.text()), PROMPT_CHARS);
    }
    Ok(out)
}

/// Decodes the chunks `todo` on `lanes` threads side by side, each lane reusing one decoding
/// state. `on_done` gets every chunk's result as soon as it is ready; a lane stops at its
/// first error.
pub fn run_lanes(
    job: &LaneJob<'_>,
    todo: &[u32],
    lanes: usize,
    on_done: &(dyn Fn(u32, Result<Decoded, String>) + Sync),
) {
    let next = AtomicUsize::new(0);
    let runs = match job.context {
        ChunkContext::Conditioned => lane_runs(todo, job.chunks, lanes),
        ChunkContext::Unprompted => vec![Vec::new(); lanes.clamp(1, todo.len().max(1))],
    };
    std::thread::scope(|scope| {
        for run in &runs {
            let next = &next;
            scope.spawn(move || {
                let mut session = None;
                let mut ran = run.iter();
                // The chunk this lane decoded last, and its text.
                let mut before: Option<(u32, String)> = None;
                loop {
                    if job.abort.load(Ordering::Relaxed) {
                        return;
                    }
                    let i = match job.context {
                        ChunkContext::Conditioned => ran.next().copied(),
                        ChunkContext::Unprompted => {
                            todo.get(next.fetch_add(1, Ordering::Relaxed)).copied()
                        }
                    };
                    let Some(i) = i else { return };
                    let (a, b) = job.chunks[i as usize];
                    let (lo, hi) = (sample(a, job.pcm.len()), sample(b, job.pcm.len()));
                    if session.is_none() {
                        match job.transcriber.session() {
                            Ok(s) => session = Some(s),
                            Err(e) => {
                                on_done(i, Err(e));
                                return;
                            }
                        }
                    }
                    let session = session.as_mut().expect("created above");
                    let pcm = &job.pcm[lo..hi];
                    let previous = match (i, job.context, &before) {
                        (0, _, _) | (_, ChunkContext::Unprompted, _) => None,
                        (_, _, Some((j, text))) if *j + 1 == i => Some(text.as_str()),
                        _ => None,
                    };
                    let prompt = match previous {
                        Some(text) => tail_of(text, PROMPT_CHARS),
                        None if i == 0 => job.first_prompt.to_string(),
                        None => String::new(),
                    };
                    let out = decode_chunk(job, session, pcm, &prompt);
                    if job.context == ChunkContext::Conditioned {
                        before = out.as_ref().ok().map(|d| (i, d.text()));
                    }
                    let failed = out.is_err();
                    on_done(i, out);
                    if failed {
                        return;
                    }
                }
            });
        }
    });
}

fn partial_key(user_id: &str, clip_key: &str) -> String {
    format!(
        "{}/transcripts/{clip_key}.partial.json",
        user_segment(user_id)
    )
}

#[activities]
impl GpuActivitiesImpl {
    #[activity(definition = gt_workflows::contracts::TranscribeClipActivity)]
    pub async fn transcribe_clip(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: TranscribeClip,
    ) -> Result<TranscribedClip, ActivityError> {
        let clip = self
            .store
            .get_clip(&input.user_id, &input.key)
            .await
            .map_err(store_error)?;
        let audio = clip
            .speech
            .as_ref()
            .and_then(|s| s.audio.clone())
            .ok_or_else(|| {
                invalid_input(format!(
                    "{}: no speech audio to transcribe (the clip has not been analysed)",
                    input.key
                ))
            })?;
        let source = fingerprint(&audio);
        // Already transcribed at this version from this speech audio: keep it.
        if let Some(existing) = clip
            .transcription
            .as_ref()
            .and_then(|t| serde_json::from_value::<Transcript>(t.clone()).ok())
            && existing.version == TRANSCRIPTION_VERSION
            && existing.model == self.transcriber.model_name()
            && existing.source == source
        {
            return Ok(TranscribedClip {
                key: input.key,
                language: existing.language.clone(),
                segments: existing.segments.len() as u32,
                words: existing.segments.iter().map(|s| s.words.len() as u32).sum(),
                audio_seconds: audio.duration,
                tail: existing.tail(PROMPT_CHARS),
                chunks: 0,
                resumed_from_chunk: 0,
                cached: true,
            });
        }

        // The model first: a missing or broken model is this worker's problem, said plainly.
        let transcriber = self.transcriber.clone();
        tokio::task::spawn_blocking(move || transcriber.model().map(drop))
            .await
            .map_err(|e| ActivityError::from(anyhow::anyhow!(e)))?
            .map_err(invalid_input)?;

        // The speech audio is derived by our analysis under the owner's prefix; a key from
        // anywhere else is refused, whatever the clip row says.
        let owner_prefix = format!("{}/", user_segment(&input.user_id));
        if !audio.key.starts_with(&owner_prefix) {
            return Err(invalid_input(format!(
                "{}: speech audio {} is not under the clip owner's prefix {owner_prefix}",
                input.key, audio.key
            )));
        }
        let pcm: Arc<Vec<f32>> = if audio.segments.is_empty() {
            Arc::new(Vec::new())
        } else {
            let bytes = self
                .artifacts
                .get_bytes(&audio.key)
                .await
                .map_err(store_error)?;
            let (rate, samples) = read_wav(&bytes).ok_or_else(|| {
                invalid_input(format!(
                    "{}: speech audio {} is not a 16-bit mono WAV",
                    input.key, audio.key
                ))
            })?;
            if rate != 16_000 {
                return Err(invalid_input(format!(
                    "{}: speech audio is {rate} Hz, Whisper needs 16 kHz",
                    input.key
                )));
            }
            Arc::new(
                samples
                    .into_iter()
                    .map(|s| f32::from(s) / 32768.0)
                    .collect(),
            )
        };
        let levels = frame_levels(&pcm);
        let planned = plan_for_lanes(&audio, &levels, self.chunk_s, self.lanes);
        let partial_key = partial_key(&input.user_id, &input.key);
        // A retry continues where the last attempt left off. Chunks are made durable before
        // they are heartbeated, so the partial is at least as far as the last heartbeat (which
        // may not have reached the server when the worker died); it is trusted when it is for
        // the same speech audio and model.
        let heartbeated: u32 = ctx
            .heartbeat_details()
            .deserialize::<u32>()
            .ok()
            .flatten()
            .unwrap_or(0);
        let model_tag = format!("{}@{TRANSCRIPTION_VERSION}", self.transcriber.model_name());
        let mut partial = Partial {
            source: source.clone(),
            model: model_tag.clone(),
            plan: planned.clone(),
            ..Default::default()
        };
        if let Ok(bytes) = self.artifacts.get_bytes(&partial_key).await
            && let Ok(mut p) = serde_json::from_slice::<Partial>(&bytes)
            && p.source == source
            && p.model == model_tag
        {
            if p.chunks_done < heartbeated {
                tracing::warn!(key = %input.key, heartbeated, durable = p.chunks_done, "partial transcript is behind the heartbeat");
            }
            if p.plan.is_empty() {
                p.plan = plan_chunks(&audio, &levels, self.chunk_s);
            }
            partial = p;
        }
        // The chunks of the attempt that started this transcript, whatever this worker's lanes.
        let chunks = partial.plan.clone();
        let done_at_start = partial.chunks_done;

        // Decode the missing chunks in lanes; results come back here to be made durable.
        let todo: Vec<u32> = (0..chunks.len() as u32)
            .filter(|i| !partial.chunks.contains_key(i))
            .collect();
        let abort = Arc::new(AtomicBool::new(false));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u32, Result<Decoded, String>)>();
        {
            let lanes = self.lanes;
            let (t, samples, lang, prompt, abort, chunks, threads) = (
                self.transcriber.clone(),
                pcm.clone(),
                input.language.clone(),
                input.initial_prompt.clone(),
                abort.clone(),
                chunks.clone(),
                self.threads_per_lane,
            );
            tokio::task::spawn_blocking(move || {
                let job = LaneJob {
                    transcriber: &t,
                    pcm: &samples,
                    chunks: &chunks,
                    language: lang.as_deref(),
                    first_prompt: &prompt,
                    context: ChunkContext::Unprompted,
                    threads_per_lane: threads,
                    abort,
                };
                run_lanes(&job, &todo, lanes, &|i, out| {
                    let _ = tx.send((i, out));
                });
            });
        }
        let every = Duration::from_secs(5);
        // No heartbeat before the first tick: the first one sent goes out at once and later
        // ones are throttled, so the first should carry progress, not "0 chunks done".
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                msg = rx.recv() => {
                    let Some((i, out)) = msg else { break };
                    let decoded = out.map_err(|e| {
                        abort.store(true, Ordering::Relaxed);
                        if e.contains("Whisper model") { invalid_input(e) } else { ActivityError::from(anyhow::anyhow!(e)) }
                    })?;
                    if partial.language.is_empty() {
                        partial.language = decoded.language.clone();
                    }
                    let (a, b) = chunks[i as usize];
                    let (lo, hi) = (sample(a, pcm.len()), sample(b, pcm.len()));
                    partial.chunks.insert(i, timed_segments(&decoded, &pcm[lo..hi], &audio, a));
                    partial.chunks_done = partial.chunks.len() as u32;
                    // Durable first, then announced: a heartbeat never counts past the partial.
                    let bytes = serde_json::to_vec(&partial).map_err(|e| ActivityError::from(anyhow::anyhow!(e)))?;
                    if let Err(e) = self.artifacts.put_bytes(&partial_key, bytes).await {
                        abort.store(true, Ordering::Relaxed);
                        return Err(store_error(e));
                    }
                    let _ = ctx.record_heartbeat(partial.chunks_done).await;
                }
                _ = tick.tick() => {
                    if ctx.is_cancelled() {
                        abort.store(true, Ordering::Relaxed);
                        return Err(ActivityError::cancelled());
                    }
                    let _ = ctx.record_heartbeat(partial.chunks_done).await;
                }
            }
        }
        if partial.chunks.len() != chunks.len() {
            return Err(ActivityError::from(anyhow::anyhow!(
                "{}: {} of {} chunks transcribed",
                input.key,
                partial.chunks.len(),
                chunks.len()
            )));
        }
        let segments: Vec<TranscriptSegment> = partial.chunks.into_values().flatten().collect();
        let text = segments
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let transcript = Transcript {
            language: if partial.language.is_empty() {
                input.language.clone().unwrap_or_default()
            } else {
                partial.language.clone()
            },
            text,
            segments,
            version: TRANSCRIPTION_VERSION.into(),
            model: self.transcriber.model_name(),
            source,
        };
        self.store
            .save_transcript(
                &input.user_id,
                &input.stream_id,
                &input.key,
                input.start_time,
                &transcript,
            )
            .await
            .map_err(store_error)?;
        let _ = self.artifacts.delete_prefix(&partial_key).await;
        Ok(TranscribedClip {
            key: input.key,
            language: transcript.language.clone(),
            segments: transcript.segments.len() as u32,
            words: transcript
                .segments
                .iter()
                .map(|s| s.words.len() as u32)
                .sum(),
            audio_seconds: audio.duration,
            tail: transcript.tail(PROMPT_CHARS),
            chunks: chunks.len() as u32,
            resumed_from_chunk: done_at_start,
            cached: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{RawSegment, Token};
    use gt_types::media::SpeechSegment;

    fn audio(lengths: &[f64]) -> SpeechAudio {
        let mut offset = 0.0;
        let mut clip_t = 10.0;
        let segments = lengths
            .iter()
            .map(|&l| {
                let s = SpeechSegment {
                    start: clip_t,
                    end: clip_t + l,
                    offset,
                };
                offset += l + 0.25;
                clip_t += l + 5.0;
                s
            })
            .collect();
        SpeechAudio {
            key: "k".into(),
            sample_rate: 16_000,
            duration: offset,
            segments,
        }
    }

    /// A decode that wrote `words`, each ending at its time (seconds into the samples given).
    fn wrote(words: &[(&str, f64)]) -> Decoded {
        Decoded {
            language: "en".into(),
            segments: vec![RawSegment {
                tokens: words
                    .iter()
                    .map(|(w, end)| Token {
                        text: format!(" {w}"),
                        dtw: Some(*end),
                        ..Default::default()
                    })
                    .collect(),
                no_speech_prob: 0.0,
            }],
        }
    }

    /// `seconds` of a loud tone, then `quiet` seconds of digital silence.
    fn tone(seconds: f64, quiet: f64) -> Vec<f32> {
        let loud = (seconds * 16_000.0) as usize;
        let mut pcm: Vec<f32> = (0..loud)
            .map(|i| 0.3 * (i as f32 * 440.0 * std::f32::consts::TAU / 16_000.0).sin())
            .collect();
        pcm.resize(loud + (quiet * 16_000.0) as usize, 0.0);
        pcm
    }

    #[test]
    fn a_chunk_whose_words_stop_before_its_sound_is_decoded_again_from_the_last_word() {
        let pcm = tone(10.0, 0.0);
        let mut calls = Vec::new();
        let out = cover_chunk(&pcm, "said before", |samples, prompt| {
            calls.push((samples.len() as f64 / 16_000.0, prompt.to_string()));
            Ok(match calls.len() {
                1 => wrote(&[("first", 1.0), ("sentence.", 2.0)]),
                _ => wrote(&[("the", 1.0), ("rest.", 7.9)]),
            })
        })
        .unwrap();
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert_eq!(calls[0], (10.0, "said before".into()));
        // The second pass starts at the last word, prompted with what came before it.
        assert!((calls[1].0 - 8.0).abs() < 1e-3, "{calls:?}");
        assert_eq!(calls[1].1, "said before first sentence.");
        assert_eq!(out.text(), "first sentence. the rest.");
        let ends: Vec<f64> = out
            .segments
            .iter()
            .flat_map(|s| &s.tokens)
            .filter_map(|t| t.dtw)
            .collect();
        assert_eq!(ends, vec![1.0, 2.0, 3.0, 9.9], "in the chunk's time");
    }

    #[test]
    fn quiet_after_the_last_word_is_not_decoded_again_and_passes_are_bounded() {
        // Words cover the sound; the silence after them is left alone.
        let pcm = tone(3.0, 7.0);
        let mut calls = 0;
        let out = cover_chunk(&pcm, "", |_, _| {
            calls += 1;
            Ok(wrote(&[("all", 2.9)]))
        })
        .unwrap();
        assert_eq!((calls, out.text().as_str()), (1, "all"));
        // A decoder that always stops early gets MAX_PASSES tries, each further on.
        let pcm = tone(20.0, 0.0);
        let mut starts = Vec::new();
        cover_chunk(&pcm, "", |samples, _| {
            starts.push(20.0 - samples.len() as f64 / 16_000.0);
            Ok(wrote(&[("word", 1.5)]))
        })
        .unwrap();
        assert_eq!(starts.len(), MAX_PASSES);
        assert!(starts.windows(2).all(|w| w[1] > w[0] + 1.0), "{starts:?}");
    }

    #[test]
    fn a_prompted_chunk_that_comes_back_empty_is_decoded_again_without_the_prompt() {
        let pcm = tone(6.0, 0.0);
        let mut prompts = Vec::new();
        let out = cover_chunk(&pcm, "a prompt", |_, prompt| {
            prompts.push(prompt.to_string());
            Ok(if prompt.is_empty() {
                wrote(&[("heard", 5.8)])
            } else {
                Decoded::default()
            })
        })
        .unwrap();
        assert_eq!(prompts, vec!["a prompt".to_string(), String::new()]);
        assert_eq!(out.text(), "heard");
        // Errors are the caller's.
        assert!(cover_chunk(&pcm, "", |_, _| Err("boom".into())).is_err());
    }

    #[test]
    fn a_chunk_in_which_nothing_sounds_is_not_decoded() {
        let mut calls = 0;
        let out = cover_chunk(&tone(0.0, 0.8), "a prompt", |_, _| {
            calls += 1;
            Ok(wrote(&[("you", 0.5)]))
        })
        .unwrap();
        assert_eq!((calls, out.segments.len()), (0, 0));
        // A little sound in it is enough to decode it.
        let mut pcm = tone(0.0, 0.8);
        pcm.extend(tone(0.05, 0.0));
        let out = cover_chunk(&pcm, "", |_, _| {
            calls += 1;
            Ok(wrote(&[("yes", 0.84)]))
        })
        .unwrap();
        assert_eq!((calls, out.text().as_str()), (1, "yes"));
    }

    #[test]
    fn lanes_take_runs_of_consecutive_chunks_with_about_the_same_audio() {
        let chunks: Vec<Chunk> = [10.0, 14.0, 12.0, 9.0, 15.0, 11.0]
            .iter()
            .scan(0.0, |t, len| {
                let c = (*t, *t + len);
                *t += len;
                Some(c)
            })
            .collect();
        let all: Vec<u32> = (0..6).collect();
        assert_eq!(
            lane_runs(&all, &chunks, 2),
            vec![vec![0, 1, 2], vec![3, 4, 5]]
        );
        assert_eq!(lane_runs(&all, &chunks, 1), vec![all.clone()]);
        let three = lane_runs(&all, &chunks, 3);
        assert_eq!(three.concat(), all, "every chunk once, in order");
        assert_eq!(three.len(), 3);
        // What a resumed attempt has left; more lanes than chunks.
        assert_eq!(lane_runs(&[4, 5], &chunks, 4), vec![vec![4], vec![5]]);
        assert!(lane_runs(&[], &chunks, 2).is_empty());
    }

    #[test]
    fn chunks_fill_windows_at_segment_boundaries_and_cut_long_talk_where_it_is_quiet() {
        let a = audio(&[10.0, 10.0, 8.0, 50.0, 5.0]);
        // Loud everywhere except a quiet half second 20 s into the 50 s segment (audio 49 s).
        let mut levels = vec![-20.0; (a.duration * 100.0) as usize + 1];
        for l in &mut levels[4900..4950] {
            *l = -80.0;
        }
        let c = plan_chunks(&a, &levels, 30.0);
        assert_eq!(c[0], (0.0, 28.5), "{c:?}");
        // The long segment starts a chunk and is cut at the quiet moment.
        assert_eq!(c[1].0, 28.75);
        assert!(c[1].1 > 49.0 && c[1].1 < 49.5, "{c:?}");
        for w in c.windows(2) {
            assert!(w[0].1 <= w[1].0 + 1e-9);
        }
        assert!(c.iter().all(|(x, y)| y - x <= 30.0 + 1e-9), "{c:?}");
        assert_eq!(c.last().unwrap().1, 84.0);
        assert!(plan_chunks(&audio(&[]), &[], 30.0).is_empty());
    }

    #[test]
    fn chunk_counts_divide_among_the_lanes_when_they_can() {
        // 120 s of talk, one stretch, quiet for 0.3 s at the end of every 5.3 s sentence;
        // the loudest moments are where the planner must not cut.
        let a = audio(&[120.0]);
        let mut levels = vec![-20.0; (a.duration * 100.0) as usize + 1];
        let mut t = 5.0;
        while t < 120.0 {
            let i = (t * 100.0) as usize;
            for l in &mut levels[i..(i + 30).min(a.duration as usize * 100)] {
                *l = -80.0;
            }
            t += 5.3;
        }
        let quiet = |x: f64| levels[((x * 100.0) as usize).min(levels.len() - 1)] < -50.0;
        let base = plan_chunks(&a, &levels, 30.0);
        assert_eq!(base.len() % 2, 1, "the case to balance: {base:?}");
        assert_eq!(plan_for_lanes(&a, &levels, 30.0, 1), base);
        for lanes in [2, 3, 4] {
            let c = plan_for_lanes(&a, &levels, 30.0, lanes);
            assert_eq!(c.len() % lanes, 0, "{lanes} lanes: {c:?}");
            assert!(c.len() <= base.len().next_multiple_of(lanes), "{c:?}");
            // Still the whole audio, in order, in chunks of one window at most, cut in pauses.
            assert_eq!(c[0].0, 0.0);
            assert_eq!(c.last().unwrap().1, 120.0);
            for w in c.windows(2) {
                assert_eq!(w[0].1, w[1].0);
                assert!(quiet(w[0].1), "cut at {} is not in a pause", w[0].1);
            }
            assert!(
                c.iter()
                    .all(|(x, y)| y - x <= 30.0 + 1e-9 && y - x >= MIN_BALANCED_CHUNK_S / 2.0),
                "{c:?}"
            );
        }
        // Too little audio to give every lane a chunk of the minimum length: left as planned.
        let short = audio(&[12.0]);
        let levels = vec![-20.0; 1300];
        assert_eq!(
            plan_for_lanes(&short, &levels, 30.0, 2),
            plan_chunks(&short, &levels, 30.0)
        );
    }
}
