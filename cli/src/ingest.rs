//! Following an ingestion from the command line: a progress bar while it runs, then the
//! proposed episodes with their chapters and a search result. Used by `gt up`'s main job and
//! by `gt ingest FILE...`, which ingests any local recording into the running stack.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::up::ApiClient;

/// Follows the stream's ingestion until it waits for review (or ends); returns the last
/// status. `check` runs between polls (e.g. to notice a crashed child process).
pub async fn follow(
    api: &ApiClient,
    stream_id: &str,
    mut check: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Value> {
    let bar = ProgressBar::new(100);
    bar.set_style(
        ProgressStyle::with_template("  [{bar:30}] {pos:>3}% {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let path = format!("/stream/{stream_id}/progress");
    let status = loop {
        check()?;
        let (code, p) = match api.call(reqwest::Method::GET, &path, None).await {
            Ok(answer) => answer,
            // The API may be restarting (the supervisor brings it back): keep asking.
            Err(e)
                if e.downcast_ref::<reqwest::Error>()
                    .is_some_and(reqwest::Error::is_connect) =>
            {
                bar.set_message(format!("waiting for the API ({e})"));
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        if code != 200 {
            bar.abandon();
            bail!("GET {path} answered {code}: {p}");
        }
        let pr = &p["progress"];
        bar.set_position(pr["percent"].as_f64().unwrap_or(0.0).round() as u64);
        bar.set_message(format!(
            "{} · {}/{} clips{}",
            pr["stage"].as_str().unwrap_or("?"),
            pr["clips_done"],
            pr["clips_total"],
            pr["current"]
                .as_str()
                .map(|c| format!(" · {c}"))
                .unwrap_or_default()
        ));
        if p["status"] != "RUNNING" || pr["stage"] == "awaiting_review" {
            break p;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    bar.finish();
    Ok(status)
}

/// Prints the stream's proposals (with chapters) and the best search hit for `query`.
pub async fn print_results(api: &ApiClient, stream_id: &str, query: &str) -> anyhow::Result<()> {
    let (_, eps) = api
        .call(
            reqwest::Method::GET,
            &format!("/stream/{stream_id}/episodes"),
            None,
        )
        .await?;
    let items = eps["items"].as_array().cloned().unwrap_or_default();
    println!("  proposed episodes ({}):", items.len());
    for e in &items {
        println!(
            "    {}  \"{}\"  {} → {}  [{}]",
            e["id"].as_str().unwrap_or("?"),
            e["title"].as_str().unwrap_or(""),
            clock(e["start_time"].as_f64().unwrap_or(0.0)),
            clock(e["end_time"].as_f64().unwrap_or(0.0)),
            e["review_status"].as_str().unwrap_or("?"),
        );
        for c in e["chapters"].as_array().into_iter().flatten() {
            println!(
                "        {} {}",
                clock(c["start"].as_f64().unwrap_or(0.0)),
                c["title"].as_str().unwrap_or("")
            );
        }
    }
    let q: String = url::form_urlencoded::byte_serialize(query.as_bytes()).collect();
    let (code, hits) = api
        .call(
            reqwest::Method::GET,
            &format!("/search?q={q}&stream_id={stream_id}&limit=1"),
            None,
        )
        .await?;
    if code == 200
        && let Some(top) = hits["items"].get(0)
    {
        println!(
            "  search \"{query}\": {} at {} (score {:.2}): \"{}\"",
            top["clip_key"].as_str().unwrap_or("?"),
            clock(top["start"].as_f64().unwrap_or(0.0)),
            top["score"].as_f64().unwrap_or(0.0),
            top["text"].as_str().unwrap_or("")
        );
    } else {
        println!("  search \"{query}\": no result ({code})");
    }
    if items
        .iter()
        .any(|e| e["review_status"] == "awaiting_review")
    {
        let ids: Vec<&str> = items.iter().filter_map(|e| e["id"].as_str()).collect();
        println!(
            "  review in the web UI: {}/streams/{stream_id}\n  or: curl -X POST -H \"Authorization: $(./gt token)\" -H 'content-type: application/json' \\\n      -d '{}' {}/stream/{stream_id}/review",
            api.base,
            json!({"approve": ids}),
            api.base
        );
    }
    Ok(())
}

fn clock(s: f64) -> String {
    let s = s.max(0.0).floor() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// What `gt ingest` needs.
pub struct IngestFiles {
    pub files: Vec<PathBuf>,
    pub stream_id: String,
    pub title: Option<String>,
    pub language: Option<String>,
    pub recordings_dir: PathBuf,
    /// Approve every proposal once they are ready.
    pub approve_all: bool,
}

/// Places the files under the stream's prefix in the recordings store (hard links when the
/// file system allows, else copies), creates the stream if needed, and ingests it.
pub async fn ingest_files(api: &ApiClient, opts: &IngestFiles) -> anyhow::Result<()> {
    if opts.files.is_empty() {
        bail!("name at least one recording");
    }
    let id_ok = !opts.stream_id.is_empty()
        && opts
            .stream_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !id_ok {
        bail!("--stream-id may contain only letters, digits, '-' and '_'");
    }
    for f in &opts.files {
        if !f.is_file() {
            bail!("{} is not a file", f.display());
        }
    }
    let dir = opts.recordings_dir.join(&opts.stream_id);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for f in &opts.files {
        let name = f.file_name().context("a file name")?;
        let dest = dir.join(name);
        if dest.exists() {
            continue;
        }
        place(f, &dest)?;
    }
    let (code, _) = api
        .call(
            reqwest::Method::GET,
            &format!("/records/streams/{}", opts.stream_id),
            None,
        )
        .await?;
    if code == 404 {
        let (code, body) = api
            .call(
                reqwest::Method::POST,
                "/records/streams",
                Some(json!({
                    "id": opts.stream_id,
                    "prefix": opts.stream_id,
                    "title": opts.title.clone().unwrap_or_else(|| opts.stream_id.clone()),
                })),
            )
            .await?;
        if code >= 300 {
            bail!("creating the stream answered {code}: {body}");
        }
    }
    let mut req = json!({"streamId": opts.stream_id});
    if let Some(l) = &opts.language {
        req["language"] = json!(l);
    }
    let (code, started) = api
        .call(reqwest::Method::POST, "/stream", Some(req))
        .await?;
    if code >= 300 {
        bail!("starting the ingestion answered {code}: {started}");
    }
    println!(
        "ingesting {} file(s) as stream {} (workflow {})",
        opts.files.len(),
        opts.stream_id,
        started["workflowId"].as_str().unwrap_or("?")
    );
    let status = follow(api, &opts.stream_id, || Ok(())).await?;
    if status["status"] != "RUNNING" && status["status"] != "COMPLETED" {
        bail!(
            "the ingestion ended {}: {}",
            status["status"],
            status["error"].as_str().unwrap_or("no reason given")
        );
    }
    for f in status["progress"]["failures"]
        .as_array()
        .into_iter()
        .flatten()
    {
        println!(
            "  could not use {}: {}",
            f["key"].as_str().unwrap_or("?"),
            f["reason"].as_str().unwrap_or("?")
        );
    }
    print_results(
        api,
        &opts.stream_id,
        &first_words(api, &opts.stream_id).await,
    )
    .await?;
    if opts.approve_all {
        let (_, eps) = api
            .call(
                reqwest::Method::GET,
                &format!("/stream/{}/episodes", opts.stream_id),
                None,
            )
            .await?;
        let ids: Vec<Value> = eps["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["review_status"] == "awaiting_review")
            .map(|e| e["id"].clone())
            .collect();
        if !ids.is_empty() {
            let (code, body) = api
                .call(
                    reqwest::Method::POST,
                    &format!("/stream/{}/review", opts.stream_id),
                    Some(json!({"approve": ids})),
                )
                .await?;
            if code >= 300 {
                bail!("approving answered {code}: {body}");
            }
            println!("  approved {} episode(s)", ids.len());
        }
    }
    Ok(())
}

/// A search query from the stream itself: a few words of its first transcript segment.
pub async fn first_words(api: &ApiClient, stream_id: &str) -> String {
    let (_, clips) = api
        .call(
            reqwest::Method::GET,
            &format!("/records/video_clips/stream_id/{stream_id}"),
            None,
        )
        .await
        .unwrap_or((0, Value::Null));
    clips["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["transcription"]["segments"].as_array())
        .flatten()
        .filter_map(|s| s["text"].as_str())
        .find(|t| t.split_whitespace().count() >= 4)
        .map(|t| t.split_whitespace().take(6).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "welcome to the stream".into())
}

fn place(src: &Path, dest: &Path) -> anyhow::Result<()> {
    if std::fs::hard_link(src, dest).is_ok() {
        return Ok(());
    }
    std::fs::copy(src, dest)
        .with_context(|| format!("copying {} to {}", src.display(), dest.display()))?;
    Ok(())
}
