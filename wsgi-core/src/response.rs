//! The response side: the sink a front end implements, and the writer that
//! enforces PEP 3333's and mod_wsgi's rules on top of it, so that no front
//! end or interpreter has to.

use std::fs::File;
use std::io;

/// Where a response goes: implemented by each front end.
///
/// Calls arrive in order: one `send_head`, then any number of `send_body`
/// and `send_file`. An error means the client is gone.
pub trait ResponseSink {
    /// Sends the status line and headers.
    fn send_head(&mut self, status: u16, reason: &str, headers: &[(String, String)]) -> io::Result<()>;

    /// Sends a chunk of the body.
    fn send_body(&mut self, chunk: &[u8]) -> io::Result<()>;

    /// Sends `len` bytes of `file` from `offset`: the zero-copy path
    /// (`sendfile`, an Apache file bucket). The default reads and sends
    /// ([`read_and_send`]).
    fn send_file(&mut self, file: &File, offset: u64, len: u64) -> io::Result<u64> {
        read_and_send(self, file, offset, len)
    }

    /// Pushes buffered output to the client.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// The response is complete: nothing follows. A sink that buffers may
    /// send head and body in one piece.
    fn finish(&mut self) -> io::Result<()> {
        self.flush()
    }

    /// Whether the client is known to be gone. Checked even when output is
    /// discarded (HEAD, beyond Content-Length), so that an endless
    /// generator stops when its client leaves.
    fn is_closed(&self) -> bool {
        false
    }

    /// Takes a complete error response for `status` in place of the
    /// writer's own page: a front end with error pages of its own (Apache's
    /// `ErrorDocument`) answers `Ok(true)` and produces it later. The
    /// default declines.
    fn error_response(&mut self, status: u16) -> io::Result<bool> {
        let _ = status;
        Ok(false)
    }

    /// Whether sending `len` more bytes may block (on a slow client). An
    /// interpreter releases its lock around writes that may; a sink that
    /// only queues into memory says no, sparing that cost per chunk.
    fn may_block(&self, len: usize) -> bool {
        let _ = len;
        true
    }

    /// How long a write may wait for a client that does not read, for the
    /// rest of this response (a daemon group's `response-socket-timeout`).
    /// The default keeps the sink's own.
    fn set_write_timeout(&mut self, timeout: std::time::Duration) {
        let _ = timeout;
    }
}

/// Sends `len` bytes of `file` from `offset` through `sink` by reading
/// them (up to 64 KiB at a time) and sending each piece as body: the
/// copying path, for sinks without a zero-copy one; the bytes sent.
pub fn read_and_send<S: ResponseSink + ?Sized>(sink: &mut S, file: &File, offset: u64, len: u64) -> io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 64 * 1024];
    let mut sent = 0u64;
    while sent < len {
        let want = usize::try_from((len - sent).min(buf.len() as u64)).unwrap_or(buf.len());
        let n = file.read_at(&mut buf[..want], offset + sent)?;
        if n == 0 {
            break;
        }
        sink.send_body(&buf[..n])?;
        sent += n as u64;
    }
    Ok(sent)
}

/// Why `start_response()` refused its arguments. The interpreter raises the
/// matching Python exception (or, for [`StartResponseError::HeadersSent`],
/// re-raises the `exc_info` it was given).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartResponseError {
    /// A second call without `exc_info`.
    #[error("start_response() was already called; call it again only with exc_info")]
    AlreadyCalled,
    /// A call with `exc_info` after the head went out: re-raise `exc_info`.
    #[error("response headers have already been sent")]
    HeadersSent,
    /// The status is not `NNN reason`, or has control characters.
    #[error("invalid status line {0:?}: expected 'NNN reason' without control characters")]
    InvalidStatus(String),
    /// A header name or value that must never be emitted.
    #[error("invalid response header {name:?}: {reason}")]
    InvalidHeader {
        /// The header name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Why body output failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Body data before `start_response()`.
    #[error("write() or body data before start_response() was called")]
    NotStarted,
    /// The client went away.
    #[error("client connection lost: {0}")]
    Client(#[from] io::Error),
    /// The response was already complete (a HEAD response, or all of the
    /// declared Content-Length sent) and its client has gone: nothing more
    /// will be sent, but nothing failed either. An iterable stops; the
    /// `write()` callable returns normally, as mod_wsgi's does when Apache
    /// discards what it is given.
    #[error("the response is complete and its client has gone")]
    Complete,
}

/// What happened to a response, for logging and connection handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseSummary {
    /// The status sent (or to be sent).
    pub status: u16,
    /// Body bytes sent (after truncation; 0 for HEAD).
    pub body_bytes: u64,
    /// The Content-Length the application declared, if any.
    pub declared_length: Option<u64>,
}

