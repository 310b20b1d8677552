//! `bench/records`: the two storage backends issue 14 adds, each beside the one it can replace.
//!
//! 1. **`/records` on Postgres vs DynamoDB.** One API state (`gt_api::build_state`) served by
//!    two routers that differ only in `AppState.records`: `gt_store::PgStore` (what
//!    `GT_RECORD_BACKEND=postgres` builds) and `gt_records_dynamo::DynamoPgStore` over
//!    DynamoDB Local (npm jar, Java 17; what `GT_RECORD_BACKEND=dynamodb` builds: episodes are
//!    in DynamoDB). Both get the same records through the store (episodes spread over streams,
//!    for two users with the same ids), then the same HTTP requests from the same number of
//!    concurrent clients (closed loop, after a warm-up): a page of the list, a page filtered on
//!    a reference field (`{"stream_id": ...}`), the related list of a stream
//!    (`/records/episodes/stream_id/{id}`), a get by id and a put (merge update).
//!    Before timing, every list page, filtered page, related list and a sample of gets is
//!    checked against the seeded records (ids, order, every field, only the caller's records)
//!    and the two backends' answers are compared item by item; after the puts, every updated
//!    record is read back from both and must hold the last value written.
//!    `records ratio=X`: DynamoDB ops/s ÷ Postgres ops/s, geometric mean over the five
//!    operations (above 1: DynamoDB serves more requests per second).
//!
//! 2. **Probe + analysis from S3 vs the local directory.** A generated 1-hour recording (tiny
//!    H.264 video, AAC audio with 45 s tone / 15 s silence every minute, MP4 with its index at
//!    the end as OBS writes it) is probed and scanned (silence runs and the 16 kHz speech track:
//!    every step of the speech analysis that reads the recording) with the functions the
//!    activities call, from a `LocalDirStore` and from `S3BlobStore` on the in-process s3s-fs
//!    server, both through `recording_source` (`BlobStore::media_source`: a file, or a presigned
//!    URL FFmpeg reads with range requests). A byte-counting TCP relay in front of the S3 server
//!    shows what was transferred; the silence found must match the generated pattern and be the
//!    same from both sources. `records_s3_probe_analysis ratio=Y`: S3 time ÷ local time (goal
//!    ≤ 1.5).
//!
//! ```sh
//! cargo run --release -p gt-bench --bin records [-- --records 3000 --requests 2000]
//! ./gt bench records --part records --records 300 --requests 200   # one half, small
//! ```
//!
//! Defaults (see `--help`): 3000 episodes over 30 streams, 16 clients, 200 warm-up + 2000 timed
//! requests per operation and backend, pages of 50; a 60-minute recording, 5 runs per source
//! after a warm-up, 2 decode threads. Needs Postgres and Temporal (`gt test-env`, which
//! `./gt bench` provides, or the harness starts its own), Java 17 and npm (DynamoDB Local).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::{Parser, ValueEnum};
use gt_activities::ingest::recording_source;
use gt_activities::media::audio::{ScanInput, ScanOptions, scan};
use gt_activities::media::probe::probe;
use gt_activities::media::silence::SilenceParams;
use gt_activities::media::speech::speech_intervals;
use gt_api::config::{ApiConfig, AuthMode};
use gt_bench::{cache_dir, ffmpeg, present, run};
use gt_blob_s3::S3BlobStore;
use gt_blob_s3::testing::S3TestServer;
use gt_records_dynamo::local::DynamoLocal;
use gt_records_dynamo::{DynamoPgStore, DynamoRecordStore};
use gt_store::blob::MediaSource;
use gt_store::catalog::EPISODES;
use gt_store::{BlobStore, LocalDirStore, PgStore, RecordStore};
use gt_tests::{ALICE, BOB};
use gt_types::media::AnalysisParams;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Parser)]
struct Args {
    /// Which half to run.
    #[arg(long, value_enum, default_value_t = Part::All)]
    part: Part,
    /// Episodes seeded for the measured user (the other user gets as many, with the same ids).
    #[arg(long, env = "GT_BENCH_RECORDS", default_value_t = 3000)]
    records: usize,
    /// Streams the episodes are spread over (round robin): the reference field's values.
    #[arg(long, default_value_t = 30)]
    streams: usize,
    /// Timed requests per operation and backend.
    #[arg(long, env = "GT_BENCH_REQUESTS", default_value_t = 2000)]
    requests: usize,
    /// Untimed requests per operation and backend before the timed ones.
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// `perPage` of list requests.
    #[arg(long, default_value_t = 50)]
    per_page: usize,
    /// Length of the generated recording, minutes.
    #[arg(long, env = "GT_BENCH_RECORDING_MINUTES", default_value_t = 60)]
    recording_minutes: u32,
    /// Timed probe + analysis runs per source (after one warm-up each); the median counts.
    #[arg(long, env = "GT_BENCH_RUNS", default_value_t = 5)]
    runs: usize,
    /// Parallel decode chunks of the scan (the CPU worker's `GT_ANALYSIS_THREADS`).
    #[arg(long, default_value_t = 2)]
    analysis_threads: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    All,
    Records,
    Media,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    gt_worker_kit::init_tracing_with_default("warn");
    let media = match args.part {
        Part::All | Part::Media => Some(media_bench(&args).await?),
        Part::Records => None,
    };
    let records = match args.part {
        Part::All | Part::Records => Some(records_bench(&args).await?),
        Part::Media => None,
    };
    println!();
    if let Some(ratio) = media {
        println!("records_s3_probe_analysis ratio={ratio:.2}");
    }
    if let Some(ratio) = records {
        println!("records ratio={ratio:.2}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Part 1: /records on Postgres and on DynamoDB Local
// ---------------------------------------------------------------------------------------------

/// One backend behind its own router (same state otherwise).
struct Backend {
    name: &'static str,
    base: String,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Operation {
    /// `GET /records/episodes?perPage=P&cursor=C`, pages in turn.
    List,
    /// `GET /records/episodes?perPage=P&filter={"stream_id": S}`, streams in turn.
    ListFiltered,
    /// `GET /records/episodes/stream_id/{S}`, streams in turn.
    Related,
    /// `GET /records/episodes/{id}`, ids spread over the table.
    Get,
    /// `PUT /records/episodes/{id}` with a title and an order index, a different id each time.
    Put,
}

impl Operation {
    const ALL: [Operation; 5] = [
        Operation::List,
        Operation::ListFiltered,
        Operation::Related,
        Operation::Get,
        Operation::Put,
    ];

    fn label(self, per_page: usize) -> String {
        match self {
            Operation::List => format!("list (page of {per_page})"),
            Operation::ListFiltered => format!("list filtered by stream_id (page of {per_page})"),
            Operation::Related => "related: episodes of a stream".into(),
            Operation::Get => "get by id".into(),
            Operation::Put => "put (update)".into(),
        }
    }
}

/// The records as seeded: what every answer is checked against.
struct Truth {
    /// Alice's episodes by id (ids sort in byte order, as both stores list them).
    alice: BTreeMap<String, Value>,
    streams: Vec<String>,
}

impl Truth {
    fn ids(&self) -> Vec<&String> {
        self.alice.keys().collect()
    }

    fn ids_of_stream(&self, stream: &str) -> Vec<&String> {
        self.alice
            .iter()
            .filter(|(_, body)| body["stream_id"] == stream)
            .map(|(id, _)| id)
            .collect()
    }
}

fn episode_body(i: usize, streams: usize, owner: &str) -> Value {
    let stream = i % streams;
    json!({
        "id": format!("ep-{i:06}"),
        "title": format!("{owner}'s episode {i}"),
        "description": format!(
            "Highlights of stream {stream}, part {}: the boss fight, the chat's questions and \
             the plans for next week. Recorded live; edited from the stream's clips.",
            i / streams
        ),
        "order_index": i as i64,
        "is_published": i.is_multiple_of(3),
        "stream_id": format!("stream-{stream:03}"),
        "series_id": format!("series-{}", stream % 4),
        "tags": ["bench", format!("s{stream}")],
        "start_time": (i % 50) as f64 * 60.5,
        "end_time": (i % 50) as f64 * 60.5 + 1800.25,
    })
}

async fn seed(store: &dyn RecordStore, records: usize, streams: usize) -> anyhow::Result<()> {
    for owner in [ALICE, BOB] {
        let bodies: Vec<Value> = (0..records)
            .map(|i| episode_body(i, streams, owner))
            .collect();
        // 100 per call: DynamoDB's transaction limit (gt_records_dynamo::MAX_BULK).
        for chunk in bodies.chunks(gt_records_dynamo::MAX_BULK) {
            store.create(owner, &EPISODES, chunk).await?;
        }
    }
    Ok(())
}

/// The record without the fields each store stamps itself.
fn comparable(item: &Value) -> Value {
    let mut item = item.clone();
    if let Value::Object(map) = &mut item {
        map.remove("created_at");
        map.remove("updated_at");
    }
    item
}

/// JSON equality with numbers compared by value: Postgres's `to_jsonb` writes the float 0.0 as
/// `0`, which is the same number to every JSON reader (the front end included).
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// Every seeded field as seeded, and the owner is the caller.
fn check_item(item: &Value, expected: &Value, what: &str) -> anyhow::Result<()> {
    for (field, value) in expected.as_object().context("a seeded body")? {
        ensure!(
            same_json(&item[field], value),
            "{what}: {field} is {} but {value} was stored",
            item[field]
        );
    }
    ensure!(
        item["user_id"] == ALICE,
        "{what}: user_id is {}",
        item["user_id"]
    );
    Ok(())
}

struct Client {
    http: reqwest::Client,
    token: String,
}

impl Client {
    async fn get_json(&self, url: &str) -> anyhow::Result<Value> {
        let resp = self.http.get(url).bearer_auth(&self.token).send().await?;
        let status = resp.status();
        let body = resp.text().await?;
        ensure!(status.is_success(), "GET {url}: {status} {body}");
        Ok(serde_json::from_str(&body)?)
    }

    async fn put_json(&self, url: &str, body: &Value) -> anyhow::Result<Value> {
        let resp = self
            .http
            .put(url)
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await?;
        let status = resp.status();
        let text = resp.text().await?;
        ensure!(status.is_success(), "PUT {url}: {status} {text}");
        Ok(serde_json::from_str(&text)?)
    }
}

fn list_url(base: &str, per_page: usize, cursor: Option<&str>, stream: Option<&str>) -> String {
    let mut url = url::Url::parse(&format!("{base}/records/episodes")).expect("a base URL");
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("perPage", &per_page.to_string());
        if let Some(stream) = stream {
            q.append_pair("filter", &json!({ "stream_id": stream }).to_string());
        }
        if let Some(cursor) = cursor {
            q.append_pair("cursor", cursor);
        }
    }
    url.to_string()
}

fn items(page: &Value) -> anyhow::Result<&Vec<Value>> {
    page["items"].as_array().context("a page without items")
}

fn ids_of(items: &[Value]) -> Vec<&str> {
    items.iter().filter_map(|i| i["id"].as_str()).collect()
}

/// Reads every list page, every stream's filtered first page and related list and a sample of
/// records from one backend, checking each against the seeded truth. Returns the answers (for
/// the comparison between backends) and the cursors of the list's pages.
async fn check_reads(
    client: &Client,
    backend: &Backend,
    truth: &Truth,
    per_page: usize,
) -> anyhow::Result<(Vec<(String, Vec<Value>)>, Vec<Option<String>>)> {
    let mut answers = Vec::new();
    let what = |s: &str| format!("{}: {s}", backend.name);

    // The whole list, page by page.
    let mut cursors = vec![None];
    let mut listed = Vec::new();
    loop {
        let cursor = cursors.last().cloned().flatten();
        let page = client
            .get_json(&list_url(&backend.base, per_page, cursor.as_deref(), None))
            .await?;
        let items = items(&page)?;
        ensure!(
            items.len() <= per_page,
            "{}",
            what("a page longer than perPage")
        );
        listed.extend(ids_of(items).into_iter().map(str::to_string));
        answers.push((format!("list page {}", cursors.len()), items.clone()));
        for item in items {
            let id = item["id"].as_str().unwrap_or_default();
            let expected = truth
                .alice
                .get(id)
                .with_context(|| what(&format!("listed {id}, which alice does not have")))?;
            check_item(item, expected, &what(&format!("list item {id}")))?;
        }
        match page["cursor"].as_str() {
            Some(next) => cursors.push(Some(next.to_string())),
            None => break,
        }
    }
    let all: Vec<&str> = truth.ids().into_iter().map(String::as_str).collect();
    ensure!(
        listed == all,
        "{}",
        what(&format!(
            "the list walk returned {} ids, not alice's {} in id order",
            listed.len(),
            all.len()
        ))
    );

    for stream in &truth.streams {
        let of_stream: Vec<&str> = truth
            .ids_of_stream(stream)
            .into_iter()
            .map(String::as_str)
            .collect();
        let page = client
            .get_json(&list_url(&backend.base, per_page, None, Some(stream)))
            .await?;
        let got = items(&page)?;
        let first: Vec<&str> = of_stream.iter().take(per_page).copied().collect();
        ensure!(
            ids_of(got) == first,
            "{}",
            what(&format!("filtered page of {stream}: wrong ids"))
        );
        for item in got {
            check_item(
                item,
                &truth.alice[item["id"].as_str().unwrap_or_default()],
                &what(stream),
            )?;
        }
        answers.push((format!("filtered {stream}"), got.clone()));

        let related = client
            .get_json(&format!(
                "{}/records/episodes/stream_id/{stream}",
                backend.base
            ))
            .await?;
        let got = items(&related)?;
        let mut ids = ids_of(got);
        ids.sort_unstable();
        ensure!(
            ids == of_stream,
            "{}",
            what(&format!("related list of {stream}: wrong ids"))
        );
        for item in got {
            check_item(
                item,
                &truth.alice[item["id"].as_str().unwrap_or_default()],
                &what(stream),
            )?;
        }
        let mut sorted = got.clone();
        sorted.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        answers.push((format!("related {stream}"), sorted));
    }

    for id in truth.ids().into_iter().step_by(37) {
        let item = client
            .get_json(&format!("{}/records/episodes/{id}", backend.base))
            .await?;
        check_item(&item, &truth.alice[id], &what(&format!("get {id}")))?;
        answers.push((format!("get {id}"), vec![item]));
    }
    Ok((answers, cursors))
}

fn compare_answers(
    pg: &[(String, Vec<Value>)],
    dynamo: &[(String, Vec<Value>)],
) -> anyhow::Result<usize> {
    ensure!(
        pg.len() == dynamo.len(),
        "{} answers from Postgres, {} from DynamoDB",
        pg.len(),
        dynamo.len()
    );
    let mut items = 0;
    for ((what, a), (what_b, b)) in pg.iter().zip(dynamo) {
        ensure!(what == what_b, "answers out of step: {what} vs {what_b}");
        ensure!(
            a.len() == b.len(),
            "{what}: {} items from Postgres, {} from DynamoDB",
            a.len(),
            b.len()
        );
        for (x, y) in a.iter().zip(b) {
            let (x, y) = (comparable(x), comparable(y));
            ensure!(same_json(&x, &y), "{what}: Postgres has {x}, DynamoDB {y}");
            items += 1;
        }
    }
    Ok(items)
}

struct Measured {
    ops_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// One prepared request.
#[derive(Clone)]
enum Request {
    Get(String),
    Put(String, Value),
}

/// Sends `requests` with `concurrency` clients in a closed loop; every answer must be a 2xx
/// whose body is read in full. Returns throughput and latency percentiles.
async fn drive(
    client: &Arc<Client>,
    requests: Arc<Vec<Request>>,
    concurrency: usize,
) -> anyhow::Result<Measured> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, requests, next) = (client.clone(), requests.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut ms = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(request) = requests.get(i) else {
                    return anyhow::Ok(ms);
                };
                let t = Instant::now();
                let sent = match request {
                    Request::Get(url) => client.http.get(url),
                    Request::Put(url, body) => client.http.put(url).json(body),
                }
                .bearer_auth(&client.token)
                .send()
                .await?;
                let status = sent.status();
                let body = sent.bytes().await?;
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
                ensure!(
                    status.is_success(),
                    "request {i}: {status} {}",
                    String::from_utf8_lossy(&body)
                );
            }
        }));
    }
    let mut ms = Vec::with_capacity(requests.len());
    for w in workers {
        ms.extend(w.await??);
    }
    let wall = start.elapsed().as_secs_f64();
    ms.sort_by(f64::total_cmp);
    Ok(Measured {
        ops_per_s: requests.len() as f64 / wall,
        p50_ms: percentile(&ms, 0.5),
        p99_ms: percentile(&ms, 0.99),
    })
}

