//! One blob-store suite, run against every backend with the same test bodies: the local
//! directory (`LocalDirStore`) and S3 (`S3BlobStore` against s3s-fs, a real S3 server in
//! process on a TCP port of 127.0.0.1 that checks signatures). Each test gets a fresh store;
//! the S3 one lives under a key prefix next to decoy objects outside it, so every exact
//! listing below also proves the prefix keeps stores apart.
//!
//! Expected values come from the inputs (generated keys and bytes, S3's documented ETag rule,
//! FFmpeg's own reading of the generated media), never from the store under test.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gt_blob_s3::testing::{Fault, S3TestServer};
use gt_blob_s3::{ChecksumPolicy, S3BlobStore, S3Config, S3Credentials};
use gt_store::blob::{BlobStore, MediaSource};
use gt_store::{LocalDirStore, StoreError};
use md5::{Digest, Md5};
use tempfile::TempDir;

const MIB: usize = 1024 * 1024;
/// The S3 store's part size and multipart threshold here: S3's minimum part, so a file of a
/// few MiB goes up in several parts.
const PART: u64 = 5 * MIB as u64;
const BUCKET: &str = "gt-suite";
/// Objects the S3 store must never see: outside its key prefix, one sharing its first letters.
const DECOYS: [&str; 2] = ["outside/decoy.bin", "suite-decoy.bin"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Local,
    S3,
}

struct S3Side {
    server: S3TestServer,
    store: S3BlobStore,
    cache_dir: PathBuf,
}

struct Fixture {
    backend: Backend,
    store: Arc<dyn BlobStore>,
    s3: Option<S3Side>,
    dir: TempDir,
}

impl Fixture {
    async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        match backend {
            Backend::Local => Self {
                backend,
                store: Arc::new(LocalDirStore::new(dir.path().join("blobs"))),
                s3: None,
                dir,
            },
            Backend::S3 => {
                let server = S3TestServer::start(dir.path().join("s3")).await.unwrap();
                let cache_dir = dir.path().join("cache");
                let store = s3_store(&server, "suite/", cache_dir.clone(), |_| {}).await;
                store.create_bucket_if_missing().await.unwrap();
                for decoy in DECOYS {
                    store
                        .client()
                        .put_object()
                        .bucket(BUCKET)
                        .key(decoy)
                        .body(b"not yours".to_vec().into())
                        .send()
                        .await
                        .unwrap();
                }
                Self {
                    backend,
                    store: Arc::new(store.clone()),
                    s3: Some(S3Side {
                        server,
                        store,
                        cache_dir,
                    }),
                    dir,
                }
            }
        }
    }

    /// A source file outside the store.
    fn write_source(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join("src").join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    async fn put(&self, key: &str, bytes: &[u8]) {
        self.store.put_bytes(key, bytes.to_vec()).await.unwrap();
    }

    async fn keys(&self, prefix: &str) -> Vec<String> {
        keys(&self.store.list_all(prefix).await.unwrap())
    }

    fn server(&self) -> Option<&S3TestServer> {
        self.s3.as_ref().map(|s| &s.server)
    }
}

async fn s3_store(
    server: &S3TestServer,
    key_prefix: &str,
    cache_dir: PathBuf,
    tweak: impl FnOnce(&mut S3Config),
) -> S3BlobStore {
    let mut config = server.config(BUCKET, cache_dir);
    config.key_prefix = key_prefix.to_string();
    config.part_size = PART;
    config.multipart_threshold = PART;
    tweak(&mut config);
    S3BlobStore::connect(config).await.unwrap()
}

fn keys(objects: &[gt_store::blob::BlobObject]) -> Vec<String> {
    objects.iter().map(|o| o.key.clone()).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    // S3 orders keys by their UTF-8 bytes; Rust's `str` order is the same.
    v.sort();
    v
}

/// Deterministic pseudo-random bytes (xorshift64*), so ranges have distinct content.
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

fn is_invalid<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Invalid(_)))
}

fn is_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::NotFound(_)))
}

// ---- the suite -------------------------------------------------------------------------

