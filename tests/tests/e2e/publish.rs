//! EpisodePublish end to end: an approved episode is rendered (verified against FFmpeg's own
//! view of the file), exported, uploaded to a local server that speaks YouTube's wire protocol
//! (OAuth, resumable upload, thumbnails, playlist items, captions, processing status), and the
//! upload survives a dropped connection, 503s, a 401, a killed worker and a quota wall with
//! exactly one video whose bytes are the render's.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use gt_cli::media_gen::{RecordingSpec, SENTENCES, Segment, generate};
use gt_tests::{ALICE, AppOptions, BOB, TestApp, drain, websocket};
use gt_youtube::fake::{FakeYouTube, Fault, RequestKind, RetryAfterHeader};
use gt_youtube::token_box::TokenKey;
use gt_youtube::{YouTubeApp, YouTubeConfig};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const TOKEN_KEY: &str = "e2e-token-key-0123456789abcdef-0123456789";
const REDIRECT: &str = "http://127.0.0.1:5173/youtube/callback";
const BACK: &str = "http://127.0.0.1:5173/profile";
const SCOPES: [&str; 2] = [
    "https://www.googleapis.com/auth/youtube",
    "https://www.googleapis.com/auth/youtube.upload",
];

fn youtube_app(config: YouTubeConfig) -> YouTubeApp {
    YouTubeApp {
        config,
        redirect_url: REDIRECT.into(),
        key: TokenKey::derive(TOKEN_KEY.as_bytes(), gt_youtube::token_box::YOUTUBE_TOKENS).unwrap(),
    }
}

/// The environment a worker process needs to reach the fake (what `GT_YOUTUBE_*` says in a
/// deployment).
fn youtube_env(cmd: &mut Command, fake: &FakeYouTube, chunk: usize) {
    let c = fake.config();
    cmd.env("GT_YOUTUBE_CLIENT_ID", c.client_id)
        .env("GT_YOUTUBE_CLIENT_SECRET", c.client_secret)
        .env("GT_YOUTUBE_API_BASE", c.api_base)
        .env("GT_YOUTUBE_UPLOAD_BASE", c.upload_base)
        .env("GT_YOUTUBE_AUTH_URL", c.oauth_auth_url)
        .env("GT_YOUTUBE_TOKEN_URL", c.oauth_token_url)
        .env("GT_YOUTUBE_CHUNK_BYTES", chunk.to_string())
        .env("GT_YOUTUBE_REDIRECT_URL", REDIRECT)
        .env("GT_TOKEN_KEY", TOKEN_KEY);
}

