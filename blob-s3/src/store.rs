//! [`S3BlobStore`]: the [`BlobStore`] trait over an S3 bucket (AWS or an S3-compatible server).

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::meta::region::RegionProviderChain;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{
    BucketLocationConstraint, CompletedMultipartUpload, CompletedPart, CreateBucketConfiguration,
    Delete, GlacierJobParameters, MetadataDirective, ObjectIdentifier, RestoreRequest,
    StorageClass, Tier,
};
use gt_store::StoreError;
use gt_store::blob::{
    BlobMeta, BlobObject, BlobPage, BlobStorage, BlobStore, MediaSource, RestoreState,
    STANDARD_CLASS, StorageState, archived_error, check_key,
};
use gt_store::error::StoreResult;
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;

use crate::config::{
    AddressingStyle, ArchiveClass, ChecksumPolicy, MAX_PARTS, S3Config, S3Credentials,
};

/// The longest a presigned URL may live (SigV4's limit).
pub const MAX_PRESIGN_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);
/// DeleteObjects takes at most this many keys per request.
const DELETE_BATCH: usize = 1000;
/// S3 keys are at most 1024 bytes of UTF-8.
const MAX_KEY_BYTES: usize = 1024;
/// Region used when neither the configuration nor the AWS region chain names one (an
/// S3-compatible server ignores it, but SigV4 needs one).
const FALLBACK_REGION: &str = "us-east-1";
/// The largest object one CopyObject may copy (5 GiB); larger ones (a 6 GB OBS recording) are
/// copied in parts with UploadPartCopy.
pub const MAX_COPY_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Part size of a multipart copy (S3 copies parts server-side, so large parts cost nothing
/// here; 10 000 of them cover 5 TB, S3's largest object).
const COPY_PART_SIZE: u64 = 512 * 1024 * 1024;

/// Blobs in an S3 bucket under an optional key prefix. Cheap to clone (the SDK client is an
/// `Arc` inside).
#[derive(Debug, Clone)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
    key_prefix: String,
    multipart_threshold: u64,
    part_size: u64,
    upload_concurrency: usize,
    cache_dir: PathBuf,
    archive_class: ArchiveClass,
    /// Objects larger than this are copied in parts (storage class changes).
    copy_part_threshold: u64,
}

