//! The archive API of the blob stores (`storage`, `archive`, `request_restore`,
//! `make_standard`), one suite run against every backend with the same test bodies: the local
//! directory (archive directory) and S3 (`S3BlobStore` against s3s-fs wrapped by the test
//! server's `ArchiveS3`, which keeps storage classes and restores as AWS documents them).
//! S3-only tests below check the server's wire answers themselves (status codes, error codes,
//! the `x-amz-restore` header) with the raw SDK client, so the store is tested against S3's
//! documented behaviour, not against itself.

use std::sync::Arc;
use std::time::Duration;

use gt_blob_s3::testing::S3TestServer;
use gt_blob_s3::{S3BlobStore, parse_restore_header};
use gt_store::blob::{BlobStore, LOCAL_ARCHIVE_CLASS, RestoreState, STANDARD_CLASS, StorageState};
use gt_store::{LocalDirStore, StoreError};
use tempfile::TempDir;

const BUCKET: &str = "gt-archive";
const MIB: usize = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Local,
    S3,
}

struct Fixture {
    backend: Backend,
    store: Arc<dyn BlobStore>,
    s3: Option<(S3TestServer, S3BlobStore)>,
    dir: TempDir,
}

impl Fixture {
    async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        match backend {
            Backend::Local => Self {
                backend,
                store: Arc::new(LocalDirStore::new(dir.path().join("recordings"))),
                s3: None,
                dir,
            },
            Backend::S3 => {
                let server = S3TestServer::start(dir.path().join("s3")).await.unwrap();
                let mut config = server.config(BUCKET, dir.path().join("cache"));
                config.key_prefix = "recordings/".into();
                let store = S3BlobStore::connect(config).await.unwrap();
                store.create_bucket_if_missing().await.unwrap();
                Self {
                    backend,
                    store: Arc::new(store.clone()),
                    s3: Some((server, store)),
                    dir,
                }
            }
        }
    }

    /// The class the backend reports for archived objects.
    fn archive_class(&self) -> &'static str {
        match self.backend {
            Backend::Local => LOCAL_ARCHIVE_CLASS,
            // The S3 store's default archive class.
            Backend::S3 => "GLACIER",
        }
    }
}

/// Deterministic bytes (xorshift64*), distinct per seed.
fn generated(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

fn is_archived_refusal<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(&r, Err(StoreError::Conflict(m)) if m.contains("archived"))
}

// ---- the suite -------------------------------------------------------------------------

