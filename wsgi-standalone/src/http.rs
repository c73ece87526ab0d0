//! HTTP/1.1 and HTTP/2 over hyper, in clear or over TLS: connections, the
//! hand-off of requests to the worker pool, static files, and graceful
//! shutdown.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{mpsc, oneshot};
use wsgi_config::values::IpSubnet;
use wsgi_config::ConnectionSettings;
use wsgi_core::app::SslLookup;
use wsgi_core::body::BodyKind;
use wsgi_core::environ_build::{new_request_id, now_us, RequestStats};
use wsgi_core::pipeline::{content_type, Dispatch, Site};
use wsgi_core::proxy_protocol;
use wsgi_core::response::error_page;
use wsgi_core::{LogLevel, RequestHead, Scheme};
use wsgi_daemon::control::ControlPipe;

use crate::idle::{IdleStream, InFlight, InFlightGuard};
use crate::listen::ListenSocket;

mod framing;
mod static_files;
use crate::logging::ServerLog;
use crate::tls::TlsSetup;
use crate::tls_vars::{PlainConnection, TlsConnection};
use crate::workers::{BodySource, ClientFacts, Head, Job, Pool, Start};

/// Bodies up to this size are read before the request is queued, so that
/// a slow client never holds a Python thread.
const BUFFERED_BODY_LIMIT: u64 = 256 * 1024;

/// Connection and timeout settings.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Longest time to receive a request's headers.
    pub header_timeout: Duration,
    /// Longest time an application may take to start its response (504).
    pub request_timeout: Duration,
    /// Longest time a request may wait for a worker (504).
    pub queue_timeout: Duration,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub graceful_timeout: Duration,
    /// Largest request head (request line and headers) in bytes (431
    /// beyond); `None`: what the connection's limits allow.
    pub max_head_size: Option<usize>,
    /// `--https-only`: plain HTTP requests are sent to this HTTPS port.
    pub https_redirect: Option<u16>,
    /// `Server` header and `SERVER_SOFTWARE`.
    pub server_software: String,
    /// `--proxy-protocol`: every connection starts with a PROXY header,
    /// over TCP accepted from these proxies only.
    pub proxy_protocol: Option<Vec<IpSubnet>>,
}

/// What every connection shares.
pub struct Shared {
    /// The configuration compiled for serving.
    pub site: Site,
    /// The Python workers.
    pub pool: Pool,
    /// The error log.
    pub log: Arc<ServerLog>,
    /// Settings.
    pub settings: HttpSettings,
    /// What this serving process tells its supervisor: ready, alive,
    /// recycle me (`--maximum-requests`).
    pub supervisor: SupervisorLink,
    /// Set when the server stops: responses then close their connections.
    pub draining: std::sync::atomic::AtomicBool,
    /// The error and access logs of each server.
    pub logs: crate::logging::SiteLogs,
    /// This process's id (for request ids).
    pub pid: u32,
    /// `--health-path`.
    pub health: Health,
    /// The daemon groups requests with a body already read are relayed
    /// to from the I/O thread.
    pub daemon_groups: crate::relay::DaemonGroups,
    /// Small static files kept in memory.
    pub(crate) static_files: static_files::FileCache,
}

/// `--health-path`: a path the front end answers itself, 200 while the
/// process serves and 503 once it is leaving (told with SIGUSR2 by the top
/// process, which stops it after `--drain-delay`, or draining), so that a
/// load balancer stops sending before the listeners close. It is answered
/// before anything else looks at the request (HAProxy's checks send no
/// Host), for any method.
#[derive(Default)]
pub struct Health {
    path: Option<String>,
    /// Set on SIGUSR2.
    leaving: std::sync::atomic::AtomicBool,
}

impl Health {
    /// Health answers at `path`, if any.
    pub fn new(path: Option<String>) -> Health {
        Health { path, ..Default::default() }
    }

    /// The answer to `head` if it asks for the health path; `draining`:
    /// the process is stopping.
    fn answer(&self, head: &RequestHead, draining: bool, software: &str) -> Option<Response<ResponseBody>> {
        let path = self.path.as_deref()?;
        let target = head.raw_uri.split_once('?').map_or(head.raw_uri.as_str(), |(path, _)| path);
        if target != path {
            return None;
        }
        let leaving = draining || self.leaving.load(std::sync::atomic::Ordering::Relaxed);
        let (status, text) = if leaving { (503, "draining\n") } else { (200, "OK\n") };
        let body = (head.method != "HEAD").then(|| Bytes::from_static(text.as_bytes()));
        let mut response = Response::new(ResponseBody::Full(body));
        *response.status_mut() = StatusCode::from_u16(status).expect("a valid status");
        let headers = response.headers_mut();
        headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
        headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(text.len()));
        headers.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
        set_server(headers, software);
        Some(response)
    }
}

/// What a serving process tells its supervisor (the top process):
/// [`wsgi_daemon::control::READY`] when serving, a
/// [`wsgi_daemon::control::HEARTBEAT`] every second while its I/O runtime
/// runs, and [`wsgi_daemon::control::RECYCLE`] once after the maximum
/// number of requests.
pub struct SupervisorLink {
    after: u64,
    control: Option<ControlPipe>,
    asked: std::sync::atomic::AtomicBool,
}

impl SupervisorLink {
    /// Messages to `control` (none without a supervisor), asking for
    /// recycling after `after` requests (0: never).
    pub fn new(after: u64, control: Option<ControlPipe>) -> SupervisorLink {
        SupervisorLink { after, control, asked: std::sync::atomic::AtomicBool::new(false) }
    }

    fn ready(&self) {
        if let Some(control) = &self.control {
            control.say(wsgi_daemon::control::READY);
        }
    }

    /// Sends a heartbeat every [`wsgi_daemon::control::HEARTBEAT_INTERVAL`]
    /// from the I/O runtime, for as long as it runs (draining included):
    /// a process stopped or frozen whole, or whose runtime is stuck, falls
    /// silent, and its supervisor replaces it.
    async fn beat(shared: Arc<Shared>) {
        let Some(control) = &shared.supervisor.control else { return };
        let mut every = tokio::time::interval(wsgi_daemon::control::HEARTBEAT_INTERVAL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            control.say(wsgi_daemon::control::HEARTBEAT);
        }
    }

    fn count(&self, total: u64, log: &ServerLog) {
        if self.after != 0 && total >= self.after && self.request() {
            log.log(
                LogLevel::Info,
                &format!(
                    "process {} reached its maximum requests ({}); asking for its replacement",
                    std::process::id(),
                    self.after
                ),
            );
        }
    }

    /// Heartbeats from a plain thread from now until the process exits,
    /// for its shutdown code, which runs after the I/O runtime has ended
    /// (and under a watchdog of its own): without them the supervisor
    /// would take a long `atexit` handler for a frozen process.
    pub fn keep_beating(shared: Arc<Shared>) {
        if shared.supervisor.control.is_none() {
            return;
        }
        let log = shared.log.clone();
        let beating = std::thread::Builder::new().name("heartbeat".into()).spawn(move || loop {
            std::thread::sleep(wsgi_daemon::control::HEARTBEAT_INTERVAL);
            if let Some(control) = &shared.supervisor.control {
                control.say(wsgi_daemon::control::HEARTBEAT);
            }
        });
        if let Err(e) = beating {
            log.log(LogLevel::Warn, &format!("cannot start the heartbeat thread for the shutdown code: {e}"));
        }
    }

    /// Asks the supervisor, once, for a replacement of this process;
    /// whether this call asked.
    pub fn request(&self) -> bool {
        let Some(control) = &self.control else { return false };
        if self.asked.swap(true, std::sync::atomic::Ordering::Relaxed) {
            return false;
        }
        control.say(wsgi_daemon::control::RECYCLE);
        true
    }
}

