//! A local stand-in for Google's OAuth and the YouTube Data API, speaking the same wire protocol,
//! for tests (feature `fake`).
//!
//! [`FakeYouTube::start`] serves on `127.0.0.1:<free port>`:
//!
//! | request | what the fake does |
//! |---|---|
//! | `GET /o/oauth2/v2/auth` | 302 to `redirect_uri?code=…&state=…` |
//! | `POST /token` | `authorization_code` and `refresh_token` grants; expiring access tokens; revoked or unknown grants → 400 `invalid_grant` |
//! | `POST /upload/youtube/v3/videos?uploadType=resumable` | validates the video resource like YouTube (400 `invalidTitle`, …), answers with the session `Location` |
//! | `PUT <session>` | chunks (`Content-Range: bytes a-b/T`, 256 KiB multiples except the last) → 308 + `Range` (none at 0 bytes) or 200 + the video; status queries (`bytes */T`); a completed session keeps answering with its one video |
//! | `POST /upload/youtube/v3/thumbnails/set`, `POST /youtube/v3/playlistItems`, `POST /upload/youtube/v3/captions` (multipart/related) | recorded |
//! | `GET /youtube/v3/playlistItems`, `GET /youtube/v3/captions` | what was recorded, filtered like YouTube (`playlistId`/`videoId`, `videoId`) |
//! | `GET /youtube/v3/videos?part=status,processingDetails` | `processing` on a video's first poll, `succeeded` afterwards |
//!
//! Every API call needs a live `Bearer` token issued by its token endpoint. Faults queued with
//! [`FakeYouTube::push_fault`] apply to the next request they match. A connection dropped
//! mid-chunk is really closed without a reply, and the server keeps the whole 256 KiB units it
//! received, as Google does, confirming them on the next status query.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Json, Router};
use bytes::Bytes;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tower::ServiceExt;

use crate::config::{UPLOAD_GRANULARITY, YouTubeConfig};
use crate::upload::hex;

/// The OAuth client id the fake accepts.
pub const FAKE_CLIENT_ID: &str = "fake-client.apps.googleusercontent.com";
/// The OAuth client secret the fake accepts.
pub const FAKE_CLIENT_SECRET: &str = "fake-client-secret";

/// YouTube's assignable video categories (the fake refuses others with `invalidCategoryId`).
const ASSIGNABLE_CATEGORIES: &[&str] = &[
    "1", "2", "10", "15", "17", "19", "20", "22", "23", "24", "25", "26", "27", "28", "29",
];

/// What a request is, for matching faults and reading the request log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    Authorize,
    Token,
    SessionStart,
    /// A `PUT` with bytes (`Content-Range: bytes a-b/T`).
    Chunk,
    /// A `PUT` asking for the offset (`Content-Range: bytes */T`).
    StatusQuery,
    ThumbnailSet,
    PlaylistItemInsert,
    PlaylistItemsList,
    CaptionInsert,
    CaptionsList,
    VideosList,
    Other,
}

/// How a fault's `Retry-After` header is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfterHeader {
    /// `Retry-After: <seconds>`.
    Seconds(u64),
    /// `Retry-After: <HTTP-date>` that far after the faulty reply, rounded up to a whole second
    /// (HTTP dates have no fractions).
    HttpDateIn(Duration),
}

/// A failure to inject into the next request it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The next chunk: read this many of its bytes, then close the TCP connection without a reply.
    /// The fake keeps the whole 256 KiB units received (all of them when the file's last byte
    /// arrived: the upload completes but its reply is lost).
    DropConnection { after_bytes: u64 },
    /// The next chunk: read this many of its bytes (keeping the whole 256 KiB units), then stop
    /// reading and never answer, like a stalled network: the client times out or is killed.
    Stall { after_bytes: u64 },
    /// The next chunk: keep only this many of its bytes (rounded down to 256 KiB), answer 308.
    AcceptPartially { keep_bytes: u64 },
    /// A server error (500, 503, 429, …) on the next request of kind `on`, Google's error body
    /// with reason `backendError` (`rateLimitExceeded` for 429).
    ServerError {
        on: RequestKind,
        status: u16,
        retry_after: Option<RetryAfterHeader>,
    },
    /// 401 `authError` on the next request of kind `on`, whatever its token.
    Unauthorized { on: RequestKind },
    /// The upload session of the next chunk or status query expires: that request and every
    /// later one for the session get `status` (404 or 410).
    SessionGone { status: u16 },
    /// 403 `quotaExceeded` (domain `youtube.quota`) on the next request of kind `on`.
    QuotaExceeded { on: RequestKind },
    /// 400 `uploadLimitExceeded` on the next session start.
    UploadLimitExceeded,
    /// 403 `forbidden` on the next thumbnails.set.
    ThumbnailForbidden,
    /// Any Google error on the next request of kind `on`.
    Error {
        on: RequestKind,
        status: u16,
        reason: String,
        message: String,
    },
}

impl Fault {
    fn applies_to(&self, kind: RequestKind) -> bool {
        match self {
            Fault::DropConnection { .. } | Fault::Stall { .. } | Fault::AcceptPartially { .. } => {
                kind == RequestKind::Chunk
            }
            Fault::SessionGone { .. } => {
                matches!(kind, RequestKind::Chunk | RequestKind::StatusQuery)
            }
            Fault::UploadLimitExceeded => kind == RequestKind::SessionStart,
            Fault::ThumbnailForbidden => kind == RequestKind::ThumbnailSet,
            Fault::ServerError { on, .. }
            | Fault::Unauthorized { on }
            | Fault::QuotaExceeded { on }
            | Fault::Error { on, .. } => *on == kind,
        }
    }
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// When it arrived.
    pub at: SystemTime,
    pub kind: RequestKind,
    pub method: String,
    pub path: String,
    pub content_range: Option<String>,
    /// The reply's status; `None` when the connection was closed without a reply.
    pub status: Option<u16>,
    /// The reply's `Retry-After`, as sent.
    pub retry_after: Option<String>,
}

