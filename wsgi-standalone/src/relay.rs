//! Daemon mode on the I/O thread: a request for a daemon group whose body
//! has already been read is relayed to the group's socket over an
//! asynchronous connection, with no worker thread in between. Each
//! hand-off between threads costs a wake-up, and a worker blocked on the
//! daemon's answer costs two more: measured, that made a relayed request
//! cost the serving process more than running the application itself.
//!
//! A request whose body streams in still goes through a worker and
//! wsgi-daemon's blocking client. Both paths send the same frames, and
//! apply wsgi-daemon's checks of the response (`ResponseFrames`) and its
//! errors and their statuses, so a response is judged the same on either.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use wsgi_core::pipeline::AppRequest;
use wsgi_core::{ErrorLog, LogLevel};
use wsgi_daemon::client::{
    connection_gone, head_timeout, ForwardError, Recovery, Relayed, ResponseFrames, BODY_CHUNK, REUSE_FOR,
};
use wsgi_daemon::protocol::{self, Frame, ProtocolError, RequestStart};
use wsgi_daemon::runner::GroupClient;

use crate::http::ResponseBody;
use crate::logging::ServerLog;
use crate::workers::Head;

/// Chunks a streamed response may run ahead of the client connection.
const CHUNKS_AHEAD: usize = 16;

/// The daemon groups a serving process relays to, by name.
#[derive(Default)]
pub struct DaemonGroups {
    groups: HashMap<String, Arc<Group>>,
}

impl DaemonGroups {
    /// The groups of `clients`, by name.
    pub fn new(clients: HashMap<String, GroupClient>) -> DaemonGroups {
        let groups = clients
            .into_iter()
            .map(|(name, client)| {
                let group = Group { name: name.clone(), client, idle: Mutex::new(Vec::new()) };
                (name, Arc::new(group))
            })
            .collect();
        DaemonGroups { groups }
    }

    /// The group named `name`, if this process relays to it.
    pub fn get(&self, name: &str) -> Option<&Arc<Group>> {
        self.groups.get(name)
    }
}

/// One daemon group and its kept connections.
pub struct Group {
    name: String,
    client: GroupClient,
    idle: Mutex<Vec<Connection>>,
}

struct Connection {
    stream: UnixStream,
    /// Bytes read and not yet decoded.
    buffer: BytesMut,
    opened: Instant,
}

/// What the client gets.
pub enum Answer {
    /// The daemon's response.
    Response(Head, ResponseBody),
    /// An error status of the front end's own (logged).
    Error(u16),
}

/// Why an attempt on one connection ended without a response head.
enum Attempt {
    Failed(ForwardError),
    /// A kept connection the daemon had closed before it took the
    /// request: send it again on a new one.
    Retry,
}

impl Group {
    /// Relays `app`, whose whole body is `body`, and answers with the
    /// daemon's response, or with the status its failure calls for. The
    /// front end's `--request-timeout`, when not zero, bounds the wait for
    /// the response head.
    pub async fn relay(
        self: &Arc<Self>,
        mut app: AppRequest,
        body: Bytes,
        request_timeout: Duration,
        log: &crate::logging::RequestLog<'_>,
        server_log: &Arc<ServerLog>,
    ) -> Answer {
        if let Err(why) = self.client.script_owner.check(&app.target.script) {
            let line = format!("mod_wsgi (pid={}): {why}: {}", std::process::id(), app.target.script.display());
            log.log(LogLevel::Error, &line);
            return Answer::Error(403);
        }
        app.environ.set_str("mod_wsgi.script_start", wsgi_core::environ_build::now_us().to_string());
        let start = RequestStart::for_group(app.target, app.environ, self.client.flags);
        let began = Instant::now();
        let exchange = self.exchange(&start, &body, began);
        let started = if request_timeout.is_zero() {
            exchange.await
        } else {
            match tokio::time::timeout(request_timeout, exchange).await {
                Ok(started) => started,
                Err(_) => {
                    log.log(
                        LogLevel::Error,
                        &format!(
                            "mod_wsgi: request did not produce a response within the request timeout of {} seconds",
                            request_timeout.as_secs()
                        ),
                    );
                    return Answer::Error(504);
                }
            }
        };
        match started {
            Ok((head, connection, frames)) => self.respond(head, connection, frames, server_log.clone()),
            Err(error) => {
                self.log_error(&error, log);
                match error.recovery() {
                    Recovery::Answer(status) => Answer::Error(status),
                    // Nothing went out, and nobody is left to answer.
                    Recovery::CloseConnection | Recovery::Nothing => Answer::Error(500),
                }
            }
        }
    }

    /// Sends the request and reads up to the response head, on a kept
    /// connection or a new one; a kept one the daemon closed unread is
    /// tried again once, on a new connection.
    async fn exchange(
        &self,
        start: &RequestStart,
        body: &Bytes,
        began: Instant,
    ) -> Result<(Head, Connection, ResponseFrames), ForwardError> {
        let request = encode(start, body).map_err(|e| connection_gone(&e))?;
        for attempt in 0..2 {
            let kept = if attempt == 0 { self.take_idle(start.has_body) } else { None };
            let (connection, reused) = match kept {
                Some(connection) => (connection, true),
                None => (self.connect().await?, false),
            };
            match self.attempt(connection, reused, &request, began).await {
                Ok(started) => return Ok(started),
                Err(Attempt::Retry) => continue,
                Err(Attempt::Failed(error)) => return Err(error),
            }
        }
        Err(ForwardError::Failed { status: 502, message: "daemon connections kept failing".into() })
    }

