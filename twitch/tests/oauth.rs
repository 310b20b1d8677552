//! Twitch's OAuth endpoints against the fake over real HTTP: consent, code exchange, rotating
//! refresh, validate, revoke, client credentials, and the failures callers must tell apart.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use common::*;
use gt_twitch::fake::{Endpoint, FAKE_CLIENT_ID, FaultKind};
use gt_twitch::{OAuthClient, TwitchConfig, TwitchError, authorization_url};

#[tokio::test]
async fn authorization_url_carries_what_twitch_expects() {
    let fake = fake().await;
    let config = fake.config();
    let url = authorization_url(&config, REDIRECT_URI, CHAT_SCOPES, "st&ate 1").unwrap();
    assert_eq!(url.path(), "/oauth2/authorize");
    let q: HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], FAKE_CLIENT_ID);
    assert_eq!(q["redirect_uri"], REDIRECT_URI);
    assert_eq!(q["scope"], "user:read:chat user:bot channel:bot");
    assert_eq!(q["state"], "st&ate 1");
    assert_eq!(q["force_verify"], "true");
    let real = authorization_url(&TwitchConfig::default(), REDIRECT_URI, CHAT_SCOPES, "x").unwrap();
    assert!(
        real.as_str()
            .starts_with("https://id.twitch.tv/oauth2/authorize?"),
        "{real}"
    );
    assert_eq!(TwitchConfig::default().helix_base, "https://api.twitch.tv");
    assert_eq!(
        TwitchConfig::default().eventsub_ws_url,
        "wss://eventsub.wss.twitch.tv/ws"
    );
}

#[tokio::test]
async fn connect_then_validate() {
    let fake = fake().await;
    fake.set_access_token_ttl(Duration::from_secs(600));
    let config = fake.config();
    let before = Utc::now();
    let tokens = connect(&config, CHAT_SCOPES).await;
    assert_eq!(
        tokens.scopes, CHAT_SCOPES,
        "scope array from the token reply"
    );
    let lifetime = tokens.expires_at - before;
    assert!(
        lifetime > chrono::Duration::seconds(595) && lifetime <= chrono::Duration::seconds(601),
        "{lifetime:?}"
    );
    assert_ne!(tokens.access_token, tokens.refresh_token);
    let oauth = OAuthClient::new(config).unwrap();
    let validation = oauth.validate(&tokens.access_token).await.unwrap();
    assert_eq!(validation.client_id, FAKE_CLIENT_ID);
    assert_eq!(validation.login.as_deref(), Some(BROADCASTER_LOGIN));
    assert_eq!(validation.user_id.as_deref(), Some(BROADCASTER_ID));
    assert_eq!(validation.scopes, CHAT_SCOPES);
    assert!(
        (590..=600).contains(&validation.expires_in),
        "{}",
        validation.expires_in
    );
    assert_eq!(fake.granted_scopes(BROADCASTER_ID).len(), 3);
}

#[tokio::test]
async fn refresh_rotates_and_the_old_refresh_token_is_refused() {
    let fake = fake().await;
    let config = fake.config();
    let first = connect(&config, CHAT_SCOPES).await;
    let oauth = OAuthClient::new(config).unwrap();
    let second = oauth.refresh(&first.refresh_token).await.unwrap();
    assert_ne!(
        second.refresh_token, first.refresh_token,
        "Twitch rotates refresh tokens"
    );
    assert_ne!(second.access_token, first.access_token);
    assert_eq!(second.scopes, CHAT_SCOPES);
    let validation = oauth.validate(&second.access_token).await.unwrap();
    assert_eq!(validation.user_id.as_deref(), Some(BROADCASTER_ID));

    // The old one is used up: the user would have to reconnect if that were all we kept.
    let err = oauth.refresh(&first.refresh_token).await.unwrap_err();
    assert!(
        matches!(&err, TwitchError::Reauthorize(m) if m == "Invalid refresh token"),
        "{err:?}"
    );
    assert!(!err.is_transient());
    // The new one works, once.
    let third = oauth.refresh(&second.refresh_token).await.unwrap();
    assert!(matches!(
        oauth.refresh(&second.refresh_token).await,
        Err(TwitchError::Reauthorize(_))
    ));
    oauth.validate(&third.access_token).await.unwrap();
}

#[tokio::test]
async fn invalidated_tokens_are_told_apart() {
    let fake = fake().await;
    let config = fake.config();
    let tokens = connect(&config, CHAT_SCOPES).await;
    let oauth = OAuthClient::new(config).unwrap();
    fake.invalidate_access_tokens(BROADCASTER_ID);
    let err = oauth.validate(&tokens.access_token).await.unwrap_err();
    assert!(
        matches!(&err, TwitchError::Unauthorized(m) if m == "invalid access token"),
        "{err:?}"
    );
    // The refresh token still works: a 401 means "refresh", not "reconnect".
    let fresh = oauth.refresh(&tokens.refresh_token).await.unwrap();
    oauth.validate(&fresh.access_token).await.unwrap();
    fake.invalidate_refresh_tokens(BROADCASTER_ID);
    assert!(matches!(
        oauth.refresh(&fresh.refresh_token).await,
        Err(TwitchError::Reauthorize(_))
    ));
    assert!(matches!(
        oauth.validate("made-up-token").await,
        Err(TwitchError::Unauthorized(_))
    ));
}