/// A response body: either complete, or chunks arriving from a worker.
pub enum ResponseBody {
    /// All of it.
    Full(Option<Bytes>),
    /// Chunks already here, then more from a channel (an error there
    /// breaks the connection).
    Channel(VecDeque<Bytes>, mpsc::Receiver<io::Result<Bytes>>),
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            ResponseBody::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            ResponseBody::Channel(first, rx) => match first.pop_front() {
                Some(chunk) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
                None => rx.poll_recv(cx).map(|chunk| chunk.map(|c| c.map(Frame::data))),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, ResponseBody::Full(None))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self {
            ResponseBody::Full(data) => http_body::SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            ResponseBody::Channel(..) => http_body::SizeHint::default(),
        }
    }
}

/// A connection an acceptor took.
enum Accepted {
    /// Over TCP: the client's address, the listener's TLS setup, and
    /// whether it speaks h2c.
    Tcp(tokio::net::TcpStream, SocketAddr, Option<Arc<TlsSetup>>, bool),
    /// Over a UNIX socket, and whether it speaks h2c.
    Unix(tokio::net::UnixStream, bool),
}

/// What a request over a UNIX socket reports as the client's address
/// (`REMOTE_ADDR`): the client is a process of this machine.
const UNIX_PEER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);
/// What it reports as the server's: port 80 of this machine, as a proxy
/// in front would have addressed it.
const UNIX_LOCAL: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 80);

/// Serves an accepted connection on a task of its own, watched by the
/// graceful shutdown.
fn open_accepted(
    connection: Accepted,
    shared: &Arc<Shared>,
    graceful: &hyper_util::server::graceful::GracefulShutdown,
) {
    let (shared, watcher) = (shared.clone(), graceful.watcher());
    match connection {
        Accepted::Tcp(stream, peer, tls, h2c) => {
            let _ = stream.set_nodelay(true);
            let Ok(local) = stream.local_addr() else { return };
            tokio::spawn(open_tcp(stream, peer, local, tls, h2c, shared, watcher));
        }
        Accepted::Unix(stream, h2c) => {
            tokio::spawn(open_unix(stream, h2c, shared, watcher));
        }
    }
}

/// Serves a TCP connection: its PROXY header first where the listeners
/// expect one, then its TLS handshake where it speaks TLS.
async fn open_tcp(
    mut stream: tokio::net::TcpStream,
    mut peer: SocketAddr,
    local: SocketAddr,
    tls: Option<Arc<TlsSetup>>,
    h2c: bool,
    shared: Arc<Shared>,
    watcher: hyper_util::server::graceful::Watcher,
) {
    if let Some(allowed) = &shared.settings.proxy_protocol {
        if !allowed.iter().any(|subnet| subnet.contains(peer.ip().to_canonical())) {
            shared
                .log
                .log(LogLevel::Warn, &format!("closed a connection from {peer}: not a proxy of --proxy-allow-from"));
            return;
        }
        match proxied_client(&mut stream, &shared, peer).await {
            Some(client) => peer = client,
            None => return,
        }
    }
    let Some(setup) = tls else {
        let wire = if h2c { Wire::Either } else { Wire::Http1 };
        serve_connection(stream, None, wire, peer, local, shared, watcher).await;
        return;
    };
    // A client that never finishes its handshake is as slow as one that
    // never sends its head.
    let acceptor = tokio_rustls::TlsAcceptor::from(setup.config.clone());
    let handshake = tokio::time::timeout(shared.settings.header_timeout, acceptor.accept(stream));
    if let Ok(Ok(stream)) = handshake.await {
        let tls = setup.connection(stream.get_ref().1);
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        let wire = if h2 { Wire::Http2 } else { Wire::Http1 };
        serve_connection(stream, Some(Arc::new(tls)), wire, peer, local, shared, watcher).await;
    }
}

/// Serves a connection over a UNIX socket, after its PROXY header where
/// the listeners expect one (the socket file's permissions say who may
/// connect).
async fn open_unix(
    mut stream: tokio::net::UnixStream,
    h2c: bool,
    shared: Arc<Shared>,
    watcher: hyper_util::server::graceful::Watcher,
) {
    let mut peer = UNIX_PEER;
    if shared.settings.proxy_protocol.is_some() {
        match proxied_client(&mut stream, &shared, peer).await {
            Some(client) => peer = client,
            None => return,
        }
    }
    let wire = if h2c { Wire::Either } else { Wire::Http1 };
    serve_connection(stream, None, wire, peer, UNIX_LOCAL, shared, watcher).await;
}

/// The client a connection's PROXY header names (the connection's own
/// `peer` for the proxy's own connections), read within the header
/// timeout; `None`, logged, when there is no valid header.
async fn proxied_client<S>(stream: &mut S, shared: &Shared, peer: SocketAddr) -> Option<SocketAddr>
where
    S: tokio::io::AsyncRead + Unpin,
{
    match tokio::time::timeout(shared.settings.header_timeout, read_proxy_header(stream)).await {
        Ok(Ok(client)) => Some(client.unwrap_or(peer)),
        Ok(Err(e)) => {
            shared.log.log(LogLevel::Warn, &format!("closed a connection from {peer}: {e}"));
            None
        }
        Err(_) => None,
    }
}

/// Reads a PROXY protocol header, no further than its end: the client's
/// address it names (`None`: the proxy's own connection).
async fn read_proxy_header<S>(stream: &mut S) -> Result<Option<SocketAddr>, String>
where
    S: tokio::io::AsyncRead + Unpin,
{
    use tokio::io::AsyncReadExt;
    let mut received = Vec::with_capacity(64);
    loop {
        match proxy_protocol::parse(&received).map_err(|e| e.to_string())? {
            proxy_protocol::Parsed::Header { addresses, .. } => {
                return Ok(addresses.map(|(client, _)| SocketAddr::new(client.ip().to_canonical(), client.port())));
            }
            proxy_protocol::Parsed::Incomplete(needed) => {
                let start = received.len();
                received.resize(needed, 0);
                stream
                    .read_exact(&mut received[start..])
                    .await
                    .map_err(|e| format!("reading its PROXY header: {e}"))?;
            }
        }
    }
}

/// A listening socket of the I/O runtime, with what its connections
/// need to know of it.
enum Acceptor {
    /// TCP, its TLS setup, and whether it speaks h2c.
    Tcp(tokio::net::TcpListener, Option<Arc<TlsSetup>>, bool),
    /// A UNIX socket, and whether it speaks h2c.
    Unix(tokio::net::UnixListener, bool),
}

impl Acceptor {
    /// The next connection (cancel-safe, as tokio's accept is).
    async fn accept(&self) -> io::Result<Accepted> {
        match self {
            Acceptor::Tcp(socket, tls, h2c) => {
                socket.accept().await.map(|(s, peer)| Accepted::Tcp(s, peer, tls.clone(), *h2c))
            }
            Acceptor::Unix(socket, h2c) => socket.accept().await.map(|(s, _)| Accepted::Unix(s, *h2c)),
        }
    }
}

/// Hands an accepted connection to the serving loop; false when the loop
/// is gone. A failed accept (out of descriptors) is logged and waited
/// out briefly.
async fn pass_on(accepted: io::Result<Accepted>, tx: &mpsc::Sender<Accepted>, log: &ServerLog) -> bool {
    match accepted {
        Ok(connection) => tx.send(connection).await.is_ok(),
        Err(e) => {
            log.log(LogLevel::Warn, &format!("accept failed: {e}"));
            tokio::time::sleep(Duration::from_millis(50)).await;
            true
        }
    }
}

