//! The front end's side: carrying a request to a daemon group's socket and
//! relaying the response, over connections kept for reuse.
//!
//! A group's connections are pooled; a request is retried on a new
//! connection only while nothing of it has been consumed, so a kept
//! connection is checked for liveness first only for a request with a
//! body. A request whose environ announces none
//! (`Environ::announces_body`) is relayed without reading or sending one.
//! Response data already in the reader's buffer is passed on from there,
//! not copied.
//!
//! A connection is kept for [`REUSE_FOR`] after it was opened, no longer:
//! connections stick to the daemon process that accepted them, and new
//! ones are how a process that started since (a replacement, a new
//! generation) gets its share of the requests, the kernel handing each to
//! a process with a free thread.

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use wsgi_core::ResponseSink;

use crate::protocol::{self, Frame, ProtocolError, RequestStart};
use crate::sys;

/// The size of the request body pieces sent to the daemon.
pub const BODY_CHUNK: usize = 32 * 1024;

/// How long after it was opened a connection to a daemon process is kept
/// for another request: four connects and handshakes a second per kept
/// connection, and a replacement process gets requests within a quarter
/// of a second of being ready.
pub const REUSE_FOR: Duration = Duration::from_millis(250);

/// Why a request could not be relayed in full.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// No daemon process answered within the connect timeout: 503.
    #[error("no daemon process of the group is reachable: {0}")]
    Unavailable(String),
    /// The request failed before the response head: answer `status`.
    #[error("the daemon process failed the request ({status}): {message}")]
    Failed {
        /// The status to answer (502 when the daemon went away, 504 for its
        /// timeouts, 500 for a failed application).
        status: u16,
        /// For the error log.
        message: String,
    },
    /// The response broke after its head went out: the client connection
    /// must be closed.
    #[error("the daemon response broke off: {0}")]
    Broken(String),
    /// Writing to the client failed.
    #[error("the client went away: {0}")]
    ClientGone(io::Error),
    /// The daemon's response cannot be passed on (nothing of it went out):
    /// 500, with the reason logged.
    #[error("{0}")]
    BadResponse(String),
}

/// What a front end does about a [`ForwardError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Nothing of the response went out: answer with this error status.
    Answer(u16),
    /// The response broke after its head: close the client connection.
    CloseConnection,
    /// The client is gone: nothing to do.
    Nothing,
}

impl ForwardError {
    /// What the front end does about it.
    pub fn recovery(&self) -> Recovery {
        match self {
            ForwardError::Unavailable(_) => Recovery::Answer(503),
            ForwardError::Failed { status, .. } => Recovery::Answer(*status),
            ForwardError::BadResponse(_) => Recovery::Answer(500),
            ForwardError::Broken(_) => Recovery::CloseConnection,
            ForwardError::ClientGone(_) => Recovery::Nothing,
        }
    }

    /// The error-log line for it (after `mod_wsgi: ` or `mod_wsgi
    /// (pid=N): `), in mod_wsgi's words where it has some; `None` when
    /// there is nothing to log (the daemon logged a failed application's
    /// traceback itself, or the client left).
    pub fn log_line(&self, group: &str) -> Option<String> {
        match self {
            ForwardError::Unavailable(message) => {
                Some(format!("Unable to connect to WSGI daemon process '{group}': {message}"))
            }
            ForwardError::Failed { status: 500, .. } | ForwardError::ClientGone(_) => None,
            ForwardError::Failed { message, .. } => Some(format!("daemon group '{group}': {message}")),
            ForwardError::Broken(message) => Some(format!("response from daemon group '{group}' cut short: {message}")),
            ForwardError::BadResponse(message) => Some(format!("{message} '{group}'")),
        }
    }
}

struct Connection {
    reader: BufReader<UnixStream>,
    writer: BufWriter<UnixStream>,
    opened: Instant,
}