impl ResponseSummary {
    /// Whether fewer bytes were produced than Content-Length promised; the
    /// connection then cannot be reused.
    pub fn is_short(&self, head_only: bool) -> bool {
        !head_only && self.declared_length.is_some_and(|declared| self.body_bytes < declared)
    }
}

enum State {
    NotStarted,
    Pending { status: u16, reason: String, headers: Vec<(String, String)> },
    Sent,
}

/// Enforces the response rules between an application and a sink:
///
/// - `start_response()` validates the status (`NNN reason`) and headers (no
///   CR, LF or other controls; names are tokens) before anything is sent;
///   a second call needs `exc_info` and fails once the head is out;
/// - the head goes out with the first body chunk of any length (an empty
///   one included, as mod_wsgi sets the status and headers on the first
///   chunk it is given), or at the end when there is none; nothing reaches
///   the sink before the head, so a front end never commits to a default
///   one;
/// - output beyond the declared Content-Length is dropped, and a short body
///   is reported by [`ResponseWriter::finish`];
/// - a HEAD response's body is discarded, and so is a 204's or 304's.
pub struct ResponseWriter<'s> {
    sink: &'s mut dyn ResponseSink,
    head_only: bool,
    failure_status: u16,
    state: State,
    status: u16,
    declared_length: Option<u64>,
    body_bytes: u64,
    /// The sink holds output (the head, body) not yet flushed.
    unflushed: bool,
}

impl<'s> ResponseWriter<'s> {
    /// A writer over `sink`; `head_only` for a HEAD request.
    pub fn new(sink: &'s mut dyn ResponseSink, head_only: bool) -> Self {
        ResponseWriter {
            sink,
            head_only,
            failure_status: 500,
            state: State::NotStarted,
            status: 0,
            declared_length: None,
            body_bytes: 0,
            unflushed: false,
        }
    }

    /// Whether writing `len` bytes (and a pending head) may block.
    pub fn may_block(&self, len: usize) -> bool {
        self.sink.may_block(len)
    }

    /// See [`ResponseSink::set_write_timeout`].
    pub fn set_write_timeout(&mut self, timeout: std::time::Duration) {
        self.sink.set_write_timeout(timeout);
    }

    /// Whether this is the response to a HEAD request (body discarded).
    pub fn head_only(&self) -> bool {
        self.head_only
    }

    /// Whether the body is discarded: a HEAD response, or a status that
    /// has none (204, 304), whose body HTTP forbids and Apache drops.
    pub fn discards_body(&self) -> bool {
        self.head_only || matches!(self.status, 204 | 304)
    }

    /// Whether `start_response()` has been called successfully.
    pub fn started(&self) -> bool {
        !matches!(self.state, State::NotStarted)
    }

    /// Whether the head has gone to the client.
    pub fn head_sent(&self) -> bool {
        matches!(self.state, State::Sent)
    }

    /// Body bytes the declared Content-Length still allows (`None`: no limit).
    pub fn remaining(&self) -> Option<u64> {
        self.declared_length.map(|declared| declared.saturating_sub(self.body_bytes))
    }