async fn archived_objects_are_listed_but_not_readable_until_restored(f: Fixture) {
    let (key, other) = ("u/2024-01-01/a.mkv", "u/2024-01-01/b.mkv");
    let (bytes, other_bytes) = (generated(70_001, 1), generated(1234, 2));
    f.store.put_bytes(key, bytes.clone()).await.unwrap();
    f.store.put_bytes(other, other_bytes.clone()).await.unwrap();
    let before = f.store.storage(key).await.unwrap();
    assert_eq!(before.state, StorageState::Standard);
    assert_eq!(before.storage_class, STANDARD_CLASS);
    assert_eq!(before.size, 70_001);

    f.store.archive(key).await.unwrap();
    let archived = f.store.storage(key).await.unwrap();
    assert_eq!(
        archived.state,
        StorageState::Archived(RestoreState::NotRequested)
    );
    assert_eq!(archived.storage_class, f.archive_class());
    assert_eq!(archived.size, 70_001);
    // Still an object: listed with its size, answers head and exists.
    let listed = f.store.list_all("u/2024-01-01/").await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|o| (o.key.as_str(), o.size))
            .collect::<Vec<_>>(),
        [(key, 70_001), (other, 1234)]
    );
    assert_eq!(f.store.head(key).await.unwrap().size, 70_001);
    assert!(f.store.exists(key).await.unwrap());
    // Its bytes are out of reach, with an error that says why.
    assert!(is_archived_refusal(f.store.get_bytes(key).await));
    assert!(is_archived_refusal(f.store.read_range(key, 10, 100).await));
    assert!(is_archived_refusal(f.store.local_path(key).await));
    // FFmpeg's source too (S3: refused before a URL is handed out).
    assert!(is_archived_refusal(
        f.store.media_source(key, Duration::from_secs(60)).await
    ));
    // Making it standard needs a restore first.
    assert!(matches!(
        f.store.make_standard(key).await,
        Err(StoreError::Conflict(_))
    ));
    // The other object is untouched.
    assert_eq!(f.store.get_bytes(other).await.unwrap(), other_bytes);
    assert_eq!(
        f.store.storage(other).await.unwrap().state,
        StorageState::Standard
    );
    // Archiving again changes nothing.
    f.store.archive(key).await.unwrap();
    assert_eq!(f.store.storage(key).await.unwrap(), archived);

    // Restore (the S3 test server completes at once unless told otherwise).
    f.store.request_restore(key, 2).await.unwrap();
    let restored = f.store.storage(key).await.unwrap();
    let StorageState::Archived(RestoreState::Restored { until: Some(until) }) = restored.state
    else {
        panic!("not restored: {restored:?}");
    };
    // The copy lives the 2 days asked for (S3 rounds the expiry to a day boundary; the
    // test server does not).
    let days = (until - chrono::Utc::now()).num_hours();
    assert!((47..=48).contains(&days), "restored for {days} h");
    assert_eq!(restored.storage_class, f.archive_class());
    assert_eq!(f.store.get_bytes(key).await.unwrap(), bytes);
    assert_eq!(
        f.store.read_range(key, 10, 100).await.unwrap(),
        &bytes[10..110]
    );
    // Asking again while restored changes nothing.
    assert!(matches!(
        f.store.request_restore(key, 2).await.unwrap(),
        RestoreState::Restored { .. }
    ));

    f.store.make_standard(key).await.unwrap();
    let standard = f.store.storage(key).await.unwrap();
    assert_eq!(standard.state, StorageState::Standard);
    assert_eq!(standard.storage_class, STANDARD_CLASS);
    assert_eq!(f.store.get_bytes(key).await.unwrap(), bytes);
    let path = f.store.local_path(key).await.unwrap();
    assert_eq!(std::fs::read(path).unwrap(), bytes);
    // Standard again for good: a second make_standard and a restore request are no-ops.
    f.store.make_standard(key).await.unwrap();
    f.store.request_restore(key, 1).await.unwrap();
    assert_eq!(
        f.store.storage(key).await.unwrap().state,
        StorageState::Standard
    );
    if let Some((server, _)) = &f.s3 {
        // The server's own bookkeeping agrees.
        assert_eq!(
            server
                .storage_class_of(BUCKET, &format!("recordings/{key}"))
                .as_deref(),
            Some("STANDARD")
        );
    }
}

async fn a_new_write_replaces_the_archived_object(f: Fixture) {
    let key = "u/s/replace.mkv";
    f.store.put_bytes(key, b"old".to_vec()).await.unwrap();
    f.store.archive(key).await.unwrap();
    f.store.put_bytes(key, b"new bytes".to_vec()).await.unwrap();
    let now = f.store.storage(key).await.unwrap();
    assert_eq!(now.state, StorageState::Standard);
    assert_eq!(now.size, 9);
    assert_eq!(f.store.get_bytes(key).await.unwrap(), b"new bytes");
    assert_eq!(f.store.list_all("u/s/").await.unwrap().len(), 1);
}

async fn archived_objects_are_deleted_with_their_prefix(f: Fixture) {
    for (i, key) in ["d/1.mkv", "d/2.mkv", "d/3.mkv"].iter().enumerate() {
        f.store
            .put_bytes(key, generated(100 + i, i as u64))
            .await
            .unwrap();
    }
    f.store.archive("d/1.mkv").await.unwrap();
    f.store.archive("d/3.mkv").await.unwrap();
    f.store.request_restore("d/3.mkv", 1).await.unwrap();
    assert_eq!(f.store.delete_prefix("d/").await.unwrap(), 3);
    assert!(f.store.list_all("d/").await.unwrap().is_empty());
    assert!(!f.store.exists("d/1.mkv").await.unwrap());
    // A key archived, deleted and written again is a fresh standard object.
    f.store
        .put_bytes("d/1.mkv", b"again".to_vec())
        .await
        .unwrap();
    assert_eq!(
        f.store.storage("d/1.mkv").await.unwrap().state,
        StorageState::Standard
    );
}

async fn bad_requests_are_refused_and_change_nothing(f: Fixture) {
    let missing = "u/none.mkv";
    assert!(matches!(
        f.store.storage(missing).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        f.store.archive(missing).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        f.store.request_restore(missing, 1).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        f.store.make_standard(missing).await,
        Err(StoreError::NotFound(_))
    ));
    for bad in ["../x", "/abs", "a//b"] {
        assert!(matches!(
            f.store.archive(bad).await,
            Err(StoreError::Invalid(_))
        ));
    }
    f.store.put_bytes("u/z.mkv", b"z".to_vec()).await.unwrap();
    f.store.archive("u/z.mkv").await.unwrap();
    assert!(matches!(
        f.store.request_restore("u/z.mkv", 0).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(
        f.store.storage("u/z.mkv").await.unwrap().state,
        StorageState::Archived(RestoreState::NotRequested)
    );
    let _ = &f.dir;
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Fixture::new(super::Backend::Local).await).await;
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Fixture::new(super::Backend::S3).await).await;
                }
            )*
        }
    };
}

