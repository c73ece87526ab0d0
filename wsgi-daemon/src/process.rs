//! Inside a daemon process: becoming what `WSGIDaemonProcess` asks for
//! (user, groups, umask, home, locale, priority, limits, name), then
//! serving with the interpreter the front end supplies.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;

use wsgi_config::DaemonProcess;
use wsgi_core::{ErrorLog, LogLevel, WsgiRunner};

use crate::control::ControlPipe;
use crate::sys;
use crate::worker::{self, ServeEnd, WorkerOptions};

/// Who a daemon process runs as when the server started as root and the
/// group names no `user=`/`group=`: the server's own child user (Apache's
/// `User`/`Group`).
#[derive(Debug, Clone, Default)]
pub struct DefaultIdentity {
    /// The user name (or `#uid`).
    pub user: Option<String>,
    /// The group name (or `#gid`).
    pub group: Option<String>,
}

/// The process title for a group: `display-name=` with `%{GROUP}` replaced
/// by `(wsgi:NAME)`, or `(wsgi:NAME)` itself.
pub fn display_name(process: &DaemonProcess) -> String {
    let group = format!("(wsgi:{})", process.name);
    match &process.display_name {
        Some(name) => name.replace("%{GROUP}", &group),
        None => group,
    }
}

/// The serving options of a group.
pub fn worker_options(process: &DaemonProcess) -> WorkerOptions {
    WorkerOptions {
        threads: process.threads as usize,
        maximum_requests: process.maximum_requests,
        inactivity_timeout: process.inactivity_timeout,
        restart_interval: process.restart_interval,
        queue_timeout: process.queue_timeout,
        request_timeout: request_timeout_fire_point(process),
        socket_timeout: process.socket_timeout,
        graceful_timeout: if process.graceful_timeout.is_zero() {
            process.shutdown_timeout
        } else {
            process.graceful_timeout
        },
        deadlock_timeout: process.deadlock_timeout,
        startup_timeout: process.startup_timeout,
        stack_size: process.stack_size.map(|size| size as usize),
        eviction_timeout: process.eviction_timeout,
        interrupt_timeout: process.interrupt_timeout,
        exit_after_graceful_timeout: Some(process.shutdown_timeout),
    }
}

/// When a request has run too long (mod_wsgi 6): `request-timeout`
/// scaled by the natural log of the thread count, `T * (1 + ln threads)`,
/// so that one stuck thread of many is given more patience than the only
/// one.
pub fn request_timeout_fire_point(process: &DaemonProcess) -> std::time::Duration {
    let threads = f64::from(process.threads.max(1));
    process.request_timeout.mul_f64(1.0 + threads.ln())
}

/// How long a ready daemon process of the group may stay silent on its
/// control pipe before its manager kills it
/// ([`crate::manager::GroupSpec::liveness_timeout`]): the sooner of
/// `deadlock-timeout` and the request timeout's fire point, the time-outs
/// the process enforces itself while it runs, with
/// [`crate::control::silence_allowed`]'s margin; zero when neither is
/// set.
///
/// mod_wsgi's own checks run inside the daemon process, so a process
/// stopped with SIGSTOP (or frozen whole) is never replaced there; here
/// the manager notices the silence. By then every request in flight on
/// the process has run past its time limit, and the front end answers 504
/// when its connection closes ([`crate::client::DaemonClient`]).
pub fn liveness_timeout(process: &DaemonProcess) -> std::time::Duration {
    let limits = [process.deadlock_timeout, request_timeout_fire_point(process)];
    let sooner = limits.into_iter().filter(|limit| !limit.is_zero()).min().unwrap_or_default();
    crate::control::silence_allowed(sooner)
}

