//! What Apache's default handler does for a static file beyond sending it:
//! the validators (`Last-Modified`, `ETag` of size and modification time,
//! as `FileETag MTime Size`), conditional requests answered with 304, and
//! a single byte range answered with 206 (several ranges are answered with
//! the whole file, as RFC 9110 allows).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::dates::{http_date, parse_http_date};

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
