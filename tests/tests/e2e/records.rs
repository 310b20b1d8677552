//! `/records/{resource}` against a real Postgres: every list, filter, write and isolation rule,
//! and every bad input (which must change nothing).

use gt_tests::{ALICE, AppOptions, BOB, TestApp};
use reqwest::Method;
use serde_json::{Value, json};

async fn app() -> TestApp {
    TestApp::start_with(AppOptions {
        cpu_worker: false,
        gpu_worker: false,
        ..Default::default()
    })
    .await
    .expect("test app")
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

async fn count(app: &TestApp, user: &str, resource: &str) -> usize {
    let (s, page) = app
        .get(
            user,
            &format!("/records/{resource}?perPage=1000&cursor=null"),
        )
        .await;
    assert_eq!(s, 200, "{page}");
    assert!(page["cursor"].is_null());
    page["items"].as_array().unwrap().len()
}

#[tokio::test]
async fn create_get_update_delete_round_trip() {
    let app = app().await;
    let (s, created) = app
        .post(
            ALICE,
            "/records/streams",
            json!({"title": "Castle run", "prefix": "2024-11-28", "duration": 3600.5,
                   "stream_date": "2024-11-28T18:00:00Z", "has_episodes": false}),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["user_id"], ALICE);
    assert_eq!(created["duration"], 3600.5);
    assert!(created["created_at"].is_string());
    // Sparse like the original: absent fields are absent, not null.
    assert!(created.get("series_id").is_none());

    let (s, got) = app.get(ALICE, &format!("/records/streams/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(got, created);

    // PUT merges: untouched fields stay; the front end sends server fields back, which are ignored.
    let (s, updated) = app
        .put(
            ALICE,
            &format!("/records/streams/{id}"),
            json!({"id": id, "title": "Castle run (part 1)", "user_id": BOB, "created_at": "1999-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(s, 200, "{updated}");
    assert_eq!(updated["title"], "Castle run (part 1)");
    assert_eq!(updated["prefix"], "2024-11-28");
    assert_eq!(updated["user_id"], ALICE);
    assert_eq!(updated["created_at"], created["created_at"]);
    assert_ne!(updated["updated_at"], created["updated_at"]);

    // null clears a field.
    let (_, cleared) = app
        .put(
            ALICE,
            &format!("/records/streams/{id}"),
            json!({"duration": null}),
        )
        .await;
    assert!(cleared.get("duration").is_none());

    let (s, body) = app.delete(ALICE, &format!("/records/streams/{id}")).await;
    assert_eq!((s, body), (204, Value::Null));
    let (s, body) = app.get(ALICE, &format!("/records/streams/{id}")).await;
    assert_eq!(s, 404);
    assert!(body["message"].as_str().unwrap().contains(&id));
    let (s, _) = app.delete(ALICE, &format!("/records/streams/{id}")).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn cursor_pages_cover_everything_once() {
    let app = app().await;
    let records: Vec<Value> = (0..23)
        .map(|i| json!({"title": format!("s{i:02}")}))
        .collect();
    let (s, bulk) = app
        .post(ALICE, "/records/streams", json!({"data": records}))
        .await;
    assert_eq!(s, 201, "{bulk}");
    assert_eq!(bulk["items"].as_array().unwrap().len(), 23);

    let mut seen = Vec::new();
    let mut cursor = "null".to_string();
    let mut pages = 0;
    loop {
        let (s, page) = app
            .get(
                ALICE,
                &format!("/records/streams?perPage=10&cursor={cursor}"),
            )
            .await;
        assert_eq!(s, 200, "{page}");
        pages += 1;
        seen.extend(ids(&page));
        match page["cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 23);
    let mut dedup = seen.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), 23);
    // Default page size is 10; no cursor parameter at all is page 1 too.
    let (_, first) = app.get(ALICE, "/records/streams").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 10);
    assert_eq!(ids(&first), seen[..10]);
}

#[tokio::test]
async fn filters_select_the_right_records() {
    let app = app().await;
    let (s, _) = app
        .post(
            ALICE,
            "/records/episodes",
            json!({"data": [
                {"id": "e1", "title": "Dragon fight", "order_index": 1, "is_published": true,
                 "tags": ["rust", "boss"], "upload_status": "SUCCESS", "youtube_video_id": "yt1",
                 "created_at": "ignored"},
                {"id": "e2", "title": "Village shopping", "order_index": 2, "is_published": false,
                 "tags": ["chill"], "render_uri": "renders/e2.mp4"},
                {"id": "e3", "title": "The DRAGON returns", "order_index": 3, "tags": ["boss"],
                 "description": "50% off_sale"},
            ]}),
        )
        .await;
    assert_eq!(s, 201);
    // render_uri, upload_status and youtube_video_id are the server's (rendering and upload
    // write them): the bodies' values were ignored; set them as the pipeline would.
    let (_, e1) = app.get(ALICE, "/records/episodes/e1").await;
    let (_, e2) = app.get(ALICE, "/records/episodes/e2").await;
    assert_eq!(e1["upload_status"], Value::Null, "{e1}");
    assert_eq!(e1["youtube_video_id"], Value::Null, "{e1}");
    assert_eq!(e2["render_uri"], Value::Null, "{e2}");
    for sql in [
        "UPDATE episodes SET render_uri = 'alice/renders/e2.mp4' WHERE id = 'e2'",
        "UPDATE episodes SET upload_status = 'SUCCESS', youtube_video_id = 'yt1' WHERE id = 'e1'",
    ] {
        sqlx::query(sql).execute(app.store.pool()).await.unwrap();
    }
    let q = |filter: Value| {
        let app = &app;
        async move {
            let f = url::form_urlencoded::byte_serialize(filter.to_string().as_bytes())
                .collect::<String>();
            let (s, page) = app
                .get(ALICE, &format!("/records/episodes?filter={f}"))
                .await;
            assert_eq!(s, 200, "{filter}: {page}");
            let mut v = ids(&page);
            v.sort();
            v
        }
    };
    assert_eq!(q(json!({"is_published": true})).await, ["e1"]);
    assert_eq!(q(json!({"id": ["e1", "e3"]})).await, ["e1", "e3"]);
    assert_eq!(q(json!({"order_index__gt": 1})).await, ["e2", "e3"]);
    assert_eq!(
        q(json!({"order_index__gte": 1, "order_index__lt": 3})).await,
        ["e1", "e2"]
    );
    assert_eq!(q(json!({"order_index__lte": 1})).await, ["e1"]);
    assert_eq!(q(json!({"order_index__ne": 2})).await, ["e1", "e3"]);
    assert_eq!(q(json!({"youtube_video_id__exists": true})).await, ["e1"]);
    assert_eq!(q(json!({"render_uri__exists": false})).await, ["e1", "e3"]);
    assert_eq!(q(json!({"is_published": null})).await, ["e3"]);
    assert_eq!(q(json!({"tags__contains": "boss"})).await, ["e1", "e3"]);
    assert_eq!(q(json!({"title__contains": "fight"})).await, ["e1"]);
    assert_eq!(q(json!({"q": "dragon"})).await, ["e1", "e3"]);
    // LIKE wildcards in q are literal.
    assert_eq!(q(json!({"q": "%"})).await, ["e3"]);
    assert_eq!(q(json!({"q": "o_f"})).await, Vec::<String>::new());
    assert_eq!(q(json!({"upload_status": "SUCCESS"})).await, ["e1"]);
    assert_eq!(q(json!({})).await, ["e1", "e2", "e3"]);
    // Timestamps compare as time, not text.
    assert_eq!(q(json!({"created_at__gte": "2000-01-01"})).await.len(), 3);
    assert_eq!(
        q(json!({"created_at__lt": "2000-01-01T00:00:00Z"}))
            .await
            .len(),
        0
    );
}

#[tokio::test]
async fn related_lists_return_every_item() {
    let app = app().await;
    let clips: Vec<Value> = (0..37)
        .map(|i| json!({"key": format!("2024-01-01/clip {i:03}.mkv"), "stream_id": "s1", "start_time": i * 1200}))
        .collect();
    let (s, _) = app
        .post(ALICE, "/records/video_clips", json!({"data": clips}))
        .await;
    assert_eq!(s, 201);
    app.post(
        ALICE,
        "/records/video_clips",
        json!({"key": "other/x.mkv", "stream_id": "s2"}),
    )
    .await;
    let (s, page) = app.get(ALICE, "/records/video_clips/stream_id/s1").await;
    assert_eq!(s, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 37);
    assert!(page["cursor"].is_null());
    // A clip's id is its key, so the front end's `id = key` works; keys with / and spaces too.
    let (s, clip) = app
        .get(ALICE, "/records/video_clips/2024-01-01%2Fclip%20005.mkv")
        .await;
    assert_eq!(s, 200, "{clip}");
    assert_eq!(clip["id"], clip["key"]);
    let (s, body) = app.get(ALICE, "/records/video_clips/nope/s1").await;
    assert_eq!(s, 400, "{body}");
}

#[tokio::test]
async fn my_profile_is_per_user_and_camel_case() {
    let app = app().await;
    let (s, p) = app.get(ALICE, "/records/profiles/my-profile").await;
    assert_eq!(s, 200);
    assert_eq!(p["id"], ALICE);
    let (s, p) = app
        .put(
            ALICE,
            "/records/profiles/my-profile",
            json!({"id": "my-profile", "timezone": "Europe/Berlin", "standardTags": ["rust", "gamedev"]}),
        )
        .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["standardTags"], json!(["rust", "gamedev"]));
    let (_, p) = app
        .put(
            ALICE,
            "/records/profiles/my-profile",
            json!({"promptTemplate": "{title}"}),
        )
        .await;
    assert_eq!(p["timezone"], "Europe/Berlin");
    let (_, bobs) = app.get(BOB, "/records/profiles/my-profile").await;
    assert_eq!(bobs["id"], BOB);
    assert!(bobs.get("timezone").is_none());
}

#[tokio::test]
async fn users_never_see_each_other() {
    let app = app().await;
    let (_, s) = app
        .post(
            ALICE,
            "/records/streams",
            json!({"title": "alice's", "series_id": "x"}),
        )
        .await;
    let id = s["id"].as_str().unwrap();
    for (status, _) in [
        app.get(BOB, &format!("/records/streams/{id}")).await,
        app.put(
            BOB,
            &format!("/records/streams/{id}"),
            json!({"title": "mine now"}),
        )
        .await,
        app.delete(BOB, &format!("/records/streams/{id}")).await,
    ] {
        assert_eq!(status, 404);
    }
    assert_eq!(count(&app, BOB, "streams").await, 0);
    let (_, related) = app.get(BOB, "/records/streams/series_id/x").await;
    assert_eq!(related["items"], json!([]));
    // Bob may even create a record with the same id: ids are per user.
    let (s, _) = app
        .post(BOB, "/records/streams", json!({"id": id, "title": "bob's"}))
        .await;
    assert_eq!(s, 201);
    let (_, still) = app.get(ALICE, &format!("/records/streams/{id}")).await;
    assert_eq!(still["title"], "alice's");
    // user_id in a body is never trusted.
    let (_, forged) = app
        .post(
            BOB,
            "/records/streams",
            json!({"title": "sneaky", "user_id": ALICE}),
        )
        .await;
    assert_eq!(forged["user_id"], BOB);
    assert_eq!(count(&app, ALICE, "streams").await, 1);
}

#[tokio::test]
async fn widget_tokens_are_generated_and_rotated_by_the_server() {
    let app = app().await;
    // A state the countdown cannot read is refused (the widget would be stuck).
    let (s, w) = app
        .post(
            ALICE,
            "/records/stream_widgets",
            json!({"title": "Starting soon", "type": "countdown",
                   "config": {"duration": 300}, "state": {"enabled": "yes"}}),
        )
        .await;
    assert_eq!(s, 400, "{w}");
    let (s, w) = app
        .post(
            ALICE,
            "/records/stream_widgets",
            json!({"title": "Starting soon", "type": "countdown", "access_token": "client-chosen",
                   "config": {"duration": 300},
                   "state": {"enabled": false, "duration_left": 300, "last_tick_timestamp": null}}),
        )
        .await;
    assert_eq!(s, 201, "{w}");
    let token = w["access_token"].as_str().unwrap().to_string();
    assert_ne!(token, "client-chosen");
    assert!(token.len() >= 43, "at least 256 bits: {token}");
    // Nested nulls are kept exactly as stored.
    assert_eq!(
        w["state"],
        json!({"enabled": false, "duration_left": 300, "last_tick_timestamp": null})
    );
    let id = w["id"].as_str().unwrap();
    let (_, w2) = app
        .put(
            ALICE,
            &format!("/records/stream_widgets/{id}"),
            json!({"access_token": "x"}),
        )
        .await;
    let rotated = w2["access_token"].as_str().unwrap();
    assert_ne!(rotated, token);
    assert_ne!(rotated, "x");
    let (_, w3) = app
        .put(
            ALICE,
            &format!("/records/stream_widgets/{id}"),
            json!({"title": "Soon"}),
        )
        .await;
    assert_eq!(w3["access_token"], w2["access_token"]);
}

/// Each bad request gets a 4xx with a JSON `message` naming the problem, and changes nothing.
#[tokio::test]
async fn bad_input_is_rejected_clearly_and_changes_nothing() {
    let app = app().await;
    let (_, s) = app
        .post(ALICE, "/records/streams", json!({"title": "keep me"}))
        .await;
    let id = s["id"].as_str().unwrap().to_string();
    let before = app.get(ALICE, &format!("/records/streams/{id}")).await.1;

    let raw = |method: Method, path: String, body: &'static str, ctype: &'static str| {
        let app = &app;
        async move {
            let resp = app
                .http
                .request(method, format!("{}{path}", app.base))
                .header("Authorization", app.token(ALICE))
                .header("Content-Type", ctype)
                .body(body)
                .send()
                .await
                .unwrap();
            gt_tests::read(resp).await
        }
    };
    let cases: Vec<((u16, Value), u16, &str)> = vec![
        (
            raw(
                Method::POST,
                "/records/streams".into(),
                "{\"title\": ",
                "application/json",
            )
            .await,
            400,
            "not valid JSON",
        ),
        (
            raw(
                Method::PUT,
                format!("/records/streams/{id}"),
                "[1,2",
                "application/json",
            )
            .await,
            400,
            "not valid JSON",
        ),
        (
            raw(
                Method::POST,
                "/records/streams".into(),
                "",
                "application/json",
            )
            .await,
            400,
            "empty",
        ),
        (
            raw(
                Method::POST,
                "/records/streams".into(),
                "title=x",
                "application/x-www-form-urlencoded",
            )
            .await,
            415,
            "application/json",
        ),
        (
            app.post(ALICE, "/records/nonsense", json!({})).await,
            404,
            "unknown resource 'nonsense'",
        ),
        (
            app.get(ALICE, "/records/nonsense").await,
            404,
            "unknown resource",
        ),
        (
            app.post(ALICE, "/records/streams", json!({"title": 5}))
                .await,
            400,
            "field 'title' must be a string",
        ),
        (
            app.post(ALICE, "/records/streams", json!({"titel": "typo"}))
                .await,
            400,
            "no field 'titel'",
        ),
        (
            app.post(ALICE, "/records/streams", json!("just a string"))
                .await,
            400,
            "must be a record object",
        ),
        (
            app.post(ALICE, "/records/series", json!({"description": "no title"}))
                .await,
            400,
            "'title' is required",
        ),
        (
            app.post(
                ALICE,
                "/records/tasks",
                json!({"status": "DONE", "task_type": "ingestion"}),
            )
            .await,
            400,
            "allowed: PENDING",
        ),
        (
            app.post(
                ALICE,
                "/records/streams",
                json!({"data": [{"title": "ok"}, {"title": 1}]}),
            )
            .await,
            400,
            "record 1:",
        ),
        (
            app.post(ALICE, "/records/streams", json!({"id": id, "title": "dup"}))
                .await,
            409,
            "already exists",
        ),
        (
            app.put(
                ALICE,
                &format!("/records/streams/{id}"),
                json!({"has_episodes": "yes"}),
            )
            .await,
            400,
            "must be a boolean",
        ),
        (
            app.put(
                ALICE,
                &format!("/records/streams/{id}"),
                json!({"id": "other"}),
            )
            .await,
            400,
            "cannot be changed",
        ),
        (
            app.put(ALICE, "/records/streams/missing", json!({"title": "x"}))
                .await,
            404,
            "not found",
        ),
        (
            app.get(ALICE, "/records/streams?filter=%7Bnope").await,
            400,
            "filter is not valid JSON",
        ),
        (
            app.get(ALICE, "/records/streams?filter=%7B%22bogus%22%3A1%7D")
                .await,
            400,
            "has no field 'bogus'",
        ),
        (
            app.get(ALICE, "/records/streams?filter=%7B%22title__like%22%3A1%7D")
                .await,
            400,
            "unknown operator",
        ),
        (
            app.get(
                ALICE,
                "/records/streams?filter=%7B%22duration%22%3A%22long%22%7D",
            )
            .await,
            400,
            "must be a number",
        ),
        (
            app.get(ALICE, "/records/streams?perPage=abc").await,
            400,
            "perPage must be an integer",
        ),
        (
            app.get(ALICE, "/records/streams?perPage=0").await,
            400,
            "perPage must be between",
        ),
        (
            app.get(ALICE, "/records/streams?cursor=%25%25%25").await,
            400,
            "invalid cursor",
        ),
        (
            app.get(ALICE, "/records/streams?perPage=5&perPage=6").await,
            400,
            "more than once",
        ),
        (
            app.call(Some(ALICE), Method::PATCH, "/records/streams", None)
                .await,
            405,
            "not allowed",
        ),
        (app.get(ALICE, "/nowhere").await, 404, "no route"),
    ];
    for ((status, body), want_status, want_msg) in cases {
        assert_eq!(status, want_status, "{want_msg}: {body}");
        let msg = body["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no message in {body}"));
        assert!(msg.contains(want_msg), "expected {want_msg:?} in {msg:?}");
    }
    assert_eq!(count(&app, ALICE, "streams").await, 1);
    assert_eq!(count(&app, ALICE, "series").await, 0);
    assert_eq!(count(&app, ALICE, "tasks").await, 0);
    assert_eq!(
        app.get(ALICE, &format!("/records/streams/{id}")).await.1,
        before
    );
}

#[tokio::test]
async fn oversize_bodies_are_refused_with_413() {
    let app = TestApp::start_with(AppOptions {
        cpu_worker: false,
        gpu_worker: false,
        max_body_bytes: 64 * 1024,
        ..Default::default()
    })
    .await
    .unwrap();
    let big = "x".repeat(100 * 1024);
    let (s, body) = app
        .post(
            ALICE,
            "/records/streams",
            json!({"title": "big", "description": big}),
        )
        .await;
    assert_eq!(s, 413, "{body}");
    assert!(body["message"].as_str().unwrap().contains("too large"));
    assert_eq!(count(&app, ALICE, "streams").await, 0);
    // Just under the limit is fine.
    let (s, _) = app
        .post(
            ALICE,
            "/records/streams",
            json!({"description": "x".repeat(60 * 1024)}),
        )
        .await;
    assert_eq!(s, 201);
}

/// The catalog that validates requests and the tables the migrations create agree.
#[tokio::test]
async fn catalog_matches_the_database_schema() {
    let app = app().await;
    for resource in gt_store::catalog::RESOURCES {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name = $1",
        )
        .bind(resource.name)
        .fetch_all(app.store.pool())
        .await
        .unwrap();
        assert!(!rows.is_empty(), "no table for {}", resource.name);
        let mut want: Vec<(String, String)> = resource
            .all_fields()
            .map(|f| (f.name.to_string(), f.ty.sql_type().to_string()))
            .collect();
        let mut got = rows;
        want.sort();
        got.sort();
        assert_eq!(got, want, "{}", resource.name);
    }
}