async fn pages_follow_key_order(f: Fixture) {
    let mut all: Vec<String> = (0..45).map(|i| format!("p/{:03}", (i * 37) % 45)).collect();
    for special in [
        "p/a b.mkv",
        "p/a-b",
        "p/a.b",
        "p/Z",
        "p/é.wav",
        "p/sub/x",
        "p/sub/y/z",
        "p/~",
    ] {
        all.push(special.to_string());
    }
    // Written in a scrambled order; content length differs per key.
    for (i, key) in all.iter().enumerate() {
        f.put(key, &vec![b'x'; i + 1]).await;
    }
    f.put("q/outside", b"not under p/").await;
    let expected = sorted(all.clone());
    let (mut listed, mut pages, mut after) = (Vec::new(), Vec::new(), None::<String>);
    loop {
        let page = f.store.list_page("p/", after.as_deref(), 7).await.unwrap();
        pages.push(page.objects.len());
        // A store that ignored `start_after` would page forever.
        assert!(pages.len() <= 8, "more pages than 53 keys need");
        for o in &page.objects {
            let i = all.iter().position(|k| *k == o.key).unwrap();
            assert_eq!(o.size, i as u64 + 1, "{}", o.key);
        }
        listed.extend(keys(&page.objects));
        match page.next {
            Some(next) => {
                assert_eq!(Some(&next), listed.last(), "next is the page's last key");
                after = Some(next);
            }
            None => break,
        }
    }
    assert_eq!(listed, expected);
    // 53 keys in pages of 7: seven full pages and a last one of 4.
    assert_eq!(pages, [7, 7, 7, 7, 7, 7, 7, 4]);
    assert_eq!(f.keys("p/").await, expected);
}

async fn start_after_is_exclusive_and_need_not_exist(f: Fixture) {
    for k in ["a/1", "a/3", "a/5", "a/7"] {
        f.put(k, k.as_bytes()).await;
    }
    let after = |a: &'static str, limit: usize| {
        let store = f.store.clone();
        async move {
            let page = store.list_page("a/", Some(a), limit).await.unwrap();
            (keys(&page.objects), page.next)
        }
    };
    assert_eq!(
        after("a/3", 10).await,
        (vec!["a/5".into(), "a/7".into()], None)
    );
    assert_eq!(
        after("a/4", 10).await,
        (vec!["a/5".into(), "a/7".into()], None)
    );
    assert_eq!(after("a/0", 10).await.0.len(), 4);
    assert_eq!(
        after("0", 10).await.0.len(),
        4,
        "a marker before the prefix"
    );
    assert_eq!(after("a/7", 10).await, (vec![], None));
    assert_eq!(
        after("b", 10).await,
        (vec![], None),
        "a marker past the prefix"
    );
    assert_eq!(
        after("a/1", 1).await,
        (vec!["a/3".into()], Some("a/3".into()))
    );
}

async fn prefixes_are_isolated(f: Fixture) {
    for k in ["u1/a", "u1/b/c", "u10/a", "u1x", "u2/a"] {
        f.put(k, k.as_bytes()).await;
    }
    assert_eq!(f.keys("u1/").await, ["u1/a", "u1/b/c"]);
    // A bare prefix matches like S3's: "u1" covers "u10/..." and "u1x" too.
    assert_eq!(f.keys("u1").await, ["u1/a", "u1/b/c", "u10/a", "u1x"]);
    assert_eq!(f.keys("u2/").await, ["u2/a"]);
    assert!(f.keys("nothing/").await.is_empty());
    assert_eq!(f.keys("").await, ["u1/a", "u1/b/c", "u10/a", "u1x", "u2/a"]);
    assert_eq!(f.store.delete_prefix("u1/").await.unwrap(), 2);
    assert_eq!(f.keys("").await, ["u10/a", "u1x", "u2/a"]);
    assert_eq!(f.store.get_bytes("u10/a").await.unwrap(), b"u10/a");
    if let Some(s3) = &f.s3 {
        // The decoys outside the store's key prefix are still there, untouched.
        for decoy in DECOYS {
            let out = s3
                .store
                .client()
                .get_object()
                .bucket(BUCKET)
                .key(decoy)
                .send()
                .await
                .unwrap();
            assert_eq!(out.body.collect().await.unwrap().to_vec(), b"not yours");
        }
    }
}