suite!(
    archived_objects_are_listed_but_not_readable_until_restored,
    a_new_write_replaces_the_archived_object,
    archived_objects_are_deleted_with_their_prefix,
    bad_requests_are_refused_and_change_nothing,
);

// ---- S3 only: the server's wire answers, and a restore that takes time ------------------

/// A restore in progress: RestoreObject answers 202, HEAD says `ongoing-request="true"`, a
/// second request is 409 RestoreAlreadyInProgress, GET is 403 InvalidObjectState; after the
/// delay HEAD says `ongoing-request="false", expiry-date="…"` and GET works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_restore_takes_time_and_speaks_the_documented_wire_format() {
    let f = Fixture::new(Backend::S3).await;
    let (server, store) = f.s3.as_ref().unwrap();
    let client = store.client();
    let s3_key = "recordings/u/slow.mkv";
    let bytes = generated(4096, 9);
    f.store
        .put_bytes("u/slow.mkv", bytes.clone())
        .await
        .unwrap();
    f.store.archive("u/slow.mkv").await.unwrap();

    let head = client
        .head_object()
        .bucket(BUCKET)
        .key(s3_key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.storage_class().map(|c| c.as_str()), Some("GLACIER"));
    assert_eq!(head.restore(), None);
    let get = client
        .get_object()
        .bucket(BUCKET)
        .key(s3_key)
        .send()
        .await
        .unwrap_err();
    assert_eq!(get.raw_response().unwrap().status().as_u16(), 403);
    assert_eq!(
        aws_sdk_s3::error::ProvideErrorMetadata::code(&get),
        Some("InvalidObjectState")
    );
    // ListObjectsV2 names the class of every object.
    let listed = client
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix("recordings/u/")
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed.contents()[0].storage_class().map(|c| c.as_str()),
        Some("GLACIER")
    );

    server.set_restore_delay(Duration::from_millis(1500));
    let started = client
        .restore_object()
        .bucket(BUCKET)
        .key(s3_key)
        .restore_request(
            aws_sdk_s3::types::RestoreRequest::builder()
                .days(1)
                .glacier_job_parameters(
                    aws_sdk_s3::types::GlacierJobParameters::builder()
                        .tier(aws_sdk_s3::types::Tier::Standard)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await;
    assert!(started.is_ok(), "{started:?}");
    let head = client
        .head_object()
        .bucket(BUCKET)
        .key(s3_key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.restore(), Some("ongoing-request=\"true\""));
    // The store reads the same header and handles the 409 of a second request.
    assert_eq!(
        f.store.storage("u/slow.mkv").await.unwrap().state,
        StorageState::Archived(RestoreState::InProgress)
    );
    assert_eq!(
        f.store.request_restore("u/slow.mkv", 1).await.unwrap(),
        RestoreState::InProgress
    );
    let again = client
        .restore_object()
        .bucket(BUCKET)
        .key(s3_key)
        .send()
        .await
        .unwrap_err();
    assert_eq!(again.raw_response().unwrap().status().as_u16(), 409);
    assert_eq!(
        aws_sdk_s3::error::ProvideErrorMetadata::code(&again),
        Some("RestoreAlreadyInProgress")
    );
    assert!(is_archived_refusal(f.store.get_bytes("u/slow.mkv").await));
    assert!(matches!(
        f.store.make_standard("u/slow.mkv").await,
        Err(StoreError::Conflict(_))
    ));

    // Poll as RestoreStream does, until the copy is readable.
    let mut polls = 0;
    let restored = loop {
        polls += 1;
        assert!(polls < 300, "the restore never completed");
        match f.store.storage("u/slow.mkv").await.unwrap().state {
            StorageState::Archived(RestoreState::InProgress) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            other => break other,
        }
    };
    assert!(
        polls > 1,
        "the restore was seen in progress before it finished"
    );
    assert!(matches!(
        restored,
        StorageState::Archived(RestoreState::Restored { until: Some(_) })
    ));
    let head = client
        .head_object()
        .bucket(BUCKET)
        .key(s3_key)
        .send()
        .await
        .unwrap();
    let header = head.restore().unwrap();
    assert!(
        header.starts_with("ongoing-request=\"false\", expiry-date=\"")
            && header.ends_with(" GMT\""),
        "{header}"
    );
    assert_eq!(
        parse_restore_header(Some(header)),
        restored_state(&restored)
    );
    assert_eq!(f.store.get_bytes("u/slow.mkv").await.unwrap(), bytes);
    f.store.make_standard("u/slow.mkv").await.unwrap();
    let head = client
        .head_object()
        .bucket(BUCKET)
        .key(s3_key)
        .send()
        .await
        .unwrap();
    // STANDARD objects carry no x-amz-storage-class header.
    assert_eq!(head.storage_class(), None);
    assert_eq!(head.restore(), None);
    println!("restore polls until readable: {polls}");
}

fn restored_state(state: &StorageState) -> RestoreState {
    match state {
        StorageState::Archived(r) => *r,
        StorageState::Standard => panic!("standard"),
    }
}

/// The server refuses what AWS refuses: restoring a STANDARD object (403
/// InvalidObjectState), copying an object onto itself without a change (400
/// InvalidRequest), copying from an archived object that is not restored (403).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_server_refuses_what_aws_refuses() {
    let f = Fixture::new(Backend::S3).await;
    let (_, store) = f.s3.as_ref().unwrap();
    let client = store.client();
    f.store.put_bytes("u/r.mkv", b"r".to_vec()).await.unwrap();
    let key = "recordings/u/r.mkv";
    let err = client
        .restore_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 403);
    let err = client
        .copy_object()
        .bucket(BUCKET)
        .key(key)
        .copy_source(format!("{BUCKET}/{key}"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 400);
    f.store.archive("u/r.mkv").await.unwrap();
    let err = client
        .copy_object()
        .bucket(BUCKET)
        .key("recordings/u/copy.mkv")
        .copy_source(format!("{BUCKET}/{key}"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_sdk_s3::error::ProvideErrorMetadata::code(&err),
        Some("InvalidObjectState")
    );
    assert!(!f.store.exists("u/copy.mkv").await.unwrap());
}

/// Objects above the copy threshold (5 GiB on S3; lowered here) change class by a multipart
/// copy (UploadPartCopy): same bytes, a multipart ETag (`…-N`), the class applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_large_objects_change_class_by_multipart_copy() {
    let f = Fixture::new(Backend::S3).await;
    let (server, store) = f.s3.as_ref().unwrap();
    let store = store.clone().with_copy_part_threshold(5 * MIB as u64);
    let bytes = generated(11 * MIB + 17, 4);
    store.put_bytes("u/big.mkv", bytes.clone()).await.unwrap();
    store.archive("u/big.mkv").await.unwrap();
    assert_eq!(
        server
            .storage_class_of(BUCKET, "recordings/u/big.mkv")
            .as_deref(),
        Some("GLACIER")
    );
    let etag = store.head("u/big.mkv").await.unwrap().etag.unwrap();
    // 11 MiB + 17 in parts of 5 MiB: three parts.
    assert!(etag.trim_matches('"').ends_with("-3"), "{etag}");
    store.request_restore("u/big.mkv", 1).await.unwrap();
    store.make_standard("u/big.mkv").await.unwrap();
    assert_eq!(
        server
            .storage_class_of(BUCKET, "recordings/u/big.mkv")
            .as_deref(),
        Some("STANDARD")
    );
    assert_eq!(store.get_bytes("u/big.mkv").await.unwrap(), bytes);
}

/// The local archive directory may be configured elsewhere (another disk beside the root):
/// the archived file moves there and back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_archive_dir_can_be_configured() {
    let dir = tempfile::tempdir().unwrap();
    let (root, archive) = (dir.path().join("rec"), dir.path().join("cold"));
    let store = LocalDirStore::new(&root).with_archive_dir(&archive);
    store
        .put_bytes("u/s/a.mkv", b"bytes".to_vec())
        .await
        .unwrap();
    store.archive("u/s/a.mkv").await.unwrap();
    assert!(!root.join("u/s/a.mkv").exists());
    assert_eq!(std::fs::read(archive.join("u/s/a.mkv")).unwrap(), b"bytes");
    // Another store over the same root but without the archive directory does not see it.
    assert!(!LocalDirStore::new(&root).exists("u/s/a.mkv").await.unwrap());
    store.request_restore("u/s/a.mkv", 1).await.unwrap();
    store.make_standard("u/s/a.mkv").await.unwrap();
    assert_eq!(std::fs::read(root.join("u/s/a.mkv")).unwrap(), b"bytes");
    assert!(!archive.join("u/s/a.mkv").exists());
}
