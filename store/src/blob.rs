//! Blob storage for recordings and derived artifacts. A local directory by default; S3 in
//! production (same trait). Keys are `/`-separated relative paths, like S3 keys.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{StoreError, StoreResult};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobObject {
    pub key: String,
    pub size: u64,
}

/// What a store knows about one object without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    pub size: u64,
    /// The object's version tag where the store has one (S3's ETag); changes when the object is
    /// replaced. `None` for the local directory.
    pub etag: Option<String>,
}

/// Where FFmpeg (or any reader that takes a file name or URL) can read an object from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaSource {
    /// A file on the local disk.
    File(PathBuf),
    /// A time-limited HTTP(S) URL that answers range requests (FFmpeg's `http` protocol seeks
    /// with them), so a probe reads the container's index, not the whole recording.
    Url(String),
}

impl From<PathBuf> for MediaSource {
    fn from(path: PathBuf) -> Self {
        MediaSource::File(path)
    }
}

impl From<&Path> for MediaSource {
    fn from(path: &Path) -> Self {
        MediaSource::File(path.to_path_buf())
    }
}

impl MediaSource {
    /// The argument to hand to FFmpeg's CLI or `ffmpeg_next::format::input`.
    pub fn as_os_str(&self) -> &std::ffi::OsStr {
        match self {
            MediaSource::File(path) => path.as_os_str(),
            MediaSource::Url(url) => std::ffi::OsStr::new(url.as_str()),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlobPage {
    pub objects: Vec<BlobObject>,
    /// Pass as `start_after` to get the next page; `None` on the last page.
    pub next: Option<String>,
}

/// S3's name for the class objects are readable in at once (and the local directory's).
pub const STANDARD_CLASS: &str = "STANDARD";
/// The storage class the local directory reports for an object in its archive directory.
pub const LOCAL_ARCHIVE_CLASS: &str = "LOCAL_ARCHIVE";

/// Where a restore of an archived object stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreState {
    /// Nobody asked for it (or the restored copy expired): reads fail.
    NotRequested,
    /// Asked for; S3 takes hours (Standard tier: 3–5 h for GLACIER, up to 12 h for
    /// DEEP_ARCHIVE). Reads still fail.
    InProgress,
    /// A readable copy exists until this instant (S3 deletes it then; `None` when the store
    /// keeps it until the object is made standard again).
    Restored {
        until: Option<chrono::DateTime<chrono::Utc>>,
    },
}

/// Whether an object can be read now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageState {
    /// Readable (S3: any class that needs no restore, e.g. STANDARD, STANDARD_IA, GLACIER_IR).
    Standard,
    /// In an archive class (S3: GLACIER, DEEP_ARCHIVE; local: the archive directory).
    Archived(RestoreState),
}

impl StorageState {
    /// Whether a read of the object's bytes succeeds now.
    pub fn readable(self) -> bool {
        matches!(
            self,
            StorageState::Standard | StorageState::Archived(RestoreState::Restored { .. })
        )
    }
}

/// What a store knows about where an object is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobStorage {
    pub size: u64,
    /// S3's storage class name (`STANDARD`, `GLACIER`, `DEEP_ARCHIVE`, …); the local
    /// directory says [`STANDARD_CLASS`] or [`LOCAL_ARCHIVE_CLASS`].
    pub storage_class: String,
    pub state: StorageState,
}

/// The error a read of an archived object that is not restored gets (S3 answers `403
/// InvalidObjectState`): a conflict with the object's state, not a missing object.
pub fn archived_error(key: &str, storage_class: &str) -> StoreError {
    StoreError::Conflict(format!(
        "blob {key:?} is archived ({storage_class}): restore it before reading it"
    ))
}

fn no_archive(key: &str) -> StoreError {
    StoreError::Invalid(format!(
        "blob {key:?}: this blob store has no archive storage"
    ))
}

#[async_trait]
pub trait BlobStore: Send + Sync {
    /// One page of the objects whose key starts with `prefix`, in lexicographic key order,
    /// starting after `start_after` (exclusive), at most `limit` objects.
    async fn list_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> StoreResult<BlobPage>;

    /// A local file holding the object's bytes (for FFmpeg). For the local store this is the
    /// file itself; remote stores download into a cache.
    async fn local_path(&self, key: &str) -> StoreResult<PathBuf>;

    /// Stores `bytes` at `key` (replacing it), atomically: readers see the old or the new object.
    async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> StoreResult<()>;