/// Applies the group's process settings to the current (freshly forked)
/// process. Errors name what failed.
pub fn become_daemon(process: &DaemonProcess, identity: &DefaultIdentity) -> Result<(), String> {
    sys::set_process_name(&display_name(process));
    if let Some(mask) = process.umask {
        sys::set_umask(mask);
    }
    // Without home=, a group running as another user than the server's
    // children starts in that user's home directory, as in mod_wsgi;
    // otherwise in the server's, `/`.
    let mut user_home = None;
    if sys::is_root() {
        let user_name = process.user.as_ref().or(identity.user.as_ref());
        if let Some(user_name) = user_name {
            let group = process.group.as_ref().or(identity.group.as_ref());
            let user = switch_identity(user_name, group.map(String::as_str), &process.supplementary_groups)?;
            if process.user.is_some() && process.user != identity.user {
                user_home = Some(user.home);
            }
        }
    }
    match (&process.home, user_home) {
        (Some(home), _) => std::env::set_current_dir(home)
            .map_err(|e| format!("cannot change to home directory {}: {e}", home.display()))?,
        // A user without a usable home (nobody's is /nonexistent) starts in
        // `/`: mod_wsgi would not start the process at all.
        (None, Some(home)) => {
            if std::env::set_current_dir(&home).is_err() {
                let _ = std::env::set_current_dir("/");
            }
        }
        (None, None) => {
            let _ = std::env::set_current_dir("/");
        }
    }
    // SAFETY-free environment changes: the process is single-threaded here
    // (freshly forked, before any thread starts).
    if let Some(lang) = &process.lang {
        std::env::set_var("LANG", lang);
    }
    if let Some(locale) = &process.locale {
        std::env::set_var("LC_ALL", locale);
    }
    if process.cpu_priority != 0 {
        sys::set_priority(process.cpu_priority).map_err(|e| format!("cannot set cpu-priority: {e}"))?;
    }
    if !process.cpu_time_limit.is_zero() {
        // As mod_wsgi: SIGXCPU at the limit stops the process gracefully;
        // the kernel kills it only if it is still there once its shutdown
        // has had time to run.
        let limit = process.cpu_time_limit.as_secs().max(1);
        sys::set_limit(sys::Limit::CpuSeconds, limit, limit + 1 + process.shutdown_timeout.as_secs())
            .map_err(|e| format!("cannot set cpu-time-limit: {e}"))?;
    }
    if process.memory_limit > 0 {
        sys::set_limit(sys::Limit::Data, process.memory_limit, process.memory_limit)
            .map_err(|e| format!("cannot set memory-limit: {e}"))?;
    }
    if process.virtual_memory_limit > 0 {
        sys::set_limit(sys::Limit::AddressSpace, process.virtual_memory_limit, process.virtual_memory_limit)
            .map_err(|e| format!("cannot set virtual-memory-limit: {e}"))?;
    }
    Ok(())
}

/// Switches this process, which runs as root, to `user_name` (a name or
/// `#uid`) with `group` (by default the user's primary group), the user's
/// supplementary groups and `extra` ones; the user's entry on success.
pub fn switch_identity(user_name: &str, group: Option<&str>, extra: &[String]) -> Result<sys::UserInfo, String> {
    let user = sys::lookup_user(user_name).ok_or_else(|| format!("no such user '{user_name}'"))?;
    let gid = match group {
        Some(group) => sys::lookup_group(group).ok_or_else(|| format!("no such group '{group}'"))?,
        None => user.gid,
    };
    let mut extra_ids = Vec::new();
    for group in extra {
        extra_ids.push(sys::lookup_group(group).ok_or_else(|| format!("no such group '{group}'"))?);
    }
    sys::switch_user(&user, gid, &extra_ids).map_err(|e| format!("cannot switch to user '{user_name}': {e}"))?;
    Ok(user)
}

