//! Generates recordings with known content for the sample job, tests and benchmarks: speech
//! from `espeak-ng`, silence, noise and tones from FFmpeg's lavfi sources, video from
//! `testsrc2`, muxed like an OBS recording (several audio tracks, named).
//!
//! This shells out to the `ffmpeg` and `espeak-ng` programs on purpose: it produces fixtures,
//! it is not part of the analysis pipeline (which uses FFmpeg's libraries in-process).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// A piece of an audio track.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    /// Sentences spoken by espeak-ng (en-us, 150 wpm).
    Speech(String),
    /// Digital silence, seconds.
    Silence(f64),
    /// White noise at about -62 dBFS peak (below a -50 dB threshold), seconds.
    QuietNoise(f64),
    /// A 220 Hz tone at -40 dBFS (above a -50 dB threshold), seconds.
    Tone(f64),
    /// "Game audio": a changing chord plus pink noise, never silent, seconds.
    Game(f64),
    /// Background music with no voice: a chord progression, a plucked melody, a bass line and
    /// noise-burst drums, loud enough that an energy threshold calls it speech, seconds.
    Music(f64),
    /// A recorded voice: any audio file FFmpeg reads, played whole.
    Recorded(PathBuf),
}

impl Segment {
    /// About how long the segment plays, before rendering: silences and sounds exactly, a
    /// spoken sentence ~6 s, a recorded WAV its length. For sizing a track to go under another.
    pub fn nominal_seconds(&self) -> f64 {
        match self {
            Segment::Speech(_) => 6.0,
            Segment::Recorded(p) => wav_duration(p).unwrap_or(0.0),
            Segment::Silence(d)
            | Segment::QuietNoise(d)
            | Segment::Tone(d)
            | Segment::Game(d)
            | Segment::Music(d) => *d,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Mkv,
    Mp4,
    Flv,
}

impl Container {
    pub fn extension(self) -> &'static str {
        match self {
            Container::Mkv => "mkv",
            Container::Mp4 => "mp4",
            Container::Flv => "flv",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    Aac,
    Opus,
    /// PCM s16le (WAV-like; MKV only).
    Pcm,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    pub title: String,
    pub segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordingSpec {
    /// `(width, height, fps)`; `None` makes an audio-only file.
    pub video: Option<(u32, u32, u32)>,
    pub tracks: Vec<Track>,
    pub container: Container,
    pub audio_codec: AudioCodec,
}

impl RecordingSpec {
    /// An MKV with one AAC track titled "Mic" and, if given, a `(width, height, fps)` video.
    pub fn mic(segments: Vec<Segment>, video: Option<(u32, u32, u32)>) -> Self {
        Self {
            video,
            tracks: vec![Track {
                title: "Mic".into(),
                segments,
            }],
            container: Container::Mkv,
            audio_codec: AudioCodec::Aac,
        }
    }
}

/// What was generated: per track, where each segment lies (seconds from the start).
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub path: PathBuf,
    pub duration: f64,
    /// `tracks[t]` = `(segment, start, end)` in order.
    pub tracks: Vec<Vec<(Segment, f64, f64)>>,
    /// `leads[t][i]`: seconds from the start of segment `i` of track `t` to its first sample
    /// above -50 dBFS (where a spoken sentence really begins), measured on the rendered audio.
    pub leads: Vec<Vec<f64>>,
}

impl Generated {
    /// Intervals of speech on track `t`.
    pub fn speech(&self, t: usize) -> Vec<(f64, f64)> {
        self.tracks[t]
            .iter()
            .filter(|(s, _, _)| matches!(s, Segment::Speech(_) | Segment::Recorded(_)))
            .map(|(_, a, b)| (*a, *b))
            .collect()
    }

    /// Where each spoken segment of track `t` really starts (its placement plus its measured
    /// lead-in), with the segment.
    pub fn speech_onsets(&self, t: usize) -> Vec<(&Segment, f64)> {
        self.tracks[t]
            .iter()
            .zip(&self.leads[t])
            .filter(|((s, _, _), _)| matches!(s, Segment::Speech(_) | Segment::Recorded(_)))
            .map(|((s, a, _), lead)| (s, a + lead))
            .collect()
    }
}

const RATE: u32 = 48_000;

/// Runs `cmd` to completion; its stderr on success (FFmpeg reports there), or an error
/// naming the program with its stderr.
pub fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("running {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?} failed: {}",
            cmd.get_program(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stderr).into_owned())
}

fn ffmpeg() -> Command {
    let mut c = Command::new("ffmpeg");
    c.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"]);
    c
}

/// Duration of a PCM WAV file from its header.
pub fn wav_duration(path: &Path) -> anyhow::Result<f64> {
    let bytes = std::fs::read(path)?;
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        bail!("{} is not a WAV file", path.display());
    }
    let (mut pos, mut rate, mut block) = (12usize, 0u32, 0u16);
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into()?) as usize;
        let body = pos + 8;
        if id == b"fmt " && body + 16 <= bytes.len() {
            rate = u32::from_le_bytes(bytes[body + 4..body + 8].try_into()?);
            block = u16::from_le_bytes(bytes[body + 12..body + 14].try_into()?);
        } else if id == b"data" {
            if rate == 0 || block == 0 {
                bail!("{}: data before fmt", path.display());
            }
            // espeak-ng streams its WAV and leaves the size fields unset (0 or 0x7fffffff).
            let data = if size == 0 || body + size > bytes.len() {
                bytes.len() - body
            } else {
                size
            };
            return Ok(data as f64 / f64::from(block) / f64::from(rate));
        }
        pos = body + size + (size & 1);
    }
    bail!("{}: no data chunk", path.display())
}

