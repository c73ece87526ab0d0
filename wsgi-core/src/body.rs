//! The request-body policy, checked before the application runs:
//!
//! - a `Transfer-Encoding` other than `chunked` is a 501;
//! - `chunked` without `WSGIChunkedRequest On` is a 411;
//! - `chunked` together with `Content-Length` is a 400 (a smuggling risk);
//! - a malformed `Content-Length` (not digits, or differing values) is a 400;
//! - a `Content-Length` above `LimitRequestBody` is a 413;
//! - a trailer field that only means something in the head
//!   ([`forbidden_trailer`]) is a 400.
//!
//! A chunked body's size is unknown up front, so [`LimitedReader`] enforces
//! the limit while the application reads, failing with an error that
//! [`body_error_status`] recognises as a 413.

use std::io::{self, Read};

use crate::request::RequestHead;

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body: neither `Content-Length` nor `Transfer-Encoding`.
    Empty,
    /// Exactly this many bytes (`Content-Length`).
    Length(u64),
    /// Chunked transfer coding: length unknown until the end.
    Chunked,
}

/// A request refused because of its body, with the status to answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct BodyError {
    /// The HTTP status: 400, 408, 411, 413 or 501.
    pub status: u16,
    /// What is wrong, for the error log.
    pub message: String,
}

impl BodyError {
    fn new(status: u16, message: impl Into<String>) -> BodyError {
        BodyError { status, message: message.into() }
    }

    /// The error for a body larger than `limit` bytes (413).
    pub fn too_large(limit: u64) -> BodyError {
        BodyError::new(413, format!("request body exceeds the limit of {limit} bytes (LimitRequestBody)"))
    }

    /// A body the client sent malformed (a bad chunk size, a connection cut
    /// mid-body): 400.
    pub fn malformed(message: impl Into<String>) -> BodyError {
        BodyError::new(400, message)
    }

    /// A body the client did not go on sending within the socket timeout
    /// (`Timeout`): 408, as Apache's mod_reqtimeout answers.
    pub fn timeout() -> BodyError {
        BodyError::new(408, "request body not received within the socket timeout")
    }

    /// A trailer field the request must not send ([`forbidden_trailer`]):
    /// 400.
    pub fn forbidden_trailer(name: &str) -> BodyError {
        BodyError::new(400, format!("forbidden field '{name}' in the request's trailer section"))
    }

    /// This error as the `io::Error` a body reader returns;
    /// [`body_error_status`] reads the status back out of it.
    pub fn into_io_error(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }
}

/// The fields RFC 9110 section 6.5.1 forbids in a trailer section,
/// lower-case: those that frame the message (`Content-Length`,
/// `Transfer-Encoding`, `Trailer`, `TE`) or the connection (`Connection`,
/// `Keep-Alive`, `Upgrade`, `Proxy-Connection`), route it (`Host`),
/// modify the request (`Expect`, `Range`, `Max-Forwards`, the
/// conditionals, `Cache-Control`, `Pragma`), authenticate it, or say how
/// to process its content (`Content-Type`, `Content-Encoding`,
/// `Content-Range`). A request sending one could be read two ways (the
/// field read as if in the head, or ignored), so it is refused.
pub const FORBIDDEN_TRAILERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "trailer",
    "te",
    "host",
    "connection",
    "keep-alive",
    "upgrade",
    "proxy-connection",
    "expect",
    "range",
    "max-forwards",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "if-range",
    "cache-control",
    "pragma",
    "authorization",
    "proxy-authorization",
    "content-type",
    "content-encoding",
    "content-range",
];

/// Whether a trailer field named `name` is one of [`FORBIDDEN_TRAILERS`]
/// (compared case-insensitively).
pub fn forbidden_trailer(name: &str) -> bool {
    FORBIDDEN_TRAILERS.iter().any(|forbidden| forbidden.eq_ignore_ascii_case(name))
}

