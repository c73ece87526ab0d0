//! The manager of one daemon process group: a small single-threaded process
//! (no Python) that forks the group's daemon processes, restarts those
//! that die, and replaces those that ask to be recycled without a gap: the
//! successor is started and must report ready before the old process is
//! told to stop accepting and finish its requests.
//!
//! A new manager for the same group (after a configuration reload) is told
//! the pid of the one it succeeds, and retires it once its own processes
//! are all ready, so a restart of the server does not fail requests either.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::control::{ControlPipe, READY, RECYCLE};
use crate::sys::{self, ChildExit};

/// What the manager needs to know about its group.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    /// The group's name, for logs.
    pub name: String,
    /// How many daemon processes to keep.
    pub processes: usize,
    /// Replace each process after it has run this long (zero: never).
    pub restart_interval: Duration,
    /// A process that has not reported ready after this long is killed
    /// and started again (zero: no limit).
    pub startup_timeout: Duration,
    /// How long stopping processes may take before they are killed.
    pub shutdown_timeout: Duration,
    /// The manager this one replaces, retired once this one is ready.
    pub succeeds: Option<i32>,
    /// The group's socket file, removed when the manager stops for good
    /// (not when a successor retires it, which keeps the socket).
    pub socket: Option<std::path::PathBuf>,
}

impl GroupSpec {
    /// The manager's view of a `WSGIDaemonProcess` group: its own socket
    /// (removed when the manager stops for good) and the manager it
    /// succeeds, if any.
    pub fn for_process(
        process: &wsgi_config::DaemonProcess,
        socket: std::path::PathBuf,
        succeeds: Option<i32>,
    ) -> GroupSpec {
        GroupSpec {
            name: process.name.clone(),
            processes: process.processes.unwrap_or(1).max(1) as usize,
            restart_interval: process.restart_interval,
            startup_timeout: process.startup_timeout,
            shutdown_timeout: process.shutdown_timeout.max(Duration::from_secs(1)),
            succeeds,
            socket: Some(socket),
        }
    }
}

/// The body of one daemon process, run in the child after the manager
/// forks it (given its slot and the write end of its control pipe); it
/// never returns (it ends the process).
pub type Spawn<'a> = dyn FnMut(usize, ControlPipe) -> Infallible + 'a;

struct Process {
    slot: usize,
    control: File,
    started: Instant,
    ready: bool,
    /// Asked to stop; its death is expected.
    stopping: bool,
    /// Asked to be replaced; stopped once `successor` is ready.
    successor: Option<i32>,
}

/// Forks a manager process for the group, which runs [`run`] and exits;
/// returns its pid.
///
/// # Safety
/// The calling process must be single-threaded (the manager forks again
/// and its children use the allocator and locks they inherit).
pub unsafe fn fork_manager(spec: &GroupSpec, spawn: &mut Spawn<'_>, log: &dyn Fn(&str)) -> std::io::Result<i32> {
    // SAFETY: single-threaded caller (contract).
    match unsafe { sys::fork() }? {
        sys::Forked::Parent(pid) => Ok(pid),
        sys::Forked::Child => {
            // SAFETY: the fresh child has only this thread.
            let code = unsafe { run(spec, spawn, log) };
            sys::exit_now(code)
        }
    }
}

/// Runs the manager in this process until it is told to stop (SIGTERM,
/// SIGINT, or SIGUSR2 from its successor) or its parent dies. Returns the
/// exit status.
///
/// # Safety
/// The process must be single-threaded, and stay so: the manager forks.
pub unsafe fn run(spec: &GroupSpec, spawn: &mut Spawn<'_>, log: &dyn Fn(&str)) -> i32 {
    sys::die_with_parent(libc::SIGTERM);
    // A group of its own: servers that signal their whole process group
    // (Apache's prefork on restart) must not reach the daemon processes.
    sys::new_process_group();
    let signals = match sys::on_signals(&[libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGUSR2]) {
        Ok(fd) => File::from(fd),
        Err(e) => {
            log(&format!("cannot set up signal handling: {e}"));
            return 1;
        }
    };
    let mut manager = Manager { spec, processes: HashMap::new(), failures: 0, retired_predecessor: false };
    for slot in 0..spec.processes.max(1) {
        manager.start(slot, spawn, log);
    }
    let mut signals = signals;
    loop {
        let mut fds = vec![signals.as_raw_fd()];
        let pids: Vec<i32> = manager.processes.keys().copied().collect();
        fds.extend(pids.iter().map(|pid| manager.processes[pid].control.as_raw_fd()));
        let ready = sys::poll_readable(&fds, Some(Duration::from_millis(500))).unwrap_or_default();
        if ready.first().copied().unwrap_or(false) {
            let mut buf = [0u8; 64];
            let n = signals.read(&mut buf).unwrap_or(0);
            for &signal in &buf[..n] {
                match i32::from(signal) {
                    libc::SIGCHLD => manager.reap(spawn, log),
                    libc::SIGUSR2 => {
                        // Retired by a successor, which keeps the socket.
                        manager.stop_all(log);
                        return 0;
                    }
                    _ => {
                        manager.stop_all(log);
                        if let Some(socket) = &spec.socket {
                            let _ = std::fs::remove_file(socket);
                        }
                        return 0;
                    }
                }
            }
        }
        for (index, pid) in pids.iter().enumerate() {
            if ready.get(index + 1).copied().unwrap_or(false) {
                manager.message(*pid, spawn, log);
            }
        }
        manager.timers(spawn, log);
        manager.reap(spawn, log);
    }
}

/// Runs a daemon process's body in the forked child.
fn run_child(spawn: &mut Spawn<'_>, slot: usize, control: ControlPipe) -> ! {
    // The body ends the process; its Infallible result cannot exist.
    #[allow(unreachable_code)]
    match spawn(slot, control) {}
}

