//! How an [`S3BlobStore`](crate::S3BlobStore) reaches its bucket, and reading that from `GT_*`
//! variables.

use std::fmt;
use std::path::PathBuf;

use gt_store::StoreError;
use gt_store::error::StoreResult;

const MIB: u64 = 1024 * 1024;

/// S3's smallest part: every part of a multipart upload but the last must be at least this.
pub const MIN_PART_SIZE: u64 = 5 * MIB;
/// S3's largest part.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * MIB;
/// S3's most parts in one upload.
pub const MAX_PARTS: u64 = 10_000;
/// Files above this go up in parts (parallel, resumable per part by the SDK's retries).
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 16 * MIB;
pub const DEFAULT_PART_SIZE: u64 = 16 * MIB;
pub const DEFAULT_UPLOAD_CONCURRENCY: usize = 4;

/// The storage class [`archive`](gt_store::BlobStore::archive) moves objects into: one that
/// needs a RestoreObject before reads (GLACIER_IR would be instant and is not an archive here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ArchiveClass {
    /// S3 Glacier Flexible Retrieval: Standard-tier restores take 3–5 hours.
    #[default]
    Glacier,
    /// S3 Glacier Deep Archive: cheapest, Standard-tier restores within 12 hours.
    DeepArchive,
}

impl ArchiveClass {
    /// S3's name for the class (the `x-amz-storage-class` header).
    pub fn as_str(self) -> &'static str {
        match self {
            ArchiveClass::Glacier => "GLACIER",
            ArchiveClass::DeepArchive => "DEEP_ARCHIVE",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_uppercase().as_str() {
            "GLACIER" => Some(ArchiveClass::Glacier),
            "DEEP_ARCHIVE" => Some(ArchiveClass::DeepArchive),
            _ => None,
        }
    }
}

/// Where the SDK gets its signing keys.
#[derive(Clone, PartialEq, Eq)]
pub enum S3Credentials {
    /// The AWS default chain: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, profiles, web
    /// identity, the ECS task role, EC2 instance metadata.
    DefaultChain,
    /// Fixed keys (an S3-compatible server, or a deployment that injects them).
    Static {
        access_key_id: String,
        secret_access_key: String,
        session_token: Option<String>,
    },
}

impl fmt::Debug for S3Credentials {
    // Never print the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            S3Credentials::DefaultChain => f.write_str("DefaultChain"),
            S3Credentials::Static { access_key_id, .. } => f
                .debug_struct("Static")
                .field("access_key_id", access_key_id)
                .finish_non_exhaustive(),
        }
    }
}

/// When the SDK adds and checks CRC checksums. Since 2025 the AWS SDKs default to
/// `WhenSupported`, which sends `aws-chunked` bodies with checksum trailers that many
/// S3-compatible servers reject; `WhenRequired` only checksums what S3 demands
/// (DeleteObjects).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumPolicy {
    WhenRequired,
    WhenSupported,
}

/// How the bucket appears in request URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressingStyle {
    /// `https://endpoint/bucket/key`: what S3-compatible servers on one host name need.
    Path,
    /// `https://bucket.endpoint/key`: AWS's default.
    VirtualHosted,
}

/// Which of the two blob stores a configuration is for; they share a bucket under different
/// key prefixes unless given their own buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobRole {
    /// Raw recordings (`GT_RECORDINGS_DIR` locally).
    Recordings,
    /// Derived files: speech audio, previews, renders, HLS (`GT_ARTIFACTS_DIR` locally).
    Artifacts,
}

impl BlobRole {
    fn env_name(self) -> &'static str {
        match self {
            BlobRole::Recordings => "RECORDINGS",
            BlobRole::Artifacts => "ARTIFACTS",
        }
    }

    fn default_prefix(self) -> &'static str {
        match self {
            BlobRole::Recordings => "recordings/",
            BlobRole::Artifacts => "artifacts/",
        }
    }
}

/// Which blob store the processes use (`GT_BLOB_BACKEND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobBackend {
    /// Local directories (`GT_RECORDINGS_DIR`, `GT_ARTIFACTS_DIR`): the embedded default.
    Local,
    S3,
}

