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
