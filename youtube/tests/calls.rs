//! The calls after an upload: thumbnail, playlist item, captions, processing status.

mod common;

use bytes::Bytes;
use common::*;
use gt_youtube::fake::{FakeYouTube, Fault, RequestKind};
use gt_youtube::{
    CaptionFormat, ProcessingStatus, UploadStatus, Video, YouTubeClient, YouTubeError,
};

async fn uploaded(fake: &FakeYouTube) -> (YouTubeClient, Video) {
    let (client, _) = client(test_config(fake, 256 * KIB)).await;
    let (file, _) = media_file(300 * KIB, 40);
    let session = client
        .begin_upload(file.path(), &metadata(), "video/mp4")
        .await
        .unwrap();
    let video = client
        .resume_upload(&session, file.path(), |_, _| {})
        .await
        .unwrap();
    (client, video)
}

/// A JPEG written by ffmpeg when it is installed, else the smallest valid baseline JPEG
/// structure (SOI … EOI); the fake stores bytes, it does not decode them.
fn jpeg() -> Bytes {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("thumb.jpg");
    let made = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=128x72:rate=1",
            "-frames:v",
            "1",
        ])
        .arg(&path)
        .status()
        .is_ok_and(|s| s.success());
    if made {
        Bytes::from(std::fs::read(&path).unwrap())
    } else {
        Bytes::from_static(&[
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0,
            0, 0xFF, 0xD9,
        ])
    }
}

#[tokio::test]
async fn thumbnail_403_is_its_own_error_and_a_later_set_is_recorded() {
    let fake = FakeYouTube::start().await;
    let (client, video) = uploaded(&fake).await;
    let image = jpeg();

    fake.push_fault(Fault::ThumbnailForbidden);
    let result = client.thumbnails_set(&video.id, image.clone()).await;
    assert!(
        matches!(result, Err(YouTubeError::ThumbnailForbidden(_))),
        "{result:?}"
    );
    assert!(fake.thumbnails().is_empty());
    let attempts = fake
        .requests()
        .iter()
        .filter(|r| r.kind == RequestKind::ThumbnailSet)
        .count();
    assert_eq!(attempts, 1, "a 403 is not retried");

    client
        .thumbnails_set(&video.id, image.clone())
        .await
        .unwrap();
    let thumbnails = fake.thumbnails();
    assert_eq!(thumbnails.len(), 1);
    assert_eq!(thumbnails[0].video_id, video.id);
    assert_eq!(thumbnails[0].content_type, "image/jpeg");
    assert_eq!(thumbnails[0].bytes, image);

    // Not an image, or too large: refused here, nothing sent.
    let before = fake.requests().len();
    assert!(matches!(
        client
            .thumbnails_set(&video.id, Bytes::from_static(b"GIF89a"))
            .await,
        Err(YouTubeError::File(_))
    ));
    let mut big = image.to_vec();
    big.resize(gt_youtube::MAX_THUMBNAIL_BYTES + 1, 0);
    assert!(matches!(
        client.thumbnails_set(&video.id, Bytes::from(big)).await,
        Err(YouTubeError::File(_))
    ));
    assert_eq!(fake.requests().len(), before);
}

#[tokio::test]
async fn playlist_item_is_recorded_and_an_unknown_video_is_rejected() {
    let fake = FakeYouTube::start().await;
    let (client, video) = uploaded(&fake).await;
    let item_id = client
        .playlist_items_insert("PLseries123", &video.id)
        .await
        .unwrap();
    let items = fake.playlist_items();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].id, item_id);
    assert_eq!(items[0].playlist_id, "PLseries123");
    assert_eq!(items[0].video_id, video.id);

    // A retried step (the first reply was lost) finds the item instead of adding it twice; the
    // same video goes into another playlist normally.
    let again = client
        .playlist_items_insert("PLseries123", &video.id)
        .await
        .unwrap();
    assert_eq!(again, item_id);
    assert_eq!(fake.playlist_items().len(), 1);
    client
        .playlist_items_insert("PLother", &video.id)
        .await
        .unwrap();
    assert_eq!(fake.playlist_items().len(), 2);
    let inserts = fake
        .requests()
        .iter()
        .filter(|r| r.kind == RequestKind::PlaylistItemInsert)
        .count();
    assert_eq!(inserts, 2);

    match client
        .playlist_items_insert("PLseries123", "nosuchvideo")
        .await
    {
        Err(YouTubeError::Rejected {
            status: 404,
            reason,
            ..
        }) => {
            assert_eq!(reason.as_deref(), Some("videoNotFound"))
        }
        other => panic!("expected a 404 rejection, got {other:?}"),
    }
    assert_eq!(fake.playlist_items().len(), 2);
}

