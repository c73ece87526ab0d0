//! The daemon side: one daemon process serving the protocol on the group's
//! listening socket with a fixed number of request threads.
//!
//! The request threads take turns as leader: the leader waits on one epoll
//! set holding the listening socket and the idle connections, serves the
//! first that is ready itself, and leaves the others it was told of to the
//! next leaders. A connection is armed once per request (`EPOLLONESHOT`),
//! so it stays in the set while it is served, and its request thread arms
//! it again when done. Idle connections (which front ends keep for reuse)
//! therefore never hold a request thread. Queue, request and inactivity
//! timeouts, and a drain on SIGTERM, are kept here too.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use wsgi_core::environ_build::now_us;
use wsgi_core::{EnvValue, ErrorLog, LogLevel, ResponseSink, ResponseWriter, RunOutcome, WsgiRunner};

use crate::control::ControlPipe;
use crate::protocol::{self, Frame, ResponseStart};
use crate::sys;

/// How a daemon process serves.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Request threads.
    pub threads: usize,
    /// Ask to be replaced after this many requests (0: never).
    pub maximum_requests: u64,
    /// Ask to be replaced after this long without a request (zero: never).
    pub inactivity_timeout: Duration,
    /// `restart-interval=`: ask to be replaced after running this long,
    /// with the shutdown reason `restart_interval` (zero: never).
    pub restart_interval: Duration,
    /// A request waiting longer than this for a thread gets 504 (zero: no
    /// limit).
    pub queue_timeout: Duration,
    /// A request running longer than this gets 504 and the process is
    /// replaced (zero: no limit).
    pub request_timeout: Duration,
    /// Reads and writes on a connection in the middle of a request.
    pub socket_timeout: Duration,
    /// How long in-flight requests may take to finish once the process is
    /// told to stop.
    pub graceful_timeout: Duration,
    /// The interpreter not able to run for this long (a thread holding its
    /// lock forever) ends the process at once (zero: not watched).
    pub deadlock_timeout: Duration,
    /// A process whose WSGI script has failed to load and never loaded
    /// for this long since it started asks to be replaced (zero: never).
    pub startup_timeout: Duration,
    /// `stack-size=`: the request threads' stack, in bytes (`None`: the
    /// system's default).
    pub stack_size: Option<usize>,
    /// `eviction-timeout=`: in place of the graceful timeout when the
    /// process is told to go by SIGUSR1 (zero: the graceful timeout).
    pub eviction_timeout: Duration,
    /// `interrupt-timeout=` (mod_wsgi 6): a request past the request
    /// timeout first gets `mod_wsgi.RequestTimeout` raised in its thread,
    /// and this long to unwind, before the process is replaced (zero: it
    /// is replaced at once).
    pub interrupt_timeout: Duration,
    /// When the graceful timeout runs out with requests still running:
    /// `Some(shutdown_timeout)` ends the process there, after the runner's
    /// stop (bounded by it), rather than wait for them; `None` waits.
    pub exit_after_graceful_timeout: Option<Duration>,
}

impl WorkerOptions {
    /// `threads` request threads and no limits: no timeouts, no
    /// recycling; reads and writes wait up to a minute, a stop up to 5 s.
    /// What an embedder, a test or a benchmark starts from.
    pub fn unlimited(threads: usize) -> WorkerOptions {
        WorkerOptions {
            threads,
            maximum_requests: 0,
            inactivity_timeout: Duration::ZERO,
            restart_interval: Duration::ZERO,
            queue_timeout: Duration::ZERO,
            request_timeout: Duration::ZERO,
            socket_timeout: Duration::from_secs(60),
            graceful_timeout: Duration::from_secs(5),
            deadlock_timeout: Duration::ZERO,
            startup_timeout: Duration::ZERO,
            stack_size: None,
            eviction_timeout: Duration::ZERO,
            interrupt_timeout: Duration::ZERO,
            exit_after_graceful_timeout: None,
        }
    }
}

/// Why [`serve`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServeEnd {
    /// Told to stop; every request finished.
    Drained,
    /// Told to stop; requests were still running when the graceful
    /// timeout ran out.
    TimedOut,
}

/// Requests this process served.
static SERVED: AtomicU64 = AtomicU64::new(0);

struct Connection {
    reader: BufReader<UnixStream>,
    writer: FrameWriter,
    /// The handshake is still to be exchanged.
    fresh: bool,
    /// In the poller (from the end of its first request on).
    watched: bool,
}

struct Job {
    connection: Connection,
    ready_at: Instant,
}