/// Connects `user`'s YouTube through the API as the front end does: the consent URL, the
/// browser's trip to it (the fake redirects with a code), the callback.
async fn connect_youtube(app: &TestApp, user: &str) {
    let (s, b) = app
        .post(
            user,
            "/auth/youtube/url",
            json!({"scopes": SCOPES, "redirect_uri": BACK}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let consent = b["url"].as_str().unwrap().to_string();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let reply = browser.get(&consent).send().await.unwrap();
    assert_eq!(reply.status().as_u16(), 302);
    let location = url::Url::parse(reply.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(REDIRECT), "{location}");
    let param = |name: &str| {
        location
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.to_string())
            .unwrap()
    };
    let (code, state) = (param("code"), param("state"));
    // Another user cannot finish this authorization with the state it was given.
    let (s, b) = app
        .post(
            BOB,
            "/auth/youtube/callback",
            json!({"code": code, "state": state, "scope": []}),
        )
        .await;
    if user != BOB {
        assert_eq!(s, 400, "{b}");
    }
    let (s, b) = app
        .post(
            user,
            "/auth/youtube/callback",
            json!({"code": code, "state": "forged", "scope": []}),
        )
        .await;
    assert_eq!(s, 400, "a wrong state is refused: {b}");
    let (s, b) = app
        .post(
            user,
            "/auth/youtube/callback",
            json!({"code": code, "state": state, "scope": SCOPES}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["url"], BACK);
    let (s, b) = app.get(user, "/auth/youtube/token").await;
    assert_eq!(s, 200, "{b}");
    let access = b["access_token"].as_str().unwrap().to_string();
    // Sealed at rest: neither token appears in the database.
    let stored: String = sqlx::query_scalar(
        "SELECT sealed_tokens FROM oauth_connections WHERE user_id = $1 AND provider = 'youtube'",
    )
    .bind(user)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert!(
        !stored.contains(&access),
        "the access token is stored in clear"
    );
}

/// Waits for the episode's latest publish run to end; returns its status.
pub(crate) async fn wait_for_publish(
    app: &TestApp,
    user: &str,
    episode: &str,
    limit: Duration,
) -> Value {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let (s, b) = app.get(user, &format!("/episodes/{episode}/publish")).await;
        if s == 200 && b["status"] != "RUNNING" {
            return b;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "publish did not finish: {s} {b}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Waits until the episode's publish reports `stage`.
async fn wait_for_publish_stage(app: &TestApp, episode: &str, stage: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    loop {
        let (s, b) = app
            .get(ALICE, &format!("/episodes/{episode}/publish"))
            .await;
        if s == 200 && b["progress"]["stage"] == stage {
            return b;
        }
        assert!(
            !(s == 200 && b["status"] != "RUNNING"),
            "publish ended before {stage}: {b}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "never reached {stage}: {s} {b}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn sha256_file(path: &Path) -> String {
    format!("{:x}", Sha256::digest(std::fs::read(path).unwrap()))
}

/// Frames and duration of the video stream as ffprobe counts them (decoding every frame).
fn ffprobe_frames(path: &Path) -> (u64, f64) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames:format=duration"])
        .args(["-of", "json"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        v["streams"][0]["nb_read_frames"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
        v["format"]["duration"].as_str().unwrap().parse().unwrap(),
    )
}

/// Output frames a cut list plans (no transitions here: the sum of its sections).
fn planned_frames(cut: &Value) -> u64 {
    cut["outputTrack"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            let m = item["mediaIndex"].as_u64().unwrap() as usize;
            let s = item["sectionIndex"].as_u64().unwrap() as usize;
            let sec = &cut["inputMedia"][m]["sections"][s];
            sec["endFrame"].as_u64().unwrap() - sec["startFrame"].as_u64().unwrap()
        })
        .sum()
}

#[tokio::test]
async fn an_approved_episode_is_rendered_exported_and_published_on_youtube() {
    let fake = FakeYouTube::start().await;
    let app = TestApp::start_with(AppOptions {
        youtube: Some(youtube_app(YouTubeConfig {
            chunk_size: 256 * 1024,
            ..fake.config()
        })),
        ..Default::default()
    })
    .await
    .unwrap();
    connect_youtube(&app, ALICE).await;
    let talk = vec![
        Segment::Silence(1.0),
        Segment::Speech(SENTENCES[0].into()),
        Segment::Silence(1.5),
        Segment::Speech(SENTENCES[1].into()),
        Segment::Silence(1.5),
        Segment::Speech(SENTENCES[2].into()),
        Segment::Silence(1.0),
    ];
    generate(
        &RecordingSpec::mic(talk, Some((320, 180, 30))),
        &app.recordings_of(ALICE).join("pub/2026-01-01 10-00-00.mkv"),
    )
    .unwrap();
    for (path, body) in [
        (
            "/records/series",
            json!({"id": "s1", "title": "Castle run", "playlist_id": "PLcastle"}),
        ),
        (
            "/records/streams",
            json!({"id": "pub", "prefix": "pub", "series_id": "s1", "title": "Castle day"}),
        ),
    ] {
        let (s, b) = app.post(ALICE, path, body).await;
        assert_eq!(s, 201, "{b}");
    }
    let (s, b) = app
        .put(
            ALICE,
            "/records/profiles/my-profile",
            json!({"youtubeCaptions": true, "standardTags": ["speedrun"], "youtubePrivacy": "public"}),
        )
        .await;
    assert!(s == 200 || s == 201, "{b}");
    let (s, b) = app
        .post(
            ALICE,
            "/stream",
            json!({"streamId": "pub", "language": "en",
                   "episodes": {"break_gap": 20.0, "min_length": 5.0, "max_length": 600.0}}),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    let episode = loop {
        let (_, eps) = app.get(ALICE, "/stream/pub/episodes").await;
        if let Some(e) = eps["items"].as_array().and_then(|a| a.first()) {
            break e.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "no proposal");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let id = episode["id"].as_str().unwrap().to_string();
    // Scheduled: YouTube gets it private with the time to go public.
    let publish_at = (chrono::Utc::now() + chrono::Duration::days(2))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let (s, b) = app
        .put(
            ALICE,
            &format!("/records/episodes/{id}"),
            json!({"publish_at": publish_at}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let mut ws = websocket(&app, ALICE).await;
    let (s, b) = app
        .post(ALICE, "/stream/pub/review", json!({"approve": [id]}))
        .await;
    assert_eq!(s, 202, "{b}");

    let done = wait_for_publish(&app, ALICE, &id, Duration::from_secs(300)).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["result"]["status"], "published", "{done}");
    let video_id = done["result"]["video_id"].as_str().unwrap().to_string();

    // The render: the frames the cut list plans, as FFmpeg decodes them, and the bytes YouTube
    // got are the render's.
    let (_, ep) = app.get(ALICE, &format!("/records/episodes/{id}")).await;
    let render_key = ep["render_uri"].as_str().unwrap().to_string();
    assert!(render_key.starts_with("alice/renders/"), "{render_key}");
    let render = app.artifacts.path().join(&render_key);
    let (frames, duration) = ffprobe_frames(&render);
    let planned = planned_frames(&ep["cut_list"]);
    assert_eq!(frames, planned, "rendered frames vs the cut list");
    assert!((duration - planned as f64 / 30.0).abs() < 0.1, "{duration}");
    let report = &ep["publish"]["render"];
    assert_eq!(report["frames"], planned, "{report}");
    let videos = fake.videos();
    assert_eq!(videos.len(), 1, "exactly one video");
    assert_eq!(videos[0].id, video_id);
    assert_eq!(videos[0].sha256, sha256_file(&render));
    assert_eq!(videos[0].resource["snippet"]["title"], ep["title"]);
    assert_eq!(videos[0].resource["status"]["privacyStatus"], "private");
    let scheduled = videos[0].resource["status"]["publishAt"].as_str().unwrap();
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(scheduled).unwrap(),
        chrono::DateTime::parse_from_rfc3339(&publish_at).unwrap()
    );
    let tags = videos[0].resource["snippet"]["tags"].to_string();
    assert!(tags.contains("speedrun"), "{tags}");

    // Follow-ups: a thumbnail (a JPEG), the series' playlist, the captions (WebVTT with the
    // words that were said).
    let thumbs = fake.thumbnails();
    assert_eq!(thumbs.len(), 1);
    assert!(thumbs[0].bytes.starts_with(&[0xFF, 0xD8, 0xFF]));
    let items = fake.playlist_items();
    assert_eq!(items.len(), 1);
    assert_eq!(
        (items[0].playlist_id.as_str(), items[0].video_id.as_str()),
        ("PLcastle", video_id.as_str())
    );
    let captions = fake.captions();
    assert_eq!(captions.len(), 1);
    let vtt = String::from_utf8(captions[0].bytes.to_vec()).unwrap();
    assert!(vtt.starts_with("WEBVTT"), "{vtt}");
    let first_word = SENTENCES[0]
        .split_whitespace()
        .next()
        .unwrap()
        .to_lowercase();
    assert!(vtt.to_lowercase().contains(&first_word), "{vtt}");

    // The episode shows the video; the task drawer shows both steps done.
    assert_eq!(ep["youtube_video_id"], video_id.as_str());
    assert_eq!(ep["upload_status"], "SUCCESS");
    assert_eq!(ep["is_published"], true);
    assert!(
        ep["publish"]["youtube_url"]
            .as_str()
            .unwrap()
            .contains(&video_id)
    );
    assert_eq!(
        ep["publish"]["processing"]["processing_status"],
        "succeeded"
    );
    let (_, tasks) = app
        .get(
            ALICE,
            &format!("/records/tasks?filter={{\"record_id\":\"{id}\"}}"),
        )
        .await;
    let tasks = tasks["items"].as_array().unwrap();
    for kind in ["rendering", "upload"] {
        let t = tasks.iter().find(|t| t["task_type"] == kind).unwrap();
        assert_eq!(t["status"], "COMPLETED", "{t}");
    }
    // The task drawer heard about both steps live.
    let live = drain(&mut ws, Duration::from_secs(1)).await;
    for kind in ["rendering", "upload"] {
        assert!(
            live.iter().any(|m| m["type"] == "TASK_UPDATE"
                && m["task"]["task_type"] == kind
                && m["task"]["record_id"] == id.as_str()
                && m["task"]["status"] == "COMPLETED"),
            "no live {kind} completion: {live:?}"
        );
    }
    // The exports are there too.
    for ext in ["srt", "vtt", "otio", "edl"] {
        let key = ep["publish"]["exports"][ext].as_str().unwrap();
        assert!(app.artifacts.path().join(key).is_file(), "{key}");
    }

    // Publishing again finds the video: no second upload, the same render reused.
    let (s, b) = app
        .post(ALICE, "/upload/youtube", json!({"episode_ids": [id]}))
        .await;
    assert_eq!(s, 202, "{b}");
    let again = wait_for_publish(&app, ALICE, &id, Duration::from_secs(120)).await;
    assert_eq!(again["result"]["video_id"], video_id.as_str(), "{again}");
    assert_eq!(again["progress"]["render"]["reused"], true, "{again}");
    assert_eq!(fake.videos().len(), 1);
    assert_eq!(fake.sessions_started(), 1);
    app.stop().await;
}

/// A clip registered as ingestion would (probed), so a publish can run without transcribing.
async fn probed_clip(app: &TestApp, user: &str, key: &str, seconds: f64) {
    let path = app.recordings_of(user).join(key);
    generate(
        &RecordingSpec::mic(
            vec![
                Segment::Silence(0.5),
                Segment::Speech(SENTENCES[3].into()),
                Segment::Silence(seconds),
            ],
            Some((640, 360, 30)),
        ),
        &path,
    )
    .unwrap();
    let info = gt_activities::media::probe::probe(&path.as_path().into(), key).unwrap();
    use gt_store::PipelineStore;
    app.store
        .upsert_clip_probe(user, "up", key, &info)
        .await
        .unwrap();
}

fn episode_body(id: &str, title: &str, key: &str, frames: u64) -> Value {
    json!({
        "id": id,
        "title": title,
        "description": "Uploaded by the e2e test.",
        "cut_list": {
            "version": "1.0.0",
            "inputMedia": [{"s3Location": key, "sections": [{"startFrame": 7, "endFrame": frames}]}],
            "outputTrack": [{"mediaIndex": 0, "sectionIndex": 0}]
        }
    })
}

#[tokio::test]
async fn an_upload_survives_faults_a_killed_worker_and_a_quota_wall() {
    const CHUNK: usize = 512 * 1024;
    let fake = FakeYouTube::start().await;
    let app = TestApp::start_with(AppOptions {
        cpu_worker: false,
        gpu_worker: false,
        youtube: Some(youtube_app(YouTubeConfig {
            chunk_size: CHUNK,
            ..fake.config()
        })),
        ..Default::default()
    })
    .await
    .unwrap();
    connect_youtube(&app, ALICE).await;
    app.post(
        ALICE,
        "/records/streams",
        json!({"id": "up", "prefix": "up"}),
    )
    .await;
    probed_clip(&app, ALICE, "up/a.mkv", 12.0).await;
    let (s, b) = app
        .post(
            ALICE,
            "/records/episodes",
            json!([
                episode_body("ep-up", "Faults everywhere", "up/a.mkv", 300),
                episode_body("ep-bad", "A <b>bold</b> title", "up/a.mkv", 300),
                json!({"id": "ep-past", "title": "Too late", "publish_at": "2020-01-01T00:00:00Z",
                       "cut_list": episode_body("x", "x", "up/a.mkv", 300)["cut_list"]}),
            ]),
        )
        .await;
    assert_eq!(s, 201, "{b}");

    // Bad metadata: refused before anything starts, every problem named.
    let (s, b) = app
        .post(
            ALICE,
            "/upload/youtube",
            json!({"episode_ids": ["ep-up", "ep-bad", "ep-past"]}),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["validation_errors"][0]["episode_id"], "ep-bad", "{b}");
    assert_eq!(b["validation_errors"][1]["episode_id"], "ep-past", "{b}");
    assert!(b["message"].as_str().unwrap().contains("'<'"), "{b}");
    assert!(b["message"].as_str().unwrap().contains("future"), "{b}");
    let (s, _) = app.get(ALICE, "/episodes/ep-up/publish").await;
    assert_eq!(s, 404, "nothing was started");
    // Bob has no YouTube connection.
    let (s, b) = app
        .post(BOB, "/upload/youtube", json!({"episode_ids": ["ep-up"]}))
        .await;
    assert_eq!(s, 403, "{b}");

    // YouTube takes only 256 KiB of the first chunk, the second chunk gets 503 with a 30 s
    // Retry-After, and the worker is killed while it waits.
    fake.push_fault(Fault::AcceptPartially {
        keep_bytes: 300 * 1024,
    });
    fake.push_fault(Fault::ServerError {
        on: RequestKind::Chunk,
        status: 503,
        retry_after: Some(RetryAfterHeader::Seconds(30)),
    });
    let spawn_worker = || {
        let mut cmd = app.worker_process("worker-cpu");
        cmd.env("GT_ANALYSIS_THREADS", "2");
        youtube_env(&mut cmd, &fake, CHUNK);
        cmd.spawn().unwrap()
    };
    let mut worker = spawn_worker();
    let (s, b) = app
        .post(ALICE, "/upload/youtube", json!({"episode_ids": ["ep-up"]}))
        .await;
    assert_eq!(s, 202, "{b}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    while !fake
        .requests()
        .iter()
        .any(|r| r.kind == RequestKind::Chunk && r.status == Some(503))
    {
        assert!(tokio::time::Instant::now() < deadline, "no 503 seen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    worker.kill().unwrap();
    worker.wait().unwrap();
    let (_, ep) = app.get(ALICE, "/records/episodes/ep-up").await;
    let session: Value = serde_json::from_str(ep["youtube_upload_url"].as_str().unwrap()).unwrap();
    let session_uri = session["uri"].as_str().unwrap().to_string();
    assert_eq!(
        fake.session_received(&session_uri),
        Some(256 * 1024),
        "{session}: {:#?}",
        fake.requests()
    );

    // The next worker resumes the same session from the confirmed byte, then meets a connection
    // dropped mid-chunk (300 KiB of it arrive; 256 KiB are kept), a 503 with an HTTP date, a 401
    // (one refresh) and a quota wall: the workflow sleeps on a durable timer until the quota
    // resets at midnight Pacific; `resume` ends the wait.
    fake.push_fault(Fault::DropConnection {
        after_bytes: 300 * 1024,
    });
    fake.push_fault(Fault::ServerError {
        on: RequestKind::Chunk,
        status: 503,
        retry_after: Some(RetryAfterHeader::HttpDateIn(Duration::from_secs(2))),
    });
    fake.push_fault(Fault::Unauthorized {
        on: RequestKind::Chunk,
    });
    fake.push_fault(Fault::QuotaExceeded {
        on: RequestKind::Chunk,
    });
    let mut worker = spawn_worker();
    let waiting = wait_for_publish_stage(&app, "ep-up", "waiting_for_quota").await;
    let until = chrono::DateTime::parse_from_rfc3339(
        waiting["progress"]["waiting_until"].as_str().unwrap(),
    )
    .unwrap();
    let pacific = until.with_timezone(&chrono_tz::America::Los_Angeles);
    assert_eq!(
        pacific.format("%H:%M:%S").to_string(),
        "00:00:00",
        "waits until midnight Pacific: {waiting}"
    );
    assert!(until.timestamp() > chrono::Utc::now().timestamp());
    assert!((until.timestamp() - chrono::Utc::now().timestamp()) <= 25 * 3600);
    let (_, ep) = app.get(ALICE, "/records/episodes/ep-up").await;
    assert_eq!(ep["upload_status"], "THROTTLED", "{ep}");
    // Bob cannot end Alice's wait.
    let (s, _) = app
        .post(BOB, "/episodes/ep-up/publish/resume", json!({}))
        .await;
    assert_eq!(s, 404);
    let (s, b) = app
        .post(ALICE, "/episodes/ep-up/publish/resume", json!({}))
        .await;
    assert_eq!(s, 202, "{b}");
    let done = wait_for_publish(&app, ALICE, "ep-up", Duration::from_secs(180)).await;
    worker.kill().ok();
    worker.wait().ok();
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["result"]["status"], "published", "{done}");

    // Exactly one video, from one session, with the render's bytes; the resumed upload started
    // at the confirmed byte, never at 0 again.
    let videos = fake.videos();
    assert_eq!(videos.len(), 1, "{videos:?}");
    assert_eq!(fake.sessions_started(), 1);
    let (_, ep) = app.get(ALICE, "/records/episodes/ep-up").await;
    let render = app
        .artifacts
        .path()
        .join(ep["render_uri"].as_str().unwrap());
    assert_eq!(videos[0].sha256, sha256_file(&render));
    let chunk_starts: Vec<u64> = fake
        .requests()
        .iter()
        .filter(|r| r.kind == RequestKind::Chunk)
        .filter_map(|r| {
            r.content_range
                .as_deref()?
                .strip_prefix("bytes ")?
                .split('-')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(chunk_starts[0], 0);
    assert!(
        chunk_starts[1..].iter().all(|&s| s >= 256 * 1024),
        "a chunk restarted below the confirmed byte: {chunk_starts:?}"
    );
    let refreshes = fake
        .token_requests()
        .iter()
        .filter(|t| t.grant_type == "refresh_token")
        .count();
    assert!(refreshes >= 1, "the 401 caused a refresh");
    // The 503's HTTP date was honoured: the retry came at least ~1 s later.
    let log = fake.requests();
    let date_503 = log
        .iter()
        .position(|r| {
            r.kind == RequestKind::Chunk
                && r.status == Some(503)
                && r.retry_after.as_deref().is_some_and(|v| v.contains("GMT"))
        })
        .expect("the HTTP-date 503");
    let next = &log[date_503 + 1];
    assert!(
        next.at.duration_since(log[date_503].at).unwrap() >= Duration::from_millis(900),
        "retried too early"
    );

    // Google revokes the authorization: the next publish asks the user to reconnect YouTube
    // (one refresh attempt, no retry loop), and the render it made is kept.
    let sealed: String = sqlx::query_scalar(
        "SELECT sealed_tokens FROM oauth_connections WHERE user_id = $1 AND provider = 'youtube'",
    )
    .bind(ALICE)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    let key =
        TokenKey::derive(TOKEN_KEY.as_bytes(), gt_youtube::token_box::YOUTUBE_TOKENS).unwrap();
    let tokens: gt_youtube::OAuthTokens = gt_youtube::token_box::open(&key, &sealed).unwrap();
    fake.revoke_refresh_token(&tokens.refresh_token);
    fake.expire_access_tokens();
    let refused_before = refused_refreshes(&fake);
    let (s, b) = app
        .post(
            ALICE,
            "/records/episodes",
            json!(episode_body("ep-revoked", "Revoked", "up/a.mkv", 150)),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let mut worker = spawn_worker();
    let (s, b) = app
        .post(
            ALICE,
            "/upload/youtube",
            json!({"episode_ids": ["ep-revoked"]}),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    let revoked = wait_for_publish(&app, ALICE, "ep-revoked", Duration::from_secs(180)).await;
    worker.kill().ok();
    worker.wait().ok();
    assert_eq!(revoked["result"]["status"], "needs_youtube", "{revoked}");
    assert!(
        revoked["progress"]["message"]
            .as_str()
            .unwrap()
            .contains("reconnect"),
        "{revoked}"
    );
    assert!(revoked["result"]["render_key"].is_string(), "{revoked}");
    assert_eq!(
        refused_refreshes(&fake),
        refused_before + 1,
        "one refresh, no loop"
    );
    let (_, token) = app.get(ALICE, "/auth/youtube/token").await;
    assert_eq!(token, json!({"connected": false, "needs_reconnect": true}));
    let (s, b) = app
        .post(
            ALICE,
            "/upload/youtube",
            json!({"episode_ids": ["ep-revoked"]}),
        )
        .await;
    assert_eq!(s, 403, "{b}");
    assert!(b["message"].as_str().unwrap().contains("reconnect"), "{b}");
    assert_eq!(fake.videos().len(), 1);
    app.stop().await;
}

fn refused_refreshes(fake: &FakeYouTube) -> usize {
    fake.token_requests()
        .iter()
        .filter(|t| t.grant_type == "refresh_token" && t.status >= 400)
        .count()
}

#[tokio::test]
async fn render_and_publish_routes_belong_to_their_user() {
    let app = TestApp::start_with(AppOptions {
        gpu_worker: false,
        ..Default::default()
    })
    .await
    .unwrap();
    app.post(
        ALICE,
        "/records/streams",
        json!({"id": "up", "prefix": "up"}),
    )
    .await;
    probed_clip(&app, ALICE, "up/a.mkv", 3.0).await;
    let (s, b) = app
        .post(
            ALICE,
            "/records/episodes",
            json!(episode_body("mine", "Alice's", "up/a.mkv", 90)),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    // Bob's episode of the same id names Alice's recording: it is not his.
    let (s, b) = app
        .post(
            BOB,
            "/records/episodes",
            json!(episode_body("mine", "Bob's", "up/a.mkv", 90)),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    for (path, body, want) in [
        ("/render", json!({"episodeIds": ["missing"]}), 404),
        ("/render", json!({"episodeIds": []}), 400),
        ("/render", json!({"episodeIds": ["mine"], "x": 1}), 400),
        ("/episodes/mine/publish/cancel", json!({}), 404),
        ("/episodes/mine/publish/resume", json!({}), 404),
        ("/upload/youtube", json!({"episode_ids": ["mine"]}), 403),
        (
            "/auth/youtube/url",
            json!({"scopes": [], "redirect_uri": BACK}),
            503,
        ),
    ] {
        let (s, b) = app.post(BOB, path, body).await;
        assert_eq!(s, want, "Bob: {path}: {b}");
    }
    let (s, _) = app.get(BOB, "/episodes/mine/publish").await;
    assert_eq!(s, 404);

    // Alice renders; Bob sees no run of hers, and his own render of "mine" fails on his side
    // only (the recording is not in his folder).
    let (s, b) = app
        .post(ALICE, "/render", json!({"episodeIds": ["mine"]}))
        .await;
    assert_eq!(s, 202, "{b}");
    let (s, _) = app.get(BOB, "/episodes/mine/publish").await;
    assert_eq!(s, 404);
    let done = wait_for_publish(&app, ALICE, "mine", Duration::from_secs(180)).await;
    assert_eq!(done["result"]["status"], "rendered", "{done}");
    let (s, b) = app
        .post(BOB, "/render", json!({"episodeIds": ["mine"]}))
        .await;
    assert_eq!(s, 202, "{b}");
    let bob = wait_for_publish(&app, BOB, "mine", Duration::from_secs(120)).await;
    assert_eq!(bob["status"], "FAILED", "{bob}");
    assert!(
        bob["error"]
            .as_str()
            .unwrap()
            .contains("not one of your recordings"),
        "{bob}"
    );
    let (_, alice_ep) = app.get(ALICE, "/records/episodes/mine").await;
    assert!(
        alice_ep["render_uri"]
            .as_str()
            .unwrap()
            .starts_with("alice/")
    );
    let (_, bob_ep) = app.get(BOB, "/records/episodes/mine").await;
    assert_eq!(bob_ep["render_uri"], Value::Null, "{bob_ep}");
    // A client cannot write the derived fields.
    let (s, b) = app
        .put(
            BOB,
            "/records/episodes/mine",
            json!({"render_uri": "alice/renders/x.mp4", "youtube_video_id": "stolen",
                   "publish": {"youtube_url": "x"}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (_, bob_ep) = app.get(BOB, "/records/episodes/mine").await;
    assert_eq!(bob_ep["render_uri"], Value::Null);
    assert_eq!(bob_ep["youtube_video_id"], Value::Null);

    // A render in progress can be cancelled: the run ends `cancelled`, its task ABORTED, and
    // nothing is stored under a render key. (A smaller size in the profile makes it a full
    // re-encode, long enough to be caught running.)
    probed_clip(&app, ALICE, "up/long.mkv", 150.0).await;
    let (s, b) = app
        .put(
            ALICE,
            "/records/profiles/my-profile",
            json!({"renderProfile": {"width": 320, "height": 180}}),
        )
        .await;
    assert!(s == 200 || s == 201, "{b}");
    let (s, b) = app
        .post(
            ALICE,
            "/records/episodes",
            json!(episode_body("long", "Long", "up/long.mkv", 4500)),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = app
        .post(ALICE, "/render", json!({"episodeIds": ["long"]}))
        .await;
    assert_eq!(s, 202, "{b}");
    wait_for_publish_stage(&app, "long", "rendering").await;
    let (s, b) = app
        .post(ALICE, "/episodes/long/publish/cancel", json!({}))
        .await;
    assert_eq!(s, 202, "{b}");
    let cancelled = wait_for_publish(&app, ALICE, "long", Duration::from_secs(60)).await;
    assert_eq!(cancelled["result"]["status"], "cancelled", "{cancelled}");
    let (_, tasks) = app
        .get(ALICE, "/records/tasks?filter={\"record_id\":\"long\"}")
        .await;
    let render_task = tasks["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["task_type"] == "rendering")
        .cloned()
        .unwrap();
    assert_eq!(render_task["status"], "ABORTED", "{render_task}");
    let (_, long) = app.get(ALICE, "/records/episodes/long").await;
    assert_eq!(long["render_uri"], Value::Null, "{long}");
    app.stop().await;
}