/// A video created by a completed upload session.
#[derive(Debug, Clone)]
pub struct FakeVideo {
    pub id: String,
    /// The `video` resource of the insert, as received (`snippet`, `status`).
    pub resource: serde_json::Value,
    pub notify_subscribers: bool,
    pub content_type: String,
    pub size: u64,
    /// SHA-256 (lowercase hex) of the stored bytes.
    pub sha256: String,
    /// The upload session that created it.
    pub session_id: String,
}

#[derive(Debug, Clone)]
pub struct FakeThumbnail {
    pub video_id: String,
    pub content_type: String,
    pub bytes: Bytes,
}

#[derive(Debug, Clone)]
pub struct FakePlaylistItem {
    pub id: String,
    pub playlist_id: String,
    pub video_id: String,
}

#[derive(Debug, Clone)]
pub struct FakeCaption {
    pub id: String,
    pub video_id: String,
    pub language: String,
    pub name: String,
    pub content_type: String,
    pub bytes: Bytes,
}

/// A call of the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub at: SystemTime,
    pub grant_type: String,
    /// The HTTP status of the reply.
    pub status: u16,
}

struct UploadSessionState {
    resource: serde_json::Value,
    notify_subscribers: bool,
    total: u64,
    content_type: String,
    data: Vec<u8>,
    gone: Option<u16>,
    video_id: Option<String>,
}

struct AuthCode {
    redirect_uri: String,
    scopes: String,
}

struct StoredVideo {
    video: FakeVideo,
    bytes: Vec<u8>,
    polls: u32,
}

struct FakeState {
    faults: VecDeque<Fault>,
    requests: Vec<RecordedRequest>,
    token_requests: Vec<TokenRequest>,
    codes: HashMap<String, AuthCode>,
    /// Access token → expiry.
    access_tokens: HashMap<String, SystemTime>,
    refresh_tokens: HashSet<String>,
    access_token_ttl: Duration,
    sessions: HashMap<String, UploadSessionState>,
    session_order: Vec<String>,
    videos: Vec<StoredVideo>,
    thumbnails: Vec<FakeThumbnail>,
    playlist_items: Vec<FakePlaylistItem>,
    captions: Vec<FakeCaption>,
    base_url: String,
}

type Shared = Arc<Mutex<FakeState>>;

fn lock(state: &Shared) -> MutexGuard<'_, FakeState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Closes the connection a request arrived on, without a reply.
#[derive(Clone)]
struct ConnectionKiller(Arc<Notify>);

/// The running fake. Stops serving when dropped.
pub struct FakeYouTube {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    state: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeYouTube {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeYouTube {
    /// Binds `127.0.0.1:0` and serves until dropped.
    pub async fn start() -> FakeYouTube {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr: SocketAddr = listener.local_addr().expect("local address");
        let base_url = format!("http://{addr}");
        let state: Shared = Arc::new(Mutex::new(FakeState {
            faults: VecDeque::new(),
            requests: Vec::new(),
            token_requests: Vec::new(),
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashSet::new(),
            access_token_ttl: Duration::from_secs(3599),
            sessions: HashMap::new(),
            session_order: Vec::new(),
            videos: Vec::new(),
            thumbnails: Vec::new(),
            playlist_items: Vec::new(),
            captions: Vec::new(),
            base_url: base_url.clone(),
        }));
        let router = Router::new()
            .route("/o/oauth2/v2/auth", get(authorize))
            .route("/token", post(token))
            .route(
                "/upload/youtube/v3/videos",
                post(start_session).put(session_put),
            )
            .route("/upload/youtube/v3/thumbnails/set", post(thumbnail_set))
            .route("/upload/youtube/v3/captions", post(caption_insert))
            .route(
                "/youtube/v3/playlistItems",
                post(playlist_item_insert).get(playlist_items_list),
            )
            .route("/youtube/v3/captions", get(captions_list))
            .route("/youtube/v3/videos", get(videos_list))
            .layer(middleware::from_fn_with_state(state.clone(), observe))
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let router = router.clone();
                tokio::spawn(async move {
                    let kill = Arc::new(Notify::new());
                    let killer = ConnectionKiller(kill.clone());
                    let service = hyper::service::service_fn(
                        move |mut request: hyper::Request<hyper::body::Incoming>| {
                            request.extensions_mut().insert(killer.clone());
                            let router = router.clone();
                            async move {
                                Ok::<_, Infallible>(
                                    router
                                        .oneshot(request.map(Body::new))
                                        .await
                                        .unwrap_or_else(|never| match never {}),
                                )
                            }
                        },
                    );
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                    // Dropping the connection future closes the socket mid-request: the client
                    // sees a reset or an early EOF, never a reply.
                    tokio::select! {
                        _ = connection => {}
                        _ = kill.notified() => {}
                    }
                });
            }
        });
        FakeYouTube {
            base_url,
            state,
            server,
        }
    }

    /// A client configuration with every URL pointing at this fake and its OAuth client.
    pub fn config(&self) -> YouTubeConfig {
        YouTubeConfig {
            api_base: self.base_url.clone(),
            upload_base: self.base_url.clone(),
            oauth_auth_url: format!("{}/o/oauth2/v2/auth", self.base_url),
            oauth_token_url: format!("{}/token", self.base_url),
            client_id: FAKE_CLIENT_ID.into(),
            client_secret: FAKE_CLIENT_SECRET.into(),
            ..YouTubeConfig::default()
        }
    }

    /// Queues a fault for the next request it matches (faults match in queue order).
    pub fn push_fault(&self, fault: Fault) {
        lock(&self.state).faults.push_back(fault);
    }

    /// Faults queued but not yet applied.
    pub fn pending_faults(&self) -> Vec<Fault> {
        lock(&self.state).faults.iter().cloned().collect()
    }

    /// How long newly issued access tokens live (default 3599 s, like Google).
    pub fn set_access_token_ttl(&self, ttl: Duration) {
        lock(&self.state).access_token_ttl = ttl;
    }

    /// Expires every access token issued so far (their holders get 401 until they refresh).
    pub fn expire_access_tokens(&self) {
        let now = SystemTime::now();
        for expiry in lock(&self.state).access_tokens.values_mut() {
            *expiry = now;
        }
    }

    /// Revokes a refresh token: refreshing with it answers `invalid_grant`.
    pub fn revoke_refresh_token(&self, refresh_token: &str) {
        lock(&self.state).refresh_tokens.remove(refresh_token);
    }

    /// Videos created by completed sessions, in creation order.
    pub fn videos(&self) -> Vec<FakeVideo> {
        lock(&self.state)
            .videos
            .iter()
            .map(|v| v.video.clone())
            .collect()
    }

    /// The uploaded bytes of a video.
    pub fn video_bytes(&self, video_id: &str) -> Option<Vec<u8>> {
        lock(&self.state)
            .videos
            .iter()
            .find(|v| v.video.id == video_id)
            .map(|v| v.bytes.clone())
    }

    pub fn thumbnails(&self) -> Vec<FakeThumbnail> {
        lock(&self.state).thumbnails.clone()
    }

    pub fn playlist_items(&self) -> Vec<FakePlaylistItem> {
        lock(&self.state).playlist_items.clone()
    }

    pub fn captions(&self) -> Vec<FakeCaption> {
        lock(&self.state).captions.clone()
    }

    /// How many upload sessions were opened.
    pub fn sessions_started(&self) -> usize {
        lock(&self.state).session_order.len()
    }

    /// Bytes the fake holds for a session (by its URI), `None` for an unknown session.
    pub fn session_received(&self, session_uri: &str) -> Option<u64> {
        let id = upload_id_of(session_uri)?;
        lock(&self.state)
            .sessions
            .get(&id)
            .map(|s| s.data.len() as u64)
    }

    pub fn token_requests(&self) -> Vec<TokenRequest> {
        lock(&self.state).token_requests.clone()
    }

    /// Every request, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }
}