/// Relays requests to one daemon group.
pub struct DaemonClient {
    socket: PathBuf,
    connect_timeout: Duration,
    socket_timeout: Duration,
    /// The longest response header line (`Name: value` and its CRLF) a
    /// daemon may send, plus one: `header-buffer-size=`, else mod_wsgi's
    /// 32768.
    header_buffer_size: usize,
    /// The group's `request-timeout` (zero: none): a daemon connection
    /// lost before the response head, once the request has run this long,
    /// is the process replaced for its time-outs (its own check, or its
    /// manager's liveness check when it could not run one), and answers
    /// 504 rather than 502.
    request_timeout: Duration,
    idle: Mutex<Vec<Connection>>,
}

/// mod_wsgi's header line buffer when `header-buffer-size=` is not given.
const DEFAULT_HEADER_BUFFER: usize = 32768;

impl std::fmt::Debug for DaemonClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonClient").field("socket", &self.socket).finish_non_exhaustive()
    }
}

/// What a send attempt ended with, before any response came back.
enum Attempt {
    Done(Result<(), ForwardError>),
    /// The reused connection was dead before the daemon read anything:
    /// try again on a new one.
    Retry,
}

impl DaemonClient {
    /// A client for the `WSGIDaemonProcess` group `process` listening at
    /// `socket`, with its connect and socket timeouts (no socket timeout
    /// given: 300 s, Apache's default `Timeout`).
    pub fn for_group(socket: PathBuf, process: &wsgi_config::DaemonProcess) -> DaemonClient {
        let socket_timeout =
            if process.socket_timeout.is_zero() { Duration::from_secs(300) } else { process.socket_timeout };
        let mut client = DaemonClient::new(socket, process.connect_timeout, socket_timeout);
        client.request_timeout = process.request_timeout;
        if process.header_buffer_size > 0 {
            client.header_buffer_size = usize::try_from(process.header_buffer_size).unwrap_or(usize::MAX);
        }
        client
    }

