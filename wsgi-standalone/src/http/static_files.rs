//! What Apache's default handler does for a static file beyond sending it:
//! the validators (`Last-Modified`, `ETag` of size and modification time,
//! as `FileETag MTime Size`), conditional requests answered with 304, and
//! a single byte range answered with 206 (several ranges are answered with
//! the whole file, as RFC 9110 allows), and the memory cache that serves
//! small files without reading them again.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::dates::{http_date, parse_http_date};

/// Files up to this size are kept in memory; larger ones are streamed.
pub(crate) const CACHED_FILE_LIMIT: u64 = 1 << 20;
/// The most bytes the cache holds.
const CACHE_BYTES: u64 = 64 << 20;
/// The most files the cache holds.
const CACHE_ENTRIES: usize = 16_384;
/// A file changed this recently may still be being written: it is served
/// as read, but not kept.
const SETTLE: Duration = Duration::from_secs(2);

/// What says a file is still the one that was read: a file replaced,
/// rewritten or touched differs in one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    device: u64,
    inode: u64,
    size: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl Identity {
    fn of(meta: &Metadata) -> Identity {
        Identity {
            device: meta.dev(),
            inode: meta.ino(),
            size: meta.size(),
            modified: (meta.mtime(), meta.mtime_nsec()),
            changed: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// A small file's contents with its validators.
#[derive(Debug)]
pub(crate) struct CachedFile {
    identity: Identity,
    /// The whole file.
    pub(crate) body: Bytes,
    /// Its `Last-Modified` and `ETag`.
    pub(crate) validators: Validators,
}

impl CachedFile {
    /// The file whose metadata, taken before `body` was read from it, is
    /// `meta`.
    pub(crate) fn new(meta: &Metadata, body: Bytes) -> CachedFile {
        let validators = Validators::new(meta.len(), meta.modified().unwrap_or(UNIX_EPOCH));
        CachedFile { identity: Identity::of(meta), body, validators }
    }
}

/// Small static files kept in memory, each checked against one `stat` of
/// its path per request, so a changed file is read again at once.
///
/// Apache relies on the kernel's page cache and sends with sendfile. The
/// standalone server's responses are written by hyper, which takes bytes,
/// not file descriptors: reading the file for every request (on tokio's
/// blocking pool) is what this replaces.
#[derive(Debug, Default)]
pub(crate) struct FileCache {
    files: Mutex<CacheContents>,
}

#[derive(Debug, Default)]
struct CacheContents {
    by_path: HashMap<PathBuf, Arc<CachedFile>>,
    bytes: u64,
}

impl FileCache {
    /// The kept contents of `path` if its metadata `meta` (taken now)
    /// shows the same file.
    pub(crate) fn get(&self, path: &Path, meta: &Metadata) -> Option<Arc<CachedFile>> {
        let files = self.files.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        files.by_path.get(path).filter(|file| file.identity == Identity::of(meta)).cloned()
    }

    /// Keeps `file` for `path` unless it changed less than [`SETTLE`] ago
    /// (`now`) or is too large; makes room by dropping other files.
    pub(crate) fn keep(&self, path: &Path, file: &Arc<CachedFile>, now: SystemTime) {
        let (seconds, nanos) = file.identity.changed.max(file.identity.modified);
        let changed = UNIX_EPOCH + Duration::new(seconds.max(0) as u64, nanos.clamp(0, 999_999_999) as u32);
        let settled = now.duration_since(changed).is_ok_and(|age| age >= SETTLE);
        let size = file.body.len() as u64;
        if !settled || size > CACHED_FILE_LIMIT {
            return;
        }
        let mut files = self.files.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(old) = files.by_path.remove(path) {
            files.bytes -= old.body.len() as u64;
        }
        // Which files go to make room does not matter much: any order.
        while files.bytes + size > CACHE_BYTES || files.by_path.len() >= CACHE_ENTRIES {
            let Some(victim) = files.by_path.keys().next().cloned() else { break };
            if let Some(old) = files.by_path.remove(&victim) {
                files.bytes -= old.body.len() as u64;
            }
        }
        files.bytes += size;
        files.by_path.insert(path.to_path_buf(), Arc::clone(file));
    }
}

/// A file's validators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Validators {
    /// `Last-Modified`, an IMF-fixdate.
    pub(crate) last_modified: String,
    /// `ETag`, strong, as Apache makes it: size and microseconds, in hex.
    pub(crate) etag: String,
    modified_secs: u64,
}

impl Validators {
    /// The validators of a file of `size` bytes modified at `modified`.
    pub(crate) fn new(size: u64, modified: SystemTime) -> Validators {
        let since_epoch = modified.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        Validators {
            last_modified: http_date(since_epoch.as_secs()),
            etag: format!("\"{size:x}-{:x}\"", since_epoch.as_micros()),
            modified_secs: since_epoch.as_secs(),
        }
    }

    /// Whether a GET or HEAD with these request headers gets 304:
    /// `If-None-Match` names the tag (or `*`); without it,
    /// `If-Modified-Since` is no earlier than the modification and not in
    /// the future (`now`), which Apache ignores as RFC 9110 asks.
    pub(crate) fn not_modified(&self, if_none_match: Option<&str>, if_modified_since: Option<&str>, now: u64) -> bool {
        if let Some(tags) = if_none_match {
            return tags.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == self.etag);
        }
        if_modified_since.and_then(parse_http_date).is_some_and(|since| since >= self.modified_secs && since <= now)
    }

    /// Whether an `If-Range` allows a partial answer: it names this tag or
    /// this date (or there is none).
    pub(crate) fn range_allowed(&self, if_range: Option<&str>) -> bool {
        if_range.is_none_or(|value| value == self.etag || value == self.last_modified)
    }
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeRequest {
    /// The whole file: no range, several, or one not in `bytes`.
    Whole,
    /// Bytes `start..=end`.
    Part { start: u64, end: u64 },
    /// A range that starts past the end: 416.
    Unsatisfiable,
}

/// Reads `Range: bytes=a-b`, `bytes=a-` or `bytes=-n`.
pub(crate) fn range(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else { return RangeRequest::Whole };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return RangeRequest::Whole };
    let number = |text: &str| text.trim().parse::<u64>().ok();
    let (start, end) = match (first.trim().is_empty(), number(first), number(last)) {
        // The last zero bytes are no range at all: Apache ignores it too.
        (true, _, Some(suffix)) if suffix > 0 => (size.saturating_sub(suffix), size.saturating_sub(1)),
        (false, Some(start), None) if last.trim().is_empty() => (start, size.saturating_sub(1)),
        (false, Some(start), Some(end)) if start <= end => (start, end.min(size.saturating_sub(1))),
        _ => return RangeRequest::Whole,
    };
    if start >= size {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Part { start, end }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wsgi-static-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The file at `path` as read now. It changed just now: the tests
    /// that want it kept pass `keep` a `now` seconds ahead.
    fn cached(path: &Path) -> Arc<CachedFile> {
        let meta = std::fs::metadata(path).unwrap();
        Arc::new(CachedFile::new(&meta, Bytes::from(std::fs::read(path).unwrap())))
    }

    #[test]
    fn a_kept_file_is_served_until_it_changes() {
        let dir = scratch("change");
        let path = dir.join("a.txt");
        std::fs::write(&path, "first").unwrap();
        let cache = FileCache::default();
        let later = SystemTime::now() + Duration::from_secs(10);
        cache.keep(&path, &cached(&path), later);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(cache.get(&path, &meta).unwrap().body, "first");
        // Rewritten with the same size: the change time tells.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&path, "again").unwrap();
        assert!(cache.get(&path, &std::fs::metadata(&path).unwrap()).is_none());
        // Replaced by another file (another inode).
        cache.keep(&path, &cached(&path), later + Duration::from_secs(10));
        std::fs::write(dir.join("b.txt"), "other").unwrap();
        std::fs::rename(dir.join("b.txt"), &path).unwrap();
        assert!(cache.get(&path, &std::fs::metadata(&path).unwrap()).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_changed_just_now_or_too_large_is_not_kept() {
        let dir = scratch("settle");
        let path = dir.join("a.txt");
        std::fs::write(&path, "fresh").unwrap();
        let cache = FileCache::default();
        cache.keep(&path, &cached(&path), SystemTime::now());
        assert!(cache.get(&path, &std::fs::metadata(&path).unwrap()).is_none(), "changed less than 2 s ago");
        let large = dir.join("large.bin");
        std::fs::write(&large, vec![0u8; CACHED_FILE_LIMIT as usize + 1]).unwrap();
        cache.keep(&large, &cached(&large), SystemTime::now() + Duration::from_secs(10));
        assert!(cache.get(&large, &std::fs::metadata(&large).unwrap()).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_cache_stays_within_its_byte_budget() {
        let dir = scratch("budget");
        let cache = FileCache::default();
        let later = SystemTime::now() + Duration::from_secs(10);
        let body = vec![7u8; CACHED_FILE_LIMIT as usize];
        for i in 0..80 {
            let path = dir.join(format!("{i}.bin"));
            std::fs::write(&path, &body).unwrap();
            cache.keep(&path, &cached(&path), later);
        }
        let files = cache.files.lock().unwrap();
        assert!(
            files.bytes <= CACHE_BYTES && files.by_path.len() == 64,
            "{} files, {} bytes",
            files.by_path.len(),
            files.bytes
        );
        assert_eq!(files.bytes, files.by_path.values().map(|f| f.body.len() as u64).sum::<u64>());
        drop(files);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn conditional_requests() {
        let v = Validators::new(4, UNIX_EPOCH + Duration::from_micros(784_111_777_000_001));
        assert_eq!(v.etag, "\"4-2c9253feeaa41\"");
        let now = 784_111_800;
        assert!(v.not_modified(Some(&v.etag), None, now));
        assert!(v.not_modified(Some("\"other\", *"), None, now));
        assert!(!v.not_modified(Some("\"other\""), Some(&v.last_modified), now), "If-None-Match decides");
        assert!(v.not_modified(None, Some("Sun, 06 Nov 1994 08:49:37 GMT"), now));
        assert!(!v.not_modified(None, Some("Sun, 06 Nov 1994 08:49:36 GMT"), now));
        assert!(!v.not_modified(None, Some("Sun, 06 Nov 1994 09:49:37 GMT"), now), "a date in the future");
        assert!(v.range_allowed(None) && v.range_allowed(Some(&v.etag)) && !v.range_allowed(Some("\"x\"")));
    }

    #[test]
    fn byte_ranges() {
        assert_eq!(range(Some("bytes=0-3"), 10), RangeRequest::Part { start: 0, end: 3 });
        assert_eq!(range(Some("bytes=4-"), 10), RangeRequest::Part { start: 4, end: 9 });
        assert_eq!(range(Some("bytes=-3"), 10), RangeRequest::Part { start: 7, end: 9 });
        assert_eq!(range(Some("bytes=5-100"), 10), RangeRequest::Part { start: 5, end: 9 });
        assert_eq!(range(Some("bytes=10-"), 10), RangeRequest::Unsatisfiable);
        assert_eq!(range(Some("bytes=-0"), 10), RangeRequest::Whole, "as Apache answers");
        for whole in [None, Some("bytes=0-1,4-5"), Some("items=0-1"), Some("bytes=3-1"), Some("bytes=x-")] {
            assert_eq!(range(whole, 10), RangeRequest::Whole, "{whole:?}");
        }
    }
}