#[tokio::test]
async fn revoke_ends_the_authorization() {
    let fake = fake().await;
    let config = fake.config();
    let tokens = connect(&config, CHAT_SCOPES).await;
    let oauth = OAuthClient::new(config).unwrap();
    oauth.revoke(&tokens.access_token).await.unwrap();
    assert!(matches!(
        oauth.validate(&tokens.access_token).await,
        Err(TwitchError::Unauthorized(_))
    ));
    assert!(matches!(
        oauth.refresh(&tokens.refresh_token).await,
        Err(TwitchError::Reauthorize(_))
    ));
    // Revoking again is not an error: the token is gone either way.
    oauth.revoke(&tokens.access_token).await.unwrap();
}

#[tokio::test]
async fn codes_work_once_and_only_with_their_redirect_uri() {
    let fake = fake().await;
    let config = fake.config();
    let oauth = OAuthClient::new(config.clone()).unwrap();
    let query = consent(&config, CHAT_SCOPES, "s").await;
    assert_eq!(query["scope"], "user:read:chat user:bot channel:bot");
    let err = oauth
        .exchange_code(&query["code"], "http://127.0.0.1:9/elsewhere")
        .await
        .unwrap_err();
    assert!(
        matches!(err, TwitchError::Rejected { status: 400, .. }),
        "{err:?}"
    );
    // The failed attempt consumed the code, as a real server may.
    let err = oauth
        .exchange_code(&query["code"], REDIRECT_URI)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TwitchError::Rejected { status: 400, message } if message == "Invalid authorization code"),
        "{err:?}"
    );
}

#[tokio::test]
async fn consent_denied_and_unknown_scopes() {
    let fake = fake().await;
    let config = fake.config();
    fake.deny_consent();
    let query = consent(&config, CHAT_SCOPES, "st").await;
    assert_eq!(query["error"], "access_denied");
    assert_eq!(query["state"], "st");
    assert!(!query.contains_key("code"));
    let url = authorization_url(
        &config,
        REDIRECT_URI,
        &["user:read:chat", "chat:everything"],
        "s",
    )
    .unwrap();
    let reply = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 400);
    assert!(reply.text().await.unwrap().contains("chat:everything"));
}

#[tokio::test]
async fn app_token_by_client_credentials() {
    let fake = fake().await;
    let oauth = OAuthClient::new(fake.config()).unwrap();
    let app = oauth.app_token().await.unwrap();
    assert!(app.expires_at > Utc::now() + chrono::Duration::days(30));
    let validation = oauth.validate(&app.access_token).await.unwrap();
    assert_eq!(validation.client_id, FAKE_CLIENT_ID);
    assert_eq!(validation.user_id, None);
    assert_eq!(validation.login, None);
    assert!(!format!("{app:?}").contains(&app.access_token));

    let wrong_secret = OAuthClient::new(TwitchConfig {
        client_secret: "nope".into(),
        ..fake.config()
    })
    .unwrap();
    let err = wrong_secret.app_token().await.unwrap_err();
    assert!(
        matches!(err, TwitchError::Rejected { status: 403, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn transient_failures_are_retried_inside_the_call() {
    let fake = fake().await;
    let config = fake.config();
    let tokens = connect(&config, CHAT_SCOPES).await;
    let oauth = OAuthClient::new(config.clone()).unwrap();

    // Two 503s, then the real answer.
    fake.push_fault(Endpoint::Token, FaultKind::ServerError { status: 503 }, 2);
    let refreshed = oauth.refresh(&tokens.refresh_token).await.unwrap();
    let token_calls: Vec<Option<u16>> = fake
        .requests()
        .iter()
        .filter(|r| r.endpoint == Endpoint::Token)
        .map(|r| r.status)
        .collect();
    assert_eq!(
        token_calls[token_calls.len() - 3..],
        [Some(503), Some(503), Some(200)]
    );

    // A dropped connection is retried too.
    fake.push_fault(Endpoint::Validate, FaultKind::DropConnection, 1);
    oauth.validate(&refreshed.access_token).await.unwrap();

    // More failures than attempts: the caller gets a transient error to retry durably.
    fake.push_fault(
        Endpoint::Validate,
        FaultKind::ServerError { status: 500 },
        3,
    );
    let err = oauth.validate(&refreshed.access_token).await.unwrap_err();
    assert!(
        matches!(err, TwitchError::Transient(_)) && err.is_transient(),
        "{err:?}"
    );

    // 429 whose reset is further than the inline limit: RateLimited with the wait.
    fake.push_fault(
        Endpoint::Validate,
        FaultKind::RateLimited {
            reset_in: Duration::from_secs(30),
        },
        1,
    );
    let err = oauth.validate(&refreshed.access_token).await.unwrap_err();
    assert!(
        matches!(err, TwitchError::RateLimited { retry_after, .. }
            if retry_after >= Duration::from_secs(29) && retry_after <= Duration::from_secs(31)),
        "{err:?}"
    );
}