fn upload_id_of(uri: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == "upload_id")
        .map(|(_, v)| v.into_owned())
}

fn random_id(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..len)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Google's error body.
fn google_error(status: u16, reason: &str, domain: &str, message: &str) -> Response {
    let body = json!({
        "error": {
            "code": status,
            "message": message,
            "errors": [{ "message": message, "domain": domain, "reason": reason }],
        }
    });
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        Json(body),
    )
        .into_response()
}

fn classify(method: &Method, path: &str, headers: &HeaderMap) -> RequestKind {
    match (method.as_str(), path) {
        ("GET", "/o/oauth2/v2/auth") => RequestKind::Authorize,
        ("POST", "/token") => RequestKind::Token,
        ("POST", "/upload/youtube/v3/videos") => RequestKind::SessionStart,
        ("PUT", "/upload/youtube/v3/videos") => {
            let status_query = headers
                .get(header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().starts_with("bytes */"));
            if status_query {
                RequestKind::StatusQuery
            } else {
                RequestKind::Chunk
            }
        }
        ("POST", "/upload/youtube/v3/thumbnails/set") => RequestKind::ThumbnailSet,
        ("POST", "/youtube/v3/playlistItems") => RequestKind::PlaylistItemInsert,
        ("GET", "/youtube/v3/playlistItems") => RequestKind::PlaylistItemsList,
        ("POST", "/upload/youtube/v3/captions") => RequestKind::CaptionInsert,
        ("GET", "/youtube/v3/captions") => RequestKind::CaptionsList,
        ("GET", "/youtube/v3/videos") => RequestKind::VideosList,
        _ => RequestKind::Other,
    }
}

