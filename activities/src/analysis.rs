//! Media analysis activities: the speech map with the speech audio, and the preview
//! (thumbnails + HLS). Outputs go to deterministic keys in the artifacts store, namespaced by
//! user; work already done at the current version is skipped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gt_store::{BlobStore, PipelineStore, user_segment};
use gt_types::media::{
    ANALYSIS_VERSION, MediaInfo, PREVIEW_VERSION, Preview, PreviewSegment, SpeechMap,
};
use gt_types::records::Interval;
use gt_types::workflow::{AnalyzeClip, AnalyzedClip, ClipRef, PreviewedClip};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::ingest::recording_source;
use crate::media::MediaError;
use crate::media::audio::{SPEECH_RATE, ScanInput, ScanOptions, scan};
use crate::media::silence::SilenceParams;
use crate::media::speech::{VoiceParams, assemble, describe, speech_intervals, voice_in};
use crate::media::video::{PreviewOptions, hls_preview, thumbnails};
use crate::{invalid_input, store_error};
use gt_worker_kit::wav::wav_bytes;

pub struct MediaActivitiesImpl {
    pub store: Arc<dyn PipelineStore>,
    pub recordings: Arc<dyn BlobStore>,
    pub artifacts: Arc<dyn BlobStore>,
    /// Parallel decode chunks per file.
    pub threads: usize,
    /// Tells voice from music and noise inside what the energy threshold calls speech.
    pub vad: std::sync::Arc<gt_vad::SileroVad>,
}

pub fn speech_audio_key(user_id: &str, clip_key: &str) -> String {
    format!("{}/speech/{clip_key}.wav", user_segment(user_id))
}

fn thumbnail_key(user_id: &str, clip_key: &str, t: f64) -> String {
    format!(
        "{}/keyframes/{clip_key}/{:010}.jpg",
        user_segment(user_id),
        (t.max(0.0) * 1000.0).round() as u64
    )
}

fn hls_prefix(user_id: &str, clip_key: &str) -> String {
    format!("{}/hls/{clip_key}/", user_segment(user_id))
}

/// The audio track with the streamer's voice when none is configured: one named like a
/// microphone, else the second track (OBS setups put the full mix on the first and the mic on
/// the second, the original system's default), else the only one.
pub fn choose_speech_track(info: &MediaInfo) -> Option<u32> {
    let tracks: Vec<_> = info.audio_tracks().collect();
    if tracks.is_empty() {
        return None;
    }
    let voice = ["mic", "voice", "speech", "commentary", "narration"];
    if let Some(i) = tracks.iter().position(|t| {
        t.title
            .as_deref()
            .is_some_and(|title| voice.iter().any(|v| title.to_lowercase().contains(v)))
    }) {
        return Some(i as u32);
    }
    Some(if tracks.len() >= 2 { 1 } else { 0 })
}

fn media_error(e: MediaError) -> ActivityError {
    invalid_input(e.to_string())
}

fn intervals(v: &[(f64, f64)], offset: f64) -> Vec<Interval> {
    v.iter()
        .map(|&(start, end)| Interval {
            start: start + offset,
            end: end + offset,
        })
        .collect()
}

/// Runs blocking media work on a thread while heartbeating its progress (0–1) as details.
async fn blocking_with_progress<T: Send + 'static>(
    ctx: &ActivityContext,
    work: impl FnOnce(Arc<AtomicU64>) -> T + Send + 'static,
) -> Result<T, ActivityError> {
    let progress = Arc::new(AtomicU64::new(0));
    let p = progress.clone();
    let task = tokio::task::spawn_blocking(move || work(p));
    tokio::pin!(task);
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            out = &mut task => {
                return out.map_err(|e| ActivityError::from(anyhow::anyhow!("media task panicked: {e}")));
            }
            _ = tick.tick() => {
                if ctx.is_cancelled() {
                    return Err(ActivityError::cancelled());
                }
                let fraction = f64::from_bits(progress.load(Ordering::Relaxed));
                let _ = ctx.record_heartbeat(fraction).await;
            }
        }
    }
}

fn set_progress(p: &AtomicU64, f: f64) {
    p.store(f.to_bits(), Ordering::Relaxed);
}

