//! What connecting any provider shares: where the browser returns to, the scopes a client may
//! ask for, and the authorization's random `state`.

use base64::Engine;
use rand::RngCore;

use crate::error::{ApiError, ApiResult};

/// Longest URL accepted for a return address or an authorization code.
pub const MAX_URL_CHARS: usize = 2000;

/// The front end's return address: an http(s) URL of reasonable length.
pub fn return_url(redirect_uri: &str) -> ApiResult<url::Url> {
    url::Url::parse(redirect_uri)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && redirect_uri.len() <= MAX_URL_CHARS)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "redirect_uri must be an http(s) URL of at most {MAX_URL_CHARS} characters"
            ))
        })
}

/// Refuses a scope this server does not ask for.
pub fn check_scopes(requested: &[String], allowed: &[&str]) -> ApiResult<()> {
    match requested.iter().find(|s| !allowed.contains(&s.as_str())) {
        Some(bad) => Err(ApiError::BadRequest(format!(
            "scope {bad:?} is not one this server asks for (allowed: {})",
            allowed.join(" ")
        ))),
        None => Ok(()),
    }
}

/// A fresh authorization `state`: 256 random bits, URL-safe.
pub fn new_state() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
