//! Daemon mode under Apache: the parent starts a manager process per
//! `WSGIDaemonProcess` group (wsgi-daemon's), which forks the group's
//! daemon processes; Apache's children relay requests to them over the
//! group's UNIX socket.
//!
//! The listening socket of a group belongs to Apache's parent and outlives
//! configuration reloads: on a graceful restart the new generation's
//! manager starts new daemon processes on the same socket and retires the
//! old manager only once they are ready, so no request is refused.

use std::collections::HashMap;
use std::convert::Infallible;
use std::ffi::c_int;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use wsgi_config::model::GlobalSettings;
use wsgi_config::{DaemonProcess, DirSettings};
use wsgi_core::group::GroupScope;
use wsgi_core::{AppTarget, Environ, ResponseWriter, RunOutcome, WsgiRunner};
use wsgi_daemon::manager::{self, GroupSpec};
use wsgi_daemon::process::{self, DefaultIdentity};
use wsgi_daemon::runner::{DaemonRunner, GroupClient};
use wsgi_daemon::sys;
use wsgi_interp::{EmbeddedRunner, PythonConfig};

use crate::config::ServerConfig;
use crate::embedded::{pid, ApacheSink};
use crate::ffi::{self, Level, Pool, Request, RequestLog, Server};

/// A group as Apache's parent keeps it, across configuration generations.
struct ParentGroup {
    process: DaemonProcess,
    /// The `ServerName` of the virtual host that defines it (`None`: the
    /// main server, usable from every host).
    scope: Option<String>,
    socket: PathBuf,
    listener: UnixListener,
    manager: i32,
}

/// What the parent knows of the current generation.
#[derive(Default)]
struct ParentState {
    groups: Vec<ParentGroup>,
    global: GlobalSettings,
    main: Option<Server>,
    pool: Option<Pool>,
}

/// Only Apache's parent changes it (single-threaded, between
/// generations); children read their copy after `fork`.
static PARENT: Mutex<Option<ParentState>> = Mutex::new(None);

/// What a child knows of the daemon groups: the virtual host each is
/// defined in (`None`: the whole server), and the runner that relays to
/// them, as the standalone server's serving processes relay.
struct ChildGroups {
    scopes: HashMap<String, Option<String>>,
    runner: DaemonRunner,
}

/// Set in each child by `child_init`.
static CHILD: OnceLock<ChildGroups> = OnceLock::new();

/// Serialises socket names within this parent.
static SOCKET_COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// `post_config` in the parent: start (or restart, gaplessly) every group.
/// On the first start the scoreboard does not exist yet: the groups start
/// once it does, as mod_wsgi defers them, so that their processes share
/// it (`mod_wsgi.server_metrics()`).
pub(crate) fn start_groups(pool: Pool, main: Server) {
    if ffi::in_trial_configuration() {
        return;
    }
    if !ffi::scoreboard_exists() {
        *DEFERRED.lock().unwrap_or_else(|e| e.into_inner()) = Some((pool, main));
        ffi::run_after_scoreboard(start_deferred_groups);
        return;
    }
    start_groups_now(pool, main);
}

/// The pool and main server of a start deferred to `pre_mpm`.
static DEFERRED: Mutex<Option<(Pool, Server)>> = Mutex::new(None);

unsafe extern "C" fn start_deferred_groups(_pool: *mut ffi::apr_pool_t, _scoreboard_kind: c_int) -> c_int {
    ffi::guard(ffi::OK as c_int, || {
        // The configuration pool of post_config, not pre_mpm's: the
        // groups' cleanups belong to it.
        if let Some((pool, main)) = DEFERRED.lock().unwrap_or_else(|e| e.into_inner()).take() {
            start_groups_now(pool, main);
        }
        ffi::OK as c_int
    })
}