    /// A client for the group listening at `socket`.
    pub fn new(socket: PathBuf, connect_timeout: Duration, socket_timeout: Duration) -> DaemonClient {
        DaemonClient {
            socket,
            connect_timeout,
            socket_timeout,
            header_buffer_size: DEFAULT_HEADER_BUFFER,
            request_timeout: Duration::ZERO,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Sends the request (its body streamed from `body` when
    /// [`RequestStart::has_body`] says it has one; `body` is not touched
    /// otherwise) and relays the response to `sink`.
    pub fn forward(
        &self,
        start: &RequestStart,
        body: &mut dyn Read,
        sink: &mut dyn ResponseSink,
    ) -> Result<(), ForwardError> {
        // A request may be retried only while nothing of its body has been
        // consumed, once, and then on a new connection: the kept ones may
        // all belong to a daemon process that is stopping.
        let began = Instant::now();
        for attempt in 0..2 {
            let pooled = if attempt == 0 { self.take_idle(start.has_body) } else { None };
            let (connection, reused) = match pooled {
                Some(connection) => (connection, true),
                None => (self.connect()?, false),
            };
            match self.attempt(connection, reused, began, start, body, sink) {
                Attempt::Done(result) => return result,
                Attempt::Retry => continue,
            }
        }
        Err(ForwardError::Failed { status: 502, message: "daemon connections kept failing".into() })
    }

    /// A kept connection. A daemon that stopped (recycled) closed its idle
    /// connections: a request without a body finds out when it is sent or
    /// when no answer comes, and is retried, but one with a body would
    /// have consumed some of it by then, so for it the connection is
    /// checked first (`check`).
    fn take_idle(&self, check: bool) -> Option<Connection> {
        loop {
            // The lock is held only to pop: many front-end threads share it.
            let connection = self.idle.lock().ok()?.pop()?;
            if connection.opened.elapsed() >= REUSE_FOR {
                continue;
            }
            if !check || !sys::peer_closed_or_data(connection.reader.get_ref().as_raw_fd()) {
                return Some(connection);
            }
        }
    }

    fn connect(&self) -> Result<Connection, ForwardError> {
        let deadline = Instant::now() + self.connect_timeout;
        let stream = loop {
            match UnixStream::connect(&self.socket) {
                Ok(stream) => break stream,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(25));
                }
                Err(e) => return Err(ForwardError::Unavailable(format!("{}: {e}", self.socket.display()))),
            }
        };
        // The daemon answers the handshake when a process accepts: within
        // the connect timeout, or the group is unavailable.
        let remaining = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
        let _ = stream.set_read_timeout(Some(remaining));
        let _ = stream.set_write_timeout(Some(self.connect_timeout.max(Duration::from_millis(100))));
        let write_half = stream.try_clone().map_err(|e| ForwardError::Unavailable(e.to_string()))?;
        let mut connection = Connection {
            opened: Instant::now(),
            reader: BufReader::with_capacity(64 * 1024, stream),
            writer: BufWriter::with_capacity(64 * 1024, write_half),
        };
        protocol::write_handshake(&mut connection.writer)
            .and_then(|()| connection.writer.flush())
            .map_err(|e| ForwardError::Unavailable(e.to_string()))?;
        protocol::read_handshake(&mut connection.reader).map_err(|e| match e {
            ProtocolError::VersionMismatch { .. } | ProtocolError::BadMagic { .. } => {
                ForwardError::Failed { status: 500, message: e.to_string() }
            }
            other => ForwardError::Unavailable(format!(
                "no daemon process accepted the connection within {:?} ({other})",
                self.connect_timeout
            )),
        })?;
        let timeout = (!self.socket_timeout.is_zero()).then_some(self.socket_timeout);
        let _ = connection.reader.get_ref().set_read_timeout(timeout);
        let _ = connection.writer.get_ref().set_write_timeout(timeout);
        Ok(connection)
    }

    fn attempt(
        &self,
        mut connection: Connection,
        reused: bool,
        began: Instant,
        start: &RequestStart,
        body: &mut dyn Read,
        sink: &mut dyn ResponseSink,
    ) -> Attempt {
        // A kept connection the daemon closed (it was stopping) is sent
        // again on a new one only when the daemon cannot have taken the
        // request: the write failed, or the daemon closed the connection
        // with the request unread (a UNIX socket closed with unread data
        // resets its peer). A plain end of stream means it read the
        // request and went away: that request must not run twice.
        let retry_or = |error: ForwardError, consumed: bool, untaken: bool| {
            if reused && !consumed && untaken {
                Attempt::Retry
            } else {
                Attempt::Done(Err(error))
            }
        };
        let gone = |e: &dyn std::fmt::Display| connection_gone(e);
        // Lost while the daemon ran the request (before its head): past
        // the request timeout, the process was replaced for it.
        let lost = |e: &dyn std::fmt::Display| self.lost_before_head(began, e);
        if let Err(e) = protocol::write_request_start(&mut connection.writer, start) {
            return retry_or(gone(&e), false, true);
        }
        let mut consumed = false;
        if start.has_body {
            // On the stack: most requests have no body, and a heap buffer
            // this size per request costs the allocator more than the read.
            let mut buf = [0u8; BODY_CHUNK];
            loop {
                let n = match body.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        // The client's body failed (timeout, limit): the
                        // daemon cannot be left mid-request.
                        return Attempt::Done(Err(ForwardError::Failed {
                            status: wsgi_core::body::body_error_status(&e).unwrap_or(400),
                            message: format!("reading the request body: {e}"),
                        }));
                    }
                };
                if n == 0 {
                    break;
                }
                consumed = true;
                if let Err(e) = protocol::write_data_chunk(&mut connection.writer, &buf[..n], true) {
                    return Attempt::Done(Err(gone(&e)));
                }
            }
            if let Err(e) = protocol::write_frame(&mut connection.writer, &Frame::BodyEnd) {
                return Attempt::Done(Err(gone(&e)));
            }
        }
        if let Err(e) = connection.writer.flush() {
            return retry_or(gone(&e), consumed, true);
        }
        let mut frames = self.response_frames();
        loop {
            let head_sent = frames.head_sent();
            // Response data already in the read buffer goes to the sink
            // from there, with no copy.
            if head_sent {
                if let Some((data, frame_len)) = protocol::buffered_response_chunk(connection.reader.buffer()) {
                    let buffered = connection.reader.buffer();
                    let sent = relay_chunk(sink, &buffered[data], buffered.len() > frame_len);
                    connection.reader.consume(frame_len);
                    if let Err(e) = sent {
                        return Attempt::Done(Err(ForwardError::ClientGone(e)));
                    }
                    continue;
                }
            }
            let frame = match protocol::read_frame_buffered(&mut connection.reader) {
                Ok(Some(frame)) => frame,
                Ok(None) if !head_sent => return Attempt::Done(Err(lost(&"closed"))),
                Ok(None) => return Attempt::Done(Err(ForwardError::Broken("daemon closed the connection".into()))),
                Err(e) if !head_sent && e.is_timeout() => return Attempt::Done(Err(head_timeout(&e))),
                Err(e) if !head_sent => {
                    let untaken = e.is_reset();
                    return retry_or(lost(&e), consumed, untaken);
                }
                Err(e) => return Attempt::Done(Err(ForwardError::Broken(e.to_string()))),
            };
            match frames.accept(frame) {
                Err(error) => return Attempt::Done(Err(error)),
                Ok(Relayed::Nothing) => {}
                Ok(Relayed::Head(head)) => {
                    if let Err(e) = sink.send_head(head.status, &head.reason, &head.headers) {
                        return Attempt::Done(Err(ForwardError::ClientGone(e)));
                    }
                }
                Ok(Relayed::Data(data)) => {
                    if let Err(e) = relay_chunk(sink, &data, !connection.reader.buffer().is_empty()) {
                        return Attempt::Done(Err(ForwardError::ClientGone(e)));
                    }
                }
                Ok(Relayed::End) => {
                    if let Err(e) = sink.finish() {
                        return Attempt::Done(Err(ForwardError::ClientGone(e)));
                    }
                    self.keep(connection.opened, || connection);
                    return Attempt::Done(Ok(()));
                }
            }
        }
    }

    /// Keeps a connection whose exchange ended cleanly for the next
    /// request, while it is younger than [`REUSE_FOR`].
    fn keep(&self, opened: Instant, connection: impl FnOnce() -> Connection) {
        if opened.elapsed() < REUSE_FOR {
            if let Ok(mut idle) = self.idle.lock() {
                idle.push(connection());
            }
        }
    }

    /// The checks of a response's frames, with this group's settings.
    pub fn response_frames(&self) -> ResponseFrames {
        ResponseFrames { header_buffer_size: self.header_buffer_size, head_sent: false }
    }

    /// The group's socket.
    pub fn socket(&self) -> &std::path::Path {
        &self.socket
    }

    /// How long a connection and its handshake may take.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// How long a read or write on a connection may wait (zero: no limit).
    pub fn socket_timeout(&self) -> Duration {
        self.socket_timeout
    }

    /// The error for a connection lost before the response head, for a
    /// request sent at `began`: 504 once it ran past the group's request
    /// timeout (the process was replaced for it), else 502.
    pub fn lost_before_head(&self, began: Instant, why: &dyn std::fmt::Display) -> ForwardError {
        if !self.request_timeout.is_zero() && began.elapsed() >= self.request_timeout {
            ForwardError::Failed {
                status: 504,
                message: format!(
                    "daemon process connection lost after the request ran past the request timeout of {:?}: {why}",
                    self.request_timeout
                ),
            }
        } else {
            connection_gone(why)
        }
    }
}

