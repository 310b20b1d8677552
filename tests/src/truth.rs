//! Independent truth for timing tests: real recorded voices with word times from a forced
//! alignment made by another tool, word-sequence alignment between a reference text and a
//! transcript, and error statistics.
//!
//! The voices are LibriVox recordings (public domain: Jane Austen's *Sense and Sensibility*,
//! read by a volunteer) that ship in the `pocketsphinx` 5.1.1 source package on PyPI together
//! with PocketSphinx's word alignment of each utterance. `./gt` unpacks them into the cache and
//! sets `GT_VOICE_DIR`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::words;

/// A word with its time (seconds from the start of its recording).
#[derive(Debug, Clone, PartialEq)]
pub struct TimedWord {
    pub word: String,
    pub start: f64,
    pub end: f64,
}

/// One recorded utterance: the file, what is said, and when each word is said.
#[derive(Debug, Clone)]
pub struct Utterance {
    pub wav: PathBuf,
    pub text: String,
    pub words: Vec<TimedWord>,
}

#[derive(Deserialize)]
struct Alignment {
    t: String,
    w: Vec<AlignedWord>,
}

#[derive(Deserialize)]
struct AlignedWord {
    /// Begin and duration, seconds.
    b: f64,
    d: f64,
    t: String,
}

/// The LibriVox utterances, in file order.
pub fn librivox() -> Vec<Utterance> {
    let dir = PathBuf::from(std::env::var("GT_VOICE_DIR").expect(
        "GT_VOICE_DIR is not set: run the suite with ./gt test, which fetches the voice samples",
    ))
    .join("librivox");
    let mut jsons: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && !p.to_string_lossy().contains(".phone.")
                && !p.to_string_lossy().contains(".state.")
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("sense_and_sensibility"))
        })
        .collect();
    jsons.sort();
    assert!(
        !jsons.is_empty(),
        "no LibriVox alignments in {}",
        dir.display()
    );
    jsons
        .into_iter()
        .map(|json| {
            let a: Alignment = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
            let words =
                a.w.iter()
                    .filter(|w| !w.t.starts_with('<') && !w.t.starts_with('['))
                    .map(|w| TimedWord {
                        // Pronunciation variants are marked "word(2)".
                        word: w.t.split('(').next().unwrap_or("").to_string(),
                        start: w.b,
                        end: w.b + w.d,
                    })
                    .collect();
            Utterance {
                wav: json.with_extension("wav"),
                text: a.t,
                words,
            }
        })
        .collect()
}

/// The reference implementation of Silero VAD: its official ONNX model in onnxruntime, driven
/// window by window with the 64-sample context and state as Silero's own wrapper does. Prints
/// the seconds spent (model loading and Python start-up excluded), then every probability.
const SILERO_REFERENCE: &str = r#"
import sys, time, wave, numpy as np, onnxruntime as ort
opts = ort.SessionOptions()
opts.intra_op_num_threads = int(sys.argv[3])
opts.inter_op_num_threads = 1
sess = ort.InferenceSession(sys.argv[1], sess_options=opts, providers=["CPUExecutionProvider"])
w = wave.open(sys.argv[2])
pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0
n = (len(pcm) + 511) // 512
pcm = np.pad(pcm, (0, n * 512 - len(pcm)))
names = [i.name for i in sess.get_inputs()]
t = time.perf_counter()
state = np.zeros((2, 1, 128), dtype=np.float32)
context = np.zeros((1, 64), dtype=np.float32)
probs = []
for i in range(n):
    x = np.concatenate([context, pcm[None, i * 512:(i + 1) * 512]], axis=1)
    feeds = {"input": x, "state": state}
    if "sr" in names:
        feeds["sr"] = np.array(16000, dtype=np.int64)
    out, state = sess.run(None, feeds)
    context = x[:, -64:]
    probs.append(out.item())
print(f"{time.perf_counter() - t:.6f}")
print(" ".join(f"{p:.7f}" for p in probs))
"#;