impl S3BlobStore {
    /// Builds the SDK client from `config` (credentials are resolved lazily, on the first
    /// request; nothing is sent here).
    pub async fn connect(config: S3Config) -> StoreResult<Self> {
        config.validate()?;
        let region = RegionProviderChain::first_try(config.region.clone().map(Region::new))
            .or_default_provider()
            .or_else(Region::new(FALLBACK_REGION));
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(region);
        if let S3Credentials::Static {
            access_key_id,
            secret_access_key,
            session_token,
        } = &config.credentials
        {
            loader = loader.credentials_provider(Credentials::new(
                access_key_id,
                secret_access_key,
                session_token.clone(),
                None,
                "gt-s3-config",
            ));
        }
        let sdk = loader.load().await;
        let mut s3 = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(config.addressing == AddressingStyle::Path);
        if let Some(url) = &config.endpoint_url {
            s3 = s3.endpoint_url(url);
        }
        s3 = match config.checksums {
            ChecksumPolicy::WhenRequired => s3
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired),
            ChecksumPolicy::WhenSupported => s3
                .request_checksum_calculation(RequestChecksumCalculation::WhenSupported)
                .response_checksum_validation(ResponseChecksumValidation::WhenSupported),
        };
        Self::from_client(Client::from_conf(s3.build()), &config)
    }

    /// A store over a client configured elsewhere; `config`'s connection fields are ignored.
    pub fn from_client(client: Client, config: &S3Config) -> StoreResult<Self> {
        config.validate()?;
        Ok(Self {
            client,
            bucket: config.bucket.clone(),
            key_prefix: config.key_prefix.clone(),
            multipart_threshold: config.multipart_threshold,
            part_size: config.part_size,
            upload_concurrency: config.upload_concurrency,
            cache_dir: config.cache_dir.clone(),
            archive_class: config.archive_class,
            copy_part_threshold: MAX_COPY_OBJECT_SIZE,
        })
    }

    /// Copies objects larger than `bytes` in parts instead of with one CopyObject (tests use
    /// a small value to reach the multipart path; S3 refuses a single copy above 5 GiB).
    pub fn with_copy_part_threshold(mut self, bytes: u64) -> Self {
        self.copy_part_threshold = bytes.clamp(1, MAX_COPY_OBJECT_SIZE);
        self
    }

    /// Rewrites the object onto itself in `class` (S3 changes a storage class only by a copy;
    /// the ETag of a single-request copy stays the MD5 of the bytes, a multipart one does
    /// not). Content type and metadata are kept. Atomic like any PUT: readers see the old or
    /// the new object.
    async fn copy_to_class(&self, key: &str, size: u64, class: &str) -> StoreResult<()> {
        let s3_key = self.s3_key(key)?;
        let source = copy_source(&self.bucket, &s3_key);
        if size <= self.copy_part_threshold {
            self.client
                .copy_object()
                .bucket(&self.bucket)
                .key(&s3_key)
                .copy_source(&source)
                .metadata_directive(MetadataDirective::Copy)
                .storage_class(StorageClass::from(class))
                .send()
                .await
                .map_err(|e| self.err("CopyObject", key, e))?;
            return Ok(());
        }
        let part_size = COPY_PART_SIZE
            .min(self.copy_part_threshold)
            .max(size.div_ceil(MAX_PARTS));
        let (s3_key, source) = (&s3_key, &source);
        self.multipart(key, s3_key, Some(class), |upload_id| async move {
            let mut parts = Vec::new();
            let mut offset = 0u64;
            while offset < size {
                let last = (offset + part_size).min(size) - 1;
                let number = i32::try_from(parts.len() + 1).expect("at most 10 000 parts");
                let out = self
                    .client
                    .upload_part_copy()
                    .bucket(&self.bucket)
                    .key(s3_key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .copy_source(source)
                    .copy_source_range(format!("bytes={offset}-{last}"))
                    .send()
                    .await
                    .map_err(|e| self.err("UploadPartCopy", key, e))?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(
                            out.copy_part_result()
                                .and_then(|r| r.e_tag().map(str::to_string)),
                        )
                        .build(),
                );
                offset = last + 1;
            }
            Ok(parts)
        })
        .await
    }

    /// One multipart upload: created (in `class`, if given), its parts made by `parts`, then
    /// completed; on any failure it is aborted so no parts linger (and bill) in the bucket.
    async fn multipart<F, Fut>(
        &self,
        key: &str,
        s3_key: &str,
        class: Option<&str>,
        parts: F,
    ) -> StoreResult<()>
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = StoreResult<Vec<CompletedPart>>>,
    {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(s3_key)
            .content_type(content_type(key))
            .set_storage_class(class.map(StorageClass::from))
            .send()
            .await
            .map_err(|e| self.err("CreateMultipartUpload", key, e))?;
        let upload_id = created.upload_id().ok_or_else(|| {
            StoreError::Backend(anyhow::anyhow!(
                "S3 CreateMultipartUpload for {s3_key:?} returned no upload id"
            ))
        })?;
        let result = async {
            let parts = parts(upload_id.to_string()).await?;
            self.client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(s3_key)
                .upload_id(upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| self.err("CompleteMultipartUpload", key, e))?;
            Ok(())
        }
        .await;
        if result.is_err()
            && let Err(abort) = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(s3_key)
                .upload_id(upload_id)
                .send()
                .await
        {
            // The bucket's lifecycle rule for incomplete uploads is the backstop.
            tracing::warn!(
                key = s3_key,
                upload_id,
                error = %DisplayErrorContext(&abort),
                "could not abort a failed multipart upload"
            );
        }
        result
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// Creates the bucket unless it exists (local S3-compatible servers start empty; on AWS
    /// terraform creates it and this only checks).
    pub async fn create_bucket_if_missing(&self) -> StoreResult<()> {
        if self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        let mut create = self.client.create_bucket().bucket(&self.bucket);
        // Outside us-east-1 S3 wants the region restated (and rejects it inside).
        if let Some(region) = self
            .client
            .config()
            .region()
            .map(|r| r.as_ref().to_string())
            && region != FALLBACK_REGION
        {
            create = create.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region.as_str()))
                    .build(),
            );
        }
        match create.send().await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => Ok(()),
            Err(e) => Err(sdk_error("CreateBucket", &self.bucket, "", e)),
        }
    }

    /// The S3 key for a store key, refusing keys that could escape (see
    /// [`check_key`]) or that S3 cannot hold.
    fn s3_key(&self, key: &str) -> StoreResult<String> {
        check_key(key)?;
        let full = format!("{}{key}", self.key_prefix);
        if full.len() > MAX_KEY_BYTES {
            return Err(StoreError::Invalid(format!(
                "invalid blob key {key:?}: longer than S3's {MAX_KEY_BYTES} bytes"
            )));
        }
        Ok(full)
    }

    fn err<E>(&self, op: &str, key: &str, e: SdkError<E>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        sdk_error(op, &self.bucket, &format!("{}{key}", self.key_prefix), e)
    }

    async fn put_single(
        &self,
        key: &str,
        s3_key: &str,
        body: ByteStream,
        size: u64,
    ) -> StoreResult<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(s3_key)
            .content_type(content_type(key))
            .content_length(size_i64(size)?)
            .body(body)
            .send()
            .await
            .map_err(|e| self.err("PutObject", key, e))?;
        Ok(())
    }

    /// Uploads `path` in parts; on any failure the upload is aborted so no parts linger (and
    /// bill) in the bucket.
    async fn put_multipart(
        &self,
        key: &str,
        s3_key: &str,
        path: &Path,
        size: u64,
    ) -> StoreResult<()> {
        // Grow the parts when the file would need more than S3's 10 000.
        let part_size = self.part_size.max(size.div_ceil(MAX_PARTS));
        self.multipart(key, s3_key, None, |upload_id| async move {
            self.upload_parts(key, s3_key, &upload_id, path, size, part_size)
                .await
        })
        .await
    }

    /// Uploads the parts of `path`, `upload_concurrency` at a time, reading each straight from
    /// the file. On the first failure no new part starts and the ones in flight are awaited,
    /// so the abort that follows leaves nothing behind.
    async fn upload_parts(
        &self,
        key: &str,
        s3_key: &str,
        upload_id: &str,
        path: &Path,
        size: u64,
        part_size: u64,
    ) -> StoreResult<Vec<CompletedPart>> {
        let count = size.div_ceil(part_size);
        let mut in_flight = JoinSet::new();
        let mut done = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        let mut next_part: u64 = 1;
        let mut first_error: Option<StoreError> = None;
        loop {
            while first_error.is_none()
                && next_part <= count
                && in_flight.len() < self.upload_concurrency
            {
                let number = next_part;
                next_part += 1;
                let offset = (number - 1) * part_size;
                let len = part_size.min(size - offset);
                let (store, key, s3_key, upload_id, path) = (
                    self.clone(),
                    key.to_string(),
                    s3_key.to_string(),
                    upload_id.to_string(),
                    path.to_path_buf(),
                );
                in_flight.spawn(async move {
                    let number = i32::try_from(number).expect("at most 10 000 parts");
                    let body = ByteStream::read_from()
                        .path(&path)
                        .offset(offset)
                        .length(Length::Exact(len))
                        .build()
                        .await
                        .map_err(|e| {
                            StoreError::Backend(anyhow::anyhow!(
                                "reading part {number} of {} for blob {key:?}: {e}",
                                path.display()
                            ))
                        })?;
                    let out = store
                        .client
                        .upload_part()
                        .bucket(&store.bucket)
                        .key(&s3_key)
                        .upload_id(&upload_id)
                        .part_number(number)
                        .content_length(size_i64(len)?)
                        .body(body)
                        .send()
                        .await
                        .map_err(|e| store.err("UploadPart", &key, e))?;
                    Ok::<_, StoreError>(
                        CompletedPart::builder()
                            .part_number(number)
                            .set_e_tag(out.e_tag)
                            .build(),
                    )
                });
            }
            match in_flight.join_next().await {
                None => break,
                Some(Ok(Ok(part))) => done.push(part),
                Some(Ok(Err(e))) => {
                    first_error.get_or_insert(e);
                }
                Some(Err(join)) => {
                    first_error.get_or_insert(StoreError::Backend(anyhow::anyhow!(
                        "uploading a part of blob {key:?}: {join}"
                    )));
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        done.sort_by_key(|p| p.part_number());
        Ok(done)
    }

    /// Downloads the object into the cache (unless the same version is there) and returns the
    /// cached file. Cache layout: `cache_dir/<sha256 of bucket and key>/<etag>-<size>/<file
    /// name>`: the original file name keeps the extension FFmpeg probes by, and a replaced
    /// object gets a new directory (the older ones are removed).
    async fn download_to_cache(&self, key: &str) -> StoreResult<PathBuf> {
        let s3_key = self.s3_key(key)?;
        let object_dir = self.cache_dir.join(hex(&Sha256::digest(
            format!("{}/{s3_key}", self.bucket).as_bytes(),
        )));
        let file_name = match key.trim_end_matches('/').rsplit('/').next() {
            Some(name) if !name.is_empty() => name.to_string(),
            _ => "object".to_string(),
        };
        // Replaced between the HEAD and the GET: look again (If-Match makes the GET fail
        // rather than mix versions).
        for _ in 0..3 {
            let meta = self.head(key).await?;
            let version = format!(
                "{}-{}",
                meta.etag
                    .as_deref()
                    .unwrap_or("")
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect::<String>(),
                meta.size
            );
            let version_dir = object_dir.join(&version);
            let path = version_dir.join(&file_name);
            if tokio::fs::metadata(&path)
                .await
                .is_ok_and(|m| m.is_file() && m.len() == meta.size)
            {
                return Ok(path);
            }
            let mut get = self.client.get_object().bucket(&self.bucket).key(&s3_key);
            if let Some(etag) = &meta.etag {
                get = get.if_match(etag);
            }
            let response = match get.send().await {
                Ok(r) => r,
                Err(e) if status(&e) == Some(412) => continue,
                Err(e) => return Err(self.err("GetObject", key, e)),
            };
            let cache_err = |what: &str, e: std::io::Error| {
                StoreError::Backend(anyhow::anyhow!(
                    "caching blob {key:?}: {what} {}: {e}",
                    version_dir.display()
                ))
            };
            tokio::fs::create_dir_all(&version_dir)
                .await
                .map_err(|e| cache_err("creating", e))?;
            let tmp = version_dir.join(format!(
                ".{file_name}.{}.part",
                uuid::Uuid::new_v4().simple()
            ));
            let written = async {
                let mut file = tokio::fs::File::create(&tmp).await?;
                let mut body = response.body.into_async_read();
                let n = tokio::io::copy_buf(&mut body, &mut file).await?;
                tokio::io::AsyncWriteExt::flush(&mut file).await?;
                Ok::<_, std::io::Error>(n)
            }
            .await;
            let written = match written {
                Ok(n) => n,
                Err(e) => {
                    let _ = tokio::fs::remove_file(&tmp).await;
                    return Err(cache_err("writing into", e));
                }
            };
            if written != meta.size {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(StoreError::Backend(anyhow::anyhow!(
                    "caching blob {key:?}: got {written} bytes, expected {}",
                    meta.size
                )));
            }
            tokio::fs::rename(&tmp, &path)
                .await
                .map_err(|e| cache_err("renaming into", e))?;
            remove_other_versions(&object_dir, &version).await;
            return Ok(path);
        }
        Err(StoreError::Backend(anyhow::anyhow!(
            "blob {key:?} kept changing while being downloaded"
        )))
    }
}

/// Older cached versions of an object: removed once a newer one is in place (readers that
/// still hold one open keep reading it; Unix unlinks lazily).
async fn remove_other_versions(object_dir: &Path, keep: &str) {
    let Ok(mut entries) = tokio::fs::read_dir(object_dir).await else {
        return;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        if entry.file_name() != keep {
            let _ = tokio::fs::remove_dir_all(entry.path()).await;
        }
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn list_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> StoreResult<BlobPage> {
        if !prefix.is_empty() {
            check_key(prefix)?;
        }
        let mut request = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(format!("{}{prefix}", self.key_prefix))
            // S3 returns at most 1000 per request; "at most `limit`" still holds.
            .max_keys(i32::try_from(limit.clamp(1, 1000)).expect("at most 1000"));
        if let Some(after) = start_after {
            request = request.start_after(format!("{}{after}", self.key_prefix));
        }
        let out = request
            .send()
            .await
            .map_err(|e| self.err("ListObjectsV2", prefix, e))?;
        let mut objects = Vec::with_capacity(out.contents().len());
        for o in out.contents() {
            let full = o.key().unwrap_or_default();
            let Some(key) = full.strip_prefix(self.key_prefix.as_str()) else {
                return Err(StoreError::Backend(anyhow::anyhow!(
                    "S3 listed {full:?} outside the requested prefix {:?}",
                    self.key_prefix
                )));
            };
            objects.push(BlobObject {
                key: key.to_string(),
                size: u64::try_from(o.size().unwrap_or(0)).unwrap_or(0),
            });
        }
        let next = if out.is_truncated() == Some(true) {
            match objects.last() {
                Some(last) => Some(last.key.clone()),
                None => {
                    return Err(StoreError::Backend(anyhow::anyhow!(
                        "S3 returned an empty page marked truncated for prefix {prefix:?}"
                    )));
                }
            }
        } else {
            None
        };
        Ok(BlobPage { objects, next })
    }

    async fn local_path(&self, key: &str) -> StoreResult<PathBuf> {
        self.download_to_cache(key).await
    }

    async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> StoreResult<()> {
        let s3_key = self.s3_key(key)?;
        let size = bytes.len() as u64;
        // A single PutObject is atomic on S3: readers see the old or the new object.
        self.put_single(key, &s3_key, ByteStream::from(bytes), size)
            .await
    }

    async fn put_file(&self, key: &str, path: &Path) -> StoreResult<()> {
        let s3_key = self.s3_key(key)?;
        let meta = tokio::fs::metadata(path).await.map_err(|e| {
            let msg = format!("source file {} for blob {key:?}: {e}", path.display());
            if e.kind() == std::io::ErrorKind::NotFound {
                StoreError::NotFound(msg)
            } else {
                StoreError::Backend(anyhow::anyhow!(msg))
            }
        })?;
        if !meta.is_file() {
            return Err(StoreError::Invalid(format!(
                "source {} for blob {key:?} is not a file",
                path.display()
            )));
        }
        let size = meta.len();
        if size > self.multipart_threshold {
            // CompleteMultipartUpload publishes the object at once, so this is atomic too.
            return self.put_multipart(key, &s3_key, path, size).await;
        }
        let body = ByteStream::read_from()
            .path(path)
            .length(Length::Exact(size))
            .build()
            .await
            .map_err(|e| {
                StoreError::Backend(anyhow::anyhow!(
                    "reading {} for blob {key:?}: {e}",
                    path.display()
                ))
            })?;
        self.put_single(key, &s3_key, body, size).await
    }

    async fn get_bytes(&self, key: &str) -> StoreResult<Vec<u8>> {
        let s3_key = self.s3_key(key)?;
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&s3_key)
            .send()
            .await
            .map_err(|e| self.err("GetObject", key, e))?;
        let body = out.body.collect().await.map_err(|e| {
            StoreError::Backend(anyhow::anyhow!("reading blob {key:?} from S3: {e}"))
        })?;
        Ok(body.into_bytes().to_vec())
    }

    async fn exists(&self, key: &str) -> StoreResult<bool> {
        match self.head(key).await {
            Ok(_) => Ok(true),
            Err(StoreError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> StoreResult<u64> {
        let objects = self.list_all(prefix).await?;
        let mut deleted = 0u64;
        for batch in objects.chunks(DELETE_BATCH) {
            let ids = batch
                .iter()
                .map(|o| {
                    ObjectIdentifier::builder()
                        .key(format!("{}{}", self.key_prefix, o.key))
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StoreError::Backend(e.into()))?;
            let delete = Delete::builder()
                .set_objects(Some(ids))
                // Only failures come back: 1000 "deleted" entries are noise.
                .quiet(true)
                .build()
                .map_err(|e| StoreError::Backend(e.into()))?;
            let out = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| self.err("DeleteObjects", prefix, e))?;
            let failed = out.errors();
            deleted += (batch.len() - failed.len()) as u64;
            if let Some(first) = failed.first() {
                return Err(StoreError::Backend(anyhow::anyhow!(
                    "S3 DeleteObjects under {prefix:?}: {} of {} keys not deleted ({deleted} deleted so far); first {:?}: {} {}",
                    failed.len(),
                    batch.len(),
                    first.key().unwrap_or_default(),
                    first.code().unwrap_or_default(),
                    first.message().unwrap_or_default(),
                )));
            }
        }
        Ok(deleted)
    }

    async fn head(&self, key: &str) -> StoreResult<BlobMeta> {
        let s3_key = self.s3_key(key)?;
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&s3_key)
            .send()
            .await
            .map_err(|e| self.err("HeadObject", key, e))?;
        Ok(BlobMeta {
            size: u64::try_from(out.content_length().unwrap_or(0)).unwrap_or(0),
            etag: out.e_tag().map(str::to_string),
        })
    }

    async fn read_range(&self, key: &str, offset: u64, len: u64) -> StoreResult<Vec<u8>> {
        let s3_key = self.s3_key(key)?;
        if len == 0 {
            // An empty range is not expressible in HTTP; still answer NotFound for no object.
            self.head(key).await?;
            return Ok(Vec::new());
        }
        let last = offset.saturating_add(len - 1);
        // A range reaching past any possible object ("the rest") is sent open-ended: some
        // servers reject last-byte positions beyond i64.
        let range = if last >= i64::MAX as u64 {
            format!("bytes={offset}-")
        } else {
            format!("bytes={offset}-{last}")
        };
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&s3_key)
            .range(range)
            .send()
            .await
        {
            Ok(out) => out,
            // 416: the object exists (a missing one is 404) and `offset` is at or past its end.
            Err(e) if status(&e) == Some(416) || e.code() == Some("InvalidRange") => {
                return Ok(Vec::new());
            }
            Err(e) => return Err(self.err("GetObject", key, e)),
        };
        let ranged = out.content_range().is_some();
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::Backend(anyhow::anyhow!("reading blob {key:?} from S3: {e}")))?
            .into_bytes();
        if ranged {
            return Ok(bytes.to_vec());
        }
        // A server that ignores Range sends the whole object: cut the range out here.
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let end = usize::try_from(last.saturating_add(1))
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        Ok(bytes[start..end].to_vec())
    }

    async fn storage(&self, key: &str) -> StoreResult<BlobStorage> {
        let s3_key = self.s3_key(key)?;
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&s3_key)
            .send()
            .await
            .map_err(|e| self.err("HeadObject", key, e))?;
        // HeadObject leaves out `x-amz-storage-class` for STANDARD objects.
        let class = out
            .storage_class()
            .map_or(STANDARD_CLASS, |c| c.as_str())
            .to_string();
        let state = if needs_restore(&class) {
            StorageState::Archived(parse_restore_header(out.restore()))
        } else {
            StorageState::Standard
        };
        Ok(BlobStorage {
            size: u64::try_from(out.content_length().unwrap_or(0)).unwrap_or(0),
            storage_class: class,
            state,
        })
    }

    async fn archive(&self, key: &str) -> StoreResult<()> {
        let storage = self.storage(key).await?;
        if let StorageState::Archived(_) = storage.state {
            return Ok(());
        }
        self.copy_to_class(key, storage.size, self.archive_class.as_str())
            .await
    }

    async fn request_restore(&self, key: &str, days: u32) -> StoreResult<RestoreState> {
        let days_i32 = i32::try_from(days).ok().filter(|d| *d >= 1).ok_or_else(|| {
            StoreError::Invalid(format!(
                "restoring blob {key:?}: the restored copy must be kept 1 to {} days, not {days}",
                i32::MAX
            ))
        })?;
        match self.storage(key).await?.state {
            StorageState::Standard => return Ok(RestoreState::Restored { until: None }),
            StorageState::Archived(RestoreState::NotRequested) => {}
            // Asking again would only extend the copy's days (or be refused while running).
            StorageState::Archived(state) => return Ok(state),
        }
        let s3_key = self.s3_key(key)?;
        let request = RestoreRequest::builder()
            .days(days_i32)
            .glacier_job_parameters(
                GlacierJobParameters::builder()
                    .tier(Tier::Standard)
                    .build()
                    .map_err(|e| StoreError::Backend(e.into()))?,
            )
            .build();
        match self
            .client
            .restore_object()
            .bucket(&self.bucket)
            .key(&s3_key)
            .restore_request(request)
            .send()
            .await
        {
            // 202 Accepted: the restore started. (200 means a restored copy already existed.)
            Ok(_) => {}
            // Another caller asked first.
            Err(e) if e.code() == Some("RestoreAlreadyInProgress") => {
                return Ok(RestoreState::InProgress);
            }
            Err(e) => return Err(self.err("RestoreObject", key, e)),
        }
        match self.storage(key).await?.state {
            StorageState::Archived(state) => Ok(state),
            StorageState::Standard => Ok(RestoreState::Restored { until: None }),
        }
    }

    async fn make_standard(&self, key: &str) -> StoreResult<()> {
        let storage = self.storage(key).await?;
        match storage.state {
            StorageState::Standard => Ok(()),
            StorageState::Archived(RestoreState::Restored { .. }) => {
                self.copy_to_class(key, storage.size, STANDARD_CLASS).await
            }
            StorageState::Archived(_) => Err(StoreError::Conflict(format!(
                "blob {key:?} is archived ({}) and not restored: request a restore first",
                storage.storage_class
            ))),
        }
    }

    /// A presigned URL, after one HEAD: an archived object that is not restored is refused
    /// here with [`archived_error`] (FFmpeg would only report "403 Forbidden"), and a
    /// missing one is `NotFound`.
    async fn media_source(&self, key: &str, expires: Duration) -> StoreResult<MediaSource> {
        let storage = self.storage(key).await?;
        if !storage.state.readable() {
            return Err(archived_error(key, &storage.storage_class));
        }
        match self.presigned_get(key, expires).await? {
            Some(url) => Ok(MediaSource::Url(url)),
            None => Ok(MediaSource::File(self.local_path(key).await?)),
        }
    }

    async fn presigned_get(&self, key: &str, expires: Duration) -> StoreResult<Option<String>> {
        let s3_key = self.s3_key(key)?;
        if expires.is_zero() || expires > MAX_PRESIGN_EXPIRY {
            return Err(StoreError::Invalid(format!(
                "a presigned URL must expire within 1 s to 7 days, not {expires:?}"
            )));
        }
        let config = PresigningConfig::expires_in(expires)
            .map_err(|e| StoreError::Invalid(format!("presigning {key:?}: {e}")))?;
        let presigned = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&s3_key)
            .presigned(config)
            .await
            .map_err(|e| self.err("presign GetObject", key, e))?;
        // The URL goes to FFmpeg and browsers, which send no extra signed headers.
        if let Some((name, _)) = presigned.headers().find(|(name, _)| *name != "host") {
            return Err(StoreError::Backend(anyhow::anyhow!(
                "the presigned URL for {key:?} needs the header {name:?}, which a plain GET does not send"
            )));
        }
        Ok(Some(presigned.uri().to_string()))
    }
}