/// What the request threads share.
struct Shared<'a> {
    runner: &'a dyn WsgiRunner,
    options: &'a WorkerOptions,
    log: &'a dyn ErrorLog,
    control: &'a ControlPipe,
    /// Set when the process must stop taking requests.
    draining: AtomicBool,
    /// Connections handed to request threads and not yet given back.
    in_progress: std::sync::atomic::AtomicUsize,
    /// Running requests: thread slot -> (start, the connection's writer,
    /// whether the head was sent).
    running: Vec<Mutex<Option<Running>>>,
    recycle_asked: AtomicBool,
    /// Why this process asked to be replaced (mod_wsgi's `shutdown_reason`
    /// names); empty until it does.
    recycle_reason: Mutex<&'static str>,
    /// The descriptor that says "stop" (a signal pipe in daemon processes).
    stop: RawFd,
    /// Requests to interrupt (their slot, and when they started), for the
    /// interrupter thread: taking an interpreter's lock may wait, which the
    /// clock thread must not.
    interrupts: Mutex<std::sync::mpsc::Sender<(usize, Instant)>>,
    /// When the last request started, in microseconds since `started`
    /// (atomic: every request sets it).
    last_request_us: AtomicU64,
    /// The modification time of each script when this process first ran it
    /// (microseconds since the epoch).
    script_times: Mutex<HashMap<std::path::PathBuf, Option<i64>>>,
    /// When serving started, whether a script has loaded since, and
    /// whether one failed to (startup-timeout).
    started: Instant,
    loaded: AtomicBool,
    load_failed: AtomicBool,
    /// The poller's state, held by the leading request thread.
    leader: Mutex<Leader>,
    /// What the leader waits on: the listening socket, the stop and wake
    /// descriptors and the idle connections (by descriptor).
    poller: sys::Epoll,
    /// Connections request threads gave back (and added to the poller),
    /// for the leader to take into its idle set.
    returned: Mutex<Vec<Connection>>,
    /// Wakes the leader while draining (a request ended).
    wake: Mutex<std::fs::File>,
    /// Set once serving is over: every thread then leaves. Apart from the
    /// leader's state, which the leader holds while it polls.
    end: EndSlot,
}

struct Running {
    started: Instant,
    writer: FrameWriter,
    head_sent: Arc<AtomicBool>,
    /// Already answered 504 by the timeout check.
    timed_out: bool,
    /// The request thread (`pthread_self`), for `interrupt-timeout`.
    thread: u64,
    /// The application group the request runs in.
    application_group: String,
    /// When `interrupt-timeout` sent it `mod_wsgi.RequestTimeout`.
    interrupted_at: Option<Instant>,
}

/// The poller's state, owned by whichever request thread leads.
struct Leader {
    /// Idle connections by descriptor, each watched by the poller.
    idle: HashMap<RawFd, Connection>,
    /// Tokens the poller reported and no leader has acted on yet: a
    /// connection is reported once and then ignored by the poller until it
    /// is given back, so none may be dropped.
    reported: std::collections::VecDeque<u64>,
    wake: std::fs::File,
    drain_deadline: Option<Instant>,
}

/// Poller tokens of the descriptors that are not connections (whose tokens
/// are their descriptors, never negative).
const WAKE_TOKEN: u64 = u64::MAX;
const STOP_TOKEN: u64 = u64::MAX - 1;
const LISTEN_TOKEN: u64 = u64::MAX - 2;