/// The `count` requests of `op` numbered from `from` (the same numbers give the same requests
/// on both backends). Put number `j` writes `put_title(j)` to the `j`-th id (modulo).
fn requests_for(
    op: Operation,
    base: &str,
    truth: &Truth,
    cursors: &[Option<String>],
    per_page: usize,
    from: usize,
    count: usize,
) -> Vec<Request> {
    let ids = truth.ids();
    (from..from + count)
        .map(|i| match op {
            Operation::List => {
                let cursor = cursors[i % cursors.len()].as_deref();
                Request::Get(list_url(base, per_page, cursor, None))
            }
            Operation::ListFiltered => {
                let stream = &truth.streams[i % truth.streams.len()];
                Request::Get(list_url(base, per_page, None, Some(stream)))
            }
            Operation::Related => {
                let stream = &truth.streams[i % truth.streams.len()];
                Request::Get(format!("{base}/records/episodes/stream_id/{stream}"))
            }
            // A stride prime to the count visits every id before repeating one.
            Operation::Get => Request::Get(format!(
                "{base}/records/episodes/{}",
                ids[(i * 7919) % ids.len()]
            )),
            Operation::Put => Request::Put(
                format!("{base}/records/episodes/{}", ids[i % ids.len()]),
                json!({"title": put_title(i), "order_index": i as i64}),
            ),
        })
        .collect()
}

