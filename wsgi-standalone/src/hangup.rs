//! SIGHUP to the top process: re-read `--config`, then replace every
//! serving process and every daemon process, each replacement serving
//! before what it replaces stops (the managers' successor rule), so that
//! new code and a changed configuration go live without a failed request.
//!
//! Serving processes read the configuration themselves when they start,
//! so what they apply (servers, routes, access, limits, certificates)
//! changes with them. What the top process owns (the listening sockets,
//! the identity, the daemon groups' definitions, the log files) changes
//! only on a restart: a file that changes it is refused, as one that no
//! longer reads, and the running processes keep serving.

use wsgi_config::Config;
use wsgi_core::LogLevel;

use wsgi_daemon::manager::ServerControl;

use crate::cli::{read_options, ServerArgs};
use crate::daemon::Groups;
use crate::listen::Notifier;
use crate::logging::ServerLog;

/// The top process, as the manager of its serving processes sees it.
pub(crate) struct TopProcess<'a> {
    /// The command line.
    pub(crate) args: &'a ServerArgs,
    /// The configuration it started with.
    pub(crate) running: &'a Config,
    /// The daemon groups' managers.
    pub(crate) groups: &'a Groups,
    /// The main error log.
    pub(crate) log: &'a ServerLog,
    /// systemd, when it listens.
    pub(crate) systemd: &'a Notifier,
}

impl ServerControl for TopProcess<'_> {
    fn before_replacing(&mut self) -> bool {
        before_replacing(self.args, self.running, self.groups, self.log)
    }

    fn started(&mut self) {
        // The signals are handled and the serving processes started: the
        // sockets listen, and connections queue until they accept.
        self.systemd.notify(&format!("READY=1\nMAINPID={}", std::process::id()));
    }

    fn stopping(&mut self) {
        self.systemd.notify("STOPPING=1");
    }
}

/// Whether to go ahead with a SIGHUP's replacement: a `--config` that no
/// longer reads, or that changes what only a restart applies, keeps the
/// running processes (and logs why). Tells the
/// daemon groups' managers to replace their processes when it goes ahead.
fn before_replacing(args: &ServerArgs, running: &Config, groups: &Groups, log: &ServerLog) -> bool {
    if let Some(file) = &args.config {
        match wsgi_config::load_file(file, &read_options(file, None)) {
            Ok(mut reread) => {
                crate::serve::settle(&mut reread, args);
                let changed = restart_only_changes(running, &reread);
                if !changed.is_empty() {
                    // New serving processes would read what the top
                    // process does not provide (its sockets, log files,
                    // daemon groups, identity).
                    log.log(
                        LogLevel::Error,
                        &format!(
                            "SIGHUP: {} changed in {}, which takes a restart; the running processes keep serving",
                            changed.join(", "),
                            file.display()
                        ),
                    );
                    return false;
                }
            }
            Err(errors) => {
                log.log(
                    LogLevel::Error,
                    &format!(
                        "SIGHUP: {} no longer reads; the running processes keep serving:\n{errors}",
                        file.display()
                    ),
                );
                return false;
            }
        }
    }
    log.log(LogLevel::Info, "SIGHUP: replacing every serving and daemon process");
    groups.replace_all();
    true
}

/// The settings of `reread` that differ from `running` and that only a
/// restart applies.
fn restart_only_changes(running: &Config, reread: &Config) -> Vec<&'static str> {
    let processes = |c: &Config| c.daemon_processes.iter().map(|g| g.process.clone()).collect::<Vec<_>>();
    let mut changed = Vec::new();
    if running.listen != reread.listen {
        changed.push("Listen");
    }
    if (&running.user, &running.group) != (&reread.user, &reread.group) {
        changed.push("User/Group");
    }
    if processes(running) != processes(reread) {
        changed.push("WSGIDaemonProcess");
    }
    let logs = |c: &Config| {
        std::iter::once(&c.main_server)
            .chain(&c.virtual_hosts)
            .map(|s| (c.error_log(s), c.access_logs(s).into_iter().map(|a| a.path).collect::<Vec<_>>()))
            .collect::<Vec<_>>()
    };
    if logs(running) != logs(reread) {
        changed.push("ErrorLog/CustomLog");
    }
    changed
}