/// Serves `listeners` until SIGTERM or SIGINT, then finishes in-flight
/// requests for up to the graceful timeout.
pub async fn serve(listeners: Vec<Listener>, shared: Arc<Shared>) -> io::Result<()> {
    let (accepted_tx, mut accepted) = mpsc::channel::<Accepted>(64);
    // Told to stop, an acceptor ends between accepts (accepting is
    // cancel-safe), never while it hands a connection on, so that no
    // connection it took is dropped unanswered.
    let (stop_accepting, stop) = tokio::sync::watch::channel(false);
    let mut acceptors = Vec::new();
    for Listener { socket, tls, h2c } in listeners {
        let tls = tls.map(Arc::new);
        let tx = accepted_tx.clone();
        let log = shared.log.clone();
        let socket = match socket {
            ListenSocket::Tcp(socket) => {
                socket.set_nonblocking(true)?;
                Acceptor::Tcp(tokio::net::TcpListener::from_std(socket)?, tls, h2c)
            }
            ListenSocket::Unix(socket) => {
                socket.set_nonblocking(true)?;
                Acceptor::Unix(tokio::net::UnixListener::from_std(socket)?, h2c)
            }
        };
        let mut stop = stop.clone();
        let acceptor = tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    biased;
                    _ = stop.changed() => break,
                    accepted = socket.accept() => accepted,
                };
                if !pass_on(accepted, &tx, &log).await {
                    break;
                }
            }
        });
        acceptors.push(acceptor);
    }
    drop(accepted_tx);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut leaving = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined2())?;
    // SIGHUP is the top process's (it replaces this one); a hangup of the
    // whole process group (a closed terminal) leaves serving processes be.
    let _hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    // Ready once its signals are handled: the supervisor's notices (and
    // its SIGTERM) then reach the handlers, not the default actions.
    shared.supervisor.ready();
    let heartbeat = tokio::spawn(SupervisorLink::beat(shared.clone()));
    loop {
        tokio::select! {
            conn = accepted.recv() => match conn {
                Some(connection) => open_accepted(connection, &shared, &graceful),
                None => break,
            },
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            _ = leaving.recv() => shared.health.leaving.store(true, std::sync::atomic::Ordering::Relaxed),
        }
    }
    shared.log.log(LogLevel::Info, "shutting down: no new connections; finishing requests in flight");
    // Drain rather than cut: closing an idle kept-alive connection races
    // with a client sending its next request on it, which would fail. So
    // each connection is closed after its next response instead, and the
    // ones that stay idle go when their idle timeout expires.
    shared.draining.store(true, std::sync::atomic::Ordering::Relaxed);
    // The connections the acceptors took before they stopped are served
    // (the channel ends when the last acceptor does).
    let _ = stop_accepting.send(true);
    while let Some(connection) = accepted.recv().await {
        open_accepted(connection, &shared, &graceful);
    }
    for acceptor in acceptors {
        let _ = acceptor.await;
    }
    let deadline = tokio::time::Instant::now() + shared.settings.graceful_timeout;
    let config = shared.site.config();
    let keep_alive_timeout = config.connection_settings(&config.main_server).keep_alive_timeout;
    let idle_deadline = tokio::time::Instant::now() + keep_alive_timeout.min(shared.settings.graceful_timeout);
    while graceful.count() > 0 && tokio::time::Instant::now() < idle_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep_until(deadline) => {
            shared.log.log(LogLevel::Warn, "graceful timeout expired with requests still in flight");
        }
    }
    heartbeat.abort();
    Ok(())
}

/// What one connection knows: its server's settings, what its TLS layer
/// negotiated, and how many requests it has served (for
/// `MaxKeepAliveRequests`).
struct Connection {
    settings: ConnectionSettings,
    tls: Option<Arc<TlsConnection>>,
    requests: std::sync::atomic::AtomicU64,
    /// The request whose head had both `Content-Length` and
    /// `Transfer-Encoding`, if any (HTTP/1.1).
    ambiguous: framing::AmbiguousHead,
}

impl Connection {
    fn new(
        settings: ConnectionSettings,
        tls: Option<Arc<TlsConnection>>,
        ambiguous: framing::AmbiguousHead,
    ) -> Connection {
        Connection { settings, tls, requests: std::sync::atomic::AtomicU64::new(0), ambiguous }
    }

    fn scheme(&self) -> Scheme {
        if self.tls.is_some() {
            Scheme::Https
        } else {
            Scheme::Http
        }
    }

    /// Counts a request: the requests the connection carried before it,
    /// and whether the connection may be kept alive after it. As Apache
    /// counts: `MaxKeepAliveRequests N` keeps a connection for N requests
    /// after the first.
    fn count_request(&self) -> (u64, bool) {
        let before = self.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let max = self.settings.max_keep_alive_requests;
        (before, max == 0 || before < max)
    }
}

/// Most header fields hyper parses when `LimitRequestFields` is 0: it
/// needs a bound (an array of this size per request).
const UNLIMITED_FIELDS: usize = 1000;

/// Sets a builder's HTTP/1.1 options (hyper's own builder and
/// hyper-util's auto builder have the same methods, not a common trait);
/// the value is the builder, for more.
macro_rules! http1_options {
    ($builder:expr, $connection:expr, $settings:expr, $limits:expr) => {
        $builder
            .timer(TokioTimer::new())
            .header_read_timeout($settings.header_timeout)
            .keep_alive($connection.keep_alive && !$connection.keep_alive_timeout.is_zero())
            .half_close(true)
            .max_headers($limits.fields)
            .max_buf_size($limits.buffer)
    };
}

/// Sets a builder's HTTP/2 options, as `http1_options` does: the request
/// head bounded as for HTTP/1.1.
macro_rules! http2_options {
    ($builder:expr, $limits:expr) => {
        $builder.timer(TokioTimer::new()).max_header_list_size(u32::try_from($limits.head).unwrap_or(u32::MAX))
    };
}

/// hyper's HTTP/1.1 settings for a connection: keep-alive, half-closed
/// connections answered, and a head large enough for the limits, which
/// [`head_limit_status`] then checks with Apache's statuses.
fn http1_builder(connection: &ConnectionSettings, settings: &HttpSettings) -> hyper::server::conn::http1::Builder {
    let limits = HeadLimits::of(connection, settings);
    let mut builder = hyper::server::conn::http1::Builder::new();
    http1_options!(builder, connection, settings, limits).max_header_size(limits.head.max(1024));
    builder
}

/// What hyper is told of a request head's size, so that the limits are
/// seen and answered as Apache answers them ([`head_limit_status`]).
struct HeadLimits {
    /// Header fields hyper parses: one more than `LimitRequestFields` (at
    /// least the 100 it keeps on the stack), so that exceeding it is seen
    /// here (400); hyper answers 431 to more than that, where a larger
    /// array per request would cost every request.
    fields: usize,
    /// The largest head in bytes (431 beyond).
    head: usize,
    /// hyper's read buffer.
    buffer: usize,
}

impl HeadLimits {
    fn of(connection: &ConnectionSettings, settings: &HttpSettings) -> HeadLimits {
        let fields = match connection.limit_request_fields {
            0 => UNLIMITED_FIELDS,
            n => n as usize,
        };
        let head = settings.max_head_size.unwrap_or_else(|| {
            let line = connection.limit_request_line as usize + 2;
            line.saturating_add(fields.saturating_mul(connection.limit_request_field_size as usize + 2))
                .saturating_add(2)
        });
        HeadLimits {
            fields: (fields + 1).max(HYPER_INLINE_FIELDS),
            head,
            buffer: head.saturating_add(8192).max(HYPER_DEFAULT_BUF_SIZE),
        }
    }
}

/// The fields hyper parses into an array on the stack: fewer cost
/// nothing.
const HYPER_INLINE_FIELDS: usize = 100;

/// hyper's own read-buffer bound, kept as the least.
const HYPER_DEFAULT_BUF_SIZE: usize = 8192 + 4096 * 100;

