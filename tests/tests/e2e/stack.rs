//! `gt up` as a user runs it, as a process with its own data directory and ports: with an
//! ingestion under way, worker-gpu (mid-transcription), worker-cpu and the API are killed
//! without warning, one after the other. The supervisor restarts each, the rest stays up, the
//! ingestion completes with exactly one transcript, summary and window set, and Ctrl-C stops
//! everything.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gt_cli::media_gen::{RecordingSpec, SENTENCES, Segment, generate};
use gt_cli::process::free_port;
use reqwest::Method;
use serde_json::{Value, json};

fn gt_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("gt")
}

fn pid_of(data: &Path, name: &str) -> Option<i32> {
    std::fs::read_to_string(data.join("run").join(format!("{name}.pid")))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    /// A request, retried while the API is down (it is being restarted).
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        for _ in 0..240 {
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .header("Authorization", &self.token);
            if let Some(b) = &body {
                req = req.json(b);
            }
            match req.send().await {
                Ok(r) => return gt_tests::read(r).await,
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
        panic!("the API did not come back: {method} {path}");
    }

    async fn progress(&self) -> Value {
        let (s, p) = self.call(Method::GET, "/stream/crash/progress", None).await;
        assert_eq!(s, 200, "{p}");
        p
    }
}

/// Waits until `name` runs under a pid other than `old`.
async fn restarted(data: &Path, name: &str, old: i32) -> i32 {
    for _ in 0..240 {
        if let Some(pid) = pid_of(data, name)
            && pid != old
            && alive(pid)
        {
            return pid;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{name} was not restarted");
}

#[tokio::test]
async fn the_local_stack_restarts_what_crashes_and_the_ingestion_completes_once() {
    let dir = tempfile::tempdir().unwrap();
    // Postgres runs as nobody, who must be able to reach its cluster directory.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let data = dir.path().to_path_buf();
    let (api_port, pg_port, t_port, ui_port) = (
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
    );
    let mut up = Command::new(gt_binary())
        .args(["up", "--no-sample"])
        .env("GT_DATA_DIR", &data)
        .env("GT_API_PORT", api_port.to_string())
        .env("GT_PG_PORT", pg_port.to_string())
        .env("GT_TEMPORAL_PORT", t_port.to_string())
        .env("GT_TEMPORAL_UI_PORT", ui_port.to_string())
        .env("GT_WHISPER_THREADS", "1")
        .env("GT_ANALYSIS_THREADS", "1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = Arc::new(Mutex::new(Vec::<String>::new()));
    {
        let out = out.clone();
        let stdout = up.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                println!("[gt up] {line}");
                out.lock().unwrap().push(line);
            }
        });
    }
    let printed = |needle: &str| out.lock().unwrap().iter().any(|l| l.contains(needle));
    for _ in 0..600 {
        if printed("Press Ctrl-C to stop") {
            break;
        }
        assert!(up.try_wait().unwrap().is_none(), "gt up exited early");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(printed("Press Ctrl-C to stop"), "gt up did not come up");
    let token = Command::new(gt_binary())
        .args(["token", "--hours", "2"])
        .env("GT_DATA_DIR", &data)
        .output()
        .unwrap();
    let api = Api {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        base: format!("http://127.0.0.1:{api_port}"),
        token: String::from_utf8(token.stdout).unwrap().trim().to_string(),
    };

    // About 80 s of talk (three Whisper windows), audio only, in the local user's folder.
    let mut talk = vec![Segment::Silence(1.0)];
    for i in 0..14 {
        talk.push(Segment::Speech(SENTENCES[i % SENTENCES.len()].into()));
        talk.push(Segment::Silence(0.8));
    }
    let root = data.join("recordings").join(gt_types::LOCAL_USER_ID);
    generate(&RecordingSpec::mic(talk, None), &root.join("crash/a.mkv")).unwrap();
    let (s, b) = api
        .call(
            Method::POST,
            "/records/streams",
            Some(json!({"id": "crash", "prefix": "crash"})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = api
        .call(
            Method::POST,
            "/stream",
            Some(json!({"streamId": "crash", "language": "en", "awaitReview": false})),
        )
        .await;
    assert_eq!(s, 202, "{b}");

    // worker-gpu dies in the middle of the transcription.
    for _ in 0..600 {
        let p = api.progress().await;
        if p["progress"]["clips_analyzed"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for name in ["worker-gpu", "worker-cpu", "api"] {
        let pid = pid_of(&data, name).unwrap();
        // SAFETY: killing the stack's own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let new = restarted(&data, name, pid).await;
        assert!(!alive(pid));
        println!("{name}: killed {pid}, now {new}");
        assert!(printed(&format!("{name} exited")), "no line for {name}");
    }
    let done = loop {
        let p = api.progress().await;
        if p["status"] != "RUNNING" {
            break p;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["result"]["failures"], json!([]), "{done}");
    assert!(up.try_wait().unwrap().is_none(), "the stack went down");

    // Exactly one of everything.
    let pool = gt_store::pg::connect(
        &format!(
            "postgres://{}@127.0.0.1:{pg_port}/glowing_telegram",
            gt_cli::postgres::SUPERUSER
        ),
        1,
    )
    .await
    .unwrap();
    let (_, clip) = api
        .call(Method::GET, "/records/video_clips/crash%2Fa.mkv", None)
        .await;
    let segments = clip["transcription"]["segments"].as_array().unwrap().len() as i64;
    let rows: (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT idx) FROM transcript_segments")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(rows, (segments, segments));
    assert!(segments > 5, "{clip}");
    let windows: (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT idx) FROM transcript_windows")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        windows,
        (
            done["result"]["windows_embedded"].as_i64().unwrap(),
            windows.0
        )
    );
    assert!(clip["summary"]["title"].is_string(), "{clip}");
    // The transcription was under way when its worker died: a second attempt finished it.
    let client = gt_workflows::client::connect(
        &gt_workflows::client::TemporalTarget {
            address: Some(format!("127.0.0.1:{t_port}")),
            namespace: None,
        },
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let history: Value = serde_json::from_slice(
        &client
            .get_workflow_handle::<gt_workflows::StreamIngest>(gt_types::stream_ingest_workflow_id(
                gt_types::LOCAL_USER_ID,
                "crash",
            ))
            .fetch_history(temporalio_client::WorkflowFetchHistoryOptions::builder().build())
            .to_json()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        crate::ingest::activity_attempts(&history, "gpu.transcribe_clip"),
        vec![2],
        "the transcription was not interrupted"
    );
    let partials = walk_names(&data.join("artifacts"));
    assert!(
        !partials.iter().any(|n| n.contains(".partial.")),
        "{partials:?}"
    );
    pool.close().await;

    // Ctrl-C stops everything, in order, promptly.
    let pids: Vec<i32> = ["worker-cpu", "worker-gpu", "api"]
        .iter()
        .filter_map(|n| pid_of(&data, n))
        .collect();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(up.id() as i32, libc::SIGINT) };
    let status = tokio::task::spawn_blocking(move || up.wait())
        .await
        .unwrap();
    assert!(status.unwrap().success());
    for pid in pids {
        assert!(!alive(pid), "{pid} outlived gt up");
    }
}

fn walk_names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk_names(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}
