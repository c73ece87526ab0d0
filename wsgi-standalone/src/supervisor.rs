//! `--processes N`: a supervisor process that owns the listening sockets
//! and runs N serving processes, each with its own Python.
//!
//! The children inherit the listening sockets (one accept queue, shared),
//! so a child that stops accepting leaves its share of pending connections
//! to the others instead of dropping them. Each child reports on a control
//! pipe: `ready` once it serves, `recycle` when it reached
//! `--maximum-requests`. A recycling child keeps serving until its
//! replacement is ready; only then is it told to stop (SIGTERM: it finishes
//! its requests in flight). A child that dies is restarted.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use wsgi_core::LogLevel;

use crate::logging::ServerLog;

/// The environment variable naming the inherited listening descriptors.
pub const LISTEN_FDS_ENV: &str = "WSGI_RS_LISTEN_FDS";
/// The environment variable naming the inherited control-pipe descriptor.
pub const CONTROL_FD_ENV: &str = "WSGI_RS_CONTROL_FD";

/// What a child says on its control pipe, or that it exited.
enum Event {
    Ready(u32),
    Recycle(u32),
    Exited(u32, Option<i32>),
    Terminate,
}

struct Running {
    child: Child,
    /// The pid this one replaces, once it is ready.
    replaces: Option<u32>,
    retiring: bool,
    /// Whether it said `ready` (got as far as serving).
    ready: bool,
}

/// Processes that die before serving, in a row, before the supervisor
/// gives up (a bad python-home, a script that cannot import, ...).
const FAILED_STARTS_LIMIT: u32 = 5;

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Starts one child: this binary with the same arguments, the listening
/// sockets and a control pipe inherited.
fn spawn(listen_fds: &[RawFd], events: &mpsc::Sender<Event>) -> std::io::Result<Child> {
    let (read, write) = pipe()?;
    let mut inherit: Vec<RawFd> = listen_fds.to_vec();
    inherit.push(write.as_raw_fd());
    let exe = std::env::current_exe()?;
    let mut command = Command::new(exe);
    command.args(std::env::args_os().skip(1));
    command.env(LISTEN_FDS_ENV, listen_fds.iter().map(|fd| fd.to_string()).collect::<Vec<_>>().join(","));
    command.env(CONTROL_FD_ENV, write.as_raw_fd().to_string());
    let supervisor = std::process::id() as libc::pid_t;
    // SAFETY: between fork and exec only async-signal-safe calls (fcntl,
    // prctl, getppid) are made, on descriptors open in the parent.
    unsafe {
        command.pre_exec(move || {
            for fd in &inherit {
                if libc::fcntl(*fd, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            // A serving process must not outlive its supervisor (killed
            // with SIGKILL, say): it would hold the port with no one to
            // manage it.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 || libc::getppid() != supervisor {
                return Err(std::io::Error::other("the supervisor is gone"));
            }
            Ok(())
        });
    }
    let child = command.spawn()?;
    drop(write);
    let pid = child.id();
    let events = events.clone();
    std::thread::spawn(move || {
        // SAFETY: `read` is an open descriptor we own; the File takes it over.
        let file = unsafe { std::fs::File::from_raw_fd(read.into_raw_fd()) };
        for line in BufReader::new(file).lines() {
            let event = match line.as_deref() {
                Ok("ready") => Event::Ready(pid),
                Ok("recycle") => Event::Recycle(pid),
                _ => continue,
            };
            if events.send(event).is_err() {
                return;
            }
        }
    });
    Ok(child)
}

/// Runs `processes` children until SIGTERM or SIGINT; returns when all
/// children have stopped.
pub fn supervise(listeners: &[TcpListener], processes: usize, log: &ServerLog) -> Result<(), String> {
    let listen_fds: Vec<RawFd> = listeners.iter().map(AsRawFd::as_raw_fd).collect();
    let (events_tx, events) = mpsc::channel();
    signal_thread(events_tx.clone())?;
    let mut running: HashMap<u32, Running> = HashMap::new();
    let start = |replaces: Option<u32>, running: &mut HashMap<u32, Running>| -> Result<(), String> {
        let child = spawn(&listen_fds, &events_tx).map_err(|e| format!("cannot start a serving process: {e}"))?;
        running.insert(child.id(), Running { child, replaces, retiring: false, ready: false });
        Ok(())
    };
    for _ in 0..processes {
        if let Err(e) = start(None, &mut running) {
            stop_all(&mut running);
            return Err(e);
        }
    }
    let mut stopping = false;
    let mut restarts: Vec<Instant> = Vec::new();
    let mut failed_starts = 0;
    loop {
        // Reap exits without blocking the event loop.
        let exited: Vec<(u32, Option<i32>)> = running
            .iter_mut()
            .filter_map(|(pid, r)| r.child.try_wait().ok().flatten().map(|status| (*pid, status.code())))
            .collect();
        for (pid, code) in exited {
            let _ = events_tx.send(Event::Exited(pid, code));
        }
        let event = match events.recv_timeout(Duration::from_millis(100)) {
            Ok(event) => event,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        };
        match event {
            Event::Ready(pid) => {
                failed_starts = 0;
                if let Some(r) = running.get_mut(&pid) {
                    r.ready = true;
                }
                let replaced = running.get_mut(&pid).and_then(|r| r.replaces.take());
                // Only a process still running is signalled: a reaped pid may
                // already belong to someone else.
                if let Some(old) = replaced.filter(|old| running.contains_key(old)) {
                    log.log(LogLevel::Info, &format!("process {pid} is serving; stopping process {old} it replaces"));
                    terminate(old);
                }
            }
            Event::Recycle(pid) => {
                if stopping {
                    continue;
                }
                if let Some(r) = running.get_mut(&pid) {
                    if !r.retiring {
                        r.retiring = true;
                        log.log(
                            LogLevel::Info,
                            &format!("process {pid} reached its maximum requests; starting its replacement"),
                        );
                        start(Some(pid), &mut running)?;
                    }
                }
            }
            Event::Exited(pid, code) => {
                let Some(gone) = running.remove(&pid) else { continue };
                if stopping {
                    if running.is_empty() {
                        return Ok(());
                    }
                    continue;
                }
                if gone.retiring {
                    continue;
                }
                if !gone.ready {
                    failed_starts += 1;
                    if failed_starts >= FAILED_STARTS_LIMIT {
                        stop_all(&mut running);
                        return Err(format!(
                            "{FAILED_STARTS_LIMIT} serving processes in a row exited before serving; giving up (see the log above)"
                        ));
                    }
                }
                log.log(LogLevel::Error, &format!("process {pid} exited unexpectedly ({code:?}); starting another"));
                // Back off when processes die right after starting.
                restarts.retain(|t| t.elapsed() < Duration::from_secs(10));
                restarts.push(Instant::now());
                if restarts.len() > 5 {
                    std::thread::sleep(Duration::from_secs(1));
                }
                if let Err(e) = start(gone.replaces, &mut running) {
                    stop_all(&mut running);
                    return Err(e);
                }
            }
            Event::Terminate => {
                if !stopping {
                    stopping = true;
                    log.log(LogLevel::Info, "stopping all serving processes");
                    for pid in running.keys() {
                        terminate(*pid);
                    }
                }
                if running.is_empty() {
                    return Ok(());
                }
            }
        }
    }
}

/// Stops every child and waits for them: the supervisor never leaves
/// serving processes behind.
fn stop_all(running: &mut HashMap<u32, Running>) {
    for pid in running.keys() {
        terminate(*pid);
    }
    for (_, mut r) in running.drain() {
        let _ = r.child.wait();
    }
}

fn terminate(pid: u32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
}

/// Turns SIGTERM, SIGINT and SIGHUP into a Terminate event.
fn signal_thread(events: mpsc::Sender<Event>) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the signal thread: {e}"))?;
    std::thread::spawn(move || {
        runtime.block_on(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int), Ok(mut hup)) =
                (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
            else {
                return;
            };
            loop {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                    _ = hup.recv() => {}
                }
                if events.send(Event::Terminate).is_err() {
                    return;
                }
            }
        });
    });
    Ok(())
}

