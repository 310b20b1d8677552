//! Harness for the end-to-end tests: real Temporal, real Postgres, the real API and workers.
//!
//! `./gt test` starts one throw-away Temporal + Postgres per test run (`gt test-env`) and passes
//! their addresses in the environment. Run without it (plain `cargo test`), the harness starts
//! its own stack once per test process. Each test then gets its own database (a copy of the
//! migrated template), its own task queues and its own blob directory, so tests run in
//! parallel without seeing each other.

pub mod truth;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use gt_activities::worker::{CpuConfig, cpu_worker_options};
use gt_api::auth::{AuthConfig, LocalSigner};
use gt_api::config::{ApiConfig, AuthMode};
use gt_cli::stack::{ENV_PG_ADMIN_URL, ENV_PG_TEMPLATE, ENV_TEMPORAL_ADDRESS, EphemeralStack};
use gt_cli::tools::Tools;
use gt_store::PgStore;
use gt_transcribe::worker::{GpuConfig, gpu_worker_options};
use gt_worker_kit::WorkerDeps;
use gt_workflows::client::TemporalTarget;
use reqwest::Method;
use serde_json::Value;

/// Where the shared servers are.
#[derive(Debug, Clone)]
pub struct StackEnv {
    pub temporal_address: String,
    pub pg_admin_url: String,
    pub template: String,
}

static STACK: OnceLock<StackEnv> = OnceLock::new();

/// The shared stack: from `gt test-env`'s variables, or started here once per process on a
/// thread that lives as long as the process (children die with it: PDEATHSIG).
pub fn stack() -> &'static StackEnv {
    STACK.get_or_init(|| {
        if let (Ok(t), Ok(p), Ok(tpl)) = (
            std::env::var(ENV_TEMPORAL_ADDRESS),
            std::env::var(ENV_PG_ADMIN_URL),
            std::env::var(ENV_PG_TEMPLATE),
        ) {
            return StackEnv {
                temporal_address: t,
                pg_admin_url: p,
                template: tpl,
            };
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let started = async {
                    let tools = Tools::discover()?;
                    EphemeralStack::start(&tools).await
                }
                .await;
                match started {
                    Ok(stack) => {
                        let env = StackEnv {
                            temporal_address: stack.temporal.address(),
                            pg_admin_url: stack.postgres.url("postgres"),
                            template: gt_cli::stack::TEMPLATE_DB.into(),
                        };
                        tx.send(Ok(env)).ok();
                        // Keep the servers (and this thread, their PDEATHSIG parent) alive.
                        std::future::pending::<()>().await;
                        drop(stack);
                    }
                    Err(e) => {
                        tx.send(Err(format!("{e:#}"))).ok();
                    }
                }
            });
        });
        match rx.recv().expect("stack thread died") {
            Ok(env) => env,
            Err(e) => panic!("cannot start the test stack: {e}"),
        }
    })
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// A fresh database with the migrations applied; returns its URL.
pub async fn fresh_database() -> anyhow::Result<String> {
    let env = stack();
    let name = unique("t");
    let admin = gt_store::pg::connect(&env.pg_admin_url, 1).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE DATABASE \"{name}\" TEMPLATE \"{}\"",
        env.template
    )))
    .execute(&admin)
    .await
    .context("creating the test database")?;
    admin.close().await;
    let mut url = url::Url::parse(&env.pg_admin_url)?;
    url.set_path(&name);
    Ok(url.to_string())
}

/// One RSA signer per process: key generation is the slow part of a JWT test.
pub fn test_signer() -> &'static LocalSigner {
    static SIGNER: OnceLock<LocalSigner> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        LocalSigner::load_or_create(
            &dir.path().join("k.pem"),
            "gt-test-issuer",
            "gt-test-audience",
        )
        .unwrap()
    })
}

