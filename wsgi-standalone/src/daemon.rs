//! Daemon mode in the standalone server: the top process starts a manager
//! per `WSGIDaemonProcess` group (this executable again, `daemon-manager`),
//! which forks the group's daemon processes; serving processes relay
//! requests to them through wsgi-daemon's client.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;

use wsgi_config::{Config, DaemonProcess};
use wsgi_core::{LogLevel, WsgiRunner};
use wsgi_daemon::control::ControlPipe;
use wsgi_daemon::manager::{self, GroupSpec};
use wsgi_daemon::process::{self, DefaultIdentity};
use wsgi_daemon::runner::GroupClient;
use wsgi_interp::{EmbeddedRunner, PythonConfig};

use crate::logging::ServerLog;

/// The effective configuration, as text, for managers and serving processes.
pub const CONFIG_ENV: &str = "WSGI_RS_CONFIG_TEXT";
/// `NAME\tPATH` lines: the sockets of the daemon groups.
pub const SOCKETS_ENV: &str = "WSGI_RS_DAEMON_SOCKETS";
/// The inherited descriptor of a manager's listening socket.
const SOCKET_FD_ENV: &str = "WSGI_RS_DAEMON_FD";

/// The daemon groups started by the top process; stopped on drop.
pub struct Groups {
    sockets: Vec<(String, PathBuf)>,
    managers: Vec<Child>,
}

impl Groups {
    /// Has every group's manager replace its daemon processes, each
    /// successor serving before its predecessor stops.
    pub fn replace_all(&self) {
        for manager in &self.managers {
            wsgi_daemon::sys::kill(manager.id() as i32, libc::SIGUSR1);
        }
    }

    /// `SOCKETS_ENV`'s value for serving processes.
    pub fn sockets_env(&self) -> String {
        self.sockets.iter().map(|(name, path)| format!("{name}\t{}\n", path.display())).collect()
    }
}

impl Drop for Groups {
    fn drop(&mut self) {
        for manager in &self.managers {
            wsgi_daemon::sys::kill(manager.id() as i32, libc::SIGTERM);
        }
        for manager in &mut self.managers {
            let _ = manager.wait();
        }
        for (_, socket) in &self.sockets {
            let _ = std::fs::remove_file(socket);
        }
    }
}

/// Starts a manager for every daemon group of `config` (from the main
/// thread, which lives as long as the server: the managers die with it).
///
/// A group's socket belongs to the serving processes' user (`serving`:
/// uid and gid, when they change user) unless `socket-user=` names another.
pub fn start_groups(config: &Config, serving: Option<(u32, u32)>, log: &ServerLog) -> Result<Groups, String> {
    let mut groups = Groups { sockets: Vec::new(), managers: Vec::new() };
    if config.daemon_processes.is_empty() {
        return Ok(groups);
    }
    let text = config.to_text();
    let prefix = config
        .global
        .socket_prefix
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("wsgi-standalone.{}", std::process::id())));
    for (n, group) in config.daemon_processes.iter().enumerate() {
        let name = &group.process.name;
        let mut socket = prefix.as_os_str().to_os_string();
        socket.push(format!(".{n}.sock"));
        let socket = PathBuf::from(socket);
        let listener = wsgi_daemon::sys::group_socket(&socket, &group.process)
            .map_err(|e| format!("cannot create {}: {e}", socket.display()))?;
        if let Some(user) = &group.process.socket_user {
            let owner = wsgi_daemon::sys::lookup_user(user).ok_or(format!("socket-user: no such user '{user}'"))?;
            wsgi_daemon::sys::chown(&socket, owner.uid, owner.gid)
                .map_err(|e| format!("socket-user: cannot give {} to '{user}': {e}", socket.display()))?;
        } else if let Some((uid, gid)) = serving {
            wsgi_daemon::sys::chown(&socket, uid, gid)
                .map_err(|e| format!("cannot give {} to the serving user: {e}", socket.display()))?;
        }
        let fd = listener.as_raw_fd();
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
        let mut command = Command::new(exe);
        command.args(["daemon-manager", "--group", name]).arg("--socket").arg(&socket);
        command.env(CONFIG_ENV, &text).env(SOCKET_FD_ENV, fd.to_string());
        // The manager keeps the socket, and dies with this process.
        let child = wsgi_daemon::sys::spawn_inheriting(&mut command, vec![fd])
            .map_err(|e| format!("cannot start the manager of group '{name}': {e}"))?;
        log.log(LogLevel::Info, &format!("started daemon group '{name}' (manager pid {})", child.id()));
        groups.managers.push(child);
        groups.sockets.push((name.clone(), socket));
        // The manager holds the listening socket now.
        drop(listener);
    }
    Ok(groups)
}

