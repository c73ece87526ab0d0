//! What Apache's default handler does for a static file beyond sending it:
//! the validators (`Last-Modified`, `ETag` of size and modification time,
//! as `FileETag MTime Size`), conditional requests answered with 304, and
//! a single byte range answered with 206 (several ranges are answered with
//! the whole file, as RFC 9110 allows).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    /// `If-Modified-Since` is no earlier than the modification.
    pub(crate) fn not_modified(&self, if_none_match: Option<&str>, if_modified_since: Option<&str>) -> bool {
        if let Some(tags) = if_none_match {
            return tags.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == self.etag);
        }
        if_modified_since.and_then(parse_http_date).is_some_and(|since| since >= self.modified_secs)
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

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// `secs` since the epoch as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub(crate) fn http_date(secs: u64) -> String {
    let days = secs / 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    let rest = secs % 86_400;
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// An IMF-fixdate back to seconds since the epoch; `None` for anything
/// else (the obsolete formats are not worth a 304).
pub(crate) fn parse_http_date(text: &str) -> Option<u64> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = words.as_slice() else { return None };
    let month = MONTHS.iter().position(|m| m == month)? as u32 + 1;
    let mut clock = time.split(':').map(|part| part.parse::<u64>().ok());
    let (hour, minute, second) = (clock.next()??, clock.next()??, clock.next()??);
    let days = days_from_civil(year.parse().ok()?, month, day.parse().ok()?);
    u64::try_from(days).ok().map(|days| days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Howard Hinnant's civil-from-days: (year, month 1-12, day 1-31).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_in_the_imf_fixdate_form() {
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        for secs in [0, 951_782_400, 1_709_210_096, 4_102_444_799] {
            assert_eq!(parse_http_date(&http_date(secs)), Some(secs), "{}", http_date(secs));
        }
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
    }

    #[test]
    fn conditional_requests() {
        let v = Validators::new(4, UNIX_EPOCH + Duration::from_micros(784_111_777_000_001));
        assert_eq!(v.etag, "\"4-2c9253feeaa41\"");
        assert!(v.not_modified(Some(&v.etag), None));
        assert!(v.not_modified(Some("\"other\", *"), None));
        assert!(!v.not_modified(Some("\"other\""), Some(&v.last_modified)), "If-None-Match decides");
        assert!(v.not_modified(None, Some("Sun, 06 Nov 1994 08:49:37 GMT")));
        assert!(!v.not_modified(None, Some("Sun, 06 Nov 1994 08:49:36 GMT")));
        assert!(v.range_allowed(None) && v.range_allowed(Some(&v.etag)) && !v.range_allowed(Some("\"x\"")));
    }

    #[test]
    fn byte_ranges() {
        assert_eq!(range(Some("bytes=0-3"), 10), RangeRequest::Part { start: 0, end: 3 });
        assert_eq!(range(Some("bytes=4-"), 10), RangeRequest::Part { start: 4, end: 9 });
        assert_eq!(range(Some("bytes=-3"), 10), RangeRequest::Part { start: 7, end: 9 });
        assert_eq!(range(Some("bytes=5-100"), 10), RangeRequest::Part { start: 5, end: 9 });
        assert_eq!(range(Some("bytes=10-"), 10), RangeRequest::Unsatisfiable);
        for whole in [None, Some("bytes=0-1,4-5"), Some("items=0-1"), Some("bytes=3-1"), Some("bytes=x-")] {
            assert_eq!(range(whole, 10), RangeRequest::Whole, "{whole:?}");
        }
    }
}