    /// Stores the file at `path` under `key`. The source may be consumed (the local store
    /// moves it when it can): callers must not use it afterwards.
    async fn put_file(&self, key: &str, path: &Path) -> StoreResult<()>;

    async fn get_bytes(&self, key: &str) -> StoreResult<Vec<u8>>;

    async fn exists(&self, key: &str) -> StoreResult<bool>;

    /// Deletes every object under `prefix`; returns how many.
    async fn delete_prefix(&self, prefix: &str) -> StoreResult<u64>;

    /// Every object under `prefix`, following all pages.
    async fn list_all(&self, prefix: &str) -> StoreResult<Vec<BlobObject>> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.list_page(prefix, after.as_deref(), 1000).await?;
            all.extend(page.objects);
            match page.next {
                Some(n) => after = Some(n),
                None => return Ok(all),
            }
        }
    }

    /// Size (and version tag) of the object at `key`; `NotFound` when there is none.
    ///
    /// The default lists with the key as prefix: an existing key is the smallest key under
    /// itself. Stores override it with a direct lookup.
    async fn head(&self, key: &str) -> StoreResult<BlobMeta> {
        check_key(key)?;
        let page = self.list_page(key, None, 1).await?;
        match page.objects.into_iter().next() {
            Some(o) if o.key == key => Ok(BlobMeta {
                size: o.size,
                etag: None,
            }),
            _ => Err(StoreError::NotFound(format!("blob {key:?} does not exist"))),
        }
    }

    /// The bytes `[offset, offset + len)` of the object, cut short at its end (empty when
    /// `offset` is at or past the end); `NotFound` when the object does not exist.
    ///
    /// The default reads the whole object; stores override it with a ranged read.
    async fn read_range(&self, key: &str, offset: u64, len: u64) -> StoreResult<Vec<u8>> {
        let bytes = self.get_bytes(key).await?;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let end = usize::try_from(offset.saturating_add(len))
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        Ok(bytes[start..end].to_vec())
    }

    /// A URL that lets anyone holding it GET the object (with range requests) until `expires`
    /// from now, or `None` when the store has no URLs of its own (the local directory: serve
    /// the file through the API instead). Does not check that the object exists.
    async fn presigned_get(&self, key: &str, _expires: Duration) -> StoreResult<Option<String>> {
        check_key(key)?;
        Ok(None)
    }

    /// Where FFmpeg should read the object from: a presigned URL (valid for `expires`) when
    /// the store has them, so nothing is downloaded up front, else [`BlobStore::local_path`].
    async fn media_source(&self, key: &str, expires: Duration) -> StoreResult<MediaSource> {
        match self.presigned_get(key, expires).await? {
            Some(url) => Ok(MediaSource::Url(url)),
            None => Ok(MediaSource::File(self.local_path(key).await?)),
        }
    }
    /// The object's storage class and whether it can be read now; `NotFound` when there is
    /// none. An archived object still exists (S3's HeadObject answers for it).
    ///
    /// The default (stores without an archive): every object is standard.
    async fn storage(&self, key: &str) -> StoreResult<BlobStorage> {
        let meta = self.head(key).await?;
        Ok(BlobStorage {
            size: meta.size,
            storage_class: STANDARD_CLASS.to_string(),
            state: StorageState::Standard,
        })
    }

    /// Moves the object into the archive class; reads then fail with [`archived_error`] until
    /// it is restored. Archiving an archived object changes nothing. `NotFound` when there is
    /// no object.
    async fn archive(&self, key: &str) -> StoreResult<()> {
        Err(no_archive(key))
    }

    /// Asks for a readable copy of an archived object for `days` days and returns where the
    /// restore stands (S3 takes hours: poll [`BlobStore::storage`]). Asking again while a
    /// restore runs, or for an object already readable, changes nothing.
    async fn request_restore(&self, key: &str, _days: u32) -> StoreResult<RestoreState> {
        Err(no_archive(key))
    }

    /// Makes a restored object standard again (for good, not only for the restore's days).
    /// A standard object is left as it is; an archived one whose restore has not completed is
    /// a `Conflict`.
    async fn make_standard(&self, key: &str) -> StoreResult<()> {
        Err(no_archive(key))
    }
}