/// The clients of the daemon groups for a serving process, whose sockets
/// the top process named in `SOCKETS_ENV`.
pub fn clients(config: &Config) -> HashMap<String, GroupClient> {
    let inherited_text = std::env::var(SOCKETS_ENV);
    // Taken: the applications' os.environ does not show it.
    std::env::remove_var(SOCKETS_ENV);
    let inherited: Vec<(String, PathBuf)> = inherited_text
        .ok()
        .map(|text| {
            text.lines()
                .filter_map(|line| line.split_once('\t'))
                .map(|(name, path)| (name.to_string(), PathBuf::from(path)))
                .collect()
        })
        .unwrap_or_default();
    let mut clients = HashMap::new();
    for (name, socket) in &inherited {
        let Some(group) = config.daemon_processes.iter().find(|g| &g.process.name == name) else { continue };
        let process = &group.process;
        clients.insert(name.clone(), GroupClient::for_group(socket.clone(), process));
    }
    clients
}

/// The groups of `clients` again, for the relay from the I/O thread
/// (`relay`), with their own kept connections.
pub fn relay_groups(config: &Config, clients: &HashMap<String, GroupClient>) -> crate::relay::DaemonGroups {
    let groups = clients
        .iter()
        .filter_map(|(name, client)| {
            let group = config.daemon_processes.iter().find(|g| &g.process.name == name)?;
            Some((name.clone(), GroupClient::for_group(client.client.socket().to_path_buf(), &group.process)))
        })
        .collect();
    crate::relay::DaemonGroups::new(groups)
}

/// `wsgi-standalone daemon-manager`: runs one group's manager (started by
/// [`start_groups`], never by hand).
pub fn manager_main(group_name: &str, socket: &Path) -> Result<(), String> {
    let text = std::env::var(CONFIG_ENV).map_err(|_| format!("{CONFIG_ENV} is not set"))?;
    let fd: RawFd = std::env::var(SOCKET_FD_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{SOCKET_FD_ENV} is not set"))?;
    // Taken: the daemon processes' applications see neither the server's
    // configuration nor the socket's descriptor in their environment.
    std::env::remove_var(CONFIG_ENV);
    std::env::remove_var(SOCKET_FD_ENV);
    let options = wsgi_config::tree::ReadOptions::standalone("/").with_python(wsgi_interp::PYTHON_FEATURES);
    let config = wsgi_config::load_str(&text, Path::new("<server configuration>"), &options)
        .map_err(|errors| errors.to_string())?;
    // Standard error is the server's error log, inherited.
    let level = config.log_level(&config.main_server).and_then(crate::logging::level_of).unwrap_or(LogLevel::Info);
    let log = Arc::new(ServerLog::new(crate::logging::LogSink::stderr(), level));
    let process: DaemonProcess = config
        .daemon_processes
        .iter()
        .find(|g| g.process.name == group_name)
        .map(|g| g.process.clone())
        .ok_or_else(|| format!("no daemon group '{group_name}' in the configuration"))?;
    let listener = UnixListener::from(
        wsgi_daemon::sys::inherited_fd(fd).ok_or_else(|| format!("{SOCKET_FD_ENV} names no open descriptor"))?,
    );
    let _ = wsgi_daemon::sys::set_nonblocking(fd, false);
    let spec = GroupSpec::for_process(&process, socket.to_path_buf(), None);
    // Without user=, daemon processes run as the server's User, as under
    // Apache.
    let identity = DefaultIdentity { user: config.user.clone(), group: config.group.clone() };
    // WSGIImportScript lines for the group, and script aliases naming both
    // groups, are imported when a daemon process starts, as in mod_wsgi.
    let preloads = config.preloads(&process.name);
    let mut python = PythonConfig::for_daemon_process(&config.global, &process);
    python.interpreter_options = config.interpreter_options.clone();
    let mut spawn = |_slot: usize, control: ControlPipe| -> std::convert::Infallible {
        let log = log.as_ref();
        let mut make_runner = || -> Result<Box<dyn WsgiRunner>, String> {
            let runner =
                EmbeddedRunner::for_daemon_process(python.clone(), &preloads, log).map_err(|e| e.to_string())?;
            Ok(Box::new(runner))
        };
        process::daemon_main(&process, &identity, &listener, control, &mut make_runner, log)
    };
    let log_line = |message: &str| log.log(LogLevel::Info, message);
    manager::become_manager_process();
    manager::run_forking(&spec, &mut spawn, &log_line)
        .map_err(|e| format!("the manager of group '{group_name}' failed: {e}"))
}

/// The runner of a serving process: daemon groups by name, with embedded
/// Python for the rest unless `WSGIRestrictEmbedded On`.
pub fn runner(groups: HashMap<String, GroupClient>, embedded: Option<Arc<dyn WsgiRunner>>) -> Arc<dyn WsgiRunner> {
    Arc::new(wsgi_daemon::runner::DaemonRunner::new(groups, embedded))
}
