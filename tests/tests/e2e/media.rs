//! Media analysis against FFmpeg itself: our in-process speech map must agree with
//! `ffmpeg -af silencedetect` on the same files, across containers and codecs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use gt_activities::media::MediaError;
use gt_activities::media::audio::{ScanInput, ScanOptions, scan};
use gt_activities::media::silence::SilenceParams;
use gt_cli::media_gen::{
    AudioCodec, Container, Generated, RecordingSpec, Segment, Track, generate,
};

const PARAMS: SilenceParams = SilenceParams {
    noise_db: -50.0,
    min_duration: 1.0,
};

/// Speech with pauses of known length on the mic track; game audio (never silent) on the other.
fn mic_segments() -> Vec<Segment> {
    use gt_cli::media_gen::SENTENCES as S;
    vec![
        Segment::Silence(1.5),
        Segment::Speech(S[0].into()),
        Segment::Silence(3.0),
        Segment::Speech(S[1].into()),
        Segment::Silence(0.6), // shorter than d=1: not a silence
        Segment::Speech(S[2].into()),
        Segment::QuietNoise(2.5), // below -50 dB: silence
        Segment::Speech(S[3].into()),
        Segment::Tone(2.0), // -40 dB: not silence
        Segment::Speech(S[6].into()),
        Segment::Silence(2.0), // ends in silence: closed at end of stream
    ]
}

/// The fixtures, generated once per test process into a cache directory.
fn fixtures() -> &'static Vec<(String, Generated, usize)> {
    static F: OnceLock<Vec<(String, Generated, usize)>> = OnceLock::new();
    F.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("gt-media-fixtures-{}", std::process::id()));
        let game = |secs: f64| Track {
            title: "Game".into(),
            segments: vec![Segment::Game(secs)],
        };
        let mic = Track {
            title: "Mic".into(),
            segments: mic_segments(),
        };
        let two = |container, codec| RecordingSpec {
            video: Some((160, 90, 10)),
            tracks: vec![game(1.0), mic.clone()],
            container,
            audio_codec: codec,
        };
        let one = |container, codec, video| RecordingSpec {
            video,
            tracks: vec![mic.clone()],
            container,
            audio_codec: codec,
        };
        [
            ("aac.mkv", two(Container::Mkv, AudioCodec::Aac), 1),
            ("opus.mkv", two(Container::Mkv, AudioCodec::Opus), 1),
            ("aac.mp4", two(Container::Mp4, AudioCodec::Aac), 1),
            (
                "aac.flv",
                one(Container::Flv, AudioCodec::Aac, Some((160, 90, 10))),
                0,
            ),
            ("pcm.mkv", one(Container::Mkv, AudioCodec::Pcm, None), 0),
        ]
        .into_iter()
        .map(|(name, spec, track)| {
            let g = generate(&spec, &dir.join(name)).expect("generating fixture");
            (name.to_string(), g, track)
        })
        .collect()
    })
}

/// `ffmpeg -af silencedetect` on `path`'s audio track `track`: (start, end) pairs.
fn ffmpeg_silencedetect(path: &Path, track: usize) -> Vec<(f64, f64)> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-i"])
        .arg(path)
        .args(["-map", &format!("0:a:{track}")])
        .args([
            "-af",
            &format!(
                "silencedetect=noise={}dB:d={}",
                PARAMS.noise_db, PARAMS.min_duration
            ),
        ])
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let mut starts = Vec::new();
    let mut ends = Vec::new();
    for line in log.lines() {
        if let Some(v) = line.split("silence_start: ").nth(1) {
            starts.push(v.trim().parse::<f64>().unwrap());
        }
        if let Some(v) = line.split("silence_end: ").nth(1) {
            ends.push(v.split_whitespace().next().unwrap().parse::<f64>().unwrap());
        }
    }
    assert_eq!(starts.len(), ends.len(), "{log}");
    starts.into_iter().zip(ends).collect()
}

fn scan_file(
    path: &Path,
    track: usize,
    threads: usize,
    speech_audio: bool,
) -> Result<gt_activities::media::audio::AudioScan, MediaError> {
    scan(
        &ScanInput {
            source: &path.into(),
            name: "fixture",
            track,
            progress: &|_| {},
        },
        &ScanOptions {
            params: PARAMS,
            threads,
            speech_audio,
        },
    )
}