/// A serving process's link to its supervisor.
pub struct Control {
    pipe: std::fs::File,
}

impl Control {
    /// The control pipe inherited from a supervisor, if this process is a
    /// supervised child.
    pub fn inherited() -> Option<Control> {
        let fd: RawFd = std::env::var(CONTROL_FD_ENV).ok()?.parse().ok()?;
        // SAFETY: the supervisor passed this open descriptor for our use.
        let pipe = unsafe { std::fs::File::from_raw_fd(fd) };
        // Our own children (none today) must not inherit it.
        // SAFETY: fcntl on an open descriptor.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        Some(Control { pipe })
    }

    /// Says `word` to the supervisor.
    pub fn say(&self, word: &str) {
        use std::io::Write;
        let _ = (&self.pipe).write_all(format!("{word}\n").as_bytes());
    }
}

/// The listening sockets inherited from a supervisor.
pub fn inherited_listeners() -> Option<Vec<TcpListener>> {
    let fds = std::env::var(LISTEN_FDS_ENV).ok()?;
    let listeners = fds
        .split(',')
        .filter_map(|fd| fd.parse::<RawFd>().ok())
        .map(|fd| {
            // SAFETY: fcntl on a descriptor the supervisor passed us.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            // SAFETY: the supervisor passed this listening socket for our use.
            unsafe { TcpListener::from_raw_fd(fd) }
        })
        .collect();
    Some(listeners)
}