async fn put_get_replace_and_head(f: Fixture) {
    let key = "v/a b/é.json";
    f.put(key, b"one").await;
    assert_eq!(f.store.get_bytes(key).await.unwrap(), b"one");
    let first = f.store.head(key).await.unwrap();
    assert_eq!(first.size, 3);
    assert!(f.store.exists(key).await.unwrap());
    f.put(key, b"the second version").await;
    assert_eq!(f.store.get_bytes(key).await.unwrap(), b"the second version");
    let second = f.store.head(key).await.unwrap();
    assert_eq!(second.size, 18);
    match f.backend {
        // S3's ETag of a single PUT is the MD5 of the bytes.
        Backend::S3 => {
            let md5 = |b: &[u8]| format!("\"{}\"", hex(&Md5::digest(b)));
            assert_eq!(first.etag, Some(md5(b"one")));
            assert_eq!(second.etag, Some(md5(b"the second version")));
        }
        Backend::Local => assert_eq!(second.etag, None),
    }
    assert_eq!(f.keys("v/").await, [key]);

    let src = f.write_source("small.txt", b"from a file");
    f.store.put_file("v/file.txt", &src).await.unwrap();
    assert_eq!(
        f.store.get_bytes("v/file.txt").await.unwrap(),
        b"from a file"
    );

    f.put("v/empty", b"").await;
    assert_eq!(f.store.get_bytes("v/empty").await.unwrap(), b"");
    assert_eq!(f.store.head("v/empty").await.unwrap().size, 0);
    assert!(f.store.exists("v/empty").await.unwrap());

    assert!(!f.store.exists("v/a b/other.json").await.unwrap());
    if f.backend == Backend::Local {
        // s3s-fs keeps objects as files, so a key naming one of its directories answers 500
        // there (real S3 has no directories: 404).
        assert!(
            !f.store.exists("v").await.unwrap(),
            "a folder is not an object"
        );
    }
    assert!(is_not_found(f.store.get_bytes("v/missing").await));
    assert!(is_not_found(f.store.head("v/missing").await));
    assert!(is_not_found(
        f.store
            .put_file("v/x", Path::new("/nonexistent/source"))
            .await
    ));
}

async fn delete_prefix_counts_every_object(f: Fixture) {
    // 1001 objects: two DeleteObjects batches on S3 (at most 1000 keys each).
    let mut puts = tokio::task::JoinSet::new();
    for i in 0..1001 {
        let store = f.store.clone();
        puts.spawn(async move { store.put_bytes(&format!("d/{i:04}"), vec![1]).await });
        if puts.len() >= 16 {
            puts.join_next().await.unwrap().unwrap().unwrap();
        }
    }
    while let Some(r) = puts.join_next().await {
        r.unwrap().unwrap();
    }
    f.put("d2/kept", b"k").await;
    f.put("e/kept", b"k").await;
    assert_eq!(f.store.list_all("d/").await.unwrap().len(), 1001);
    assert_eq!(f.store.delete_prefix("d/").await.unwrap(), 1001);
    assert!(f.keys("d/").await.is_empty());
    assert_eq!(f.keys("").await, ["d2/kept", "e/kept"]);
    assert_eq!(f.store.delete_prefix("d/").await.unwrap(), 0);
    assert_eq!(f.store.delete_prefix("missing/").await.unwrap(), 0);
    if let Some(server) = f.server() {
        let batches = server
            .requests()
            .iter()
            .filter(|r| {
                r.method == "POST" && r.query.split('&').any(|q| q == "delete" || q == "delete=")
            })
            .count();
        assert_eq!(batches, 2, "1001 keys need two DeleteObjects requests");
    }
}

