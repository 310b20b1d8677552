//! Previews for the review player: `GET /playlist/{stream_id}.m3u8` (every clip's HLS segments
//! in stream order, a discontinuity before each clip, like the original) and `GET /media/{key}`
//! (the artifacts: segments, thumbnails, speech audio).
//!
//! Players fetch segments without headers, so the playlist's segment URLs are signed
//! (HMAC-SHA256 over the owner, the key and the expiry). A link is only ever made for a key under
//! the caller's own prefix (`{owner}/…`), and `/media` checks the signature against the owner
//! the key names, so a link can never serve another user's file. Media can also be fetched
//! with a token (header or `?token=`) for keys under the caller's own prefix.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gt_store::catalog::{STREAMS, VIDEO_CLIPS};
use gt_types::records::VideoClip;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tower::ServiceExt;

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::{PathParams, QueryPairs};

/// How long signed segment URLs stay valid.
pub const SIGNED_URL_TTL_S: u64 = 12 * 3600;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/playlist/{file}", get(playlist))
        .route("/media/{*key}", get(media))
}

/// Signs media URLs: `sig = HMAC(secret, owner "\n" key "\n" exp)`.
#[derive(Clone)]
pub struct MediaSigner {
    secret: Vec<u8>,
}

/// The owner segment a blob key starts with.
fn owner_of(key: &str) -> &str {
    key.split('/').next().unwrap_or("")
}

impl MediaSigner {
    pub fn new(secret: Vec<u8>) -> Self {
        Self { secret }
    }

    fn mac(&self, owner: &str, key: &str, exp: u64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("any key length");
        mac.update(owner.as_bytes());
        mac.update(b"\n");
        mac.update(key.as_bytes());
        mac.update(b"\n");
        mac.update(exp.to_string().as_bytes());
        mac
    }

    /// `/media/{key}?exp=..&sig=..` for `user_id`'s own key; `None` for a key outside the
    /// user's prefix (never signed, whatever a record says).
    pub fn url(&self, user_id: &str, key: &str, exp: u64) -> Option<String> {
        let owner = gt_store::user_segment(user_id);
        if owner_of(key) != owner || gt_store::blob::check_key(key).is_err() {
            return None;
        }
        let sig = URL_SAFE_NO_PAD.encode(self.mac(&owner, key, exp).finalize().into_bytes());
        let path: String = key
            .split('/')
            .map(|s| {
                url::form_urlencoded::byte_serialize(s.as_bytes())
                    .collect::<String>()
                    .replace('+', "%20")
            })
            .collect::<Vec<_>>()
            .join("/");
        Some(format!("/media/{path}?exp={exp}&sig={sig}"))
    }

    /// Whether `sig` signs `key` (for the owner the key names) until `exp`, at `now`.
    pub fn verify(&self, key: &str, exp: u64, sig: &str, now: u64) -> bool {
        if exp < now {
            return false;
        }
        let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else {
            return false;
        };
        // verify_slice compares in constant time.
        self.mac(owner_of(key), key, exp).verify_slice(&sig).is_ok()
    }
}