    /// The WSGI `start_response(status, headers, exc_info)` rules.
    pub fn start_response(
        &mut self,
        status: &str,
        headers: Vec<(String, String)>,
        with_exc_info: bool,
    ) -> Result<(), StartResponseError> {
        match self.state {
            State::Sent if with_exc_info => return Err(StartResponseError::HeadersSent),
            State::Sent | State::Pending { .. } if !with_exc_info => return Err(StartResponseError::AlreadyCalled),
            _ => {}
        }
        let (code, reason) = parse_status(status)?;
        let mut declared_length = None;
        for (name, value) in &headers {
            validate_header(name, value)?;
            if name.eq_ignore_ascii_case("content-length") {
                let length = value.trim().parse::<u64>().map_err(|_| StartResponseError::InvalidHeader {
                    name: name.clone(),
                    reason: "Content-Length is not a whole number",
                })?;
                declared_length = Some(length);
            }
        }
        self.status = code;
        self.declared_length = declared_length;
        self.state = State::Pending { status: code, reason: reason.to_string(), headers };
        Ok(())
    }

    fn send_pending_head(&mut self) -> Result<(), WriteError> {
        match std::mem::replace(&mut self.state, State::Sent) {
            State::NotStarted => {
                self.state = State::NotStarted;
                Err(WriteError::NotStarted)
            }
            State::Pending { status, reason, headers } => {
                self.unflushed = true;
                self.sink.send_head(status, &reason, &headers)?;
                Ok(())
            }
            State::Sent => Ok(()),
        }
    }

    /// Writes body bytes (the `write()` callable and the iterable's items).
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), WriteError> {
        if !self.started() {
            return Err(WriteError::NotStarted);
        }
        self.send_pending_head()?;
        if chunk.is_empty() {
            return Ok(());
        }
        let allowed =
            self.remaining().map_or(chunk.len(), |r| chunk.len().min(usize::try_from(r).unwrap_or(usize::MAX)));
        if allowed == 0 || self.discards_body() {
            // Discarded output still notices a client that left, so that an
            // endless generator stops.
            if self.sink.is_closed() {
                return Err(WriteError::Complete);
            }
            return Ok(());
        }
        self.unflushed = true;
        self.sink.send_body(&chunk[..allowed])?;
        self.body_bytes += allowed as u64;
        Ok(())
    }

    /// Sends `len` bytes of `file` from `offset` through the sink's zero-copy
    /// path (`len` `None`: to the end of the file), bounded by Content-Length.
    pub fn send_file(&mut self, file: &File, offset: u64, len: Option<u64>) -> Result<u64, WriteError> {
        if !self.started() {
            return Err(WriteError::NotStarted);
        }
        let size = file.metadata()?.len();
        let mut len = len.unwrap_or(u64::MAX).min(size.saturating_sub(offset));
        if let Some(remaining) = self.remaining() {
            len = len.min(remaining);
        }
        self.send_pending_head()?;
        if len == 0 || self.discards_body() {
            return Ok(0);
        }
        self.unflushed = true;
        let sent = self.sink.send_file(file, offset, len)?;
        self.body_bytes += sent;
        Ok(sent)
    }

    /// Flushes the sink, sending a pending head first. Before
    /// `start_response()` there is nothing to push: the sink is left alone,
    /// since a front end that flushed then would send a head of its own.
    /// Nor is it flushed when everything it was given has been pushed
    /// already (output discarded for HEAD, 204, 304 or beyond
    /// Content-Length gives it nothing): the client of a complete response
    /// may already have gone.
    pub fn flush(&mut self) -> Result<(), WriteError> {
        if !self.started() || (self.head_sent() && !self.unflushed) {
            return Ok(());
        }
        self.send_pending_head()?;
        self.unflushed = false;
        Ok(self.sink.flush()?)
    }

    /// Ends a response whose application returned normally: sends a head
    /// still pending (an empty body), and reports what was sent.
    pub fn finish(&mut self) -> Result<ResponseSummary, WriteError> {
        self.send_pending_head()?;
        self.sink.finish()?;
        Ok(self.summary())
    }

    /// What has been sent so far.
    pub fn summary(&self) -> ResponseSummary {
        ResponseSummary { status: self.status, body_bytes: self.body_bytes, declared_length: self.declared_length }
    }

    /// Makes a later [`ResponseWriter::fail`] answer `status` instead of 500:
    /// the request, not the application, was at fault (a malformed or
    /// oversized body that the application tripped over while reading).
    pub fn set_failure_status(&mut self, status: u16) {
        self.failure_status = status;
    }

    /// Ends a response whose application failed: an error page (500 unless
    /// [`ResponseWriter::set_failure_status`] said otherwise) when the head
    /// has not gone out (`Ok(true)`); otherwise nothing can be sent and the
    /// connection must be closed (`Ok(false)`).
    pub fn fail(&mut self) -> Result<bool, WriteError> {
        if self.head_sent() {
            return Ok(false);
        }
        self.state = State::Sent;
        self.respond_error(self.failure_status)?;
        Ok(true)
    }

    /// Sends a complete error response (Apache's page for `status`) in
    /// place of anything an application would produce: for requests refused
    /// before any application runs (404, 413, ...).
    pub fn respond_error(&mut self, status: u16) -> Result<(), WriteError> {
        if self.sink.error_response(status)? {
            self.state = State::Sent;
            self.status = status;
            return Ok(());
        }
        let page = error_page(status);
        let headers = vec![
            ("Content-Type".to_string(), "text/html; charset=iso-8859-1".to_string()),
            ("Content-Length".to_string(), page.len().to_string()),
        ];
        self.state = State::Sent;
        self.status = status;
        self.declared_length = Some(page.len() as u64);
        self.sink.send_head(status, reason_phrase(status), &headers)?;
        if !self.head_only {
            self.sink.send_body(page.as_bytes())?;
            self.body_bytes = page.len() as u64;
        }
        self.sink.finish()?;
        Ok(())
    }
}