async fn ranged_reads_match_the_bytes(f: Fixture) {
    let data = generated(3 * MIB + 1234, 7);
    let size = data.len() as u64;
    let src = f.write_source("data.bin", &data);
    f.store.put_file("r/data.bin", &src).await.unwrap();
    let cases: [(u64, u64); 9] = [
        (0, 1),
        (0, 100),
        (1_000_000, 65_536),
        (size - 10, 10),
        (size - 10, 100),
        (size, 5),
        (size + 100, 5),
        (12_345, 0),
        (0, u64::MAX),
    ];
    for (offset, len) in cases {
        let start = (offset as usize).min(data.len());
        let end = (offset.saturating_add(len) as usize).min(data.len());
        let got = f.store.read_range("r/data.bin", offset, len).await.unwrap();
        assert!(
            got == data[start..end],
            "range {offset}+{len}: {} bytes",
            got.len()
        );
    }
    assert!(is_not_found(f.store.read_range("r/missing", 0, 10).await));
    assert!(is_not_found(f.store.read_range("r/missing", 0, 0).await));
    if let Some(server) = f.server() {
        // The reads were range requests, not whole downloads cut here.
        let ranged = server
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with("/r/data.bin") && r.range.is_some())
            .count();
        assert!(ranged >= 6, "{ranged} ranged GETs");
    }
}

async fn large_files_upload_in_parts(f: Fixture) {
    // Two full 5 MiB parts and a short last one.
    let data = generated(2 * PART as usize + MIB + 321, 11);
    let src = f.write_source("render.mp4", &data);
    f.store.put_file("m/render.mp4", &src).await.unwrap();
    let got = f.store.get_bytes("m/render.mp4").await.unwrap();
    assert!(
        got == data,
        "downloaded {} bytes differ from the {} uploaded",
        got.len(),
        data.len()
    );
    let meta = f.store.head("m/render.mp4").await.unwrap();
    assert_eq!(meta.size, data.len() as u64);
    if let Some(server) = f.server() {
        // S3's multipart ETag: MD5 of the parts' MD5s, then "-<part count>".
        let mut all = Md5::new();
        for part in data.chunks(PART as usize) {
            all.update(Md5::digest(part));
        }
        assert_eq!(meta.etag, Some(format!("\"{}-3\"", hex(&all.finalize()))));
        let parts = server
            .requests()
            .iter()
            .filter(|r| r.method == "PUT" && r.query.contains("partNumber="))
            .count();
        assert_eq!(parts, 3);
        // And the object has the video's content type for players following a link.
        let out =
            f.s3.as_ref()
                .unwrap()
                .store
                .client()
                .head_object()
                .bucket(BUCKET)
                .key("suite/m/render.mp4")
                .send()
                .await
                .unwrap();
        assert_eq!(out.content_type(), Some("video/mp4"));
    }
}

