//! The Python worker threads, and the channels that carry a request's body
//! to them and its response back to the connection.
//!
//! Python runs only on a fixed pool of threads (like a mod_wsgi daemon
//! process); the I/O threads never hold the GIL. A request waits in the
//! queue for a free worker; one that waited longer than the queue timeout is
//! answered 504 without running.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::Body;
use hyper::body::Incoming;
use tokio::sync::{mpsc, oneshot};
use wsgi_core::body::{BodyError, BodyKind, LimitedReader};
use wsgi_core::pipeline::AppRequest;
use wsgi_core::response::ResponseSink;
use wsgi_core::{LogLevel, ResponseWriter, RunOutcome, WsgiRunner};

use crate::logging::ServerLog;

/// The status line and headers of a response, on their way to the client.
pub struct Head {
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// Header fields.
    pub headers: Vec<(String, String)>,
    /// Close the connection after the response: reading the request body
    /// failed (malformed, a forbidden trailer field, too large, too slow),
    /// so the rest of the connection cannot be trusted to be read as the
    /// client meant it.
    pub close: bool,
}

/// The start of a response: the head and the body produced so far, in one
/// message so that a small response costs the connection a single wake-up.
pub struct Start {
    /// Status and headers.
    pub head: Head,
    /// Body chunks produced before the first flush.
    pub body: Vec<Bytes>,
    /// Where the rest of the body comes from; `None` when the body above
    /// is the whole of it. (An error there breaks the connection.)
    pub rest: Option<mpsc::Receiver<io::Result<Bytes>>>,
}

/// Chunks a streamed response body may run ahead of the connection.
const CHUNKS_AHEAD: usize = 16;

/// A request for a worker.
pub struct Job {
    /// What to run.
    pub app: Box<AppRequest>,
    /// Body chunks from the connection (or errors).
    pub body: BodySource,
    /// Where the start of the response goes.
    pub head: oneshot::Sender<Start>,
    /// Who asked, for error-log lines.
    pub client: ClientFacts,
    /// When the request was queued.
    pub queued_at: Instant,
    /// Told when a worker takes the request up (the queue wait is over).
    pub started: oneshot::Sender<Instant>,
}

/// Who sent a request.
pub struct ClientFacts {
    /// The client.
    pub peer: SocketAddr,
    /// The request id, for error-log lines.
    pub request_id: String,
    /// Longest wait for the client to send more of the body or take more
    /// of the response (its server's `Timeout`), after which it counts as
    /// gone.
    pub timeout: Duration,
    /// The error log of the server that answers it.
    pub log: Arc<ServerLog>,
}

/// Where a worker reads the request body from.
pub enum BodySource {
    /// Read in full before the request was queued (small bodies), so a slow
    /// client never holds a Python thread.
    Buffered(Bytes),
    /// Read from the connection by the worker as the application asks for
    /// it: no more of it is read, or held in memory, while the request
    /// waits in the queue.
    Streamed {
        /// What was read before the request was queued (what had arrived
        /// of a chunked body, or nothing).
        read_ahead: Vec<Bytes>,
        /// The rest of the body.
        rest: Incoming,
    },
}

/// Reads a [`BodySource`] from a worker thread, waiting for each part of a
/// streamed body at most the socket timeout.
struct BodyReader {
    current: Bytes,
    /// Parts read ahead, after `current`.
    ahead: std::vec::IntoIter<Bytes>,
    source: Option<Incoming>,
    timeout: Duration,
}

/// Wakes a worker thread parked on the body of its request.
struct UnparkWaker(std::thread::Thread);

impl std::task::Wake for UnparkWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