    async fn attempt(
        &self,
        mut connection: Connection,
        reused: bool,
        request: &[u8],
        began: Instant,
    ) -> Result<(Head, Connection, ResponseFrames), Attempt> {
        let timeout = self.client.client.socket_timeout();
        // As the blocking client: a kept connection is sent again only when
        // the daemon cannot have taken the request (the write failed, or
        // it closed the connection with the request unread, which resets
        // it); a plain end of stream means it read the request and left.
        let written = with_timeout(timeout, connection.stream.write_all(request)).await;
        if let Err(e) = written {
            return Err(if reused { Attempt::Retry } else { Attempt::Failed(connection_gone(&e)) });
        }
        let mut frames = self.client.client.response_frames();
        loop {
            let frame = match next_frame(&mut connection, timeout).await {
                Ok(Some(frame)) => frame,
                Ok(None) => return Err(Attempt::Failed(self.client.client.lost_before_head(began, &"closed"))),
                Err(e) if e.is_timeout() => return Err(Attempt::Failed(head_timeout(&e))),
                Err(e) if reused && e.is_reset() => return Err(Attempt::Retry),
                Err(e) => return Err(Attempt::Failed(self.client.client.lost_before_head(began, &e))),
            };
            match frames.accept(frame).map_err(Attempt::Failed)? {
                Relayed::Head(head) => {
                    let head = Head { status: head.status, reason: head.reason, headers: head.headers, close: false };
                    return Ok((head, connection, frames));
                }
                // Body frames before a head are errors `accept` returned.
                Relayed::Nothing | Relayed::Data(_) | Relayed::End => {}
            }
        }
    }

