//! Recordings and artifacts in S3 (or an S3-compatible server) behind gt-store's
//! [`BlobStore`](gt_store::BlobStore) trait, chosen by configuration (`GT_BLOB_BACKEND=s3`);
//! the local directory stays the embedded default.
//!
//! - Paged listing is ListObjectsV2 with `start-after`, so pages are in S3's key order (UTF-8
//!   bytes), the same order the local store sorts by.
//! - `put_file` above [`S3Config::multipart_threshold`] uploads in parts, several at once,
//!   and aborts the upload on failure.
//! - FFmpeg reads objects through presigned GET URLs ([`BlobStore::media_source`]): its
//!   `http` protocol seeks with range requests, so probing a 6 GB recording reads its index,
//!   not the whole file. [`BlobStore::local_path`] (a cached download keyed by ETag) is the
//!   fallback for tools that need a real file.
//! - Presigned URLs also serve `/media` and playlists straight from the bucket.
//!
//! Kept out of gt-store so only binaries that may use S3 compile aws-sdk-s3 (~40 s on its own).
//!
//! [`BlobStore::media_source`]: gt_store::BlobStore::media_source
//! [`BlobStore::local_path`]: gt_store::BlobStore::local_path

pub mod config;
mod location;
mod store;
#[cfg(feature = "test-server")]
pub mod testing;

pub use config::{
    AddressingStyle, ArchiveClass, BlobBackend, BlobRole, ChecksumPolicy, S3Config, S3Credentials,
};
pub use location::BlobLocation;
pub use store::{
    MAX_COPY_OBJECT_SIZE, MAX_PRESIGN_EXPIRY, S3BlobStore, content_type, format_http_date,
    needs_restore, parse_http_date, parse_restore_header,
};