/// The status Apache answers a request head over its limits with: 414 for
/// the request line, 400 for a field too long or too many fields. As
/// Apache's line reader does, a line may be one byte longer than its limit.
fn head_limit_status(req: &Request<Incoming>, limits: &ConnectionSettings) -> Option<u16> {
    let target = req.uri().path_and_query().map_or_else(|| req.uri().to_string().len(), |pq| pq.as_str().len());
    // METHOD SP target SP HTTP/1.1
    let line = req.method().as_str().len() + 1 + target + 1 + 8;
    if line > limits.limit_request_line as usize + 1 {
        return Some(414);
    }
    let fields = req.headers().len();
    if limits.limit_request_fields != 0 && fields > limits.limit_request_fields as usize {
        return Some(400);
    }
    // `Name: value`, as read.
    let longest = req.headers().iter().map(|(name, value)| name.as_str().len() + 2 + value.len()).max();
    if longest.is_some_and(|size| size > limits.limit_request_field_size as usize + 1) {
        return Some(400);
    }
    None
}

/// A listening socket, and its TLS setup when it speaks TLS.
pub struct Listener {
    /// The socket.
    pub socket: crate::listen::ListenSocket,
    /// How it speaks TLS (`None`: plain HTTP).
    pub tls: Option<TlsSetup>,
    /// Plain HTTP/2 for clients that start with its preface (h2c).
    pub h2c: bool,
}

/// How a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    /// HTTP/1.1.
    Http1,
    /// HTTP/2 (chosen by ALPN).
    Http2,
    /// HTTP/1.1, or HTTP/2 when the client starts with its preface.
    Either,
}

/// Serves HTTP/1.1 on one connection (plain, or TLS once its handshake is
/// done, as `tls` says) until it closes, counted by the graceful
/// shutdown's `watcher`.
async fn serve_connection<S>(
    stream: S,
    tls: Option<Arc<TlsConnection>>,
    wire: Wire,
    peer: SocketAddr,
    local: SocketAddr,
    shared: Arc<Shared>,
    watcher: hyper_util::server::graceful::Watcher,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let config = shared.site.config();
    // Apache reads a request with the settings of the server its address
    // selects, before the Host header is known.
    let settings = config.connection_settings(config.select_server(local, None));
    let in_flight = InFlight::default();
    let ambiguous = framing::AmbiguousHead::default();
    let stream = framing::FramingWatch::new(stream, ambiguous.clone(), wire != Wire::Http2);
    let stream = TokioIo::new(IdleStream::new(stream, settings.keep_alive_timeout, in_flight.clone()));
    let connection = Arc::new(Connection::new(settings, tls, ambiguous));
    let http_settings = shared.settings.clone();
    let service =
        service_fn(move |req| handle(req, shared.clone(), connection.clone(), peer, local, in_flight.enter()));
    match wire {
        Wire::Http1 => {
            let _ = watcher.watch(http1_builder(&settings, &http_settings).serve_connection(stream, service)).await;
        }
        Wire::Http2 => {
            let _ = watcher.watch(http2_builder(&settings, &http_settings).serve_connection(stream, service)).await;
        }
        Wire::Either => {
            let mut builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let limits = HeadLimits::of(&settings, &http_settings);
            // The auto builder has no max_header_size: its buffer bounds
            // the head.
            http1_options!(builder.http1(), settings, http_settings, limits);
            http2_options!(builder.http2(), limits);
            let _ = watcher.watch(builder.serve_connection(stream, service)).await;
        }
    }
}

/// hyper's HTTP/2 settings for a connection.
fn http2_builder(
    connection: &ConnectionSettings,
    settings: &HttpSettings,
) -> hyper::server::conn::http2::Builder<hyper_util::rt::TokioExecutor> {
    let limits = HeadLimits::of(connection, settings);
    let mut builder = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
    http2_options!(builder, limits);
    builder
}

fn request_head(req: &Request<Incoming>, scheme: Scheme, peer: SocketAddr, local: SocketAddr) -> RequestHead {
    // An IPv4 client of a dual-stack socket is an IPv4 client.
    let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
    let local = SocketAddr::new(local.ip().to_canonical(), local.port());
    let mut headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str().to_string(), wsgi_core::route::latin1(value.as_bytes())))
        .collect();
    // An absolute-form target names the host itself, which then wins over
    // the Host header (RFC 9112 section 3.2.2); REQUEST_URI keeps the
    // target as sent, as Apache's does.
    let path_and_query =
        || req.uri().path_and_query().map_or_else(|| req.uri().path().to_string(), |pq| pq.as_str().to_string());
    let raw_uri = match req.uri().authority() {
        // HTTP/2's :authority is its Host; its target is the path, as
        // mod_http2 gives it.
        Some(authority) if req.version() == http::Version::HTTP_2 => {
            if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("host")) {
                headers.push(("host".to_string(), authority.as_str().to_string()));
            }
            path_and_query()
        }
        Some(authority) => {
            headers.retain(|(name, _)| !name.eq_ignore_ascii_case("host"));
            headers.push(("host".to_string(), authority.as_str().to_string()));
            req.uri().to_string()
        }
        None => path_and_query(),
    };
    // The target's bytes, read as Latin-1 as RequestHead carries text:
    // raw UTF-8 bytes reach PATH_INFO as PEP 3333 and mod_wsgi give them.
    let raw_uri = if raw_uri.is_ascii() { raw_uri } else { wsgi_core::route::latin1(raw_uri.as_bytes()) };
    RequestHead {
        method: req.method().as_str().to_string(),
        raw_uri,
        protocol: format!("{:?}", req.version()),
        headers,
        peer,
        local,
        scheme,
    }
}

/// Marks a response the server made itself (an error, not the
/// application's), so that [`handle`] closes the connection after the
/// statuses Apache closes it after.
#[derive(Clone, Copy)]
struct ServerError;

/// Marks a response after which the connection closes whatever its status:
/// reading the request's body failed on the worker ([`Head::close`]).
#[derive(Clone, Copy)]
struct CloseAfter;

/// The statuses after which Apache closes the connection
/// (`ap_status_drops_connection`): the request, or its body, may not have
/// been read as the client meant it.
fn drops_connection(status: StatusCode) -> bool {
    matches!(status.as_u16(), 400 | 408 | 411 | 413 | 414 | 500 | 501 | 503)
}

/// Whether `value` is a `Host` field value Apache accepts (`fix_hostname`
/// in its `server/vhost.c`, with `HttpProtocolOptions Strict`, its
/// default): empty (RFC 9110 section 7.2); or a host and an optional port
/// from 1 to 65535, the host either an IPv6 literal in brackets (no zone
/// id) or a name of letters, digits, `-`, `_` and `.` with no `..`, whose
/// last label (after any one trailing dot) starts with a letter, or a
/// dotted-decimal IPv4 address of four parts without leading zeroes. A
/// bare number is refused (RFC 3986 section 7.4).
fn valid_host(value: &[u8]) -> bool {
    if value.is_empty() {
        return true;
    }
    let (host, port) = match value.iter().rposition(|&b| b == b':') {
        Some(colon) if colon + 1 < value.len() && value[colon + 1..].iter().all(u8::is_ascii_digit) => {
            (&value[..colon], Some(&value[colon + 1..]))
        }
        _ => (value, None),
    };
    let port_ok = port.is_none_or(|port| {
        std::str::from_utf8(port).ok().and_then(|p| p.parse::<u32>().ok()).is_some_and(|p| (1..=65535).contains(&p))
    });
    if !port_ok || host.is_empty() {
        return false;
    }
    if let Some(literal) = host.strip_prefix(b"[") {
        return literal
            .strip_suffix(b"]")
            .and_then(|l| std::str::from_utf8(l).ok())
            .is_some_and(|l| l.parse::<std::net::Ipv6Addr>().is_ok());
    }
    let name = host.strip_suffix(b".").unwrap_or(host);
    let chars_ok = name.iter().all(|&b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !chars_ok || name.windows(2).any(|w| w == b"..") || host.ends_with(b"..") {
        return false;
    }
    let dotted_decimal = name.iter().all(|&b| b.is_ascii_digit() || b == b'.');
    if dotted_decimal {
        let parts: Vec<&[u8]> = name.split(|&b| b == b'.').collect();
        return parts.len() == 4 && parts.iter().all(|p| !p.is_empty() && (p.len() == 1 || p[0] != b'0'));
    }
    // The top-level label starts with a letter (RFC 1123 section 2.1).
    match name.iter().rposition(|&b| b == b'.') {
        Some(dot) => name.get(dot + 1).is_none_or(u8::is_ascii_alphabetic),
        None => true,
    }
}

fn error_response(status: u16, software: &str) -> Response<ResponseBody> {
    let page = error_page(status);
    let length = page.len();
    let mut response = Response::new(ResponseBody::Full(Some(Bytes::from(page))));
    response.extensions_mut().insert(ServerError);
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/html; charset=iso-8859-1"));
    headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(length));
    set_server(headers, software);
    response
}

