//! Cut list to video.
//!
//! [`render`] turns a [`RenderJob`] (a v1.0.0 cut list and the local source files) into one
//! MP4: H.264 smart cut ([`smart`]: copy whole IDR-started GOPs, re-encode the partial GOPs at
//! each cut) where the sources allow it, a full re-encode ([`reencode`]) otherwise, audio always
//! mixed and encoded once ([`audio`]), one in-process muxer ([`mux`]), and a verification of the
//! result ([`verify`]) before it is reported as done.

pub mod audio;
pub mod mux;
pub mod plan;
pub mod reencode;
pub mod smart;
pub mod verify;

use std::path::PathBuf;
use std::sync::Once;

use ffmpeg_next as ffmpeg;
use serde::{Deserialize, Serialize};

/// Output settings. `None` fields take the first source's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RenderProfile {
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Exact fraction (numerator, denominator).
    pub fps: Option<(i32, i32)>,
    /// FFmpeg encoder name for full re-encodes: `libx264`, or `h264_nvenc` etc. where the
    /// FFmpeg build has it (see [`encoder_available`]).
    pub encoder: String,
    pub preset: String,
    pub crf: u32,
    /// Bits per second; when set it replaces `crf`.
    pub video_bitrate: Option<u64>,
    pub audio_bitrate: u64,
    pub audio_sample_rate: u32,
}

impl Default for RenderProfile {
    fn default() -> Self {
        Self {
            width: None,
            height: None,
            fps: None,
            encoder: "libx264".into(),
            preset: "veryfast".into(),
            crf: 20,
            video_bitrate: None,
            audio_bitrate: 192_000,
            audio_sample_rate: 48_000,
        }
    }
}

/// One render: the cut list, a local file per `inputMedia` entry (same order), the output
/// `.mp4`, and the settings.
#[derive(Debug, Clone)]
pub struct RenderJob {
    pub cut_list: gt_types::records::CutList,
    pub sources: Vec<PathBuf>,
    pub output: PathBuf,
    pub profile: RenderProfile,
    /// Skip smart cut and re-encode everything.
    pub force_full: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RenderMethod {
    SmartCut,
    FullReencode,
}

/// What a render produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderReport {
    pub method: RenderMethod,
    /// Why smart cut was not used (ineligible sources, or a failed verification), if it was not.
    pub fallback_reason: Option<String>,
    /// Video frames in the output.
    pub frames: u64,
    pub duration_s: f64,
    /// Video packets copied unchanged from the sources.
    pub copied_packets: u64,
    /// Video frames encoded.
    pub reencoded_frames: u64,
    /// Size of the output file.
    pub bytes: u64,
    /// SHA-256 of the output file, lower-case hex.
    pub sha256: String,
    pub width: u32,
    pub height: u32,
    pub fps: (i32, i32),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RenderError {
    /// The job itself is wrong (bad cut list, missing or unreadable source, a section out of
    /// range): retrying cannot help.
    #[error("invalid render input: {0}")]
    InvalidInput(String),
    #[error("render failed: {0}")]
    Failed(String),
}

impl RenderError {
    pub(crate) fn failed(what: &str, e: impl std::fmt::Display) -> Self {
        RenderError::Failed(format!("{what}: {e}"))
    }
}

/// Registers FFmpeg once and keeps its own logging quiet (errors reach us as values).
pub(crate) fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        ffmpeg::init().expect("FFmpeg failed to initialise");
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Fatal);
    });
}

/// Whether this FFmpeg build has encoder `name` and it opens here (an NVENC encoder is
/// compiled into many builds but only opens with an NVIDIA GPU and driver present).
pub fn encoder_available(name: &str) -> bool {
    init();
    let Some(codec) = ffmpeg::encoder::find_by_name(name) else {
        return false;
    };
    let Ok(mut enc) = ffmpeg::codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
    else {
        return false;
    };
    enc.set_width(256);
    enc.set_height(144);
    enc.set_format(ffmpeg::format::Pixel::YUV420P);
    enc.set_time_base(ffmpeg::Rational(1, 30));
    enc.set_frame_rate(Some(ffmpeg::Rational(30, 1)));
    enc.open_with(ffmpeg::Dictionary::new()).is_ok()
}