/// Records every request and applies the queued faults that answer by themselves; the chunk
/// faults travel to the handler as an extension.
async fn observe(State(state): State<Shared>, mut request: Request, next: Next) -> Response {
    let kind = classify(request.method(), request.uri().path(), request.headers());
    let index = {
        let mut s = lock(&state);
        s.requests.push(RecordedRequest {
            at: SystemTime::now(),
            kind,
            method: request.method().to_string(),
            path: request.uri().path().to_string(),
            content_range: request
                .headers()
                .get(header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            status: None,
            retry_after: None,
        });
        s.requests.len() - 1
    };
    let fault = {
        let mut s = lock(&state);
        let position = s.faults.iter().position(|f| f.applies_to(kind));
        position.and_then(|i| s.faults.remove(i))
    };
    let response = match fault {
        Some(Fault::ServerError {
            status,
            retry_after,
            ..
        }) => {
            let reason = if status == 429 {
                "rateLimitExceeded"
            } else {
                "backendError"
            };
            let mut response = google_error(status, reason, "global", "Backend Error");
            if let Some(header_value) = retry_after.map(retry_after_value) {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header_value);
            }
            response
        }
        Some(Fault::Unauthorized { .. }) => unauthorized(),
        Some(Fault::QuotaExceeded { .. }) => google_error(
            403,
            "quotaExceeded",
            "youtube.quota",
            "The request cannot be completed because you have exceeded your quota.",
        ),
        Some(Fault::UploadLimitExceeded) => google_error(
            400,
            "uploadLimitExceeded",
            "youtube.video",
            "The user has exceeded the number of videos they may upload.",
        ),
        Some(Fault::ThumbnailForbidden) => google_error(
            403,
            "forbidden",
            "youtube.thumbnail",
            "The authenticated user doesn't have permissions to upload and set custom video thumbnails.",
        ),
        Some(Fault::Error {
            status,
            reason,
            message,
            ..
        }) => google_error(status, &reason, "youtube.api", &message),
        Some(Fault::SessionGone { status }) => {
            let id = request
                .uri()
                .query()
                .and_then(|q| {
                    url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "upload_id")
                })
                .map(|(_, v)| v.into_owned());
            if let Some(id) = id {
                let mut s = lock(&state);
                if let Some(session) = s.sessions.get_mut(&id) {
                    session.gone = Some(status);
                }
            }
            session_gone(status)
        }
        chunk_fault @ Some(
            Fault::DropConnection { .. } | Fault::Stall { .. } | Fault::AcceptPartially { .. },
        ) => {
            request
                .extensions_mut()
                .insert(chunk_fault.expect("matched Some"));
            next.run(request).await
        }
        None => next.run(request).await,
    };
    let mut s = lock(&state);
    let record = &mut s.requests[index];
    record.status = Some(response.status().as_u16());
    record.retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    response
}

fn retry_after_value(header_value: RetryAfterHeader) -> HeaderValue {
    let text = match header_value {
        RetryAfterHeader::Seconds(seconds) => seconds.to_string(),
        RetryAfterHeader::HttpDateIn(delay) => {
            let at = SystemTime::now() + delay;
            let since_epoch = at
                .duration_since(SystemTime::UNIX_EPOCH)
                .expect("after 1970");
            let whole = since_epoch.as_secs() + u64::from(since_epoch.subsec_nanos() > 0);
            httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(whole))
        }
    };
    HeaderValue::from_str(&text).expect("ASCII header")
}

fn unauthorized() -> Response {
    let mut response = google_error(
        401,
        "authError",
        "global",
        "Request had invalid authentication credentials. Expected OAuth 2 access token.",
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"https://accounts.google.com/\""),
    );
    response
}

fn session_gone(status: u16) -> Response {
    google_error(
        status,
        "notFound",
        "global",
        "The upload session was not found.",
    )
}

/// Whether the request carries a live access token issued by the token endpoint.
fn bearer_is_live(state: &Shared, headers: &HeaderMap) -> bool {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    token.is_some_and(|t| {
        lock(state)
            .access_tokens
            .get(t)
            .is_some_and(|expiry| *expiry > SystemTime::now())
    })
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    access_type: Option<String>,
}

async fn authorize(State(state): State<Shared>, Query(q): Query<AuthorizeQuery>) -> Response {
    if q.client_id.as_deref() != Some(FAKE_CLIENT_ID) {
        return (StatusCode::UNAUTHORIZED, "Error 401: invalid_client").into_response();
    }
    if q.response_type.as_deref() != Some("code") {
        return (
            StatusCode::BAD_REQUEST,
            "Error 400: unsupported_response_type",
        )
            .into_response();
    }
    let (Some(redirect_uri), Some(scopes)) = (q.redirect_uri, q.scope.filter(|s| !s.is_empty()))
    else {
        return (StatusCode::BAD_REQUEST, "Error 400: invalid_request").into_response();
    };
    let Ok(mut target) = url::Url::parse(&redirect_uri) else {
        return (StatusCode::BAD_REQUEST, "Error 400: redirect_uri_mismatch").into_response();
    };
    let code = format!("4/{}", random_id(40));
    lock(&state).codes.insert(
        code.clone(),
        AuthCode {
            redirect_uri: redirect_uri.clone(),
            scopes: scopes.clone(),
        },
    );
    {
        let mut pairs = target.query_pairs_mut();
        if let Some(s) = &q.state {
            pairs.append_pair("state", s);
        }
        pairs
            .append_pair("code", &code)
            .append_pair("scope", &scopes);
    }
    // Offline access is what makes the token endpoint hand out a refresh token.
    if q.access_type.as_deref() != Some("offline") {
        lock(&state).codes.get_mut(&code).expect("inserted").scopes += " online-only";
    }
    (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    client_id: Option<String>,
    client_secret: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    refresh_token: Option<String>,
}

fn token_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

async fn token(State(state): State<Shared>, Form(form): Form<TokenForm>) -> Response {
    let response = issue_tokens(&state, &form);
    lock(&state).token_requests.push(TokenRequest {
        at: SystemTime::now(),
        grant_type: form.grant_type.clone(),
        status: response.status().as_u16(),
    });
    response
}

fn issue_tokens(state: &Shared, form: &TokenForm) -> Response {
    if form.client_id.as_deref() != Some(FAKE_CLIENT_ID)
        || form.client_secret.as_deref() != Some(FAKE_CLIENT_SECRET)
    {
        return token_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The OAuth client was not found.",
        );
    }
    let mut s = lock(state);
    let (refresh_token, scopes) = match form.grant_type.as_str() {
        "authorization_code" => {
            let Some(code) = form.code.as_deref().and_then(|c| s.codes.remove(c)) else {
                return token_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Malformed auth code.",
                );
            };
            if form.redirect_uri.as_deref() != Some(code.redirect_uri.as_str()) {
                return token_error(
                    StatusCode::BAD_REQUEST,
                    "redirect_uri_mismatch",
                    "Bad Request",
                );
            }
            let offline = !code.scopes.ends_with(" online-only");
            let refresh = offline.then(|| format!("1//{}", random_id(60)));
            if let Some(r) = &refresh {
                s.refresh_tokens.insert(r.clone());
            }
            (
                refresh,
                code.scopes.trim_end_matches(" online-only").to_string(),
            )
        }
        "refresh_token" => {
            let known = form
                .refresh_token
                .as_deref()
                .is_some_and(|r| s.refresh_tokens.contains(r));
            if !known {
                return token_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Token has been expired or revoked.",
                );
            }
            // Google keeps the refresh token and sends none on refresh.
            (None, "https://www.googleapis.com/auth/youtube".to_string())
        }
        _ => {
            return token_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Invalid grant_type",
            );
        }
    };
    let access = format!("ya29.{}", random_id(80));
    let ttl = s.access_token_ttl;
    s.access_tokens
        .insert(access.clone(), SystemTime::now() + ttl);
    let mut body = json!({
        "access_token": access,
        "expires_in": ttl.as_secs(),
        "scope": scopes,
        "token_type": "Bearer",
    });
    if let Some(r) = refresh_token {
        body["refresh_token"] = r.into();
    }
    (StatusCode::OK, Json(body)).into_response()
}