    /// The response: whole when the daemon's frames up to its end are
    /// already here (one read, the usual small response), else what is
    /// here and the rest streamed by a task of its own.
    fn respond(
        self: &Arc<Self>,
        head: Head,
        mut connection: Connection,
        mut frames: ResponseFrames,
        log: Arc<ServerLog>,
    ) -> Answer {
        let mut body = Vec::new();
        loop {
            let frame = match buffered_frame(&mut connection) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => return self.broken(head, body, &ForwardError::Broken(e.to_string()), &log),
            };
            match frames.accept(frame) {
                Ok(Relayed::Data(data)) => body.push(data),
                Ok(Relayed::End) => {
                    self.keep(connection);
                    let whole = match body.len() {
                        0 => None,
                        1 => body.pop(),
                        _ => Some(Bytes::from(body.concat())),
                    };
                    return Answer::Response(head, ResponseBody::Full(whole));
                }
                Ok(Relayed::Head(_) | Relayed::Nothing) => {}
                Err(error) => return self.broken(head, body, &error, &log),
            }
        }
        let (tx, rx) = mpsc::channel(CHUNKS_AHEAD);
        let group = self.clone();
        tokio::spawn(async move { group.stream_rest(connection, frames, tx, log).await });
        Answer::Response(head, ResponseBody::Channel(body.into(), rx))
    }

    /// Passes the rest of a response on as it arrives.
    async fn stream_rest(
        &self,
        mut connection: Connection,
        mut frames: ResponseFrames,
        tx: mpsc::Sender<io::Result<Bytes>>,
        log: Arc<ServerLog>,
    ) {
        let socket_timeout = self.client.client.socket_timeout();
        let client_timeout = match self.client.response_socket_timeout {
            zero if zero.is_zero() => Duration::from_secs(60),
            timeout => timeout,
        };
        loop {
            let error = match next_frame(&mut connection, socket_timeout).await {
                Ok(Some(frame)) => match frames.accept(frame) {
                    Ok(Relayed::Data(data)) => match tokio::time::timeout(client_timeout, tx.send(Ok(data))).await {
                        Ok(Ok(())) => continue,
                        // The client left or stopped reading: the
                        // connection is dropped mid-response.
                        _ => return,
                    },
                    Ok(Relayed::End) => {
                        self.keep(connection);
                        return;
                    }
                    Ok(Relayed::Head(_) | Relayed::Nothing) => continue,
                    Err(error) => error,
                },
                Ok(None) => ForwardError::Broken("daemon closed the connection".into()),
                Err(e) => ForwardError::Broken(e.to_string()),
            };
            self.log_error(&error, &*log);
            let _ = tx.send(Err(io::Error::other(error.to_string()))).await;
            return;
        }
    }

    /// A response broken after its head: the head goes out with what body
    /// arrived, then the connection breaks, as on the blocking path.
    fn broken(&self, head: Head, body: Vec<Bytes>, error: &ForwardError, log: &Arc<ServerLog>) -> Answer {
        self.log_error(error, &**log);
        let (tx, rx) = mpsc::channel(1);
        let _ = tx.try_send(Err(io::Error::other(error.to_string())));
        Answer::Response(head, ResponseBody::Channel(body.into(), rx))
    }

    fn log_error(&self, error: &ForwardError, log: &dyn ErrorLog) {
        if let Some(line) = error.log_line(&self.name) {
            log.log(LogLevel::Error, &format!("mod_wsgi (pid={}): {line}", std::process::id()));
        }
    }

    /// A kept connection still young enough; one for a request with a
    /// body is checked first (see wsgi-daemon's client).
    fn take_idle(&self, check: bool) -> Option<Connection> {
        loop {
            let connection = self.idle.lock().ok()?.pop()?;
            if connection.opened.elapsed() >= REUSE_FOR {
                continue;
            }
            use std::os::fd::AsRawFd;
            if !check || !wsgi_daemon::sys::peer_closed_or_data(connection.stream.as_raw_fd()) {
                return Some(connection);
            }
        }
    }

    fn keep(&self, connection: Connection) {
        if connection.opened.elapsed() < REUSE_FOR && connection.buffer.is_empty() {
            if let Ok(mut idle) = self.idle.lock() {
                idle.push(connection);
            }
        }
    }

    /// A new connection, with the handshake done, within the connect
    /// timeout.
    async fn connect(&self) -> Result<Connection, ForwardError> {
        let client = &self.client.client;
        let deadline = Instant::now() + client.connect_timeout();
        let stream = loop {
            match UnixStream::connect(client.socket()).await {
                Ok(stream) => break stream,
                Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(25)).await,
                Err(e) => {
                    return Err(ForwardError::Unavailable(format!("{}: {e}", client.socket().display())));
                }
            }
        };
        let mut connection = Connection { stream, buffer: BytesMut::with_capacity(64 * 1024), opened: Instant::now() };
        let mut handshake = Vec::with_capacity(protocol::HANDSHAKE_LEN);
        protocol::write_handshake(&mut handshake).map_err(|e| ForwardError::Unavailable(e.to_string()))?;
        // The daemon answers the handshake when a process accepts: within
        // the connect timeout, or the group is unavailable.
        let remaining = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
        let answered = tokio::time::timeout(remaining, async {
            connection.stream.write_all(&handshake).await?;
            while connection.buffer.len() < protocol::HANDSHAKE_LEN {
                if connection.stream.read_buf(&mut connection.buffer).await? == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed"));
                }
            }
            Ok(())
        })
        .await;
        match answered {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(ForwardError::Unavailable(e.to_string())),
            Err(_) => {
                return Err(ForwardError::Unavailable(format!(
                    "no daemon process accepted the connection within {:?}",
                    client.connect_timeout()
                )))
            }
        }
        let theirs = connection.buffer.split_to(protocol::HANDSHAKE_LEN);
        protocol::read_handshake(&mut &theirs[..])
            .map_err(|e| ForwardError::Failed { status: 500, message: e.to_string() })?;
        Ok(connection)
    }
}

/// The request's frames, as wsgi-daemon's blocking client sends them.
fn encode(start: &RequestStart, body: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    let mut out = Vec::with_capacity(4096 + body.len());
    protocol::write_request_start(&mut out, start)?;
    if start.has_body {
        for piece in body.chunks(BODY_CHUNK) {
            protocol::write_data_chunk(&mut out, piece, true)?;
        }
        protocol::write_frame(&mut out, &Frame::BodyEnd)?;
    }
    Ok(out)
}

/// The next frame, reading as needed, each read within `timeout` (zero:
/// none); `None` at a clean end of stream.
async fn next_frame(connection: &mut Connection, timeout: Duration) -> Result<Option<Frame>, ProtocolError> {
    loop {
        if let Some(frame) = buffered_frame(connection)? {
            return Ok(Some(frame));
        }
        connection.buffer.reserve(64 * 1024);
        let read = with_timeout(timeout, connection.stream.read_buf(&mut connection.buffer)).await?;
        if read == 0 {
            return if connection.buffer.is_empty() { Ok(None) } else { Err(ProtocolError::Truncated("a frame")) };
        }
    }
}

/// The frame whole at the front of the buffer, if there is one; a
/// response chunk's data is taken from the buffer with no copy.
fn buffered_frame(connection: &mut Connection) -> Result<Option<Frame>, ProtocolError> {
    let Some(end) = protocol::whole_frame_len(&connection.buffer)? else { return Ok(None) };
    let chunk = protocol::buffered_response_chunk(&connection.buffer).map(|(data, _)| data);
    let frame = connection.buffer.split_to(end).freeze();
    match chunk {
        Some(data) => Ok(Some(Frame::ResponseChunk(frame.slice(data)))),
        None => protocol::read_frame(&mut &frame[..]),
    }
}

async fn with_timeout<T>(timeout: Duration, io: impl std::future::Future<Output = io::Result<T>>) -> io::Result<T> {
    if timeout.is_zero() {
        return io.await;
    }
    tokio::time::timeout(timeout, io)
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "the daemon socket timed out")))
}
