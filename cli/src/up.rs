//! `gt up`: the embedded default stack on this machine, plus the main job on a sample recording.
//!
//! Starts Postgres (cluster under the data dir, migrations applied), the Temporal dev server
//! (SQLite file under the data dir, UI on), `worker-cpu`, `worker-gpu` and the API; prints the
//! URLs and a login token; ingests the sample stream through the API; then waits for Ctrl-C and
//! stops everything in order. Everything listens on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use gt_auth::LocalSigner;
use serde_json::{Value, json};
use tokio::process::Command;

use crate::media_gen;
use crate::postgres::{PostgresServer, tail_of};
use crate::process::{self, Managed, SpawnOptions};
use crate::temporal::{TemporalOptions, TemporalServer};
use crate::tools::Tools;

pub const DATABASE: &str = "glowing_telegram";
pub const SAMPLE_STREAM_ID: &str = "sample-stream";
pub const SAMPLE_PREFIX: &str = "sample";

#[derive(Debug, Clone)]
pub struct UpOptions {
    pub data_dir: PathBuf,
    pub api_port: u16,
    pub pg_port: u16,
    pub temporal_port: u16,
    pub temporal_ui_port: u16,
    pub whisper_model: PathBuf,
    /// Run the sample ingestion after start-up.
    pub sample: bool,
    /// Stop after the sample job instead of waiting for Ctrl-C (for scripted checks).
    pub exit_after_sample: bool,
}

/// Layout of the data directory.
pub struct DataDir {
    pub root: PathBuf,
}

impl DataDir {
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    pub fn postgres(&self) -> PathBuf {
        self.root.join("postgres")
    }
    pub fn temporal_db(&self) -> PathBuf {
        self.root.join("temporal.db")
    }
    pub fn recordings(&self) -> PathBuf {
        self.root.join("recordings")
    }
    /// A user's recordings root: one folder per stream (the stream's prefix) inside it.
    pub fn user_recordings(&self, user_id: &str) -> PathBuf {
        self.recordings().join(gt_types::owner_segment(user_id))
    }
    pub fn artifacts(&self) -> PathBuf {
        self.root.join("artifacts")
    }
    pub fn jwt_key(&self) -> PathBuf {
        self.root.join("jwt-key.pem")
    }
}

/// The binaries built next to `gt` (same cargo profile).
fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name(name);
    if !path.is_file() {
        bail!(
            "{} not found next to {}: build the workspace (./gt up does)",
            name,
            exe.display()
        );
    }
    Ok(path)
}

struct Stack {
    postgres: PostgresServer,
    temporal: TemporalServer,
    services: Vec<Managed>,
}

impl Stack {
    /// Stops the API and workers first (they drain), then Temporal, then Postgres.
    async fn stop(&mut self) {
        for s in self.services.iter_mut().rev() {
            s.stop().await;
        }
        self.temporal.stop().await;
        self.postgres.stop().await;
    }

    fn check(&mut self) -> anyhow::Result<()> {
        self.postgres.check_running()?;
        self.temporal.check_running()?;
        for s in &mut self.services {
            s.check_running()?;
        }
        Ok(())
    }
}

pub async fn up(opts: UpOptions) -> anyhow::Result<()> {
    let tools = Tools::discover()?;
    let data = DataDir {
        root: opts.data_dir.clone(),
    };
    std::fs::create_dir_all(data.recordings())?;
    std::fs::create_dir_all(data.artifacts())?;
    std::fs::create_dir_all(data.logs())?;
    for port in [
        opts.api_port,
        opts.pg_port,
        opts.temporal_port,
        opts.temporal_ui_port,
    ] {
        if process::port_in_use(port) {
            bail!(
                "port {port} is already in use (is another `gt up` running?). Stop it, or choose ports with GT_API_PORT, GT_PG_PORT, GT_TEMPORAL_PORT, GT_TEMPORAL_UI_PORT"
            );
        }
    }

    println!("Starting Postgres ({}) ...", data.postgres().display());
    let postgres = PostgresServer::start(
        &tools.pg_bin,
        &data.postgres(),
        opts.pg_port,
        &data.logs().join("postgres.log"),
        false,
    )
    .await?;
    postgres.ensure_database(DATABASE, None).await?;
    let database_url = postgres.url(DATABASE);
    let pool = gt_store::pg::connect(&database_url, 2).await?;
    gt_store::pg::migrate(&pool).await?;
    pool.close().await;

    println!("Starting Temporal ({}) ...", data.temporal_db().display());
    let temporal = TemporalServer::start(TemporalOptions {
        bin: &tools.temporal,
        db_file: Some(&data.temporal_db()),
        port: opts.temporal_port,
        ui_port: Some(opts.temporal_ui_port),
        log: &data.logs().join("temporal.log"),
    })
    .await?;

    let mut stack = Stack {
        postgres,
        temporal,
        services: Vec::new(),
    };
    let result = run_services(&mut stack, &opts, &data, &database_url).await;
    println!("\nStopping ...");
    stack.stop().await;
    println!("Stopped. Data kept in {}", data.root.display());
    result
}