#[test]
fn silence_matches_ffmpeg_silencedetect_within_10ms() {
    for (name, g, track) in fixtures() {
        let want = ffmpeg_silencedetect(&g.path, *track);
        // Four known pauses qualify: the lead-in, 3 s, the quiet noise, and the tail.
        assert_eq!(want.len(), 4, "{name}: ffmpeg found {want:?}");
        for threads in [1, 3] {
            let got = scan_file(&g.path, *track, threads, false).unwrap();
            assert_eq!(
                got.silence.len(),
                want.len(),
                "{name} ({threads} threads): {:?} vs {want:?}",
                got.silence
            );
            for (a, b) in got.silence.iter().zip(&want) {
                assert!(
                    (a.0 - b.0).abs() <= 0.010 && (a.1 - b.1).abs() <= 0.010,
                    "{name} ({threads} threads): ours {a:?}, ffmpeg {b:?}"
                );
            }
        }
        // And where they should be: the generator knows where it put the pauses.
        let layout = &g.tracks[g.tracks.len() - 1];
        let pause = layout
            .iter()
            .find(|(s, _, _)| *s == Segment::Silence(3.0))
            .map(|(_, a, b)| (*a, *b))
            .unwrap();
        let found = scan_file(&g.path, *track, 1, false).unwrap().silence;
        // espeak-ng pads its speech with up to half a second of its own silence.
        assert!(
            found.iter().any(|&(s, e)| s >= pause.0 - 0.6
                && s <= pause.0 + 0.1
                && e >= pause.1 - 0.1
                && e <= pause.1 + 0.6),
            "{name}: the 3 s pause at {pause:?} not in {found:?}"
        );
    }
}