#[derive(Deserialize)]
struct SessionStartQuery {
    #[serde(rename = "uploadType")]
    upload_type: Option<String>,
    part: Option<String>,
    #[serde(rename = "notifySubscribers")]
    notify_subscribers: Option<String>,
}

/// The metadata checks YouTube applies on insert; `Err((reason, message))`.
fn validate_resource(resource: &serde_json::Value) -> Result<(), (&'static str, String)> {
    let snippet = &resource["snippet"];
    let status = &resource["status"];
    let title = snippet["title"].as_str().unwrap_or_default();
    if title.trim().is_empty() {
        return Err((
            "invalidTitle",
            "The request metadata specifies an empty video title.".into(),
        ));
    }
    if title.chars().count() > 100 || title.contains(['<', '>']) {
        return Err((
            "invalidTitle",
            "The request metadata specifies an invalid video title.".into(),
        ));
    }
    let description = snippet["description"].as_str().unwrap_or_default();
    if description.len() > 5000 || description.contains(['<', '>']) {
        return Err((
            "invalidDescription",
            "The request metadata specifies an invalid video description.".into(),
        ));
    }
    let tags: Vec<&str> = snippet["tags"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t.as_str()).collect())
        .unwrap_or_default();
    let counted: usize = tags
        .iter()
        .map(|t| t.chars().count() + if t.contains(' ') { 2 } else { 0 })
        .sum::<usize>()
        + tags.len().saturating_sub(1);
    if counted > 500 {
        return Err((
            "invalidTags",
            "The request metadata specifies invalid video keywords.".into(),
        ));
    }
    let category = snippet["categoryId"].as_str().unwrap_or_default();
    if !ASSIGNABLE_CATEGORIES.contains(&category) {
        return Err((
            "invalidCategoryId",
            "The snippet.categoryId property specifies an invalid category ID.".into(),
        ));
    }
    let privacy = status["privacyStatus"].as_str().unwrap_or("public");
    if !["private", "unlisted", "public"].contains(&privacy) {
        return Err((
            "invalidVideoMetadata",
            "The request metadata is invalid.".into(),
        ));
    }
    if let Some(publish_at) = status.get("publishAt").and_then(|v| v.as_str()) {
        let future =
            chrono::DateTime::parse_from_rfc3339(publish_at).is_ok_and(|t| t > chrono::Utc::now());
        if privacy != "private" || !future {
            return Err((
                "invalidPublishAt",
                "The request metadata specifies an invalid scheduled publishing time.".into(),
            ));
        }
    }
    Ok(())
}

async fn start_session(
    State(state): State<Shared>,
    Query(q): Query<SessionStartQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !bearer_is_live(&state, &headers) {
        return unauthorized();
    }
    if q.upload_type.as_deref() != Some("resumable") {
        return google_error(
            400,
            "badRequest",
            "global",
            "Only resumable uploads are supported here.",
        );
    }
    let parts: Vec<&str> = q.part.as_deref().unwrap_or_default().split(',').collect();
    if !parts.contains(&"snippet") || !parts.contains(&"status") {
        return google_error(
            400,
            "unexpectedPart",
            "youtube.part",
            "part must include snippet,status.",
        );
    }
    let total = headers
        .get("x-upload-content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&n| n > 0);
    let Some(total) = total else {
        return google_error(
            400,
            "mediaBodyRequired",
            "youtube.video",
            "X-Upload-Content-Length is required.",
        );
    };
    let content_type = headers
        .get("x-upload-content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    let Ok(resource) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return google_error(400, "parseError", "global", "Parse Error");
    };
    if let Err((reason, message)) = validate_resource(&resource) {
        return google_error(400, reason, "youtube.video", &message);
    }
    let id = random_id(32);
    let mut s = lock(&state);
    s.sessions.insert(
        id.clone(),
        UploadSessionState {
            resource,
            notify_subscribers: q.notify_subscribers.as_deref() != Some("false"),
            total,
            content_type,
            data: Vec::new(),
            gone: None,
            video_id: None,
        },
    );
    s.session_order.push(id.clone());
    let location = format!(
        "{}/upload/youtube/v3/videos?uploadType=resumable&upload_id={id}",
        s.base_url
    );
    (StatusCode::OK, [(header::LOCATION, location)]).into_response()
}

#[derive(Deserialize)]
struct SessionQuery {
    upload_id: Option<String>,
}

/// `Content-Range` of a chunk or status query.
enum ContentRange {
    Query {
        total: u64,
    },
    Bytes {
        first: u64,
        last: u64,
        total: Option<u64>,
    },
}

fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let total = if total == "*" {
        None
    } else {
        Some(total.parse().ok()?)
    };
    if range == "*" {
        return Some(ContentRange::Query { total: total? });
    }
    let (first, last) = range.split_once('-')?;
    let (first, last) = (first.parse().ok()?, last.parse().ok()?);
    (first <= last).then_some(ContentRange::Bytes { first, last, total })
}

