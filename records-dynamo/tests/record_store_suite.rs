//! One record-store suite, run against both backends: each test body below runs once on
//! `PgStore` (a fresh Postgres database from the shared test stack) and once on
//! `DynamoRecordStore` (a fresh table on DynamoDB Local, installed and started here).
//! Expected values come from the inputs the test wrote, never from either backend.

use chrono::{DateTime, Utc};
use gt_records_dynamo::DynamoRecordStore;
use gt_records_dynamo::local::DynamoLocal;
use gt_store::catalog::{EPISODES, STREAM_WIDGETS, TASKS, VIDEO_CLIPS};
use gt_store::{ListQuery, PgStore, RecordStore, StoreError};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

static DYNAMO_LOCAL: OnceCell<DynamoLocal> = OnceCell::const_new();

async fn postgres() -> Box<dyn RecordStore> {
    let url = gt_tests::fresh_database().await.expect("fresh database");
    let pool = gt_store::pg::connect(&url, 4).await.expect("connect");
    Box::new(PgStore::new(pool))
}

async fn dynamodb() -> Box<dyn RecordStore> {
    let local = DYNAMO_LOCAL
        .get_or_init(|| async { DynamoLocal::start().await.expect("DynamoDB Local") })
        .await;
    // A client per test: each test has its own runtime, and a client's connections belong to
    // the runtime that opened them.
    let table = format!("records_{}", uuid::Uuid::new_v4().simple());
    let store = DynamoRecordStore::new(local.client().await, table);
    store.ensure_table().await.expect("create table");
    Box::new(store)
}

/// Runs `$body(store)` as two tests, `$body::postgres` and `$body::dynamodb`.
macro_rules! on_both_backends {
    ($($body:ident),* $(,)?) => {$(
        mod $body {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$body(&*super::postgres().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dynamodb() {
                super::$body(&*super::dynamodb().await).await;
            }
        }
    )*};
}

on_both_backends!(
    crud_round_trip,
    nested_json_round_trips_exactly,
    server_managed_fields_and_tokens,
    paging_250_records_in_stable_order,
    filters,
    related_lists,
    users_are_isolated,
    duplicate_ids_conflict,
    bad_input_is_refused_and_nothing_is_written,
    bulk_create_is_all_or_nothing,
    upsert_creates_then_merges,
);

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|v| v["id"].as_str().expect("id").to_string())
        .collect()
}