async fn presigned_links_serve_plain_http(f: Fixture) {
    let data = generated(100_000, 3);
    let key = "h/seg ment é.ts";
    f.put(key, &data).await;
    let url = f
        .store
        .presigned_get(key, Duration::from_secs(300))
        .await
        .unwrap();
    let Some(url) = url else {
        assert_eq!(
            f.backend,
            Backend::Local,
            "only the local store has no URLs"
        );
        assert_eq!(
            f.store
                .media_source(key, Duration::from_secs(300))
                .await
                .unwrap(),
            MediaSource::File(f.store.local_path(key).await.unwrap())
        );
        return;
    };
    assert_eq!(f.backend, Backend::S3);
    let http = reqwest::Client::new();
    let whole = http.get(&url).send().await.unwrap();
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["content-type"], "video/mp2t");
    assert!(whole.bytes().await.unwrap() == data[..]);
    let part = http
        .get(&url)
        .header("Range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert!(part.bytes().await.unwrap() == data[1000..2000]);
    // The server checks the signature: a changed one, or another key, is refused.
    let tampered = format!(
        "{}{}",
        &url[..url.len() - 1],
        if url.ends_with('0') { '1' } else { '0' }
    );
    assert_eq!(http.get(&tampered).send().await.unwrap().status(), 403);
    let other_key = url.replacen("seg%20ment", "seg%20menT", 1);
    assert_ne!(other_key, url);
    assert_eq!(http.get(&other_key).send().await.unwrap().status(), 403);
    // And the expiry we asked for.
    let short = f
        .store
        .presigned_get(key, Duration::from_secs(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(http.get(&short).send().await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        http.get(&short).send().await.unwrap().status(),
        403,
        "expired"
    );
    assert!(is_invalid(f.store.presigned_get(key, Duration::ZERO).await));
    assert!(is_invalid(
        f.store
            .presigned_get(key, Duration::from_secs(8 * 24 * 3600))
            .await
    ));
}

/// FFmpeg as the judge: ffprobe reads a generated MP4 (index at the end) through whatever
/// `media_source` hands out and must see what ffmpeg wrote.
async fn ffprobe_reads_through_media_source(f: Fixture) {
    let mp4 = f.dir.path().join("src/clip.mp4");
    let made = tokio::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x480:rate=25:duration=4",
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=4",
        ])
        .args(["-c:v", "mpeg4", "-b:v", "6M", "-c:a", "aac", "-shortest"])
        .arg(&mp4)
        .status()
        .await
        .expect("ffmpeg is installed (apt-get install ffmpeg)");
    assert!(made.success());
    let size = std::fs::metadata(&mp4).unwrap().len();
    assert!(
        size > 2_000_000,
        "{size} bytes: large enough that the index is far from the start"
    );
    let key = "media/clip one é.mp4";
    f.store.put_file(key, &mp4).await.unwrap();
    let source = f
        .store
        .media_source(key, Duration::from_secs(600))
        .await
        .unwrap();
    match (&source, f.backend) {
        (MediaSource::Url(_), Backend::S3) | (MediaSource::File(_), Backend::Local) => {}
        other => panic!("unexpected source {other:?}"),
    }
    let out = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-of", "json"])
        .args([
            "-show_entries",
            "format=duration,size:stream=codec_type,codec_name,width,height,sample_rate",
        ])
        .arg(source.as_os_str())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let probe: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams = probe["streams"].as_array().unwrap();
    let video = streams.iter().find(|s| s["codec_type"] == "video").unwrap();
    let audio = streams.iter().find(|s| s["codec_type"] == "audio").unwrap();
    assert_eq!(video["codec_name"], "mpeg4");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(640), Some(480))
    );
    assert_eq!(audio["codec_name"], "aac");
    assert_eq!(audio["sample_rate"], "48000");
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3.9..4.2).contains(&duration), "duration {duration}");
    assert_eq!(
        probe["format"]["size"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap(),
        size
    );
    if let Some(s3) = &f.s3 {
        // FFmpeg seeked with a range request instead of downloading, and nothing was cached.
        let gets: Vec<_> = s3
            .server
            .requests()
            .into_iter()
            .filter(|r| r.method == "GET" && r.path.contains("/media/clip"))
            .collect();
        assert!(
            gets.iter().any(|r| r.range_start().is_some_and(|s| s > 0)),
            "no seek among {gets:?}"
        );
        assert!(!s3.cache_dir.exists(), "media_source must not download");
    }
}