/// 308 with the confirmed range (none at 0 bytes).
fn resume_incomplete(received: u64) -> Response {
    let mut response = StatusCode::PERMANENT_REDIRECT.into_response();
    if received > 0 {
        response.headers_mut().insert(
            header::RANGE,
            HeaderValue::from_str(&format!("bytes=0-{}", received - 1)).expect("ASCII"),
        );
    }
    response
}

fn video_resource(video: &FakeVideo, upload_status: &str) -> serde_json::Value {
    let mut resource = video.resource.clone();
    resource["kind"] = "youtube#video".into();
    resource["id"] = video.id.clone().into();
    resource["status"]["uploadStatus"] = upload_status.into();
    resource
}

/// Creates the session's video the first time it is complete; returns it either way.
fn complete(s: &mut FakeState, session_id: &str) -> FakeVideo {
    let session = s.sessions.get_mut(session_id).expect("session exists");
    if let Some(id) = &session.video_id {
        let id = id.clone();
        return s
            .videos
            .iter()
            .find(|v| v.video.id == id)
            .expect("video of the session")
            .video
            .clone();
    }
    let id = random_id(11);
    session.video_id = Some(id.clone());
    let video = FakeVideo {
        id,
        resource: session.resource.clone(),
        notify_subscribers: session.notify_subscribers,
        content_type: session.content_type.clone(),
        size: session.data.len() as u64,
        sha256: hex(&Sha256::digest(&session.data)),
        session_id: session_id.to_string(),
    };
    let bytes = session.data.clone();
    s.videos.push(StoredVideo {
        video: video.clone(),
        bytes,
        polls: 0,
    });
    video
}

/// What a session answers when asked for its state: the video once complete, 308 otherwise.
fn session_state_reply(s: &mut FakeState, session_id: &str) -> Response {
    let session = &s.sessions[session_id];
    if session.data.len() as u64 == session.total {
        let video = complete(s, session_id);
        (StatusCode::OK, Json(video_resource(&video, "uploaded"))).into_response()
    } else {
        resume_incomplete(session.data.len() as u64)
    }
}

async fn session_put(
    State(state): State<Shared>,
    Query(q): Query<SessionQuery>,
    headers: HeaderMap,
    chunk_fault: Option<Extension<Fault>>,
    killer: Option<Extension<ConnectionKiller>>,
    body: Body,
) -> Response {
    if !bearer_is_live(&state, &headers) {
        return unauthorized();
    }
    let Some(id) = q.upload_id else {
        return google_error(400, "badRequest", "global", "upload_id is required.");
    };
    let (total, received) = {
        let s = lock(&state);
        let Some(session) = s.sessions.get(&id) else {
            return session_gone(404);
        };
        if let Some(status) = session.gone {
            return session_gone(status);
        }
        (session.total, session.data.len() as u64)
    };
    let range = headers
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_content_range);
    let (first, last) = match range {
        None => return google_error(400, "badRequest", "global", "Invalid Content-Range."),
        Some(ContentRange::Query { total: t }) => {
            if t != total {
                return google_error(
                    400,
                    "badRequest",
                    "global",
                    "Content-Range total does not match the session.",
                );
            }
            return session_state_reply(&mut lock(&state), &id);
        }
        Some(ContentRange::Bytes {
            first,
            last,
            total: t,
        }) => {
            if t.is_some_and(|t| t != total) || last >= total {
                return google_error(
                    400,
                    "badRequest",
                    "global",
                    "Content-Range does not match the session size.",
                );
            }
            (first, last)
        }
    };
    if first > received {
        return google_error(
            400,
            "badRequest",
            "global",
            &format!("Chunk starts at {first} but only {received} bytes were received."),
        );
    }
    let len = last - first + 1;
    let is_final = last + 1 == total;
    if !is_final && len % UPLOAD_GRANULARITY as u64 != 0 {
        return google_error(
            400,
            "badRequest",
            "global",
            "Invalid request. The number of bytes uploaded is required to be equal or greater than 262144, except for the final request, and must be a multiple of 262144.",
        );
    }
    // Where to stop reading the body, and what to do then, for the faults that cut a chunk.
    let (drop_after, hang_up, keep_limit) = match chunk_fault.map(|Extension(f)| f) {
        Some(Fault::DropConnection { after_bytes }) => (Some(after_bytes.min(len)), true, None),
        Some(Fault::Stall { after_bytes }) => (Some(after_bytes.min(len)), false, None),
        Some(Fault::AcceptPartially { keep_bytes }) => (None, false, Some(keep_bytes.min(len))),
        _ => (None, false, None),
    };

    // Read the body as it arrives, so that a drop happens mid-transfer.
    let mut stream = body.into_data_stream();
    let mut data: Vec<u8> = Vec::with_capacity(len as usize);
    let mut interrupted = false;
    while let Some(frame) = stream.next().await {
        match frame {
            Ok(bytes) => data.extend_from_slice(&bytes),
            Err(_) => {
                interrupted = true;
                break;
            }
        }
        if drop_after.is_some_and(|n| data.len() as u64 >= n) {
            break;
        }
        if data.len() as u64 > len {
            return google_error(
                400,
                "badRequest",
                "global",
                "Body longer than its Content-Range.",
            );
        }
    }
    // Google stores what arrived in whole 256 KiB units, or everything when the last byte of the
    // file arrived (the upload is then complete even if the reply never reaches the client).
    let whole_units = |n: u64| {
        if first + n == total {
            n
        } else {
            n - n % UPLOAD_GRANULARITY as u64
        }
    };
    let keep = if let Some(n) = drop_after {
        whole_units(n.min(data.len() as u64))
    } else if interrupted || (data.len() as u64) < len {
        // The client went away: keep what arrived in whole units, like Google.
        whole_units(data.len() as u64)
    } else if let Some(limit) = keep_limit {
        whole_units(limit)
    } else {
        len
    };
    {
        let mut s = lock(&state);
        let session = s.sessions.get_mut(&id).expect("session exists");
        let held = session.data.len() as u64;
        // Bytes before `held` are already stored (an overlapping resend); append the rest.
        if first + keep > held {
            let from = (held - first) as usize;
            session.data.extend_from_slice(&data[from..keep as usize]);
        }
    }
    if drop_after.is_some() {
        {
            let mut s = lock(&state);
            if s.sessions[&id].data.len() as u64 == total {
                complete(&mut s, &id);
            }
        }
        if hang_up && let Some(Extension(ConnectionKiller(kill))) = killer {
            kill.notify_one();
        }
        // A stalled chunk never gets a reply; a dropped one is gone with its connection.
        std::future::pending::<()>().await;
    }
    session_state_reply(&mut lock(&state), &id)
}

