//! Previews for the review player: `GET /playlist/{stream_id}.m3u8` (every clip's HLS segments
//! in stream order, a discontinuity before each clip, like the original) and `GET /media/{key}`
//! (the artifacts: segments, thumbnails, speech audio).
//!
//! Players fetch segments without headers, so the playlist's segment URLs are signed
//! (HMAC-SHA256 over the owner, the key and the expiry). A link is only ever made for a key under
//! the caller's own prefix (`{owner}/…`), and `/media` checks the signature against the owner
//! the key names, so a link can never serve another user's file. Media can also be fetched
//! with a token (header or `?token=`) for keys under the caller's own prefix.
//!
//! The original front end builds `/playlist/{id}.m3u8` and keyframe `<img>` URLs itself, from
//! its content base URL, with no token and no room for a signature. For it, every successful
//! authenticated `GET /records/...` (the editor and the project page read the stream and its
//! clips first) also sets a **media cookie**: `HttpOnly` (no script can read it),
//! `SameSite=Strict` (no other site's page can make the browser send it), valid until the
//! token it came from expires (at most [`SIGNED_URL_TTL_S`]), signed over the user id like the
//! links. Only `/playlist` and `/media` accept it, and only for reading that user's own
//! media, so it can neither change anything (no CSRF surface) nor open another user's files.
//! Browsers send it to the host that set it, so the front end's API and content URLs must be
//! that host (the front end's own default, `http://localhost:5173/api/`, is same-origin
//! behind a proxy): hls.js fetches playlists without credentials across origins.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
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

/// How long the presigned S3 link `/media` redirects to stays valid: long enough for a player
/// to fetch a segment, short enough that a leaked link is soon useless.
pub const MEDIA_REDIRECT_TTL_S: u64 = 15 * 60;

/// How long signed segment URLs stay valid.
pub const SIGNED_URL_TTL_S: u64 = 12 * 3600;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/playlist/{file}", get(playlist))
        .route("/media/{*key}", get(media))
}

/// The media cookie's name.
pub const MEDIA_COOKIE: &str = "gt_media";

/// Signs media URLs: `sig = HMAC(secret, owner "\n" key "\n" exp)`, and media cookies:
/// `HMAC(secret, "media-cookie:" "\n" user_id "\n" exp)` (`:` never occurs in an owner
/// segment, so no link signature can pass for a cookie's).
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

    fn cookie_mac(&self, user_id: &str, exp: u64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("any key length");
        mac.update(b"media-cookie:\n");
        mac.update(user_id.as_bytes());
        mac.update(b"\n");
        mac.update(exp.to_string().as_bytes());
        mac
    }

    /// The media cookie's value for `user_id` until `exp`: `b64(user_id).exp.b64(sig)`.
    pub fn cookie_value(&self, user_id: &str, exp: u64) -> String {
        let sig = self.cookie_mac(user_id, exp).finalize().into_bytes();
        format!(
            "{}.{exp}.{}",
            URL_SAFE_NO_PAD.encode(user_id),
            URL_SAFE_NO_PAD.encode(sig)
        )
    }

    /// The user a media cookie value speaks for, if it is genuine and not expired at `now`.
    pub fn verify_cookie(&self, value: &str, now: u64) -> Option<AuthUser> {
        let mut parts = value.split('.');
        let (user, exp, sig) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let user_id = String::from_utf8(URL_SAFE_NO_PAD.decode(user).ok()?).ok()?;
        let exp: u64 = exp.parse().ok()?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        if exp < now || user_id.is_empty() || user_id.contains('\0') {
            return None;
        }
        self.cookie_mac(&user_id, exp).verify_slice(&sig).ok()?;
        Some(AuthUser {
            user_id,
            expires_at: exp,
        })
    }
}