/// Rejects keys and prefixes that could escape the store: absolute paths, `..`, backslashes,
/// NUL and empty components.
pub fn check_key(key: &str) -> StoreResult<()> {
    let bad = |why: &str| {
        Err(StoreError::Invalid(format!(
            "invalid blob key {key:?}: {why}"
        )))
    };
    if key.is_empty() {
        return bad("empty");
    }
    if key.starts_with('/') {
        return bad("must be relative");
    }
    if key.contains('\\') || key.contains('\0') {
        return bad("contains a backslash or NUL");
    }
    if key
        .trim_end_matches('/')
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return bad("contains an empty, '.' or '..' component");
    }
    Ok(())
}

/// A directory on the local disk. Hidden files (`.name`) are not listed: they are partial
/// downloads, editor droppings or the store's own bookkeeping.
///
/// Archived objects (see [`BlobStore::archive`]) move into an archive directory, by default
/// `.archive/` inside the root (hidden, so on the same file system: archiving a 6 GB recording
/// is a rename, not a copy) or one set with [`LocalDirStore::with_archive_dir`]. Like S3's
/// archive classes they are still listed and answer `head`, but reading their bytes fails
/// until a restore is asked for (immediate here: the disk is at hand).
#[derive(Debug, Clone)]
pub struct LocalDirStore {
    root: PathBuf,
    archive: PathBuf,
}

/// The archive directory's name inside the root unless another is configured.
pub const DEFAULT_ARCHIVE_DIR: &str = ".archive";

/// Where an object of the local directory is.
enum LocalObject {
    Standard(std::fs::Metadata),
    /// In the archive directory; `restored_until` from its restore marker.
    Archived {
        meta: std::fs::Metadata,
        restored_until: Option<chrono::DateTime<chrono::Utc>>,
    },
    Missing,
}

impl LocalDirStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let archive = root.join(DEFAULT_ARCHIVE_DIR);
        Self { root, archive }
    }

    /// Keeps archived objects in `dir` (e.g. a cheaper disk mounted beside the recordings
    /// root) instead of `.archive/` inside the root. Every process that reads the store must
    /// be given the same directory.
    pub fn with_archive_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.archive = dir.into();
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn archive_dir(&self) -> &Path {
        &self.archive
    }

    fn path_of(&self, key: &str) -> StoreResult<PathBuf> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    fn archived_path_of(&self, key: &str) -> StoreResult<PathBuf> {
        check_key(key)?;
        Ok(self.archive.join(key))
    }

    /// The restore marker of an archived object: a hidden sibling holding the RFC 3339
    /// instant its restored copy expires.
    fn restore_marker(archived: &Path) -> PathBuf {
        let name = archived
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("blob");
        archived.with_file_name(format!(".{name}.restored"))
    }

    async fn locate(&self, key: &str) -> StoreResult<LocalObject> {
        let path = self.path_of(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => return Ok(LocalObject::Standard(m)),
            Ok(_) => return Ok(LocalObject::Missing),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(key, e)),
        }
        let archived = self.archived_path_of(key)?;
        match tokio::fs::metadata(&archived).await {
            Ok(meta) if meta.is_file() => {
                let restored_until =
                    match tokio::fs::read_to_string(Self::restore_marker(&archived)).await {
                        Ok(text) => chrono::DateTime::parse_from_rfc3339(text.trim())
                            .ok()
                            .map(|t| t.with_timezone(&chrono::Utc))
                            // An expired copy is gone, as on S3.
                            .filter(|until| *until > chrono::Utc::now()),
                        Err(_) => None,
                    };
                Ok(LocalObject::Archived {
                    meta,
                    restored_until,
                })
            }
            Ok(_) => Ok(LocalObject::Missing),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LocalObject::Missing),
            Err(e) => Err(io_error(key, e)),
        }
    }

    /// The file holding the object's bytes when they can be read now.
    async fn readable_path(&self, key: &str) -> StoreResult<PathBuf> {
        match self.locate(key).await? {
            LocalObject::Standard(_) => self.path_of(key),
            LocalObject::Archived {
                restored_until: Some(_),
                ..
            } => self.archived_path_of(key),
            LocalObject::Archived { .. } => Err(archived_error(key, LOCAL_ARCHIVE_CLASS)),
            LocalObject::Missing => {
                Err(StoreError::NotFound(format!("blob {key:?} does not exist")))
            }
        }
    }

    /// After a write replaced the object: its archived copy (and marker) is no longer it.
    async fn drop_archived(&self, key: &str) -> StoreResult<()> {
        let archived = self.archived_path_of(key)?;
        for path in [Self::restore_marker(&archived), archived] {
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(key, e)),
            }
        }
        Ok(())
    }
}