async fn bad_keys_are_refused_and_nothing_changes(f: Fixture) {
    let src = f.write_source("payload", b"payload");
    let bad = [
        "",
        "/etc/passwd",
        "a/../b",
        "..",
        "a//b",
        "a\\b",
        "./a",
        "a/./b",
        "nul\0byte",
    ];
    let expiry = Duration::from_secs(60);
    for key in bad {
        let s = &f.store;
        assert!(
            is_invalid(s.put_bytes(key, b"x".to_vec()).await),
            "put_bytes {key:?}"
        );
        assert!(is_invalid(s.put_file(key, &src).await), "put_file {key:?}");
        assert!(is_invalid(s.get_bytes(key).await), "get_bytes {key:?}");
        assert!(is_invalid(s.exists(key).await), "exists {key:?}");
        assert!(is_invalid(s.head(key).await), "head {key:?}");
        assert!(
            is_invalid(s.read_range(key, 0, 1).await),
            "read_range {key:?}"
        );
        assert!(is_invalid(s.local_path(key).await), "local_path {key:?}");
        assert!(
            is_invalid(s.presigned_get(key, expiry).await),
            "presigned_get {key:?}"
        );
        assert!(
            is_invalid(s.media_source(key, expiry).await),
            "media_source {key:?}"
        );
        if !key.is_empty() {
            assert!(
                is_invalid(s.list_page(key, None, 10).await),
                "list_page {key:?}"
            );
            assert!(
                is_invalid(s.delete_prefix(key).await),
                "delete_prefix {key:?}"
            );
        }
    }
    assert_eq!(
        std::fs::read(&src).unwrap(),
        b"payload",
        "the source is untouched"
    );
    assert!(f.keys("").await.is_empty());
    if let Some(s3) = &f.s3 {
        let long = "k/".repeat(600);
        assert!(
            is_invalid(s3.store.put_bytes(&long, vec![1]).await),
            "over 1024 bytes"
        );
        // Nothing reached the bucket but the decoys.
        let all = s3
            .store
            .client()
            .list_objects_v2()
            .bucket(BUCKET)
            .send()
            .await
            .unwrap();
        let mut listed: Vec<_> = all
            .contents()
            .iter()
            .map(|o| o.key().unwrap().to_string())
            .collect();
        listed.sort();
        assert_eq!(listed, sorted(DECOYS.map(String::from).to_vec()));
    }
}

async fn local_path_is_a_current_copy(f: Fixture) {
    let key = "lp/a.mkv";
    f.put(key, b"first").await;
    let first = f.store.local_path(key).await.unwrap();
    assert!(
        first.ends_with("a.mkv"),
        "{first:?} keeps the name FFmpeg probes by"
    );
    assert_eq!(std::fs::read(&first).unwrap(), b"first");
    let gets_before = f
        .server()
        .map(|s| s.requests().iter().filter(|r| r.method == "GET").count());
    assert_eq!(f.store.local_path(key).await.unwrap(), first);
    if let Some(server) = f.server() {
        let gets = server
            .requests()
            .iter()
            .filter(|r| r.method == "GET")
            .count();
        assert_eq!(
            Some(gets),
            gets_before,
            "the cached copy is reused without a download"
        );
    }
    f.put(key, b"second!").await;
    let second = f.store.local_path(key).await.unwrap();
    assert_eq!(std::fs::read(&second).unwrap(), b"second!");
    if f.backend == Backend::S3 {
        assert_ne!(second, first);
        assert!(!first.exists(), "the replaced version left the cache");
    }
    assert!(is_not_found(f.store.local_path("lp/missing.mkv").await));
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
    pages_follow_key_order,
    start_after_is_exclusive_and_need_not_exist,
    prefixes_are_isolated,
    put_get_replace_and_head,
    delete_prefix_counts_every_object,
    ranged_reads_match_the_bytes,
    large_files_upload_in_parts,
    presigned_links_serve_plain_http,
    ffprobe_reads_through_media_source,
    bad_keys_are_refused_and_nothing_changes,
    local_path_is_a_current_copy,
);

// ---- S3 only ---------------------------------------------------------------------------

/// A failed part aborts the upload: the server holds no parts afterwards and no object
/// appears; the same upload then succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_failed_multipart_upload_is_aborted() {
    let f = Fixture::new(Backend::S3).await;
    let s3 = f.s3.as_ref().unwrap();
    let data = generated(2 * PART as usize + 77, 5);
    let src = f.write_source("big.mkv", &data);
    s3.server.inject(Fault::RejectUploadPart(2));
    let err = s3.store.put_file("big/rec.mkv", &src).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Backend(e) if e.to_string().contains("UploadPart")),
        "{err:?}"
    );
    assert!(!s3.store.exists("big/rec.mkv").await.unwrap());
    let reqs = s3.server.requests();
    assert!(
        reqs.iter()
            .any(|r| r.method == "DELETE" && r.query.contains("uploadId=")),
        "no AbortMultipartUpload"
    );
    // s3s-fs keeps an upload's bookkeeping and parts as `.upload*` files in its root.
    let leftovers: Vec<_> = std::fs::read_dir(s3.server.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".upload"))
        .collect();
    assert!(leftovers.is_empty(), "parts left behind: {leftovers:?}");
    s3.server.clear_faults();
    s3.store.put_file("big/rec.mkv", &src).await.unwrap();
    assert!(s3.store.get_bytes("big/rec.mkv").await.unwrap() == data);
}

