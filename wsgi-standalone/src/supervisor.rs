//! `--processes N`: the top process owns the listening sockets and keeps N
//! serving processes, each with its own Python, under wsgi-daemon's
//! manager, the one that supervises daemon processes too.
//!
//! A serving process is this program run again with the same arguments,
//! the listening sockets inherited (one accept queue, shared, so a process
//! that stops accepting leaves its share of pending connections to the
//! others) and a control pipe on which it says when it is ready and when
//! it reached `--maximum-requests`, and sends a heartbeat every second:
//! one silent for longer than [`Supervision::liveness`] is killed and
//! replaced. A recycling process keeps serving until its replacement is
//! ready; only then is it told to stop (SIGTERM: it finishes its requests
//! in flight). One that dies is started again;
//! five in a row that die before serving stop the server.

use std::os::fd::{AsRawFd, RawFd};
use std::process::Command;
use std::time::Duration;

use wsgi_core::LogLevel;
use wsgi_daemon::manager::{self, GroupSpec, ProgramStarter, ServerControl, StopNotice};

use crate::listen::ListenSocket;
use crate::logging::ServerLog;

/// The environment variable naming the inherited listening descriptors.
pub const LISTEN_FDS_ENV: &str = "WSGI_RS_LISTEN_FDS";

/// Processes that die before serving, in a row, before the server gives
/// up (a bad python-home, a script that cannot import, ...).
const FAILED_STARTS_LIMIT: u32 = 5;

/// How long stopping processes have beyond `--graceful-timeout` before
/// they are killed.
const STOP_MARGIN: Duration = Duration::from_secs(5);

/// How the serving processes are kept.
pub struct Supervision {
    /// How many.
    pub processes: usize,
    /// How long each may take to finish its requests once told to stop.
    pub graceful: Duration,
    /// `--health-path`'s `--drain-delay`: how long they serve on, their
    /// health path answering 503, once the server is told to stop.
    pub drain_delay: Option<Duration>,
    /// How long a ready process may send no heartbeat before it is killed
    /// and replaced (zero: never): `--request-timeout` with
    /// `wsgi_daemon::control::silence_allowed`'s margin, as for a daemon
    /// process. Its heartbeats come from its I/O runtime, so a process
    /// stopped with SIGSTOP, frozen whole or with a stuck runtime falls
    /// silent; by then its requests in flight are past their time limit.
    pub liveness: Duration,
}

/// Runs the serving processes, each with the variables of `env` set and
/// the descriptors `inherit` open, until SIGTERM or SIGINT; returns when
/// all of them have stopped. SIGHUP replaces every one of them, once
/// `control` agrees, each replacement serving before the process it
/// replaces stops.
pub fn supervise(
    listeners: &[ListenSocket],
    supervision: &Supervision,
    env: &[(&str, &str)],
    inherit: Vec<RawFd>,
    log: &ServerLog,
    control: &mut dyn ServerControl,
) -> Result<(), String> {
    let listen_fds: Vec<RawFd> = listeners.iter().map(AsRawFd::as_raw_fd).collect();
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let fds_text = listen_fds.iter().map(RawFd::to_string).collect::<Vec<_>>().join(",");
    let command = || {
        let mut command = Command::new(&exe);
        command.args(std::env::args_os().skip(1)).env(LISTEN_FDS_ENV, &fds_text).envs(env.iter().copied());
        command
    };
    let spec = GroupSpec {
        name: "serving".into(),
        processes: supervision.processes,
        restart_interval: Duration::ZERO,
        startup_timeout: Duration::ZERO,
        shutdown_timeout: supervision.graceful + STOP_MARGIN,
        succeeds: None,
        socket: None,
        kind: "serving process",
        give_up_after: Some(FAILED_STARTS_LIMIT),
        stop_notice: supervision.drain_delay.map(|delay| StopNotice { signal: libc::SIGUSR2, delay }),
        liveness_timeout: supervision.liveness,
    };
    let log_line = |message: &str| log.log(LogLevel::Info, message);
    let mut starter = ProgramStarter::new(command, listen_fds.into_iter().chain(inherit).collect());
    let result = manager::run_for_server(&spec, &mut starter, &log_line, control);
    result.map_err(|e| e.to_string())
}

/// The listening sockets inherited from the top process, if this is a
/// serving process.
pub fn inherited_listeners() -> Option<Result<Vec<ListenSocket>, String>> {
    let fds = std::env::var(LISTEN_FDS_ENV).ok()?;
    // Taken: a program the application starts must not take them too.
    std::env::remove_var(LISTEN_FDS_ENV);
    let listeners = fds
        .split(',')
        .filter_map(|fd| fd.parse::<RawFd>().ok())
        .filter_map(wsgi_daemon::sys::inherited_fd)
        .map(ListenSocket::from_fd)
        .collect();
    Some(listeners)
}