struct Manager<'a> {
    spec: &'a GroupSpec,
    processes: HashMap<i32, Process>,
    /// Consecutive processes that died before becoming ready.
    failures: u32,
    retired_predecessor: bool,
}

impl Manager<'_> {
    fn start(&mut self, slot: usize, spawn: &mut Spawn<'_>, log: &dyn Fn(&str)) -> Option<i32> {
        let (read, write): (OwnedFd, OwnedFd) = match sys::pipe() {
            Ok(pair) => pair,
            Err(e) => {
                log(&format!("cannot create a control pipe: {e}"));
                return None;
            }
        };
        let _ = sys::set_nonblocking(read.as_raw_fd(), true);
        // SAFETY: the manager is single-threaded (contract of `run`).
        match unsafe { sys::fork() } {
            Ok(sys::Forked::Child) => {
                drop(read);
                run_child(spawn, slot, ControlPipe::new(write))
            }
            Ok(sys::Forked::Parent(pid)) => {
                drop(write);
                self.processes.insert(
                    pid,
                    Process {
                        slot,
                        control: File::from(read),
                        started: Instant::now(),
                        ready: false,
                        stopping: false,
                        successor: None,
                    },
                );
                Some(pid)
            }
            Err(e) => {
                log(&format!("cannot start daemon process: {e}"));
                None
            }
        }
    }

    fn message(&mut self, pid: i32, spawn: &mut Spawn<'_>, log: &dyn Fn(&str)) {
        let mut buf = [0u8; 16];
        let n = match self.processes.get_mut(&pid) {
            Some(process) => process.control.read(&mut buf).unwrap_or(0),
            None => return,
        };
        for &message in &buf[..n] {
            match message {
                READY => self.ready(pid),
                RECYCLE => self.recycle(pid, spawn, log),
                _ => {}
            }
        }
    }

    fn ready(&mut self, pid: i32) {
        let Some(process) = self.processes.get_mut(&pid) else { return };
        process.ready = true;
        self.failures = 0;
        // Processes waiting for this one as their successor may stop now.
        for (old_pid, old) in &mut self.processes {
            if old.successor == Some(pid) && !old.stopping {
                old.stopping = true;
                sys::kill(*old_pid, libc::SIGTERM);
            }
        }
        let all_ready = self.processes.values().filter(|p| !p.stopping).all(|p| p.ready);
        if all_ready && !self.retired_predecessor {
            self.retired_predecessor = true;
            if let Some(old_manager) = self.spec.succeeds {
                sys::kill(old_manager, libc::SIGUSR2);
            }
        }
    }

    fn recycle(&mut self, pid: i32, spawn: &mut Spawn<'_>, log: &dyn Fn(&str)) {
        let Some(process) = self.processes.get(&pid) else { return };
        if process.stopping || process.successor.is_some() {
            return;
        }
        let slot = process.slot;
        if let Some(successor) = self.start(slot, spawn, log) {
            if let Some(process) = self.processes.get_mut(&pid) {
                process.successor = Some(successor);
            }
        }
    }

    fn timers(&mut self, spawn: &mut Spawn<'_>, log: &dyn Fn(&str)) {
        let spec = self.spec;
        let mut recycle = Vec::new();
        for (pid, process) in &self.processes {
            if process.stopping {
                continue;
            }
            if !process.ready && !spec.startup_timeout.is_zero() && process.started.elapsed() > spec.startup_timeout {
                log(&format!(
                    "daemon process {pid} of group '{}' did not start within {:?}; killing it",
                    spec.name, spec.startup_timeout
                ));
                sys::kill(*pid, libc::SIGKILL);
            } else if process.ready
                && !spec.restart_interval.is_zero()
                && process.started.elapsed() > spec.restart_interval
                && process.successor.is_none()
            {
                recycle.push(*pid);
            }
        }
        for pid in recycle {
            log(&format!("restart interval of group '{}' reached for process {pid}", spec.name));
            self.recycle(pid, spawn, log);
        }
    }

    fn reap(&mut self, spawn: &mut Spawn<'_>, log: &dyn Fn(&str)) {
        while let Some((pid, how)) = sys::reap_any() {
            let Some(process) = self.processes.remove(&pid) else { continue };
            if process.stopping {
                continue;
            }
            let how = match how {
                ChildExit::Code(code) => format!("exit status {code}"),
                ChildExit::Signal(signal) => format!("signal {signal}"),
            };
            log(&format!("daemon process {pid} of group '{}' died ({how}); starting a new one", self.spec.name));
            if !process.ready {
                // It never got going: back off so a broken application
                // does not spin.
                self.failures += 1;
                std::thread::sleep(Duration::from_millis(200 * u64::from(self.failures.min(10))));
            }
            // A successor already started for it takes its place.
            if let Some(successor) = process.successor {
                if self.processes.contains_key(&successor) {
                    continue;
                }
            }
            self.start(process.slot, spawn, log);
        }
    }

    fn stop_all(&mut self, log: &dyn Fn(&str)) {
        for (pid, process) in &mut self.processes {
            process.stopping = true;
            sys::kill(*pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + self.spec.shutdown_timeout.max(Duration::from_millis(100));
        while !self.processes.is_empty() && Instant::now() < deadline {
            while let Some((pid, _)) = sys::reap_any() {
                self.processes.remove(&pid);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for pid in self.processes.keys() {
            log(&format!("daemon process {pid} of group '{}' did not stop in time; killing it", self.spec.name));
            sys::kill(*pid, libc::SIGKILL);
        }
        while sys::reap_any().is_some() {}
    }
}