/// mod_alias's answer: the status, `Location`, and Apache's page (the
/// error page for 410).
fn redirect_response(status: u16, location: Option<&str>, software: &str) -> Response<ResponseBody> {
    let Some(location) = location.and_then(|l| http::HeaderValue::from_str(l).ok().map(|v| (l, v))) else {
        return error_response(status, software);
    };
    let page = wsgi_core::response::redirect_page(status, location.0);
    let length = page.len();
    let mut response = Response::new(ResponseBody::Full(Some(Bytes::from(page))));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::FOUND);
    let headers = response.headers_mut();
    headers.insert(http::header::LOCATION, location.1);
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/html; charset=iso-8859-1"));
    headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(length));
    set_server(headers, software);
    response
}

/// Adds the `Server` header unless the response has one.
fn set_server(headers: &mut http::HeaderMap, software: &str) {
    if !headers.contains_key(http::header::SERVER) {
        if let Ok(server) = http::HeaderValue::from_str(software) {
            headers.insert(http::header::SERVER, server);
        }
    }
}

/// Header fields of the connection, not of the message: never passed on
/// from an application (PEP 3333 forbids them; hyper manages them).
fn is_hop_by_hop(name: &str) -> bool {
    ["connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection", "te", "trailer"]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h))
}

fn app_response(head: Head, body: ResponseBody, head_only: bool, software: &str) -> Response<ResponseBody> {
    let mut response = Response::new(body);
    if head.close {
        response.extensions_mut().insert(CloseAfter);
    }
    let status = StatusCode::from_u16(head.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    *response.status_mut() = status;
    if status.canonical_reason() != Some(head.reason.as_str()) {
        // Latin-1, as the WSGI status is.
        let reason = wsgi_core::route::latin1_bytes(&head.reason);
        if let Ok(reason) = hyper::ext::ReasonPhrase::try_from(reason) {
            response.extensions_mut().insert(reason);
        }
    }
    let headers = response.headers_mut();
    for (name, value) in head.headers {
        // What Apache would leave out, the standalone server leaves out.
        if is_hop_by_hop(&name) || wsgi_core::response::apache_omits_header(head.status, head_only, &name, &value) {
            continue;
        }
        // Latin-1, as WSGI header values are; the usual ASCII value is
        // taken over without a copy.
        let value_bytes = if value.is_ascii() {
            Bytes::from(value.into_bytes())
        } else {
            Bytes::from(wsgi_core::route::latin1_bytes(&value))
        };
        if let (Ok(name), Ok(value)) =
            (http::HeaderName::from_bytes(name.as_bytes()), http::HeaderValue::from_maybe_shared(value_bytes))
        {
            headers.append(name, value);
        }
    }
    set_server(headers, software);
    response
}

/// A static file (`Alias`, `--url-alias`) as Apache's default handler
/// serves it: validators, 304 for a conditional request that matches, 206
/// for one byte range, 416 for a range past the end. Files up to
/// [`static_files::CACHED_FILE_LIMIT`] are answered from memory (read once
/// and kept in `cache` while one `stat` shows them unchanged); larger ones
/// are streamed.
async fn static_file(
    path: std::path::PathBuf,
    request: &RequestHead,
    software: &str,
    cache: &static_files::FileCache,
) -> Response<ResponseBody> {
    let head_only = request.method == "HEAD";
    let Ok(meta) = std::fs::metadata(&path) else { return error_response(404, software) };
    if meta.len() <= static_files::CACHED_FILE_LIMIT {
        let file = match cache.get(&path, &meta) {
            Some(file) => file,
            None => {
                let Some(file) = read_small_file(path.clone()).await else { return error_response(404, software) };
                cache.keep(&path, &file, std::time::SystemTime::now());
                file
            }
        };
        let size = file.body.len() as u64;
        return match file_answer(&file.validators, size, &path, request, software) {
            FileAnswer::Body(head, start, len) => {
                let body = file.body.slice(start as usize..(start + len) as usize);
                app_response(head, ResponseBody::Full(Some(body)), head_only, software)
            }
            FileAnswer::Done(response) => response,
        };
    }
    let Ok(file) = tokio::fs::File::open(&path).await else { return error_response(404, software) };
    let Ok(meta) = file.metadata().await else { return error_response(404, software) };
    let validators = static_files::Validators::new(meta.len(), meta.modified().unwrap_or(std::time::UNIX_EPOCH));
    match file_answer(&validators, meta.len(), &path, request, software) {
        FileAnswer::Body(head, start, len) => {
            let (tx, rx) = mpsc::channel(4);
            if !head_only {
                tokio::spawn(send_file_part(file, start, len, tx));
            }
            app_response(head, ResponseBody::Channel(VecDeque::new(), rx), head_only, software)
        }
        FileAnswer::Done(response) => response,
    }
}

/// What a request gets for a file of `size` bytes with `validators`.
enum FileAnswer {
    /// This head, with `len` bytes of the file from `start`.
    Body(Head, u64, u64),
    /// A whole answer without the file's bytes (304, 416).
    Done(Response<ResponseBody>),
}

/// Decides between 200, 206, 304 and 416, and the head that goes with it.
fn file_answer(
    validators: &static_files::Validators,
    size: u64,
    path: &std::path::Path,
    request: &RequestHead,
    software: &str,
) -> FileAnswer {
    use static_files::{range, RangeRequest};
    let mut headers = vec![
        ("Last-Modified".to_string(), validators.last_modified.clone()),
        ("ETag".to_string(), validators.etag.clone()),
        ("Accept-Ranges".to_string(), "bytes".to_string()),
    ];
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if validators.not_modified(request.header("if-none-match"), request.header("if-modified-since"), now) {
        let head = Head { status: 304, reason: "Not Modified".into(), headers, close: false };
        return FileAnswer::Done(app_response(head, ResponseBody::Full(None), request.method == "HEAD", software));
    }
    let wanted = if validators.range_allowed(request.header("if-range")) {
        range(request.header("range"), size)
    } else {
        RangeRequest::Whole
    };
    let (status, reason, start, len) = match wanted {
        RangeRequest::Whole => (200, "OK", 0, size),
        RangeRequest::Part { start, end } => {
            headers.push(("Content-Range".into(), format!("bytes {start}-{end}/{size}")));
            (206, "Partial Content", start, end - start + 1)
        }
        RangeRequest::Unsatisfiable => {
            let mut response = error_response(416, software);
            if let Ok(value) = http::HeaderValue::from_str(&format!("bytes */{size}")) {
                response.headers_mut().insert(http::header::CONTENT_RANGE, value);
            }
            return FileAnswer::Done(response);
        }
    };
    headers.push(("Content-Type".into(), content_type(path).into()));
    headers.push(("Content-Length".into(), len.to_string()));
    FileAnswer::Body(Head { status, reason: reason.into(), headers, close: false }, start, len)
}

/// Reads a small file whole on tokio's blocking pool, with the metadata
/// of the open file taken before the read (`None`: it cannot be read).
async fn read_small_file(path: std::path::PathBuf) -> Option<Arc<static_files::CachedFile>> {
    let read = move || -> io::Result<static_files::CachedFile> {
        use std::io::Read;
        let mut file = std::fs::File::open(&path)?;
        let meta = file.metadata()?;
        let mut body = Vec::with_capacity(meta.len() as usize);
        file.read_to_end(&mut body)?;
        Ok(static_files::CachedFile::new(&meta, Bytes::from(body)))
    };
    tokio::task::spawn_blocking(read).await.ok()?.ok().map(Arc::new)
}

/// Sends `len` bytes of `file` from `start` down `tx`.
async fn send_file_part(mut file: tokio::fs::File, start: u64, len: u64, tx: mpsc::Sender<io::Result<Bytes>>) {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    if file.seek(io::SeekFrom::Start(start)).await.is_err() {
        return;
    }
    let mut left = len;
    while left > 0 {
        let mut buf = vec![0u8; left.min(256 * 1024) as usize];
        match file.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                buf.truncate(n);
                left -= n as u64;
                if tx.send(Ok(Bytes::from(buf))).await.is_err() {
                    break;
                }
            }
        }
    }
}