#[activities]
impl MediaActivitiesImpl {
    #[activity(definition = gt_workflows::contracts::AnalyzeSpeech)]
    pub async fn analyze_speech(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: AnalyzeClip,
    ) -> Result<AnalyzedClip, ActivityError> {
        input.params.validate().map_err(invalid_input)?;
        let clip = self
            .store
            .get_clip(&input.user_id, &input.key)
            .await
            .map_err(store_error)?;
        let info = clip
            .metadata
            .clone()
            .ok_or_else(|| invalid_input(format!("{}: the clip has not been probed", input.key)))?;
        let track = match input.speech_track {
            Some(t) => t,
            None => choose_speech_track(&info)
                .ok_or_else(|| invalid_input(MediaError::NoAudio(input.key.clone()).to_string()))?,
        };
        let audio_key = speech_audio_key(&input.user_id, &input.key);

        // Done before at this version with these settings: reuse it (re-basing stream times if
        // the clip moved in the stream).
        if let Some(mut map) = clip.speech.clone()
            && map.version == ANALYSIS_VERSION
            && map.params == input.params
            && map.track == track
            // Only a map whose speech audio is ours, at our key, is reused.
            && map.audio.as_ref().is_some_and(|a| a.key == audio_key)
            && self
                .artifacts
                .exists(&audio_key)
                .await
                .map_err(store_error)?
        {
            if map.stream_offset != input.start_time {
                map.stream_offset = input.start_time;
                map.stream_speech = map
                    .speech
                    .iter()
                    .map(|i| Interval {
                        start: i.start + input.start_time,
                        end: i.end + input.start_time,
                    })
                    .collect();
                self.store
                    .save_speech(&input.user_id, &input.key, &map)
                    .await
                    .map_err(store_error)?;
            }
            return Ok(summary(&input.key, &map, audio_key, true));
        }

        let source = recording_source(&*self.recordings, &input.user_id, &input.key).await?;
        let (key, threads, params) = (input.key.clone(), self.threads, input.params);
        let scanned = blocking_with_progress(&ctx, move |progress| {
            scan(
                &ScanInput {
                    source: &source,
                    name: &key,
                    track: track as usize,
                    progress: &|f| set_progress(&progress, f),
                },
                &ScanOptions {
                    params: SilenceParams {
                        noise_db: params.noise_db,
                        min_duration: params.min_silence,
                    },
                    threads,
                    speech_audio: true,
                },
            )
        })
        .await?
        .map_err(media_error)?;

        // Loud enough, then a voice: the energy map finds where anything is heard, Silero VAD
        // which of it is someone talking (music and game sound on the mic are not).
        let loud = speech_intervals(&scanned.silence, scanned.start, scanned.end, params.margin);
        let (vad, threads) = (self.vad.clone(), self.threads);
        let pcm16k = Arc::new(scanned.pcm16k);
        let speech = {
            let pcm16k = pcm16k.clone();
            let start = scanned.start;
            blocking_with_progress(&ctx, move |_| {
                voice_in(
                    &vad,
                    &pcm16k,
                    start,
                    &loud,
                    &VoiceParams {
                        threshold: params.voice_threshold,
                        margin: params.margin,
                        min_gap: params.min_silence,
                        threads,
                    },
                )
            })
            .await?
        };
        let (pcm, segments) = assemble(&pcm16k, SPEECH_RATE, scanned.start, &speech);
        let wav = wav_bytes(&pcm, SPEECH_RATE);
        self.artifacts
            .put_bytes(&audio_key, wav)
            .await
            .map_err(store_error)?;
        let title = info
            .audio_tracks()
            .nth(track as usize)
            .and_then(|t| t.title.clone());
        let map = SpeechMap {
            version: ANALYSIS_VERSION.into(),
            track,
            track_title: title,
            params,
            start: scanned.start,
            end: scanned.end,
            silence: intervals(&scanned.silence, 0.0),
            speech_seconds: speech.iter().map(|(s, e)| e - s).sum(),
            speech: intervals(&speech, 0.0),
            stream_offset: input.start_time,
            stream_speech: intervals(&speech, input.start_time),
            audio: Some(describe(&audio_key, SPEECH_RATE, pcm.len(), segments)),
        };
        self.store
            .save_speech(&input.user_id, &input.key, &map)
            .await
            .map_err(store_error)?;
        Ok(summary(&input.key, &map, audio_key, false))
    }

