//! An in-process S3 server for tests (feature `test-server`): `s3s-fs` over a directory,
//! served by hyper on a real TCP port of 127.0.0.1, checking SigV4 signatures (headers and
//! presigned query strings) against fixed keys. It records each request line (for tests that
//! must prove a reader used range requests) and can be told to fail one upload part (to test
//! the abort path against the real server's multipart bookkeeping).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::service::{Service, service_fn};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;

use crate::{S3Config, S3Credentials};

pub const ACCESS_KEY: &str = "gt-test-access";
pub const SECRET_KEY: &str = "gt-test-secret";
pub const REGION: &str = "us-east-1";

/// One request as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// The URL path, still percent-encoded (`/bucket/key`).
    pub path: String,
    pub query: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
}

impl RecordedRequest {
    /// The first byte a `Range: bytes=N-...` request asked for.
    pub fn range_start(&self) -> Option<u64> {
        self.range
            .as_deref()?
            .strip_prefix("bytes=")?
            .split('-')
            .next()?
            .parse()
            .ok()
    }
}

/// A failure the server injects in front of s3s-fs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer every UploadPart with this part number `403 AccessDenied` (not retried by the
    /// SDK), as S3 does when a policy forbids the write.
    RejectUploadPart(u32),
}

pub struct S3TestServer {
    endpoint: String,
    root: PathBuf,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    faults: Arc<Mutex<Vec<Fault>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl S3TestServer {
    /// Serves the directory `root` (created if missing; each top-level directory is a bucket).
    /// Use a fresh directory per server: s3s-fs keeps sidecar files next to the objects.
    pub async fn start(root: impl Into<PathBuf>) -> std::io::Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        let fs =
            s3s_fs::FileSystem::new(&root).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let requests: Arc<Mutex<Vec<RecordedRequest>>> = Arc::default();
        let faults: Arc<Mutex<Vec<Fault>>> = Arc::default();
        let (log, injected) = (requests.clone(), faults.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let (service, log, injected) = (service.clone(), log.clone(), injected.clone());
                let handler = service_fn(move |req: Request<Incoming>| {
                    let recorded = RecordedRequest {
                        method: req.method().to_string(),
                        path: req.uri().path().to_string(),
                        query: req.uri().query().unwrap_or_default().to_string(),
                        range: req
                            .headers()
                            .get(hyper::header::RANGE)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string),
                    };
                    let fault = injected
                        .lock()
                        .expect("fault list")
                        .iter()
                        .find(|f| f.applies_to(&recorded))
                        .copied();
                    log.lock().expect("request log").push(recorded);
                    let reply = match fault {
                        // The hyper trait (the inherent `call` takes an s3s request).
                        None => Ok(Service::call(&service, req)),
                        Some(f) => Err(f.response()),
                    };
                    async move {
                        match reply {
                            Ok(future) => future.await,
                            Err(response) => Ok(response),
                        }
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), handler)
                        .await;
                });
            }
        });
        Ok(Self {
            endpoint,
            root,
            requests,
            faults,
            accept,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The directory s3s-fs serves (buckets are its subdirectories).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A store configuration for `bucket` on this server: path-style addressing, checksums
    /// only where required, the server's keys.
    pub fn config(&self, bucket: &str, cache_dir: impl Into<PathBuf>) -> S3Config {
        let mut config = S3Config::new(bucket, cache_dir).s3_compatible(self.endpoint.clone());
        config.region = Some(REGION.to_string());
        config.credentials = S3Credentials::Static {
            access_key_id: ACCESS_KEY.into(),
            secret_access_key: SECRET_KEY.into(),
            session_token: None,
        };
        config
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().expect("request log").clone()
    }

    pub fn inject(&self, fault: Fault) {
        self.faults.lock().expect("fault list").push(fault);
    }

    pub fn clear_faults(&self) {
        self.faults.lock().expect("fault list").clear();
    }
}

impl Drop for S3TestServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Fault {
    fn applies_to(&self, req: &RecordedRequest) -> bool {
        match self {
            Fault::RejectUploadPart(n) => {
                req.method == "PUT"
                    && req
                        .query
                        .split('&')
                        .any(|pair| pair == format!("partNumber={n}"))
            }
        }
    }

    fn response(&self) -> s3s::HttpResponse {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>\
                    <Message>injected by the test server</Message></Error>";
        Response::builder()
            .status(StatusCode::FORBIDDEN)
            .header(hyper::header::CONTENT_TYPE, "application/xml")
            .body(s3s::Body::from(body.to_string()))
            .expect("a static response")
    }
}
