//! What only the DynamoDB backend has: its key layout, its transaction limit, and numbers
//! DynamoDB cannot hold (checked on DynamoDB Local, installed and started here).

use aws_sdk_dynamodb::types::AttributeValue;
use gt_records_dynamo::local::DynamoLocal;
use gt_records_dynamo::{DynamoRecordStore, MAX_BULK, PK, SK};
use gt_store::catalog::{STREAMS, TASKS, VIDEO_CLIPS};
use gt_store::{ListQuery, RecordStore, StoreError};
use serde_json::json;

async fn store(local: &DynamoLocal) -> DynamoRecordStore {
    let table = format!("design_{}", uuid::Uuid::new_v4().simple());
    let store = DynamoRecordStore::new(local.client().await, table);
    store.ensure_table().await.expect("create table");
    // Creating it again is a no-op.
    store.ensure_table().await.expect("table exists");
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_limits_and_numbers() {
    let local = DynamoLocal::start().await.expect("DynamoDB Local");
    let store = store(&local).await;

    // Items are keyed by the user's escaped id and the resource; references get index keys.
    store
        .create(
            "a#b",
            &VIDEO_CLIPS,
            &[json!({"key": "s/1.mkv", "stream_id": "st"})],
        )
        .await
        .expect("create");
    let item = store
        .client()
        .get_item()
        .table_name(store.table())
        .key(PK, AttributeValue::S("USER#a_23b#video_clips".into()))
        .key(SK, AttributeValue::S("s/1.mkv".into()))
        .send()
        .await
        .expect("get item")
        .item
        .expect("the item is where the design says");
    assert_eq!(
        item.get("REF_stream_id"),
        Some(&AttributeValue::S("USER#a_23b#video_clips#st".into()))
    );
    assert_eq!(item.get("user_id"), Some(&AttributeValue::S("a#b".into())));

    // One transaction holds at most 100 items: 101 is refused before anything is written.
    let task =
        |i: usize| json!({"id": format!("t{i:03}"), "status": "PENDING", "task_type": "upload"});
    let bodies: Vec<_> = (0..=MAX_BULK).map(task).collect();
    match store.create("u", &TASKS, &bodies).await {
        Err(StoreError::Invalid(m)) => assert!(m.contains("at most 100"), "{m}"),
        other => panic!("{other:?}"),
    }
    let made = store
        .create("u", &TASKS, &bodies[..MAX_BULK])
        .await
        .expect("100 at once");
    assert_eq!(made.len(), MAX_BULK);
    let page = store
        .list(
            "u",
            &TASKS,
            &ListQuery {
                per_page: Some(1000),
                ..Default::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(page.items.len(), MAX_BULK);

    // Beyond DynamoDB's number range (±1E+126): refused as invalid input, nothing written.
    match store
        .create("u", &STREAMS, &[json!({"id": "huge", "duration": 1e200})])
        .await
    {
        Err(StoreError::Invalid(m)) => assert!(m.contains("DynamoDB refused"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store.get("u", &STREAMS, "huge").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.ping().await.is_ok());
}

/// DynamoDB Local answers on loopback only: from this machine's other address (if it has
/// one) the port is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_local_listens_on_loopback_only() {
    let local = DynamoLocal::start().await.unwrap();
    let port: u16 = local
        .endpoint()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok(),
        "reachable on loopback"
    );
    // The address this machine would use towards the outside (no packet is sent).
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    let outside = probe
        .connect("10.255.255.255:9")
        .ok()
        .and_then(|()| probe.local_addr().ok())
        .map(|a| a.ip())
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified());
    if let Some(ip) = outside {
        assert!(
            tokio::net::TcpStream::connect((ip, port)).await.is_err(),
            "DynamoDB Local must not answer on {ip}"
        );
    } else {
        eprintln!("this machine has no other address; only loopback was checked");
    }
}
