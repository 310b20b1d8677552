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
#[derive(Debug, Clone)]
pub struct LocalDirStore {
    root: PathBuf,
}

impl LocalDirStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &str) -> StoreResult<PathBuf> {
        check_key(key)?;
        Ok(self.root.join(key))
    }
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
        .map_err(|e| io_error(&k, e))
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
        .map_err(|e| io_error(&k, e))
    }

    async fn get_bytes(&self, key: &str) -> StoreResult<Vec<u8>> {
        let path = self.path_of(key)?;
        tokio::fs::read(&path).await.map_err(|e| io_error(key, e))
    }

    async fn exists(&self, key: &str) -> StoreResult<bool> {
        let path = self.path_of(key)?;
        Ok(tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_file()))
    }

    async fn delete_prefix(&self, prefix: &str) -> StoreResult<u64> {
        let objects = self.list_all(prefix).await?;
        let mut n = 0;
        for o in objects {
            let path = self.path_of(&o.key)?;
            match tokio::fs::remove_file(&path).await {
                Ok(()) => n += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&o.key, e)),
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
        let root = self.root.clone();
        let prefix = prefix.to_string();
        let start_after = start_after.map(str::to_string);
        let limit = limit.max(1);
        tokio::task::spawn_blocking(move || {
            // Walk only the deepest directory the prefix names, then filter by the full prefix
            // (S3 semantics: "2024-01-0" matches "2024-01-01/a.mkv").
            let dir = match prefix.rfind('/') {
                Some(i) => root.join(&prefix[..i]),
                None => root.clone(),
            };
            let mut all = Vec::new();
            walk(&root, &dir, &mut all).map_err(|e| {
                StoreError::Backend(anyhow::anyhow!("listing {}: {e}", dir.display()))
            })?;
            all.retain(|o| {
                o.key.starts_with(&prefix)
                    && start_after
                        .as_ref()
                        .is_none_or(|a| o.key.as_str() > a.as_str())
            });
            all.sort_by(|a, b| a.key.cmp(&b.key));
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
        let path = self.path_of(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => Ok(BlobMeta {
                size: m.len(),
                etag: None,
            }),
            Ok(_) => Err(StoreError::NotFound(format!("blob {key:?} is not a file"))),
            Err(e) => Err(io_error(key, e)),
        }
    }

    async fn read_range(&self, key: &str, offset: u64, len: u64) -> StoreResult<Vec<u8>> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let path = self.path_of(key)?;
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
        let path = self.path_of(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => Ok(path),
            Ok(_) => Err(StoreError::NotFound(format!("blob {key:?} is not a file"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::NotFound(format!("blob {key:?} does not exist")))
            }
            Err(e) => Err(StoreError::Backend(anyhow::anyhow!(
                "reading blob {key:?}: {e}"
            ))),
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
