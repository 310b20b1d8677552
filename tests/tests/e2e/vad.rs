//! gt-vad against the reference implementation: the official Silero VAD ONNX model run by
//! onnxruntime (Python, installed by `./gt test`) on a real voice and on music, window by
//! window, with the same 64-sample context and state handling as Silero's own wrapper.

use std::process::Command;

use gt_cli::media_gen::{RecordingSpec, Segment, generate};
use gt_tests::truth::librivox;
use gt_tests::vad_model;

const REFERENCE: &str = r#"
import sys, wave, numpy as np, onnxruntime as ort
sess = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
w = wave.open(sys.argv[2])
pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0
n = (len(pcm) + 511) // 512
pcm = np.pad(pcm, (0, n * 512 - len(pcm)))
state = np.zeros((2, 1, 128), dtype=np.float32)
context = np.zeros((1, 64), dtype=np.float32)
names = [i.name for i in sess.get_inputs()]
for i in range(n):
    x = np.concatenate([context, pcm[None, i * 512:(i + 1) * 512]], axis=1)
    feeds = {"input": x, "state": state}
    if "sr" in names:
        feeds["sr"] = np.array(16000, dtype=np.int64)
    out, state = sess.run(None, feeds)
    context = x[:, -64:]
    print(f"{out.item():.7f}")
"#;

fn python() -> String {
    std::env::var("GT_PYTHON").expect("GT_PYTHON is not set: run the suite with ./gt test")
}

/// `src` as 16 kHz mono s16 WAV samples (ffmpeg), written to `wav` too.
fn to_16k(src: &std::path::Path, wav: &std::path::Path) -> Vec<f32> {
    gt_cli::media_gen::run(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i"])
            .arg(src)
            .args(["-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le"])
            .arg(wav),
    )
    .unwrap();
    let (_, pcm) = gt_worker_kit::wav::read_wav(&std::fs::read(wav).unwrap()).unwrap();
    pcm.into_iter().map(|s| f32::from(s) / 32768.0).collect()
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
        let pcm = to_16k(&src, &wav);
        let ours = vad.probabilities(&pcm, 2);
        let out = Command::new(python())
            .args(["-c", REFERENCE])
            .arg(vad_model())
            .arg(&wav)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let reference: Vec<f32> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
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