/// S3 storage classes whose objects must be restored (RestoreObject) before GetObject works;
/// GetObject on them answers `403 InvalidObjectState` ("Object is archived and inaccessible
/// until restored", S3 API reference, InvalidObjectState error). GLACIER_IR is read at once.
pub fn needs_restore(storage_class: &str) -> bool {
    matches!(storage_class, "GLACIER" | "DEEP_ARCHIVE")
}

/// Reads HeadObject's `x-amz-restore` header. Per the S3 API reference (HeadObject,
/// "Restore"): absent when no restore was asked for (or its copy expired),
/// `ongoing-request="true"` while it runs, and `ongoing-request="false",
/// expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"` once the copy is readable (until then).
pub fn parse_restore_header(value: Option<&str>) -> RestoreState {
    let Some(value) = value else {
        return RestoreState::NotRequested;
    };
    let field = |name: &str| {
        let start = value.find(&format!("{name}=\""))? + name.len() + 2;
        let len = value[start..].find('"')?;
        Some(&value[start..start + len])
    };
    match field("ongoing-request") {
        Some("true") => RestoreState::InProgress,
        Some("false") => RestoreState::Restored {
            until: field("expiry-date").and_then(parse_http_date),
        },
        _ => RestoreState::NotRequested,
    }
}