async fn run_services(
    stack: &mut Stack,
    opts: &UpOptions,
    data: &DataDir,
    database_url: &str,
) -> anyhow::Result<()> {
    let api_url = format!("http://127.0.0.1:{}", opts.api_port);
    let common_env: Vec<(&str, String)> = vec![
        ("DATABASE_URL", database_url.to_string()),
        ("TEMPORAL_ADDRESS", stack.temporal.address()),
        ("TEMPORAL_NAMESPACE", "default".into()),
        ("GT_RECORDINGS_DIR", data.recordings().display().to_string()),
        ("GT_ARTIFACTS_DIR", data.artifacts().display().to_string()),
        ("GT_WHISPER_MODEL", opts.whisper_model.display().to_string()),
        ("GT_API_ADDR", format!("127.0.0.1:{}", opts.api_port)),
        ("GT_JWT_KEY_FILE", data.jwt_key().display().to_string()),
    ];
    for (name, bin) in [
        ("worker-cpu", "worker-cpu"),
        ("worker-gpu", "worker-gpu"),
        ("api", "gt-api"),
    ] {
        let mut cmd = Command::new(sibling_binary(bin)?);
        cmd.envs(common_env.iter().map(|(k, v)| (*k, v.as_str())));
        let log = data.logs().join(format!("{name}.log"));
        stack.services.push(process::spawn(
            cmd,
            SpawnOptions {
                name,
                log: &log,
                run_as: None,
            },
        )?);
    }

    let http = reqwest::Client::new();
    let ready = process::wait_until("the API", Duration::from_secs(120), || {
        let check = stack.check();
        let http = http.clone();
        let url = format!("{api_url}/readyz");
        async move {
            check?;
            let r = http.get(&url).send().await?;
            if !r.status().is_success() {
                bail!("{}", r.text().await.unwrap_or_default());
            }
            Ok(())
        }
    })
    .await;
    if let Err(e) = ready {
        let logs: Vec<String> = ["api", "worker-cpu", "worker-gpu"]
            .iter()
            .map(|n| {
                format!(
                    "--- {n}.log ---\n{}",
                    tail_of(&data.logs().join(format!("{n}.log")))
                )
            })
            .collect();
        return Err(e.context(logs.join("\n")));
    }

    // The API created the key on first start; mint a token with the same key.
    let signer = LocalSigner::load_or_create(
        &data.jwt_key(),
        LocalSigner::DEFAULT_ISSUER,
        LocalSigner::DEFAULT_AUDIENCE,
    )?;
    let token = signer.mint(gt_types::LOCAL_USER_ID, gt_auth::MAX_TOKEN_LIFETIME)?;

    println!();
    println!("glowing-telegram is up.");
    println!("  Web UI       {api_url}/#token={token}");
    println!("  API          {api_url}  (OpenAPI: {api_url}/openapi.json)");
    if let Some(ui) = stack.temporal.ui_url() {
        println!("  Temporal UI  {ui}");
    }
    println!("  Token        {token}");
    println!("  Logs         {}", data.logs().display());
    println!(
        "  Recordings   {}  (one folder per stream = the stream's prefix)",
        data.user_recordings(gt_types::LOCAL_USER_ID).display()
    );
    println!();

    if opts.sample {
        let client = ApiClient {
            http: http.clone(),
            base: api_url.clone(),
            token: token.clone(),
        };
        sample_job(&client, data, stack).await?;
    }
    if opts.exit_after_sample {
        return Ok(());
    }
    println!("Press Ctrl-C to stop.");
    let mut watch = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = watch.tick() => {
                if let Err(e) = stack.check() {
                    return Err(e.context(format!("a service stopped unexpectedly; see {}", data.logs().display())));
                }
            }
        }
    }
}