/// A daemon connection that failed while the request went out: 502.
pub fn connection_gone(why: &dyn std::fmt::Display) -> ForwardError {
    ForwardError::Failed { status: 502, message: format!("daemon process connection lost: {why}") }
}

/// socket-timeout ran out waiting for the response head: the daemon is
/// still at work, so no retry; 504, as mod_wsgi.
pub fn head_timeout(why: &dyn std::fmt::Display) -> ForwardError {
    ForwardError::Failed {
        status: 504,
        message: format!("Timeout when reading response headers from daemon process: {why}"),
    }
}

/// What a response frame means for the front end, once checked.
#[derive(Debug)]
pub enum Relayed {
    /// The response head, fit to go to the client.
    Head(protocol::ResponseStart),
    /// Body bytes.
    Data(bytes::Bytes),
    /// The response is complete; the connection may serve another.
    End,
    /// Nothing for the client (a ping or a pong).
    Nothing,
}

/// The checks every response from a daemon process passes before any of
/// it reaches the client, frame by frame, whatever reads the frames: one
/// head, valid and within `header-buffer-size=`, before any body; an
/// error frame's status. A daemon process runs the application's code,
/// possibly as another user, and must not be able to put a CR or LF into
/// the front end's response head.
#[derive(Debug)]
pub struct ResponseFrames {
    header_buffer_size: usize,
    head_sent: bool,
}