impl BodyReader {
    /// The next data of the body (`None` at its end). A body that breaks off
    /// or is malformed is an error that makes a failed request a 400.
    fn next_data(body: &mut Incoming, timeout: Duration) -> io::Result<Option<Bytes>> {
        let waker = std::task::Waker::from(Arc::new(UnparkWaker(std::thread::current())));
        let mut cx = std::task::Context::from_waker(&waker);
        let deadline = Instant::now() + timeout;
        loop {
            match std::pin::Pin::new(&mut *body).poll_frame(&mut cx) {
                std::task::Poll::Ready(None) => return Ok(None),
                std::task::Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => return Ok(Some(data)),
                    // Trailers carry no data, but may make the request one
                    // to refuse.
                    Err(frame) => {
                        if let Some(name) = frame.trailers_ref().and_then(crate::http::first_forbidden_trailer) {
                            return Err(BodyError::forbidden_trailer(&name).into_io_error());
                        }
                    }
                },
                std::task::Poll::Ready(Some(Err(e))) => {
                    return Err(BodyError::malformed(format!("malformed request body: {e}")).into_io_error());
                }
                std::task::Poll::Pending => {
                    // Unparked by the waker, or woken early for another
                    // reason: either way the body is polled again.
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(BodyError::timeout().into_io_error());
                    }
                    std::thread::park_timeout(deadline - now);
                }
            }
        }
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            if let Some(next) = self.ahead.next() {
                self.current = next;
                continue;
            }
            let Some(source) = self.source.as_mut() else { return Ok(0) };
            match BodyReader::next_data(source, self.timeout) {
                Ok(Some(chunk)) => self.current = chunk,
                Ok(None) => {
                    self.source = None;
                    return Ok(0);
                }
                Err(e) => {
                    self.source = None;
                    return Err(e);
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// The response side of a worker. The head and body are held until the
/// writer flushes or finishes (or the held body grows large), then go out
/// as one [`Start`]; later chunks follow on a channel. Errors mean the
/// client (or the request timeout) gave up on the response.
struct ChannelSink {
    start: Option<oneshot::Sender<Start>>,
    head: Option<Head>,
    held: Vec<Bytes>,
    held_len: usize,
    /// Made when the start goes out before the body is complete.
    chunks: Option<mpsc::Sender<io::Result<Bytes>>>,
    /// How long a write may wait for a client that does not read (Apache's
    /// `Timeout`); then the client counts as gone.
    write_timeout: Duration,
    /// Set by [`Watched`] when reading the request body failed.
    body_failed: Arc<AtomicBool>,
}

/// A body reader that notes a failure of the request's body (one
/// [`wsgi_core::body::body_error_status`] recognises) in a flag the
/// response's [`Head`] carries as `close`. Whatever the application makes
/// of the error, the connection closes after its response.
struct Watched<R> {
    inner: R,
    failed: Arc<AtomicBool>,
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf);
        if let Err(e) = &read {
            if wsgi_core::body::body_error_status(e).is_some() {
                self.failed.store(true, Ordering::Release);
            }
        }
        read
    }
}

/// Body held back with the head before it is sent regardless.
const HOLD_LIMIT: usize = 256 * 1024;

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "client connection closed")
}

impl ChannelSink {
    fn started(&self) -> bool {
        self.start.is_none()
    }

    /// Queues a chunk for the connection, waiting at most the write timeout
    /// while the client is not reading.
    fn send_chunk(&self, chunk: Bytes) -> io::Result<()> {
        let Some(chunks) = &self.chunks else { return Err(gone()) };
        let mut chunk = Ok(chunk);
        let deadline = Instant::now() + self.write_timeout;
        let mut pause = Duration::from_micros(100);
        loop {
            match chunks.try_send(chunk) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(gone()),
                Err(mpsc::error::TrySendError::Full(back)) => chunk = back,
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "client did not read the response in time"));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    fn send_start(&mut self, complete: bool) -> io::Result<()> {
        let Some(head) = self.head.take() else { return Ok(()) };
        let rest = if complete {
            None
        } else {
            let (tx, rx) = mpsc::channel(CHUNKS_AHEAD);
            self.chunks = Some(tx);
            Some(rx)
        };
        let start = Start { head, body: std::mem::take(&mut self.held), rest };
        self.held_len = 0;
        self.start.take().ok_or_else(gone)?.send(start).map_err(|_| gone())
    }
}