/// The Authorization header, read out before any await (a request body is not `Sync`).
fn authorization(req: &Request) -> ApiResult<Option<String>> {
    req.headers()
        .get(header::AUTHORIZATION)
        .map(|h| {
            h.to_str()
                .map(str::to_string)
                .map_err(|_| ApiError::Unauthorized("malformed Authorization header".into()))
        })
        .transpose()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The caller from the Authorization header or a `token` query parameter (players and `<img>`
/// tags cannot send headers).
async fn caller(
    state: &AppState,
    authorization: Option<String>,
    query: &QueryPairs,
) -> ApiResult<AuthUser> {
    if let Some(h) = authorization {
        return state.auth.verify_header(&h).await;
    }
    match query.one("token")? {
        Some(t) => state.auth.verify(t).await,
        None => Err(ApiError::Unauthorized(
            "missing Authorization header or token parameter".into(),
        )),
    }
}

async fn playlist(
    State(state): State<AppState>,
    PathParams(file): PathParams<String>,
    query: QueryPairs,
    req: Request,
) -> ApiResult<Response> {
    let user = caller(&state, authorization(&req)?, &query).await?;
    let stream_id = file.strip_suffix(".m3u8").ok_or_else(|| {
        ApiError::NotFound(format!("no playlist {file:?}: expected {{stream_id}}.m3u8"))
    })?;
    state
        .records
        .get(&user.user_id, &STREAMS, stream_id)
        .await?;
    let mut clips: Vec<VideoClip> = state
        .records
        .related(&user.user_id, &VIDEO_CLIPS, "stream_id", stream_id)
        .await?
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    clips.sort_by(|a, b| {
        a.start_time
            .unwrap_or(f64::MAX)
            .total_cmp(&b.start_time.unwrap_or(f64::MAX))
            .then_with(|| a.key.cmp(&b.key))
    });
    let signer = &state.media_signer;
    let exp = now() + SIGNED_URL_TTL_S;
    let mut body = String::new();
    let mut longest = 1.0f64;
    let mut count = 0;
    for clip in &clips {
        let Some(preview) = &clip.preview else {
            continue;
        };
        if preview.segments.is_empty() {
            continue;
        }
        // Segment keys are written by our own analysis under the owner's prefix; a key that is
        // not is never signed (the whole clip is left out).
        let Some(urls) = preview
            .segments
            .iter()
            .map(|s| signer.url(&user.user_id, &s.key, exp))
            .collect::<Option<Vec<String>>>()
        else {
            tracing::warn!(clip = %clip.key, "preview keys outside the owner's prefix; not signed");
            continue;
        };
        body.push_str("#EXT-X-DISCONTINUITY\n");
        for (s, url) in preview.segments.iter().zip(urls) {
            longest = longest.max(s.duration);
            count += 1;
            body.push_str(&format!("#EXTINF:{:.6},\n{url}\n", s.duration));
        }
    }
    if count == 0 {
        return Err(ApiError::NotFound(format!(
            "stream '{stream_id}' has no preview yet (ingest it first)"
        )));
    }
    let text = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:0\n{body}#EXT-X-ENDLIST\n",
        longest.ceil() as u64
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/vnd.apple.mpegurl"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response())
}

fn content_type(key: &str) -> &'static str {
    match key.rsplit('.').next().unwrap_or("") {
        "ts" => "video/mp2t",
        "m3u8" => "application/vnd.apple.mpegurl",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "wav" => "audio/wav",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

async fn media(
    State(state): State<AppState>,
    PathParams(key): PathParams<String>,
    query: QueryPairs,
    req: Request,
) -> ApiResult<Response> {
    gt_store::blob::check_key(&key)?;
    let signed = match (query.one("exp")?, query.one("sig")?) {
        (Some(exp), Some(sig)) => {
            let exp: u64 = exp
                .parse()
                .map_err(|_| ApiError::BadRequest("exp must be a number".into()))?;
            if !state.media_signer.verify(&key, exp, sig, now()) {
                return Err(ApiError::Unauthorized(
                    "the media link is invalid or has expired".into(),
                ));
            }
            true
        }
        _ => false,
    };
    if !signed {
        let user = caller(&state, authorization(&req)?, &query).await?;
        let owner = key.split('/').next().unwrap_or("");
        if owner != gt_store::user_segment(&user.user_id) {
            return Err(ApiError::NotFound(format!("no media {key:?}")));
        }
    }
    let path = state.artifacts.local_path(&key).await?;
    let mut response = tower_http::services::ServeFile::new(path)
        .oneshot(req)
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("serving {key}: {e}")))?
        .map(Body::new);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&key)),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_owner_key_and_expiry() {
        let s = MediaSigner::new(b"secret".to_vec());
        let key = "u/hls/2024-01-01/a b.mkv/00001.ts";
        let url = s.url("u", key, 1000).unwrap();
        assert!(url.starts_with("/media/u/hls/2024-01-01/a%20b.mkv/00001.ts?exp=1000&sig="));
        let sig = url.rsplit("sig=").next().unwrap();
        assert!(s.verify(key, 1000, sig, 999));
        assert!(!s.verify(key, 1000, sig, 1001), "expired");
        assert!(
            !s.verify("u/hls/2024-01-01/a b.mkv/00002.ts", 1000, sig, 999),
            "other key"
        );
        assert!(!s.verify(key, 2000, sig, 999), "other expiry");
        assert!(!MediaSigner::new(b"other".to_vec()).verify(key, 1000, sig, 999));
        // Another user's key is never signed; nor is an escaping one.
        assert_eq!(s.url("v", key, 1000), None);
        assert_eq!(s.url("u", "u/../v/x.ts", 1000), None);
        // A signature for one owner does not verify a key of another.
        assert!(!s.verify("v/hls/2024-01-01/a b.mkv/00001.ts", 1000, sig, 999));
    }
}