/// Renders one segment to a 48 kHz stereo s16 WAV; returns its duration.
fn render_segment(seg: &Segment, out: &Path, seed: usize) -> anyhow::Result<f64> {
    let lavfi = |src: String, secs: f64| -> anyhow::Result<f64> {
        run(ffmpeg()
            .args(["-f", "lavfi", "-i", &src, "-t", &format!("{secs:.6}")])
            .args(["-ar", &RATE.to_string(), "-ac", "2", "-c:a", "pcm_s16le"])
            .arg(out))?;
        Ok(secs)
    };
    match seg {
        Segment::Speech(text) => {
            let raw = out.with_extension("espeak.wav");
            run(Command::new("espeak-ng")
                .args(["-v", "en-us", "-s", "150", "-w"])
                .arg(&raw)
                .arg(text))?;
            run(ffmpeg()
                .arg("-i")
                .arg(&raw)
                .args(["-ar", &RATE.to_string(), "-ac", "2", "-c:a", "pcm_s16le"])
                .arg(out))?;
            let _ = std::fs::remove_file(&raw);
            wav_duration(out)
        }
        Segment::Silence(s) => lavfi(format!("anullsrc=r={RATE}:cl=stereo"), *s),
        Segment::QuietNoise(s) => lavfi(
            format!("anoisesrc=r={RATE}:c=white:a=0.0008:seed={seed}"),
            *s,
        ),
        Segment::Tone(s) => lavfi(format!("aevalsrc=0.01*sin(2*PI*220*t):s={RATE}"), *s),
        Segment::Game(s) => lavfi(
            format!(
                "aevalsrc=0.08*sin(2*PI*(220+55*mod(floor(t/2)\\,5))*t)+0.03*sin(2*PI*330*t)+0.01*random({seed}):s={RATE}"
            ),
            *s,
        ),
        Segment::Music(s) => lavfi(
            // Chords changing every 2 s (root, third, fifth), a melody note every 0.25 s with a
            // plucked decay, a bass on the beat, and a noise-burst drum every 0.5 s.
            format!(
                "aevalsrc={}:s={RATE}",
                [
                    "0.05*sin(2*PI*(196+49*mod(floor(t/2)\\,4))*t)",
                    "0.04*sin(2*PI*1.26*(196+49*mod(floor(t/2)\\,4))*t)",
                    "0.04*sin(2*PI*1.5*(196+49*mod(floor(t/2)\\,4))*t)",
                    "0.10*exp(-8*mod(t\\,0.25))*sin(2*PI*(392+98*mod(floor(t*4)*7\\,5))*t)",
                    "0.08*sin(2*PI*(49+12*mod(floor(t/2)\\,4))*t)",
                    &format!("0.12*exp(-30*mod(t\\,0.5))*random({seed})"),
                ]
                .join("+")
            ),
            *s,
        ),
        Segment::Recorded(path) => {
            run(ffmpeg()
                .arg("-i")
                .arg(path)
                .args(["-ar", &RATE.to_string(), "-ac", "2", "-c:a", "pcm_s16le"])
                .arg(out))?;
            wav_duration(out)
        }
    }
}