/// Checks the body headers of `head` against the policy. `limit` is
/// `LimitRequestBody` (0: unlimited); `chunked_allowed` is
/// `WSGIChunkedRequest`.
pub fn check_body(head: &RequestHead, limit: u64, chunked_allowed: bool) -> Result<BodyKind, BodyError> {
    let encodings: Vec<&str> = head.header_values("transfer-encoding").collect();
    if !encodings.is_empty() {
        let encoding = encodings.join(", ");
        if !encoding.trim_matches(is_ows).eq_ignore_ascii_case("chunked") {
            return Err(BodyError::new(
                501,
                format!("unexpected Transfer-Encoding '{encoding}': only 'chunked' is supported"),
            ));
        }
        if !chunked_allowed {
            return Err(BodyError::new(411, "chunked request body received, but WSGIChunkedRequest is not enabled"));
        }
        if head.header("content-length").is_some() {
            return Err(BodyError::new(400, "Content-Length given together with Transfer-Encoding: chunked"));
        }
        return Ok(BodyKind::Chunked);
    }
    match content_length(head)? {
        None => Ok(BodyKind::Empty),
        Some(length) if limit != 0 && length > limit => Err(BodyError::too_large(limit)),
        Some(length) => Ok(BodyKind::Length(length)),
    }
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// The `Content-Length`, if given: every value (repeated headers, or a
/// comma-separated list) must be digits and all must agree.
fn content_length(head: &RequestHead) -> Result<Option<u64>, BodyError> {
    let mut length: Option<u64> = None;
    for value in head.header_values("content-length") {
        for item in value.split(',') {
            let item = item.trim_matches(is_ows);
            let parsed = (!item.is_empty() && item.bytes().all(|b| b.is_ascii_digit()))
                .then(|| item.parse::<u64>().ok())
                .flatten()
                .ok_or_else(|| BodyError::new(400, format!("invalid Content-Length header value '{value}'")))?;
            if length.is_some_and(|earlier| earlier != parsed) {
                return Err(BodyError::new(400, "several differing Content-Length values"));
            }
            length = Some(parsed);
        }
    }
    Ok(length)
}

/// A reader that fails once more than `limit` bytes come from `inner` (0:
/// unlimited). The error wraps [`BodyError::too_large`], so
/// [`body_error_status`] finds the 413 in it; it repeats on every later
/// read.
#[derive(Debug)]
pub struct LimitedReader<R> {
    inner: R,
    limit: u64,
    consumed: u64,
    exceeded: bool,
}

impl<R: Read> LimitedReader<R> {
    /// Wraps `inner` with a limit of `limit` bytes (0: unlimited).
    pub fn new(inner: R, limit: u64) -> LimitedReader<R> {
        LimitedReader { inner, limit, consumed: 0, exceeded: false }
    }

    /// Bytes read through so far.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The wrapped reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn too_large(&mut self) -> io::Error {
        self.exceeded = true;
        io::Error::new(io::ErrorKind::InvalidData, BodyError::too_large(self.limit))
    }
}

impl<R: Read> Read for LimitedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.exceeded {
            return Err(self.too_large());
        }
        if self.limit == 0 {
            let n = self.inner.read(buf)?;
            self.consumed += n as u64;
            return Ok(n);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let allowed = self.limit - self.consumed;
        if allowed == 0 {
            // At the limit: any further byte means the body is too large.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(self.too_large()),
            };
        }
        let want = buf.len().min(usize::try_from(allowed).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.consumed += n as u64;
        Ok(n)
    }
}

/// The largest single read [`InputBuffer`] makes from the body.
pub const READ_CHUNK: usize = 64 * 1024;

/// The buffering behind `wsgi.input`: `read(size)`, `readline(size)` and
/// iteration by lines over a body that arrives in reads of any size.
///
/// It holds the body bytes read but not yet handed to the application: at
/// most one line plus one read, however the body is read. It does not read
/// by itself: each call is given the function that reads from the body
/// (`read`, as [`Read::read`]), so that an interpreter can release its lock
/// around the blocking read and count it. Once `read` returns 0 the body
/// is over and it is not called again.
#[derive(Debug, Default)]
pub struct InputBuffer {
    pending: Vec<u8>,
    start: usize,
    done: bool,
}

/// The body reading function an [`InputBuffer`] is given.
pub type ReadFn<'a> = dyn FnMut(&mut [u8]) -> io::Result<usize> + 'a;

impl InputBuffer {
    /// An empty buffer over a body not yet read.
    pub fn new() -> InputBuffer {
        InputBuffer::default()
    }

