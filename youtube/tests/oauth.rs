//! Google's authorization-code flow against the fake's authorize and token endpoints.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use common::*;
use gt_youtube::fake::{FAKE_CLIENT_ID, FakeYouTube};
use gt_youtube::oauth::{SCOPE_UPLOAD, SCOPE_YOUTUBE};
use gt_youtube::{OAuthClient, TokenSource, YouTubeError, authorization_url};

#[tokio::test]
async fn authorization_url_asks_for_offline_access_with_consent() {
    let fake = FakeYouTube::start().await;
    let cfg = fake.config();
    let url = authorization_url(
        &cfg,
        REDIRECT_URI,
        &[SCOPE_UPLOAD, SCOPE_YOUTUBE],
        "s t&ate",
    )
    .unwrap();
    let q: HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], FAKE_CLIENT_ID);
    assert_eq!(q["redirect_uri"], REDIRECT_URI);
    assert_eq!(q["scope"], format!("{SCOPE_UPLOAD} {SCOPE_YOUTUBE}"));
    assert_eq!(q["state"], "s t&ate");
    assert_eq!(q["access_type"], "offline");
    assert_eq!(q["prompt"], "consent");
    assert_eq!(q["include_granted_scopes"], "true");
    assert!(authorization_url(&cfg, REDIRECT_URI, &[], "x").is_err());
    // Google's real endpoint by default.
    let google = authorization_url(
        &gt_youtube::YouTubeConfig::default(),
        REDIRECT_URI,
        &[SCOPE_UPLOAD],
        "x",
    )
    .unwrap();
    assert!(
        google
            .as_str()
            .starts_with("https://accounts.google.com/o/oauth2/v2/auth?")
    );
}

#[tokio::test]
async fn code_exchange_refresh_and_invalid_grant() {
    let fake = FakeYouTube::start().await;
    fake.set_access_token_ttl(Duration::from_secs(120));
    let cfg = fake.config();
    let before = Utc::now();
    let tokens = connect(&cfg).await;
    assert!(tokens.access_token.starts_with("ya29."));
    assert!(tokens.refresh_token.starts_with("1//"));
    let lifetime = tokens.expires_at - before;
    assert!(
        lifetime > chrono::Duration::seconds(115) && lifetime <= chrono::Duration::seconds(121),
        "{lifetime:?}"
    );
    assert!(
        !format!("{tokens:?}").contains(&tokens.refresh_token),
        "Debug redacts tokens"
    );

    let oauth = OAuthClient::new(cfg.clone()).unwrap();
    let refreshed = oauth.refresh(&tokens.refresh_token).await.unwrap();
    assert_ne!(refreshed.access_token, tokens.access_token);
    assert_eq!(
        refreshed.refresh_token, tokens.refresh_token,
        "Google keeps the refresh token"
    );

    // A code works once.
    let url = authorization_url(&cfg, REDIRECT_URI, &[SCOPE_YOUTUBE], "st").unwrap();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let location = browser.get(url).send().await.unwrap().headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    let code = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    oauth.exchange_code(&code, REDIRECT_URI).await.unwrap();
    assert!(matches!(
        oauth.exchange_code(&code, REDIRECT_URI).await,
        Err(YouTubeError::Reauthorize(_))
    ));

    // Revoked: invalid_grant, once (never retried), and the message says what to do.
    fake.revoke_refresh_token(&tokens.refresh_token);
    let requests_before = fake.token_requests().len();
    let err = oauth.refresh(&tokens.refresh_token).await.unwrap_err();
    assert!(matches!(err, YouTubeError::Reauthorize(_)), "{err:?}");
    assert!(err.to_string().contains("reconnect YouTube"), "{err}");
    assert_eq!(fake.token_requests().len(), requests_before + 1);
    assert_eq!(fake.token_requests().last().unwrap().status, 400);
    assert_eq!(err.retry_at(Utc::now()), None);

    let grants: Vec<String> = fake
        .token_requests()
        .into_iter()
        .map(|t| t.grant_type)
        .collect();
    assert_eq!(
        grants,
        [
            "authorization_code",
            "refresh_token",
            "authorization_code",
            "authorization_code",
            "refresh_token"
        ]
    );

    // A wrong client secret is a configuration problem, not a reconnect.
    let mut wrong = cfg.clone();
    wrong.client_secret = "nope".into();
    let err = OAuthClient::new(wrong)
        .unwrap()
        .refresh(&refreshed.refresh_token)
        .await
        .unwrap_err();
    assert!(
        matches!(err, YouTubeError::Rejected { status: 401, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_revoked_grant_surfaces_from_an_api_call_as_reauthorize() {
    let fake = FakeYouTube::start().await;
    let cfg = test_config(&fake, 256 * KIB);
    let (client, source) = client(cfg).await;
    let tokens = source.tokens().await;
    fake.revoke_refresh_token(&tokens.refresh_token);
    fake.expire_access_tokens();
    let (file, _) = media_file(300 * KIB, 50);
    let err = client
        .begin_upload(file.path(), &metadata(), "video/mp4")
        .await
        .unwrap_err();
    assert!(matches!(err, YouTubeError::Reauthorize(_)), "{err:?}");
    assert_eq!(fake.sessions_started(), 0);
    // The token source refreshes on its own shortly before expiry, too.
    assert_eq!(
        source.access_token(false).await.unwrap(),
        tokens.access_token
    );
}
