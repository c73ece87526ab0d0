//! The one-way channel from a daemon process to its group's manager: a
//! pipe inherited across `fork`, one byte per message.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::Mutex;

/// The process is serving (its application is loaded and it accepts).
pub const READY: u8 = b'R';
/// The process wants to be replaced (maximum-requests, inactivity, a
/// request timeout): the manager starts a successor, then stops it.
pub const RECYCLE: u8 = b'M';
/// The process is alive: a daemon process's clock thread (or a standalone
/// server's serving process's I/O runtime) says it every
/// [`HEARTBEAT_INTERVAL`] while it serves, and a manager with a liveness
/// limit ([`crate::manager::GroupSpec::liveness_timeout`]) kills a process
/// that stays silent longer (stopped with SIGSTOP, or frozen whole).
pub const HEARTBEAT: u8 = b'H';
/// How often a serving process sends [`HEARTBEAT`].
pub const HEARTBEAT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// How long a process whose own time limit is `limit` may send no
/// [`HEARTBEAT`] before its manager kills it: the limit plus two
/// [`HEARTBEAT_INTERVAL`]s (a heartbeat may come up to one late, and the
/// process is then surely past its limit). Zero (no watch) for no limit.
pub fn silence_allowed(limit: std::time::Duration) -> std::time::Duration {
    if limit.is_zero() {
        return std::time::Duration::ZERO;
    }
    limit + 2 * HEARTBEAT_INTERVAL
}

/// The environment variable naming the control pipe's descriptor in a
/// process started by a program rather than forked (see
/// [`crate::manager::ProgramStarter`]).
pub const CONTROL_FD_ENV: &str = "WSGI_RS_CONTROL_FD";

/// The writing end, held by the daemon process.
#[derive(Debug)]
pub struct ControlPipe {
    file: Option<Mutex<std::fs::File>>,
}

impl ControlPipe {
    /// Wraps the write end of a control pipe.
    pub fn new(fd: OwnedFd) -> ControlPipe {
        ControlPipe { file: Some(Mutex::new(std::fs::File::from(fd))) }
    }

    /// The control pipe a manager passed to this program in
    /// [`CONTROL_FD_ENV`], if it was started by one.
    pub fn inherited() -> Option<ControlPipe> {
        let fd = std::env::var(CONTROL_FD_ENV).ok()?.parse().ok()?;
        // Taken: a program the application starts must not take it too.
        std::env::remove_var(CONTROL_FD_ENV);
        crate::sys::inherited_fd(fd).map(ControlPipe::new)
    }

    /// A control pipe that goes nowhere (a process without a manager).
    pub fn none() -> ControlPipe {
        ControlPipe { file: None }
    }

    /// Sends one message byte (lost if the manager is gone).
    pub fn say(&self, message: u8) {
        if let Some(file) = &self.file {
            if let Ok(mut file) = file.lock() {
                let _ = file.write_all(&[message]);
            }
        }
    }
}