/// Runs a reference tool's Python `script` with `python` and `args`. The script prints the
/// seconds its own work took on its first line (no interpreter start-up or model loading) and
/// its result after; returns both. `tool` names it in errors.
pub fn timed_python(
    python: &Path,
    tool: &str,
    script: &str,
    args: &[&std::ffi::OsStr],
) -> anyhow::Result<(f64, String)> {
    let out = Command::new(python)
        .args(["-c", script])
        .args(args)
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    if !out.status.success() {
        bail!("{tool} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let secs = first
        .trim()
        .parse()
        .with_context(|| format!("{tool} printed no timing line"))?;
    Ok((secs, rest.to_string()))
}

/// Silero VAD's speech probability for every 512-sample window of `wav` (16 kHz mono s16), by
/// the reference implementation run with `python` (which has onnxruntime and numpy), and the
/// seconds it took.
pub fn silero_reference(
    python: &Path,
    model: &Path,
    wav: &Path,
    threads: usize,
) -> anyhow::Result<(f64, Vec<f32>)> {
    let threads = threads.to_string();
    let (secs, out) = timed_python(
        python,
        "onnxruntime",
        SILERO_REFERENCE,
        &[model.as_os_str(), wav.as_os_str(), threads.as_ref()],
    )?;
    let probs = out
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    Ok((secs, probs))
}

/// FFmpeg's own decode of `path` (audio track `track`, or the first) as 16 kHz mono s16 with
/// its default downmix and resampler: an independent reading of a file; written to `wav` too
/// when given.
pub fn ffmpeg_16k_mono(path: &Path, track: Option<usize>, wav: Option<&Path>) -> Vec<i16> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i"])
        .arg(path);
    if let Some(t) = track {
        cmd.args(["-map", &format!("0:a:{t}")]);
    }
    cmd.args(["-ac", "1", "-ar", "16000"]);
    match wav {
        Some(w) => cmd.args(["-c:a", "pcm_s16le"]).arg(w),
        None => cmd.args(["-f", "s16le", "-"]),
    };
    let out = cmd.output().expect("running ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = match wav {
        Some(w) => {
            let (_, pcm) = gt_worker_kit::wav::read_wav(&std::fs::read(w).unwrap()).unwrap();
            return pcm;
        }
        None => out.stdout,
    };
    bytes
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect()
}

/// Pairs `(i, j)` of equal words of `reference[i]` and `hypothesis[j]` on a minimum edit path
/// (words compared lower-case without punctuation).
pub fn align(reference: &[String], hypothesis: &[String]) -> Vec<(usize, usize)> {
    let norm = |w: &String| words(w).join("");
    let (r, h): (Vec<String>, Vec<String>) = (
        reference.iter().map(norm).collect(),
        hypothesis.iter().map(norm).collect(),
    );
    let (n, m) = (r.len(), h.len());
    let mut cost = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in cost.iter_mut().enumerate() {
        row[0] = i;
    }
    cost[0] = (0..=m).collect();
    for i in 1..=n {
        for j in 1..=m {
            let sub = cost[i - 1][j - 1] + usize::from(r[i - 1] != h[j - 1]);
            cost[i][j] = sub.min(cost[i - 1][j] + 1).min(cost[i][j - 1] + 1);
        }
    }
    let (mut i, mut j, mut pairs) = (n, m, Vec::new());
    while i > 0 && j > 0 {
        let same = r[i - 1] == h[j - 1];
        if cost[i][j] == cost[i - 1][j - 1] + usize::from(!same) {
            if same {
                pairs.push((i - 1, j - 1));
            }
            i -= 1;
            j -= 1;
        } else if cost[i][j] == cost[i - 1][j] + 1 {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    pairs.reverse();
    pairs
}

/// Median, 99th percentile and maximum of absolute errors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorStats {
    pub n: usize,
    pub median: f64,
    pub p99: f64,
    pub max: f64,
}

impl ErrorStats {
    pub fn of(errors: &[f64]) -> Self {
        let mut e: Vec<f64> = errors.iter().map(|x| x.abs()).collect();
        e.sort_by(f64::total_cmp);
        let at = |q: f64| {
            if e.is_empty() {
                f64::NAN
            } else {
                e[((e.len() - 1) as f64 * q).round() as usize]
            }
        };
        Self {
            n: e.len(),
            median: at(0.5),
            p99: at(0.99),
            max: e.last().copied().unwrap_or(f64::NAN),
        }
    }
}

impl std::fmt::Display for ErrorStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "n={} median={:.3} s p99={:.3} s max={:.3} s",
            self.n, self.median, self.p99, self.max
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn alignment_pairs_equal_words_across_edits() {
        let pairs = align(
            &w("and mister john dashwood had then"),
            &w("And Mr. John Dashwood, had than"),
        );
        assert_eq!(pairs, vec![(0, 0), (2, 2), (3, 3), (4, 4)]);
        assert!(align(&w("a b"), &[]).is_empty());
    }

    #[test]
    fn stats_are_of_absolute_errors() {
        let s = ErrorStats::of(&[0.1, -0.3, 0.2, -5.0]);
        assert_eq!(s.n, 4);
        assert!((s.max - 5.0).abs() < 1e-12);
        assert!((s.median - 0.3).abs() < 1e-12);
    }
}
