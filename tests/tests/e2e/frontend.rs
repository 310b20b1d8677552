//! The original React front end (saebyn/glowing-telegram-frontend) as a client: each test sends
//! exactly what its code sends (`reference/anchor-frontend.md` §2, checked against its source)
//! and checks the answer against what its code reads.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use gt_store::PipelineStore;
use gt_tests::{ALICE, AppOptions, BOB, TestApp};
use gt_types::media::{PREVIEW_VERSION, Preview, PreviewSegment};
use reqwest::Method;
use serde_json::{Value, json};

fn instant(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a string: {v}")))
        .unwrap_or_else(|e| panic!("{v} is not RFC 3339: {e}"))
        .with_timezone(&Utc)
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// `streams/Create.tsx`: title, description, thumbnail, stream_platform, stream_id,
/// stream_date from a `DateTimeInput` (`YYYY-MM-DDTHH:mm`, local, no zone), prefix.
fn create_form(title: &str, stream_date: &str) -> Value {
    json!({
        "title": title,
        "description": "",
        "thumbnail": "",
        "stream_platform": "twitch",
        "stream_id": "",
        "stream_date": stream_date,
        "prefix": "2024-07-01",
    })
}

#[tokio::test]
async fn stream_forms_send_local_times_and_numeric_strings() {
    let app = TestApp::start_with(AppOptions::api_only()).await.unwrap();

    // No profile time zone: a zone-less time is UTC.
    let (s, b) = app
        .post(
            ALICE,
            "/records/streams",
            create_form("No zone", "2024-07-01T20:30"),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let plain = b["id"].as_str().unwrap().to_string();
    let (_, got) = app.get(ALICE, &format!("/records/streams/{plain}")).await;
    assert_eq!(instant(&got["stream_date"]), utc("2024-07-01T20:30:00Z"));

    // With a profile time zone (the profile page's `timezone`), it is that zone's wall clock:
    // New York is UTC-4 in July, UTC-5 in January.
    let (s, b) = app
        .put(
            ALICE,
            "/records/profiles/my-profile",
            json!({"timezone": "America/New_York"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = app
        .post(
            ALICE,
            "/records/streams",
            create_form("Summer", "2024-07-01T20:30"),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let id = b["id"].as_str().unwrap().to_string();
    let path = format!("/records/streams/{id}");
    let (_, record) = app.get(ALICE, &path).await;
    assert_eq!(instant(&record["stream_date"]), utc("2024-07-02T00:30:00Z"));
    // Bulk create (`{data: [...]}`, the Twitch import) resolves each record the same way.
    let (s, b) = app
        .post(
            ALICE,
            "/records/streams",
            json!({"data": [create_form("Winter", "2024-01-15T09:05")]}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let winter = b["items"][0]["id"].as_str().unwrap().to_string();
    let (_, w) = app.get(ALICE, &format!("/records/streams/{winter}")).await;
    assert_eq!(instant(&w["stream_date"]), utc("2024-01-15T14:05:00Z"));
    // A time with an offset is taken as it is.
    let (s, b) = app
        .post(
            ALICE,
            "/records/streams",
            create_form("Zoned", "2024-07-01T20:30:00+02:00"),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (_, z) = app
        .get(
            ALICE,
            &format!("/records/streams/{}", b["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(instant(&z["stream_date"]), utc("2024-07-01T18:30:00Z"));

    // `streams/Edit.tsx` saves the whole record back; `TimeDurationInput` gives `duration`
    // as a numeric string, and the DateTimeInput the edited wall-clock time.
    let mut edited = record.clone();
    edited["duration"] = json!("3600");
    edited["stream_date"] = json!("2024-07-01T21:15");
    edited["has_episodes"] = json!(false);
    let (s, saved) = app.put(ALICE, &path, edited).await;
    assert_eq!(s, 200, "{saved}");
    assert_eq!(
        saved["duration"].as_f64(),
        Some(3600.0),
        "stored as a number: {saved}"
    );
    assert!(saved["duration"].is_number(), "{saved}");
    assert_eq!(instant(&saved["stream_date"]), utc("2024-07-02T01:15:00Z"));
    let (_, before) = app.get(ALICE, &path).await;

    // Ambiguous input: a clear 400 naming the field, and nothing changes.
    for (patch, needle) in [
        (
            json!({"duration": "1 hour"}),
            "field 'duration' must be a number",
        ),
        (json!({"duration": ""}), "field 'duration' must be a number"),
        (
            json!({"duration": "3,600"}),
            "field 'duration' must be a number",
        ),
        (
            json!({"duration": "0x10"}),
            "field 'duration' must be a number",
        ),
        // The clocks skip 02:00–03:00 on 2024-03-10 in New York and repeat 01:00–02:00 on
        // 2024-11-03.
        (
            json!({"stream_date": "2024-03-10T02:30"}),
            "does not exist in America/New_York",
        ),
        (
            json!({"stream_date": "2024-11-03T01:30"}),
            "happens twice in America/New_York",
        ),
        (
            json!({"stream_date": "2024-07-01T25:00"}),
            "field 'stream_date' must be",
        ),
        (
            json!({"title": "changed", "stream_date": "2024-03-10T02:30"}),
            "does not exist",
        ),
    ] {
        let (s, b) = app.put(ALICE, &path, patch.clone()).await;
        assert_eq!(s, 400, "{patch}: {b}");
        let msg = b["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{patch}: {msg}");
        let (_, after) = app.get(ALICE, &path).await;
        assert_eq!(after, before, "{patch} changed the record");
    }
    let (s, _) = app
        .post(
            ALICE,
            "/records/streams",
            create_form("Never", "2024-03-10T02:30"),
        )
        .await;
    assert_eq!(s, 400);

    // A profile zone that is no IANA name: zone-less times are refused (not guessed), times
    // with an offset still work.
    app.put(
        ALICE,
        "/records/profiles/my-profile",
        json!({"timezone": "Mars/Olympus"}),
    )
    .await;
    let (s, b) = app
        .post(
            ALICE,
            "/records/streams",
            create_form("Mars", "2024-07-01T20:30"),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(
        b["message"].as_str().unwrap().contains("not an IANA"),
        "{b}"
    );
    let (s, _) = app
        .post(
            ALICE,
            "/records/streams",
            create_form("Mars", "2024-07-01T20:30:00Z"),
        )
        .await;
    assert_eq!(s, 201);

    // Bob's profile zone is his own: Alice's does not apply to him.
    let (s, b) = app
        .post(
            BOB,
            "/records/streams",
            create_form("Bob", "2024-07-01T20:30"),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (_, bob) = app
        .get(
            BOB,
            &format!("/records/streams/{}", b["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(instant(&bob["stream_date"]), utc("2024-07-01T20:30:00Z"));
    app.stop().await;
}

/// Real media files made by the FFmpeg CLI: a one-second MPEG-TS segment and a JPEG.
fn make_media(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    std::fs::create_dir_all(dir).unwrap();
    let (ts, jpg) = (dir.join("seg.ts"), dir.join("frame.jpg"));
    for args in [
        vec![
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x36:rate=10",
            "-t",
            "1",
            "-f",
            "mpegts",
        ],
        vec![
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x36:rate=1",
            "-frames:v",
            "1",
        ],
    ] {
        let out = if args.contains(&"mpegts") { &ts } else { &jpg };
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(&args)
            .arg(out)
            .status()
            .unwrap();
        assert!(status.success());
    }
    (std::fs::read(ts).unwrap(), std::fs::read(jpg).unwrap())
}

/// The `gt_media` cookie pair of a response's `Set-Cookie`, with its attributes.
fn media_cookie(resp: &reqwest::Response) -> Option<(String, String)> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("gt_media="))
        .map(|v| {
            let pair = v.split(';').next().unwrap().to_string();
            (pair, v.to_string())
        })
}

#[tokio::test]
async fn the_player_and_keyframes_load_with_the_media_cookie_and_only_the_owners() {
    let app = TestApp::start_with(AppOptions::api_only()).await.unwrap();
    let (segment, frame) = make_media(&app.artifacts.path().join("fixtures"));

    // Alice's stream with one clip whose preview (segments, keyframes) the analysis would
    // have written: files under her own artifacts prefix.
    let (s, b) = app
        .post(
            ALICE,
            "/records/streams",
            json!({"id": "show", "prefix": "show", "title": "Show"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = app
        .post(
            ALICE,
            "/records/video_clips",
            json!({"key": "show/a.mkv", "stream_id": "show"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let seg_key = "alice/hls/show/a.mkv/00000.ts";
    let frame_key = "alice/keyframes/show/a.mkv/0000000000.jpg";
    for (key, bytes) in [(seg_key, &segment), (frame_key, &frame)] {
        let p = app.artifacts.path().join(key);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    app.store
        .save_preview(
            ALICE,
            "show/a.mkv",
            &Preview {
                version: PREVIEW_VERSION.into(),
                playlist: "alice/hls/show/a.mkv/index.m3u8".into(),
                segments: vec![PreviewSegment {
                    key: seg_key.into(),
                    duration: 1.0,
                }],
                keyframes: vec![frame_key.into()],
            },
        )
        .await
        .unwrap();
    // Bob has a stream of the same name, no media.
    app.post(
        BOB,
        "/records/streams",
        json!({"id": "show", "prefix": "show"}),
    )
    .await;

    let http = &app.http;
    let get = |path: String, cookie: Option<&str>| {
        let mut req = http.get(format!("{}{path}", app.base));
        if let Some(c) = cookie {
            req = req.header("Cookie", c);
        }
        async move { req.send().await.unwrap() }
    };

    // Without a token or cookie, as before: 401.
    assert_eq!(get("/playlist/show.m3u8".into(), None).await.status(), 401);
    assert_eq!(get(format!("/media/{frame_key}"), None).await.status(), 401);

    // The editor's first calls (`VideoEditor.tsx`): the stream, then its clips. The
    // authenticated read sets the media cookie.
    let resp = http
        .get(format!("{}/records/streams/show", app.base))
        .header("Authorization", app.token(ALICE))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (alice_cookie, attrs) = media_cookie(&resp).expect("a media cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(attrs.contains(attr), "{attrs}");
    }
    let max_age: u64 = attrs
        .split("Max-Age=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        max_age > 3500 && max_age <= 3600,
        "no longer than the hour-long token: {max_age}"
    );
    let resp = http
        .get(format!("{}/records/video_clips/stream_id/show", app.base))
        .header("Authorization", app.token(ALICE))
        .send()
        .await
        .unwrap();
    let clips: Value = resp.json().await.unwrap();
    let keyframes = clips["items"][0]["keyframes"].clone();
    assert_eq!(keyframes, json!([frame_key]), "{clips}");

    // hls.js fetches `new URL('/playlist/show.m3u8', CONTENT_URL)` with only the cookie.
    let content_url = url::Url::parse(&format!("{}/media/", app.base)).unwrap();
    let playlist_url = content_url.join("/playlist/show.m3u8").unwrap();
    assert_eq!(playlist_url.path(), "/playlist/show.m3u8");
    let resp = get(playlist_url.path().into(), Some(&alice_cookie)).await;
    assert_eq!(resp.status(), 200);
    let playlist = resp.text().await.unwrap();
    assert!(playlist.starts_with("#EXTM3U"), "{playlist}");
    let link = playlist
        .lines()
        .find(|l| l.starts_with("/media/"))
        .unwrap()
        .to_string();
    let resp = get(link.clone(), None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), segment.as_slice());

    // `projects/Edit.tsx`: `<img src={new URL(keyframe, CONTENT_URL)}>`, with only the cookie.
    let img = content_url.join(keyframes[0].as_str().unwrap()).unwrap();
    assert_eq!(img.path(), format!("/media/{frame_key}"));
    let resp = get(img.path().into(), Some(&alice_cookie)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), frame.as_slice());

    // Bob's cookie, from his own authenticated read, opens none of Alice's media.
    let resp = http
        .get(format!("{}/records/streams", app.base))
        .header("Authorization", app.token(BOB))
        .send()
        .await
        .unwrap();
    let (bob_cookie, _) = media_cookie(&resp).expect("Bob's media cookie");
    let bob_playlist = get("/playlist/show.m3u8".into(), Some(&bob_cookie)).await;
    assert_eq!(
        bob_playlist.status(),
        404,
        "Bob's own 'show' has no preview"
    );
    assert!(!bob_playlist.text().await.unwrap().contains("alice"));
    for key in [frame_key, seg_key] {
        let r = get(format!("/media/{key}"), Some(&bob_cookie)).await;
        assert_eq!(r.status(), 404, "{key}");
    }
    // Both cookies together (a shared browser): still only the cookie's owner's files; Bob's
    // cookie does not become Alice's.
    let both = format!("{bob_cookie}; {alice_cookie}");
    let r = get(format!("/media/{frame_key}"), Some(&both)).await;
    assert_eq!(
        r.status(),
        404,
        "the first valid cookie speaks; it is Bob's"
    );
    // A forged cookie (Alice's signature with Bob's name, or a longer life) is refused.
    let value = alice_cookie.trim_start_matches("gt_media=");
    let mut parts: Vec<&str> = value.split('.').collect();
    let bob_b64 = bob_cookie
        .trim_start_matches("gt_media=")
        .split('.')
        .next()
        .unwrap()
        .to_string();
    parts[0] = &bob_b64;
    let forged = format!("gt_media={}", parts.join("."));
    assert_eq!(
        get("/playlist/show.m3u8".into(), Some(&forged))
            .await
            .status(),
        401
    );
    let mut parts: Vec<String> = value.split('.').map(str::to_string).collect();
    parts[1] = (parts[1].parse::<u64>().unwrap() + 86_400).to_string();
    let longer = format!("gt_media={}", parts.join("."));
    assert_eq!(
        get(format!("/media/{frame_key}"), Some(&longer))
            .await
            .status(),
        401
    );

    // The cookie is for reading media only: it authenticates no API call.
    let r = get("/records/streams".into(), Some(&alice_cookie)).await;
    assert_eq!(r.status(), 401);
    let r = http
        .post(format!("{}/records/streams", app.base))
        .header("Cookie", &alice_cookie)
        .json(&json!({"title": "csrf"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Failed reads and writes hand out no cookie.
    let r = http
        .get(format!("{}/records/streams/nope", app.base))
        .header("Authorization", app.token(ALICE))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(media_cookie(&r).is_none());
    let r = http
        .post(format!("{}/records/streams", app.base))
        .header("Authorization", app.token(ALICE))
        .json(&json!({"title": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(media_cookie(&r).is_none());
    app.stop().await;
}

#[tokio::test]
async fn twitch_token_storage_status_and_chat_without_a_key() {
    let app = TestApp::start_with(AppOptions::api_only()).await.unwrap();

    // `api.ts fetchAccessToken('twitch')`: JSON without `access_token` = not connected.
    let (s, b) = app.get(ALICE, "/auth/twitch/token").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b, json!({"connected": false, "needs_reconnect": false}));
    assert_eq!(
        app.call(None, Method::GET, "/auth/twitch/token", None)
            .await
            .0,
        401
    );

    // The storage chip: the recordings under the stream's prefix, sized by the file system.
    let root = app.recordings_of(ALICE).join("2024-07-01");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("2024-07-01 20-30-00.mkv"), vec![7u8; 12_345]).unwrap();
    std::fs::write(root.join("2024-07-01 21-30-00.mkv"), vec![7u8; 678]).unwrap();
    let expected: u64 = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    app.post(
        ALICE,
        "/records/streams",
        json!({"id": "july", "prefix": "2024-07-01"}),
    )
    .await;
    app.post(
        ALICE,
        "/records/streams",
        json!({"id": "empty", "prefix": "2099-01-01"}),
    )
    .await;
    app.post(ALICE, "/records/streams", json!({"id": "noprefix"}))
        .await;
    let (s, b) = app.get(ALICE, "/ingestion/streams/july/s3-status").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["exists"], true);
    assert_eq!(b["storage_class"], "STANDARD");
    assert_eq!(b["size_bytes"].as_u64(), Some(expected));
    assert_eq!(b["retrieval_required"], false);
    for id in ["empty", "noprefix"] {
        let (s, b) = app
            .get(ALICE, &format!("/ingestion/streams/{id}/s3-status"))
            .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["exists"], false, "{id}: {b}");
        assert_eq!(b["size_bytes"], Value::Null);
    }
    // Owner-scoped: Bob cannot see Alice's stream, and his own stream with the same prefix
    // looks in his own recordings folder.
    let (s, b) = app.get(BOB, "/ingestion/streams/july/s3-status").await;
    assert_eq!(s, 404, "{b}");
    app.post(
        BOB,
        "/records/streams",
        json!({"id": "bobs", "prefix": "2024-07-01"}),
    )
    .await;
    let (s, b) = app.get(BOB, "/ingestion/streams/bobs/s3-status").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["exists"], false, "{b}");
    assert_eq!(
        app.get(ALICE, "/ingestion/streams/nope/s3-status").await.0,
        404
    );

    // AI chat with no key configured: a clear 503 saying what to set; bad bodies are 400.
    let chat = json!({"messages": [{"role": "system", "content": "You write titles."},
                                   {"role": "user", "content": "Title please"}]});
    let (s, b) = app.post(ALICE, "/ai/chat", chat).await;
    assert_eq!(s, 503, "{b}");
    assert!(
        b["message"].as_str().unwrap().contains("GT_OPENAI_API_KEY"),
        "{b}"
    );
    for bad in [
        json!({}),
        json!({"messages": []}),
        json!({"messages": [{"role": "wizard", "content": "x"}]}),
        json!({"messages": [{"role": "user"}]}),
        json!([{"role": "user", "content": "x"}]),
    ] {
        let (s, b) = app.post(ALICE, "/ai/chat", bad.clone()).await;
        assert_eq!(s, 400, "{bad}: {b}");
    }
    app.stop().await;
}

/// What the fake chat server was sent: (Authorization header, body).
type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// A local stand-in for an OpenAI-compatible `/chat/completions`: records each request and
/// answers with the JSON reply the front end's "Use this message" parses.
async fn fake_chat_server() -> (String, Seen) {
    use axum::Json;
    use axum::http::HeaderMap;
    use axum::routing::post;
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move |h: HeaderMap, Json(body): Json<Value>| {
            let seen = s.clone();
            async move {
                let auth = h
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                seen.lock().unwrap().push((auth, body.clone()));
                let turns = body["messages"].as_array().map_or(0, Vec::len);
                let reply = json!({"title": "Castle siege", "description": format!("after {turns} messages")});
                Json(json!({
                    "id": "chatcmpl-fe", "object": "chat.completion", "created": 1, "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
                                 "message": {"role": "assistant", "content": reply.to_string(), "refusal": null}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

#[tokio::test]
async fn ai_chat_speaks_openais_wire_format_when_a_key_is_configured() {
    let (url, seen) = fake_chat_server().await;
    let app = TestApp::start_with(AppOptions {
        ai: Some(gt_ai::AiConfig {
            api_key: Some("sk-frontend".into()),
            base_url: Some(url),
            chat_model: "gpt-4o-2024-11-20".into(),
            ..gt_tests::local_ai()
        }),
        ..AppOptions::api_only()
    })
    .await
    .unwrap();
    // `EpisodeDescriptionChatButton.tsx`: a system job, the context, the transcript, then the
    // user's turn; `aiChat.ts` posts `{messages}` with the raw id_token.
    let sent = json!([
        {"role": "system", "content": "I write a title and description. My response is a well-formed JSON object."},
        {"role": "user", "content": "Series: Castle Run. Stream date: 2024-07-01."},
        {"role": "user", "content": "0s: welcome back everyone\n5s: today the castle"},
        {"role": "assistant", "content": "{\"title\":\"Draft\",\"description\":\"d\"}"},
        {"role": "function", "content": "make it shorter"},
    ]);
    let resp = app
        .http
        .post(format!("{}/ai/chat", app.base))
        .header("Authorization", app.token(ALICE))
        .header("Accept", "application/json")
        .json(&json!({"messages": sent}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    // The front end reads `messages`: everything it sent, then the reply.
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 6, "{body}");
    assert_eq!(&messages[..5], sent.as_array().unwrap().as_slice());
    assert_eq!(messages[5]["role"], "assistant");
    let reply: Value = serde_json::from_str(messages[5]["content"].as_str().unwrap()).unwrap();
    assert_eq!(reply["title"], "Castle siege");
    assert_eq!(reply["description"], "after 5 messages");

    // What went over the wire: the configured key and model, the conversation in order, the
    // function turn (which has no function name) as a user turn.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (auth, wire) = &seen[0];
    assert_eq!(auth, "Bearer sk-frontend");
    assert_eq!(wire["model"], "gpt-4o-2024-11-20");
    let roles: Vec<&str> = wire["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["system", "user", "user", "assistant", "user"]);
    assert_eq!(wire["messages"][4]["content"], "make it shorter");
    app.stop().await;
}

/// The record calls the original front end made in a real browser run
/// (`tools/original-frontend/run`, `docs/original-frontend.md`), replayed with the exact
/// query strings and bodies it sent, and checked against what its code reads.
#[tokio::test]
async fn calls_recorded_from_the_browser_run_replayed() {
    let app = TestApp::start_with(AppOptions::api_only()).await.unwrap();

    // Series Create form: the title only.
    let (s, series) = app
        .post(
            ALICE,
            "/records/series",
            json!({"title": "FE check series"}),
        )
        .await;
    assert_eq!(s, 201, "{series}");
    let series_id = series["id"].as_str().unwrap().to_string();

    // Stream Create form: an empty description and thumbnail are not sent at all.
    let (s, created) = app
        .post(
            ALICE,
            "/records/streams",
            json!({"stream_platform": "twitch", "title": "FE check",
                   "stream_date": "2024-07-01T20:30", "prefix": "2024-07-01"}),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();

    // Lists: page 1 sends the literal `cursor=null`; the stream Edit page's Prev/Next fetch
    // 1000 at once, the editor's project picker 100, ReferenceInput 25.
    for (path, per_page) in [
        ("/records/streams", 10),
        ("/records/streams", 1000),
        ("/records/series", 25),
        ("/records/projects", 100),
        ("/records/chat_messages", 10),
        ("/records/stream_widgets", 10),
        ("/records/video_clips", 10),
        ("/records/episodes", 10),
    ] {
        let (s, b) = app
            .get(
                ALICE,
                &format!("{path}?cursor=null&perPage={per_page}&filter=%7B%7D"),
            )
            .await;
        assert_eq!(s, 200, "{path} perPage={per_page}: {b}");
        assert!(b["items"].is_array(), "{path}: {b}");
        assert!(
            b["cursor"].is_null() || b["cursor"].is_string(),
            "{path}: {b}"
        );
    }
    let (_, streams) = app
        .get(
            ALICE,
            "/records/streams?cursor=null&perPage=1000&filter=%7B%7D",
        )
        .await;
    assert!(
        streams["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == id.as_str()),
        "{streams}"
    );

    // The series ReferenceField's getMany: `filter={"id":[...]}` with no cursor or perPage;
    // a series not named must not come back.
    let (s, other) = app
        .post(ALICE, "/records/series", json!({"title": "Not asked for"}))
        .await;
    assert_eq!(s, 201, "{other}");
    let filter = url::form_urlencoded::byte_serialize(
        json!({"id": [series_id, "no-such-series"]})
            .to_string()
            .as_bytes(),
    )
    .collect::<String>();
    let (s, many) = app
        .get(ALICE, &format!("/records/series?filter={filter}"))
        .await;
    assert_eq!(s, 200, "{many}");
    let ids: Vec<&str> = many["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![series_id.as_str()], "{many}");

    // Stream Edit form: the whole record as it was read (user_id, created_at, updated_at
    // included), with the series picked, the duration as the string the duration input
    // gives, and the untouched date-time back in the form the API returned it.
    let path = format!("/records/streams/{id}");
    let (_, mut record) = app.get(ALICE, &path).await;
    record["series_id"] = json!(series_id);
    record["duration"] = json!("120");
    record["has_episodes"] = json!(false);
    let stream_date = record["stream_date"].clone();
    let (s, saved) = app.put(ALICE, &path, record).await;
    assert_eq!(s, 200, "{saved}");
    let (_, stored) = app.get(ALICE, &path).await;
    assert_eq!(stored["duration"].as_f64(), Some(120.0), "{stored}");
    assert_eq!(stored["series_id"], json!(series_id), "{stored}");
    assert_eq!(
        instant(&stored["stream_date"]),
        instant(&stream_date),
        "saving the form unchanged must not move the date"
    );
    assert_eq!(instant(&stored["stream_date"]), utc("2024-07-01T20:30:00Z"));

    // The series getOne the review page makes answers the record by id.
    let (s, one) = app
        .get(ALICE, &format!("/records/series/{series_id}"))
        .await;
    assert_eq!(s, 200, "{one}");
    assert_eq!(one["title"], "FE check series");
    app.stop().await;
}