#[derive(Deserialize)]
struct VideoIdQuery {
    #[serde(rename = "videoId")]
    video_id: Option<String>,
}

fn video_exists(s: &FakeState, id: &str) -> bool {
    s.videos.iter().any(|v| v.video.id == id)
}

fn video_not_found() -> Response {
    google_error(
        404,
        "videoNotFound",
        "youtube.video",
        "The video identified by the videoId parameter could not be found.",
    )
}

async fn thumbnail_set(
    State(state): State<Shared>,
    Query(q): Query<VideoIdQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !bearer_is_live(&state, &headers) {
        return unauthorized();
    }
    let Some(video_id) = q.video_id else {
        return google_error(400, "required", "global", "videoId is required.");
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if !["image/jpeg", "image/png", "application/octet-stream"].contains(&content_type.as_str()) {
        return google_error(
            400,
            "invalidImage",
            "youtube.thumbnail",
            "The provided image content is invalid.",
        );
    }
    if body.is_empty() {
        return google_error(
            400,
            "mediaBodyRequired",
            "youtube.thumbnail",
            "The request does not include the image content.",
        );
    }
    if body.len() > 2 * 1024 * 1024 {
        return google_error(413, "mediaBodyTooLarge", "global", "Media is too large.");
    }
    let mut s = lock(&state);
    if !video_exists(&s, &video_id) {
        return video_not_found();
    }
    s.thumbnails.push(FakeThumbnail {
        video_id,
        content_type,
        bytes: body,
    });
    let url = format!("{}/vi/thumb.jpg", s.base_url);
    Json(json!({
        "kind": "youtube#thumbnailSetResponse",
        "items": [{ "default": { "url": url, "width": 120, "height": 90 } }],
    }))
    .into_response()
}

async fn playlist_item_insert(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !bearer_is_live(&state, &headers) {
        return unauthorized();
    }
    let Ok(item) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return google_error(400, "parseError", "global", "Parse Error");
    };
    let snippet = &item["snippet"];
    let playlist_id = snippet["playlistId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let video_id = snippet["resourceId"]["videoId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if snippet["resourceId"]["kind"] != "youtube#video" {
        return google_error(
            400,
            "invalidResourceId",
            "youtube.playlistItem",
            "The resource ID is not supported.",
        );
    }
    if playlist_id.is_empty() {
        return google_error(
            404,
            "playlistNotFound",
            "youtube.playlistItem",
            "Playlist not found.",
        );
    }
    let mut s = lock(&state);
    if !video_exists(&s, &video_id) {
        return video_not_found();
    }
    let id = random_id(34);
    s.playlist_items.push(FakePlaylistItem {
        id: id.clone(),
        playlist_id: playlist_id.clone(),
        video_id: video_id.clone(),
    });
    Json(json!({
        "kind": "youtube#playlistItem",
        "id": id,
        "snippet": {
            "playlistId": playlist_id,
            "resourceId": { "kind": "youtube#video", "videoId": video_id },
        },
    }))
    .into_response()
}

/// Splits a multipart/related body into its parts' (content type, bytes).
fn multipart_parts(content_type: &str, body: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let boundary = content_type
        .strip_prefix("multipart/related")?
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))?
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay.get(from..)?
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
    };
    let mut parts = Vec::new();
    let mut at = find(body, delimiter.as_bytes(), 0)? + delimiter.len();
    loop {
        if body.get(at..at + 2) == Some(b"--") {
            return Some(parts);
        }
        let headers_start = at + 2; // CRLF after the delimiter
        let headers_end = find(body, b"\r\n\r\n", headers_start)?;
        let headers = std::str::from_utf8(&body[headers_start..headers_end]).ok()?;
        let part_type = headers
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case("content-type")
                    .then(|| value.trim().to_string())
            })
            .unwrap_or_default();
        let content_start = headers_end + 4;
        let next = find(body, format!("\r\n{delimiter}").as_bytes(), content_start)?;
        parts.push((part_type, body[content_start..next].to_vec()));
        at = next + 2 + delimiter.len();
    }
}