    /// Body bytes read but not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.pending[self.start..]
    }

    /// Whether the body has ended (a read returned 0).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Takes the first `n` buffered bytes (`n` at most
    /// [`InputBuffer::buffered`]'s length).
    pub fn consume(&mut self, n: usize) -> Vec<u8> {
        let out = self.pending[self.start..self.start + n].to_vec();
        self.start += n;
        if self.start == self.pending.len() {
            self.pending.clear();
            self.start = 0;
        }
        out
    }

    /// Reads once more from the body into the buffer, at most `want` bytes
    /// (at least 1, at most [`READ_CHUNK`]); `Ok(false)` at the end.
    pub fn fill(&mut self, want: usize, read: &mut ReadFn<'_>) -> io::Result<bool> {
        if self.done {
            return Ok(false);
        }
        // Drop what was consumed, so the buffer holds at most one line
        // plus one read, however the body is read.
        if self.start > 0 {
            self.pending.drain(..self.start);
            self.start = 0;
        }
        let mut chunk = vec![0u8; want.clamp(1, READ_CHUNK)];
        let n = read(&mut chunk)?;
        if n == 0 {
            self.done = true;
            return Ok(false);
        }
        self.pending.extend_from_slice(&chunk[..n]);
        Ok(true)
    }

    /// Reads from the body straight into `dst`, once, for a caller that
    /// found nothing buffered; `Ok(0)` at the end.
    pub fn read_direct(&mut self, dst: &mut [u8], read: &mut ReadFn<'_>) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let n = read(dst)?;
        if n == 0 {
            self.done = true;
        }
        Ok(n)
    }

    /// `read(size)` with `limit` the size (`usize::MAX`: all of it): the
    /// next `limit` bytes, fewer only at the end of the body.
    pub fn read(&mut self, limit: usize, read: &mut ReadFn<'_>) -> io::Result<Vec<u8>> {
        while self.buffered().len() < limit {
            if !self.fill(limit - self.buffered().len(), read)? {
                break;
            }
        }
        let n = self.buffered().len().min(limit);
        Ok(self.consume(n))
    }

    /// `readline(size)` with `limit` the size (`usize::MAX`: no limit):
    /// one line with its newline, or `limit` bytes of a longer one, or
    /// what is left at the end of the body (empty: nothing).
    pub fn read_line(&mut self, limit: usize, read: &mut ReadFn<'_>) -> io::Result<Vec<u8>> {
        loop {
            let buffered = self.buffered();
            if let Some(pos) = buffered.iter().position(|&b| b == b'\n') {
                return Ok(self.consume((pos + 1).min(limit)));
            }
            if buffered.len() >= limit {
                return Ok(self.consume(limit));
            }
            if !self.fill(READ_CHUNK, read)? {
                let n = self.buffered().len().min(limit);
                return Ok(self.consume(n));
            }
        }
    }
}