/// How the wait for a response's start ended.
enum Waited {
    /// The worker's start of the response (`None`: it produced none).
    Start(Option<Start>),
    /// No worker took the request up within the queue timeout.
    QueueTimeout,
    /// The application did not start its response within the request
    /// timeout, counted from when a worker took the request up.
    RequestTimeout,
}

/// Waits for the start of a response, enforcing the queue and request
/// timeouts.
///
/// The connection is woken once per request, by the response: when the
/// worker took the request up is not awaited but looked at (`started`) only
/// when a timer fires, and a timer fires only near a deadline.
async fn wait_for_start(
    mut head: oneshot::Receiver<Start>,
    mut started: oneshot::Receiver<Instant>,
    queued_at: Instant,
    settings: &HttpSettings,
) -> Waited {
    let (queue_timeout, request_timeout) = (settings.queue_timeout, settings.request_timeout);
    let queue_deadline = (!queue_timeout.is_zero()).then(|| queued_at + queue_timeout);
    // Until the worker's start time is known, the timer wakes at the queue
    // deadline or, to learn that start time, one request timeout after the
    // last look; a start learnt that way gives the exact request deadline,
    // which is never before the look.
    let mut look = (!request_timeout.is_zero()).then(|| queued_at + request_timeout);
    let mut started_at: Option<Instant> = None;
    loop {
        let deadline = match started_at {
            Some(at) => (!request_timeout.is_zero()).then(|| at + request_timeout),
            None => match (queue_deadline, look) {
                (Some(q), Some(l)) => Some(q.min(l)),
                (q, l) => q.or(l),
            },
        };
        let Some(deadline) = deadline else { return Waited::Start((&mut head).await.ok()) };
        if let Ok(start) = tokio::time::timeout_at(deadline.into(), &mut head).await {
            return Waited::Start(start.ok());
        }
        if started_at.is_some() {
            return Waited::RequestTimeout;
        }
        let now = Instant::now();
        match started.try_recv() {
            Ok(at) => started_at = Some(at),
            Err(oneshot::error::TryRecvError::Empty) if queue_deadline.is_some_and(|q| now >= q) => {
                return Waited::QueueTimeout;
            }
            Err(oneshot::error::TryRecvError::Empty) => look = look.map(|_| now + request_timeout),
            // The worker dropped the request without running it; the
            // response channel says so at once.
            Err(oneshot::error::TryRecvError::Closed) => return Waited::Start((&mut head).await.ok()),
        }
    }
}

/// Reads a small body in full, waiting at most `timeout` for each part of
/// it (the socket timeout is per read, as Apache's `Timeout`); `Err` with
/// the status to answer.
async fn read_body(mut body: Incoming, timeout: Duration) -> Result<Bytes, u16> {
    use http_body_util::BodyExt;
    let mut parts: Vec<Bytes> = Vec::new();
    loop {
        match tokio::time::timeout(timeout, body.frame()).await {
            Err(_) => return Err(wsgi_core::body::BodyError::timeout().status),
            Ok(None) => return Ok(join(parts)),
            Ok(Some(Err(_))) => return Err(400),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    parts.push(data);
                }
            }
        }
    }
}

/// `parts` as one buffer, copied only when there are several.
fn join(mut parts: Vec<Bytes>) -> Bytes {
    match parts.len() {
        0 => Bytes::new(),
        1 => parts.pop().unwrap_or_default(),
        _ => Bytes::from(parts.concat()),
    }
}

/// How long the pre-read of a chunked body waits for its next part before
/// handing the rest to the application streamed: parts a client sent
/// together arrive well within it, while an interactive client that waits
/// for an answer before sending more is not kept waiting.
const PRE_READ_GRACE: Duration = Duration::from_millis(50);

/// How much of a chunked body was read before its request is queued.
enum ChunkedStart {
    /// All of it, its trailer section checked.
    Whole(Bytes),
    /// What had arrived, and the rest, which the worker reads (and whose
    /// trailer section it checks).
    Part(Vec<Bytes>, Incoming),
}

/// Reads what has already arrived of a chunked body, up to `limit` bytes:
/// a small body sent at once, the common case, is read whole, so that a
/// trailer section with a field it must not carry
/// ([`first_forbidden_trailer`]) refuses the request before the
/// application sees it. The read stops, handing the rest over streamed, as
/// soon as the next part does not follow within [`PRE_READ_GRACE`] (the
/// client waits for the application, or sends slowly) or `limit` is
/// passed. So a forbidden trailer field that arrives later, after the
/// application was called, fails its last read instead (400, connection
/// closed). A body over `body_limit` (`LimitRequestBody`, 0 for none) is
/// refused here with 413.
async fn read_chunked_start(
    mut body: Incoming,
    limit: u64,
    body_limit: u64,
) -> Result<ChunkedStart, wsgi_core::body::BodyError> {
    use http_body_util::BodyExt;
    use wsgi_core::body::BodyError;
    let mut parts: Vec<Bytes> = Vec::new();
    let mut held: u64 = 0;
    loop {
        let frame = match tokio::time::timeout(PRE_READ_GRACE, body.frame()).await {
            Err(_) => return Ok(ChunkedStart::Part(parts, body)),
            Ok(None) => return Ok(ChunkedStart::Whole(join(parts))),
            Ok(Some(Err(e))) => return Err(BodyError::malformed(format!("malformed chunked request body: {e}"))),
            Ok(Some(Ok(frame))) => frame,
        };
        match frame.into_data() {
            Ok(data) => {
                held += data.len() as u64;
                parts.push(data);
                if body_limit > 0 && held > body_limit {
                    return Err(BodyError::too_large(body_limit));
                }
                if held > limit {
                    return Ok(ChunkedStart::Part(parts, body));
                }
            }
            Err(frame) => {
                if let Some(name) = frame.trailers_ref().and_then(first_forbidden_trailer) {
                    return Err(BodyError::forbidden_trailer(&name));
                }
            }
        }
    }
}