/// Serves until told to drain (by a byte on `stop`, e.g. from a signal
/// pipe), then finishes in-flight requests and returns.
///
/// The request threads take turns leading (leader/followers): the leader
/// polls the listening socket and the idle connections, takes the first
/// that is ready, hands leadership on and serves the request itself, so a
/// request is never passed between threads.
pub fn serve(
    listener: &UnixListener,
    runner: &dyn WsgiRunner,
    options: &WorkerOptions,
    control: &ControlPipe,
    stop: RawFd,
    log: &dyn ErrorLog,
) -> (ServeEnd, &'static str) {
    let Ok((wake_read, wake_write)) = sys::pipe() else {
        log.log(LogLevel::Error, "mod_wsgi: daemon process cannot create its wake-up pipe");
        return (ServeEnd::Drained, "");
    };
    let _ = sys::set_nonblocking(wake_read.as_raw_fd(), true);
    let _ = sys::set_nonblocking(wake_write.as_raw_fd(), true);
    let _ = sys::set_nonblocking(listener.as_raw_fd(), true);
    let poller = match sys::Epoll::new().and_then(|poller| {
        poller.add(wake_read.as_raw_fd(), WAKE_TOKEN)?;
        // Once: the stop descriptor stays readable.
        poller.add_once(stop, STOP_TOKEN)?;
        poller.add(listener.as_raw_fd(), LISTEN_TOKEN)?;
        Ok(poller)
    }) {
        Ok(poller) => poller,
        Err(e) => {
            log.log(LogLevel::Error, &format!("mod_wsgi: daemon process cannot create its poller: {e}"));
            return (ServeEnd::Drained, "");
        }
    };
    let (interrupt_sender, interrupt_receiver) = std::sync::mpsc::channel::<(usize, Instant)>();
    let shared = Shared {
        runner,
        options,
        log,
        control,
        draining: AtomicBool::new(false),
        in_progress: std::sync::atomic::AtomicUsize::new(0),
        // One lock a thread slot: a request thread only ever contends
        // with the clock watcher.
        running: (0..options.threads.max(1)).map(|_| Mutex::new(None)).collect(),
        recycle_asked: AtomicBool::new(false),
        recycle_reason: Mutex::new(""),
        stop,
        interrupts: Mutex::new(interrupt_sender),
        last_request_us: AtomicU64::new(0),
        script_times: Mutex::new(HashMap::new()),
        started: Instant::now(),
        loaded: AtomicBool::new(false),
        load_failed: AtomicBool::new(false),
        leader: Mutex::new(Leader {
            idle: HashMap::new(),
            reported: std::collections::VecDeque::new(),
            wake: std::fs::File::from(wake_read),
            drain_deadline: None,
        }),
        poller,
        end: EndSlot::default(),
        returned: Mutex::new(Vec::new()),
        wake: Mutex::new(std::fs::File::from(wake_write)),
    };
    // When the interpreter last showed it could run (deadlock-timeout).
    let alive = std::sync::atomic::AtomicU64::new(now_us());
    std::thread::scope(|scope| {
        if !options.interrupt_timeout.is_zero() {
            let shared = &shared;
            std::thread::Builder::new()
                .name("wsgi-interrupter".into())
                .spawn_scoped(scope, move || {
                    while shared.end.get().is_none() {
                        let Ok((slot, started)) = interrupt_receiver.recv_timeout(Duration::from_millis(200)) else {
                            continue;
                        };
                        // Only if that request still runs (the slot's lock is
                        // not held while the interpreter's is taken).
                        let target = shared.running[slot].lock().ok().and_then(|running| {
                            let running = running.as_ref()?;
                            (running.started == started).then(|| (running.thread, running.application_group.clone()))
                        });
                        if let Some((thread, group)) = target {
                            shared.runner.interrupt(thread, &group);
                        }
                    }
                })
                .expect("spawn the interrupter");
        }
        for slot in 0..options.threads.max(1) {
            let shared = &shared;
            let mut builder = std::thread::Builder::new().name(format!("wsgi-request-{slot}"));
            if let Some(size) = options.stack_size {
                builder = builder.stack_size(size);
            }
            builder
                .spawn_scoped(scope, move || request_thread(slot, shared, listener))
                .expect("spawn a request thread");
        }
        if !options.deadlock_timeout.is_zero() {
            let (shared, alive) = (&shared, &alive);
            std::thread::Builder::new()
                .name("wsgi-deadlock-probe".into())
                .spawn_scoped(scope, move || {
                    while shared.end.get().is_none() {
                        shared.runner.probe();
                        alive.store(now_us(), Ordering::Relaxed);
                        std::thread::sleep(Duration::from_secs(1));
                    }
                })
                .expect("spawn the deadlock probe");
        }
        control.say(crate::control::READY);
        // This thread watches the clock: request and inactivity timeouts,
        // and the interpreter's liveness; and it tells the manager that
        // the process runs (its liveness check).
        let mut heartbeat = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(100));
            if heartbeat.elapsed() >= crate::control::HEARTBEAT_INTERVAL {
                heartbeat = Instant::now();
                control.say(crate::control::HEARTBEAT);
            }
            if let Some(end) = shared.end.get() {
                if let (ServeEnd::TimedOut, Some(shutdown_timeout)) = (end, options.exit_after_graceful_timeout) {
                    // Returning would wait for the requests still running.
                    log.log(
                        LogLevel::Warn,
                        &format!(
                            "mod_wsgi (pid={}): Requests still running after the graceful timeout; the process exits.",
                            std::process::id()
                        ),
                    );
                    shared.runner.stop(shared.recycle_reason(), shutdown_timeout);
                    sys::exit_now(0);
                }
                return (end, shared.recycle_reason());
            }
            check_timeouts(&shared);
            let stalled_us = now_us().saturating_sub(alive.load(Ordering::Relaxed));
            if !options.deadlock_timeout.is_zero() && stalled_us > options.deadlock_timeout.as_micros() as u64 {
                log.log(
                    LogLevel::Error,
                    &format!(
                        "mod_wsgi (pid={}): Python interpreter appears to have deadlocked (no progress for {:?}); the process is restarted.",
                        std::process::id(),
                        options.deadlock_timeout
                    ),
                );
                control.say(crate::control::RECYCLE);
                // No request can finish while the interpreter is stuck, so
                // none more is taken. The shutdown code runs if the
                // interpreter answers again within shutdown-timeout (as
                // mod_wsgi tries it too); else that timeout ends the process.
                finish(&shared, ServeEnd::TimedOut);
                if let Some(shutdown_timeout) = options.exit_after_graceful_timeout.filter(|t| !t.is_zero()) {
                    shared.runner.stop("deadlock_timeout", shutdown_timeout);
                }
                sys::exit_now(1);
            }
        }
    })
}