/// The Whisper model `./gt` fetched (GT_WHISPER_MODEL).
pub fn whisper_model() -> std::path::PathBuf {
    let p = std::path::PathBuf::from(std::env::var("GT_WHISPER_MODEL").expect(
        "GT_WHISPER_MODEL is not set: run the suite with ./gt test, which fetches the model",
    ));
    assert!(
        p.is_file(),
        "GT_WHISPER_MODEL {} does not exist",
        p.display()
    );
    p
}

/// Silero VAD's ONNX model `./gt` located in the silero-vad wheel (GT_VAD_MODEL).
pub fn vad_model() -> std::path::PathBuf {
    let p = std::path::PathBuf::from(std::env::var("GT_VAD_MODEL").expect(
        "GT_VAD_MODEL is not set: run the suite with ./gt test, which installs the VAD model",
    ));
    assert!(p.is_file(), "GT_VAD_MODEL {} does not exist", p.display());
    p
}

/// Transcription as the tests run it: the real model as the stack uses it by default
/// (quantised, chunk length), two threads.
pub fn test_gpu_config() -> GpuConfig {
    GpuConfig {
        model: whisper_model(),
        threads: 2,
        chunk_s: gt_transcribe::activity::DEFAULT_CHUNK_S,
        lanes: 0,
        shutdown_grace: TEST_SHUTDOWN_GRACE,
        quantization: gt_transcribe::worker::DEFAULT_QUANTIZATION,
    }
}

/// In-process test workers give running activities this long when the app stops (tests end
/// with their work done; a test that stops a worker mid-activity wants it cancelled soon).
pub const TEST_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Test users.
pub const ALICE: &str = "alice";
pub const BOB: &str = "bob";

pub struct AppOptions {
    /// Verify tokens with this configuration instead of the test signer's keys.
    pub auth: Option<AuthConfig>,
    /// Start the CPU worker (workflows, media analysis).
    pub cpu_worker: bool,
    /// Start a GPU-queue worker (transcription with the real Whisper model, on CPU here).
    pub gpu_worker: bool,
    pub max_body_bytes: usize,
    /// Summary and embedding models of the API and the workers; default: extractive summaries
    /// and local MiniLM embeddings (never a real OpenAI key from the environment).
    pub ai: Option<gt_ai::AiConfig>,
    /// The YouTube app of the API and the CPU worker (point it at a `FakeYouTube`).
    pub youtube: Option<gt_youtube::YouTubeApp>,
    /// The Twitch app of the API and the CPU worker (point it at a `FakeTwitch`).
    pub twitch: Option<gt_twitch::app::TwitchApp>,
    /// Listen on this port (e.g. one already named in a webhook callback); default: any free.
    pub api_port: Option<u16>,
    /// Where records and blobs live (default: Postgres and local directories).
    pub backends: Backends,
}

/// The storage a test app runs on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Backends {
    /// Postgres and local directories: the embedded default.
    #[default]
    Embedded,
    /// A DynamoDB deployment: records in DynamoDB Local, recordings and artifacts in an S3
    /// server (s3s-fs in this process, on a real port); search, chat and widgets in Postgres.
    DynamoDbS3,
}

/// The servers of a [`Backends::DynamoDbS3`] app (stopped when the app is dropped).
pub struct AwsLocal {
    pub dynamo: gt_records_dynamo::local::DynamoLocal,
    pub s3: gt_blob_s3::testing::S3TestServer,
    _s3_root: tempfile::TempDir,
}

/// The bucket a [`Backends::DynamoDbS3`] app keeps recordings (`recordings/`) and artifacts
/// (`artifacts/`) in.
pub const TEST_BUCKET: &str = "gt-test";

impl AppOptions {
    /// The API alone: no workers (for tests of the API's own behaviour).
    pub fn api_only() -> Self {
        Self {
            cpu_worker: false,
            gpu_worker: false,
            ..Self::default()
        }
    }
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            auth: None,
            ai: None,
            youtube: None,
            twitch: None,
            api_port: None,
            backends: Backends::Embedded,
            cpu_worker: true,
            gpu_worker: true,
            max_body_bytes: 16 * 1024 * 1024,
        }
    }
}