/// The values of the cookies named `name` in the request's `Cookie` headers.
fn cookies<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(move |pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

/// Sets the media cookie on successful authenticated `GET /records/...` responses (the reads
/// the original front end's editor and project pages start with). Registered as a layer in
/// [`crate::router`].
pub async fn issue_media_cookie(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let authorization = (req.method() == Method::GET && req.uri().path().starts_with("/records/"))
        .then(|| req.headers().get(header::AUTHORIZATION))
        .flatten()
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    // Behind a TLS-terminating proxy the cookie must be Secure; on plain local HTTP it cannot be.
    let secure = req
        .headers()
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
        || req
            .headers()
            .get(header::ORIGIN)
            .is_some_and(|v| v.as_bytes().starts_with(b"https://"));
    let mut response = next.run(req).await;
    let Some(authorization) = authorization else {
        return response;
    };
    if !response.status().is_success() {
        return response;
    }
    // The handler already verified this token; a second check is cheap (cached keys).
    let Ok(user) = state.auth.verify_header(&authorization).await else {
        return response;
    };
    let now = now();
    let exp = user.expires_at.min(now + SIGNED_URL_TTL_S);
    if exp <= now {
        return response;
    }
    let cookie = format!(
        "{MEDIA_COOKIE}={}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{}",
        state.media_signer.cookie_value(&user.user_id, exp),
        exp - now,
        if secure { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
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

/// The caller from the Authorization header, a `token` query parameter (players and `<img>`
/// tags cannot send headers) or the media cookie (the original front end sends neither).
async fn caller(
    state: &AppState,
    authorization: Option<String>,
    media_cookies: Vec<String>,
    query: &QueryPairs,
) -> ApiResult<AuthUser> {
    if let Some(h) = authorization {
        return state.auth.verify_header(&h).await;
    }
    if let Some(t) = query.one("token")? {
        return state.auth.verify(t).await;
    }
    if media_cookies.is_empty() {
        return Err(ApiError::Unauthorized(
            "missing Authorization header, token parameter or media cookie".into(),
        ));
    }
    let now = now();
    media_cookies
        .iter()
        .find_map(|c| state.media_signer.verify_cookie(c, now))
        .ok_or_else(|| ApiError::Unauthorized("the media cookie is invalid or has expired".into()))
}

/// The media cookies of a request, read out before any await (a request body is not `Sync`).
fn media_cookies(req: &Request) -> Vec<String> {
    cookies(req.headers(), MEDIA_COOKIE)
        .map(str::to_string)
        .collect()
}

async fn playlist(
    State(state): State<AppState>,
    PathParams(file): PathParams<String>,
    query: QueryPairs,
    req: Request,
) -> ApiResult<Response> {
    let user = caller(&state, authorization(&req)?, media_cookies(&req), &query).await?;
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
        let user = caller(&state, authorization(&req)?, media_cookies(&req), &query).await?;
        let owner = key.split('/').next().unwrap_or("");
        if owner != gt_store::user_segment(&user.user_id) {
            return Err(ApiError::NotFound(format!("no media {key:?}")));
        }
    }
    // Artifacts in S3: the bytes come straight from the bucket through a short-lived
    // presigned link (players and <img> follow redirects; ranges go to S3 as well).
    if let Some(url) = state
        .artifacts
        .presigned_get(&key, std::time::Duration::from_secs(MEDIA_REDIRECT_TTL_S))
        .await?
    {
        let location = HeaderValue::try_from(url)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("presigned URL for {key}: {e}")))?;
        let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
        response.headers_mut().insert(header::LOCATION, location);
        // The link expires: a cache must come back here for a fresh one.
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
        return Ok(response);
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

    #[test]
    fn media_cookies_bind_user_and_expiry() {
        let s = MediaSigner::new(b"secret".to_vec());
        let c = s.cookie_value("alice", 1000);
        assert_eq!(s.verify_cookie(&c, 999).unwrap().user_id, "alice");
        assert!(s.verify_cookie(&c, 1001).is_none(), "expired");
        assert!(
            MediaSigner::new(b"other".to_vec())
                .verify_cookie(&c, 999)
                .is_none()
        );
        // Another user's name with Alice's signature, or a later expiry, does not verify.
        let (_, rest) = c.split_once('.').unwrap();
        let forged = format!("{}.{rest}", URL_SAFE_NO_PAD.encode("bob"));
        assert!(s.verify_cookie(&forged, 999).is_none());
        let sig = c.rsplit('.').next().unwrap();
        let later = format!("{}.2000.{sig}", URL_SAFE_NO_PAD.encode("alice"));
        assert!(s.verify_cookie(&later, 999).is_none());
        // A link signature is no cookie signature.
        let url = s.url("alice", "alice/x.ts", 1000).unwrap();
        let link_sig = url.rsplit("sig=").next().unwrap();
        let as_cookie = format!("{}.1000.{link_sig}", URL_SAFE_NO_PAD.encode("alice"));
        assert!(s.verify_cookie(&as_cookie, 999).is_none());
        assert!(s.verify_cookie("garbage", 0).is_none());
        assert!(s.verify_cookie(&format!("{c}.x"), 999).is_none());
    }
}