/// Renames `from` to `to` (creating `to`'s folder), copying when they are on different file
/// systems (an archive directory on another disk).
fn move_file(from: &Path, to: &Path) -> std::io::Result<()> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if std::fs::rename(from, to).is_ok() {
        return Ok(());
    }
    let tmp = temp_sibling(to);
    std::fs::copy(from, &tmp)?;
    std::fs::rename(&tmp, to)?;
    std::fs::remove_file(from)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<BlobObject>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        let ty = entry.file_type()?;
        let path = entry.path();
        if ty.is_dir() {
            walk(root, &path, out)?;
        } else if ty.is_file() || (ty.is_symlink() && path.is_file()) {
            let rel = path.strip_prefix(root).expect("walked under root");
            let key = rel
                .components()
                .filter_map(|c| match c {
                    Component::Normal(s) => s.to_str(),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("/");
            out.push(BlobObject {
                key,
                size: std::fs::metadata(&path)?.len(),
            });
        }
    }
    Ok(())
}

fn io_error(key: &str, e: std::io::Error) -> StoreError {
    if e.kind() == std::io::ErrorKind::NotFound {
        StoreError::NotFound(format!("blob {key:?} does not exist"))
    } else {
        StoreError::Backend(anyhow::anyhow!("blob {key:?}: {e}"))
    }
}

/// A hidden temporary path next to `path` (hidden files are never listed).
fn temp_sibling(path: &Path) -> PathBuf {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("blob");
    path.with_file_name(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()))
}