impl ResponseSink for ChannelSink {
    fn send_head(&mut self, status: u16, reason: &str, headers: &[(String, String)]) -> io::Result<()> {
        let close = self.body_failed.load(Ordering::Acquire);
        self.head = Some(Head { status, reason: reason.to_string(), headers: headers.to_vec(), close });
        Ok(())
    }

    fn send_body(&mut self, chunk: &[u8]) -> io::Result<()> {
        if self.started() {
            return self.send_chunk(Bytes::copy_from_slice(chunk));
        }
        self.held.push(Bytes::copy_from_slice(chunk));
        self.held_len += chunk.len();
        if self.held_len >= HOLD_LIMIT {
            self.send_start(false)?;
        }
        Ok(())
    }

    fn send_file(&mut self, file: &std::fs::File, offset: u64, len: u64) -> io::Result<u64> {
        use std::os::unix::fs::FileExt;
        self.send_start(false)?;
        // hyper has no sendfile path: large reads keep the copies cheap.
        let mut sent = 0;
        while sent < len {
            let want = (len - sent).min(256 * 1024) as usize;
            let mut buf = vec![0u8; want];
            let n = file.read_at(&mut buf, offset + sent)?;
            if n == 0 {
                break;
            }
            buf.truncate(n);
            self.send_chunk(Bytes::from(buf))?;
            sent += n as u64;
        }
        Ok(sent)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_start(false)
    }

    fn set_write_timeout(&mut self, timeout: Duration) {
        self.write_timeout = timeout;
    }

    fn finish(&mut self) -> io::Result<()> {
        self.send_start(true)
    }

    fn is_closed(&self) -> bool {
        match &self.start {
            Some(start) => start.is_closed(),
            None => self.chunks.as_ref().is_none_or(mpsc::Sender::is_closed),
        }
    }

    fn may_block(&self, len: usize) -> bool {
        if self.started() {
            self.chunks.as_ref().is_none_or(|chunks| chunks.capacity() == 0)
        } else {
            self.held_len + len >= HOLD_LIMIT
        }
    }
}

/// Settings of the pool.
pub struct PoolSettings {
    /// Worker threads.
    pub threads: usize,
    /// Longest wait in the queue before 504 (zero: no limit).
    pub queue_timeout: Duration,
}

/// The worker threads and their queue.
///
/// Idle workers wait on a stack, so that the most recently active worker
/// takes the next request: fewer threads take turns at the GIL, and the
/// rest stay asleep.
pub struct Pool {
    dispatch: Arc<Mutex<Dispatch>>,
    total: AtomicU64,
}

#[derive(Default)]
struct Dispatch {
    idle: Vec<crossbeam_channel::Sender<Job>>,
    backlog: VecDeque<Job>,
    /// Most requests that may wait; beyond, new ones get 503.
    backlog_limit: usize,
}