/// Whether Apache's HTTP header filter leaves header `name` (with `value`)
/// out of a response with `status` (`head_only` for a HEAD request), so
/// that a front end without Apache sends what Apache would:
///
/// - a 204 or 304 response has no content headers: no Content-Type,
///   Content-Length or Transfer-Encoding;
/// - a HEAD response does not announce `Content-Length: 0`, which a
///   handler that skipped its body for HEAD would otherwise have Apache
///   compute;
/// - `Date` and `Server` are the server's own, never the application's.
pub fn apache_omits_header(status: u16, head_only: bool, name: &str, value: &str) -> bool {
    let is = |other: &str| name.eq_ignore_ascii_case(other);
    if is("date") || is("server") {
        return true;
    }
    if matches!(status, 204 | 304) && (is("content-type") || is("content-length") || is("transfer-encoding")) {
        return true;
    }
    head_only && is("content-length") && value.trim() == "0"
}

/// The reason phrase of the statuses a server produces itself.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

/// The doctype Apache 2.4 opens its error pages with (a macro, so that the
/// 500 page's constant can be built from it with `concat!`).
macro_rules! error_page_doctype {
    () => {
        "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01//EN\" \"http://www.w3.org/TR/html4/strict.dtd\">"
    };
}

/// The doctype Apache 2.4 opens its error pages with.
const ERROR_PAGE_DOCTYPE: &str = error_page_doctype!();