fn start_groups_now(pool: Pool, main: Server) {
    let Some(main_config) = main.config::<ServerConfig>() else {
        return;
    };
    let mut wanted: Vec<(DaemonProcess, Option<String>)> = Vec::new();
    for server in main.and_following() {
        if let Some(config) = server.config::<ServerConfig>() {
            let scope = server.is_virtual().then(|| server.hostname());
            for process in &config.daemon_processes {
                let mut process = process.clone();
                process.default_socket_timeout(server.timeout());
                wanted.push((process, scope.clone()));
            }
        }
    }
    let mut guard = PARENT.lock().unwrap_or_else(|e| e.into_inner());
    let state = guard.get_or_insert_with(ParentState::default);
    state.global = main_config.global.clone();
    state.main = Some(main);
    state.pool = Some(pool);
    let mut previous = std::mem::take(&mut state.groups);
    let prefix = match &state.global.socket_prefix {
        Some(prefix) => ffi::server_root_relative(pool, prefix),
        None => ffi::runtime_dir_relative(pool, "wsgi"),
    };
    for (process, scope) in wanted {
        let old = previous.iter().position(|g| g.process.name == process.name).map(|i| previous.remove(i));
        let (listener, socket, succeeds) = match old {
            Some(old) => (old.listener, old.socket, Some(old.manager)),
            None => match create_socket(&prefix, &process) {
                Ok((listener, socket)) => (listener, socket, None),
                Err(e) => {
                    main.log(
                        Level::Error,
                        &format!(
                            "mod_wsgi (pid={}): cannot create the socket of daemon group '{}': {e}",
                            pid(),
                            process.name
                        ),
                    );
                    continue;
                }
            },
        };
        if let Some(old_manager) = succeeds {
            // Still running until its successor is ready: Apache must know
            // it is ours when it exits.
            ffi::register_other_child(pool, old_manager, &process.name, manager_died);
        }
        let mut group = ParentGroup { process, scope, socket, listener, manager: 0 };
        match start_manager(state, &group, succeeds) {
            Ok(manager) => {
                group.manager = manager;
                ffi::register_other_child(pool, manager, &group.process.name, manager_died);
            }
            Err(e) => main.log(
                Level::Error,
                &format!("mod_wsgi (pid={}): cannot start daemon group '{}': {e}", pid(), group.process.name),
            ),
        }
        state.groups.push(group);
    }
    // Groups no longer configured stop (their processes finish first).
    for gone in previous {
        sys::kill(gone.manager, libc::SIGTERM);
        let _ = std::fs::remove_file(&gone.socket);
    }
}

/// Creates the group's listening socket, connectable only by Apache's
/// child user, or `socket-user=` (and root): the daemon processes accept
/// on the inherited descriptor and need no access to the file.
fn create_socket(prefix: &std::path::Path, process: &DaemonProcess) -> std::io::Result<(UnixListener, PathBuf)> {
    let n = SOCKET_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = prefix.as_os_str().to_os_string();
    name.push(format!(".{}.{n}.sock", std::process::id()));
    let socket = PathBuf::from(name);
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let listener = sys::group_socket(&socket, process)?;
    if sys::is_root() {
        let (_, _, child_uid, gid) = ffi::child_identity();
        // socket-user=: another owner (Apache's ITK or PrivilegesMode
        // children run as other users).
        let uid = match &process.socket_user {
            Some(user) => {
                sys::lookup_user(user)
                    .ok_or_else(|| std::io::Error::other(format!("socket-user: no such user '{user}'")))?
                    .uid
            }
            None => child_uid,
        };
        sys::chown(&socket, uid, gid)?;
    }
    Ok((listener, socket))
}

/// Forks the group's manager (the parent is single-threaded here).
fn start_manager(state: &ParentState, group: &ParentGroup, succeeds: Option<i32>) -> std::io::Result<i32> {
    let process = &group.process;
    let spec = GroupSpec::for_process(process, group.socket.clone(), succeeds);
    let (user, group_name, _, _) = ffi::child_identity();
    let identity = DefaultIdentity { user, group: group_name };
    let main = state.main.ok_or_else(|| std::io::Error::other("the main server is not known yet"))?;
    let mut python = PythonConfig::for_daemon_process(&state.global, process);
    python.apache = Some(crate::embedded::apache_facts());
    wsgi_interp::read_scoreboard_with(ffi::scoreboard);
    python.interpreter_options =
        main.config::<ServerConfig>().map(|c| c.interpreter_options.clone()).unwrap_or_default();
    let preloads = crate::config::preloads(main, &process.name);
    let listener = &group.listener;
    let log_main = move |message: &str| main.log(Level::Info, &format!("mod_wsgi (pid={}): {message}", pid()));
    let mut spawn = |_slot: usize, control| -> Infallible {
        let mut make_runner = || -> Result<Box<dyn WsgiRunner>, String> {
            let runner =
                EmbeddedRunner::for_daemon_process(python.clone(), &preloads, &main).map_err(|e| e.to_string())?;
            Ok(Box::new(runner))
        };
        process::daemon_main(process, &identity, listener, control, &mut make_runner, &main)
    };
    // SAFETY: Apache's parent is single-threaded while it runs post_config
    // and the other-child callbacks, where this is called.
    unsafe { manager::fork_manager(&spec, &mut spawn, &log_main) }
}