    #[activity(definition = gt_workflows::contracts::MakePreview)]
    pub async fn make_preview(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: ClipRef,
    ) -> Result<PreviewedClip, ActivityError> {
        let clip = self
            .store
            .get_clip(&input.user_id, &input.key)
            .await
            .map_err(store_error)?;
        if let Some(p) = &clip.preview
            && p.version == PREVIEW_VERSION
            && self.all_exist(p).await?
        {
            return Ok(PreviewedClip {
                key: input.key,
                keyframes: p.keyframes.len() as u32,
                segments: p.segments.len() as u32,
                cached: true,
            });
        }
        let source = recording_source(&*self.recordings, &input.user_id, &input.key).await?;
        let work = tempfile::tempdir().map_err(|e| ActivityError::from(anyhow::anyhow!(e)))?;
        let out_dir = work.path().to_path_buf();
        let key = input.key.clone();
        let (thumbs, segments) = blocking_with_progress(&ctx, move |progress| {
            let thumbs = thumbnails(&source, &key, 10.0, 200, &|f| {
                set_progress(&progress, f * 0.1)
            })?;
            let segments =
                hls_preview(&source, &key, &out_dir, &PreviewOptions::default(), &|f| {
                    set_progress(&progress, 0.1 + f * 0.9)
                })?;
            Ok::<_, MediaError>((thumbs, segments))
        })
        .await?
        .map_err(media_error)?;

        let mut keyframes = Vec::with_capacity(thumbs.len());
        for t in thumbs {
            let k = thumbnail_key(&input.user_id, &input.key, t.time);
            self.artifacts
                .put_bytes(&k, t.jpeg)
                .await
                .map_err(store_error)?;
            keyframes.push(k);
        }
        let prefix = hls_prefix(&input.user_id, &input.key);
        let mut stored = Vec::with_capacity(segments.len());
        for s in &segments {
            let k = format!("{prefix}{}", s.file);
            self.artifacts
                .put_file(&k, &work.path().join(&s.file))
                .await
                .map_err(store_error)?;
            stored.push(PreviewSegment {
                key: k,
                duration: s.duration,
            });
        }
        let playlist = if segments.is_empty() {
            String::new()
        } else {
            let k = format!("{prefix}index.m3u8");
            self.artifacts
                .put_file(&k, &work.path().join("index.m3u8"))
                .await
                .map_err(store_error)?;
            k
        };
        let preview = Preview {
            version: PREVIEW_VERSION.into(),
            playlist,
            segments: stored,
            keyframes,
        };
        self.store
            .save_preview(&input.user_id, &input.key, &preview)
            .await
            .map_err(store_error)?;
        Ok(PreviewedClip {
            key: input.key,
            keyframes: preview.keyframes.len() as u32,
            segments: preview.segments.len() as u32,
            cached: false,
        })
    }
}

impl MediaActivitiesImpl {
    async fn all_exist(&self, p: &Preview) -> Result<bool, ActivityError> {
        let keys = p
            .keyframes
            .iter()
            .chain(p.segments.iter().map(|s| &s.key))
            .chain((!p.playlist.is_empty()).then_some(&p.playlist));
        for k in keys {
            if !self.artifacts.exists(k).await.map_err(store_error)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

fn summary(key: &str, map: &SpeechMap, audio_key: String, cached: bool) -> AnalyzedClip {
    AnalyzedClip {
        key: key.to_string(),
        track: map.track,
        silences: map.silence.len() as u32,
        speech_seconds: map.speech_seconds,
        audio_key,
        cached,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gt_types::media::{CodecType, StreamInfo};

    fn info(titles: &[Option<&str>]) -> MediaInfo {
        MediaInfo {
            format: Default::default(),
            streams: titles
                .iter()
                .enumerate()
                .map(|(i, t)| StreamInfo {
                    index: i + 1,
                    codec_type: CodecType::Audio,
                    title: t.map(str::to_string),
                    ..Default::default()
                })
                .collect(),
        }
    }

    #[test]
    fn speech_track_choice() {
        assert_eq!(choose_speech_track(&info(&[])), None);
        assert_eq!(choose_speech_track(&info(&[None])), Some(0));
        assert_eq!(choose_speech_track(&info(&[None, None, None])), Some(1));
        assert_eq!(
            choose_speech_track(&info(&[Some("Game"), Some("Music"), Some("Mic/Aux")])),
            Some(2)
        );
        assert_eq!(
            choose_speech_track(&info(&[Some("Voice"), Some("Desktop")])),
            Some(0)
        );
    }

    #[test]
    fn keys_are_per_user_and_deterministic() {
        assert_eq!(
            speech_audio_key("u1", "2024-01-01/a.mkv"),
            "u1/speech/2024-01-01/a.mkv.wav"
        );
        assert_eq!(
            thumbnail_key("a/b", "k.mkv", 12.3456),
            "a_2Fb/keyframes/k.mkv/0000012346.jpg"
        );
    }
}
