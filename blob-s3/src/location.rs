//! Where one role's blobs live, as the processes are configured: the choice every binary makes
//! the same way (`GT_BLOB_BACKEND`), so the API and the workers always agree.

use std::path::PathBuf;
use std::sync::Arc;

use gt_store::{BlobStore, LocalDirStore, StoreError, StoreResult};

use crate::{BlobBackend, BlobRole, S3BlobStore, S3Config};

/// One role's blob store: a local directory (the embedded default) or S3.
#[derive(Debug, Clone)]
pub enum BlobLocation {
    Local(PathBuf),
    S3(S3Config),
}

impl BlobLocation {
    /// From `GT_BLOB_BACKEND` and, for S3, the role's `GT_S3_*` variables; `local_dir` is the
    /// role's directory variable (`GT_RECORDINGS_DIR`, `GT_ARTIFACTS_DIR`), required only when
    /// the blobs are local.
    pub fn from_env(role: BlobRole, local_dir: Option<PathBuf>) -> StoreResult<Self> {
        match BlobBackend::from_env()? {
            BlobBackend::Local => local_dir.map(BlobLocation::Local).ok_or_else(|| {
                let var = match role {
                    BlobRole::Recordings => "GT_RECORDINGS_DIR",
                    BlobRole::Artifacts => "GT_ARTIFACTS_DIR",
                };
                StoreError::Invalid(format!("{var} is not set (GT_BLOB_BACKEND is local)"))
            }),
            BlobBackend::S3 => Ok(BlobLocation::S3(S3Config::from_env(role)?)),
        }
    }

    /// The local directory, when the blobs are local (editor exports name files under it).
    pub fn local_dir(&self) -> Option<&std::path::Path> {
        match self {
            BlobLocation::Local(dir) => Some(dir),
            BlobLocation::S3(_) => None,
        }
    }

    /// Opens the store (for S3, checks nothing yet: the first request does).
    pub async fn open(&self) -> StoreResult<Arc<dyn BlobStore>> {
        Ok(match self {
            BlobLocation::Local(dir) => Arc::new(LocalDirStore::new(dir)),
            BlobLocation::S3(config) => Arc::new(S3BlobStore::connect(config.clone()).await?),
        })
    }
}
