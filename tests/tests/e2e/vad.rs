//! gt-vad against the reference implementation: the official Silero VAD ONNX model run by
//! onnxruntime (Python, installed by `./gt test`) on a real voice and on music, window by
//! window, with the same 64-sample context and state handling as Silero's own wrapper.

use std::path::PathBuf;

use gt_cli::media_gen::{RecordingSpec, Segment, generate};
use gt_tests::truth::{ffmpeg_16k_mono, librivox, silero_reference};
use gt_tests::vad_model;

fn python() -> PathBuf {
    PathBuf::from(
        std::env::var("GT_PYTHON").expect("GT_PYTHON is not set: run the suite with ./gt test"),
    )
}

#[test]
fn silero_in_rust_matches_the_onnx_reference_on_voice_and_music() {
    let dir = tempfile::tempdir().unwrap();
    let voices = librivox();
    let music = generate(
        &RecordingSpec::mic(vec![Segment::Music(20.0)], None),
        &dir.path().join("music.mkv"),
    )
    .unwrap();
    let vad = gt_vad::SileroVad::load(&vad_model()).unwrap();
    for (name, src) in [
        ("voice", voices[0].wav.clone()),
        ("voice2", voices[3].wav.clone()),
        ("music", music.path.clone()),
    ] {
        let wav = dir.path().join(format!("{name}.wav"));
        let pcm: Vec<f32> = ffmpeg_16k_mono(&src, None, Some(&wav))
            .into_iter()
            .map(|s| f32::from(s) / 32768.0)
            .collect();
        let ours = vad.probabilities(&pcm, 2);
        let (_, reference) = silero_reference(&python(), &vad_model(), &wav, 1).unwrap();
        assert_eq!(ours.len(), reference.len(), "{name}");
        let worst = ours
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        let voiced = ours.iter().filter(|&&p| p >= 0.5).count() as f64 / ours.len() as f64;
        println!(
            "[vad] {name}: {} windows, max |ours - onnxruntime| = {worst:.2e}, {:.0} % voice",
            ours.len(),
            voiced * 100.0
        );
        assert!(
            worst < 1e-3,
            "{name}: differs from the reference by {worst}"
        );
        if name == "music" {
            assert!(
                voiced < 0.02,
                "music called voice in {:.0} % of windows",
                voiced * 100.0
            );
        } else {
            assert!(
                voiced > 0.5,
                "{name}: voice found in only {:.0} % of windows",
                voiced * 100.0
            );
        }
    }
}
