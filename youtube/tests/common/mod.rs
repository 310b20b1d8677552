//! Shared setup: a fake YouTube, a user connected through its OAuth flow, generated media.
#![allow(dead_code)]

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use gt_youtube::fake::FakeYouTube;
use gt_youtube::oauth::SCOPE_YOUTUBE;
use gt_youtube::{
    OAuthClient, OAuthTokens, Privacy, RefreshingTokenSource, RetryPolicy, VideoMetadata,
    YouTubeClient, YouTubeConfig,
};

pub const REDIRECT_URI: &str = "http://127.0.0.1:9/auth/youtube/callback";

/// The fake's config with small chunks and short backoffs so faults are cheap to exercise.
pub fn test_config(fake: &FakeYouTube, chunk_size: usize) -> YouTubeConfig {
    YouTubeConfig {
        chunk_size,
        retry: RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(20),
            max_inline_wait: Duration::from_secs(10),
        },
        request_timeout: Duration::from_secs(30),
        ..fake.config()
    }
}

/// Walks the authorization-code flow against the fake as a browser would: the consent URL
/// redirects to the callback with a code, which is exchanged for tokens.
pub async fn connect(cfg: &YouTubeConfig) -> OAuthTokens {
    let state = "csrf-state-123";
    let url = gt_youtube::authorization_url(cfg, REDIRECT_URI, &[SCOPE_YOUTUBE], state).unwrap();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let reply = browser.get(url).send().await.unwrap();
    assert_eq!(reply.status().as_u16(), 302);
    let location = url::Url::parse(reply.headers()["location"].to_str().unwrap()).unwrap();
    let query: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(query["state"], state);
    OAuthClient::new(cfg.clone())
        .unwrap()
        .exchange_code(&query["code"], REDIRECT_URI)
        .await
        .unwrap()
}

/// A client for a freshly connected user, and its token source (to inspect refreshes).
pub async fn client(cfg: YouTubeConfig) -> (YouTubeClient, Arc<RefreshingTokenSource>) {
    let tokens = connect(&cfg).await;
    client_with(cfg, tokens)
}

pub fn client_with(
    cfg: YouTubeConfig,
    tokens: OAuthTokens,
) -> (YouTubeClient, Arc<RefreshingTokenSource>) {
    let source = Arc::new(RefreshingTokenSource::new(
        OAuthClient::new(cfg.clone()).unwrap(),
        tokens,
    ));
    (YouTubeClient::new(cfg, source.clone()).unwrap(), source)
}

/// A file of `size` pseudo-random bytes (xorshift from `seed`): no two chunks alike, so a byte
/// landing at the wrong offset shows.
pub fn media_file(size: usize, seed: u64) -> (tempfile::NamedTempFile, Vec<u8>) {
    let mut x = seed | 1;
    let bytes: Vec<u8> = (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&bytes).unwrap();
    file.flush().unwrap();
    (file, bytes)
}

pub fn metadata() -> VideoMetadata {
    VideoMetadata {
        title: "Stream highlights: a parser in an afternoon".into(),
        description: "Chapters\n0:00 Intro\n0:30 Lexer\n1:10 Parser\n".into(),
        tags: vec!["rust".into(), "live coding".into()],
        category_id: "20".into(),
        privacy: Privacy::Unlisted,
        publish_at: None,
        made_for_kids: false,
        notify_subscribers: false,
        default_language: Some("en".into()),
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub const KIB: usize = 1024;
