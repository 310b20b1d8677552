//! The resumable upload against the fake, over real TCP: happy path, every interruption the
//! protocol has to survive, and the outcomes that end an attempt.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use chrono::{Timelike, Utc};
use common::*;
use gt_youtube::fake::{FakeYouTube, Fault, RequestKind, RetryAfterHeader};
use gt_youtube::{UPLOAD_GRANULARITY, UploadSession, UploadState, YouTubeError};

/// Chunk requests (those with bytes) as (first, last, total) from the fake's log.
fn chunk_ranges(fake: &FakeYouTube) -> Vec<(u64, u64, u64)> {
    fake.requests()
        .into_iter()
        .filter(|r| r.kind == RequestKind::Chunk)
        .map(|r| {
            let cr = r.content_range.unwrap();
            let (range, total) = cr.strip_prefix("bytes ").unwrap().split_once('/').unwrap();
            let (a, b) = range.split_once('-').unwrap();
            (
                a.parse().unwrap(),
                b.parse().unwrap(),
                total.parse().unwrap(),
            )
        })
        .collect()
}

fn sha256sum_cli(path: &std::path::Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn happy_path_uploads_identical_bytes_in_256k_chunks() {
    let fake = FakeYouTube::start().await;
    let (client, _) = client(test_config(&fake, 256 * KIB)).await;
    let size = 4 * 256 * KIB + 12_345;
    let (file, bytes) = media_file(size, 1);
    let meta = metadata();

    let session = client
        .begin_upload(file.path(), &meta, "video/mp4")
        .await
        .unwrap();
    // The session is what the caller persists before any byte is sent.
    assert_eq!(fake.session_received(&session.uri), Some(0));
    assert_eq!(session.total, size as u64);
    assert_eq!(session.sha256, sha256sum_cli(file.path()));
    let persisted = serde_json::to_string(&session).unwrap();
    let session: UploadSession = serde_json::from_str(&persisted).unwrap();

    let progress = Arc::new(Mutex::new(Vec::new()));
    let seen = progress.clone();
    let video = client
        .resume_upload(&session, file.path(), move |offset, total| {
            seen.lock().unwrap().push((offset, total))
        })
        .await
        .unwrap();

    let videos = fake.videos();
    assert_eq!(videos.len(), 1);
    assert_eq!(videos[0].id, video.id);
    assert_eq!(fake.video_bytes(&video.id).unwrap(), bytes);
    assert_eq!(videos[0].size, size as u64);
    assert_eq!(videos[0].sha256, sha256sum_cli(file.path()));
    assert_eq!(videos[0].content_type, "video/mp4");
    assert!(!videos[0].notify_subscribers);
    let resource = &videos[0].resource;
    assert_eq!(resource["snippet"]["title"], meta.title);
    assert_eq!(resource["snippet"]["categoryId"], "20");
    assert_eq!(resource["snippet"]["tags"][1], "live coding");
    assert_eq!(resource["status"]["privacyStatus"], "unlisted");
    assert_eq!(resource["status"]["selfDeclaredMadeForKids"], false);
    assert_eq!(video.title.as_deref(), Some(meta.title.as_str()));

    // Contiguous chunks, every one but the last exactly 256 KiB.
    let ranges = chunk_ranges(&fake);
    assert_eq!(ranges.len(), 5);
    let mut next = 0;
    for (i, &(a, b, total)) in ranges.iter().enumerate() {
        assert_eq!(a, next);
        assert_eq!(total, size as u64);
        if i + 1 < ranges.len() {
            assert_eq!(b - a + 1, UPLOAD_GRANULARITY as u64);
        }
        next = b + 1;
    }
    assert_eq!(next, size as u64);

    // Progress reports only confirmed offsets, in order, ending at the total.
    let progress = progress.lock().unwrap().clone();
    let offsets: Vec<u64> = progress.iter().map(|p| p.0).collect();
    let expected: Vec<u64> = (0..5)
        .map(|i| (i * 256 * KIB) as u64)
        .chain([size as u64])
        .collect();
    assert_eq!(offsets, expected);
    assert!(progress.iter().all(|p| p.1 == size as u64));
    assert_eq!(fake.sessions_started(), 1);
}

#[tokio::test]
async fn connection_dropped_mid_chunk_resumes_from_the_confirmed_byte() {
    let fake = FakeYouTube::start().await;
    let (client, _) = client(test_config(&fake, 1024 * KIB)).await;
    let size = 3 * 1024 * KIB + 100;
    let (file, bytes) = media_file(size, 2);
    let session = client
        .begin_upload(file.path(), &metadata(), "video/mp4")
        .await
        .unwrap();
    // The first chunk (1 MiB) is cut after 600 KiB: the fake keeps 512 KiB (whole 256 KiB units).
    fake.push_fault(Fault::DropConnection {
        after_bytes: 600 * 1024,
    });

    let video = client
        .resume_upload(&session, file.path(), |_, _| {})
        .await
        .unwrap();

    assert_eq!(fake.video_bytes(&video.id).unwrap(), bytes);
    let log = fake.requests();
    let dropped = log
        .iter()
        .position(|r| r.kind == RequestKind::Chunk && r.status.is_none())
        .expect("a chunk that got no reply");
    // After the drop the client asked first, and was told 512 KiB had arrived.
    let query = &log[dropped + 1];
    assert_eq!(query.kind, RequestKind::StatusQuery);
    assert_eq!(query.status, Some(308));
    let ranges = chunk_ranges(&fake);
    assert_eq!(ranges[0].0, 0);
    assert_eq!(ranges[1].0, 512 * 1024, "resumed from the confirmed byte");
    assert_eq!(fake.videos().len(), 1);
}

#[tokio::test]
async fn a_partly_kept_chunk_is_continued_from_the_confirmed_byte() {
    let fake = FakeYouTube::start().await;
    let (client, _) = client(test_config(&fake, 1024 * KIB)).await;
    let size = 2 * 1024 * KIB;
    let (file, bytes) = media_file(size, 3);
    let session = client
        .begin_upload(file.path(), &metadata(), "video/mp4")
        .await
        .unwrap();
    fake.push_fault(Fault::AcceptPartially {
        keep_bytes: 300 * 1024,
    });

    let video = client
        .resume_upload(&session, file.path(), |_, _| {})
        .await
        .unwrap();

    assert_eq!(fake.video_bytes(&video.id).unwrap(), bytes);
    let ranges = chunk_ranges(&fake);
    assert_eq!(ranges[0], (0, 1024 * 1024 - 1, size as u64));
    assert_eq!(
        ranges[1].0,
        256 * 1024,
        "the 308 said 0-262143, not the whole chunk"
    );
}

#[tokio::test]
async fn a_stalled_chunk_times_out_and_resumes_from_the_confirmed_byte() {
    let fake = FakeYouTube::start().await;
    let mut cfg = test_config(&fake, 512 * KIB);
    cfg.request_timeout = Duration::from_secs(1);
    let (client, _) = client(cfg).await;
    let size = 3 * 512 * KIB;
    let (file, bytes) = media_file(size, 30);
    let session = client
        .begin_upload(file.path(), &metadata(), "video/mp4")
        .await
        .unwrap();
    // The first chunk stalls after 300 KiB: the fake keeps 256 KiB and never answers.
    fake.push_fault(Fault::Stall {
        after_bytes: 300 * 1024,
    });

    let video = client
        .resume_upload(&session, file.path(), |_, _| {})
        .await
        .unwrap();

    assert_eq!(fake.video_bytes(&video.id).unwrap(), bytes);
    let log = fake.requests();
    let stalled = log
        .iter()
        .position(|r| r.kind == RequestKind::Chunk)
        .unwrap();
    assert_eq!(log[stalled].status, None);
    assert_eq!(log[stalled + 1].kind, RequestKind::StatusQuery);
    let waited = log[stalled + 1].at.duration_since(log[stalled].at).unwrap();
    assert!(
        waited >= Duration::from_secs(1),
        "the client gave up after {waited:?}"
    );
    assert_eq!(chunk_ranges(&fake)[1].0, 256 * 1024);
    assert_eq!(fake.videos().len(), 1);
}

/// The request after a faulty reply, and the time it arrived.
fn request_after(
    fake: &FakeYouTube,
    status: u16,
) -> (
    gt_youtube::fake::RecordedRequest,
    gt_youtube::fake::RecordedRequest,
) {
    let log = fake.requests();
    let i = log
        .iter()
        .position(|r| r.status == Some(status))
        .expect("the faulty reply");
    (log[i].clone(), log[i + 1].clone())
}

#[tokio::test]
async fn retry_after_in_seconds_is_honoured() {
    let fake = FakeYouTube::start().await;
    let (client, _) = client(test_config(&fake, 256 * KIB)).await;
    let (file, bytes) = media_file(600 * KIB, 4);
    let session = client
        .begin_upload(file.path(), &metadata(), "video/mp4")
        .await
        .unwrap();
    fake.push_fault(Fault::ServerError {
        on: RequestKind::Chunk,
        status: 503,
        retry_after: Some(RetryAfterHeader::Seconds(2)),
    });

    let video = client
        .resume_upload(&session, file.path(), |_, _| {})
        .await
        .unwrap();

    assert_eq!(fake.video_bytes(&video.id).unwrap(), bytes);
    let (faulty, next) = request_after(&fake, 503);
    assert_eq!(faulty.retry_after.as_deref(), Some("2"));
    assert_eq!(
        next.kind,
        RequestKind::StatusQuery,
        "after a 5xx the client asks first"
    );
    let waited = next.at.duration_since(faulty.at).unwrap();
    assert!(waited >= Duration::from_secs(2), "waited only {waited:?}");
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured() {
    let fake = FakeYouTube::start().await;
    let (client, _) = client(test_config(&fake, 256 * KIB)).await;
    let (file, bytes) = media_file(600 * KIB, 5);
    let session = client
        .begin_upload(file.path(), &metadata(), "video/mp4")
        .await
        .unwrap();
    fake.push_fault(Fault::ServerError {
        on: RequestKind::Chunk,
        status: 503,
        retry_after: Some(RetryAfterHeader::HttpDateIn(Duration::from_millis(1500))),
    });

    let video = client
        .resume_upload(&session, file.path(), |_, _| {})
        .await
        .unwrap();

    assert_eq!(fake.video_bytes(&video.id).unwrap(), bytes);
    let (faulty, next) = request_after(&fake, 503);
    let date = httpdate::parse_http_date(faulty.retry_after.as_deref().unwrap()).unwrap();
    assert!(date > faulty.at, "the fake sent a date in the future");
    assert!(
        next.at >= date,
        "next request at {:?}, before the Retry-After date {date:?}",
        next.at
    );
}

#[tokio::test]
async fn a_429_at_session_start_is_retried_and_a_long_retry_after_is_handed_back() {
    let fake = FakeYouTube::start().await;
    let (client, _) = client(test_config(&fake, 256 * KIB)).await;
    let (file, bytes) = media_file(300 * KIB, 6);
    fake.push_fault(Fault::ServerError {
        on: RequestKind::SessionStart,
        status: 429,
        retry_after: None,
    });
    let session = client
        .begin_upload(file.path(), &metadata(), "video/mp4")
        .await
        .unwrap();
    assert_eq!(fake.sessions_started(), 1);

    // Longer than the policy's 10 s inline limit: the call ends and says how long to wait.
    fake.push_fault(Fault::ServerError {
        on: RequestKind::Chunk,
        status: 503,
        retry_after: Some(RetryAfterHeader::Seconds(3600)),
    });
    let started = SystemTime::now();
    match client.resume_upload(&session, file.path(), |_, _| {}).await {
        Err(YouTubeError::RetryAfter { after, .. }) => assert_eq!(after, Duration::from_secs(3600)),
        other => panic!("expected RetryAfter, got {other:?}"),
    }
    let now = Utc::now();
    let e = YouTubeError::RetryAfter {
        after: Duration::from_secs(3600),
        message: String::new(),
    };
    assert_eq!(e.retry_at(now), Some(now + chrono::Duration::hours(1)));
    assert!(
        started.elapsed().unwrap() < Duration::from_secs(60),
        "did not sleep for the hour"
    );
    // Later (the durable timer fired): the same session finishes.
    let video = client
        .resume_upload(&session, file.path(), |_, _| {})
        .await
        .unwrap();
    assert_eq!(fake.video_bytes(&video.id).unwrap(), bytes);
}

#[tokio::test]
async fn one_401_refreshes_once_and_a_second_is_unauthorized() {
    let fake = FakeYouTube::start().await;
    let (client, source) = client(test_config(&fake, 256 * KIB)).await;
    let (file, bytes) = media_file(700 * KIB, 7);
    let session = client
        .begin_upload(file.path(), &metadata(), "video/mp4")
        .await
        .unwrap();
    let before = source.tokens().await;
    fake.push_fault(Fault::Unauthorized {
        on: RequestKind::Chunk,
    });

    let video = client
        .resume_upload(&session, file.path(), |_, _| {})
        .await
        .unwrap();

    assert_eq!(fake.video_bytes(&video.id).unwrap(), bytes);
    let grants: Vec<String> = fake
        .token_requests()
        .into_iter()
        .map(|t| t.grant_type)
        .collect();
    assert_eq!(grants, ["authorization_code", "refresh_token"]);
    let after = source.tokens().await;
    assert_ne!(after.access_token, before.access_token);
    assert_eq!(after.refresh_token, before.refresh_token);

    // Two 401s in a row: one refresh, then Unauthorized.
    let (file2, _) = media_file(300 * KIB, 8);
    let session2 = client
        .begin_upload(file2.path(), &metadata(), "video/mp4")
        .await
        .unwrap();
    fake.push_fault(Fault::Unauthorized {
        on: RequestKind::StatusQuery,
    });
    fake.push_fault(Fault::Unauthorized {
        on: RequestKind::StatusQuery,
    });
    let result = client
        .resume_upload(&session2, file2.path(), |_, _| {})
        .await;
    assert!(
        matches!(result, Err(YouTubeError::Unauthorized(_))),
        "{result:?}"
    );
    assert_eq!(fake.token_requests().len(), 3);
}

#[tokio::test]
async fn tokens_that_expire_server_side_are_refreshed() {
    let fake = FakeYouTube::start().await;
    let (client, _) = client(test_config(&fake, 256 * KIB)).await;
    let (file, bytes) = media_file(600 * KIB, 9);
    let session = client
        .begin_upload(file.path(), &metadata(), "video/mp4")
        .await
        .unwrap();
    fake.expire_access_tokens();
    let video = client
        .resume_upload(&session, file.path(), |_, _| {})
        .await
        .unwrap();
    assert_eq!(fake.video_bytes(&video.id).unwrap(), bytes);
    let rejected = fake
        .requests()
        .into_iter()
        .filter(|r| r.status == Some(401))
        .count();
    assert_eq!(rejected, 1);
}

async fn gone_session_needs_a_new_one(status: u16) {
    let fake = FakeYouTube::start().await;
    let (client, _) = client(test_config(&fake, 256 * KIB)).await;
    let (file, bytes) = media_file(900 * KIB, 10 + status as u64);
    let session = client
        .begin_upload(file.path(), &metadata(), "video/mp4")
        .await
        .unwrap();
    // Let one chunk land, then the session expires.
    let landed = Arc::new(Mutex::new(0));
    let first = {
        let landed = landed.clone();
        let fake_faults = Arc::new(Mutex::new(Some(Fault::SessionGone { status })));
        let fake = &fake;
        client
            .resume_upload(&session, file.path(), move |offset, _| {
                *landed.lock().unwrap() = offset;
                if offset > 0
                    && let Some(f) = fake_faults.lock().unwrap().take()
                {
                    fake.push_fault(f);
                }
            })
            .await
    };
    assert!(
        matches!(first, Err(YouTubeError::SessionGone { status: s }) if s == status),
        "{first:?}"
    );
    assert_eq!(*landed.lock().unwrap(), 256 * 1024);
    assert!(fake.videos().is_empty());
    // Same session again: still gone (no retry loop can revive it).
    assert!(matches!(
        client.query_offset(&session).await,
        Err(YouTubeError::SessionGone { .. })
    ));

    let fresh = client
        .begin_upload(file.path(), &metadata(), "video/mp4")
        .await
        .unwrap();
    assert_ne!(fresh.uri, session.uri);
    let video = client
        .resume_upload(&fresh, file.path(), |_, _| {})
        .await
        .unwrap();
    assert_eq!(fake.sessions_started(), 2);
    assert_eq!(fake.videos().len(), 1, "exactly one video");
    assert_eq!(fake.video_bytes(&video.id).unwrap(), bytes);
    // The new session started from byte 0.
    let ranges = chunk_ranges(&fake);
    assert_eq!(ranges.iter().filter(|r| r.0 == 0).count(), 2);
}

#[tokio::test]
async fn session_404_starts_over_with_exactly_one_video() {
    gone_session_needs_a_new_one(404).await;
}

#[tokio::test]
async fn session_410_starts_over_with_exactly_one_video() {
    gone_session_needs_a_new_one(410).await;
}

#[tokio::test]
async fn resuming_a_completed_session_returns_its_video_without_a_second_one() {
    let fake = FakeYouTube::start().await;
    let (client, _) = client(test_config(&fake, 256 * KIB)).await;
    let (file, _) = media_file(300 * KIB, 20);
    let session = client
        .begin_upload(file.path(), &metadata(), "video/mp4")
        .await
        .unwrap();
    // The final chunk lands but its reply is lost: the connection drops after its last byte.
    let fault = Mutex::new(Some(Fault::DropConnection {
        after_bytes: u64::MAX,
    }));
    let video = client
        .resume_upload(&session, file.path(), |offset, _| {
            if offset > 0
                && let Some(f) = fault.lock().unwrap().take()
            {
                fake.push_fault(f);
            }
        })
        .await
        .unwrap();
    let log = fake.requests();
    let last_chunk = log
        .iter()
        .rposition(|r| r.kind == RequestKind::Chunk)
        .unwrap();
    assert_eq!(
        log[last_chunk].status, None,
        "the final chunk's reply was lost"
    );
    assert_eq!(log[last_chunk + 1].kind, RequestKind::StatusQuery);
    assert_eq!(
        log[last_chunk + 1].status,
        Some(200),
        "the status query returned the video"
    );
    let again = client
        .resume_upload(&session, file.path(), |_, _| {})
        .await
        .unwrap();
    assert_eq!(again, video);
    assert_eq!(
        client.query_offset(&session).await.unwrap(),
        UploadState::Complete(video)
    );
    assert_eq!(fake.videos().len(), 1);
    assert_eq!(fake.sessions_started(), 1);
}

#[tokio::test]
async fn quota_exceeded_waits_until_the_next_pacific_midnight() {
    let fake = FakeYouTube::start().await;
    let (client, _) = client(test_config(&fake, 256 * KIB)).await;
    let (file, _) = media_file(300 * KIB, 21);
    fake.push_fault(Fault::QuotaExceeded {
        on: RequestKind::SessionStart,
    });
    let before = Utc::now();
    let result = client
        .begin_upload(file.path(), &metadata(), "video/mp4")
        .await;
    let after = Utc::now();
    let Err(YouTubeError::QuotaExceeded { resume_at }) = result else {
        panic!("expected QuotaExceeded, got {result:?}")
    };
    // Midnight on a Los Angeles wall clock, after now, at most a (25-hour) day away.
    let local = resume_at.with_timezone(&chrono_tz::America::Los_Angeles);
    assert_eq!((local.hour(), local.minute(), local.second()), (0, 0, 0));
    assert!(resume_at > after);
    assert!(resume_at - before <= chrono::Duration::hours(25));
    // Not retried: one request, no session.
    let starts = fake
        .requests()
        .iter()
        .filter(|r| r.kind == RequestKind::SessionStart)
        .count();
    assert_eq!(starts, 1);
    assert_eq!(fake.sessions_started(), 0);
}

#[tokio::test]
async fn upload_limit_exceeded_waits_a_day() {
    let fake = FakeYouTube::start().await;
    let (client, _) = client(test_config(&fake, 256 * KIB)).await;
    let (file, _) = media_file(300 * KIB, 22);
    fake.push_fault(Fault::UploadLimitExceeded);
    let before = Utc::now();
    let result = client
        .begin_upload(file.path(), &metadata(), "video/mp4")
        .await;
    let after = Utc::now();
    let Err(YouTubeError::UploadLimitExceeded { resume_at }) = result else {
        panic!("expected UploadLimitExceeded, got {result:?}")
    };
    assert!(resume_at >= before + chrono::Duration::hours(24));
    assert!(resume_at <= after + chrono::Duration::hours(24));
    assert_eq!(
        fake.requests()
            .iter()
            .filter(|r| r.kind == RequestKind::SessionStart)
            .count(),
        1
    );
}

#[tokio::test]
async fn bad_metadata_fails_before_any_request_and_server_rejections_are_final() {
    let fake = FakeYouTube::start().await;
    let (client, _) = client(test_config(&fake, 256 * KIB)).await;
    let (file, _) = media_file(300 * KIB, 23);
    let requests_before = fake.requests().len();

    let mut meta = metadata();
    meta.title = "Best <moments>".into();
    meta.publish_at = Some(Utc::now() + chrono::Duration::days(1));
    let result = client.begin_upload(file.path(), &meta, "video/mp4").await;
    let Err(YouTubeError::InvalidMetadata(invalid)) = result else {
        panic!("expected InvalidMetadata, got {result:?}")
    };
    let message = invalid.to_string();
    assert!(message.contains("'<' or '>'"), "{message}");
    assert!(
        message.contains("requires privacy \"private\""),
        "{message}"
    );
    assert_eq!(fake.requests().len(), requests_before, "nothing was sent");

    // Numeric but not a category YouTube assigns: only the server knows.
    let mut meta = metadata();
    meta.category_id = "9999".into();
    let result = client.begin_upload(file.path(), &meta, "video/mp4").await;
    match result {
        Err(YouTubeError::Rejected {
            status: 400,
            reason: Some(reason),
            ..
        }) => {
            assert_eq!(reason, "invalidCategoryId")
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    let starts = fake
        .requests()
        .iter()
        .filter(|r| r.kind == RequestKind::SessionStart)
        .count();
    assert_eq!(starts, 1, "a 400 is not retried");
    assert_eq!(fake.sessions_started(), 0);
}

#[tokio::test]
async fn a_killed_worker_is_resumed_by_a_new_one_with_one_video() {
    let fake = FakeYouTube::start().await;
    let cfg = test_config(&fake, 256 * KIB);
    let tokens = connect(&cfg).await;
    let size = 8 * 256 * KIB + 777;
    let (file, bytes) = media_file(size, 24);

    // Worker 1 opens the session and persists it (here: as JSON) before sending bytes.
    let (worker1, _) = client_with(cfg.clone(), tokens.clone());
    let session = worker1
        .begin_upload(file.path(), &metadata(), "video/mp4")
        .await
        .unwrap();
    let persisted = serde_json::to_string(&session).unwrap();

    let (confirmed_tx, mut confirmed_rx) = tokio::sync::mpsc::unbounded_channel();
    let path = file.path().to_path_buf();
    // Once 512 KiB are confirmed, the next chunk stalls after 100 KiB: the worker is killed with
    // that chunk in flight (and it cannot finish before the kill).
    let fault = Mutex::new(Some(Fault::Stall {
        after_bytes: 100 * 1024,
    }));
    let fake_for_worker = Arc::new(fake);
    let fake = fake_for_worker.clone();
    let upload = tokio::spawn(async move {
        worker1
            .resume_upload(&session, &path, move |offset, _| {
                if offset >= 512 * 1024
                    && let Some(f) = fault.lock().unwrap().take()
                {
                    fake_for_worker.push_fault(f);
                }
                let _ = confirmed_tx.send(offset);
            })
            .await
    });
    while let Some(offset) = confirmed_rx.recv().await {
        if offset >= 512 * 1024 {
            break;
        }
    }
    // Wait until the stalled chunk is on the wire, then kill the worker.
    while !fake
        .requests()
        .iter()
        .any(|r| r.kind == RequestKind::Chunk && r.status.is_none())
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    upload.abort();
    assert!(upload.await.unwrap_err().is_cancelled());
    assert!(fake.pending_faults().is_empty());
    let killed_at = fake.requests().len();

    // Worker 2: a new process with the persisted session and the stored tokens.
    let (worker2, _) = client_with(cfg, tokens);
    let session: UploadSession = serde_json::from_str(&persisted).unwrap();
    let held = fake.session_received(&session.uri).unwrap();
    assert!(held >= 512 * 1024 && held < size as u64);
    assert_eq!(
        worker2.query_offset(&session).await.unwrap(),
        UploadState::Incomplete { offset: held }
    );
    let video = worker2
        .resume_upload(&session, file.path(), |_, _| {})
        .await
        .unwrap();

    assert_eq!(fake.videos().len(), 1);
    assert_eq!(fake.sessions_started(), 1);
    assert_eq!(fake.video_bytes(&video.id).unwrap(), bytes);
    let first_resumed_chunk = fake.requests()[killed_at..]
        .iter()
        .find(|r| r.kind == RequestKind::Chunk)
        .and_then(|r| r.content_range.clone())
        .unwrap();
    assert!(
        first_resumed_chunk.starts_with(&format!("bytes {held}-")),
        "{first_resumed_chunk} does not start at the confirmed byte {held}"
    );
}

#[tokio::test]
async fn resuming_with_another_file_is_refused() {
    let fake = FakeYouTube::start().await;
    let (client, _) = client(test_config(&fake, 256 * KIB)).await;
    let (file, _) = media_file(300 * KIB, 25);
    let (other, _) = media_file(300 * KIB, 26);
    let session = client
        .begin_upload(file.path(), &metadata(), "video/mp4")
        .await
        .unwrap();
    let before = fake.requests().len();
    let result = client
        .resume_upload(&session, other.path(), |_, _| {})
        .await;
    assert!(matches!(result, Err(YouTubeError::File(_))), "{result:?}");
    assert_eq!(fake.requests().len(), before);
    assert_eq!(fake.session_received(&session.uri), Some(0));
}

/// Compile-time check: activities run these futures on a multi-threaded runtime.
#[allow(dead_code)]
fn client_futures_are_send(
    client: &gt_youtube::YouTubeClient,
    session: &UploadSession,
    path: &std::path::Path,
) {
    fn is_send<T: Send>(_: T) {}
    let meta = metadata();
    is_send(client.begin_upload(path, &meta, "video/mp4"));
    is_send(client.query_offset(session));
    is_send(client.resume_upload(session, path, |_, _| {}));
    is_send(client.thumbnails_set("id", bytes::Bytes::new()));
    is_send(client.playlist_items_insert("pl", "id"));
    is_send(client.captions_insert(
        "id",
        "en",
        "n",
        bytes::Bytes::new(),
        gt_youtube::CaptionFormat::Srt,
    ));
    is_send(client.video_status("id"));
}