impl Pool {
    /// Starts `settings.threads` workers running jobs with `runner`.
    pub fn start(settings: PoolSettings, runner: Arc<dyn WsgiRunner>, log: Arc<ServerLog>) -> io::Result<Pool> {
        // Room for every stream of a few HTTP/2 clients (h2load's 50 x 10)
        // before new requests get 503.
        let backlog_limit = (settings.threads * 32).max(512);
        let dispatch = Arc::new(Mutex::new(Dispatch { backlog_limit, ..Dispatch::default() }));
        for index in 0..settings.threads.max(1) {
            let dispatch = dispatch.clone();
            let runner = runner.clone();
            let log = log.clone();
            let queue_timeout = settings.queue_timeout;
            std::thread::Builder::new().name(format!("wsgi-worker-{index}")).spawn(move || {
                let (mine, jobs) = crossbeam_channel::bounded::<Job>(1);
                loop {
                    let next = {
                        let mut dispatch = dispatch.lock().unwrap_or_else(|e| e.into_inner());
                        let queued = dispatch.backlog.pop_front();
                        if queued.is_none() {
                            dispatch.idle.push(mine.clone());
                        }
                        queued
                    };
                    let job = match next {
                        Some(job) => job,
                        None => match jobs.recv() {
                            Ok(job) => job,
                            Err(_) => return,
                        },
                    };
                    // A panic must not take a worker away for good.
                    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        run_job(job, index, &*runner, queue_timeout)
                    }));
                    if ran.is_err() {
                        log.log(LogLevel::Error, "a worker thread caught a panic while running a request");
                    }
                }
            })?;
        }
        Ok(Pool { dispatch, total: AtomicU64::new(0) })
    }

    /// Hands a job to the most recently idle worker, or queues it; `false`
    /// when the queue is full (or the workers are gone).
    pub fn submit(&self, job: Job) -> bool {
        self.total.fetch_add(1, Ordering::Relaxed);
        let mut dispatch = self.dispatch.lock().unwrap_or_else(|e| e.into_inner());
        match dispatch.idle.pop() {
            Some(worker) => worker.send(job).is_ok(),
            None if dispatch.backlog.len() >= dispatch.backlog_limit => false,
            None => {
                dispatch.backlog.push_back(job);
                true
            }
        }
    }

    /// Counts a request relayed to a daemon process without a worker.
    pub fn count_relayed(&self) {
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests submitted so far, and relayed without a worker.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

fn run_job(job: Job, worker: usize, runner: &dyn WsgiRunner, queue_timeout: Duration) {
    let Job { mut app, body, head, client, queued_at, started } = job;
    let socket_timeout = client.timeout;
    // Nobody waits for the answer any more (the client left, or was told
    // 504): running the application would only have side effects.
    if head.is_closed() || started.send(Instant::now()).is_err() {
        return;
    }
    let socket_timeout = if socket_timeout.is_zero() { Duration::from_secs(60) } else { socket_timeout };
    app.environ.set("mod_wsgi.thread_id", wsgi_core::EnvValue::Int(worker as i64 + 1));
    app.environ.set_str("mod_wsgi.script_start", wsgi_core::environ_build::now_us().to_string());
    let mut sink = ChannelSink {
        start: Some(head),
        head: None,
        held: Vec::new(),
        held_len: 0,
        chunks: None,
        write_timeout: socket_timeout,
        body_failed: Arc::new(AtomicBool::new(false)),
    };
    let body_failed = sink.body_failed.clone();
    let request_log = client.log.for_request(&client.peer, &client.request_id);
    let mut broken = false;
    let mut writer = ResponseWriter::new(&mut sink, app.head_only);
    if !queue_timeout.is_zero() && queued_at.elapsed() > queue_timeout {
        wsgi_core::ErrorLog::log(
            &request_log,
            LogLevel::Error,
            &format!("mod_wsgi: Queue timeout expired for WSGI script '{}'.", app.target.script.display()),
        );
        let _ = writer.respond_error(504);
    } else {
        let reader = match body {
            BodySource::Buffered(bytes) => {
                BodyReader { current: bytes, ahead: Vec::new().into_iter(), source: None, timeout: socket_timeout }
            }
            BodySource::Streamed { read_ahead, rest } => BodyReader {
                current: Bytes::new(),
                ahead: read_ahead.into_iter(),
                source: Some(rest),
                timeout: socket_timeout,
            },
        };
        let AppRequest { target, environ, body: kind, body_limit, .. } = *app;
        let outcome = if matches!(kind, BodyKind::Chunked) && body_limit > 0 {
            let mut limited = Watched { inner: LimitedReader::new(reader, body_limit), failed: body_failed };
            runner.run(&target, environ, &mut limited, &mut writer, &request_log)
        } else {
            let mut reader = Watched { inner: reader, failed: body_failed };
            runner.run(&target, environ, &mut reader, &mut writer, &request_log)
        };
        match outcome {
            RunOutcome::ClientGone => {
                wsgi_core::ErrorLog::log(&request_log, LogLevel::Debug, "client closed the connection mid-response");
            }
            // The head is out but the body is not complete: the connection
            // must break, so the client cannot take a cut-off body as whole.
            RunOutcome::Failed if writer.head_sent() => broken = true,
            _ => {}
        }
    }
    drop(writer);
    if broken {
        if let Some(chunks) = &sink.chunks {
            let _ = chunks.try_send(Err(io::Error::other("the application failed mid-response")));
        }
    }
}