/// The body of a daemon process after `fork`: become what the group asks,
/// make the interpreter (`make_runner`, which may fail: the process then
/// exits and the manager starts another), serve until told to stop, and
/// exit. Never returns.
pub fn daemon_main(
    process: &DaemonProcess,
    identity: &DefaultIdentity,
    listener: &UnixListener,
    control: ControlPipe,
    make_runner: &mut dyn FnMut() -> Result<Box<dyn WsgiRunner>, String>,
    log: &dyn ErrorLog,
) -> ! {
    sys::default_signals(&[
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGCHLD,
        libc::SIGHUP,
        libc::SIGXCPU,
    ]);
    // A daemon process never outlives its manager.
    let manager = std::os::unix::process::parent_id();
    sys::die_with_parent(libc::SIGKILL);
    let pid = std::process::id();
    if let Err(message) = become_daemon(process, identity) {
        log.log(
            LogLevel::Error,
            &format!("mod_wsgi (pid={pid}): daemon process of group '{}': {message}", process.name),
        );
        sys::exit_now(1);
    }
    // The kernel forgets the parent-death signal when the user changes:
    // set it again, and go if the manager is already gone.
    sys::die_with_parent(libc::SIGKILL);
    if std::os::unix::process::parent_id() != manager {
        sys::exit_now(1);
    }
    let stop: OwnedFd = match sys::on_signals(&[libc::SIGTERM, libc::SIGINT, libc::SIGUSR1, libc::SIGXCPU]) {
        Ok(fd) => fd,
        Err(e) => {
            log.log(LogLevel::Error, &format!("mod_wsgi (pid={pid}): cannot set up signal handling: {e}"));
            sys::exit_now(1);
        }
    };
    let runner = match make_runner() {
        Ok(runner) => runner,
        Err(message) => {
            log.log(
                LogLevel::Error,
                &format!("mod_wsgi (pid={pid}): daemon process of group '{}' cannot start: {message}", process.name),
            );
            sys::exit_now(1);
        }
    };
    log.log(
        LogLevel::Info,
        &format!("mod_wsgi (pid={pid}): Starting process '{}' with threads={}.", process.name, process.threads),
    );
    let stop_fd = std::os::fd::AsRawFd::as_raw_fd(&stop);
    if process.threads == 0 {
        // threads=0: a process for WSGIImportScript services, with no
        // request threads; it runs until told to stop.
        control.say(crate::control::READY);
        loop {
            // Alive, for the manager's liveness check, while it waits.
            match sys::poll_readable(&[stop_fd], Some(crate::control::HEARTBEAT_INTERVAL)) {
                Ok(ready) if ready == [true] => break,
                Ok(_) => control.say(crate::control::HEARTBEAT),
                Err(e) if e.kind() != std::io::ErrorKind::Interrupted => break,
                _ => {}
            }
        }
        runner.stop("", process.shutdown_timeout);
        std::mem::forget(runner);
        sys::exit_now(0)
    }
    let options = worker_options(process);
    let (end, reason) = worker::serve(listener, runner.as_ref(), &options, &control, stop_fd, log);
    match end {
        ServeEnd::Drained => {
            log.log(LogLevel::Info, &format!("mod_wsgi (pid={pid}): Process '{}' has stopped.", process.name))
        }
        ServeEnd::TimedOut => log.log(
            LogLevel::Warn,
            &format!("mod_wsgi (pid={pid}): Process '{}' stopped with requests still running.", process.name),
        ),
    }
    // The application's shutdown callbacks and atexit handlers, within
    // shutdown-timeout; Python and the threads are not torn down.
    runner.stop(reason, process.shutdown_timeout);
    std::mem::forget(runner);
    sys::exit_now(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_timeout_scales_with_the_log_of_threads() {
        let mut process = wsgi_config::DaemonProcess::new("g");
        process.request_timeout = std::time::Duration::from_secs(10);
        process.threads = 1;
        assert_eq!(super::request_timeout_fire_point(&process), std::time::Duration::from_secs(10));
        process.threads = 10;
        let fire = super::request_timeout_fire_point(&process).as_secs_f64();
        assert!((fire - 33.03).abs() < 0.01, "{fire}");
    }

    #[test]
    fn liveness_is_the_sooner_time_out_plus_two_heartbeats() {
        use std::time::Duration;
        let mut process = wsgi_config::DaemonProcess::new("g");
        process.threads = 1;
        // mod_wsgi's default deadlock-timeout of 300 s.
        assert_eq!(super::liveness_timeout(&process), Duration::from_secs(302));
        process.request_timeout = Duration::from_secs(5);
        assert_eq!(super::liveness_timeout(&process), Duration::from_secs(7));
        process.request_timeout = Duration::ZERO;
        process.deadlock_timeout = Duration::ZERO;
        assert_eq!(super::liveness_timeout(&process), Duration::ZERO);
    }
}