/// Two stores on one bucket under different key prefixes never see each other's objects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_key_prefixes_share_a_bucket() {
    let f = Fixture::new(Backend::S3).await;
    let s3 = f.s3.as_ref().unwrap();
    let other = s3_store(&s3.server, "other/", f.dir.path().join("cache2"), |_| {}).await;
    s3.store
        .put_bytes("same/key", b"suite".to_vec())
        .await
        .unwrap();
    other
        .put_bytes("same/key", b"other".to_vec())
        .await
        .unwrap();
    assert_eq!(s3.store.get_bytes("same/key").await.unwrap(), b"suite");
    assert_eq!(other.get_bytes("same/key").await.unwrap(), b"other");
    assert_eq!(keys(&other.list_all("").await.unwrap()), ["same/key"]);
    assert_eq!(other.delete_prefix("").await.unwrap(), 1);
    assert_eq!(s3.store.get_bytes("same/key").await.unwrap(), b"suite");
    assert_eq!(keys(&s3.store.list_all("").await.unwrap()), ["same/key"]);
}

/// AWS's default (CRC checksums on every upload, `aws-chunked` bodies) also works, including
/// multipart and presigned URLs (which must not demand a checksum header).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_when_supported_checksums_work_too() {
    let f = Fixture::new(Backend::S3).await;
    let s3 = f.s3.as_ref().unwrap();
    let store = s3_store(&s3.server, "crc/", f.dir.path().join("cache2"), |c| {
        c.checksums = ChecksumPolicy::WhenSupported;
    })
    .await;
    store
        .put_bytes("small", b"checksummed".to_vec())
        .await
        .unwrap();
    assert_eq!(store.get_bytes("small").await.unwrap(), b"checksummed");
    let data = generated(PART as usize + 1000, 9);
    let src = f.write_source("two-parts.bin", &data);
    store.put_file("big.bin", &src).await.unwrap();
    assert!(store.get_bytes("big.bin").await.unwrap() == data);
    let url = store
        .presigned_get("big.bin", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    let body = reqwest::get(&url).await.unwrap();
    assert_eq!(body.status(), 200);
    assert!(body.bytes().await.unwrap() == data[..]);
}

/// Failures that are not "no such object" surface as errors, never as `false` or empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_auth_and_bucket_failures_are_errors() {
    let f = Fixture::new(Backend::S3).await;
    let s3 = f.s3.as_ref().unwrap();
    s3.store.put_bytes("k", b"v".to_vec()).await.unwrap();
    let wrong = s3_store(&s3.server, "suite/", f.dir.path().join("c2"), |c| {
        c.credentials = S3Credentials::Static {
            access_key_id: gt_blob_s3::testing::ACCESS_KEY.into(),
            secret_access_key: "not-the-secret".into(),
            session_token: None,
        };
    })
    .await;
    let err = wrong.get_bytes("k").await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Backend(e) if e.to_string().contains("SignatureDoesNotMatch")),
        "{err:?}"
    );
    assert!(
        matches!(wrong.exists("k").await, Err(StoreError::Backend(_))),
        "403 is not 'missing'"
    );
    assert!(matches!(
        wrong.list_page("", None, 10).await,
        Err(StoreError::Backend(_))
    ));
    let missing = s3_store(&s3.server, "", f.dir.path().join("c3"), |c| {
        c.bucket = "no-such-bucket".into()
    })
    .await;
    // A missing bucket is a configuration error, not an empty listing.
    let err = missing.list_page("", None, 10).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Backend(e) if e.to_string().contains("no-such-bucket")),
        "{err:?}"
    );
    // (Object requests to a missing bucket are NoSuchBucket on S3 too, but s3s-fs answers
    // them per file, so only the listing checks the bucket here.)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
