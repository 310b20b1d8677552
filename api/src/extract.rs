//! Request extractors whose rejections are `ApiError`s (JSON `{message}`), unlike axum's
//! built-in ones which answer in plain text.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body. Rejects a non-JSON content type (415), a body over the configured
/// limit (413) and malformed JSON, text with NUL, or the wrong shape (400).
pub struct JsonBody<T>(pub T);

/// A JSON object request body for a typed request: like [`JsonBody`], and an array or scalar is
/// refused too (serde would read a struct from an array of its fields).
pub struct JsonObject<T>(pub T);

impl<S, T> FromRequest<S> for JsonObject<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let JsonBody(value) = JsonBody::<serde_json::Value>::from_request(req, state).await?;
        if !value.is_object() {
            return Err(ApiError::BadRequest(
                "invalid request body: expected a JSON object".into(),
            ));
        }
        serde_json::from_value(value)
            .map(JsonObject)
            .map_err(|e| ApiError::BadRequest(format!("invalid request body: {e}")))
    }
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ct) = req.headers().get(CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("");
            let mime = ct.split(';').next().unwrap_or("").trim();
            if !(mime == "application/json" || mime.ends_with("+json")) {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "expected Content-Type application/json, got {ct:?}"
                )));
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(format!("request body is too large: {}", e.body_text()))
            } else {
                ApiError::BadRequest(format!("cannot read request body: {}", e.body_text()))
            }
        })?;
        if bytes.is_empty() {
            return Err(ApiError::BadRequest(
                "request body is empty; a JSON document is required".into(),
            ));
        }
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::BadRequest(format!("request body is not valid JSON: {e}")))?;
        if let Some(at) = nul_in(&value, "") {
            return Err(ApiError::BadRequest(format!(
                "request body: text must not contain NUL characters (at {})",
                if at.is_empty() { "the top level" } else { &at }
            )));
        }
        let body = serde_json::from_value(value)
            .map_err(|e| ApiError::BadRequest(format!("invalid request body: {e}")))?;
        Ok(JsonBody(body))
    }
}

/// Where in `v` (a JSON pointer) a string or key contains NUL, which Postgres cannot store.
pub fn nul_in(v: &serde_json::Value, at: &str) -> Option<String> {
    match v {
        serde_json::Value::String(s) if s.contains('\0') => Some(at.to_string()),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, x)| nul_in(x, &format!("{at}/{i}"))),
        serde_json::Value::Object(m) => m.iter().find_map(|(k, x)| {
            let here = format!("{at}/{}", k.replace('\0', "\\0"));
            if k.contains('\0') {
                Some(here)
            } else {
                nul_in(x, &here)
            }
        }),
        _ => None,
    }
}

/// Text that must not contain NUL (Postgres cannot store it): a clear 400 naming `what`.
pub fn reject_nul(what: &str, text: &str) -> Result<(), ApiError> {
    if text.contains('\0') {
        return Err(ApiError::BadRequest(format!(
            "{what} must not contain NUL characters"
        )));
    }
    Ok(())
}

/// Path parameters, with a JSON rejection.
pub struct PathParams<T>(pub T);

impl<S, T> FromRequestParts<S> for PathParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // A NUL can only reach a path as `%00` (raw NUL bytes never parse as HTTP): refuse it
        // before any lookup.
        if parts.uri.path().to_ascii_lowercase().contains("%00") {
            return Err(ApiError::BadRequest(
                "a path segment must not contain NUL characters".into(),
            ));
        }
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| PathParams(p.0))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// The raw query string parsed into (key, value) pairs, in order.
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let pairs = parts
            .uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let pairs: Vec<(String, String)> = pairs;
        for (k, v) in &pairs {
            reject_nul("a query parameter", k)?;
            reject_nul(&format!("query parameter '{k}'"), v)?;
        }
        Ok(QueryPairs(pairs))
    }
}
impl QueryPairs {
    /// The single value of `key`; repeating it is an error (ambiguous).
    pub fn one(&self, key: &str) -> Result<Option<&str>, ApiError> {
        let mut values = self
            .0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::BadRequest(format!(
                "query parameter '{key}' given more than once"
            )));
        }
        Ok(first)
    }
}