/// Seconds of `wav` (16-bit PCM) before its first sample above -50 dBFS.
fn lead_in(wav: &Path) -> anyhow::Result<f64> {
    let bytes = std::fs::read(wav)?;
    let data = bytes
        .windows(4)
        .position(|w| w == b"data")
        .context("no data chunk")?
        + 8;
    let threshold = (32768.0 * 10f64.powf(-50.0 / 20.0)) as i32;
    let first = bytes[data..]
        .chunks_exact(2)
        .position(|c| i32::from(i16::from_le_bytes([c[0], c[1]])).abs() > threshold);
    // Stereo: two samples per frame.
    Ok(first.map_or(0.0, |i| (i / 2) as f64 / f64::from(RATE)))
}

/// Generates `spec` at `out` (parent directories are created). Tracks shorter than the longest
/// are padded with silence so every track spans the whole file.
pub fn generate(spec: &RecordingSpec, out: &Path) -> anyhow::Result<Generated> {
    if spec.tracks.is_empty() && spec.video.is_none() {
        bail!("a recording needs a track or video");
    }
    if spec.container == Container::Flv && spec.tracks.len() > 1 {
        bail!("FLV holds one audio track");
    }
    let work = tempfile::tempdir()?;
    let mut layouts = Vec::new();
    let mut leads = Vec::new();
    let mut track_files = Vec::new();
    for (t, track) in spec.tracks.iter().enumerate() {
        let mut list = String::new();
        let mut pos = 0.0;
        let mut layout = Vec::new();
        let mut track_leads = Vec::new();
        for (i, seg) in track.segments.iter().enumerate() {
            let f = work.path().join(format!("t{t}-{i}.wav"));
            let d = render_segment(seg, &f, t * 1000 + i)?;
            track_leads.push(lead_in(&f)?);
            layout.push((seg.clone(), pos, pos + d));
            pos += d;
            list.push_str(&format!("file '{}'\n", f.display()));
        }
        let list_file = work.path().join(format!("t{t}.txt"));
        std::fs::write(&list_file, list)?;
        let joined = work.path().join(format!("t{t}.wav"));
        run(ffmpeg()
            .args(["-f", "concat", "-safe", "0", "-i"])
            .arg(&list_file)
            .args(["-c:a", "pcm_s16le"])
            .arg(&joined))?;
        layouts.push(layout);
        leads.push(track_leads);
        track_files.push(joined);
    }
    let duration = layouts
        .iter()
        .map(|l| l.last().map_or(0.0, |(_, _, e)| *e))
        .fold(0.0, f64::max)
        .max(if spec.tracks.is_empty() { 5.0 } else { 0.0 });

    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut cmd = ffmpeg();
    let mut input = 0;
    if let Some((w, h, fps)) = spec.video {
        cmd.args([
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size={w}x{h}:rate={fps}:duration={duration:.6}"),
        ]);
        input += 1;
    }
    for f in &track_files {
        cmd.arg("-i").arg(f);
    }
    if spec.video.is_some() {
        cmd.args(["-map", "0:v"]);
    }
    for t in 0..track_files.len() {
        cmd.args(["-map", &format!("{}:a", input + t)]);
    }
    if let Some((_, _, fps)) = spec.video {
        cmd.args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-g", &(fps * 2).to_string()]);
    }
    match spec.audio_codec {
        AudioCodec::Aac => cmd.args(["-c:a", "aac", "-b:a", "96k"]),
        AudioCodec::Opus => cmd.args(["-c:a", "libopus", "-b:a", "64k"]),
        AudioCodec::Pcm => cmd.args(["-c:a", "pcm_s16le"]),
    };
    for (t, track) in spec.tracks.iter().enumerate() {
        // MP4 drops `title`; OBS and ffprobe name MP4 tracks by handler_name.
        let key = if spec.container == Container::Mp4 {
            "handler_name"
        } else {
            "title"
        };
        cmd.args([
            &format!("-metadata:s:a:{t}"),
            &format!("{key}={}", track.title),
        ]);
        // Pad short tracks to the full length.
        cmd.args([
            &format!("-filter:a:{t}"),
            &format!("apad=whole_dur={duration:.6}"),
        ]);
    }
    cmd.args(["-t", &format!("{duration:.6}")]);
    if spec.container == Container::Mp4 {
        cmd.args(["-movflags", "+faststart"]);
    }
    let tmp = out.with_extension(format!("partial.{}", spec.container.extension()));
    cmd.arg(&tmp);
    run(&mut cmd)?;
    std::fs::rename(&tmp, out)?;
    Ok(Generated {
        path: out.to_path_buf(),
        duration,
        tracks: layouts,
        leads,
    })
}