/// A request thread: lead, take a ready connection, serve it, repeat.
fn request_thread(slot: usize, shared: &Shared<'_>, listener: &UnixListener) {
    loop {
        let job = {
            let Ok(mut leader) = shared.leader.lock() else { return };
            match lead(&mut leader, shared, listener) {
                Some(job) => job,
                None => return,
            }
        };
        let mut connection = job.connection;
        let keep = serve_connection(slot, shared, &mut connection, job.ready_at);
        if keep && !shared.draining.load(Ordering::Relaxed) {
            connection.fresh = false;
            let fd = connection.reader.get_ref().as_raw_fd();
            // Watched from here on, once a request: its next request wakes
            // the leader's wait directly, and the leader need not take it
            // out of the set when it is ready. Armed under the lock, so the
            // leader never sees it ready before it can find it.
            if let Ok(mut returned) = shared.returned.lock() {
                let armed = if connection.watched {
                    shared.poller.rearm(fd, fd as u64)
                } else {
                    shared.poller.add_once(fd, fd as u64)
                };
                if armed.is_ok() {
                    connection.watched = true;
                    returned.push(connection);
                }
            }
        }
        // Given back before it stops counting as busy, so a draining leader
        // never ends with a request still on its way.
        shared.in_progress.fetch_sub(1, Ordering::SeqCst);
        if shared.draining.load(Ordering::Relaxed) {
            if let Ok(mut wake) = shared.wake.lock() {
                let _ = wake.write(&[1]);
            }
        }
    }
}

/// The signal that made the stop descriptor readable (a signal pipe's
/// byte), if it is one.
fn stop_signal(stop: RawFd) -> Option<i32> {
    sys::read_byte(stop).map(i32::from)
}

impl Shared<'_> {
    /// Asks the manager for a successor once: whether this call is the
    /// one that asks, `reason` being recorded for the shutdown.
    fn ask_recycle(&self, reason: &'static str) -> bool {
        if self.recycle_asked.swap(true, Ordering::Relaxed) {
            return false;
        }
        if let Ok(mut recorded) = self.recycle_reason.lock() {
            *recorded = reason;
        }
        true
    }

    /// Why the process asked to be replaced, or `""`.
    fn recycle_reason(&self) -> &'static str {
        self.recycle_reason.lock().map(|r| *r).unwrap_or("")
    }
}

/// Ends serving: every thread leaves once it is free.
fn finish(shared: &Shared<'_>, end: ServeEnd) {
    shared.end.set_once(end);
}

/// How serving ended, once it has: read by every thread on every turn,
/// so an atomic rather than a lock.
#[derive(Default)]
struct EndSlot(std::sync::atomic::AtomicU8);

impl EndSlot {
    const SERVING: u8 = 0;
    const DRAINED: u8 = 1;
    const TIMED_OUT: u8 = 2;

    fn get(&self) -> Option<ServeEnd> {
        match self.0.load(Ordering::SeqCst) {
            Self::DRAINED => Some(ServeEnd::Drained),
            Self::TIMED_OUT => Some(ServeEnd::TimedOut),
            _ => None,
        }
    }