/// A thin client of the running API (as the local user).
pub struct ApiClient {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl ApiClient {
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("Authorization", &self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, value))
    }

    async fn ok(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let (status, v) = self.call(method.clone(), path, body).await?;
        if !(200..300).contains(&status) {
            bail!("{method} {path} answered {status}: {v}");
        }
        Ok(v)
    }
}

fn ensure_sample_media(recordings: &Path) -> anyhow::Result<()> {
    let dir = recordings.join(SAMPLE_PREFIX);
    for (name, spec) in media_gen::sample_stream_specs() {
        let path = dir.join(&name);
        if path.is_file() {
            continue;
        }
        println!("  generating sample recording {} ...", path.display());
        media_gen::generate(&spec, &path).with_context(|| format!("generating {name}"))?;
    }
    Ok(())
}

async fn sample_job(api: &ApiClient, data: &DataDir, stack: &mut Stack) -> anyhow::Result<()> {
    println!("Main job: ingesting the sample stream");
    ensure_sample_media(&data.user_recordings(gt_types::LOCAL_USER_ID))?;
    let (status, _) = api
        .call(
            reqwest::Method::GET,
            &format!("/records/streams/{SAMPLE_STREAM_ID}"),
            None,
        )
        .await?;
    if status == 404 {
        api.ok(
            reqwest::Method::POST,
            "/records/streams",
            Some(json!({
                "id": SAMPLE_STREAM_ID,
                "title": "Sample stream",
                "prefix": SAMPLE_PREFIX,
                "stream_platform": "twitch",
                "stream_date": "2026-01-01T10:00:00Z",
            })),
        )
        .await?;
    }
    let started = api
        .ok(
            reqwest::Method::POST,
            "/stream",
            Some(json!({"streamId": SAMPLE_STREAM_ID, "initialPrompt": "", "initialSummary": ""})),
        )
        .await?;
    println!(
        "  workflow {} run {}",
        started["workflowId"].as_str().unwrap_or("?"),
        started["runId"].as_str().unwrap_or("?")
    );
    let status = crate::ingest::follow(api, SAMPLE_STREAM_ID, || stack.check()).await?;
    let waiting = status["status"] == "RUNNING";
    if !waiting && status["status"] != "COMPLETED" {
        bail!(
            "the sample ingestion ended {}: {}",
            status["status"],
            status["error"].as_str().unwrap_or("no reason given")
        );
    }
    let clips = api
        .ok(
            reqwest::Method::GET,
            &format!("/records/video_clips/stream_id/{SAMPLE_STREAM_ID}"),
            None,
        )
        .await?;
    println!("  clips:");
    for c in clips["items"].as_array().into_iter().flatten() {
        let speech = &c["speech"];
        println!(
            "    {:<34} at {:>6.2} s, {:>6.2} s long; speech on track {} ({}): {:.1} s in {} parts, {} pauses; {} thumbnails, {} preview segments",
            c["key"].as_str().unwrap_or("?"),
            c["start_time"].as_f64().unwrap_or(f64::NAN),
            c["metadata"]["format"]["duration"]
                .as_f64()
                .unwrap_or(f64::NAN),
            speech["track"],
            speech["track_title"].as_str().unwrap_or("untitled"),
            speech["speech_seconds"].as_f64().unwrap_or(0.0),
            speech["speech"].as_array().map_or(0, Vec::len),
            speech["silence"].as_array().map_or(0, Vec::len),
            c["keyframes"].as_array().map_or(0, Vec::len),
            c["transcode"].as_array().map_or(0, Vec::len),
        );
        let t = &c["transcription"];
        if let Some(text) = t["text"].as_str() {
            let words: Vec<&str> = text.split_whitespace().collect();
            let excerpt = words[..words.len().min(18)].join(" ");
            println!(
                "      transcript ({}, {} segments): \"{excerpt}{}\"",
                t["language"].as_str().unwrap_or("?"),
                t["segments"].as_array().map_or(0, Vec::len),
                if words.len() > 18 { " …" } else { "" }
            );
        }
    }
    let query = crate::ingest::first_words(api, SAMPLE_STREAM_ID).await;
    crate::ingest::print_results(api, SAMPLE_STREAM_ID, &query).await?;
    println!(
        "  {} (see it in the Temporal UI under {})",
        if waiting {
            "waiting for your review"
        } else {
            "done"
        },
        gt_types::stream_ingest_workflow_id(gt_types::LOCAL_USER_ID, SAMPLE_STREAM_ID)
    );
    println!(
        "  preview playlist: {}/playlist/{SAMPLE_STREAM_ID}.m3u8?token=<token>\n",
        api.base
    );
    Ok(())
}