/// The HTTP status an I/O error from body reading stands for: the status of
/// a [`BodyError`] inside it (e.g. 413 from [`LimitedReader`]).
pub fn body_error_status(error: &io::Error) -> Option<u16> {
    error.get_ref().and_then(|inner| inner.downcast_ref::<BodyError>()).map(|e| e.status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Scheme;

    fn head(headers: &[(&str, &str)]) -> RequestHead {
        RequestHead {
            method: "POST".into(),
            raw_uri: "/".into(),
            protocol: "HTTP/1.1".into(),
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            peer: "127.0.0.1:5000".parse().unwrap(),
            local: "127.0.0.1:80".parse().unwrap(),
            scheme: Scheme::Http,
        }
    }

    fn status(headers: &[(&str, &str)], limit: u64, chunked: bool) -> Result<BodyKind, u16> {
        check_body(&head(headers), limit, chunked).map_err(|e| e.status)
    }

    #[test]
    fn lengths() {
        assert_eq!(status(&[], 10, false), Ok(BodyKind::Empty));
        assert_eq!(status(&[("Content-Length", "0")], 10, false), Ok(BodyKind::Length(0)));
        assert_eq!(status(&[("content-length", " 10 ")], 10, false), Ok(BodyKind::Length(10)));
        assert_eq!(status(&[("Content-Length", "11")], 10, false), Err(413));
        assert_eq!(status(&[("Content-Length", "99999999999")], 0, false), Ok(BodyKind::Length(99999999999)));
        assert_eq!(status(&[("Content-Length", "5"), ("Content-Length", "5")], 10, false), Ok(BodyKind::Length(5)));
        assert_eq!(status(&[("Content-Length", "5, 5")], 10, false), Ok(BodyKind::Length(5)));
    }

    #[test]
    fn malformed_lengths_are_400() {
        for bad in ["", "abc", "-1", "+5", "5x", "1 2", "0x10", "99999999999999999999999", "5,"] {
            assert_eq!(status(&[("Content-Length", bad)], 0, false), Err(400), "{bad:?}");
        }
        assert_eq!(status(&[("Content-Length", "5"), ("Content-Length", "6")], 0, false), Err(400));
        assert_eq!(status(&[("Content-Length", "5, 6")], 0, false), Err(400));
    }

    #[test]
    fn transfer_encodings() {
        assert_eq!(status(&[("Transfer-Encoding", "chunked")], 10, true), Ok(BodyKind::Chunked));
        assert_eq!(status(&[("Transfer-Encoding", "Chunked")], 10, true), Ok(BodyKind::Chunked));
        assert_eq!(status(&[("Transfer-Encoding", "chunked")], 10, false), Err(411));
        assert_eq!(status(&[("Transfer-Encoding", "gzip")], 10, true), Err(501));
        assert_eq!(status(&[("Transfer-Encoding", "gzip, chunked")], 10, true), Err(501));
        assert_eq!(status(&[("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")], 10, true), Err(501));
        assert_eq!(status(&[("Transfer-Encoding", "gzip")], 10, false), Err(501), "501 before 411");
        assert_eq!(status(&[("Transfer-Encoding", "chunked"), ("Content-Length", "3")], 10, true), Err(400));
        assert_eq!(status(&[("Transfer-Encoding", "chunked"), ("Content-Length", "x")], 10, true), Err(400));
        assert_eq!(status(&[("Transfer-Encoding", "gzip"), ("Content-Length", "x")], 10, true), Err(501));
    }

    #[test]
    fn forbidden_trailers() {
        for name in ["Content-Length", "transfer-encoding", "HOST", "Trailer", "Content-Type", "If-Match"] {
            assert!(forbidden_trailer(name), "{name}");
        }
        for name in ["X-Checksum", "Server-Timing", "Digest", "Content-MD5"] {
            assert!(!forbidden_trailer(name), "{name}");
        }
        assert_eq!(BodyError::forbidden_trailer("Host").status, 400);
    }

    #[test]
    fn limited_reader_allows_exactly_the_limit() {
        let mut reader = LimitedReader::new(&b"0123456789"[..], 10);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 10);
        assert_eq!(reader.consumed(), 10);
    }

    #[test]
    fn limited_reader_fails_with_413_beyond_the_limit() {
        let mut reader = LimitedReader::new(&b"0123456789x"[..], 10);
        let mut out = Vec::new();
        let err = reader.read_to_end(&mut out).unwrap_err();
        assert_eq!(body_error_status(&err), Some(413));
        assert_eq!(out.len(), 10);
        let err = reader.read(&mut [0u8; 4]).unwrap_err();
        assert_eq!(body_error_status(&err), Some(413), "the failure repeats");
    }

    #[test]
    fn limited_reader_unlimited_and_plain_errors() {
        let mut reader = LimitedReader::new(&[7u8; 5000][..], 0);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 5000);
        assert_eq!(reader.into_inner().len(), 0);
        assert_eq!(body_error_status(&io::Error::other("client gone")), None);
        assert_eq!(body_error_status(&io::Error::from(io::ErrorKind::BrokenPipe)), None);
    }

    #[test]
    fn input_buffer_reads_sizes_and_lines_over_short_reads() {
        let mut body = &b"one\ntwo\nthree"[..];
        // The body arrives two bytes at a time.
        let mut read = |buf: &mut [u8]| {
            let n = buf.len().min(2);
            body.read(&mut buf[..n])
        };
        let mut input = InputBuffer::new();
        assert_eq!(input.read_line(usize::MAX, &mut read).unwrap(), b"one\n");
        assert_eq!(input.read_line(2, &mut read).unwrap(), b"tw");
        assert_eq!(input.read(3, &mut read).unwrap(), b"o\nt");
        assert!(!input.is_done());
        assert_eq!(input.read_line(usize::MAX, &mut read).unwrap(), b"hree");
        assert!(input.is_done());
        assert_eq!(input.read_line(usize::MAX, &mut read).unwrap(), b"");
        assert_eq!(input.read(usize::MAX, &mut read).unwrap(), b"");
        assert_eq!(input.read_direct(&mut [0u8; 4], &mut read).unwrap(), 0);
    }
}
