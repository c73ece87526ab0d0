//! The manager of one daemon process group: a small single-threaded process
//! (no Python) that forks the group's daemon processes, restarts those
//! that die, and replaces those that ask to be recycled without a gap: the
//! successor is started and must report ready before the old process is
//! told to stop accepting and finish its requests.
//!
//! A new manager for the same group (after a configuration reload) is told
//! the pid of the one it succeeds, and retires it once its own processes
//! are all ready, so a restart of the server does not fail requests either.
//!
//! How a process is started is the manager's one seam ([`ProcessStarter`]):
//! daemon processes are forked and run a body in the manager's image
//! ([`ForkStarter`]); the standalone server's serving processes run its
//! program again with the listening sockets inherited
//! ([`ProgramStarter`]). Both are supervised by the same loop, with the
//! same control messages and back-off.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::control::{ControlPipe, CONTROL_FD_ENV, HEARTBEAT, READY, RECYCLE};
use crate::sys::{self, ChildExit};

/// Why a manager stopped other than when told to.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// Its signal handling could not be set up.
    #[error("cannot set up signal handling: {0}")]
    Signals(#[source] io::Error),
    /// [`run_forking`] was called in a process with other threads.
    #[error("a manager that forks must run in a single-threaded process")]
    Threaded,
    /// Processes kept dying before they were ready ([`GroupSpec::give_up_after`]).
    #[error("{count} {kind}es in a row exited before serving; giving up (see the log above)")]
    GaveUp {
        /// How many in a row.
        count: u32,
        /// What the processes are ([`GroupSpec::kind`]).
        kind: &'static str,
    },
}

/// How long past its restart interval the manager waits for a process to
/// ask to be replaced before it replaces it anyway.
pub const RESTART_INTERVAL_GRACE: Duration = Duration::from_secs(5);

/// What the manager needs to know about its group.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    /// The group's name, for logs.
    pub name: String,
    /// How many daemon processes to keep.
    pub processes: usize,
    /// Replace each process after it has run this long (zero: never). A
    /// daemon process asks for it itself, with its shutdown reason; the
    /// manager replaces one that has not asked [`RESTART_INTERVAL_GRACE`]
    /// later (such as a process without request threads).
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
    /// What the processes are, for logs ("daemon process").
    pub kind: &'static str,
    /// Stop with [`ManagerError::GaveUp`] once this many processes in a
    /// row died before they were ready (`None`: keep trying, backing off).
    pub give_up_after: Option<u32>,
    /// Told to stop (SIGTERM, SIGINT), first send the processes this
    /// notice and let them serve on for its delay (`None`: stop them at
    /// once).
    pub stop_notice: Option<StopNotice>,
    /// A ready process that sends nothing on its control pipe for this
    /// long (daemon processes send [`HEARTBEAT`] every second) is killed
    /// with SIGKILL and replaced: a process stopped with SIGSTOP, or
    /// frozen whole, cannot run its own time-out checks. One that is
    /// stopping gets its shutdown timeout on top. Zero: not watched.
    pub liveness_timeout: Duration,
}

/// What a manager tells its processes before it stops them, and how long
/// they serve on after it: time for a load balancer's health checks to
/// see the processes leave before their listeners close.
#[derive(Debug, Clone, Copy)]
pub struct StopNotice {
    /// The signal sent to every process.
    pub signal: i32,
    /// How long they serve on.
    pub delay: Duration,
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
            kind: "daemon process",
            give_up_after: None,
            stop_notice: None,
            liveness_timeout: crate::process::liveness_timeout(process),
        }
    }
}

/// How the manager starts one of its processes.
pub trait ProcessStarter {
    /// Starts the process for `slot`, handing it `control`, the write end
    /// of its control pipe; `manager_end` is the manager's read end, which
    /// the new process must not keep. Returns its pid.
    fn start(&mut self, slot: usize, control: OwnedFd, manager_end: RawFd) -> io::Result<i32>;
}

/// Starts a process by forking the manager and running a body in the
/// child: daemon processes, which inherit the manager's image (the
/// group's socket, its configuration) rather than reading it again.
pub struct ForkStarter<'s, 'a> {
    spawn: &'s mut Spawn<'a>,
}

impl<'s, 'a> ForkStarter<'s, 'a> {
    /// A starter running `spawn` in each forked child.
    ///
    /// # Safety
    /// The process that runs the manager must be single-threaded, and stay
    /// so: its children use the allocator and locks they inherit.
    pub unsafe fn new(spawn: &'s mut Spawn<'a>) -> ForkStarter<'s, 'a> {
        ForkStarter { spawn }
    }
}