fn put_title(j: usize) -> String {
    format!("edited by put {j}")
}

async fn records_bench(args: &Args) -> anyhow::Result<f64> {
    ensure!(
        args.records > 2 * args.concurrency && args.streams > 0 && args.per_page > 0,
        "need more records than twice the concurrency (each put's record is not written by \
         another request in flight), at least one stream and a positive page size"
    );
    println!(
        "== /records: {} episodes over {} streams for the measured user (and as many for another \
         user, same ids); {} concurrent clients; {} warm-up + {} timed requests per operation \
         and backend",
        args.records, args.streams, args.concurrency, args.warmup, args.requests
    );
    let started = Instant::now();
    let database_url = gt_tests::fresh_database().await?;
    let artifacts = tempfile::tempdir()?;
    let id = uuid_like();
    let config = ApiConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url,
        auth: AuthMode::External(gt_api::auth::AuthConfig::local(gt_tests::test_signer())),
        cpu_task_queue: format!("bench-cpu-{id}"),
        gpu_task_queue: format!("bench-gpu-{id}"),
        max_body_bytes: 16 * 1024 * 1024,
        cors_origins: vec![],
        temporal: gt_workflows::client::TemporalTarget {
            address: Some(gt_tests::stack().temporal_address.clone()),
            namespace: None,
        },
        records: gt_records_dynamo::RecordBackend::Postgres,
        artifacts: gt_blob_s3::BlobLocation::Local(artifacts.path().to_path_buf()),
        recordings: None,
        media_key: Some("bench-media-key".into()),
        ai: gt_tests::local_ai(),
        youtube: None,
        twitch: None,
    };
    // One state, served twice: as `GT_RECORD_BACKEND=postgres` builds it, and with `records`
    // as `GT_RECORD_BACKEND=dynamodb` builds it (`DynamoPgStore`: records in DynamoDB, what
    // needs Postgres in Postgres). Everything else the requests touch (auth, routing, JSON) is
    // the same object on both.
    let state = gt_api::build_state(&config).await?;
    let pg: Arc<dyn RecordStore> = state.records.clone();
    let dynamo_local = DynamoLocal::start().await?;
    let dynamo = DynamoRecordStore::new(dynamo_local.client().await, "gt_records_bench");
    dynamo.ensure_table().await?;
    let pool = gt_store::pg::connect(&config.database_url, 16).await?;
    let dynamo: Arc<dyn RecordStore> = Arc::new(DynamoPgStore::new(dynamo, PgStore::new(pool)));
    eprintln!(
        "  Postgres, Temporal and DynamoDB Local up in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut backends = Vec::new();
    for (name, records) in [("postgres", pg.clone()), ("dynamodb", dynamo.clone())] {
        let t = Instant::now();
        seed(records.as_ref(), args.records, args.streams).await?;
        eprintln!(
            "  seeded {name} through the store: {} records in {:.1} s",
            2 * args.records,
            t.elapsed().as_secs_f64()
        );
        let mut backend_state = state.clone();
        backend_state.records = records;
        let app = gt_api::router(backend_state, &config);
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let base = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move {
            let _ = gt_api::serve(listener, app, std::future::pending()).await;
        });
        backends.push(Backend { name, base });
    }

    let truth = Truth {
        alice: (0..args.records)
            .map(|i| {
                let body = episode_body(i, args.streams, ALICE);
                (body["id"].as_str().unwrap_or_default().to_string(), body)
            })
            .collect(),
        streams: (0..args.streams.min(args.records))
            .map(|s| format!("stream-{s:03}"))
            .collect(),
    };
    let client = Arc::new(Client {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(args.concurrency * 2)
            .timeout(Duration::from_secs(120))
            .build()?,
        token: gt_tests::test_signer().mint(ALICE, Duration::from_secs(6 * 3600))?,
    });

    // The same requests must get the same records from both, and the records that were stored.
    let t = Instant::now();
    let (pg_answers, cursors) = check_reads(&client, &backends[0], &truth, args.per_page).await?;
    let (dynamo_answers, dynamo_cursors) =
        check_reads(&client, &backends[1], &truth, args.per_page).await?;
    ensure!(
        cursors == dynamo_cursors,
        "the backends page differently (cursors differ)"
    );
    let compared = compare_answers(&pg_answers, &dynamo_answers)?;
    println!(
        "checked before timing: {} answers per backend ({} list pages, {} filtered pages, {} \
         related lists, {} gets), {compared} items equal on both and to what was stored, only \
         the caller's records ({:.1} s)",
        pg_answers.len(),
        cursors.len(),
        truth.streams.len(),
        truth.streams.len(),
        pg_answers.len() - cursors.len() - 2 * truth.streams.len(),
        t.elapsed().as_secs_f64()
    );

    let mut table: Vec<(Operation, Vec<Measured>)> = Vec::new();
    for op in Operation::ALL {
        let mut row = Vec::new();
        for backend in &backends {
            let requests = |from, count| {
                Arc::new(requests_for(
                    op,
                    &backend.base,
                    &truth,
                    &cursors,
                    args.per_page,
                    from,
                    count,
                ))
            };
            drive(&client, requests(0, args.warmup), args.concurrency).await?;
            let m = drive(
                &client,
                requests(args.warmup, args.requests),
                args.concurrency,
            )
            .await?;
            eprintln!(
                "  {:<45} {:<9} {:>8.0} ops/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
                op.label(args.per_page),
                backend.name,
                m.ops_per_s,
                m.p50_ms,
                m.p99_ms
            );
            row.push(m);
        }
        table.push((op, row));
    }

    // Every put landed: the last title written to each record, on both backends, and the two
    // records are otherwise the same.
    let puts = args.warmup + args.requests;
    let mut last_put: HashMap<&str, usize> = HashMap::new();
    let ids = truth.ids();
    for j in 0..puts {
        last_put.insert(ids[j % ids.len()].as_str(), j);
    }
    for (id, &j) in &last_put {
        let mut got = Vec::new();
        for backend in &backends {
            let item = client
                .get_json(&format!("{}/records/episodes/{id}", backend.base))
                .await?;
            let mut expected = truth.alice[*id].clone();
            expected["title"] = json!(put_title(j));
            expected["order_index"] = json!(j as i64);
            check_item(
                &item,
                &expected,
                &format!("{} after the puts: {id}", backend.name),
            )?;
            got.push(comparable(&item));
        }
        ensure!(
            same_json(&got[0], &got[1]),
            "{id} after the puts: Postgres has {}, DynamoDB {}",
            got[0],
            got[1]
        );
    }
    // A put that answered 2xx must also have answered with the record; spot-check one reply.
    let sample = ids[0];
    let reply = client
        .put_json(
            &format!("{}/records/episodes/{sample}", backends[1].base),
            &json!({"title": put_title(puts)}),
        )
        .await?;
    ensure!(
        reply["title"] == put_title(puts),
        "DynamoDB's put answered {reply}"
    );
    println!(
        "checked after timing: the {} records the {puts} puts wrote hold the last title written, \
         equal on both backends",
        last_put.len()
    );

    println!();
    println!(
        "{:<45} {:>10} {:>9} {:>9} {:>10} {:>9} {:>9} {:>7}",
        "operation", "pg ops/s", "pg p50", "pg p99", "ddb ops/s", "ddb p50", "ddb p99", "ddb÷pg"
    );
    let mut log_sum = 0.0;
    for (op, row) in &table {
        let (pg, ddb) = (&row[0], &row[1]);
        let ratio = ddb.ops_per_s / pg.ops_per_s;
        log_sum += ratio.ln();
        println!(
            "{:<45} {:>10.0} {:>6.2} ms {:>6.2} ms {:>10.0} {:>6.2} ms {:>6.2} ms {:>7.2}",
            op.label(args.per_page),
            pg.ops_per_s,
            pg.p50_ms,
            pg.p99_ms,
            ddb.ops_per_s,
            ddb.p50_ms,
            ddb.p99_ms,
            ratio
        );
    }
    let ratio = (log_sum / table.len() as f64).exp();
    println!(
        "DynamoDB Local ÷ Postgres throughput, geometric mean over the {} operations: {ratio:.2}",
        table.len()
    );
    drop(dynamo_local);
    Ok(ratio)
}