/// Whether the request asks for `100 Continue` before sending its body.
fn expects_continue<B>(req: &Request<B>) -> bool {
    req.headers().get(http::header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// The first field of a request's trailer section that RFC 9110 section
/// 6.5.1 forbids there ([`wsgi_core::body::forbidden_trailer`]), if any.
pub(crate) fn first_forbidden_trailer(trailers: &http::HeaderMap) -> Option<String> {
    trailers.keys().find(|name| wsgi_core::body::forbidden_trailer(name.as_str())).map(|name| name.as_str().to_string())
}

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    connection: Arc<Connection>,
    peer: SocketAddr,
    local: SocketAddr,
    in_flight: InFlightGuard,
) -> Result<Response<TrackedBody>, Infallible> {
    let (received, started) = (std::time::SystemTime::now(), Instant::now());
    let (keepalives, keep) = connection.count_request();
    let head = request_head(&req, connection.scheme(), peer, local);
    let logs = shared.logs.for_request(shared.site.config(), &head).clone();
    let mut response = if connection.ambiguous.was_ambiguous(keepalives) {
        // hyper dropped the Content-Length and would read the chunked body:
        // a request another server could read the other way is refused,
        // unread, and its connection closed (RFC 9112 section 6.1).
        logs.error.log(
            LogLevel::Info,
            &format!("client {} sent both Content-Length and Transfer-Encoding: refused (400)", head.peer),
        );
        error_response(400, &shared.settings.server_software)
    } else {
        respond(req, &head, &shared, &logs, &connection).await
    };
    // HTTP/2 has no Connection field: its connection outlives requests.
    let http1 = head.protocol != "HTTP/2.0";
    // As Apache, an error of the server's own after which the rest of the
    // connection cannot be trusted closes it.
    let server_error = response.extensions_mut().remove::<ServerError>().is_some();
    let body_failed = response.extensions_mut().remove::<CloseAfter>().is_some();
    let close = http1
        && (!keep
            || body_failed
            || shared.draining.load(std::sync::atomic::Ordering::Relaxed)
            || (server_error && drops_connection(response.status())));
    if close {
        response.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
    }
    let facts = response.extensions_mut().remove::<RequestFacts>().unwrap_or_default();
    let record = (!logs.access.is_empty()).then(|| {
        let kept_alive = !close && !wants_close(&head);
        Box::new(PendingRecord {
            status: response.status().as_u16(),
            response_headers: response.headers().clone(),
            head_bytes: head_bytes(&response),
            head,
            received,
            started,
            keepalives,
            kept_alive,
            facts,
            logs,
        })
    });
    Ok(response.map(|body| TrackedBody { body, sent: 0, record, _in_flight: in_flight }))
}

/// Whether the client asked for its connection to close after this
/// request (or spoke HTTP/1.0 without asking to keep it).
fn wants_close(head: &RequestHead) -> bool {
    match head.header("connection") {
        Some(value) if value.eq_ignore_ascii_case("close") => true,
        Some(value) if value.eq_ignore_ascii_case("keep-alive") => false,
        _ => head.protocol != "HTTP/1.1",
    }
}

/// The size of a response head as hyper writes it: the status line, the
/// fields, the `date` field it adds, and the blank line.
fn head_bytes<B>(response: &Response<B>) -> u64 {
    const STATUS_LINE: usize = "HTTP/1.1 200 OK\r\n".len();
    const DATE: usize = "date: Thu, 03 Dec 2026 08:00:30 GMT\r\n".len();
    let reason = response.status().canonical_reason().map_or(0, str::len).saturating_sub(2);
    let fields: usize = response.headers().iter().map(|(name, value)| name.as_str().len() + 2 + value.len() + 2).sum();
    (STATUS_LINE + reason + fields + DATE + 2) as u64
}

/// An access-log record waiting for its response body to be sent.
struct PendingRecord {
    head: RequestHead,
    status: u16,
    response_headers: http::HeaderMap,
    head_bytes: u64,
    received: std::time::SystemTime,
    started: Instant,
    keepalives: u64,
    kept_alive: bool,
    facts: RequestFacts,
    logs: Arc<crate::logging::ServerLogs>,
}

impl PendingRecord {
    fn write(&self, body_bytes: u64) {
        let record = crate::logging::AccessRecord {
            head: &self.head,
            status: self.status,
            response_headers: &self.response_headers,
            body_bytes,
            head_bytes: self.head_bytes,
            received: self.received,
            elapsed: self.started.elapsed(),
            keepalives: self.keepalives,
            kept_alive: self.kept_alive,
            server_name: &self.logs.server_name,
            remote_user: self.facts.user.as_deref(),
            env: &self.facts.env,
        };
        for log in &self.logs.access {
            log.record(&record);
        }
    }
}

/// A response body that keeps its request counted as in flight until the
/// body has been sent (or dropped), so the connection is not idle
/// meanwhile, and then writes its access-log lines.
pub struct TrackedBody {
    body: ResponseBody,
    /// Body bytes passed on so far.
    sent: u64,
    record: Option<Box<PendingRecord>>,
    _in_flight: InFlightGuard,
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                this.sent += data.len() as u64;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        if let Some(record) = self.record.take() {
            record.write(self.sent);
        }
    }
}

async fn respond(
    req: Request<Incoming>,
    head: &RequestHead,
    shared: &Arc<Shared>,
    logs: &crate::logging::ServerLogs,
    connection: &Connection,
) -> Response<ResponseBody> {
    let software = shared.settings.server_software.as_str();
    let log = &logs.error;
    if let Some(status) = head_limit_status(&req, &connection.settings) {
        let mut response = error_response(status, software);
        // Apache closes the connection after a head it would not read.
        response.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
        return response;
    }
    let draining = shared.draining.load(std::sync::atomic::Ordering::Relaxed);
    if let Some(response) = shared.health.answer(head, draining, software) {
        return response;
    }
    // HTTP/1.1 needs exactly one Host (RFC 9112 section 3.2), as Apache
    // insists; two could select one virtual host and report another.
    // An empty one names no host: Apache refuses it as it refuses none.
    let hosts = head.header_values("host").count();
    let empty = req.headers().get(http::header::HOST).is_some_and(|host| host.as_bytes().is_empty());
    if hosts > 1 || ((hosts == 0 || empty) && req.version() == http::Version::HTTP_11) {
        return error_response(400, software);
    }
    // So is a Host that is no host (RFC 9112 section 3.2), checked before
    // the redirect so that it never makes a Location.
    if req.headers().get(http::header::HOST).is_some_and(|host| !valid_host(host.as_bytes())) {
        return error_response(400, software);
    }
    if let (Some(port), Scheme::Http) = (shared.settings.https_redirect, head.scheme) {
        // As mod_wsgi-express writes it: https://%{SERVER_NAME}:PORT.
        let host = wsgi_core::environ_build::server_name(head, &head.local.ip().to_string());
        let location = format!("https://{host}:{port}{}", head.raw_uri);
        return redirect_response(301, Some(&location), software);
    }
    // The asterisk form is for OPTIONS only (RFC 9112 section 3.2.4).
    if head.raw_uri == "*" && head.method != "OPTIONS" {
        return error_response(400, software);
    }
    // `OPTIONS *` asks about the server, not a resource: answered here, as
    // Apache does.
    if head.method == "OPTIONS" && head.raw_uri == "*" {
        let mut response = Response::new(ResponseBody::Full(None));
        response.headers_mut().insert(http::header::ALLOW, http::HeaderValue::from_static("GET,HEAD,POST,OPTIONS"));
        response.headers_mut().insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(0));
        set_server(response.headers_mut(), software);
        return response;
    }
    let request_start = now_us();
    let request_id = new_request_id(request_start, shared.pid);
    let total_requests = shared.pool.total() as i64;
    let tls = connection.tls.clone();
    let dispatch = move |shared: &Shared, head: &RequestHead, request_id: &str, log: &ServerLog| {
        let stats = RequestStats {
            request_id,
            request_start_us: request_start,
            script_start_us: request_start,
            thread_id: 0,
            thread_requests: 0,
            total_requests,
        };
        // mod_ssl's answers to access scripts: "not HTTPS" on a plain
        // connection.
        let ssl: &dyn SslLookup = match &tls {
            Some(tls) => &**tls,
            None => &PlainConnection,
        };
        shared.site.dispatch(head, Some(ssl), stats, None, &log.for_request(&head.peer, request_id))
    };
    let dispatched = if shared.site.dispatch_may_block() {
        // A WSGIDispatchScript or an auth script runs Python, which may
        // wait, and a bcrypt hash takes its time: not on this I/O thread,
        // which serves every connection.
        let (on_pool, head_copy, id, log) = (shared.clone(), head.clone(), request_id.clone(), log.clone());
        tokio::task::spawn_blocking(move || dispatch(&on_pool, &head_copy, &id, &log))
            .await
            .unwrap_or(Dispatch::Error(500))
    } else {
        dispatch(shared, head, &request_id, log)
    };
    match dispatched {
        Dispatch::Error(status) => error_response(status, software),
        Dispatch::Refused(status, why) => {
            log.log(LogLevel::Error, &why);
            error_response(status, software)
        }
        Dispatch::Redirect(status, location) => redirect_response(status, location.as_deref(), software),
        Dispatch::Denied(status, challenge) => {
            let mut response = error_response(status, software);
            if let Some(value) = challenge.and_then(|c| http::HeaderValue::from_str(&c).ok()) {
                response.headers_mut().insert(http::header::WWW_AUTHENTICATE, value);
            }
            response
        }
        Dispatch::File(path, user) => {
            let mut response = static_file(path, head, software, &shared.static_files).await;
            if !logs.access.is_empty() {
                response.extensions_mut().insert(RequestFacts { env: Vec::new(), user });
            }
            response
        }
        Dispatch::App(mut app) => {
            let facts = RequestFacts { env: std::mem::take(&mut app.env_vars), user: app.remote_user.clone() };
            let mut response = run_app(req, app, &request_id, head, shared, log, &connection.settings).await;
            // Only the access log reads them: no map for them otherwise.
            if !logs.access.is_empty() {
                response.extensions_mut().insert(facts);
            }
            response
        }
    }
}