/// An HTML error page as Apache 2.4 writes its own (no `ServerSignature`,
/// no `ServerAdmin`).
pub fn error_page(status: u16) -> String {
    if status == 500 {
        return INTERNAL_SERVER_ERROR_BODY.to_string();
    }
    let reason = reason_phrase(status);
    let detail = match status {
        400 => "Your browser sent a request that this server could not understand.<br />\n",
        401 => "This server could not verify that you\nare authorized to access the document\nrequested.  Either you supplied the wrong\ncredentials (e.g., bad password), or your\nbrowser doesn't understand how to supply\nthe credentials required.",
        403 => "You don't have permission to access this resource.",
        404 => "The requested URL was not found on this server.",
        410 => "The requested resource is no longer available on this server and there is no forwarding address.\nPlease remove all references to this resource.",
        411 => "A request of the requested method requires a valid Content-length.<br />\n",
        413 => "The requested resource does not allow request data with this method, or the amount of data provided in the request exceeds the capacity limit.",
        414 => "The requested URL's length exceeds the capacity\nlimit for this server.<br />\n",
        501 => "The requested method or transfer encoding is not supported by this server.<br />\n",
        503 => "The server is temporarily unable to service your\nrequest due to maintenance downtime or capacity\nproblems. Please try again later.",
        504 => "The gateway did not receive a timely response\nfrom the upstream server or application.",
        _ => "The server could not complete your request.",
    };
    format!(
        "{ERROR_PAGE_DOCTYPE}\n<html><head>\n<title>{status} {reason}</title>\n</head><body>\n<h1>{reason}</h1>\n<p>{detail}</p>\n</body></html>\n"
    )
}

/// The page Apache sends with a redirect to `location`.
pub fn redirect_page(status: u16, location: &str) -> String {
    let reason = reason_phrase(status);
    let location = location.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    let detail = match status {
        303 => format!("The answer to your request is located <a href=\"{location}\">here</a>."),
        _ => format!("The document has moved <a href=\"{location}\">here</a>."),
    };
    format!(
        "{ERROR_PAGE_DOCTYPE}\n<html><head>\n<title>{status} {reason}</title>\n</head><body>\n<h1>{reason}</h1>\n<p>{detail}</p>\n</body></html>\n"
    )
}

/// The body of a 500 response, in the words of Apache 2.4's own page
/// (without a `ServerAdmin`).
pub const INTERNAL_SERVER_ERROR_BODY: &str = concat!(
    error_page_doctype!(),
    "\n<html><head>\n<title>500 Internal Server Error</title>\n</head><body>\n\
<h1>Internal Server Error</h1>\n<p>The server encountered an internal error or\n\
misconfiguration and was unable to complete\nyour request.</p>\n\
<p>Please contact the server administrator at \n [no address given] to inform them of the time \
this error occurred,\n and the actions you performed just before this error.</p>\n\
<p>More information about this error may be available\nin the server error log.</p>\n</body></html>\n"
);

/// Parses a WSGI status: three digits, a space, a reason without controls.
pub fn parse_status(status: &str) -> Result<(u16, &str), StartResponseError> {
    let invalid = || StartResponseError::InvalidStatus(status.to_string());
    let bytes = status.as_bytes();
    if bytes.len() < 5 || !bytes[..3].iter().all(u8::is_ascii_digit) || bytes[3] != b' ' {
        return Err(invalid());
    }
    let reason = &status[4..];
    if reason.trim().is_empty() || reason.chars().any(char::is_control) {
        return Err(invalid());
    }
    let code: u16 = status[..3].parse().map_err(|_| invalid())?;
    // 1xx are interim responses of the server's, not an application's final
    // answer.
    if code < 200 {
        return Err(invalid());
    }
    Ok((code, reason))
}