impl BlobBackend {
    /// `GT_BLOB_BACKEND`: `local` (default when unset) or `s3`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> StoreResult<Self> {
        match var("GT_BLOB_BACKEND").as_deref().map(str::trim) {
            None | Some("") | Some("local") => Ok(BlobBackend::Local),
            Some("s3") => Ok(BlobBackend::S3),
            Some(other) => Err(StoreError::Invalid(format!(
                "GT_BLOB_BACKEND must be \"local\" or \"s3\", got {other:?}"
            ))),
        }
    }

    pub fn from_env() -> StoreResult<Self> {
        Self::from_vars(env_var)
    }
}

/// Everything an [`S3BlobStore`](crate::S3BlobStore) needs. Building one makes no request.
#[derive(Debug, Clone)]
pub struct S3Config {
    pub bucket: String,
    /// Prepended to every key (`""` or ending in `/`), so several stores can share a bucket.
    pub key_prefix: String,
    /// An S3-compatible server (`http://127.0.0.1:8014`); `None` for AWS.
    pub endpoint_url: Option<String>,
    /// `None`: the AWS region chain (`AWS_REGION`, profile), else `us-east-1`.
    pub region: Option<String>,
    pub addressing: AddressingStyle,
    pub credentials: S3Credentials,
    pub checksums: ChecksumPolicy,
    /// `put_file` uploads files larger than this in parts.
    pub multipart_threshold: u64,
    /// Part size for multipart uploads (grown automatically when a file would need more than
    /// 10 000 parts).
    pub part_size: u64,
    /// Parts uploaded at once.
    pub upload_concurrency: usize,
    /// Where [`local_path`](gt_store::BlobStore::local_path) keeps downloaded copies.
    pub cache_dir: PathBuf,
    /// The class archived recordings go to (`GT_S3_ARCHIVE_STORAGE_CLASS`, default GLACIER).
    pub archive_class: ArchiveClass,
}