/// Renders `job`: plan, audio once, then smart cut when the sources and the cut list allow it
/// (verified, falling back to a full re-encode with the reason recorded when verification
/// fails), else a full re-encode. `progress` receives 0..1.
pub fn render(job: &RenderJob, progress: &mut dyn FnMut(f64)) -> Result<RenderReport, RenderError> {
    init();
    let plan = plan::build_plan(job)?;
    let result = render_plan(job, &plan, progress);
    if result.is_err() {
        // No half-written file is left behind for a later step to pick up.
        let _ = std::fs::remove_file(&job.output);
    }
    result
}

fn render_plan(
    job: &RenderJob,
    plan: &plan::Plan,
    progress: &mut dyn FnMut(f64),
) -> Result<RenderReport, RenderError> {
    if let Some(parent) = job.output.parent()
        && !parent.as_os_str().is_empty()
        && !parent.is_dir()
    {
        return Err(RenderError::InvalidInput(format!(
            "the output folder {} does not exist",
            parent.display()
        )));
    }
    // Progress never goes backwards, even when a smart cut is thrown away for a re-encode.
    progress(0.0);
    let mut reported = 0.0f64;
    let mut emit = |f: f64| {
        let f = f.clamp(0.0, 1.0);
        if f > reported {
            reported = f;
            progress(f);
        }
    };
    // Audio is a small share of a re-encode but a large one of a smart cut; both count it.
    let audio = audio::render_audio(plan, &job.profile)?;
    emit(0.05);

    let eligibility = if job.force_full {
        Err("a full re-encode was asked for".to_string())
    } else {
        smart::eligibility(plan)
    };
    let fallback_reason = match eligibility {
        Ok(index) => {
            let done =
                smart::render_smart(plan, &job.profile, index, &audio, &job.output, &mut |f| {
                    emit(0.05 + 0.75 * f)
                });
            match done {
                // Every frame is decoded before the file counts as done (the publish contract),
                // although the copied GOPs are also checked byte for byte; `EditPoints` would
                // decode only what a join can break and is ~3x cheaper on long episodes.
                Ok(done) => match verify::verify_with(
                    plan,
                    &audio,
                    &job.output,
                    &done.copies,
                    verify::VerifyDepth::Full,
                ) {
                    Ok(()) => {
                        emit(1.0);
                        return Ok(done.report);
                    }
                    Err(e) => format!("smart cut output failed verification: {e}"),
                },
                Err(RenderError::InvalidInput(e)) => return Err(RenderError::InvalidInput(e)),
                Err(RenderError::Failed(e)) => format!("smart cut failed: {e}"),
            }
        }
        Err(reason) => reason,
    };
    tracing::info!(reason = %fallback_reason, "full re-encode");
    let _ = std::fs::remove_file(&job.output);
    let mut report = reencode::render_full(plan, &job.profile, &audio, &job.output, &mut |f| {
        emit(0.05 + 0.85 * f)
    })?;
    verify::verify(plan, &audio, &job.output, &[]).map_err(|e| {
        RenderError::Failed(format!("the re-encoded output failed verification: {e}"))
    })?;
    report.method = RenderMethod::FullReencode;
    report.fallback_reason = Some(fallback_reason);
    emit(1.0);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoders_are_found_only_when_they_open() {
        assert!(encoder_available("libx264"));
        assert!(!encoder_available("no_such_encoder"));
        // Profiles round-trip in the front end's camelCase.
        let p: RenderProfile =
            serde_json::from_str(r#"{"width":1280,"fps":[30000,1001],"audioBitrate":128000}"#)
                .unwrap();
        assert_eq!(p.width, Some(1280));
        assert_eq!(p.fps, Some((30000, 1001)));
        assert_eq!(p.audio_bitrate, 128_000);
        assert_eq!(p.encoder, "libx264");
        assert_eq!(
            serde_json::to_value(RenderMethod::SmartCut).unwrap(),
            serde_json::json!("smart_cut")
        );
    }
}