impl ResponseFrames {
    /// Whether the head has been accepted.
    pub fn head_sent(&self) -> bool {
        self.head_sent
    }

    /// Checks the next frame of the response.
    pub fn accept(&mut self, frame: Frame) -> Result<Relayed, ForwardError> {
        match frame {
            Frame::ResponseStart(_) if self.head_sent => Err(ForwardError::Broken("a second response head".into())),
            Frame::ResponseStart(head) => {
                // As mod_wsgi reads each header line into its buffer.
                let too_long =
                    |(name, value): &(String, String)| name.len() + value.len() + 4 > self.header_buffer_size - 1;
                if head.headers.iter().any(too_long) {
                    return Err(ForwardError::BadResponse(
                        "Truncated or oversized response headers received from daemon process".into(),
                    ));
                }
                // The daemon's response writer checked them, but what
                // reaches the client is checked here too.
                if let Err(reason) = check_head(&head) {
                    return Err(ForwardError::BadResponse(format!(
                        "Malformed response headers ({reason}) received from daemon process"
                    )));
                }
                self.head_sent = true;
                Ok(Relayed::Head(head))
            }
            // Nothing of the response went out: the front end answers
            // with an error of its own.
            Frame::ResponseChunk(_) | Frame::ResponseEnd if !self.head_sent => {
                Err(ForwardError::BadResponse("Response without headers received from daemon process".into()))
            }
            Frame::ResponseChunk(data) => Ok(Relayed::Data(data)),
            Frame::ResponseEnd => Ok(Relayed::End),
            Frame::Error(message) => {
                // The daemon names an error status; anything else is 500.
                let status = message
                    .get(..3)
                    .and_then(|s| s.parse().ok())
                    .filter(|status| (400..=599).contains(status))
                    .unwrap_or(500);
                Err(if self.head_sent {
                    ForwardError::Broken(message)
                } else {
                    ForwardError::Failed { status, message }
                })
            }
            Frame::Pong | Frame::Ping => Ok(Relayed::Nothing),
            other if !self.head_sent => Err(ForwardError::BadResponse(format!(
                "Unexpected {} frame received from daemon process",
                other.kind()
            ))),
            other => Err(ForwardError::Broken(format!("unexpected {} frame", other.kind()))),
        }
    }
}

/// Whether a response head from a daemon process may go to the client: a
/// three-digit status, and a reason and headers that
/// [`wsgi_core::response::validate_header`] accepts (no CR, LF or other
/// control character; header names are tokens).
fn check_head(head: &protocol::ResponseStart) -> Result<(), String> {
    if !(100..=999).contains(&head.status) {
        return Err(format!("status {}", head.status));
    }
    if head.reason.chars().any(char::is_control) {
        return Err("a control character in the reason phrase".into());
    }
    for (name, value) in &head.headers {
        wsgi_core::response::validate_header(name, value).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Passes response data on to the client, flushing only when nothing more
/// of the response has arrived yet (`more`): a response that came whole
/// goes out whole, with its length.
fn relay_chunk(sink: &mut dyn ResponseSink, data: &[u8], more: bool) -> io::Result<()> {
    sink.send_body(data)?;
    if more {
        Ok(())
    } else {
        sink.flush()
    }
}