impl S3Config {
    /// AWS defaults for `bucket`: no key prefix, virtual-hosted addressing, the default
    /// credential chain, the SDK's default checksums.
    pub fn new(bucket: impl Into<String>, cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            bucket: bucket.into(),
            key_prefix: String::new(),
            endpoint_url: None,
            region: None,
            addressing: AddressingStyle::VirtualHosted,
            credentials: S3Credentials::DefaultChain,
            checksums: ChecksumPolicy::WhenSupported,
            multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
            part_size: DEFAULT_PART_SIZE,
            upload_concurrency: DEFAULT_UPLOAD_CONCURRENCY,
            cache_dir: cache_dir.into(),
            archive_class: ArchiveClass::default(),
        }
    }

    /// Settings for an S3-compatible server at `endpoint_url`: path-style addressing and
    /// checksums only where required.
    pub fn s3_compatible(mut self, endpoint_url: impl Into<String>) -> Self {
        self.endpoint_url = Some(endpoint_url.into());
        self.addressing = AddressingStyle::Path;
        self.checksums = ChecksumPolicy::WhenRequired;
        self
    }

    /// Refuses settings S3 would reject later, half-way through an upload.
    pub fn validate(&self) -> StoreResult<()> {
        let bad = |why: String| Err(StoreError::Invalid(format!("S3 configuration: {why}")));
        // S3's bucket naming rules (lowercase DNS label-ish, 3..=63).
        let b = &self.bucket;
        if !(3..=63).contains(&b.len())
            || !b
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
            || !b.as_bytes()[0].is_ascii_alphanumeric()
            || !b.as_bytes()[b.len() - 1].is_ascii_alphanumeric()
        {
            return bad(format!(
                "bucket {b:?} is not a valid bucket name (3-63 of a-z 0-9 . -, starting and ending with a letter or digit)"
            ));
        }
        if !self.key_prefix.is_empty() {
            if !self.key_prefix.ends_with('/') {
                return bad(format!(
                    "key prefix {:?} must end with '/'",
                    self.key_prefix
                ));
            }
            gt_store::blob::check_key(&self.key_prefix)
                .or_else(|e| bad(format!("key prefix: {e}")))?;
        }
        if let Some(url) = &self.endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return bad(format!(
                "endpoint {url:?} must start with http:// or https://"
            ));
        }
        if let S3Credentials::Static {
            access_key_id,
            secret_access_key,
            ..
        } = &self.credentials
            && (access_key_id.is_empty() || secret_access_key.is_empty())
        {
            return bad("static credentials need both an access key id and a secret".into());
        }
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&self.part_size) {
            return bad(format!(
                "part size {} must be between {MIN_PART_SIZE} and {MAX_PART_SIZE} bytes",
                self.part_size
            ));
        }
        if self.multipart_threshold < self.part_size {
            return bad(format!(
                "multipart threshold {} must be at least the part size {}",
                self.multipart_threshold, self.part_size
            ));
        }
        if self.upload_concurrency == 0 {
            return bad("upload concurrency must be at least 1".into());
        }
        Ok(())
    }

    /// The configuration for `role` from `GT_S3_*` variables (`var` looks one up; see
    /// [`S3Config::from_env`]):
    ///
    /// - `GT_S3_BUCKET` (required unless `GT_S3_RECORDINGS_BUCKET`/`GT_S3_ARTIFACTS_BUCKET`
    ///   names the role's own bucket);
    /// - `GT_S3_RECORDINGS_PREFIX` / `GT_S3_ARTIFACTS_PREFIX` (default `recordings/` and
    ///   `artifacts/`; set and empty for none);
    /// - `GT_S3_ENDPOINT` (an S3-compatible server), `GT_S3_REGION`;
    /// - `GT_S3_PATH_STYLE` (`true`/`false`; default true with an endpoint);
    /// - `GT_S3_CHECKSUMS` (`when_required`/`when_supported`; default when_required with an
    ///   endpoint);
    /// - `GT_S3_ACCESS_KEY_ID` + `GT_S3_SECRET_ACCESS_KEY` (+ `GT_S3_SESSION_TOKEN`): fixed
    ///   keys, else the AWS default chain (`AWS_ACCESS_KEY_ID`, roles, ...);
    /// - `GT_S3_MULTIPART_THRESHOLD_MIB`, `GT_S3_PART_SIZE_MIB` (default 16),
    ///   `GT_S3_UPLOAD_CONCURRENCY` (default 4);
    /// - `GT_S3_CACHE_DIR` (default `$TMPDIR/gt-s3-cache`), one subdirectory per role;
    /// - `GT_S3_ARCHIVE_STORAGE_CLASS` (`GLACIER` or `DEEP_ARCHIVE`; default GLACIER).
    pub fn from_vars(role: BlobRole, lookup: impl Fn(&str) -> Option<String>) -> StoreResult<Self> {
        // Empty variables count as unset, except the prefixes (empty = no prefix).
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let invalid = |msg: String| StoreError::Invalid(msg);
        let role_name = role.env_name();
        let bucket = var(&format!("GT_S3_{role_name}_BUCKET"))
            .or_else(|| var("GT_S3_BUCKET"))
            .ok_or_else(|| {
                invalid(format!(
                    "GT_S3_BUCKET (or GT_S3_{role_name}_BUCKET) must be set for the S3 blob store"
                ))
            })?;
        let cache_root = var("GT_S3_CACHE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("gt-s3-cache"));
        let mut config = S3Config::new(
            bucket.trim(),
            cache_root.join(role.default_prefix().trim_end_matches('/')),
        );
        config.key_prefix = match lookup(&format!("GT_S3_{role_name}_PREFIX")) {
            Some(p) => p.trim().to_string(),
            None => role.default_prefix().to_string(),
        };
        if let Some(endpoint) = var("GT_S3_ENDPOINT") {
            config = config.s3_compatible(endpoint.trim());
        }
        config.region = var("GT_S3_REGION").map(|r| r.trim().to_string());
        if let Some(v) = var("GT_S3_PATH_STYLE") {
            config.addressing = match parse_bool("GT_S3_PATH_STYLE", &v)? {
                true => AddressingStyle::Path,
                false => AddressingStyle::VirtualHosted,
            };
        }
        if let Some(v) = var("GT_S3_CHECKSUMS") {
            config.checksums = match v.trim() {
                "when_required" => ChecksumPolicy::WhenRequired,
                "when_supported" => ChecksumPolicy::WhenSupported,
                other => {
                    return Err(invalid(format!(
                        "GT_S3_CHECKSUMS must be \"when_required\" or \"when_supported\", got {other:?}"
                    )));
                }
            };
        }
        config.credentials = match (var("GT_S3_ACCESS_KEY_ID"), var("GT_S3_SECRET_ACCESS_KEY")) {
            (Some(access_key_id), Some(secret_access_key)) => S3Credentials::Static {
                access_key_id,
                secret_access_key,
                session_token: var("GT_S3_SESSION_TOKEN"),
            },
            (None, None) => S3Credentials::DefaultChain,
            _ => {
                return Err(invalid(
                    "GT_S3_ACCESS_KEY_ID and GT_S3_SECRET_ACCESS_KEY must be set together".into(),
                ));
            }
        };
        if let Some(v) = var("GT_S3_MULTIPART_THRESHOLD_MIB") {
            config.multipart_threshold = parse_num("GT_S3_MULTIPART_THRESHOLD_MIB", &v)? * MIB;
        }
        if let Some(v) = var("GT_S3_PART_SIZE_MIB") {
            config.part_size = parse_num("GT_S3_PART_SIZE_MIB", &v)? * MIB;
        }
        if let Some(v) = var("GT_S3_UPLOAD_CONCURRENCY") {
            config.upload_concurrency = parse_num("GT_S3_UPLOAD_CONCURRENCY", &v)? as usize;
        }
        if let Some(v) = var("GT_S3_ARCHIVE_STORAGE_CLASS") {
            config.archive_class = ArchiveClass::parse(&v).ok_or_else(|| {
                StoreError::Invalid(format!(
                    "GT_S3_ARCHIVE_STORAGE_CLASS must be GLACIER or DEEP_ARCHIVE, got {v:?}"
                ))
            })?;
        }
        config.validate()?;
        Ok(config)
    }

    /// [`S3Config::from_vars`] over the process environment.
    pub fn from_env(role: BlobRole) -> StoreResult<Self> {
        Self::from_vars(role, env_var)
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn parse_bool(name: &str, v: &str) -> StoreResult<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        other => Err(StoreError::Invalid(format!(
            "{name} must be true or false, got {other:?}"
        ))),
    }
}