/// Sentences for sample speech, varied enough for transcripts, summaries and search.
pub const SENTENCES: &[&str] = &[
    "Welcome back to the stream everyone. Today we are going to finish the castle level.",
    "The boss in this dungeon has three phases and the last one is really tricky.",
    "I found a secret room behind the waterfall with a golden key inside.",
    "Let me check the chat. Thanks for the follow and welcome to the community.",
    "We need more potions before we fight the dragon, so let's go back to the village.",
    "The blacksmith can upgrade the sword if we bring him enough iron ore.",
    "That was close. I almost fell into the lava on the last jump.",
    "Okay, that is it for today. Thank you all for watching and see you next time.",
];

/// The sample stream the main job ingests: two OBS-like MKV segments (720p would be slow to
/// generate; 640x360 keeps it to seconds), game audio on track 0 and speech on track 1.
pub fn sample_stream_specs() -> Vec<(String, RecordingSpec)> {
    let s = SENTENCES;
    let speech = |parts: Vec<Segment>| Track {
        title: "Mic".into(),
        segments: parts,
    };
    let clip = |mic: Vec<Segment>| {
        let total: f64 = mic.iter().map(Segment::nominal_seconds).sum();
        RecordingSpec {
            video: Some((640, 360, 30)),
            tracks: vec![
                Track {
                    title: "Game".into(),
                    segments: vec![Segment::Game(total)],
                },
                speech(mic),
            ],
            container: Container::Mkv,
            audio_codec: AudioCodec::Aac,
        }
    };
    vec![
        (
            "2026-01-01 10-00-00.mkv".into(),
            clip(vec![
                Segment::Silence(2.0),
                Segment::Speech(s[0].into()),
                Segment::Silence(4.0),
                Segment::Speech(s[1].into()),
                Segment::QuietNoise(6.0),
                Segment::Speech(s[2].into()),
                Segment::Silence(3.0),
            ]),
        ),
        (
            "2026-01-01 10-00-45.mkv".into(),
            clip(vec![
                Segment::Speech(s[3].into()),
                Segment::Silence(5.0),
                Segment::Speech(s[4].into()),
                Segment::Silence(2.5),
                Segment::Speech(s[5].into()),
                Segment::Silence(4.0),
                Segment::Speech(s[7].into()),
                Segment::Silence(2.0),
            ]),
        ),
    ]
}
