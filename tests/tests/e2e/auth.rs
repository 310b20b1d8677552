//! JWT verification against a JWKS served over HTTP (as Cognito serves it).

use std::time::Duration;

use gt_api::auth::{AuthConfig, Claims, KeySource, LocalSigner};
use gt_tests::{AppOptions, TestApp, read};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

const ISSUER: &str = "https://cognito-idp.local/pool";
const AUDIENCE: &str = "app-client-id";

fn signer() -> LocalSigner {
    let dir = tempfile::tempdir().unwrap();
    LocalSigner::load_or_create(&dir.path().join("k.pem"), ISSUER, AUDIENCE).unwrap()
}

/// Serves `signer`'s public key as a JWKS on a free port; returns the URL.
async fn serve_jwks(signer: &LocalSigner) -> String {
    let jwks = signer.jwks();
    let app = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn claims(sub: &str) -> Claims {
    let now = jsonwebtoken::get_current_timestamp();
    Claims {
        sub: sub.into(),
        iss: ISSUER.into(),
        exp: now + 600,
        iat: Some(now),
        nbf: None,
        aud: Some(json!(AUDIENCE)),
        client_id: None,
        token_use: Some("id".into()),
        email: None,
    }
}

#[tokio::test]
async fn tokens_are_verified_against_a_served_jwks() {
    let trusted = signer();
    let jwks_url = serve_jwks(&trusted).await;
    let app = TestApp::start_with(AppOptions {
        cpu_worker: false,
        gpu_worker: false,
        auth: Some(AuthConfig {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            keys: KeySource::Url(jwks_url),
        }),
        ..Default::default()
    })
    .await
    .unwrap();

    let request = |auth: Option<String>| {
        let app = &app;
        async move {
            let mut req = app.http.get(format!("{}/records/streams", app.base));
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            read(req.send().await.unwrap()).await
        }
    };
    let good = trusted.sign(&claims("carol")).unwrap();

    // The front end sends the raw id token; other clients use Bearer.
    assert_eq!(request(Some(good.clone())).await.0, 200);
    assert_eq!(request(Some(format!("Bearer {good}"))).await.0, 200);
    // Cognito access tokens carry client_id instead of aud.
    let mut access = claims("carol");
    access.aud = None;
    access.client_id = Some(AUDIENCE.into());
    access.token_use = Some("access".into());
    assert_eq!(request(Some(trusted.sign(&access).unwrap())).await.0, 200);

    let expired = {
        let mut c = claims("carol");
        c.exp = jsonwebtoken::get_current_timestamp() - 3600;
        trusted.sign(&c).unwrap()
    };
    let wrong_aud = {
        let mut c = claims("carol");
        c.aud = Some(json!("someone-else"));
        trusted.sign(&c).unwrap()
    };
    let wrong_iss = {
        let mut c = claims("carol");
        c.iss = "https://evil.example".into();
        trusted.sign(&c).unwrap()
    };
    // Same claims, same kid, different private key: the signature check must catch it.
    let forged = {
        let attacker = signer();
        let mut parts: Vec<String> = attacker
            .sign(&claims("carol"))
            .unwrap()
            .split('.')
            .map(str::to_string)
            .collect();
        let trusted_header = good.split('.').next().unwrap().to_string();
        parts[0] = trusted_header;
        parts.join(".")
    };
    let unknown_key = signer().sign(&claims("carol")).unwrap();
    let now = jsonwebtoken::get_current_timestamp();
    let not_yet = {
        let mut c = claims("carol");
        c.nbf = Some(now + 3600);
        c.exp = now + 7200;
        trusted.sign(&c).unwrap()
    };
    let from_the_future = {
        let mut c = claims("carol");
        c.iat = Some(now + 3600);
        c.exp = now + 7200;
        trusted.sign(&c).unwrap()
    };
    let forever = {
        let mut c = claims("carol");
        c.exp = now + 365 * 24 * 3600;
        trusted.sign(&c).unwrap()
    };
    let nul_subject = trusted.sign(&claims("car\0ol")).unwrap();
    let hs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims("carol"),
        &EncodingKey::from_secret(b"guessable"),
    )
    .unwrap();

    for (token, want) in [
        (None, "missing Authorization header"),
        (Some("".to_string()), "empty token"),
        (Some("not-a-jwt".to_string()), "malformed token"),
        (Some(expired), "token expired"),
        (Some(wrong_aud), "another audience"),
        (Some(wrong_iss), "unexpected issuer"),
        (Some(forged), "invalid token signature"),
        (Some(unknown_key), "unknown key"),
        (Some(hs256), "RS256 required"),
        (Some(not_yet), "not valid yet"),
        (Some(from_the_future), "issued in the future"),
        (Some(forever), "lives longer than allowed"),
        (Some(nul_subject), "subject contains NUL"),
    ] {
        let (status, body) = request(token.clone()).await;
        assert_eq!(status, 401, "{token:?}: {body}");
        let msg = body["message"].as_str().unwrap();
        assert!(msg.contains(want), "{want:?} not in {msg:?}");
    }
    // Unauthenticated writes change nothing.
    let resp = app
        .http
        .post(format!("{}/records/streams", app.base))
        .json(&json!({"title": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let (_, page) = request(Some(good)).await;
    assert_eq!(page["items"], json!([]));
}

#[tokio::test]
async fn local_mode_publishes_its_keys_and_tokens_survive_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("jwt-key.pem");
    let first = LocalSigner::load_or_create(&key, "iss", "aud").unwrap();
    let token = first.mint("local-user", Duration::from_secs(60)).unwrap();
    let again = LocalSigner::load_or_create(&key, "iss", "aud").unwrap();
    assert_eq!(
        first.jwks(),
        again.jwks(),
        "the key is reused, not regenerated"
    );
    let mode = std::fs::metadata(&key).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );
    let auth = gt_api::auth::Authenticator::new(AuthConfig::local(&again))
        .await
        .unwrap();
    assert_eq!(auth.verify(&token).await.unwrap().user_id, "local-user");
}