/// An HTTP date (`Fri, 21 Dec 2012 00:00:00 GMT`, RFC 7231's IMF-fixdate).
pub fn parse_http_date(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::NaiveDateTime::parse_from_str(text.trim(), "%a, %d %b %Y %H:%M:%S GMT")
        .ok()
        .map(|t| t.and_utc())
}

/// An HTTP date as S3 writes one.
pub fn format_http_date(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// CopyObject's `x-amz-copy-source`: `bucket/key` with the key URL-encoded (S3 API reference,
/// CopyObject: "The value must be URL-encoded"); `/` stays as the separator it is.
fn copy_source(bucket: &str, s3_key: &str) -> String {
    let mut out = format!("{bucket}/");
    for b in s3_key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The HTTP status of a failed request, when one came back.
fn status<E>(e: &SdkError<E>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// `NotFound` for a missing object, a clear message for a missing bucket, the SDK's full
/// error chain for the rest.
fn sdk_error<E>(op: &str, bucket: &str, s3_key: &str, e: SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = e.code().map(str::to_string);
    match code.as_deref() {
        Some("NoSuchBucket") => StoreError::Backend(anyhow::anyhow!(
            "S3 {op}: the bucket {bucket:?} does not exist"
        )),
        // GetObject of an archived object that is not restored (403).
        Some("InvalidObjectState") => StoreError::Conflict(format!(
            "S3 {op}: blob {s3_key:?} is archived: restore it before reading it"
        )),
        Some("NoSuchKey") | Some("NotFound") => {
            StoreError::NotFound(format!("blob {s3_key:?} does not exist"))
        }
        // HEAD answers carry no body, so no code: 404 is all there is.
        _ if status(&e) == Some(404) => {
            StoreError::NotFound(format!("blob {s3_key:?} does not exist"))
        }
        _ => StoreError::Backend(anyhow::anyhow!(
            "S3 {op} s3://{bucket}/{s3_key}: {}",
            DisplayErrorContext(&e)
        )),
    }
}

fn size_i64(size: u64) -> StoreResult<i64> {
    i64::try_from(size)
        .map_err(|_| StoreError::Invalid(format!("{size} bytes is too large for S3")))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The Content-Type S3 stores with an object (and sends back to browsers and players following
/// a presigned link).
pub fn content_type(key: &str) -> &'static str {
    let ext = key
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "mkv" => "video/x-matroska",
        "mp4" | "m4v" => "video/mp4",
        "mov" => "video/quicktime",
        "webm" => "video/webm",
        "flv" => "video/x-flv",
        "ts" => "video/mp2t",
        "m3u8" => "application/vnd.apple.mpegurl",
        "m4a" => "audio/mp4",
        "aac" => "audio/aac",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "flac" => "audio/flac",
        "ogg" | "opus" => "audio/ogg",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "json" => "application/json",
        "vtt" => "text/vtt",
        "srt" => "application/x-subrip",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod archive_tests {
    use super::*;

    /// The examples of the S3 API reference (HeadObject, `x-amz-restore`).
    #[test]
    fn restore_headers_read_as_documented() {
        assert_eq!(parse_restore_header(None), RestoreState::NotRequested);
        assert_eq!(
            parse_restore_header(Some("ongoing-request=\"true\"")),
            RestoreState::InProgress
        );
        let until = chrono::NaiveDate::from_ymd_opt(2012, 12, 21)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        assert_eq!(
            parse_restore_header(Some(
                "ongoing-request=\"false\", expiry-date=\"Fri, 21 Dec 2012 00:00:00 GMT\""
            )),
            RestoreState::Restored { until: Some(until) }
        );
        assert_eq!(format_http_date(until), "Fri, 21 Dec 2012 00:00:00 GMT");
        assert!(needs_restore("GLACIER") && needs_restore("DEEP_ARCHIVE"));
        assert!(!needs_restore("GLACIER_IR") && !needs_restore("STANDARD"));
    }

    #[test]
    fn copy_sources_are_url_encoded() {
        assert_eq!(
            copy_source("b", "recordings/u/2024-01-01 10-00-00.mkv"),
            "b/recordings/u/2024-01-01%2010-00-00.mkv"
        );
        assert_eq!(copy_source("b", "a/é+x"), "b/a/%C3%A9%2Bx");
    }
}