    /// Records `end` unless an end is already recorded.
    fn set_once(&self, end: ServeEnd) {
        let value = match end {
            ServeEnd::Drained => Self::DRAINED,
            ServeEnd::TimedOut => Self::TIMED_OUT,
        };
        let _ = self.0.compare_exchange(Self::SERVING, value, Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// Leads until a connection is ready (`Some`) or serving is over (`None`).
fn lead(leader: &mut Leader, shared: &Shared<'_>, listener: &UnixListener) -> Option<Job> {
    let options = shared.options;
    let mut ready = Vec::new();
    loop {
        if shared.end.get().is_some() {
            return None;
        }
        take_returned(leader, shared);
        if let Some(deadline) = leader.drain_deadline {
            // Draining: idle connections are closed (front ends reconnect
            // elsewhere); done when no request runs.
            for (fd, _) in leader.idle.drain() {
                let _ = shared.poller.delete(fd);
            }
            if shared.in_progress.load(Ordering::SeqCst) == 0 {
                finish(shared, ServeEnd::Drained);
                return None;
            }
            if Instant::now() >= deadline {
                finish(shared, ServeEnd::TimedOut);
                return None;
            }
        }
        let draining = leader.drain_deadline.is_some();
        // Under load one wait reports several connections: the leaders
        // after this one take them without waiting again.
        let Some(token) = leader.reported.pop_front() else {
            if let Err(e) = shared.poller.wait(&mut ready, Some(Duration::from_millis(200))) {
                shared.log.log(LogLevel::Error, &format!("mod_wsgi: daemon poll failed: {e}"));
                finish(shared, ServeEnd::Drained);
                return None;
            }
            leader.reported.extend(&ready);
            continue;
        };
        match token {
            WAKE_TOKEN => {
                let mut buf = [0u8; 64];
                let _ = leader.wake.read(&mut buf);
            }
            STOP_TOKEN => {
                if !draining {
                    shared.draining.store(true, Ordering::Relaxed);
                    let _ = shared.poller.delete(listener.as_raw_fd());
                    let grace = match stop_signal(shared.stop) {
                        // SIGUSR1: the process is evicted (mod_wsgi's
                        // graceful signal), with its own timeout if given.
                        Some(libc::SIGUSR1) if options.eviction_timeout.is_zero() => {
                            shared.ask_recycle("graceful_signal");
                            options.graceful_timeout
                        }
                        Some(libc::SIGUSR1) => {
                            shared.ask_recycle("eviction_signal");
                            options.eviction_timeout
                        }
                        // cpu-time-limit reached.
                        Some(libc::SIGXCPU) => {
                            shared.ask_recycle("cpu_time_limit");
                            options.graceful_timeout
                        }
                        _ => options.graceful_timeout,
                    };
                    leader.drain_deadline = Some(Instant::now() + grace.max(Duration::from_millis(10)));
                }
            }
            LISTEN_TOKEN => {
                if draining {
                    continue;
                }
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        // Once per connection (the two halves share the
                        // socket): a front end stalled mid-request cannot
                        // hold a thread.
                        let timeout = (!options.socket_timeout.is_zero()).then_some(options.socket_timeout);
                        let _ = stream.set_read_timeout(timeout);
                        let _ = stream.set_write_timeout(timeout);
                        let Ok(write_half) = stream.try_clone() else { continue };
                        let connection = Connection {
                            reader: BufReader::with_capacity(64 * 1024, stream),
                            writer: Arc::new(Mutex::new(BufWriter::with_capacity(
                                64 * 1024,
                                ResponseStream::new(write_half),
                            ))),
                            fresh: true,
                            watched: false,
                        };
                        shared.in_progress.fetch_add(1, Ordering::SeqCst);
                        return Some(Job { connection, ready_at: Instant::now() });
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => shared.log.log(LogLevel::Warn, &format!("mod_wsgi: daemon accept failed: {e}")),
                }
            }
            token => {
                let fd = token as RawFd;
                if !leader.idle.contains_key(&fd) {
                    take_returned(leader, shared);
                }
                // Gone if a drain closed it meanwhile. Still in the poller,
                // but reported only once until given back.
                let Some(connection) = leader.idle.remove(&fd) else { continue };
                shared.in_progress.fetch_add(1, Ordering::SeqCst);
                return Some(Job { connection, ready_at: Instant::now() });
            }
        }
    }
}

/// Takes the connections request threads gave back into the idle set.
fn take_returned(leader: &mut Leader, shared: &Shared<'_>) {
    if let Ok(mut returned) = shared.returned.lock() {
        for connection in returned.drain(..) {
            leader.idle.insert(connection.reader.get_ref().as_raw_fd(), connection);
        }
    }
}

/// Request timeouts and inactivity. A request past the request timeout
/// gets 504 (if its head has not gone out) and its connection is cut; the
/// process asks to be replaced, and drains once its successor is ready.
fn check_timeouts(shared: &Shared<'_>) {
    let options = shared.options;
    if !options.request_timeout.is_zero() {
        for (slot_index, slot) in shared.running.iter().enumerate() {
            let Ok(mut slot) = slot.lock() else { continue };
            let Some(running) = slot.as_mut() else { continue };
            if running.started.elapsed() > options.request_timeout && !running.timed_out {
                // interrupt-timeout: first the request's own thread gets
                // mod_wsgi.RequestTimeout; only if the request is still
                // there after the grace window is the process replaced.
                if !options.interrupt_timeout.is_zero() {
                    match running.interrupted_at {
                        None => {
                            running.interrupted_at = Some(Instant::now());
                            shared.log.log(
                                LogLevel::Error,
                                &format!(
                                    "mod_wsgi (pid={}): Daemon process request time limit of {:?} exceeded; interrupting the request with mod_wsgi.RequestTimeout.",
                                    std::process::id(),
                                    options.request_timeout
                                ),
                            );
                            if let Ok(interrupts) = shared.interrupts.lock() {
                                let _ = interrupts.send((slot_index, running.started));
                            }
                            continue;
                        }
                        Some(at) if at.elapsed() < options.interrupt_timeout => continue,
                        Some(_) => {}
                    }
                }
                running.timed_out = true;
                shared.log.log(
                    LogLevel::Error,
                    &format!(
                        "mod_wsgi (pid={}): Daemon process request time limit of {:?} exceeded; the process will be replaced.",
                        std::process::id(),
                        options.request_timeout
                    ),
                );
                if !running.head_sent.load(Ordering::Relaxed) {
                    if let Ok(mut writer) = running.writer.lock() {
                        let _ = protocol::write_frame(&mut *writer, &Frame::Error("504 request timed out".into()));
                        let _ = writer.flush();
                        let _ = writer.get_ref().stream.shutdown(std::net::Shutdown::Both);
                    }
                }
                if shared.ask_recycle("request_timeout") {
                    shared.control.say(crate::control::RECYCLE);
                }
            }
        }
    }
    if !options.startup_timeout.is_zero()
        && shared.load_failed.load(Ordering::Relaxed)
        && !shared.loaded.load(Ordering::Relaxed)
        && shared.started.elapsed() > options.startup_timeout
        && shared.ask_recycle("startup_timeout")
    {
        shared.log.log(
            LogLevel::Error,
            &format!(
                "mod_wsgi (pid={}): The WSGI script has not loaded within the startup timeout of {:?}; the process will be replaced.",
                std::process::id(),
                options.startup_timeout
            ),
        );
        shared.control.say(crate::control::RECYCLE);
    }
    if !options.restart_interval.is_zero()
        && shared.started.elapsed() > options.restart_interval
        && shared.ask_recycle("restart_interval")
    {
        shared.log.log(
            LogLevel::Info,
            &format!(
                "mod_wsgi (pid={}): Process has reached its restart interval of {:?}; it will be replaced.",
                std::process::id(),
                options.restart_interval
            ),
        );
        shared.control.say(crate::control::RECYCLE);
    }
    if !options.inactivity_timeout.is_zero() && !shared.recycle_asked.load(Ordering::Relaxed) {
        let idle_for = shared
            .started
            .elapsed()
            .saturating_sub(Duration::from_micros(shared.last_request_us.load(Ordering::Relaxed)));
        let quiet = shared.running.iter().all(|slot| slot.lock().map(|r| r.is_none()).unwrap_or(false));
        if quiet && idle_for > options.inactivity_timeout && shared.ask_recycle("inactivity_timeout") {
            shared.control.say(crate::control::RECYCLE);
        }
    }
}

/// Serves what arrived on a connection; whether to keep it.
fn serve_connection(slot: usize, shared: &Shared<'_>, connection: &mut Connection, ready_at: Instant) -> bool {
    let options = shared.options;
    if connection.fresh {
        let sent = {
            let Ok(mut writer) = connection.writer.lock() else { return false };
            protocol::write_handshake(&mut *writer).and_then(|()| writer.flush())
        };
        if sent.is_err() {
            return false;
        }
        if let Err(e) = protocol::read_handshake(&mut connection.reader) {
            shared.log.log(LogLevel::Error, &format!("mod_wsgi: daemon connection refused: {e}"));
            return false;
        }
        // The front end sends its request as soon as it has the handshake:
        // wait for it here, so the connection counts as busy throughout.
        connection.fresh = false;
    }
    let mut start = match protocol::read_frame_buffered(&mut connection.reader) {
        Ok(Some(Frame::RequestStart(start))) => start,
        Ok(Some(Frame::Ping)) => {
            let Ok(mut writer) = connection.writer.lock() else { return false };
            return protocol::write_frame(&mut *writer, &Frame::Pong).and_then(|()| Ok(writer.flush()?)).is_ok();
        }
        Ok(None) => return false,
        Ok(Some(other)) => {
            shared.log.log(LogLevel::Error, &format!("mod_wsgi: daemon expected a request, got {}", other.kind()));
            return false;
        }
        Err(e) => {
            shared.log.log(LogLevel::Debug, &format!("mod_wsgi: daemon connection ended: {e}"));
            return false;
        }
    };
    // Queued since the front end took the request (mod_wsgi.queue_start),
    // or at least since the connection became readable here.
    let queued_us = start
        .environ
        .get_str("mod_wsgi.queue_start")
        .and_then(|t| t.parse::<u64>().ok())
        .map(|t| now_us().saturating_sub(t))
        .unwrap_or(0)
        .max(ready_at.elapsed().as_micros() as u64);
    if !options.queue_timeout.is_zero() && queued_us > options.queue_timeout.as_micros() as u64 {
        shared.log.log(
            LogLevel::Error,
            &format!("mod_wsgi (pid={}): Queue timeout expired for WSGI daemon process.", std::process::id()),
        );
        let Ok(mut writer) = connection.writer.lock() else { return false };
        let _ = protocol::write_frame(&mut *writer, &Frame::Error("504 queue timeout expired".into()));
        let _ = writer.flush();
        return false;
    }

    if start.target.reload_on_change && !script_changed(shared, &start.target.script, start.target.script_mtime_us) {
        // Unchanged since this process first ran it: the interpreter need
        // not look at the file again.
        start.target.reload_on_change = false;
    }
    let served = SERVED.fetch_add(1, Ordering::Relaxed);
    // WSGIIgnoreActivity On (health checks, monitoring): the request does
    // not count as activity for inactivity-timeout.
    if start.environ.get_str("mod_wsgi.ignore_activity") != Some("1") {
        shared.last_request_us.store(shared.started.elapsed().as_micros() as u64, Ordering::Relaxed);
    }
    let mut environ = start.environ;
    // Pushed rather than set (no search of the environ): a front end never
    // sends these, and were one to, the last value would win in the dict
    // all the same.
    environ.entries.extend([
        (Cow::Borrowed("mod_wsgi.total_requests"), EnvValue::Int(served as i64)),
        (Cow::Borrowed("mod_wsgi.thread_id"), EnvValue::Int(slot as i64 + 1)),
        (Cow::Borrowed("mod_wsgi.daemon_start"), EnvValue::Str(Cow::Owned(now_us().to_string()))),
    ]);
    let head_sent = Arc::new(AtomicBool::new(false));
    if let Ok(mut running) = shared.running[slot].lock() {
        *running = Some(Running {
            started: Instant::now(),
            writer: connection.writer.clone(),
            head_sent: head_sent.clone(),
            timed_out: false,
            thread: sys::current_thread(),
            application_group: start.target.application_group.clone(),
            interrupted_at: None,
        });
    }
    let mut body =
        FrameBody { reader: &mut connection.reader, pending: Bytes::new(), done: !start.has_body, failed: false };
    let mut sink = FrameSink {
        writer: connection.writer.clone(),
        head_sent: head_sent.clone(),
        sendfile: environ.get_str("mod_wsgi.enable_sendfile") == Some("1"),
        failed: false,
        ended: false,
    };
    let head_only = environ.get_str("REQUEST_METHOD") == Some("HEAD");
    let mut writer = ResponseWriter::new(&mut sink, head_only);
    let outcome = shared.runner.run(&start.target, environ, &mut body, &mut writer, shared.log);
    drop(writer);
    // Keep the stream in step: discard a body the application did not read.
    let body_ok = body.finish();
    // A response cut short by a failure ends with an Error frame, so the
    // front end breaks its client connection rather than pass it as whole.
    match outcome {
        RunOutcome::NotLoaded => shared.load_failed.store(true, Ordering::Relaxed),
        _ => shared.loaded.store(true, Ordering::Relaxed),
    }
    // Nor does a response end that never started: a body that broke off
    // before the application answered gets an Error frame too.
    let last = if matches!(outcome, RunOutcome::Failed | RunOutcome::NotLoaded) && !sink.ended {
        Frame::Error("500 the application failed mid-response".into())
    } else if !head_sent.load(Ordering::Relaxed) {
        let why = if body_ok { "500 the application sent no response" } else { "400 the request body broke off" };
        Frame::Error(why.into())
    } else {
        Frame::ResponseEnd
    };
    let ended = {
        let Ok(mut writer) = connection.writer.lock() else { return false };
        !sink.failed && (sink.ended || protocol::write_frame(&mut *writer, &last).is_ok()) && writer.flush().is_ok()
    };
    if let Ok(mut running) = shared.running[slot].lock() {
        *running = None;
    }
    let maximum = options.maximum_requests;
    if maximum > 0 && served + 1 >= maximum && shared.ask_recycle("maximum_requests") {
        shared.control.say(crate::control::RECYCLE);
    }
    ended && body_ok
}

/// WSGIScriptReloading in daemon mode: a script changed since this process
/// first ran it makes the process ask to be replaced (this request is
/// still served, with the script reloaded), so the whole application
/// starts afresh, as mod_wsgi restarts a daemon process. Whether it
/// changed. `known_mtime_us`: the modification time the front end sent,
/// read when it mapped the request (Apache's `r->finfo`); without one the
/// file's status is read here.
fn script_changed(shared: &Shared<'_>, script: &std::path::Path, known_mtime_us: Option<i64>) -> bool {
    let modified = known_mtime_us.or_else(|| wsgi_core::app::file_mtime_us(script));
    let Ok(mut times) = shared.script_times.lock() else { return true };
    let first = match times.get(script) {
        Some(first) => *first,
        None => *times.entry(script.to_path_buf()).or_insert(modified),
    };
    if first == modified {
        return false;
    }
    if shared.ask_recycle("script_reload") {
        shared.log.log(
            LogLevel::Info,
            &format!(
                "mod_wsgi (pid={}): WSGI script '{}' changed; the daemon process will be replaced.",
                std::process::id(),
                script.display()
            ),
        );
        shared.control.say(crate::control::RECYCLE);
    }
    true
}

/// `wsgi.input` in the daemon: the request body frames.
struct FrameBody<'a> {
    reader: &'a mut BufReader<UnixStream>,
    /// The unread end of the last chunk.
    pending: Bytes,
    done: bool,
    failed: bool,
}

impl FrameBody<'_> {
    /// Reads and discards the rest of the body; whether the connection is
    /// still in step.
    fn finish(&mut self) -> bool {
        let mut buf = [0u8; 16 * 1024];
        while !self.done && !self.failed {
            if self.read(&mut buf).is_err() {
                return false;
            }
        }
        !self.failed
    }
}