impl ProcessStarter for ForkStarter<'_, '_> {
    fn start(&mut self, slot: usize, control: OwnedFd, manager_end: RawFd) -> io::Result<i32> {
        // SAFETY: the manager's process is single-threaded (contract of
        // `ForkStarter::new`).
        match unsafe { sys::fork() }? {
            sys::Forked::Child => {
                sys::close(manager_end);
                run_child(self.spawn, slot, ControlPipe::new(control))
            }
            sys::Forked::Parent(pid) => Ok(pid),
        }
    }
}

/// Starts a process by running a program, which inherits `inherit` (the
/// listening sockets) and finds its control pipe in [`CONTROL_FD_ENV`]
/// ([`ControlPipe::inherited`]); it gets SIGTERM if the manager dies.
pub struct ProgramStarter<'a> {
    command: Box<dyn FnMut() -> std::process::Command + 'a>,
    inherit: Vec<RawFd>,
}

impl<'a> ProgramStarter<'a> {
    /// A starter running the command `command` makes, with `inherit` open.
    pub fn new(command: impl FnMut() -> std::process::Command + 'a, inherit: Vec<RawFd>) -> ProgramStarter<'a> {
        ProgramStarter { command: Box::new(command), inherit }
    }
}

impl ProcessStarter for ProgramStarter<'_> {
    fn start(&mut self, _slot: usize, control: OwnedFd, _manager_end: RawFd) -> io::Result<i32> {
        let mut command = (self.command)();
        command.env(CONTROL_FD_ENV, control.as_raw_fd().to_string());
        let mut inherit = self.inherit.clone();
        inherit.push(control.as_raw_fd());
        let child = sys::spawn_inheriting(&mut command, inherit)?;
        // The manager reaps it by pid; dropping the handle leaves it running.
        i32::try_from(child.id()).map_err(|_| io::Error::other("pid out of range"))
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
    /// When the process last said anything on its control pipe.
    heard: Instant,
    /// Killed for its silence (logged once).
    silenced: bool,
    /// Asked to stop; its death is expected.
    stopping: bool,
    /// Asked to be replaced; stopped once `successor` is ready.
    successor: Option<i32>,
}

/// Forks a manager process for a daemon group, which runs [`run`] with a
/// [`ForkStarter`] and exits; returns its pid.
///
/// # Safety
/// The calling process must be single-threaded (the manager forks again
/// and its children use the allocator and locks they inherit).
pub unsafe fn fork_manager(spec: &GroupSpec, spawn: &mut Spawn<'_>, log: &dyn Fn(&str)) -> std::io::Result<i32> {
    // SAFETY: single-threaded caller (contract).
    match unsafe { sys::fork() }? {
        sys::Forked::Parent(pid) => Ok(pid),
        sys::Forked::Child => {
            become_manager_process();
            // SAFETY: the fresh child has only this thread.
            let mut starter = unsafe { ForkStarter::new(spawn) };
            let code = match run(spec, &mut starter, log) {
                Ok(()) => 0,
                Err(e) => {
                    log(&e.to_string());
                    1
                }
            };
            sys::exit_now(code)
        }
    }
}

/// Runs the manager in this process with a [`ForkStarter`] (see [`run`]),
/// once it has checked that the process is single-threaded, as forking
/// without `exec` needs: for a manager started as a program of its own.
pub fn run_forking(spec: &GroupSpec, spawn: &mut Spawn<'_>, log: &dyn Fn(&str)) -> Result<(), ManagerError> {
    if sys::thread_count() != Some(1) {
        return Err(ManagerError::Threaded);
    }
    // SAFETY: the process has one thread (checked above), and neither the
    // manager nor a forked child's start starts another before forking.
    let mut starter = unsafe { ForkStarter::new(spawn) };
    run(spec, &mut starter, log)
}

/// Makes this process a daemon group's manager process: it dies with its
/// parent, and has a process group of its own, so that servers that signal
/// their whole group (Apache's prefork on restart) do not reach the daemon
/// processes.
pub fn become_manager_process() {
    sys::die_with_parent(libc::SIGTERM);
    sys::new_process_group();
}

/// Runs the manager in this process until it is told to stop (SIGTERM,
/// SIGINT, SIGHUP, or SIGUSR2 from its successor) or, with
/// [`GroupSpec::give_up_after`], its processes keep dying before they are
/// ready. Its processes are stopped before it returns. SIGUSR1 replaces
/// every process, each successor serving before its predecessor stops.
pub fn run(spec: &GroupSpec, starter: &mut dyn ProcessStarter, log: &dyn Fn(&str)) -> Result<(), ManagerError> {
    run_with_hangup(spec, starter, log, None)
}

/// What a server's top process does around its manager's work: the
/// manager of its serving processes asks it before a SIGHUP replaces
/// them, and tells it when it starts to stop.
pub trait ServerControl {
    /// Whether SIGHUP's replacement of every process goes ahead (false
    /// keeps the running processes, e.g. when a configuration no longer
    /// reads).
    fn before_replacing(&mut self) -> bool;
    /// The manager handles its signals and has started its processes: the
    /// server may say it is ready.
    fn started(&mut self);
    /// The manager was told to stop (SIGTERM or SIGINT), and now starts to.
    fn stopping(&mut self);
}

/// As [`run`], except that SIGHUP replaces every process, once `control`
/// agrees, `control` hears when the manager stops, and SIGUSR1 is left
/// to the server.
pub fn run_for_server(
    spec: &GroupSpec,
    starter: &mut dyn ProcessStarter,
    log: &dyn Fn(&str),
    control: &mut dyn ServerControl,
) -> Result<(), ManagerError> {
    run_with_hangup(spec, starter, log, Some(control))
}

fn run_with_hangup(
    spec: &GroupSpec,
    starter: &mut dyn ProcessStarter,
    log: &dyn Fn(&str),
    mut control: Option<&mut dyn ServerControl>,
) -> Result<(), ManagerError> {
    // A server's top process keeps SIGUSR1 for itself (the standalone
    // server reopens its logs on it), and has no successor to retire it
    // (SIGUSR2).
    let mut handled = vec![libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP];
    if control.is_none() {
        handled.extend([libc::SIGUSR1, libc::SIGUSR2]);
    }
    let signals = sys::on_signals(&handled).map_err(ManagerError::Signals)?;
    let mut signals = File::from(signals);
    let mut manager = Manager {
        spec,
        processes: HashMap::new(),
        vacant: Vec::new(),
        failures: 0,
        retry_at: None,
        retired_predecessor: false,
    };
    for slot in 0..spec.processes.max(1) {
        manager.fill(slot, starter, log)?;
    }
    if let Some(control) = control.as_mut() {
        control.started();
    }
    loop {
        let mut fds = vec![signals.as_raw_fd()];
        let pids: Vec<i32> = manager.processes.keys().copied().collect();
        fds.extend(pids.iter().map(|pid| manager.processes[pid].control.as_raw_fd()));
        let ready = sys::poll_readable(&fds, Some(manager.next_turn())).unwrap_or_default();
        if ready.first().copied().unwrap_or(false) {
            let mut buf = [0u8; 64];
            let n = signals.read(&mut buf).unwrap_or(0);
            for &signal in &buf[..n] {
                match i32::from(signal) {
                    libc::SIGCHLD => manager.reap(starter, log)?,
                    libc::SIGUSR1 => manager.replace_all(starter, log),
                    libc::SIGHUP if control.is_some() => {
                        if control.as_mut().is_some_and(|control| control.before_replacing()) {
                            manager.replace_all(starter, log);
                        }
                    }
                    libc::SIGUSR2 => {
                        // Retired by a successor, which keeps the socket,
                        // and serves: a predecessor this manager had not
                        // retired yet (restarts in quick succession) goes
                        // too, or it would serve on, unsupervised.
                        manager.retire_predecessor();
                        manager.stop_all(log);
                        return Ok(());
                    }
                    _ => {
                        if let Some(control) = control.as_mut() {
                            control.stopping();
                        }
                        if let Some(notice) = spec.stop_notice {
                            manager.give_notice(notice, &mut signals, starter, log)?;
                        }
                        manager.stop_all(log);
                        if let Some(socket) = &spec.socket {
                            let _ = std::fs::remove_file(socket);
                        }
                        return Ok(());
                    }
                }
            }
        }
        for (index, pid) in pids.iter().enumerate() {
            if ready.get(index + 1).copied().unwrap_or(false) {
                manager.message(*pid, starter, log);
            }
        }
        manager.timers(starter, log)?;
        manager.reap(starter, log)?;
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
    /// Slots whose process could not be started, tried again later.
    vacant: Vec<usize>,
    /// Consecutive processes that died before becoming ready, or could not
    /// be started.
    failures: u32,
    /// Until when vacant slots wait after a failure. The wait is a time,
    /// not a sleep: the other processes' deaths, messages and heartbeats
    /// are handled meanwhile.
    retry_at: Option<Instant>,
    retired_predecessor: bool,
}

impl Manager<'_> {
    /// Starts a process for `slot`, unless a failure's back-off is running;
    /// then, or when it cannot be started (which counts as a failure), the
    /// slot waits in `vacant` for [`Manager::timers`].
    fn fill(
        &mut self,
        slot: usize,
        starter: &mut dyn ProcessStarter,
        log: &dyn Fn(&str),
    ) -> Result<Option<i32>, ManagerError> {
        if self.backing_off() {
            self.vacant.push(slot);
            return Ok(None);
        }
        if let Some(pid) = self.start(slot, starter, log) {
            return Ok(Some(pid));
        }
        self.vacant.push(slot);
        self.failed(log)?;
        Ok(None)
    }

    /// Counts a process that died before it was ready, or could not be
    /// started: gives up where told to, else backs off (200 ms more for each
    /// consecutive failure, up to 2 s) so that a broken application does
    /// not spin.
    fn failed(&mut self, log: &dyn Fn(&str)) -> Result<(), ManagerError> {
        self.failures += 1;
        let spec = self.spec;
        if spec.give_up_after.is_some_and(|limit| self.failures >= limit) {
            self.stop_all(log);
            return Err(ManagerError::GaveUp { count: self.failures, kind: spec.kind });
        }
        self.retry_at = Some(Instant::now() + Duration::from_millis(200 * u64::from(self.failures.min(10))));
        Ok(())
    }

    fn backing_off(&self) -> bool {
        self.retry_at.is_some_and(|at| Instant::now() < at)
    }

    /// How long the main loop may wait for a signal or a message: half a
    /// second for the timers, less when a vacant slot's back-off ends
    /// sooner (rounded up to the next millisecond, which is what poll
    /// counts in, so that it does not wake just before).
    fn next_turn(&self) -> Duration {
        let turn = Duration::from_millis(500);
        match self.retry_at {
            Some(at) if !self.vacant.is_empty() => {
                (at.saturating_duration_since(Instant::now()) + Duration::from_millis(1)).min(turn)
            }
            _ => turn,
        }
    }

    /// Starts processes for the vacant slots whose back-off has ended. After
    /// a failure, one at a time until one is ready (the failure count then
    /// goes back to zero): a broken application fails once per back-off,
    /// not once per slot, so giving up takes as long for a group of many
    /// processes as for one.
    fn fill_vacancies(&mut self, starter: &mut dyn ProcessStarter, log: &dyn Fn(&str)) -> Result<(), ManagerError> {
        while !self.backing_off() {
            let probing = self.failures > 0 && self.processes.values().any(|p| !p.ready && !p.stopping);
            if probing {
                break;
            }
            let Some(slot) = self.vacant.pop() else { break };
            self.fill(slot, starter, log)?;
        }
        Ok(())
    }

    fn start(&mut self, slot: usize, starter: &mut dyn ProcessStarter, log: &dyn Fn(&str)) -> Option<i32> {
        let (read, write): (OwnedFd, OwnedFd) = match sys::pipe() {
            Ok(pair) => pair,
            Err(e) => {
                log(&format!("cannot create a control pipe: {e}"));
                return None;
            }
        };
        let _ = sys::set_nonblocking(read.as_raw_fd(), true);
        let manager_end = read.as_raw_fd();
        match starter.start(slot, write, manager_end) {
            Ok(pid) => {
                self.processes.insert(
                    pid,
                    Process {
                        slot,
                        control: File::from(read),
                        started: Instant::now(),
                        ready: false,
                        heard: Instant::now(),
                        silenced: false,
                        stopping: false,
                        successor: None,
                    },
                );
                Some(pid)
            }
            Err(e) => {
                log(&format!("cannot start a {}: {e}", self.spec.kind));
                None
            }
        }
    }

    fn message(&mut self, pid: i32, starter: &mut dyn ProcessStarter, log: &dyn Fn(&str)) {
        let mut buf = [0u8; 16];
        let n = match self.processes.get_mut(&pid) {
            Some(process) => {
                let n = process.control.read(&mut buf).unwrap_or(0);
                if n > 0 {
                    process.heard = Instant::now();
                }
                n
            }
            None => return,
        };
        for &message in &buf[..n] {
            match message {
                HEARTBEAT => {}
                READY => self.ready(pid),
                RECYCLE => self.recycle(pid, starter, log),
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
        if all_ready {
            self.retire_predecessor();
        }
    }

    /// Retires the manager this one succeeds (SIGUSR2), once.
    fn retire_predecessor(&mut self) {
        if !self.retired_predecessor {
            self.retired_predecessor = true;
            if let Some(old_manager) = self.spec.succeeds {
                sys::kill(old_manager, libc::SIGUSR2);
            }
        }
    }

    fn recycle(&mut self, pid: i32, starter: &mut dyn ProcessStarter, log: &dyn Fn(&str)) {
        let Some(process) = self.processes.get(&pid) else { return };
        if process.stopping || process.successor.is_some() {
            return;
        }
        log(&format!(
            "{} {pid} of group '{}' asked to be replaced; starting its successor",
            self.spec.kind, self.spec.name
        ));
        self.start_successor(pid, starter, log);
    }

    /// Replaces every process that is not already being replaced: each
    /// successor starts now, and its predecessor stops once it is ready.
    fn replace_all(&mut self, starter: &mut dyn ProcessStarter, log: &dyn Fn(&str)) {
        let mut pids: Vec<i32> =
            self.processes.iter().filter(|(_, p)| !p.stopping && p.successor.is_none()).map(|(pid, _)| *pid).collect();
        pids.sort_unstable();
        log(&format!("replacing the {} {}es of group '{}'", pids.len(), self.spec.kind, self.spec.name));
        for pid in pids {
            self.start_successor(pid, starter, log);
        }
    }

    fn start_successor(&mut self, pid: i32, starter: &mut dyn ProcessStarter, log: &dyn Fn(&str)) {
        let Some(slot) = self.processes.get(&pid).map(|p| p.slot) else { return };
        if let Some(successor) = self.start(slot, starter, log) {
            if let Some(process) = self.processes.get_mut(&pid) {
                process.successor = Some(successor);
            }
        }
    }

    fn timers(&mut self, starter: &mut dyn ProcessStarter, log: &dyn Fn(&str)) -> Result<(), ManagerError> {
        self.fill_vacancies(starter, log)?;
        let spec = self.spec;
        self.kill_silent(log);
        let mut recycle = Vec::new();
        for (pid, process) in &self.processes {
            if process.stopping {
                continue;
            }
            if !process.ready && !spec.startup_timeout.is_zero() && process.started.elapsed() > spec.startup_timeout {
                log(&format!(
                    "{} {pid} of group '{}' did not start within {:?}; killing it",
                    spec.kind, spec.name, spec.startup_timeout
                ));
                sys::kill(*pid, libc::SIGKILL);
            } else if process.ready
                && !spec.restart_interval.is_zero()
                && process.started.elapsed() > spec.restart_interval + RESTART_INTERVAL_GRACE
                && process.successor.is_none()
            {
                recycle.push(*pid);
            }
        }
        for pid in recycle {
            log(&format!("restart interval of group '{}' reached for process {pid}", spec.name));
            self.recycle(pid, starter, log);
        }
        Ok(())
    }

    /// Kills (SIGKILL) each ready process silent for longer than the
    /// liveness timeout (plus the shutdown timeout for one that is
    /// stopping): it is not running at all, so its own time-out checks
    /// cannot act. Reaped as any other, it is then replaced; the front
    /// ends see its connections close.
    fn kill_silent(&mut self, log: &dyn Fn(&str)) {
        let spec = self.spec;
        if spec.liveness_timeout.is_zero() {
            return;
        }
        for (pid, process) in &mut self.processes {
            let limit =
                if process.stopping { spec.liveness_timeout + spec.shutdown_timeout } else { spec.liveness_timeout };
            if process.ready && !process.silenced && process.heard.elapsed() > limit {
                process.silenced = true;
                log(&format!(
                    "{} {pid} of group '{}' has not responded for {:?} (stopped or frozen); killing it",
                    spec.kind,
                    spec.name,
                    Duration::from_secs(process.heard.elapsed().as_secs())
                ));
                sys::kill(*pid, libc::SIGKILL);
            }
        }
    }

    /// The processes of this manager that have exited, reaped.
    fn reaped(&self) -> Vec<(i32, ChildExit)> {
        self.processes.keys().filter_map(|&pid| sys::reap(pid).map(|how| (pid, how))).collect()
    }

    fn reap(&mut self, starter: &mut dyn ProcessStarter, log: &dyn Fn(&str)) -> Result<(), ManagerError> {
        for (pid, how) in self.reaped() {
            let Some(process) = self.processes.remove(&pid) else { continue };
            if process.stopping {
                continue;
            }
            let how = match how {
                ChildExit::Code(code) => format!("exit status {code}"),
                ChildExit::Signal(signal) => format!("signal {signal}"),
            };
            let spec = self.spec;
            // The process this one was to succeed, still serving its slot.
            let predecessor = self.processes.iter().find(|(_, p)| p.successor == Some(pid)).map(|(&pid, _)| pid);
            if let (Some(predecessor), false) = (predecessor, process.ready) {
                // A replacement that cannot start (a reload of broken
                // code, say) leaves its predecessor serving, rather than
                // counting towards giving up on the whole group.
                log(&format!(
                    "{} {pid} of group '{}' exited before it was ready ({how}); {predecessor} keeps serving",
                    spec.kind, spec.name
                ));
                if let Some(waiting) = self.processes.get_mut(&predecessor) {
                    waiting.successor = None;
                }
                continue;
            }
            log(&format!("{} {pid} of group '{}' exited unexpectedly ({how}); starting another", spec.kind, spec.name));
            if !process.ready {
                self.failed(log)?;
            }
            // A successor already started for it takes its place.
            if let Some(successor) = process.successor {
                if self.processes.contains_key(&successor) {
                    continue;
                }
            }
            let Some(predecessor) = predecessor else {
                self.fill(process.slot, starter, log)?;
                continue;
            };
            // A new successor takes over the duty: the predecessor stops
            // once it is ready. None could be started: the predecessor
            // keeps its slot, as it was before it asked.
            let started = self.start(process.slot, starter, log);
            if let Some(waiting) = self.processes.get_mut(&predecessor) {
                waiting.successor = started;
            }
            if started.is_none() {
                self.failed(log)?;
            }
        }
        Ok(())
    }

    /// Sends every ready process `notice`'s signal, then keeps them (restarting
    /// any that dies) for its delay, or until SIGTERM or SIGINT again.
    fn give_notice(
        &mut self,
        notice: StopNotice,
        signals: &mut File,
        starter: &mut dyn ProcessStarter,
        log: &dyn Fn(&str),
    ) -> Result<(), ManagerError> {
        log(&format!(
            "stopping: the {}es of group '{}' serve on for {:?} before they stop",
            self.spec.kind, self.spec.name, notice.delay
        ));
        // Only a ready process has its handler for the notice; one still
        // starting serves nothing yet, and simply stops with the rest.
        for (pid, process) in &self.processes {
            if process.ready && !process.stopping {
                sys::kill(*pid, notice.signal);
            }
        }
        let deadline = Instant::now() + notice.delay;
        while let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
            let ready =
                sys::poll_readable(&[signals.as_raw_fd()], Some(left.min(self.next_turn()))).unwrap_or_default();
            if ready.first().copied().unwrap_or(false) {
                let mut buf = [0u8; 64];
                let n = signals.read(&mut buf).unwrap_or(0);
                if buf[..n].iter().any(|&s| matches!(i32::from(s), libc::SIGTERM | libc::SIGINT)) {
                    break;
                }
            }
            self.reap(starter, log)?;
            self.fill_vacancies(starter, log)?;
        }
        Ok(())
    }

    fn stop_all(&mut self, log: &dyn Fn(&str)) {
        for (pid, process) in &mut self.processes {
            process.stopping = true;
            sys::kill(*pid, libc::SIGTERM);
        }
        self.reap_for(self.spec.shutdown_timeout.max(Duration::from_millis(100)));
        for pid in self.processes.keys() {
            log(&format!("{} {pid} of group '{}' did not stop in time; killing it", self.spec.kind, self.spec.name));
            sys::kill(*pid, libc::SIGKILL);
        }
        // The killed go at once; reaped, none is left a zombie of a
        // process that lives on (the standalone server's top process).
        self.reap_for(Duration::from_secs(1));
    }

    /// Reaps the processes as they exit, for at most `limit`.
    fn reap_for(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.processes.is_empty() && Instant::now() < deadline {
            for (pid, _) in self.reaped() {
                self.processes.remove(&pid);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
