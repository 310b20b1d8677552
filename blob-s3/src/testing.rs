//! An in-process S3 server for tests (feature `test-server`): `s3s-fs` over a directory,
//! served by hyper on a real TCP port of 127.0.0.1, checking SigV4 signatures (headers and
//! presigned query strings) against fixed keys. It records each request line (for tests that
//! must prove a reader used range requests) and can be told to fail one upload part (to test
//! the abort path against the real server's multipart bookkeeping).
//!
//! s3s-fs knows no storage classes and no RestoreObject. [`ArchiveS3`] wraps it and answers
//! those as AWS does (the S3 API reference of each operation; see the comments there): a
//! class kept per key from PutObject, CopyObject and CreateMultipartUpload, reported by
//! HeadObject and ListObjectsV2; GetObject (and copying from) an archived object that is not
//! restored is `403 InvalidObjectState`; RestoreObject answers `202`, then HeadObject says
//! `x-amz-restore: ongoing-request="true"` until a delay the test sets
//! ([`S3TestServer::set_restore_delay`]) has passed, then `ongoing-request="false",
//! expiry-date="…"` and the object reads again until that date.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::service::{Service, service_fn};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use s3s::auth::SimpleAuth;
use s3s::dto::*;
use s3s::service::S3ServiceBuilder;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};
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
    classes: Arc<ClassBook>,
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
        let classes = Arc::new(ClassBook::default());
        let mut builder = S3ServiceBuilder::new(ArchiveS3 {
            fs,
            book: classes.clone(),
        });
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
            classes,
            accept,
        })
    }

    /// How long a RestoreObject takes from now on (default zero: done at the next HEAD). Real
    /// Standard-tier restores take hours; tests that must see a restore in progress set more.
    pub fn set_restore_delay(&self, delay: Duration) {
        *self.classes.restore_delay.lock().expect("restore delay") = delay;
    }

    /// The storage class the server holds for `bucket/key` (`None` for no such object), as a
    /// direct look at its bookkeeping rather than through the S3 API.
    pub fn storage_class_of(&self, bucket: &str, key: &str) -> Option<String> {
        let path = self.root.join(bucket).join(key);
        if !path.is_file() {
            return None;
        }
        Some(
            self.classes
                .objects
                .lock()
                .expect("class book")
                .get(&(bucket.to_string(), key.to_string()))
                .map_or_else(|| StorageClass::STANDARD.to_string(), |o| o.class.clone()),
        )
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

/// Classes and restores per object (s3s-fs keeps none).
#[derive(Default)]
struct ClassBook {
    objects: Mutex<HashMap<(String, String), ObjectClass>>,
    /// Storage class asked for at CreateMultipartUpload, applied at completion.
    uploads: Mutex<HashMap<String, String>>,
    restore_delay: Mutex<Duration>,
}

#[derive(Debug, Clone)]
struct ObjectClass {
    class: String,
    restore: Restore,
}

#[derive(Debug, Clone, Copy)]
enum Restore {
    None,
    /// Done at `ready_at`; the copy then lives `days` days.
    Running {
        ready_at: Instant,
        days: i32,
    },
    Done {
        expires: chrono::DateTime<chrono::Utc>,
    },
}

/// Classes whose objects must be restored before GetObject (S3 API reference, GetObject: "If
/// the object you are retrieving is stored in the S3 Glacier Flexible Retrieval storage class
/// [or] the S3 Glacier Deep Archive storage class … you must first restore a copy using
/// RestoreObject. Otherwise, this operation returns an InvalidObjectState error").
fn archive_class(class: &str) -> bool {
    class == StorageClass::GLACIER || class == StorageClass::DEEP_ARCHIVE
}

impl ClassBook {
    /// The object's class and restore, with a finished restore moved on and an expired copy
    /// dropped (the clock is read here, so tests control time by the delay).
    fn get(&self, bucket: &str, key: &str) -> Option<ObjectClass> {
        let mut objects = self.objects.lock().expect("class book");
        let entry = objects.get_mut(&(bucket.to_string(), key.to_string()))?;
        match entry.restore {
            Restore::Running { ready_at, days } if Instant::now() >= ready_at => {
                entry.restore = Restore::Done {
                    expires: chrono::Utc::now() + chrono::Duration::days(i64::from(days)),
                };
            }
            Restore::Done { expires } if expires <= chrono::Utc::now() => {
                entry.restore = Restore::None;
            }
            _ => {}
        }
        Some(entry.clone())
    }

    fn class_of(&self, bucket: &str, key: &str) -> String {
        self.get(bucket, key)
            .map_or_else(|| StorageClass::STANDARD.to_string(), |o| o.class)
    }

    /// Whether GetObject may read the object now.
    fn readable(&self, bucket: &str, key: &str) -> bool {
        match self.get(bucket, key) {
            None => true,
            Some(o) => !archive_class(&o.class) || matches!(o.restore, Restore::Done { .. }),
        }
    }

    /// A new version of the object (PUT, copy, completed upload): its class, no restore.
    fn set(&self, bucket: &str, key: &str, class: Option<&StorageClass>) {
        let class = class
            .map_or(StorageClass::STANDARD, |c| c.as_str())
            .to_string();
        self.objects.lock().expect("class book").insert(
            (bucket.to_string(), key.to_string()),
            ObjectClass {
                class,
                restore: Restore::None,
            },
        );
    }

    fn forget(&self, bucket: &str, key: &str) {
        self.objects
            .lock()
            .expect("class book")
            .remove(&(bucket.to_string(), key.to_string()));
    }
}

fn invalid_object_state() -> s3s::S3Error {
    s3_error!(
        InvalidObjectState,
        "The operation is not valid for the object's storage class"
    )
}

/// s3s-fs with storage classes and RestoreObject (see the module documentation).
pub struct ArchiveS3 {
    fs: s3s_fs::FileSystem,
    book: Arc<ClassBook>,
}

/// The S3 trait for [`ArchiveS3`]: `delegate` operations go to s3s-fs unchanged, `own` ones are
/// written out. (One macro so `#[async_trait]` sees every method expanded.)
macro_rules! archive_s3 {
    (delegate { $($name:ident($input:ident) -> $output:ident;)* } own { $($own:item)* }) => {
        #[async_trait::async_trait]
        impl S3 for ArchiveS3 {
            $(
                async fn $name(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                    self.fs.$name(req).await
                }
            )*
            $($own)*
        }
    };
}

archive_s3! {
    delegate {
        create_bucket(CreateBucketInput) -> CreateBucketOutput;
        delete_bucket(DeleteBucketInput) -> DeleteBucketOutput;
        get_bucket_location(GetBucketLocationInput) -> GetBucketLocationOutput;
        head_bucket(HeadBucketInput) -> HeadBucketOutput;
        list_buckets(ListBucketsInput) -> ListBucketsOutput;
        list_objects(ListObjectsInput) -> ListObjectsOutput;
        list_parts(ListPartsInput) -> ListPartsOutput;
        upload_part(UploadPartInput) -> UploadPartOutput;
        abort_multipart_upload(AbortMultipartUploadInput) -> AbortMultipartUploadOutput;
    }
    own {
        async fn put_object(
            &self,
            req: S3Request<PutObjectInput>,
        ) -> S3Result<S3Response<PutObjectOutput>> {
            let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
            let class = req.input.storage_class.clone();
            let out = self.fs.put_object(req).await?;
            self.book.set(&bucket, &key, class.as_ref());
            Ok(out)
        }

        async fn copy_object(
            &self,
            req: S3Request<CopyObjectInput>,
        ) -> S3Result<S3Response<CopyObjectOutput>> {
            let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
            let class = req.input.storage_class.clone();
            if let CopySource::Bucket {
                bucket: src_bucket,
                key: src_key,
                ..
            } = &req.input.copy_source
            {
                // CopyObject reads the source: an archived one must be restored first (S3
                // API reference, CopyObject: "you must first restore a copy … before you can
                // use it as a source object for the copy operation").
                if !self.book.readable(src_bucket, src_key) {
                    return Err(invalid_object_state());
                }
                // CopyObject onto itself must change something (S3 API reference,
                // CopyObject: copying an object to itself without changing its metadata,
                // storage class, … is "illegal", 400 InvalidRequest).
                let replaces_metadata = req
                    .input
                    .metadata_directive
                    .as_ref()
                    .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
                if **src_bucket == *bucket
                    && **src_key == *key
                    && !replaces_metadata
                    && class
                        .as_ref()
                        .is_none_or(|c| c.as_str() == self.book.class_of(&bucket, &key))
                {
                    return Err(s3_error!(
                        InvalidRequest,
                        "This copy request is illegal because it is trying to copy an object to \
                         itself without changing the object's metadata, storage class, website \
                         redirect location or encryption attributes."
                    ));
                }
            }
            let out = self.fs.copy_object(req).await?;
            // Without x-amz-storage-class the copy is STANDARD, whatever the source was.
            self.book.set(&bucket, &key, class.as_ref());
            Ok(out)
        }

        async fn upload_part_copy(
            &self,
            req: S3Request<UploadPartCopyInput>,
        ) -> S3Result<S3Response<UploadPartCopyOutput>> {
            if let CopySource::Bucket { bucket, key, .. } = &req.input.copy_source
                && !self.book.readable(bucket, key)
            {
                return Err(invalid_object_state());
            }
            self.fs.upload_part_copy(req).await
        }

        async fn create_multipart_upload(
            &self,
            req: S3Request<CreateMultipartUploadInput>,
        ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
            let class = req.input.storage_class.clone();
            let out = self.fs.create_multipart_upload(req).await?;
            if let (Some(id), Some(class)) = (out.output.upload_id.clone(), class) {
                self.book
                    .uploads
                    .lock()
                    .expect("uploads")
                    .insert(id, class.as_str().to_string());
            }
            Ok(out)
        }

        async fn complete_multipart_upload(
            &self,
            req: S3Request<CompleteMultipartUploadInput>,
        ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
            let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
            let class = self
                .book
                .uploads
                .lock()
                .expect("uploads")
                .remove(&req.input.upload_id)
                .map(StorageClass::from);
            let out = self.fs.complete_multipart_upload(req).await?;
            self.book.set(&bucket, &key, class.as_ref());
            Ok(out)
        }

        async fn get_object(
            &self,
            req: S3Request<GetObjectInput>,
        ) -> S3Result<S3Response<GetObjectOutput>> {
            if !self.book.readable(&req.input.bucket, &req.input.key) {
                return Err(invalid_object_state());
            }
            let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
            let mut out = self.fs.get_object(req).await?;
            let class = self.book.class_of(&bucket, &key);
            if class != StorageClass::STANDARD {
                out.output.storage_class = Some(StorageClass::from(class));
            }
            Ok(out)
        }

        async fn head_object(
            &self,
            req: S3Request<HeadObjectInput>,
        ) -> S3Result<S3Response<HeadObjectOutput>> {
            let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
            let mut out = self.fs.head_object(req).await?;
            if let Some(object) = self.book.get(&bucket, &key) {
                // S3 API reference, HeadObject, x-amz-storage-class: "Amazon S3 returns this
                // header for all objects except for S3 Standard storage class objects."
                if object.class != StorageClass::STANDARD {
                    out.output.storage_class = Some(StorageClass::from(object.class.clone()));
                }
                // HeadObject, x-amz-restore: `ongoing-request="true"` while the restore runs,
                // `ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"` once
                // the copy is readable; absent otherwise.
                out.output.restore = match object.restore {
                    Restore::None => None,
                    Restore::Running { .. } => Some("ongoing-request=\"true\"".to_string()),
                    Restore::Done { expires } => Some(format!(
                        "ongoing-request=\"false\", expiry-date=\"{}\"",
                        crate::format_http_date(expires)
                    )),
                };
            }
            Ok(out)
        }

        async fn list_objects_v2(
            &self,
            req: S3Request<ListObjectsV2Input>,
        ) -> S3Result<S3Response<ListObjectsV2Output>> {
            let bucket = req.input.bucket.clone();
            let mut out = self.fs.list_objects_v2(req).await?;
            // ListObjectsV2 names every object's class, STANDARD included.
            for object in out.output.contents.iter_mut().flatten() {
                if let Some(key) = &object.key {
                    object.storage_class =
                        Some(ObjectStorageClass::from(self.book.class_of(&bucket, key)));
                }
            }
            Ok(out)
        }

        async fn delete_object(
            &self,
            req: S3Request<DeleteObjectInput>,
        ) -> S3Result<S3Response<DeleteObjectOutput>> {
            let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
            let out = self.fs.delete_object(req).await?;
            self.book.forget(&bucket, &key);
            Ok(out)
        }

        async fn delete_objects(
            &self,
            req: S3Request<DeleteObjectsInput>,
        ) -> S3Result<S3Response<DeleteObjectsOutput>> {
            let bucket = req.input.bucket.clone();
            let keys: Vec<String> = req
                .input
                .delete
                .objects
                .iter()
                .map(|o| o.key.clone())
                .collect();
            let out = self.fs.delete_objects(req).await?;
            for key in keys {
                self.book.forget(&bucket, &key);
            }
            Ok(out)
        }

        async fn restore_object(
            &self,
            req: S3Request<RestoreObjectInput>,
        ) -> S3Result<S3Response<RestoreObjectOutput>> {
            let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
            let head = S3Request {
                input: HeadObjectInput::builder()
                    .bucket(bucket.clone())
                    .key(key.clone())
                    .build()
                    .map_err(|e| s3_error!(InternalError, "{e}"))?,
                method: req.method.clone(),
                uri: req.uri.clone(),
                headers: req.headers.clone(),
                extensions: Default::default(),
                credentials: req.credentials.clone(),
                region: req.region.clone(),
                service: req.service.clone(),
                trailing_headers: None,
            };
            // NoSuchKey for a missing object, as S3 answers.
            self.fs.head_object(head).await?;
            let days = req
                .input
                .restore_request
                .as_ref()
                .and_then(|r| r.days)
                .unwrap_or(1);
            if days < 1 {
                return Err(s3_error!(InvalidArgument, "Days must be at least 1"));
            }
            let object = self.book.get(&bucket, &key);
            let mut objects = self.book.objects.lock().expect("class book");
            let Some(entry) = object
                .filter(|o| archive_class(&o.class))
                .and_then(|_| objects.get_mut(&(bucket.to_string(), key.to_string())))
            else {
                // RestoreObject of an object in a class that is not archived: 403
                // InvalidObjectState ("Object restore is already in progress" is 409; restoring
                // a STANDARD object is refused as not valid for its storage class).
                return Err(invalid_object_state());
            };
            // S3 API reference, RestoreObject, Responses: "202 Accepted" when the restore
            // starts, "200 OK" when a restored copy already exists (its days are reset), "409
            // Conflict" RestoreAlreadyInProgress while one runs.
            let status = match entry.restore {
                Restore::Running { .. } => {
                    return Err(s3_error!(
                        RestoreAlreadyInProgress,
                        "Object restore is already in progress"
                    ));
                }
                Restore::Done { .. } => {
                    entry.restore = Restore::Done {
                        expires: chrono::Utc::now() + chrono::Duration::days(i64::from(days)),
                    };
                    hyper::StatusCode::OK
                }
                Restore::None => {
                    let delay = *self.book.restore_delay.lock().expect("restore delay");
                    entry.restore = Restore::Running {
                        ready_at: Instant::now() + delay,
                        days,
                    };
                    hyper::StatusCode::ACCEPTED
                }
            };
            Ok(S3Response::with_status(RestoreObjectOutput::default(), status))
        }
    }
}