impl Read for FrameBody<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.pending.is_empty() {
            if self.done {
                return Ok(0);
            }
            match protocol::read_frame_buffered(self.reader) {
                Ok(Some(Frame::BodyChunk(data))) => self.pending = data,
                Ok(Some(Frame::BodyEnd)) => self.done = true,
                Ok(_) => {
                    self.failed = true;
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "unexpected frame in request body"));
                }
                Err(e) => {
                    self.failed = true;
                    return Err(io::Error::new(io::ErrorKind::ConnectionAborted, e.to_string()));
                }
            }
        }
        let n = self.pending.len().min(buf.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending = self.pending.slice(n..);
        Ok(n)
    }
}

/// The write half of a connection, buffered, shared with the timeout
/// check (which answers 504 on it).
type FrameWriter = Arc<Mutex<BufWriter<ResponseStream>>>;

/// The write half of a connection's socket, which can be written without
/// waiting (for [`flush_without_waiting`]).
struct ResponseStream {
    stream: UnixStream,
    /// Writes wait for room in the socket (the default).
    wait: bool,
}

impl ResponseStream {
    fn new(stream: UnixStream) -> ResponseStream {
        ResponseStream { stream, wait: true }
    }
}

impl Write for ResponseStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.wait {
            self.stream.write(buf)
        } else {
            sys::send_without_waiting(self.stream.as_raw_fd(), buf)
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes out what `writer` buffers as far as the socket takes it now;
/// `true` when nothing is left. What the socket did not take stays
/// buffered for a flush that waits.
fn flush_without_waiting(writer: &mut BufWriter<ResponseStream>) -> bool {
    if writer.buffer().is_empty() {
        return true;
    }
    writer.get_mut().wait = false;
    let flushed = writer.flush().is_ok();
    writer.get_mut().wait = true;
    flushed
}

/// The daemon's response sink: frames on the connection.
struct FrameSink {
    writer: FrameWriter,
    head_sent: Arc<AtomicBool>,
    /// `WSGIEnableSendfile On` for this request: files go to the front end
    /// with `sendfile(2)`.
    sendfile: bool,
    failed: bool,
    /// The response already ended with an Error frame.
    ended: bool,
}

impl FrameSink {
    fn send(&mut self, frame: &Frame) -> io::Result<()> {
        let mut writer = self.writer.lock().map_err(|_| io::Error::other("connection lock poisoned"))?;
        protocol::write_frame(&mut *writer, frame).map_err(|e| {
            self.failed = true;
            io::Error::new(io::ErrorKind::BrokenPipe, e.to_string())
        })
    }
}

impl ResponseSink for FrameSink {
    fn send_head(&mut self, status: u16, reason: &str, headers: &[(String, String)]) -> io::Result<()> {
        self.head_sent.store(true, Ordering::Relaxed);
        self.send(&Frame::ResponseStart(ResponseStart {
            status,
            reason: reason.to_string(),
            headers: headers.to_vec(),
        }))
    }

    fn send_body(&mut self, chunk: &[u8]) -> io::Result<()> {
        let mut writer = self.writer.lock().map_err(|_| io::Error::other("connection lock poisoned"))?;
        for piece in chunk.chunks(1 << 20) {
            protocol::write_data_chunk(&mut *writer, piece, false).map_err(|e| {
                self.failed = true;
                io::Error::new(io::ErrorKind::BrokenPipe, e.to_string())
            })?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut writer = self.writer.lock().map_err(|_| io::Error::other("connection lock poisoned"))?;
        writer.flush().inspect_err(|_| self.failed = true)
    }

    fn send_file(&mut self, file: &std::fs::File, offset: u64, len: u64) -> io::Result<u64> {
        if !self.sendfile {
            return wsgi_core::response::read_and_send(self, file, offset, len);
        }
        // The frame header says how much follows; the file's bytes then go
        // from the kernel's page cache to the socket.
        let len = len.min(file.metadata()?.len().saturating_sub(offset));
        let mut writer = self.writer.lock().map_err(|_| io::Error::other("connection lock poisoned"))?;
        let mut sent = 0;
        while sent < len {
            let piece = (len - sent).min(1 << 20);
            let result = protocol::write_response_chunk_header(&mut *writer, piece as usize)
                .map_err(|e| io::Error::new(io::ErrorKind::BrokenPipe, e.to_string()))
                .and_then(|()| writer.flush())
                .and_then(|()| {
                    sys::send_file_to(writer.get_ref().stream.as_raw_fd(), file.as_raw_fd(), offset + sent, piece)
                })
                .and_then(
                    |n| if n == piece { Ok(n) } else { Err(io::Error::other("the file shrank while it was sent")) },
                );
            match result {
                Ok(n) => sent += n,
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
            }
        }
        Ok(sent)
    }

    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn may_block(&self, len: usize) -> bool {
        let Ok(mut writer) = self.writer.lock() else { return true };
        if len == 0 {
            // A flush: tried at once without waiting, so the interpreter
            // keeps its lock when the socket takes it all, as it nearly
            // always does. Handing the lock to another thread and queueing
            // to take it back cost more than the request itself when every
            // thread was busy. Only a front end that does not read makes
            // the flush wait, without the lock.
            return !flush_without_waiting(&mut writer);
        }
        // A chunk that fits in the connection's write buffer does not touch
        // the socket; one that makes the buffer write out may wait for a
        // front end that does not read.
        writer.capacity() - writer.buffer().len() < len.saturating_add(protocol::HEADER_LEN)
    }

    fn error_response(&mut self, status: u16) -> io::Result<bool> {
        // The front end produces the error page (Apache's, with its
        // ErrorDocument): send only the status.
        self.send(&Frame::Error(format!("{status} the application failed")))?;
        self.head_sent.store(true, Ordering::Relaxed);
        self.ended = true;
        Ok(true)
    }
}