/// Checks a response header: the name a token (RFC 9110), the value free
/// of control characters other than horizontal tab.
pub fn validate_header(name: &str, value: &str) -> Result<(), StartResponseError> {
    let invalid = |reason| StartResponseError::InvalidHeader { name: name.to_string(), reason };
    if name.is_empty() {
        return Err(invalid("empty header name"));
    }
    if !name.bytes().all(is_token_byte) {
        return Err(invalid("header name has characters other than letters, digits and !#$%&'*+-.^_`|~"));
    }
    if value.chars().any(|c| (c.is_control() && c != '\t') || c == '\u{7f}') {
        return Err(invalid("header value has a control character (CR, LF, NUL, ...)"));
    }
    Ok(())
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::RecordingSink as Recorder;

    fn h(name: &str, value: &str) -> (String, String) {
        (name.to_string(), value.to_string())
    }

    /// Every call a sink receives, in order.
    #[derive(Default)]
    struct CallLog(Vec<String>);

    impl ResponseSink for CallLog {
        fn send_head(&mut self, status: u16, _: &str, headers: &[(String, String)]) -> io::Result<()> {
            self.0.push(format!("head {status} {}", headers.len()));
            Ok(())
        }
        fn send_body(&mut self, chunk: &[u8]) -> io::Result<()> {
            self.0.push(format!("body {}", String::from_utf8_lossy(chunk)));
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            self.0.push("flush".to_string());
            Ok(())
        }
        fn finish(&mut self) -> io::Result<()> {
            self.0.push("finish".to_string());
            Ok(())
        }
    }

    #[test]
    fn head_goes_out_with_the_first_chunk_even_an_empty_one() {
        let mut log = CallLog::default();
        let mut w = ResponseWriter::new(&mut log, false);
        w.start_response("302 Found", vec![h("Location", "/login/")], false).unwrap();
        w.write(b"").unwrap();
        assert!(w.head_sent());
        w.write(b"").unwrap();
        w.write(b"hello").unwrap();
        w.finish().unwrap();
        assert_eq!(log.0, ["head 302 1", "body hello", "finish"]);
    }

    #[test]
    fn nothing_reaches_the_sink_before_the_head() {
        // A flush before start_response() pushes nothing; one after it
        // sends the pending head first, so no front end ever flushes a
        // default head of its own (Apache's 200 with the script's type).
        let mut log = CallLog::default();
        let mut w = ResponseWriter::new(&mut log, false);
        w.flush().unwrap();
        w.start_response("302 Found", vec![h("Location", "/")], false).unwrap();
        w.flush().unwrap();
        w.write(b"").unwrap();
        w.finish().unwrap();
        assert_eq!(log.0, ["head 302 1", "flush", "finish"]);
    }

    #[test]
    fn no_content_and_not_modified_have_no_body() {
        for status in ["204 No Content", "304 Not Modified"] {
            let mut log = CallLog::default();
            let mut w = ResponseWriter::new(&mut log, false);
            w.start_response(status, vec![], false).unwrap();
            w.write(b"dropped").unwrap();
            w.flush().unwrap();
            w.write(b"dropped too").unwrap();
            w.flush().unwrap();
            let summary = w.finish().unwrap();
            assert_eq!(summary.body_bytes, 0);
            // The head is pushed once; the body never reaches the sink.
            assert_eq!(log.0[1..], ["flush", "finish"], "{status}");
        }
    }

    #[test]
    fn a_complete_response_has_nothing_to_flush() {
        // HEAD: the first flush pushes the head, later ones nothing.
        let mut log = CallLog::default();
        let mut w = ResponseWriter::new(&mut log, true);
        w.start_response("200 OK", vec![], false).unwrap();
        w.flush().unwrap();
        w.write(b"discarded").unwrap();
        w.flush().unwrap();
        assert_eq!(log.0, ["head 200 0", "flush"]);
        // All of Content-Length sent: the last chunk is pushed, output
        // beyond it pushes nothing.
        let mut log = CallLog::default();
        let mut w = ResponseWriter::new(&mut log, false);
        w.start_response("200 OK", vec![h("Content-Length", "2")], false).unwrap();
        w.write(b"ok").unwrap();
        w.flush().unwrap();
        w.write(b"beyond").unwrap();
        w.flush().unwrap();
        assert_eq!(log.0, ["head 200 1", "body ok", "flush"]);
    }

    #[test]
    fn an_empty_first_chunk_ends_the_exc_info_window() {
        let mut rec = Recorder::default();
        let mut w = ResponseWriter::new(&mut rec, false);
        w.start_response("200 OK", vec![], false).unwrap();
        w.write(b"").unwrap();
        assert_eq!(w.start_response("500 Oops", vec![], true), Err(StartResponseError::HeadersSent));
        assert_eq!(rec.status, 200);
    }

    #[test]
    fn empty_body_sends_the_head_at_finish() {
        let mut rec = Recorder::default();
        let mut w = ResponseWriter::new(&mut rec, false);
        w.start_response("204 No Content", vec![], false).unwrap();
        let summary = w.finish().unwrap();
        assert_eq!(summary.status, 204);
        assert_eq!(rec.status, 204);
    }

    #[test]
    fn second_start_response_needs_exc_info_and_fails_after_head() {
        let mut rec = Recorder::default();
        let mut w = ResponseWriter::new(&mut rec, false);
        w.start_response("200 OK", vec![], false).unwrap();
        assert_eq!(w.start_response("500 Oops", vec![], false), Err(StartResponseError::AlreadyCalled));
        w.start_response("500 Oops", vec![], true).unwrap();
        w.write(b"x").unwrap();
        assert_eq!(w.start_response("502 Later", vec![], true), Err(StartResponseError::HeadersSent));
        assert_eq!(w.start_response("502 Later", vec![], false), Err(StartResponseError::AlreadyCalled));
        assert_eq!(rec.status, 500);
    }

    #[test]
    fn output_beyond_content_length_is_dropped() {
        let mut rec = Recorder::default();
        let mut w = ResponseWriter::new(&mut rec, false);
        w.start_response("200 OK", vec![h("Content-Length", "5")], false).unwrap();
        w.write(b"hel").unwrap();
        w.write(b"lo world").unwrap();
        let summary = w.finish().unwrap();
        assert!(!summary.is_short(false));
        assert_eq!(rec.body, b"hello");
    }

    #[test]
    fn short_body_is_reported() {
        let mut rec = Recorder::default();
        let mut w = ResponseWriter::new(&mut rec, false);
        w.start_response("200 OK", vec![h("content-length", "10")], false).unwrap();
        w.write(b"abc").unwrap();
        let summary = w.finish().unwrap();
        assert!(summary.is_short(false));
        assert_eq!((summary.body_bytes, summary.declared_length), (3, Some(10)));
    }

    #[test]
    fn head_requests_discard_the_body_but_keep_headers() {
        let mut rec = Recorder::default();
        let mut w = ResponseWriter::new(&mut rec, true);
        w.start_response("200 OK", vec![h("Content-Length", "5")], false).unwrap();
        w.write(b"hello").unwrap();
        let summary = w.finish().unwrap();
        assert!(!summary.is_short(true));
        assert!(rec.body.is_empty());
        assert_eq!(rec.headers, vec![h("Content-Length", "5")]);
    }

    #[test]
    fn discarded_output_notices_a_closed_client() {
        struct Closed;
        impl ResponseSink for Closed {
            fn send_head(&mut self, _: u16, _: &str, _: &[(String, String)]) -> io::Result<()> {
                Ok(())
            }
            fn send_body(&mut self, _: &[u8]) -> io::Result<()> {
                Ok(())
            }
            fn is_closed(&self) -> bool {
                true
            }
        }
        let mut sink = Closed;
        let mut w = ResponseWriter::new(&mut sink, true);
        w.start_response("200 OK", vec![], false).unwrap();
        assert!(matches!(w.write(b"tick"), Err(WriteError::Complete)));
    }

    #[test]
    fn write_before_start_response_is_an_error() {
        let mut rec = Recorder::default();
        let mut w = ResponseWriter::new(&mut rec, false);
        assert!(matches!(w.write(b"x"), Err(WriteError::NotStarted)));
        assert!(matches!(w.finish(), Err(WriteError::NotStarted)));
    }

    #[test]
    fn apache_leaves_content_headers_out_of_bodiless_responses() {
        for status in [204, 304] {
            for name in ["Content-Type", "content-length", "Transfer-Encoding"] {
                assert!(apache_omits_header(status, false, name, "5"), "{status} {name}");
            }
            assert!(!apache_omits_header(status, false, "ETag", "\"x\""));
        }
        assert!(!apache_omits_header(200, false, "Content-Type", "text/plain"));
        assert!(!apache_omits_header(200, false, "Content-Length", "0"));
        assert!(apache_omits_header(200, true, "Content-Length", "0"));
        assert!(!apache_omits_header(200, true, "Content-Length", "12"));
        assert!(apache_omits_header(200, false, "Server", "CherryPy/18"));
        assert!(apache_omits_header(200, false, "date", "Thu, 01 Jan 1970 00:00:00 GMT"));
    }

    #[test]
    fn error_pages_are_apaches() {
        assert_eq!(INTERNAL_SERVER_ERROR_BODY.len(), 571, "the length of Apache 2.4's 500 page");
        assert!(INTERNAL_SERVER_ERROR_BODY.starts_with(ERROR_PAGE_DOCTYPE));
        assert_eq!(error_page(404).len(), 236, "the length of Apache 2.4's 404 page");
        assert_eq!(error_page(403).len(), 239, "the length of Apache 2.4's 403 page");
        assert_eq!(error_page(400).len(), 266, "the length of Apache 2.4's 400 page");
    }

    #[test]
    fn statuses() {
        assert_eq!(parse_status("200 OK"), Ok((200, "OK")));
        assert_eq!(parse_status("404 Not Found"), Ok((404, "Not Found")));
        for bad in
            ["200", "200 ", "OK 200", "2000 OK", "20 OK", "200\tOK", "200 OK\r\nX: y", "200 O\u{0}K", "099 Low", ""]
        {
            assert!(parse_status(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn headers() {
        assert!(validate_header("X-Thing", "a\tb c").is_ok());
        for (name, value) in
            [("", "v"), ("Bad Name", "v"), ("X:y", "v"), ("X", "a\r\nSet-Cookie: evil"), ("X", "a\nb"), ("X", "nul\0")]
        {
            assert!(validate_header(name, value).is_err(), "{name:?}: {value:?}");
        }
        let mut rec = Recorder::default();
        let mut w = ResponseWriter::new(&mut rec, false);
        let bad = w.start_response("200 OK", vec![h("X", "a\r\nb")], false);
        assert!(matches!(bad, Err(StartResponseError::InvalidHeader { .. })));
        assert!(!w.started(), "a refused call leaves no state behind");
        assert!(w.start_response("200 OK", vec![h("Content-Length", "ten")], false).is_err());
    }

    #[test]
    fn failure_before_head_sends_500_after_head_closes() {
        let mut rec = Recorder::default();
        let mut w = ResponseWriter::new(&mut rec, false);
        w.start_response("200 OK", vec![], false).unwrap();
        assert!(w.fail().unwrap());
        assert_eq!(rec.status, 500);
        assert_eq!(rec.body, INTERNAL_SERVER_ERROR_BODY.as_bytes());

        let mut rec = Recorder::default();
        let mut w = ResponseWriter::new(&mut rec, false);
        w.start_response("200 OK", vec![], false).unwrap();
        w.write(b"partial").unwrap();
        assert!(!w.fail().unwrap());
        assert_eq!(rec.heads, 1);
    }

    #[test]
    fn send_file_is_bounded_by_content_length_and_file_size() {
        let path = std::env::temp_dir().join(format!("wsgi-core-sendfile-{}", std::process::id()));
        std::fs::write(&path, b"0123456789").unwrap();
        let file = File::open(&path).unwrap();
        let mut rec = Recorder::default();
        let mut w = ResponseWriter::new(&mut rec, false);
        w.start_response("200 OK", vec![h("Content-Length", "4")], false).unwrap();
        assert_eq!(w.send_file(&file, 3, None).unwrap(), 4);
        drop(w);
        assert_eq!(rec.body, b"3456");
        let mut rec = Recorder::default();
        let mut w = ResponseWriter::new(&mut rec, false);
        w.start_response("200 OK", vec![], false).unwrap();
        assert_eq!(w.send_file(&file, 8, Some(100)).unwrap(), 2);
        drop(w);
        assert_eq!(rec.body, b"89");
        std::fs::remove_file(path).unwrap();
    }
}