/// The API on a free port plus workers, wired to a fresh database and private task queues.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub database_url: String,
    pub store: PgStore,
    /// The system of record the API and workers use (`store` itself, or DynamoDB + Postgres).
    pub system: Arc<dyn gt_store::Store>,
    /// Local recordings root (with [`Backends::DynamoDbS3`]: unused by the app; S3 caches).
    pub recordings: tempfile::TempDir,
    pub artifacts: tempfile::TempDir,
    record_backend: gt_records_dynamo::RecordBackend,
    recordings_at: gt_blob_s3::BlobLocation,
    artifacts_at: gt_blob_s3::BlobLocation,
    pub aws: Option<AwsLocal>,
    pub cpu_task_queue: String,
    pub gpu_task_queue: String,
    pub temporal: TemporalTarget,
    workers: Vec<WorkerThread>,
    server: tokio::task::JoinHandle<()>,
    ai: gt_ai::AiConfig,
    youtube: Option<gt_youtube::YouTubeApp>,
    twitch: Option<gt_twitch::app::TwitchApp>,
}

/// A worker running on its own thread (Worker::run is not Send).
pub struct WorkerThread {
    shutdown: Box<dyn Fn() + Send + Sync>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

/// Builds a worker's options inside the worker's thread (so its resources live on that thread's
/// runtime).
pub type MakeWorkerOptions = Box<
    dyn FnOnce() -> std::pin::Pin<
            Box<dyn std::future::Future<Output = anyhow::Result<temporalio_sdk::WorkerOptions>>>,
        > + Send,
>;

impl WorkerThread {
    /// Runs a worker built from `make` on its own thread, connected to `target` (default: the
    /// shared test stack).
    pub fn spawn(make: MakeWorkerOptions, target: Option<TemporalTarget>) -> anyhow::Result<Self> {
        let target = target.unwrap_or_else(|| TemporalTarget {
            address: Some(stack().temporal_address.clone()),
            namespace: None,
        });
        let (tx, rx) = std::sync::mpsc::channel::<anyhow::Result<Box<dyn Fn() + Send + Sync>>>();
        let thread = std::thread::spawn(move || -> anyhow::Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let built = async {
                    let options = make().await?;
                    let runtime = temporalio_sdk::Runtime::from_current_tokio(Default::default())?;
                    gt_worker_kit::build_worker(&runtime, &target, options)
                        .await
                        .map(|w| (w, runtime))
                }
                .await;
                let (mut worker, _runtime) = match built {
                    Ok(w) => w,
                    Err(e) => {
                        let msg = format!("{e:#}");
                        tx.send(Err(e)).ok();
                        anyhow::bail!(msg);
                    }
                };
                let handle = worker.shutdown_handle();
                tx.send(Ok(Box::new(handle))).ok();
                let result = worker.run().await.map_err(anyhow::Error::from);
                if let Err(e) = &result {
                    tracing::error!("worker stopped with an error: {e:#}");
                }
                result
            })
        });
        let shutdown = rx.recv().context("worker thread died")??;
        Ok(Self {
            shutdown,
            thread: Some(thread),
        })
    }

    /// Asks the worker to stop and waits for it.
    pub fn stop(&mut self) {
        (self.shutdown)();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for WorkerThread {
    fn drop(&mut self) {
        (self.shutdown)();
    }
}

/// Word error rate and its words: where the quantiser's tests need them too.
pub use gt_transcribe::quality::{wer, words};

/// Local models only: extractive summaries, MiniLM embeddings from `GT_EMBED_MODEL_DIR`.
pub fn local_ai() -> gt_ai::AiConfig {
    gt_ai::AiConfig {
        api_key: None,
        base_url: None,
        chat_model: gt_ai::DEFAULT_CHAT_MODEL.into(),
        embedding_model: gt_ai::MINILM_MODEL.into(),
        minilm_dir: std::env::var_os("GT_EMBED_MODEL_DIR").map(std::path::PathBuf::from),
    }
}

impl TestApp {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(AppOptions::default()).await
    }

    pub async fn start_with(opts: AppOptions) -> anyhow::Result<Self> {
        // Test output shows warnings from every component; RUST_LOG raises it.
        gt_worker_kit::init_tracing_with_default("warn");
        let env = stack();
        let database_url = fresh_database().await?;
        let recordings = tempfile::tempdir()?;
        let artifacts = tempfile::tempdir()?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let cpu_task_queue = format!("test-cpu-{id}");
        let gpu_task_queue = format!("test-gpu-{id}");
        let temporal = TemporalTarget {
            address: Some(env.temporal_address.clone()),
            namespace: None,
        };
        let signer = test_signer();
        let ai = opts.ai.clone().unwrap_or_else(local_ai);
        let (record_backend, recordings_at, artifacts_at, aws) = match opts.backends {
            Backends::Embedded => (
                gt_records_dynamo::RecordBackend::Postgres,
                gt_blob_s3::BlobLocation::Local(recordings.path().to_path_buf()),
                gt_blob_s3::BlobLocation::Local(artifacts.path().to_path_buf()),
                None,
            ),
            Backends::DynamoDbS3 => {
                let dynamo = gt_records_dynamo::local::DynamoLocal::start().await?;
                let s3_root = tempfile::tempdir()?;
                std::fs::create_dir_all(s3_root.path().join(TEST_BUCKET))?;
                let s3 = gt_blob_s3::testing::S3TestServer::start(s3_root.path()).await?;
                let s3_at = |prefix: &str, cache: &std::path::Path| {
                    let mut config = s3.config(TEST_BUCKET, cache.join("s3-cache"));
                    config.key_prefix = prefix.into();
                    gt_blob_s3::BlobLocation::S3(config)
                };
                (
                    gt_records_dynamo::RecordBackend::DynamoDb {
                        table: format!("records-{id}"),
                        endpoint: Some(dynamo.endpoint().to_string()),
                    },
                    s3_at("recordings/", recordings.path()),
                    s3_at("artifacts/", artifacts.path()),
                    Some(AwsLocal {
                        dynamo,
                        s3,
                        _s3_root: s3_root,
                    }),
                )
            }
        };
        let config = ApiConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], opts.api_port.unwrap_or(0))),
            database_url: database_url.clone(),
            auth: match opts.auth {
                Some(a) => AuthMode::External(a),
                None => AuthMode::External(AuthConfig::local(signer)),
            },
            cpu_task_queue: cpu_task_queue.clone(),
            gpu_task_queue: gpu_task_queue.clone(),
            max_body_bytes: opts.max_body_bytes,
            cors_origins: vec![],
            temporal: temporal.clone(),
            records: record_backend.clone(),
            artifacts: artifacts_at.clone(),
            recordings: Some(recordings_at.clone()),
            media_key: Some("test-media-key".into()),
            ai: ai.clone(),
            youtube: opts.youtube.clone(),
            twitch: opts.twitch.clone(),
        };
        let state = gt_api::build_state(&config).await?;
        let app = gt_api::router(state, &config);
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let base = format!("http://{}", listener.local_addr()?);
        let server = tokio::spawn(async move {
            let _ = gt_api::serve(listener, app, std::future::pending()).await;
        });

        let pool = gt_store::pg::connect(&database_url, 4).await?;
        let store = PgStore::new(pool.clone());
        let system = record_backend.open(pool).await?;
        let mut app = Self {
            base,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()?,
            database_url,
            store,
            system,
            recordings,
            artifacts,
            record_backend,
            recordings_at,
            artifacts_at,
            aws,
            cpu_task_queue,
            gpu_task_queue,
            temporal,
            workers: Vec::new(),
            server,
            ai,
            youtube: opts.youtube.clone(),
            twitch: opts.twitch.clone(),
        };
        if opts.cpu_worker {
            app.start_cpu_worker()?;
        }
        if opts.gpu_worker {
            app.start_gpu_worker(test_gpu_config())?;
        }
        Ok(app)
    }

    /// Starts a CPU worker (all workflows and CPU activities) on this app's queue.
    pub fn start_cpu_worker(&mut self) -> anyhow::Result<()> {
        self.start_cpu_worker_with(self.cpu_config())
    }

    /// Starts a CPU worker with this configuration; each worker of the app has its own
    /// identity (`cpu-1`, `cpu-2`, … in the workflow histories).
    pub fn start_cpu_worker_with(&mut self, cpu: CpuConfig) -> anyhow::Result<()> {
        let (deps, queue) = (self.deps_maker(), self.cpu_task_queue.clone());
        let identity = format!("cpu-{}", self.workers.len() + 1);
        self.workers.push(WorkerThread::spawn(
            Box::new(move || {
                let identity = identity.clone();
                Box::pin(async move {
                    let mut options = cpu_worker_options(&queue, &deps().await?, &cpu)?;
                    options.client_identity_override = Some(identity);
                    Ok(options)
                })
            }),
            Some(self.temporal.clone()),
        )?);
        Ok(())
    }

    /// The CPU configuration `start_cpu_worker` uses.
    pub fn cpu_config(&self) -> CpuConfig {
        CpuConfig {
            // The other core runs the test's own process and servers.
            analysis_threads: 2,
            vad_model: vad_model(),
            ai: self.ai.clone(),
            youtube: self.youtube.clone(),
            twitch: self.twitch.clone(),
            render_encoder: None,
            activity_slots: gt_activities::worker::DEFAULT_CPU_ACTIVITY_SLOTS,
            shutdown_grace: TEST_SHUTDOWN_GRACE,
        }
    }

    /// The pieces a worker of this app uses (its database, blob directories).
    fn deps_maker(
        &self,
    ) -> impl Fn()
        -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<WorkerDeps>>>>
    + Send
    + 'static {
        let (db, records, rec, art) = (
            self.database_url.clone(),
            self.record_backend.clone(),
            self.recordings_at.clone(),
            self.artifacts_at.clone(),
        );
        move || {
            let (db, records, rec, art) = (db.clone(), records.clone(), rec.clone(), art.clone());
            Box::pin(async move {
                let pool = gt_store::pg::connect(&db, 8).await?;
                Ok(WorkerDeps {
                    store: records.open(pool).await?,
                    recordings: rec.open().await?,
                    artifacts: art.open().await?,
                })
            })
        }
    }

    /// The DynamoDB table of a [`Backends::DynamoDbS3`] app.
    pub fn dynamo_table(&self) -> Option<String> {
        match &self.record_backend {
            gt_records_dynamo::RecordBackend::DynamoDb { table, .. } => Some(table.clone()),
            gt_records_dynamo::RecordBackend::Postgres => None,
        }
    }

    /// The recordings store the app's workers read (a local directory or S3).
    pub async fn recordings_store(&self) -> anyhow::Result<Arc<dyn gt_store::BlobStore>> {
        Ok(self.recordings_at.open().await?)
    }

    /// The artifacts store the app's API and workers use.
    pub async fn artifacts_store(&self) -> anyhow::Result<Arc<dyn gt_store::BlobStore>> {
        Ok(self.artifacts_at.open().await?)
    }

    /// Starts a GPU (transcription) worker in this process, on this app's GPU queue.
    pub fn start_gpu_worker(&mut self, gpu: GpuConfig) -> anyhow::Result<()> {
        let (deps, queue) = (self.deps_maker(), self.gpu_task_queue.clone());
        let identity = format!("gpu-{}", self.workers.len() + 1);
        self.workers.push(WorkerThread::spawn(
            Box::new(move || {
                let identity = identity.clone();
                Box::pin(async move {
                    let mut options = gpu_worker_options(&queue, &deps().await?, &gpu)?;
                    options.client_identity_override = Some(identity);
                    Ok(options)
                })
            }),
            Some(self.temporal.clone()),
        )?);
        Ok(())
    }

    /// A worker binary built beside the test (`worker-cpu`, `worker-gpu`) as a process on this
    /// app's database, Temporal, blob dirs and queues, so a test can kill it without warning.
    pub fn worker_process(&self, name: &str) -> std::process::Command {
        // A test: target/<profile>/deps/e2e-<hash> → target/<profile>/<name>; a bench binary
        // lives next to it: target/release/<bench> → target/release/<name>.
        let exe = std::env::current_exe().expect("the test executable's path");
        let dir = exe.parent().unwrap();
        let bin = [dir.join(name), dir.parent().unwrap().join(name)]
            .into_iter()
            .find(|p| p.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "{name} not built next to {} (./gt test and ./gt bench build it)",
                    exe.display()
                )
            });
        let mut cmd = std::process::Command::new(bin);
        cmd.env("DATABASE_URL", &self.database_url)
            .env(
                "TEMPORAL_ADDRESS",
                self.temporal.address.as_deref().unwrap_or_default(),
            )
            .env("GT_RECORDINGS_DIR", self.recordings.path())
            .env("GT_ARTIFACTS_DIR", self.artifacts.path())
            .env("GT_CPU_TASK_QUEUE", &self.cpu_task_queue)
            .env("GT_GPU_TASK_QUEUE", &self.gpu_task_queue)
            .env("RUST_LOG", "warn");
        cmd
    }

    /// The API binary (`gt-api`) as a process on this app's database, Temporal, blob dirs and
    /// queues, listening on `port`, so a test can kill it without warning. Its tokens are the
    /// local signer's in a key file of its own (requests that need a user go to the in-process
    /// API).
    pub fn api_process(&self, port: u16) -> std::process::Command {
        let mut cmd = self.worker_process("gt-api");
        cmd.env("GT_API_ADDR", format!("127.0.0.1:{port}"))
            .env(
                "GT_JWT_KEY_FILE",
                self.artifacts.path().join("api-process-key.pem"),
            )
            .env("GT_MEDIA_KEY", "test-media-key");
        cmd
    }

    /// `user`'s recordings root (each user's recordings live in their own folder; a stream's
    /// prefix is a folder inside it). Created on first use.
    pub fn recordings_of(&self, user: &str) -> std::path::PathBuf {
        let dir = self.recordings.path().join(gt_types::owner_segment(user));
        std::fs::create_dir_all(&dir).expect("creating the user's recordings root");
        dir
    }

    pub fn token(&self, user: &str) -> String {
        test_signer()
            .mint(user, Duration::from_secs(3600))
            .expect("minting a token")
    }

    /// Sends a request as `user` (None: no Authorization header); returns status and JSON body.
    pub async fn call(
        &self,
        user: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(u) = user {
            req = req.header("Authorization", self.token(u));
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        read(req.send().await.expect("request failed")).await
    }

    pub async fn get(&self, user: &str, path: &str) -> (u16, Value) {
        self.call(Some(user), Method::GET, path, None).await
    }

    pub async fn post(&self, user: &str, path: &str, body: Value) -> (u16, Value) {
        self.call(Some(user), Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, user: &str, path: &str, body: Value) -> (u16, Value) {
        self.call(Some(user), Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, user: &str, path: &str) -> (u16, Value) {
        self.call(Some(user), Method::DELETE, path, None).await
    }

    /// A Temporal client on the shared server.
    pub async fn temporal_client(&self) -> anyhow::Result<temporalio_client::Client> {
        gt_workflows::client::connect(&self.temporal, Duration::from_secs(30)).await
    }

    /// Stops this app's workers (as a crashed or redeployed worker pool would), leaving the API
    /// up; `start_cpu_worker` starts a new one.
    pub async fn stop_workers(&mut self) {
        let workers = std::mem::take(&mut self.workers);
        tokio::task::spawn_blocking(move || {
            for mut w in workers {
                w.stop();
            }
        })
        .await
        .ok();
    }

    /// Stops the workers (off the async runtime: joining a worker thread from it deadlocks the
    /// worker's shutdown) and the API.
    pub async fn stop(mut self) {
        let workers = std::mem::take(&mut self.workers);
        tokio::task::spawn_blocking(move || {
            for mut w in workers {
                w.stop();
            }
        })
        .await
        .ok();
        self.server.abort();
    }
}

/// A port nothing listens on right now (for a server that must be named before it starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

/// Status and JSON body of a response (`Value::Null` when empty, a string when not JSON).
pub async fn read(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// Polls `GET /stream/{id}/progress` until the run is no longer RUNNING.
pub async fn wait_for_ingest(app: &TestApp, user: &str, stream_id: &str) -> Value {
    wait_for_ingest_within(app, user, stream_id, Duration::from_secs(240)).await
}

/// Waits up to `limit` for the stream's ingestion to stop running; returns its status.
pub async fn wait_for_ingest_within(
    app: &TestApp,
    user: &str,
    stream_id: &str,
    limit: Duration,
) -> Value {
    wait_for_progress(app, user, stream_id, "its end", limit, |b| {
        b["status"] != "RUNNING"
    })
    .await
}

/// Polls the stream's progress until `done` holds for it, for at most `limit`; fails, naming
/// `what`, if the run ends first. Returns the progress.
async fn wait_for_progress(
    app: &TestApp,
    user: &str,
    stream_id: &str,
    what: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let (s, body) = app
            .get(user, &format!("/stream/{stream_id}/progress"))
            .await;
        assert_eq!(s, 200, "progress: {body}");
        if done(&body) {
            return body;
        }
        assert_eq!(
            body["status"], "RUNNING",
            "{user}: ended before {what}: {body}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "{user}: no {what} after {limit:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Polls the stream's progress until its run reaches `stage` (snake case, as the API says it),
/// for at most `limit`; fails if the run ends first. Returns the progress.
pub async fn wait_for_stage_within(
    app: &TestApp,
    user: &str,
    stream_id: &str,
    stage: &str,
    limit: Duration,
) -> Value {
    wait_for_progress(app, user, stream_id, stage, limit, |b| {
        b["progress"]["stage"] == stage
    })
    .await
}

/// Waits until the stream's run has built every usable clip's preview (previews are built
/// after the proposals, while the run waits for review); returns the progress.
pub async fn wait_for_previews(app: &TestApp, user: &str, stream_id: &str) -> Value {
    wait_for_previews_within(app, user, stream_id, Duration::from_secs(240)).await
}

/// [`wait_for_previews`] for at most `limit` (a benchmark's hour of video takes minutes).
pub async fn wait_for_previews_within(
    app: &TestApp,
    user: &str,
    stream_id: &str,
    limit: Duration,
) -> Value {
    wait_for_progress(app, user, stream_id, "its previews", limit, |b| {
        let p = &b["progress"];
        p["clips_previewed"].as_u64() >= p["clips_done"].as_u64()
    })
    .await
}

/// A WebSocket client connection.
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// `GET /ws?token=` as `user`.
pub async fn websocket(app: &TestApp, user: &str) -> Socket {
    websocket_with(app, &app.token(user)).await
}

/// `GET /ws?token=` with `token`.
pub async fn websocket_with(app: &TestApp, token: &str) -> Socket {
    let url = format!("{}/ws?token={token}", app.base.replacen("http", "ws", 1));
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// Every text message received within `wait` (JSON).
pub async fn drain(ws: &mut Socket, wait: Duration) -> Vec<Value> {
    use futures::StreamExt;
    let mut out = Vec::new();
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(wait, ws.next()).await {
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            out.push(serde_json::from_str(&t).unwrap());
        }
    }
    out
}