async fn all(
    store: &dyn RecordStore,
    user: &str,
    r: &gt_store::Resource,
    filter: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list(
                user,
                r,
                &ListQuery {
                    filter: Some(filter.to_string()),
                    cursor: cursor.clone(),
                    per_page: Some(7),
                },
            )
            .await
            .unwrap_or_else(|e| panic!("list {filter}: {e}"));
        out.extend(ids(&page.items));
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
}

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("timestamp string"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

async fn crud_round_trip(store: &dyn RecordStore) {
    let user = "user-crud";
    let before = Utc::now() - chrono::Duration::seconds(1);
    let created = store
        .create(
            user,
            &EPISODES,
            &[json!({
                "title": "Boss fight",
                "order_index": 3,
                "start_time": 2.5,
                "end_time": 30,
                "is_published": false,
                "tags": ["rust", "live"],
                "publish_at": "2024-03-01T10:00:00.250+02:00",
                "description": null
            })],
        )
        .await
        .expect("create")
        .remove(0);
    let id = created["id"].as_str().expect("generated id").to_string();
    assert_eq!(
        uuid::Uuid::parse_str(&id)
            .expect("a UUID")
            .get_version_num(),
        7
    );
    assert_eq!(created["user_id"], user);
    assert_eq!(created["title"], "Boss fight");
    assert_eq!(created["order_index"], 3);
    assert_eq!(created["start_time"], 2.5);
    // A whole number in a double precision column reads as an integer (Postgres's output).
    assert_eq!(created["end_time"], 30);
    assert_eq!(created["is_published"], false);
    assert_eq!(created["tags"], json!(["rust", "live"]));
    // The instant, in UTC with microseconds and no trailing zeros, as Postgres prints it.
    assert_eq!(created["publish_at"], "2024-03-01T08:00:00.25+00:00");
    assert!(
        created.get("description").is_none(),
        "nulls are absent: {created}"
    );
    assert!(time(&created["created_at"]) >= before);
    assert_eq!(created["created_at"], created["updated_at"]);

    let got = store.get(user, &EPISODES, &id).await.expect("get");
    assert_eq!(got, created);

    let updated = store
        .update(
            user,
            &EPISODES,
            &id,
            &json!({"title": "Final boss", "tags": null, "id": id}),
        )
        .await
        .expect("update");
    assert_eq!(updated["title"], "Final boss");
    assert!(updated.get("tags").is_none(), "null clears: {updated}");
    assert_eq!(updated["order_index"], 3, "untouched fields stay");
    assert_eq!(updated["created_at"], created["created_at"]);
    assert!(time(&updated["updated_at"]) >= time(&created["updated_at"]));
    assert_eq!(store.get(user, &EPISODES, &id).await.expect("get"), updated);

    store.delete(user, &EPISODES, &id).await.expect("delete");
    assert!(matches!(
        store.get(user, &EPISODES, &id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete(user, &EPISODES, &id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .update(user, &EPISODES, &id, &json!({"title": "x"}))
            .await,
        Err(StoreError::NotFound(_))
    ));
}

async fn nested_json_round_trips_exactly(store: &dyn RecordStore) {
    let user = "user-json";
    let cut_list = json!({
        "version": "1.0.0",
        "gone": null,
        "inputMedia": [{"s3Location": "a/b.mkv", "sections": [{"startFrame": 0, "endFrame": 90}]}],
        "nested": {"list": [null, 1, -2, 3.25, 0.1, "", true, {"deep": null}], "empty": {}, "none": []},
        "big": 9007199254740993u64
    });
    let created = store
        .create(
            user,
            &EPISODES,
            &[json!({"id": "e1", "cut_list": cut_list, "chapters": [null, {"t": 1}]})],
        )
        .await
        .expect("create")
        .remove(0);
    assert_eq!(created["cut_list"], cut_list);
    let got = store.get(user, &EPISODES, "e1").await.expect("get");
    assert_eq!(got["cut_list"], cut_list);
    assert_eq!(got["chapters"], json!([null, {"t": 1}]));
}

async fn server_managed_fields_and_tokens(store: &dyn RecordStore) {
    let user = "user-widgets";
    let w = store
        .create(
            user,
            &STREAM_WIDGETS,
            &[json!({"title": "Countdown", "type": "countdown", "access_token": "chosen", "user_id": "someone-else"})],
        )
        .await
        .expect("create")
        .remove(0);
    let token = w["access_token"].as_str().expect("token").to_string();
    assert_ne!(token, "chosen");
    assert_eq!(token.len(), 43, "256 bits, base64url");
    assert_eq!(w["user_id"], user);
    let id = w["id"].as_str().unwrap();
    let same = store
        .update(user, &STREAM_WIDGETS, id, &json!({"title": "Timer"}))
        .await
        .expect("update");
    assert_eq!(same["access_token"], token.as_str());
    let rotated = store
        .update(user, &STREAM_WIDGETS, id, &json!({"access_token": null}))
        .await
        .expect("rotate");
    assert_ne!(rotated["access_token"], token.as_str());
    assert_eq!(rotated["title"], "Timer");
    // A review decision is the server's: ignored in a client's body.
    let e = store
        .create(
            user,
            &EPISODES,
            &[json!({"title": "t", "review_status": "approved"})],
        )
        .await
        .expect("create")
        .remove(0);
    assert!(e.get("review_status").is_none());
}

async fn paging_250_records_in_stable_order(store: &dyn RecordStore) {
    let user = "user-paging";
    let mut created = Vec::new();
    for chunk in 0..5 {
        let bodies: Vec<Value> = (0..50)
            .map(|i| json!({"status": "PENDING", "task_type": "ingestion", "message": format!("task {}", chunk * 50 + i)}))
            .collect();
        created.extend(ids(&store
            .create(user, &TASKS, &bodies)
            .await
            .expect("create")));
    }
    let mut expected = created.clone();
    expected.sort();
    expected.dedup();
    assert_eq!(expected.len(), 250);

    for per_page in [1, 10, 100, 249, 250, 1000] {
        let mut seen = Vec::new();
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let page = store
                .list(
                    user,
                    &TASKS,
                    &ListQuery {
                        filter: None,
                        cursor: cursor.clone(),
                        per_page: Some(per_page),
                    },
                )
                .await
                .expect("list");
            pages += 1;
            assert!(page.items.len() <= per_page as usize);
            seen.extend(ids(&page.items));
            match page.cursor {
                Some(c) => {
                    assert_eq!(
                        page.items.len(),
                        per_page as usize,
                        "only the last page is short"
                    );
                    cursor = Some(c);
                }
                None => break,
            }
        }
        assert_eq!(
            seen, expected,
            "per_page {per_page}: every record once, in id order"
        );
        assert_eq!(
            pages,
            250usize.div_ceil(per_page as usize),
            "per_page {per_page}"
        );
    }
    // Default page size, `null` cursor, and the same page twice.
    let first = store
        .list(
            user,
            &TASKS,
            &ListQuery {
                cursor: Some("null".into()),
                ..Default::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(ids(&first.items), expected[..10]);
    let again = store
        .list(user, &TASKS, &ListQuery::default())
        .await
        .expect("list");
    assert_eq!(again, first);
    for bad in [0, 1001, -1] {
        let q = ListQuery {
            per_page: Some(bad),
            ..Default::default()
        };
        assert!(
            matches!(
                store.list(user, &TASKS, &q).await,
                Err(StoreError::Invalid(_))
            ),
            "{bad}"
        );
    }
    let q = ListQuery {
        cursor: Some("%%%".into()),
        ..Default::default()
    };
    assert!(matches!(
        store.list(user, &TASKS, &q).await,
        Err(StoreError::Invalid(_))
    ));
}

async fn filters(store: &dyn RecordStore) {
    let user = "user-filters";
    let statuses = ["PENDING", "RUNNING", "COMPLETED"];
    let bodies: Vec<Value> = (0..30)
        .map(|i| {
            let mut b = json!({
                "id": format!("t{i:02}"),
                "status": statuses[i % 3],
                "task_type": if i < 15 { "ingestion" } else { "rendering" },
                "progress": i as f64 / 2.0,
                "message": if i % 7 == 0 { format!("Fighting the BOSS {i}") } else { format!("step {i}") },
            });
            if i % 5 == 0 {
                b["record_id"] = json!(format!("stream-{}", i / 10));
            } else if i >= 10 {
                // 16 tasks of one record: pages of 7 through the reference's index.
                b["record_id"] = json!("big");
            }
            b
        })
        .collect();
    store.create(user, &TASKS, &bodies).await.expect("create");
    let want = |pred: &dyn Fn(usize) -> bool| -> Vec<String> {
        (0..30)
            .filter(|i| pred(*i))
            .map(|i| format!("t{i:02}"))
            .collect()
    };
    let cases: Vec<(&str, Vec<String>)> = vec![
        (r#"{"status":"RUNNING"}"#, want(&|i| i % 3 == 1)),
        (
            r#"{"status":["PENDING","COMPLETED"],"task_type":"rendering"}"#,
            want(&|i| i % 3 != 1 && i >= 15),
        ),
        (
            r#"{"progress__gte":3,"progress__lte":5}"#,
            want(&|i| (6..=10).contains(&i)),
        ),
        (r#"{"progress__gt":13.5}"#, want(&|i| i > 27)),
        (
            r#"{"status__ne":"PENDING","progress__lt":4}"#,
            want(&|i| i % 3 != 0 && i < 8),
        ),
        (r#"{"q":"boss"}"#, want(&|i| i % 7 == 0)),
        (r#"{"message__contains":"BOSS"}"#, want(&|i| i % 7 == 0)),
        (r#"{"message__contains":"boss"}"#, vec![]),
        (
            r#"{"record_id__exists":true}"#,
            want(&|i| i % 5 == 0 || i >= 10),
        ),
        (
            r#"{"record_id":null,"status":"RUNNING"}"#,
            want(&|i| i % 5 != 0 && i < 10 && i % 3 == 1),
        ),
        (r#"{"record_id":"big"}"#, want(&|i| i % 5 != 0 && i >= 10)),
        (
            r#"{"record_id":"big","status":"RUNNING","progress__gte":8}"#,
            want(&|i| i % 5 != 0 && i >= 16 && i % 3 == 1),
        ),
        (r#"{"record_id":"stream-1"}"#, want(&|i| i == 10 || i == 15)),
        (
            r#"{"record_id__ne":"stream-1"}"#,
            want(&|i| i != 10 && i != 15),
        ),
        (r#"{"created_at__gte":"2000-01-01"}"#, want(&|_| true)),
        (r#"{"created_at__lt":"2000-01-01"}"#, vec![]),
        (r#"{"id__gt":"t25"}"#, want(&|i| i > 25)),
        ("", want(&|_| true)),
    ];
    for (filter, expected) in cases {
        assert_eq!(
            all(store, user, &TASKS, filter).await,
            expected,
            "filter {filter}"
        );
    }
    for bad in [r#"{"nope":1}"#, r#"{"progress__gte":"fast"}"#, "[1]", "{"] {
        let q = ListQuery {
            filter: Some(bad.into()),
            ..Default::default()
        };
        assert!(
            matches!(
                store.list(user, &TASKS, &q).await,
                Err(StoreError::Invalid(_))
            ),
            "{bad}"
        );
    }
}

async fn related_lists(store: &dyn RecordStore) {
    let user = "user-related";
    let clips: Vec<Value> = (0..12)
        .map(|i| json!({"key": format!("s{}/clip{i:02}.mkv", i % 3), "stream_id": format!("stream-{}", i % 3)}))
        .collect();
    store
        .create(user, &VIDEO_CLIPS, &clips)
        .await
        .expect("create");
    // Another user's clips of a stream with the same id are not theirs.
    store
        .create(
            "user-related-other",
            &VIDEO_CLIPS,
            &[json!({"key": "s1/x.mkv", "stream_id": "stream-1"})],
        )
        .await
        .expect("create");
    let got = store
        .related(user, &VIDEO_CLIPS, "stream_id", "stream-1")
        .await
        .expect("related");
    let want: Vec<String> = (0..12)
        .filter(|i| i % 3 == 1)
        .map(|i| format!("s1/clip{i:02}.mkv"))
        .collect();
    assert_eq!(ids(&got), want);
    assert!(
        got.iter()
            .all(|c| c["stream_id"] == "stream-1" && c["key"] == c["id"])
    );
    assert!(
        store
            .related(user, &VIDEO_CLIPS, "stream_id", "stream-9")
            .await
            .expect("related")
            .is_empty()
    );

    // Moving a clip to another stream moves it between related lists.
    store
        .update(
            user,
            &VIDEO_CLIPS,
            "s1/clip01.mkv",
            &json!({"stream_id": "stream-2"}),
        )
        .await
        .expect("update");
    let got = store
        .related(user, &VIDEO_CLIPS, "stream_id", "stream-1")
        .await
        .expect("related");
    assert_eq!(ids(&got), want[1..]);
    let got = store
        .related(user, &VIDEO_CLIPS, "stream_id", "stream-2")
        .await
        .expect("related");
    assert!(ids(&got).contains(&"s1/clip01.mkv".to_string()));
    store
        .update(
            user,
            &VIDEO_CLIPS,
            "s1/clip04.mkv",
            &json!({"stream_id": null}),
        )
        .await
        .expect("update");
    let got = store
        .related(user, &VIDEO_CLIPS, "stream_id", "stream-1")
        .await
        .expect("related");
    assert_eq!(ids(&got), want[2..]);

    // A reference field without its own index (tasks.workflow_id) answers the same way.
    store
        .create(user, &TASKS, &[
            json!({"id": "a", "status": "RUNNING", "task_type": "ingestion", "workflow_id": "wf-1"}),
            json!({"id": "b", "status": "RUNNING", "task_type": "ingestion", "workflow_id": "wf-2"}),
            json!({"id": "c", "status": "PENDING", "task_type": "upload", "workflow_id": "wf-1"}),
        ])
        .await
        .expect("create");
    assert_eq!(
        ids(&store
            .related(user, &TASKS, "workflow_id", "wf-1")
            .await
            .expect("related")),
        ["a", "c"]
    );
    assert!(matches!(
        store.related(user, &TASKS, "nope", "x").await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.related(user, &TASKS, "progress", "1").await,
        Err(StoreError::Invalid(_))
    ));
}

async fn users_are_isolated(store: &dyn RecordStore) {
    // User ids that would collide if keys were naively concatenated.
    let (alice, mallory) = ("alice#tasks", "alice");
    store
        .create(alice, &TASKS, &[json!({"id": "shared", "status": "RUNNING", "task_type": "ingestion", "record_id": "r"})])
        .await
        .expect("create");
    assert!(matches!(
        store.get(mallory, &TASKS, "shared").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .update(mallory, &TASKS, "shared", &json!({"message": "mine"}))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete(mallory, &TASKS, "shared").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(all(store, mallory, &TASKS, "").await.is_empty());
    // Naive `USER#{user}#{resource}#{value}` index keys would make this Alice's list.
    assert!(
        store
            .related(mallory, &TASKS, "record_id", "tasks#r")
            .await
            .expect("related")
            .is_empty()
    );
    assert!(
        store
            .related(mallory, &TASKS, "record_id", "r")
            .await
            .expect("related")
            .is_empty()
    );
    // The other user may use the same id for their own record.
    store
        .create(
            mallory,
            &TASKS,
            &[json!({"id": "shared", "status": "PENDING", "task_type": "upload"})],
        )
        .await
        .expect("same id, other user");
    let mine = store.get(alice, &TASKS, "shared").await.expect("get");
    assert_eq!(
        (mine["status"].as_str(), mine["user_id"].as_str()),
        (Some("RUNNING"), Some(alice))
    );
    assert!(mine.get("message").is_none());
    assert_eq!(all(store, alice, &TASKS, "").await, ["shared"]);
}

async fn duplicate_ids_conflict(store: &dyn RecordStore) {
    let user = "user-dup";
    let body =
        json!({"id": "dup", "status": "RUNNING", "task_type": "ingestion", "message": "first"});
    store
        .create(user, &TASKS, std::slice::from_ref(&body))
        .await
        .expect("create");
    let mut second = body.clone();
    second["message"] = json!("second");
    assert!(matches!(
        store.create(user, &TASKS, &[second]).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.get(user, &TASKS, "dup").await.expect("get")["message"],
        "first"
    );
    // Video clips are keyed by their blob key.
    store
        .create(user, &VIDEO_CLIPS, &[json!({"key": "a/b.mkv"})])
        .await
        .expect("create");
    assert!(matches!(
        store
            .create(user, &VIDEO_CLIPS, &[json!({"key": "a/b.mkv"})])
            .await,
        Err(StoreError::Conflict(_))
    ));
}

async fn bad_input_is_refused_and_nothing_is_written(store: &dyn RecordStore) {
    let user = "user-bad";
    let ok =
        |i: usize| json!({"id": format!("ok{i}"), "status": "RUNNING", "task_type": "ingestion"});
    for bad in [
        json!({"status": "DONE", "task_type": "ingestion"}),
        json!({"status": "RUNNING"}),
        json!({"status": "RUNNING", "task_type": "ingestion", "progress": "fast"}),
        json!({"status": "RUNNING", "task_type": "ingestion", "nope": 1}),
        json!({"id": 7, "status": "RUNNING", "task_type": "ingestion"}),
        json!({"id": "", "status": "RUNNING", "task_type": "ingestion"}),
        json!(["not an object"]),
    ] {
        let e = store
            .create(user, &TASKS, &[ok(0), bad.clone(), ok(2)])
            .await;
        match e {
            Err(StoreError::Invalid(m)) => assert!(m.starts_with("record 1: "), "{bad}: {m}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
    assert!(matches!(
        store.create(user, &TASKS, &[]).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(
        all(store, user, &TASKS, "").await.is_empty(),
        "nothing written"
    );

    store.create(user, &TASKS, &[ok(0)]).await.expect("create");
    let before = store.get(user, &TASKS, "ok0").await.expect("get");
    for bad in [
        json!({"status": "DONE"}),
        json!({"status": null}),
        json!({"id": "other"}),
        json!({"progress": [1]}),
        json!({"message": "a\u{0}b"}),
    ] {
        assert!(
            matches!(
                store.update(user, &TASKS, "ok0", &bad).await,
                Err(StoreError::Invalid(_))
            ),
            "{bad}"
        );
    }
    assert_eq!(
        store.get(user, &TASKS, "ok0").await.expect("get"),
        before,
        "unchanged"
    );
}

async fn bulk_create_is_all_or_nothing(store: &dyn RecordStore) {
    let user = "user-bulk";
    let task = |id: &str| json!({"id": id, "status": "PENDING", "task_type": "upload"});
    store
        .create(user, &TASKS, &[task("exists")])
        .await
        .expect("create");
    // The third record collides with a stored one: none of the batch is written.
    match store
        .create(
            user,
            &TASKS,
            &[task("n1"), task("n2"), task("exists"), task("n3")],
        )
        .await
    {
        Err(StoreError::Conflict(m)) => assert!(m.starts_with("record 2: "), "{m}"),
        other => panic!("{other:?}"),
    }
    // Two records of one batch with the same id: the later one is the conflict.
    match store
        .create(user, &TASKS, &[task("m1"), task("m2"), task("m1")])
        .await
    {
        Err(StoreError::Conflict(m)) => assert!(m.starts_with("record 2: "), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(all(store, user, &TASKS, "").await, ["exists"]);
    let made = store
        .create(user, &TASKS, &[task("n1"), task("n2"), task("n3")])
        .await
        .expect("bulk");
    assert_eq!(ids(&made), ["n1", "n2", "n3"]);
    // One bulk create shares one creation time, as one Postgres transaction does.
    assert!(
        made.iter()
            .all(|r| r["created_at"] == made[0]["created_at"])
    );
    assert_eq!(
        all(store, user, &TASKS, "").await,
        ["exists", "n1", "n2", "n3"]
    );
}

async fn upsert_creates_then_merges(store: &dyn RecordStore) {
    let user = "user-upsert";
    let first = store
        .upsert(
            user,
            &EPISODES,
            "ep-1",
            &json!({"title": "One", "stream_id": "s1"}),
        )
        .await
        .expect("upsert creates");
    assert_eq!(
        (first["id"].as_str(), first["user_id"].as_str()),
        (Some("ep-1"), Some(user))
    );
    assert_eq!(first["title"], "One");
    let merged = store
        .upsert(user, &EPISODES, "ep-1", &json!({"order_index": 2}))
        .await
        .expect("upsert merges");
    assert_eq!(merged["title"], "One");
    assert_eq!(merged["order_index"], 2);
    assert_eq!(merged["created_at"], first["created_at"]);
    assert_eq!(
        ids(&store
            .related(user, &EPISODES, "stream_id", "s1")
            .await
            .expect("related")),
        ["ep-1"]
    );
    assert!(matches!(
        store.upsert(user, &EPISODES, "", &json!({})).await,
        Err(StoreError::Invalid(_))
    ));
}