#[test]
fn parallel_chunks_give_the_sequential_result() {
    // A longer file so the scan really splits (files under a minute are decoded whole).
    let dir = std::env::temp_dir().join(format!("gt-media-long-{}", std::process::id()));
    let mut segments = Vec::new();
    for i in 0..10 {
        segments.push(Segment::Speech(gt_cli::media_gen::SENTENCES[i % 8].into()));
        segments.push(Segment::Silence(1.0 + (i % 3) as f64));
        segments.push(Segment::QuietNoise(0.7));
    }
    let g = generate(
        &RecordingSpec {
            video: None,
            tracks: vec![Track {
                title: "Mic".into(),
                segments,
            }],
            container: Container::Mkv,
            audio_codec: AudioCodec::Aac,
        },
        &dir.join("long.mkv"),
    )
    .unwrap();
    assert!(g.duration > 60.0, "{}", g.duration);
    let one = scan_file(&g.path, 0, 1, true).unwrap();
    for threads in [2, 3, 5] {
        let many = scan_file(&g.path, 0, threads, true).unwrap();
        assert_eq!(many.chunks, threads);
        // Equal up to AAC's noise substitution: the decoder fills noise bands from a random
        // generator whose state depends on where decoding started, so noise near the threshold
        // may cross it a sample earlier or later. Edges stay within the 10 ms contract.
        assert_eq!(many.silence.len(), one.silence.len(), "{threads} chunks");
        for (a, b) in many.silence.iter().zip(&one.silence) {
            assert!(
                (a.0 - b.0).abs() < 0.010 && (a.1 - b.1).abs() < 0.010,
                "{threads} chunks: {a:?} vs {b:?}"
            );
        }
        assert_eq!((many.start, many.end), (one.start, one.end));
        assert_eq!(many.pcm16k.len(), one.pcm16k.len());
        // Chunk joins are seamless (resampler pre-roll); only noise substitution differs.
        let diff: f64 = many
            .pcm16k
            .iter()
            .zip(&one.pcm16k)
            .map(|(a, b)| f64::from((a - b).abs()))
            .sum::<f64>()
            / one.pcm16k.len() as f64;
        assert!(diff < 2.0, "{threads} chunks: mean abs difference {diff}");
    }
    let want = ffmpeg_silencedetect(&g.path, 0);
    assert_eq!(one.silence.len(), want.len());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn speech_audio_is_16khz_mono_of_the_whole_track() {
    let (_, g, track) = &fixtures()[0];
    let s = scan_file(&g.path, *track, 2, true).unwrap();
    let expected = ((s.end - s.start) * 16_000.0).round() as usize;
    assert_eq!(s.pcm16k.len(), expected);
    // The first speech segment is loud, the lead-in silence is not.
    let speech = &g.tracks[1][1];
    let at = |t: f64| ((t - s.start) * 16_000.0) as usize;
    let rms = |a: usize, b: usize| {
        (s.pcm16k[a..b]
            .iter()
            .map(|&x| f64::from(x).powi(2))
            .sum::<f64>()
            / (b - a) as f64)
            .sqrt()
    };
    assert!(rms(at(speech.1 + 0.2), at(speech.2 - 0.2)) > 300.0);
    assert!(rms(at(0.1), at(1.3)) < 5.0);
}

fn bad_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gt-media-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn bad_inputs_are_refused_with_a_reason() {
    let (_, mkv, _) = &fixtures()[0];
    let bytes = std::fs::read(&mkv.path).unwrap();
    let silent_video = {
        let dir = std::env::temp_dir().join(format!("gt-media-novideo-{}", std::process::id()));
        generate(
            &RecordingSpec {
                video: Some((160, 90, 10)),
                tracks: vec![],
                container: Container::Mp4,
                audio_codec: AudioCodec::Aac,
            },
            &dir.join("video-only.mp4"),
        )
        .unwrap()
        .path
    };
    let cases: Vec<(PathBuf, usize, &str)> = vec![
        (bad_file("empty.mkv", b""), 0, "empty (0 bytes)"),
        (
            bad_file("text.mkv", b"hello, I am not a video"),
            0,
            "not a media file",
        ),
        (
            bad_file("noise.mkv", &[0x5a; 100_000]),
            0,
            "not a media file",
        ),
        (
            bad_file("half.mkv", &bytes[..bytes.len() / 2]),
            1,
            "truncated",
        ),
        (silent_video, 0, "has no audio track"),
        (mkv.path.clone(), 2, "has 2 audio track(s); track 2"),
    ];
    for (path, track, want) in cases {
        let err = scan_file(&path, track, 2, true).unwrap_err().to_string();
        assert!(err.contains(want), "{}: {err}", path.display());
        assert!(err.starts_with("fixture"), "names the file: {err}");
    }
}

/// Signal-to-noise ratio (dB) of `got` against `want` over their common length.
fn snr_db(want: &[i16], got: &[i16]) -> f64 {
    let n = want.len().min(got.len());
    let (mut signal, mut noise) = (0.0f64, 0.0f64);
    for i in 0..n {
        let (w, g) = (f64::from(want[i]), f64::from(got[i]));
        signal += w * w;
        noise += (w - g) * (w - g);
    }
    10.0 * (signal / noise.max(1e-9)).log10()
}

/// The shift (samples, within ±20 ms) at which `got` best matches `want`, over two seconds of
/// the first sentence (1.5–3.5 s).
fn best_lag(want: &[i16], got: &[i16]) -> i64 {
    let corr = |lag: i64| -> f64 {
        (24_000..56_000)
            .map(|i| f64::from(want[i]) * f64::from(got[(i as i64 + lag) as usize]))
            .sum()
    };
    (-320i64..=320)
        .max_by(|&a, &b| corr(a).total_cmp(&corr(b)))
        .unwrap()
}

/// The speech audio handed to Whisper is what FFmpeg itself decodes from the file, in every
/// container and codec (no offset from Opus pre-skip, no resampling or chunk-join damage);
/// what differs between codecs is the codec's own loss, measured against the lossless track.
/// (AAC in Matroska and FLV decodes ~12 ms late against the source in FFmpeg too: the encoder's
/// priming samples, which only MP4's edit list removes.)
#[test]
fn speech_audio_is_what_ffmpeg_decodes_and_opus_loses_only_what_the_codec_loses() {
    let lossless = {
        let (_, g, track) = fixtures().iter().find(|(n, _, _)| n == "pcm.mkv").unwrap();
        scan_file(&g.path, *track, 1, true).unwrap().pcm16k
    };
    for (name, g, track) in fixtures() {
        for threads in [1, 3] {
            let ours = scan_file(&g.path, *track, threads, true).unwrap().pcm16k;
            let theirs = gt_tests::truth::ffmpeg_16k_mono(&g.path, Some(*track), None);
            assert!(
                (ours.len() as i64 - theirs.len() as i64).abs() <= 16,
                "{name}: {} samples, ffmpeg {}",
                ours.len(),
                theirs.len()
            );
            assert_eq!(
                best_lag(&theirs, &ours),
                0,
                "{name}: shifted against ffmpeg"
            );
            let vs_ffmpeg = snr_db(&theirs, &ours);
            let vs_source = snr_db(&lossless, &ours);
            println!(
                "[speech audio] {name} ({threads} threads): SNR vs ffmpeg {vs_ffmpeg:.1} dB, vs the lossless source {vs_source:.1} dB, lag vs source {}",
                best_lag(&lossless, &ours)
            );
            assert!(
                vs_ffmpeg >= 60.0,
                "{name}: {vs_ffmpeg:.1} dB from ffmpeg's decode"
            );
        }
    }
}