#[async_trait]
impl BlobStore for LocalDirStore {
    async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> StoreResult<()> {
        let path = self.path_of(key)?;
        let k = key.to_string();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = temp_sibling(&path);
            std::fs::write(&tmp, &bytes)?;
            std::fs::rename(&tmp, &path)
        })
        .await
        .map_err(|e| StoreError::Backend(e.into()))?
        .map_err(|e| io_error(&k, e))?;
        // A new object replaces the archived one, as a PUT does on S3.
        self.drop_archived(key).await
    }

    async fn put_file(&self, key: &str, source: &Path) -> StoreResult<()> {
        let path = self.path_of(key)?;
        let (k, source) = (key.to_string(), source.to_path_buf());
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = temp_sibling(&path);
            // A rename when on the same file system, else a copy.
            if std::fs::rename(&source, &tmp).is_err() {
                std::fs::copy(&source, &tmp)?;
            }
            std::fs::rename(&tmp, &path)
        })
        .await
        .map_err(|e| StoreError::Backend(e.into()))?
        .map_err(|e| io_error(&k, e))?;
        self.drop_archived(key).await
    }

    async fn get_bytes(&self, key: &str) -> StoreResult<Vec<u8>> {
        let path = self.readable_path(key).await?;
        tokio::fs::read(&path).await.map_err(|e| io_error(key, e))
    }

    async fn exists(&self, key: &str) -> StoreResult<bool> {
        Ok(!matches!(self.locate(key).await?, LocalObject::Missing))
    }

    async fn delete_prefix(&self, prefix: &str) -> StoreResult<u64> {
        let objects = self.list_all(prefix).await?;
        let mut n = 0;
        for o in objects {
            let path = self.path_of(&o.key)?;
            let removed = match tokio::fs::remove_file(&path).await {
                Ok(()) => true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                Err(e) => return Err(io_error(&o.key, e)),
            };
            let archived = self.archived_path_of(&o.key)?;
            let removed_archived = match tokio::fs::remove_file(&archived).await {
                Ok(()) => true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                Err(e) => return Err(io_error(&o.key, e)),
            };
            let _ = tokio::fs::remove_file(Self::restore_marker(&archived)).await;
            if removed || removed_archived {
                n += 1;
            }
        }
        Ok(n)
    }

    async fn list_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> StoreResult<BlobPage> {
        if !prefix.is_empty() {
            check_key(prefix)?;
        }
        let (root, archive) = (self.root.clone(), self.archive.clone());
        let prefix = prefix.to_string();
        let start_after = start_after.map(str::to_string);
        let limit = limit.max(1);
        tokio::task::spawn_blocking(move || {
            // Walk only the deepest directory the prefix names, then filter by the full prefix
            // (S3 semantics: "2024-01-0" matches "2024-01-01/a.mkv"). Archived objects are
            // listed too, as S3 lists objects of every class.
            let folder = prefix.rfind('/').map(|i| &prefix[..i]);
            let mut all = Vec::new();
            for base in [&root, &archive] {
                let dir = folder.map_or_else(|| base.clone(), |f| base.join(f));
                walk(base, &dir, &mut all).map_err(|e| {
                    StoreError::Backend(anyhow::anyhow!("listing {}: {e}", dir.display()))
                })?;
            }
            all.retain(|o| {
                o.key.starts_with(&prefix)
                    && start_after
                        .as_ref()
                        .is_none_or(|a| o.key.as_str() > a.as_str())
            });
            all.sort_by(|a, b| a.key.cmp(&b.key));
            // A key in both places (a write raced an archive): one object, as on S3.
            all.dedup_by(|a, b| a.key == b.key);
            let next = if all.len() > limit {
                all.truncate(limit);
                all.last().map(|o| o.key.clone())
            } else {
                None
            };
            Ok(BlobPage { objects: all, next })
        })
        .await
        .map_err(|e| StoreError::Backend(e.into()))?
    }

    async fn head(&self, key: &str) -> StoreResult<BlobMeta> {
        match self.locate(key).await? {
            LocalObject::Standard(meta) | LocalObject::Archived { meta, .. } => Ok(BlobMeta {
                size: meta.len(),
                etag: None,
            }),
            LocalObject::Missing => {
                Err(StoreError::NotFound(format!("blob {key:?} does not exist")))
            }
        }
    }

    async fn read_range(&self, key: &str, offset: u64, len: u64) -> StoreResult<Vec<u8>> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let path = self.readable_path(key).await?;
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| io_error(key, e))?;
        let meta = file.metadata().await.map_err(|e| io_error(key, e))?;
        if !meta.is_file() {
            return Err(StoreError::NotFound(format!("blob {key:?} is not a file")));
        }
        let size = meta.len();
        let start = offset.min(size);
        let wanted = len.min(size - start);
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|e| io_error(key, e))?;
        let mut out = Vec::with_capacity(usize::try_from(wanted).unwrap_or(0));
        file.take(wanted)
            .read_to_end(&mut out)
            .await
            .map_err(|e| io_error(key, e))?;
        Ok(out)
    }

    async fn local_path(&self, key: &str) -> StoreResult<PathBuf> {
        self.readable_path(key).await
    }

    async fn storage(&self, key: &str) -> StoreResult<BlobStorage> {
        match self.locate(key).await? {
            LocalObject::Standard(meta) => Ok(BlobStorage {
                size: meta.len(),
                storage_class: STANDARD_CLASS.into(),
                state: StorageState::Standard,
            }),
            LocalObject::Archived {
                meta,
                restored_until,
            } => Ok(BlobStorage {
                size: meta.len(),
                storage_class: LOCAL_ARCHIVE_CLASS.into(),
                state: StorageState::Archived(match restored_until {
                    Some(until) => RestoreState::Restored { until: Some(until) },
                    None => RestoreState::NotRequested,
                }),
            }),
            LocalObject::Missing => {
                Err(StoreError::NotFound(format!("blob {key:?} does not exist")))
            }
        }
    }

    async fn archive(&self, key: &str) -> StoreResult<()> {
        match self.locate(key).await? {
            LocalObject::Standard(_) => {}
            LocalObject::Archived { .. } => return Ok(()),
            LocalObject::Missing => {
                return Err(StoreError::NotFound(format!("blob {key:?} does not exist")));
            }
        }
        let (from, to) = (self.path_of(key)?, self.archived_path_of(key)?);
        let marker = Self::restore_marker(&to);
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            // A marker left from an earlier archive would make the new one read as restored.
            match std::fs::remove_file(&marker) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            move_file(&from, &to)
        })
        .await
        .map_err(|e| StoreError::Backend(e.into()))?
        .map_err(|e| io_error(key, e))
    }

    async fn request_restore(&self, key: &str, days: u32) -> StoreResult<RestoreState> {
        if days == 0 {
            return Err(StoreError::Invalid(format!(
                "restoring blob {key:?}: the restored copy must be kept at least 1 day"
            )));
        }
        match self.locate(key).await? {
            // Nothing to restore: readable already.
            LocalObject::Standard(_) => Ok(RestoreState::Restored { until: None }),
            LocalObject::Archived {
                restored_until: Some(until),
                ..
            } => Ok(RestoreState::Restored { until: Some(until) }),
            LocalObject::Archived { .. } => {
                // The disk is at hand: the copy is readable at once, for `days` days.
                let until = chrono::Utc::now() + chrono::Duration::days(i64::from(days));
                let marker = Self::restore_marker(&self.archived_path_of(key)?);
                let tmp = temp_sibling(&marker);
                let text = until.to_rfc3339();
                tokio::fs::write(&tmp, text)
                    .await
                    .map_err(|e| io_error(key, e))?;
                tokio::fs::rename(&tmp, &marker)
                    .await
                    .map_err(|e| io_error(key, e))?;
                Ok(RestoreState::Restored { until: Some(until) })
            }
            LocalObject::Missing => {
                Err(StoreError::NotFound(format!("blob {key:?} does not exist")))
            }
        }
    }

    async fn make_standard(&self, key: &str) -> StoreResult<()> {
        match self.locate(key).await? {
            LocalObject::Standard(_) => Ok(()),
            LocalObject::Archived {
                restored_until: Some(_),
                ..
            } => {
                let (from, to) = (self.archived_path_of(key)?, self.path_of(key)?);
                let marker = Self::restore_marker(&from);
                tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                    move_file(&from, &to)?;
                    match std::fs::remove_file(&marker) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                        _ => Ok(()),
                    }
                })
                .await
                .map_err(|e| StoreError::Backend(e.into()))?
                .map_err(|e| io_error(key, e))
            }
            LocalObject::Archived { .. } => Err(StoreError::Conflict(format!(
                "blob {key:?} is archived and not restored: request a restore first"
            ))),
            LocalObject::Missing => {
                Err(StoreError::NotFound(format!("blob {key:?} does not exist")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape_the_root() {
        for bad in ["", "/etc/passwd", "a/../b", "..", "a//b", "a\\b", "./a"] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "2024-01-01/2024-01-01 10-00-00.mkv", "a/b/"] {
            assert!(check_key(good).is_ok(), "{good:?}");
        }
    }

    #[tokio::test]
    async fn lists_all_pages_in_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path().join("2024-01-01");
        std::fs::create_dir_all(s.join("sub")).unwrap();
        for name in ["b.mkv", "a.mkv", "c.mkv", ".partial.mkv", "sub/d.mkv"] {
            std::fs::write(s.join(name), name).unwrap();
        }
        std::fs::write(dir.path().join("2024-01-02.mkv"), "x").unwrap();
        let store = LocalDirStore::new(dir.path());
        let page = store.list_page("2024-01-01/", None, 2).await.unwrap();
        assert_eq!(
            page.objects
                .iter()
                .map(|o| o.key.as_str())
                .collect::<Vec<_>>(),
            ["2024-01-01/a.mkv", "2024-01-01/b.mkv"]
        );
        assert_eq!(page.next.as_deref(), Some("2024-01-01/b.mkv"));
        let all = store.list_all("2024-01-01/").await.unwrap();
        assert_eq!(
            all.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
            [
                "2024-01-01/a.mkv",
                "2024-01-01/b.mkv",
                "2024-01-01/c.mkv",
                "2024-01-01/sub/d.mkv"
            ]
        );
        assert_eq!(all[0].size, 5);
        // A bare prefix matches like S3: both the folder and the sibling file.
        assert_eq!(store.list_all("2024-01-0").await.unwrap().len(), 5);
        assert!(store.list_all("../x").await.is_err());
        assert!(store.list_all("missing/").await.unwrap().is_empty());
        assert!(matches!(
            store.local_path("2024-01-01/zzz.mkv").await,
            Err(StoreError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn put_get_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDirStore::new(dir.path());
        store
            .put_bytes("u/speech/a b.wav", b"one".to_vec())
            .await
            .unwrap();
        store
            .put_bytes("u/speech/a b.wav", b"two".to_vec())
            .await
            .unwrap();
        assert_eq!(store.get_bytes("u/speech/a b.wav").await.unwrap(), b"two");
        assert!(store.exists("u/speech/a b.wav").await.unwrap());
        let src = dir.path().join("outside.txt");
        std::fs::write(&src, "moved").unwrap();
        store.put_file("u/hls/x/0.ts", &src).await.unwrap();
        assert_eq!(store.get_bytes("u/hls/x/0.ts").await.unwrap(), b"moved");
        // Only the objects are listed, no temporary files.
        assert_eq!(store.list_all("u/").await.unwrap().len(), 2);
        assert_eq!(store.delete_prefix("u/hls/").await.unwrap(), 1);
        assert!(!store.exists("u/hls/x/0.ts").await.unwrap());
        assert!(matches!(
            store.get_bytes("u/nope").await,
            Err(StoreError::NotFound(_))
        ));
        assert!(store.put_bytes("../escape", vec![]).await.is_err());
    }
}