async fn caption_insert(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if !bearer_is_live(&state, &headers) {
        return unauthorized();
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(parts) = multipart_parts(content_type, &body) else {
        return google_error(
            400,
            "badContent",
            "youtube.caption",
            "The request is not a multipart/related upload.",
        );
    };
    let [(json_type, metadata), (media_type, media)] = parts.as_slice() else {
        return google_error(
            400,
            "badContent",
            "youtube.caption",
            "Expected a metadata part and a media part.",
        );
    };
    let Ok(metadata) = serde_json::from_slice::<serde_json::Value>(metadata) else {
        return google_error(400, "parseError", "global", "Parse Error");
    };
    if !json_type.starts_with("application/json") {
        return google_error(
            400,
            "badContent",
            "youtube.caption",
            "The first part must be JSON.",
        );
    }
    let snippet = &metadata["snippet"];
    let video_id = snippet["videoId"].as_str().unwrap_or_default().to_string();
    let language = snippet["language"].as_str().unwrap_or_default().to_string();
    let name = snippet["name"].as_str().unwrap_or_default().to_string();
    if language.is_empty() {
        return google_error(
            400,
            "invalidMetadata",
            "youtube.caption",
            "snippet.language is required.",
        );
    }
    if media.is_empty() {
        return google_error(
            400,
            "mediaBodyRequired",
            "youtube.caption",
            "The caption file is empty.",
        );
    }
    let mut s = lock(&state);
    if !video_exists(&s, &video_id) {
        return video_not_found();
    }
    let id = random_id(44);
    s.captions.push(FakeCaption {
        id: id.clone(),
        video_id: video_id.clone(),
        language: language.clone(),
        name: name.clone(),
        content_type: media_type.clone(),
        bytes: Bytes::from(media.clone()),
    });
    Json(json!({
        "kind": "youtube#caption",
        "id": id,
        "snippet": { "videoId": video_id, "language": language, "name": name, "status": "serving" },
    }))
    .into_response()
}

#[derive(Deserialize)]
struct VideosListQuery {
    part: Option<String>,
    id: Option<String>,
}

async fn videos_list(
    State(state): State<Shared>,
    Query(q): Query<VideosListQuery>,
    headers: HeaderMap,
) -> Response {
    if !bearer_is_live(&state, &headers) {
        return unauthorized();
    }
    let parts: Vec<String> = q
        .part
        .unwrap_or_default()
        .split(',')
        .map(str::to_string)
        .collect();
    let ids: Vec<String> =
        q.id.unwrap_or_default()
            .split(',')
            .map(str::to_string)
            .collect();
    let mut s = lock(&state);
    let mut items = Vec::new();
    for stored in s.videos.iter_mut().filter(|v| ids.contains(&v.video.id)) {
        stored.polls += 1;
        // The first poll finds the video processing, later ones processed.
        let done = stored.polls > 1;
        let mut item = json!({ "kind": "youtube#video", "id": stored.video.id });
        if parts.iter().any(|p| p == "status") {
            item["status"] = stored.video.resource["status"].clone();
            item["status"]["uploadStatus"] = if done { "processed" } else { "uploaded" }.into();
        }
        if parts.iter().any(|p| p == "processingDetails") {
            item["processingDetails"] =
                json!({ "processingStatus": if done { "succeeded" } else { "processing" } });
        }
        if parts.iter().any(|p| p == "snippet") {
            item["snippet"] = stored.video.resource["snippet"].clone();
        }
        items.push(item);
    }
    Json(json!({ "kind": "youtube#videoListResponse", "items": items })).into_response()
}

#[derive(Deserialize)]
struct PlaylistItemsListQuery {
    #[serde(rename = "playlistId")]
    playlist_id: Option<String>,
    #[serde(rename = "videoId")]
    video_id: Option<String>,
}

async fn playlist_items_list(
    State(state): State<Shared>,
    Query(q): Query<PlaylistItemsListQuery>,
    headers: HeaderMap,
) -> Response {
    if !bearer_is_live(&state, &headers) {
        return unauthorized();
    }
    let Some(playlist_id) = q.playlist_id else {
        return google_error(
            400,
            "missingRequiredParameter",
            "youtube.parameter",
            "playlistId or id is required.",
        );
    };
    let s = lock(&state);
    let items: Vec<serde_json::Value> = s
        .playlist_items
        .iter()
        .filter(|i| i.playlist_id == playlist_id)
        .filter(|i| q.video_id.as_ref().is_none_or(|v| *v == i.video_id))
        .map(|i| json!({ "kind": "youtube#playlistItem", "id": i.id }))
        .collect();
    Json(json!({ "kind": "youtube#playlistItemListResponse", "items": items })).into_response()
}

async fn captions_list(
    State(state): State<Shared>,
    Query(q): Query<VideoIdQuery>,
    headers: HeaderMap,
) -> Response {
    if !bearer_is_live(&state, &headers) {
        return unauthorized();
    }
    let Some(video_id) = q.video_id else {
        return google_error(
            400,
            "missingRequiredParameter",
            "youtube.parameter",
            "videoId is required.",
        );
    };
    let s = lock(&state);
    if !video_exists(&s, &video_id) {
        return video_not_found();
    }
    let items: Vec<serde_json::Value> = s
        .captions
        .iter()
        .filter(|c| c.video_id == video_id)
        .map(|c| {
            json!({
                "kind": "youtube#caption",
                "id": c.id,
                "snippet": { "videoId": c.video_id, "language": c.language, "name": c.name },
            })
        })
        .collect();
    Json(json!({ "kind": "youtube#captionListResponse", "items": items })).into_response()
}