fn uuid_like() -> String {
    format!(
        "{:x}-{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    )
}

// ---------------------------------------------------------------------------------------------
// Part 2: probe + analysis of a 1-hour recording from S3 vs the local directory
// ---------------------------------------------------------------------------------------------

/// Each minute of the recording: this many seconds of tone, then silence to the minute's end.
const TONE_S: f64 = 45.0;
const PERIOD_S: f64 = 60.0;

/// The recording, generated once into the benchmark cache: 160x90 H.264 at 10 fps and AAC
/// stereo at 64 kb/s, MP4 with the index (`moov`) at the end, as OBS writes it.
fn recording(minutes: u32) -> anyhow::Result<PathBuf> {
    let out = cache_dir().join(format!("records-s3-{minutes}min-tone-silence.mp4"));
    if present(&out) {
        return Ok(out);
    }
    eprintln!("generating {} (once)", out.display());
    let seconds = (minutes * 60).to_string();
    let tmp = out.with_extension("partial.mp4");
    run(ffmpeg()
        .args(["-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size=160x90:rate=10:duration={seconds}"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "aevalsrc=0.25*sin(2*PI*440*t)*lt(mod(t\\,{PERIOD_S})\\,{TONE_S})|\
             0.25*sin(2*PI*660*t)*lt(mod(t\\,{PERIOD_S})\\,{TONE_S}):s=48000:d={seconds}"
        ))
        .args(["-map", "0:v", "-map", "1:a"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "35",
            "-g",
            "50",
        ])
        .args(["-pix_fmt", "yuv420p"])
        .args(["-c:a", "aac", "-b:a", "64k", "-ar", "48000", "-ac", "2"])
        .args(["-t", &seconds, "-f", "mp4"])
        .arg(&tmp))?;
    std::fs::rename(&tmp, &out)?;
    Ok(out)
}

/// The silence the generated pattern has: the last 15 s of every minute.
fn expected_silence(duration: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut minute = 0.0;
    while minute * PERIOD_S + TONE_S < duration {
        out.push((
            minute * PERIOD_S + TONE_S,
            ((minute + 1.0) * PERIOD_S).min(duration),
        ));
        minute += 1.0;
    }
    out
}

/// A TCP relay in front of the S3 server that counts the bytes the server sent back, so the
/// bench can show what a reader transferred (headers included). The store's endpoint is the
/// relay, so presigned URLs name it and their signatures hold.
struct CountingRelay {
    endpoint: String,
    served: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
    accept: tokio::task::JoinHandle<()>,
}

impl CountingRelay {
    async fn start(upstream: SocketAddr) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let served = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let (count, opened) = (served.clone(), connections.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let count = count.clone();
                opened.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (mut client_rx, mut client_tx) = client.into_split();
                    let (mut server_rx, mut server_tx) = server.into_split();
                    let up = async {
                        let _ = tokio::io::copy(&mut client_rx, &mut server_tx).await;
                        let _ = server_tx.shutdown().await;
                    };
                    let down = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            match server_rx.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    count.fetch_add(n as u64, Ordering::Relaxed);
                                    if client_tx.write_all(&buf[..n]).await.is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                        let _ = client_tx.shutdown().await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        Ok(Self {
            endpoint,
            served,
            connections,
            accept,
        })
    }

    fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }
}