#[tokio::test]
async fn captions_go_up_as_multipart_related_and_survive_a_503() {
    let fake = FakeYouTube::start().await;
    let (client, video) = uploaded(&fake).await;
    // Content that looks like multipart framing must arrive intact.
    let vtt = "WEBVTT\n\n00:00:00.000 --> 00:00:02.500\n-- Hello --\r\n\r\n--boundary?\n\n00:00:02.500 --> 00:00:04.000\nÇa va ?\n";
    fake.push_fault(Fault::ServerError {
        on: RequestKind::CaptionInsert,
        status: 503,
        retry_after: None,
    });
    let caption_id = client
        .captions_insert(
            &video.id,
            "en",
            "English (auto)",
            Bytes::from(vtt),
            CaptionFormat::WebVtt,
        )
        .await
        .unwrap();
    let captions = fake.captions();
    assert_eq!(captions.len(), 1);
    assert_eq!(captions[0].id, caption_id);
    assert_eq!(captions[0].video_id, video.id);
    assert_eq!(captions[0].language, "en");
    assert_eq!(captions[0].name, "English (auto)");
    assert_eq!(captions[0].content_type, "text/vtt");
    assert_eq!(captions[0].bytes, Bytes::from(vtt));
    let attempts = fake
        .requests()
        .iter()
        .filter(|r| r.kind == RequestKind::CaptionInsert)
        .count();
    assert_eq!(attempts, 2);

    let srt = "1\n00:00:00,000 --> 00:00:02,500\nHello\n";
    client
        .captions_insert(
            &video.id,
            "fr",
            "Français",
            Bytes::from(srt),
            CaptionFormat::Srt,
        )
        .await
        .unwrap();
    let captions = fake.captions();
    assert_eq!(captions[1].content_type, "application/x-subrip");
    assert_eq!(captions[1].bytes, Bytes::from(srt));

    // Inserting the same track again (a retried step) returns the existing one.
    let again = client
        .captions_insert(
            &video.id,
            "en",
            "English (auto)",
            Bytes::from(vtt),
            CaptionFormat::WebVtt,
        )
        .await
        .unwrap();
    assert_eq!(again, caption_id);
    assert_eq!(fake.captions().len(), 2);
}

#[tokio::test]
async fn processing_status_is_polled_until_final() {
    let fake = FakeYouTube::start().await;
    let (client, video) = uploaded(&fake).await;
    let first = client.video_status(&video.id).await.unwrap();
    assert_eq!(first.upload_status, UploadStatus::Uploaded);
    assert_eq!(first.processing_status, Some(ProcessingStatus::Processing));
    assert!(!first.is_final());
    let second = client.video_status(&video.id).await.unwrap();
    assert_eq!(second.upload_status, UploadStatus::Processed);
    assert_eq!(second.processing_status, Some(ProcessingStatus::Succeeded));
    assert!(second.is_final());
    assert!(matches!(
        client.video_status("nosuchvideo").await,
        Err(YouTubeError::Rejected { status: 404, .. })
    ));
    assert_eq!(
        video.url(),
        format!("https://www.youtube.com/watch?v={}", video.id)
    );
}

#[tokio::test]
async fn quota_exceeded_on_other_calls_is_the_same_outcome() {
    let fake = FakeYouTube::start().await;
    let (client, video) = uploaded(&fake).await;
    fake.push_fault(Fault::QuotaExceeded {
        on: RequestKind::PlaylistItemInsert,
    });
    assert!(matches!(
        client.playlist_items_insert("PL1", &video.id).await,
        Err(YouTubeError::QuotaExceeded { .. })
    ));
    assert!(fake.playlist_items().is_empty());
}
