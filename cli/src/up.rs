//! `gt up`: the embedded default stack on this machine, plus the main job on a sample recording.
//!
//! Starts Postgres (cluster under the data dir, migrations applied), the Temporal dev server
//! (SQLite file under the data dir, UI on), `worker-cpu`, `worker-gpu` and the API; prints the
//! URLs and a login token; ingests the sample stream through the API; then waits for Ctrl-C and
//! stops everything in order. Everything listens on 127.0.0.1.
//!
//! The workers and the API are supervised: one that dies is restarted with a growing delay (1 s,
//! 2 s, 4 s … 30 s; back to 1 s once it has run for a minute) and a line saying so, while the
//! rest stays up; Temporal re-dispatches what it was doing. A dead Postgres or Temporal server
//! stops the stack (they hold the state). Each service's pid is in `run/{name}.pid`. Ctrl-C
//! stops the API, then both workers (they stop polling and cancel running activities after a
//! short grace), then Temporal, then Postgres.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
    /// The secret that seals users' OAuth tokens at rest (`GT_TOKEN_KEY`), made once.
    pub fn token_key(&self) -> PathBuf {
        self.root.join("token-key")
    }
    /// `run/{name}.pid`: the supervised services' current pids.
    pub fn pid_file(&self, name: &str) -> PathBuf {
        self.root.join("run").join(format!("{name}.pid"))
    }
}

/// Longest wait before restarting a service that keeps dying.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A service that ran this long is healthy again: its next restart waits 1 s.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);
/// How long a service may take to stop on SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(15);
/// The workers' drain on a local stop (`GT_SHUTDOWN_GRACE_SECS`): Ctrl-C should not wait
/// minutes for an encode; what is cancelled resumes at the next `up`. Below [`STOP_GRACE`].
const LOCAL_SHUTDOWN_GRACE_S: u64 = 10;

/// A worker or the API: started from its binary with its environment, restarted when it dies.
struct Service {
    name: &'static str,
    binary: PathBuf,
    env: Vec<(String, String)>,
    log: PathBuf,
    pid_file: PathBuf,
    child: Option<Managed>,
    /// Restarts in a row without a healthy run in between.
    crashes: u32,
    started: Instant,
    retry_at: Option<Instant>,
}

impl Service {
    fn start(&mut self) -> anyhow::Result<()> {
        let mut cmd = Command::new(&self.binary);
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let child = process::spawn(
            cmd,
            SpawnOptions {
                name: self.name,
                log: &self.log,
                run_as: None,
            },
        )?;
        if let (Some(pid), Some(dir)) = (child.pid(), self.pid_file.parent()) {
            std::fs::create_dir_all(dir)?;
            std::fs::write(&self.pid_file, format!("{pid}\n"))?;
        }
        self.child = Some(child);
        self.started = Instant::now();
        self.retry_at = None;
        Ok(())
    }

    /// Notices a dead service and restarts it once its delay has passed; returns what happened,
    /// for the terminal.
    fn supervise(&mut self) -> anyhow::Result<Option<String>> {
        if let Some(child) = &mut self.child {
            let Some(status) = child.exit_status()? else {
                return Ok(None);
            };
            self.child = None;
            let _ = std::fs::remove_file(&self.pid_file);
            if self.started.elapsed() >= HEALTHY_AFTER {
                self.crashes = 0;
            }
            let delay = Duration::from_secs(1 << self.crashes.min(5)).min(MAX_BACKOFF);
            self.crashes += 1;
            self.retry_at = Some(Instant::now() + delay);
            return Ok(Some(format!(
                "{} exited ({status}); restarting it in {} s (see {})",
                self.name,
                delay.as_secs(),
                self.log.display()
            )));
        }
        match self.retry_at {
            Some(at) if Instant::now() >= at => {
                self.start()?;
                Ok(Some(format!(
                    "{} restarted (pid {}, restart {})",
                    self.name,
                    self.child.as_ref().and_then(Managed::pid).unwrap_or(0),
                    self.crashes
                )))
            }
            _ => Ok(None),
        }
    }

    async fn stop(&mut self) {
        if let Some(child) = &mut self.child {
            child.stop_with(libc::SIGTERM, STOP_GRACE).await;
        }
        self.child = None;
        let _ = std::fs::remove_file(&self.pid_file);
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
    /// The workers, then the API.
    services: Vec<Service>,
}

impl Stack {
    /// Stops the API first (no new work comes in), then the workers side by side (they stop
    /// polling and cancel running activities after a short grace), then Temporal, then Postgres.
    async fn stop(&mut self) {
        let workers = self.services.len().saturating_sub(1);
        let (workers, api) = self.services.split_at_mut(workers);
        for s in api {
            s.stop().await;
        }
        futures::future::join_all(workers.iter_mut().map(Service::stop)).await;
        self.temporal.stop().await;
        self.postgres.stop().await;
    }

    /// Fails if Postgres or Temporal died; restarts a dead worker or API (printing what it did).
    fn check(&mut self) -> anyhow::Result<()> {
        self.postgres.check_running()?;
        self.temporal.check_running()?;
        for s in &mut self.services {
            if let Some(line) = s.supervise()? {
                println!("  [supervisor] {line}");
            }
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

/// `GT_TOKEN_KEY` from the environment, else the data dir's key file (created once, 0600):
/// sealed tokens must open again after a restart.
fn token_key(path: &std::path::Path) -> anyhow::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Ok(k) = std::env::var("GT_TOKEN_KEY")
        && !k.trim().is_empty()
    {
        return Ok(k);
    }
    if let Ok(k) = std::fs::read_to_string(path) {
        return Ok(k.trim().to_string());
    }
    let key: String = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    writeln!(f, "{key}")?;
    Ok(key)
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
        ("GT_TOKEN_KEY", token_key(&data.token_key())?),
        ("GT_SHUTDOWN_GRACE_SECS", LOCAL_SHUTDOWN_GRACE_S.to_string()),
    ];
    for (name, bin) in [
        ("worker-cpu", "worker-cpu"),
        ("worker-gpu", "worker-gpu"),
        ("api", "gt-api"),
    ] {
        let mut service = Service {
            name,
            binary: sibling_binary(bin)?,
            env: common_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            log: data.logs().join(format!("{name}.log")),
            pid_file: data.pid_file(name),
            child: None,
            crashes: 0,
            started: Instant::now(),
            retry_at: None,
        };
        service.start()?;
        stack.services.push(service);
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
    let mut watch = tokio::time::interval(Duration::from_millis(500));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = term.recv() => return Ok(()),
            _ = watch.tick() => {
                if let Err(e) = stack.check() {
                    return Err(e.context(format!("a server stopped unexpectedly; see {}", data.logs().display())));
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