fn parse_num(name: &str, v: &str) -> StoreResult<u64> {
    v.trim().parse().map_err(|_| {
        StoreError::Invalid(format!("{name} must be a whole number, got {:?}", v.trim()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn backend_defaults_to_local_and_refuses_unknown_names() {
        assert_eq!(
            BlobBackend::from_vars(vars(&[])).unwrap(),
            BlobBackend::Local
        );
        assert_eq!(
            BlobBackend::from_vars(vars(&[("GT_BLOB_BACKEND", "s3")])).unwrap(),
            BlobBackend::S3
        );
        assert!(matches!(
            BlobBackend::from_vars(vars(&[("GT_BLOB_BACKEND", "minio")])),
            Err(StoreError::Invalid(m)) if m.contains("GT_BLOB_BACKEND")
        ));
    }

    #[test]
    fn aws_settings_from_variables() {
        let c = S3Config::from_vars(
            BlobRole::Recordings,
            vars(&[("GT_S3_BUCKET", "gt-media"), ("GT_S3_REGION", "eu-west-1")]),
        )
        .unwrap();
        assert_eq!(c.bucket, "gt-media");
        assert_eq!(c.key_prefix, "recordings/");
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));
        assert_eq!(c.endpoint_url, None);
        assert_eq!(c.addressing, AddressingStyle::VirtualHosted);
        assert_eq!(c.checksums, ChecksumPolicy::WhenSupported);
        assert_eq!(c.credentials, S3Credentials::DefaultChain);
        assert_eq!(c.part_size, DEFAULT_PART_SIZE);
        assert!(c.cache_dir.ends_with("gt-s3-cache/recordings"));
    }

    #[test]
    fn s3_compatible_settings_from_variables() {
        let c = S3Config::from_vars(
            BlobRole::Artifacts,
            vars(&[
                ("GT_S3_BUCKET", "shared"),
                ("GT_S3_ARTIFACTS_BUCKET", "gt-artifacts"),
                ("GT_S3_ARTIFACTS_PREFIX", ""),
                ("GT_S3_ENDPOINT", "http://127.0.0.1:8014"),
                ("GT_S3_ACCESS_KEY_ID", "ak"),
                ("GT_S3_SECRET_ACCESS_KEY", "sk"),
                ("GT_S3_PART_SIZE_MIB", "8"),
                ("GT_S3_MULTIPART_THRESHOLD_MIB", "64"),
                ("GT_S3_CACHE_DIR", "/var/cache/gt"),
            ]),
        )
        .unwrap();
        assert_eq!(c.bucket, "gt-artifacts");
        assert_eq!(c.key_prefix, "");
        assert_eq!(c.endpoint_url.as_deref(), Some("http://127.0.0.1:8014"));
        assert_eq!(c.addressing, AddressingStyle::Path);
        assert_eq!(c.checksums, ChecksumPolicy::WhenRequired);
        assert_eq!(
            c.credentials,
            S3Credentials::Static {
                access_key_id: "ak".into(),
                secret_access_key: "sk".into(),
                session_token: None
            }
        );
        assert_eq!(c.part_size, 8 * MIB);
        assert_eq!(c.multipart_threshold, 64 * MIB);
        assert_eq!(c.cache_dir, PathBuf::from("/var/cache/gt/artifacts"));
        // The secret never reaches logs.
        assert!(!format!("{c:?}").contains("\"sk\""));
        // Explicit overrides of the endpoint defaults.
        let c = S3Config::from_vars(
            BlobRole::Artifacts,
            vars(&[
                ("GT_S3_BUCKET", "b-1"),
                ("GT_S3_ENDPOINT", "https://s3.example.net"),
                ("GT_S3_PATH_STYLE", "false"),
                ("GT_S3_CHECKSUMS", "when_supported"),
            ]),
        )
        .unwrap();
        assert_eq!(c.addressing, AddressingStyle::VirtualHosted);
        assert_eq!(c.checksums, ChecksumPolicy::WhenSupported);
    }

    #[test]
    fn bad_settings_are_refused_with_the_variable_named() {
        let refused = |pairs: &[(&str, &str)], needle: &str| match S3Config::from_vars(
            BlobRole::Recordings,
            vars(pairs),
        ) {
            Err(StoreError::Invalid(m)) => assert!(m.contains(needle), "{m:?} lacks {needle:?}"),
            other => panic!("{pairs:?} was accepted: {other:?}"),
        };
        refused(&[], "GT_S3_BUCKET");
        refused(&[("GT_S3_BUCKET", "Bad_Bucket")], "bucket");
        refused(
            &[
                ("GT_S3_BUCKET", "ok-bucket"),
                ("GT_S3_RECORDINGS_PREFIX", "rec"),
            ],
            "end with '/'",
        );
        refused(
            &[
                ("GT_S3_BUCKET", "ok-bucket"),
                ("GT_S3_RECORDINGS_PREFIX", "../x/"),
            ],
            "key prefix",
        );
        refused(
            &[
                ("GT_S3_BUCKET", "ok-bucket"),
                ("GT_S3_ENDPOINT", "localhost:9000"),
            ],
            "http://",
        );
        refused(
            &[("GT_S3_BUCKET", "ok-bucket"), ("GT_S3_PATH_STYLE", "maybe")],
            "GT_S3_PATH_STYLE",
        );
        refused(
            &[("GT_S3_BUCKET", "ok-bucket"), ("GT_S3_CHECKSUMS", "never")],
            "GT_S3_CHECKSUMS",
        );
        refused(
            &[("GT_S3_BUCKET", "ok-bucket"), ("GT_S3_ACCESS_KEY_ID", "ak")],
            "together",
        );
        refused(
            &[("GT_S3_BUCKET", "ok-bucket"), ("GT_S3_PART_SIZE_MIB", "4")],
            "part size",
        );
        refused(
            &[("GT_S3_BUCKET", "ok-bucket"), ("GT_S3_PART_SIZE_MIB", "x")],
            "GT_S3_PART_SIZE_MIB",
        );
        refused(
            &[
                ("GT_S3_BUCKET", "ok-bucket"),
                ("GT_S3_PART_SIZE_MIB", "32"),
                ("GT_S3_MULTIPART_THRESHOLD_MIB", "16"),
            ],
            "threshold",
        );
        refused(
            &[
                ("GT_S3_BUCKET", "ok-bucket"),
                ("GT_S3_UPLOAD_CONCURRENCY", "0"),
            ],
            "concurrency",
        );
    }
}