impl Drop for CountingRelay {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// What one probe + analysis found, and how long its parts took.
struct Analysed {
    probe: Duration,
    analysis: Duration,
    duration: f64,
    streams: usize,
    silence: Vec<(f64, f64)>,
    speech: Vec<(f64, f64)>,
    pcm16k_len: usize,
}

impl Analysed {
    fn total(&self) -> Duration {
        self.probe + self.analysis
    }
}

/// What `ingest.probe_clip` and then `media.analyze_speech` do with a recording before the
/// VAD: the source from the store (`recording_source`, as both activities get it), the probe,
/// the speech track chosen, one scan for silence runs and the 16 kHz speech audio, and the
/// loud intervals. Silero VAD and the speech-audio assembly that follow work on the decoded
/// samples in memory, the same whatever the store, so they are not timed here.
async fn probe_and_analyse(
    store: &dyn BlobStore,
    key: &str,
    threads: usize,
) -> anyhow::Result<Analysed> {
    let t = Instant::now();
    let source = recording_source(store, ALICE, key)
        .await
        .map_err(|e| anyhow::anyhow!("recording_source: {e:?}"))?;
    let (probe_time, info, source) = {
        let key = key.to_string();
        tokio::task::spawn_blocking(move || {
            let info = probe(&source, &key);
            (t.elapsed(), info, source)
        })
        .await?
    };
    let info = info?;
    let track = gt_activities::analysis::choose_speech_track(&info)
        .context("the recording has no audio track")?;
    let params = AnalysisParams::default();
    let t = Instant::now();
    let key = key.to_string();
    let scanned = tokio::task::spawn_blocking(move || {
        scan(
            &ScanInput {
                source: &source,
                name: &key,
                track: track as usize,
                progress: &|_| {},
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
    .await??;
    let speech = speech_intervals(&scanned.silence, scanned.start, scanned.end, params.margin);
    Ok(Analysed {
        probe: probe_time,
        analysis: t.elapsed(),
        duration: info.format.duration,
        streams: info.streams.len(),
        silence: scanned.silence,
        speech,
        pcm16k_len: scanned.pcm16k.len(),
    })
}

fn check_silence(found: &[(f64, f64)], duration: f64, what: &str) -> anyhow::Result<()> {
    let expected = expected_silence(duration);
    ensure!(
        found.len() == expected.len(),
        "{what}: {} silences found, the recording has {}",
        found.len(),
        expected.len()
    );
    // AAC frames are 1024 samples (21 ms) and the tone is cut hard: allow a few frames.
    for (&(s, e), &(xs, xe)) in found.iter().zip(&expected) {
        ensure!(
            (s - xs).abs() < 0.1 && (e - xe).abs() < 0.1,
            "{what}: silence {s:.3}–{e:.3} s, generated {xs:.3}–{xe:.3} s"
        );
    }
    Ok(())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn media_bench(args: &Args) -> anyhow::Result<f64> {
    ensure!(
        args.runs > 0 && args.recording_minutes > 0,
        "need at least one run and one minute"
    );
    let file = recording(args.recording_minutes)?;
    let size = std::fs::metadata(&file)?.len();
    println!(
        "== probe + analysis of a {}-minute recording ({:.1} MB, {}) from the local directory \
         and from S3 (s3s-fs in-process, presigned URL, range requests); {} runs each after a \
         warm-up, {} decode threads",
        args.recording_minutes,
        size as f64 / 1e6,
        file.display(),
        args.runs,
        args.analysis_threads
    );
    let key = "bench/recording.mp4";
    let stored_key = gt_store::recording_key(ALICE, key)?;

    // The local directory: the recordings root holds the owner's folder.
    let local_root = tempfile::tempdir()?;
    let local_path = local_root.path().join(&stored_key);
    std::fs::create_dir_all(local_path.parent().context("a parent")?)?;
    if std::fs::hard_link(&file, &local_path).is_err() {
        std::fs::copy(&file, &local_path)?;
    }
    let local = LocalDirStore::new(local_root.path());

    // S3: s3s-fs on a real port behind the counting relay; the object uploaded by the store.
    let s3_root = tempfile::tempdir()?;
    let server = S3TestServer::start(s3_root.path().join("s3")).await?;
    let upstream: SocketAddr = server
        .endpoint()
        .trim_start_matches("http://")
        .parse()
        .context("the S3 server's address")?;
    let relay = CountingRelay::start(upstream).await?;
    let s3_cache = s3_root.path().join("download-cache");
    let mut config = server.config("recordings", &s3_cache);
    config.endpoint_url = Some(relay.endpoint.clone());
    let s3 = S3BlobStore::connect(config).await?;
    s3.create_bucket_if_missing().await?;
    let upload = s3_root.path().join("upload.mp4");
    std::fs::copy(&file, &upload)?;
    s3.put_file(&stored_key, &upload).await?;
    ensure!(
        s3.head(&stored_key).await?.size == size,
        "the uploaded object's size differs from the file's"
    );
    match recording_source(&s3, ALICE, key)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?
    {
        MediaSource::Url(_) => {}
        MediaSource::File(p) => bail!("S3 handed a local file ({}), not a URL", p.display()),
    }
    let requests_before = server.requests().len();

    let mut local_runs = Vec::new();
    let mut s3_runs = Vec::new();
    let mut s3_bytes = Vec::new();
    let mut s3_probe_bytes = Vec::new();
    let mut connections = 0;
    for round in 0..=args.runs {
        let label = if round == 0 {
            "warm-up".to_string()
        } else {
            format!("run {round}/{}", args.runs)
        };
        let l = probe_and_analyse(&local, key, args.analysis_threads).await?;
        eprintln!(
            "  {label} local: probe {:.3} s + analysis {:.3} s",
            l.probe.as_secs_f64(),
            l.analysis.as_secs_f64()
        );
        let (before, opened) = (relay.served(), relay.connections());
        let s = probe_and_analyse(&s3, key, args.analysis_threads).await?;
        let bytes = relay.served() - before;
        eprintln!(
            "  {label} S3:    probe {:.3} s + analysis {:.3} s, {:.1} MB from S3",
            s.probe.as_secs_f64(),
            s.analysis.as_secs_f64(),
            bytes as f64 / 1e6
        );
        // Same answers from both, and the answers the generated pattern has.
        ensure!(
            (l.duration - s.duration).abs() < 1e-9 && l.streams == s.streams,
            "the probes differ: {} s / {} streams locally, {} s / {} streams from S3",
            l.duration,
            l.streams,
            s.duration,
            s.streams
        );
        ensure!(
            (l.duration - f64::from(args.recording_minutes) * 60.0).abs() < 0.1,
            "probed duration {} s",
            l.duration
        );
        ensure!(
            l.silence == s.silence && l.speech == s.speech && l.pcm16k_len == s.pcm16k_len,
            "the analyses differ between the local file and S3"
        );
        check_silence(&l.silence, l.duration, "local")?;
        if round > 0 {
            s3_bytes.push(bytes);
            connections += relay.connections() - opened;
            local_runs.push(l);
            s3_runs.push(s);
        }
    }
    // The probe alone, once more, for its share of the bytes.
    {
        let before = relay.served();
        let source = recording_source(&s3, ALICE, key)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let name = key.to_string();
        tokio::task::spawn_blocking(move || probe(&source, &name)).await??;
        s3_probe_bytes.push(relay.served() - before);
    }
    let requests: Vec<_> = server.requests()[requests_before..].to_vec();
    let gets: Vec<_> = requests.iter().filter(|r| r.method == "GET").collect();
    let ranged = gets.iter().filter(|r| r.range.is_some()).count();
    let cached_files = std::fs::read_dir(&s3_cache).map(|d| d.count()).unwrap_or(0);

    let med =
        |runs: &[Analysed], f: fn(&Analysed) -> Duration| median(runs.iter().map(f).collect());
    let (local_probe, local_analysis, local_total) = (
        med(&local_runs, |a| a.probe),
        med(&local_runs, |a| a.analysis),
        med(&local_runs, Analysed::total),
    );
    let (s3_probe, s3_analysis, s3_total) = (
        med(&s3_runs, |a| a.probe),
        med(&s3_runs, |a| a.analysis),
        med(&s3_runs, Analysed::total),
    );
    let run_bytes = {
        let mut b = s3_bytes.clone();
        b.sort_unstable();
        b[b.len() / 2]
    };
    println!();
    println!(
        "{:<12} {:>10} {:>12} {:>10}",
        "source", "probe", "analysis", "total"
    );
    for (name, p, a, t) in [
        ("local dir", local_probe, local_analysis, local_total),
        ("S3", s3_probe, s3_analysis, s3_total),
    ] {
        println!(
            "{name:<12} {:>8.3} s {:>10.3} s {:>8.3} s",
            p.as_secs_f64(),
            a.as_secs_f64(),
            t.as_secs_f64()
        );
    }
    println!(
        "analysis result (both sources): {} silences matching the generated pattern, {:.0} s \
         of loud audio, {:.0} s of 16 kHz speech audio decoded",
        local_runs[0].silence.len(),
        local_runs[0].speech.iter().map(|(s, e)| e - s).sum::<f64>(),
        local_runs[0].pcm16k_len as f64 / 16_000.0
    );
    println!(
        "bytes the S3 server sent (counted by the relay, headers included, and what was in \
         flight when FFmpeg dropped a connection to seek elsewhere): probe alone {:.2} MB ({:.2} \
         % of the {:.1} MB file); probe + analysis {:.1} MB per run ({:.2}× the file: the audio \
         is spread over the whole file and each decode chunk reads its part); {} GET requests in \
         {} probes + analyses and one probe, {} with a Range header, {} connections per run; the \
         store's download cache holds {} files (no local copy was made)",
        s3_probe_bytes[0] as f64 / 1e6,
        100.0 * s3_probe_bytes[0] as f64 / size as f64,
        size as f64 / 1e6,
        run_bytes as f64 / 1e6,
        run_bytes as f64 / size as f64,
        gets.len(),
        args.runs + 1,
        ranged,
        connections / args.runs as u64,
        cached_files
    );
    ensure!(
        cached_files == 0,
        "the S3 store downloaded the recording into its cache"
    );
    ensure!(
        ranged == gets.len(),
        "{} GETs without a Range header",
        gets.len() - ranged
    );
    let ratio = s3_total.as_secs_f64() / local_total.as_secs_f64();
    println!("S3 ÷ local, probe + analysis: {ratio:.2} (goal ≤ 1.5)");
    Ok(ratio)
}