/// What the access log needs to know of a request beyond its head: its
/// mod_env variables and its authenticated user, carried on its response.
#[derive(Clone, Default)]
struct RequestFacts {
    env: Vec<(String, String)>,
    user: Option<String>,
}

/// Runs `app` on a worker and answers with what it produces (or with
/// the error a timeout or a full queue calls for).
async fn run_app(
    req: Request<Incoming>,
    app: Box<wsgi_core::pipeline::AppRequest>,
    request_id: &str,
    head: &RequestHead,
    shared: &Arc<Shared>,
    log: &Arc<ServerLog>,
    connection: &ConnectionSettings,
) -> Response<ResponseBody> {
    let software = shared.settings.server_software.as_str();
    let peer = head.peer;
    let body_timeout = connection.timeout;
    let head_request = head.method == "HEAD";
    let body = match app.body {
        BodyKind::Empty => BodySource::Buffered(Bytes::new()),
        BodyKind::Length(n) if n <= BUFFERED_BODY_LIMIT => match read_body(req.into_body(), body_timeout).await {
            Ok(bytes) => BodySource::Buffered(bytes),
            Err(status) => return error_response(status, software),
        },
        // A client that sent `Expect: 100-continue` sends nothing before
        // the 100, which goes out when the application first reads (as
        // under Apache): there is nothing to read ahead.
        BodyKind::Chunked if expects_continue(&req) => {
            BodySource::Streamed { read_ahead: Vec::new(), rest: req.into_body() }
        }
        BodyKind::Chunked => {
            let limit = match app.body_limit {
                0 => BUFFERED_BODY_LIMIT,
                body_limit => body_limit.min(BUFFERED_BODY_LIMIT),
            };
            match read_chunked_start(req.into_body(), limit, app.body_limit).await {
                Ok(ChunkedStart::Whole(bytes)) => BodySource::Buffered(bytes),
                Ok(ChunkedStart::Part(read_ahead, rest)) => BodySource::Streamed { read_ahead, rest },
                Err(error) => {
                    // An error of the server's own: the connection closes
                    // (its rest cannot be trusted to be read as meant).
                    log.log(LogLevel::Info, &format!("mod_wsgi: request from {peer} refused: {}", error.message));
                    return error_response(error.status, software);
                }
            }
        }
        BodyKind::Length(_) => BodySource::Streamed { read_ahead: Vec::new(), rest: req.into_body() },
    };
    if let (BodySource::Buffered(bytes), Some(group)) = (&body, shared.daemon_groups.get(&app.process_group)) {
        let bytes = bytes.clone();
        shared.pool.count_relayed();
        shared.supervisor.count(shared.pool.total(), &shared.log);
        let request_log = log.for_request(&peer, request_id);
        let timeout = shared.settings.request_timeout;
        return match group.relay(*app, bytes, timeout, &request_log, log).await {
            // A HEAD response has no body: a dropped channel stops the
            // relay of the rest at its next chunk.
            crate::relay::Answer::Response(head, _) if head_request => {
                app_response(head, ResponseBody::Full(None), true, software)
            }
            crate::relay::Answer::Response(head, body) => app_response(head, body, false, software),
            crate::relay::Answer::Error(status) => error_response(status, software),
        };
    }
    let client =
        ClientFacts { peer, request_id: request_id.to_string(), timeout: connection.timeout, log: log.clone() };
    let (head_tx, head_rx) = oneshot::channel();
    let (started_tx, started_rx) = oneshot::channel();
    let queued_at = Instant::now();
    let job = Job { app, body, head: head_tx, client, queued_at, started: started_tx };
    if !shared.pool.submit(job) {
        log.log(LogLevel::Error, "mod_wsgi: request queue full; answering 503");
        return error_response(503, software);
    }
    let start = match wait_for_start(head_rx, started_rx, queued_at, &shared.settings).await {
        Waited::Start(start) => start,
        Waited::QueueTimeout => {
            log.log(
                LogLevel::Error,
                &format!("mod_wsgi: Queue timeout expired for request {request_id} from {peer} waiting for a worker."),
            );
            return error_response(504, software);
        }
        Waited::RequestTimeout => {
            log.log(
                LogLevel::Error,
                &format!(
                    "mod_wsgi: request {request_id} from {peer} did not produce a response within the request timeout of {} seconds",
                    shared.settings.request_timeout.as_secs()
                ),
            );
            return error_response(504, software);
        }
    };
    shared.supervisor.count(shared.pool.total(), &shared.log);
    match start {
        Some(Start { head, body, rest: None }) => {
            let body = match body.len() {
                0 => None,
                1 => body.into_iter().next(),
                _ => Some(Bytes::from(body.concat())),
            };
            app_response(head, ResponseBody::Full(body), head_request, software)
        }
        // A HEAD response has no body: dropping the channel tells the
        // worker at its next write, so an endless generator stops.
        Some(Start { head, .. }) if head_request => app_response(head, ResponseBody::Full(None), true, software),
        Some(Start { head, body, rest: Some(rest) }) => {
            app_response(head, ResponseBody::Channel(body.into(), rest), head_request, software)
        }
        None => error_response(500, software),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_values() {
        let good = [
            "localhost",
            "localhost:8080",
            "a.example",
            "a.example.",
            "",
            "[::1]",
            "[::1]:80",
            "[::ffff:1.2.3.4]",
            "127.0.0.1:80",
            "x_y-z",
            "A-B.Example",
        ];
        for good in good {
            assert!(valid_host(good.as_bytes()), "{good:?}");
        }
        let bad = [
            "local/host",
            "a b",
            "host:8o",
            "[::1",
            "[::1]x",
            "a@b",
            "a\\b",
            "[]",
            "h?q",
            "h#f",
            "a..b",
            "a~b",
            "a%41b",
            "123",
            "1.2.3",
            "01.2.3.4",
            "a.1b",
            "host:0",
            "host:65536",
            "host:",
            "[::1%eth0]",
            "[x::1]",
            "a,b",
            "é.example",
            ".",
        ];
        for bad in bad {
            assert!(!valid_host(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn statuses_that_drop_the_connection() {
        for status in [400, 408, 411, 413, 414, 500, 501, 503] {
            assert!(drops_connection(StatusCode::from_u16(status).unwrap()), "{status}");
        }
        for status in [200, 304, 401, 403, 404, 405, 416, 504] {
            assert!(!drops_connection(StatusCode::from_u16(status).unwrap()), "{status}");
        }
    }
}