/// A manager died (not one we retired): start another for its group.
fn manager_died(group_name: &str, dead: i32) {
    let mut guard = PARENT.lock().unwrap_or_else(|e| e.into_inner());
    let Some(state) = guard.as_mut() else { return };
    let Some(index) = state.groups.iter().position(|g| g.process.name == group_name && g.manager == dead) else {
        return;
    };
    if let Some(main) = state.main {
        main.log(
            Level::Error,
            &format!("mod_wsgi (pid={}): manager of daemon group '{group_name}' died; restarting it", pid()),
        );
    }
    let group = &state.groups[index];
    if let Ok(manager) = start_manager(state, group, None) {
        if let Some(pool) = state.pool {
            ffi::register_other_child(pool, manager, group_name, manager_died);
        }
        state.groups[index].manager = manager;
    }
}

/// `child_init`: the groups this child may send requests to.
pub(crate) fn child_init() {
    let guard = PARENT.lock().unwrap_or_else(|e| e.into_inner());
    let Some(state) = guard.as_ref() else { return };
    let scopes = state.groups.iter().map(|g| (g.process.name.clone(), g.scope.clone())).collect();
    let clients = state
        .groups
        .iter()
        .map(|g| (g.process.name.clone(), GroupClient::for_group(g.socket.clone(), &g.process)))
        .collect();
    // Requests for no group never reach this runner: the handler runs
    // them itself.
    let _ = CHILD.set(ChildGroups { scopes, runner: DaemonRunner::new(clients, None) });
}

/// Relays a request to its daemon group; the handler's status.
pub(crate) fn forward(
    request: &Request,
    group_name: &str,
    target: AppTarget,
    environ: Environ,
    settings: &DirSettings,
) -> c_int {
    let child = CHILD.get();
    let scope = match child.and_then(|child| child.scopes.get(group_name)) {
        None => GroupScope::Undefined,
        Some(Some(host)) if host.as_bytes() != request.server_hostname() => GroupScope::OtherVirtualHost,
        Some(_) => GroupScope::Usable,
    };
    let runner = match (wsgi_core::group::check_process_group(group_name, scope, settings), child) {
        (Ok(()), Some(child)) => &child.runner,
        (checked, _) => {
            if let Err(refusal) = checked {
                request.log(Level::Error, &format!("mod_wsgi (pid={}): {refusal}", pid()));
            }
            return ffi::HTTP_INTERNAL_SERVER_ERROR as c_int;
        }
    };
    let log = RequestLog::new(request);
    // A HEAD that WSGIMapHEADToGET made a GET sends its body down Apache's
    // filters, which see it whole; Apache drops it after them.
    let head_only = environ.get_str("REQUEST_METHOD") == Some("HEAD");
    let mut body = request.body_reader();
    let mut sink = ApacheSink::new(request);
    // WSGIErrorOverride acts in daemon mode only, as in mod_wsgi.
    sink.error_override = settings.error_override == Some(true);
    let mut writer = ResponseWriter::new(&mut sink, head_only);
    let outcome = runner.run(&target, environ, &mut body, &mut writer, &log);
    let cut_short = outcome == RunOutcome::Failed && writer.head_sent();
    drop(writer);
    sink.restore_client_timeout();
    if cut_short {
        request.close_connection();
    }
    sink.handler_status()
}
