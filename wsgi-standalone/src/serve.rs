//! `start-server`: the configuration to serve (a file, or a script turned
//! into the directives mod_wsgi-express would write), the Python homes,
//! the listening sockets, daemon groups and serving processes, then the
//! HTTP server itself.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use wsgi_config::lexer::quote_word;
use wsgi_config::support::{standalone_other_module, OtherModule};
use wsgi_config::tree::ReadOptions;
use wsgi_config::Config;
use wsgi_core::access::{AuthScripts, HostNames};
use wsgi_core::environ_build::{Versions, WsgiFlags};
use wsgi_core::pipeline::AccessParts;
use wsgi_core::pipeline::{Site, SiteOptions};
use wsgi_core::LogLevel;
use wsgi_interp::auth::ScriptAuth;
use wsgi_interp::{EmbeddedRunner, ProcessFacts, PythonConfig, PythonRuntime, ScriptDispatcher};

use crate::app_target::{AppTarget, ServedScript};
use crate::cli::{read_options, ServerArgs};
use crate::listen::{self, ListenSocket};
use crate::log_files::LogFiles;
use crate::logging::{self, AccessLog, LogSink, ServerLog, ServerLogs, SiteLogs};
use crate::{daemon, hangup, http, reload, supervisor, workers};
use std::path::PathBuf;
use wsgi_config::log_format::LogFormat;

/// The configuration `start-server SCRIPT` serves, written as the
/// directives mod_wsgi-express would generate, so that it goes through the
/// same parser and checks as any configuration file.
fn script_config(args: &ServerArgs, served: &ServedScript, path_first: Option<&Path>) -> Result<Config, String> {
    let script = &served.path;
    let mut text = String::new();
    let mut line = |words: Vec<String>| {
        text.push_str(&words.iter().map(|w| quote_word(w)).collect::<Vec<_>>().join(" "));
        text.push('\n');
    };
    let python_path: Vec<String> = path_first
        .into_iter()
        .chain(args.python_path.iter().map(PathBuf::as_path))
        .map(|p| p.display().to_string())
        .collect();
    if !python_path.is_empty() {
        line(vec!["WSGIPythonPath".into(), python_path.join(":")]);
    }
    if let Some(home) = &args.python_home {
        line(vec!["WSGIPythonHome".into(), home.display().to_string()]);
    }
    line(vec!["LimitRequestBody".into(), args.limit_request_body.min(2_147_483_647).to_string()]);
    // Unlike mod_wsgi's default, chunked request bodies are accepted.
    line(vec!["WSGIChunkedRequest".into(), "On".into()]);
    // As with mod_wsgi-express, code changes are picked up by
    // --reload-on-changes (a fresh process), not by stat()ing the script on
    // every request.
    line(vec!["WSGIScriptReloading".into(), "Off".into()]);
    // Idle connections cost no worker here, as under mpm_event, for which
    // mod_wsgi-express lifts Apache's limit of 100: a client (or a proxy)
    // then does not pay a new connection, and a TLS handshake, every 100
    // requests.
    line(vec!["MaxKeepAliveRequests".into(), "0".into()]);
    if !args.trust_proxy_header.is_empty() {
        line(
            std::iter::once("WSGITrustedProxyHeaders".to_string())
                .chain(args.trust_proxy_header.iter().cloned())
                .collect(),
        );
    }
    if !args.trust_proxy.is_empty() {
        line(std::iter::once("WSGITrustedProxies".to_string()).chain(args.trust_proxy.iter().cloned()).collect());
    }
    for pair in args.setenv.chunks(2) {
        line(vec!["SetEnv".into(), pair[0].clone(), pair[1].clone()]);
    }
    for pair in args.url_alias.chunks(2) {
        line(vec!["Alias".into(), pair[0].clone(), pair[1].clone()]);
    }
    let mut alias = vec![
        "WSGIScriptAlias".into(),
        args.mount_point.clone(),
        script.display().to_string(),
        format!("application-group={}", args.application_group),
        format!("callable-object={}", served.callable),
    ];
    if args.daemon {
        let group = daemon_group_name(args);
        line(vec!["WSGIRestrictEmbedded".into(), "On".into()]);
        let mut daemon = vec![
            "WSGIDaemonProcess".into(),
            group.clone(),
            format!("processes={}", args.processes),
            format!("threads={}", args.threads),
            format!("queue-timeout={}", args.queue_timeout),
            format!("request-timeout={}", args.request_timeout),
            format!("graceful-timeout={}", args.graceful_timeout),
            format!("shutdown-timeout={}", args.shutdown_timeout),
        ];
        if args.maximum_requests > 0 {
            daemon.push(format!("maximum-requests={}", args.maximum_requests));
        }
        if let Some(home) = &args.python_home {
            daemon.push(format!("python-home={}", home.display()));
        }
        if let (Some(_), Some(dir)) = (&args.working_directory, path_first) {
            // Daemon processes start in their home= (by default their
            // user's home directory, as under mod_wsgi).
            daemon.push(format!("home={}", dir.display()));
        }
        line(daemon);
        alias.push(format!("process-group={group}"));
    }
    line(alias);
    line(vec!["Listen".into(), format!("{}:{}", args.host, args.port)]);
    if let Some(port) = args.https_port {
        // As mod_wsgi-express writes it: a virtual host for the TLS port.
        let (Some(cert), Some(key)) = (&args.ssl_certificate_file, &args.ssl_certificate_key_file) else {
            return Err("--https-port needs --ssl-certificate-file and --ssl-certificate-key-file".into());
        };
        line(vec!["Listen".into(), format!("{}:{port}", args.host), "https".into()]);
        line(vec!["<VirtualHost".into(), format!("{}:{port}>", args.host)]);
        line(vec!["SSLEngine".into(), "On".into()]);
        line(vec!["SSLCertificateFile".into(), absolute(cert)?]);
        line(vec!["SSLCertificateKeyFile".into(), absolute(key)?]);
        line(vec!["</VirtualHost>".into()]);
    }
    wsgi_config::load_str(
        &text,
        Path::new("<start-server options>"),
        &ReadOptions::standalone("/").with_python(wsgi_interp::PYTHON_FEATURES),
    )
    .map_err(|errors| errors.to_string())
}

/// A path made absolute, as the configuration text of a script needs it.
fn absolute(path: &Path) -> Result<String, String> {
    std::fs::canonicalize(path).map(|p| p.display().to_string()).map_err(|e| format!("{}: {e}", path.display()))
}

/// The daemon group of `start-server --daemon`: `HOST:PORT`, as
/// mod_wsgi-express names it.
fn daemon_group_name(args: &ServerArgs) -> String {
    format!("{}:{}", args.host, args.port)
}

/// The addresses to listen on: the configuration's `Listen` lines (a
/// script's configuration has them from the flags), else `--host` and
/// `--port`.
fn listen_addresses(config: &Config, args: &ServerArgs) -> Result<Vec<SocketAddr>, String> {
    let specs: Vec<(String, u16)> = if config.listen.is_empty() {
        vec![(args.host.clone(), args.port)]
    } else {
        config.listen.iter().map(|l| (l.address.clone().unwrap_or_else(|| "0.0.0.0".into()), l.port)).collect()
    };
    let mut addresses = Vec::new();
    for (host, port) in specs {
        let found =
            (host.as_str(), port).to_socket_addrs().map_err(|e| format!("cannot resolve {host}:{port}: {e}"))?;
        addresses.extend(found.take(1));
    }
    Ok(addresses)
}

/// A listening socket on `address` with `backlog` as its queue.
fn bind(address: &SocketAddr, backlog: u32) -> Result<TcpListener, String> {
    let socket = TcpListener::bind(address).map_err(|e| format!("cannot listen on {address}: {e}"))?;
    wsgi_daemon::sys::set_listen_backlog(std::os::fd::AsRawFd::as_raw_fd(&socket), backlog)
        .map_err(|e| format!("cannot set the backlog of {address}: {e}"))?;
    Ok(socket)
}

/// `--proxy-allow-from`, or this machine.
fn proxy_allow_from(args: &ServerArgs) -> Vec<wsgi_config::values::IpSubnet> {
    if !args.proxy_allow_from.is_empty() {
        return args.proxy_allow_from.clone();
    }
    ["127.0.0.1", "::1"].iter().filter_map(|a| wsgi_config::values::IpSubnet::parse(a).ok()).collect()
}

/// `--pid-file`: the top process's id, in a file removed when it stops.
struct PidFile(PathBuf);

impl PidFile {
    /// Writes this process's id to `path`, refusing a file that names a
    /// live process (another server), and never following a symbolic
    /// link there.
    fn write(path: &Path) -> Result<PidFile, String> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let error = |e: std::io::Error| format!("--pid-file {}: {e}", path.display());
        if let Some(pid) = std::fs::read_to_string(path).ok().and_then(|text| text.trim().parse::<i32>().ok()) {
            if pid != std::process::id() as i32 && wsgi_daemon::sys::process_exists(pid) {
                return Err(format!("--pid-file {}: process {pid} (another server?) is running", path.display()));
            }
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(error)?;
        writeln!(file, "{}", std::process::id()).map_err(error)?;
        Ok(PidFile(path.to_path_buf()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Only while it still names this process.
        let ours = std::fs::read_to_string(&self.0).is_ok_and(|text| text.trim() == std::process::id().to_string());
        if ours {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// How many requests this serving process takes before it asks to be
/// replaced: `--maximum-requests` plus a random share of
/// `--max-requests-jitter` (0: never).
fn recycle_after(args: &ServerArgs) -> u64 {
    // With --daemon the daemon group recycles; its relay does not.
    if args.daemon {
        return 0;
    }
    if args.maximum_requests == 0 || args.max_requests_jitter == 0 {
        return args.maximum_requests;
    }
    use std::hash::{BuildHasher, Hasher};
    // A randomly keyed hasher is the standard library's random source.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let share = hasher.finish() % args.max_requests_jitter.saturating_add(1);
    args.maximum_requests.saturating_add(share)
}

/// The listening sockets with their TLS setups: an address speaks TLS
/// when its servers have `SSLEngine on`, and must when its `Listen` line
/// says `https`. A UNIX socket speaks plain HTTP, as the main server's
/// `Protocols` say.
fn with_tls(config: &Config, sockets: Vec<ListenSocket>) -> Result<Vec<http::Listener>, String> {
    sockets
        .into_iter()
        .map(|socket| {
            let Some(local) = socket.tcp_address() else {
                let h2c = config.protocols(&config.main_server).iter().any(|p| p == "h2c");
                return Ok(http::Listener { socket, tls: None, h2c });
            };
            let https = config.listen.iter().any(|l| {
                l.port == local.port() && l.protocol.as_deref().is_some_and(|p| p.eq_ignore_ascii_case("https"))
            });
            // The address's first server's Protocols decide HTTP/2.
            let protocols = config.servers_at(local).first().map(|s| config.protocols(s)).unwrap_or_default();
            let tls = crate::tls::server_config(config, local, https, protocols.iter().any(|p| p == "h2"))?;
            let h2c = tls.is_none() && protocols.iter().any(|p| p == "h2c");
            Ok(http::Listener { socket, tls, h2c })
        })
        .collect()
}

/// `serving on http://ADDRESS/`, `https://`, or `unix:PATH`, as each
/// socket speaks.
fn serving_on(listeners: &[http::Listener]) -> Vec<String> {
    listeners.iter().map(|l| l.socket.describe(if l.tls.is_some() { "https" } else { "http" })).collect()
}

/// The top process's listening sockets: systemd's when it passed some,
/// else `--uds`, else the configuration's `Listen` addresses (or `--host`
/// and `--port`). A UNIX socket's file goes with the returned guard.
fn listening_sockets(
    config: &Config,
    args: &ServerArgs,
    activated: Option<Vec<ListenSocket>>,
    serving: Option<(u32, u32)>,
    log: &ServerLog,
) -> Result<(Vec<ListenSocket>, Option<listen::SocketFile>), String> {
    if let Some(sockets) = activated {
        if args.uds.is_some() {
            return Err("--uds: systemd passed the sockets to serve on (LISTEN_FDS); give one or the other".into());
        }
        log.log(
            LogLevel::Info,
            &format!(
                "serving on the {} sockets systemd passed (LISTEN_FDS), not --host/--port or Listen; their \
                 backlog is the socket unit's",
                sockets.len()
            ),
        );
        return Ok((sockets, None));
    }
    if let Some(path) = &args.uds {
        let (socket, file) = listen::bind_unix(path, args.uds_permissions, serving, args.server_backlog)?;
        return Ok((vec![socket], Some(file)));
    }
    let addresses = listen_addresses(config, args)?;
    let sockets = addresses.iter().map(|addr| bind(addr, args.server_backlog)).collect::<Result<Vec<_>, _>>()?;
    Ok((sockets.into_iter().map(ListenSocket::Tcp).collect(), None))
}

/// The command-line flags that stand for Apache core directives replace
/// those directives in every server of the configuration.
fn apply_directive_flags(config: &mut Config, args: &ServerArgs) {
    for server in std::iter::once(&mut config.main_server).chain(&mut config.virtual_hosts) {
        if let Some(seconds) = args.socket_timeout {
            server.timeout = Some(Duration::from_secs(seconds));
        }
        if let Some(seconds) = args.keep_alive_timeout {
            server.keep_alive = Some(seconds > 0);
            server.keep_alive_timeout = Some(Duration::from_secs(seconds));
        }
        server.max_keep_alive_requests = args.max_keep_alive_requests.or(server.max_keep_alive_requests);
        server.limit_request_line = args.limit_request_line.or(server.limit_request_line);
        server.limit_request_field_size = args.limit_request_field_size.or(server.limit_request_field_size);
        server.limit_request_fields = args.limit_request_fields.or(server.limit_request_fields);
        if let Some(level) = &args.log_level {
            server.log_level = Some(vec![level.clone()]);
        }
        if args.http2 {
            server.protocols = Some(["h2", "h2c", "http/1.1"].map(String::from).to_vec());
        }
    }
}

/// The configuration as this server runs it: the flags that stand for
/// directives applied, and each daemon group's socket timeout defaulting
/// to its server's `Timeout`, as under Apache.
pub(crate) fn settle(config: &mut Config, args: &ServerArgs) {
    apply_directive_flags(config, args);
    config.user = args.user.clone().or(config.user.take());
    config.group = args.group.clone().or(config.group.take());
    for index in 0..config.daemon_processes.len() {
        let server = match config.daemon_processes[index].virtual_host {
            Some(host) => &config.virtual_hosts[host],
            None => &config.main_server,
        };
        let timeout = config.connection_settings(server).timeout;
        config.daemon_processes[index].process.default_socket_timeout(timeout);
    }
}

/// Who serves: `User`/`Group` (or `--user`/`--group`), which apply only
/// when the server starts as root, as in Apache.
struct Identity {
    user: Option<(String, wsgi_daemon::sys::UserInfo)>,
    group: Option<(String, u32)>,
    root: bool,
}

impl Identity {
    /// Looks the user and group up now, so that a name that does not
    /// exist stops the server before it serves.
    fn of(config: &Config) -> Result<Identity, String> {
        use wsgi_daemon::sys;
        let root = sys::is_root();
        let user = match (&config.user, root) {
            (Some(name), true) => {
                Some((name.clone(), sys::lookup_user(name).ok_or_else(|| format!("User: no such user '{name}'"))?))
            }
            _ => None,
        };
        let group = match (&config.group, &user) {
            (Some(name), Some(_)) => {
                Some((name.clone(), sys::lookup_group(name).ok_or_else(|| format!("Group: no such group '{name}'"))?))
            }
            _ => None,
        };
        Ok(Identity { user, group, root })
    }

    /// The uid and gid serving processes run as, when they change.
    fn uid_gid(&self) -> Option<(u32, u32)> {
        let (_, user) = self.user.as_ref()?;
        Some((user.uid, self.group.as_ref().map_or(user.gid, |(_, gid)| *gid)))
    }

    /// Becomes the user, with its supplementary groups.
    fn become_it(&self) -> Result<(), String> {
        if let Some((name, _)) = &self.user {
            let parent = std::os::unix::process::parent_id();
            wsgi_daemon::process::switch_identity(name, self.group.as_ref().map(|(g, _)| g.as_str()), &[])?;
            // The kernel forgets the parent-death signal when credentials
            // change: set it again, so that a serving process never
            // outlives its top process, and go if that is already gone.
            wsgi_daemon::sys::die_with_parent(libc::SIGTERM);
            if std::os::unix::process::parent_id() != parent {
                return Err("the top process is gone".into());
            }
        }
        Ok(())
    }

    fn warn_if_root(&self, log: &ServerLog) {
        if self.root && self.user.is_none() {
            log.log(
                LogLevel::Warn,
                "started as root with no user: the application runs as root; give --user (or User in the \
                 configuration) to serve as another user",
            );
        }
    }
}

/// Names hosts for `Require host` with the system's resolver.
struct SystemHostNames;

impl HostNames for SystemHostNames {
    fn double_reverse(&self, ip: std::net::IpAddr) -> Option<String> {
        wsgi_daemon::sys::double_reverse_lookup(ip)
    }
}

/// Where the top process hands serving processes the secret of Digest
/// nonces, so that any of them accepts a nonce another made.
const NONCE_SECRET_ENV: &str = "WSGI_RS_DIGEST_SECRET";

/// The secret of this server's Digest nonces: inherited from the top
/// process, or made now from the system's random source (and handed to
/// serving processes in their environment).
fn digest_nonce_secret() -> Result<Vec<u8>, String> {
    if let Ok(hex) = std::env::var(NONCE_SECRET_ENV) {
        // Taken: applications do not see it.
        std::env::remove_var(NONCE_SECRET_ENV);
        return Ok(hex.into_bytes());
    }
    let mut secret = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| std::io::Read::read_exact(&mut random, &mut secret))
        .map_err(|e| format!("cannot read /dev/urandom for the Digest nonce secret: {e}"))?;
    Ok(secret.iter().map(|b| format!("{b:02x}")).collect::<String>().into_bytes())
}

/// The default `--access-log` format: Apache's combined, with `%b`.
const DEFAULT_ACCESS_LOG_FORMAT: &str = "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\"";

/// The error and access logs of every server: the files of `ErrorLog`,
/// `CustomLog` and the flags, opened by the top process (or inherited
/// from it by a serving process), with their formats and levels.
fn open_logs(config: &Config, args: &ServerArgs, serving_process: bool) -> Result<(LogFiles, SiteLogs), String> {
    let servers: Vec<&wsgi_config::Server> =
        std::iter::once(&config.main_server).chain(&config.virtual_hosts).collect();
    let main_error = args.error_log.clone().or_else(|| config.error_log(&config.main_server));
    let own_error = |server: &wsgi_config::Server| server.error_log.as_ref().and_then(|_| config.error_log(server));
    let flag_access = args.access_log.as_deref().filter(|target| *target != "-").map(PathBuf::from);
    let mut paths: Vec<PathBuf> = main_error.iter().cloned().chain(flag_access.iter().cloned()).collect();
    for server in servers.iter().skip(1) {
        paths.extend(own_error(server));
    }
    let access_specs: Vec<_> = servers.iter().map(|server| config.access_logs(server)).collect();
    paths.extend(access_specs.iter().flatten().map(|spec| spec.path.clone()));
    let files = if serving_process { LogFiles::inherited() } else { LogFiles::open(&paths, main_error.as_deref())? };
    let sink = |path: &Path| {
        files.sink(path).ok_or_else(|| format!("{}: the log is not open in this process", path.display()))
    };
    // One sink per file, so that the lines of its logs never interleave.
    let mut access_sinks: std::collections::BTreeMap<PathBuf, Arc<LogSink>> = std::collections::BTreeMap::new();
    let mut shared_sink = |path: &Path| -> Result<Arc<LogSink>, String> {
        if let Some(sink) = access_sinks.get(path) {
            return Ok(sink.clone());
        }
        let made = Arc::new(sink(path)?);
        access_sinks.insert(path.to_path_buf(), made.clone());
        Ok(made)
    };
    let level =
        |server: &wsgi_config::Server| config.log_level(server).and_then(logging::level_of).unwrap_or(LogLevel::Info);
    // Standard error is the main error log's pipe when that is a file.
    let main_log = Arc::new(ServerLog::new(LogSink::stderr(), level(&config.main_server)));
    let flag_log = match (&args.access_log, &flag_access) {
        (None, _) => None,
        (Some(_), None) => Some(Arc::new(LogSink::stdout())),
        (Some(_), Some(path)) => Some(shared_sink(path)?),
    };
    let mut logs = Vec::new();
    for (index, (server, specs)) in servers.iter().zip(access_specs).enumerate() {
        let error = match own_error(server).filter(|_| index > 0) {
            Some(path) => Arc::new(ServerLog::new(sink(&path)?, level(server))),
            None if index > 0 && server.log_level.is_some() => {
                Arc::new(ServerLog::new(LogSink::stderr(), level(server)))
            }
            None => main_log.clone(),
        };
        let mut access = Vec::new();
        for spec in specs {
            access.push(AccessLog::new(shared_sink(&spec.path)?, spec.format, spec.condition));
        }
        if let (Some(sink), true) = (&flag_log, access.is_empty()) {
            let format = match &args.access_log_format {
                Some(format) => config.log_format(server, format),
                None => LogFormat::parse(DEFAULT_ACCESS_LOG_FORMAT).map_err(|e| e.to_string())?,
            };
            access.push(AccessLog::new(sink.clone(), format, None));
        }
        logs.push(Arc::new(ServerLogs { error, access, server_name: config.server_hostname(server) }));
    }
    Ok((files, SiteLogs::new(logs)))
}

/// One warning naming the directives of other Apache modules that this
/// server does not act on. The ones that would matter were refused when
/// the file was read; these only decorate what Apache would serve.
fn warn_of_decorations(config: &Config, log: &ServerLog) {
    let ignored: Vec<String> = config
        .other_directives()
        .iter()
        .filter(|d| standalone_other_module(&d.name) == OtherModule::NoEffect)
        .map(|d| format!("{} ({}:{})", d.name, d.location.file.display(), d.location.line))
        .collect();
    if !ignored.is_empty() {
        log.log(
            LogLevel::Warn,
            &format!(
                "directives of other Apache modules have no effect in the standalone server: {}",
                ignored.join(", ")
            ),
        );
    }
}

/// `--working-directory`: the top process changes to it (the processes it
/// starts inherit it) and returns it, absolute, for the Python path; a
/// module target without it has the current directory on the path.
fn enter_working_directory(args: &ServerArgs) -> Result<(), String> {
    let inherited = std::env::var_os(supervisor::LISTEN_FDS_ENV).is_some();
    if let (Some(dir), false) = (&args.working_directory, inherited) {
        std::env::set_current_dir(dir).map_err(|e| format!("--working-directory {}: {e}", dir.display()))?;
    }
    Ok(())
}

/// The directory first on a target's Python path: the working directory,
/// when `--working-directory` names it or the target is a module.
fn path_first(args: &ServerArgs, target: &AppTarget) -> Result<Option<PathBuf>, String> {
    if args.working_directory.is_some() || matches!(target, AppTarget::Module { .. }) {
        return std::env::current_dir().map(Some).map_err(|e| format!("the current directory: {e}"));
    }
    Ok(None)
}

/// The configuration to serve: the file of --config, or the directives of
/// a target (and the script that serves it, kept while the server runs).
fn configuration(args: &ServerArgs) -> Result<(Config, Option<ServedScript>), String> {
    // Relative paths (the target, the script) are the working directory's.
    enter_working_directory(args)?;
    let target = match args.script.as_ref().or(args.entry_point.as_ref()) {
        Some(target) => Some(AppTarget::parse(target, args.application_type, &args.callable_object)?),
        None => None,
    };
    match (&args.config, target) {
        (Some(file), _) => {
            let config = wsgi_config::load_file(file, &read_options(file, None)).map_err(|e| e.to_string())?;
            Ok((config, None))
        }
        (None, Some(target)) => {
            let served = ServedScript::of(&target, &args.callable_object)?;
            let first = path_first(args, &target)?;
            Ok((script_config(args, &served, first.as_deref())?, Some(served)))
        }
        (None, None) => Err("give a WSGI script, a module:callable or --config FILE".into()),
    }
}

pub(crate) fn start_server(args: ServerArgs) -> Result<(), String> {
    // systemd's variables are taken before any other thread runs, and so
    // that no process this one starts sees them.
    let systemd = listen::Notifier::from_env();
    let activated = listen::activated()?;
    let (mut config, served) = configuration(&args)?;
    settle(&mut config, &args);
    let identity = Identity::of(&config)?;
    if args.max_requests_jitter > 0 && args.maximum_requests == 0 {
        return Err("--max-requests-jitter needs --maximum-requests".into());
    }
    if let Some(name) = &args.process_name {
        wsgi_daemon::sys::set_process_name(name);
    }
    let inherited = supervisor::inherited_listeners().transpose()?;
    let nonce_secret = digest_nonce_secret()?;
    let (log_files, logs) = open_logs(&config, &args, inherited.is_some())?;
    let log = logs.main().error.clone();
    let control = wsgi_daemon::control::ControlPipe::inherited();
    let listeners = match inherited {
        Some(sockets) => {
            // A serving process: its user's before any Python runs (its
            // certificates read before, as Apache's children get theirs).
            let listeners = with_tls(&config, sockets)?;
            identity.become_it()?;
            listeners
        }
        None => {
            wsgi_interp::check_homes(&config.global, config.daemon_processes.iter().map(|g| &g.process), log.as_ref())?;
            warn_of_decorations(&config, &log);
            identity.warn_if_root(&log);
            let (sockets, _socket_file) = listening_sockets(&config, &args, activated, identity.uid_gid(), &log)?;
            // Certificates are checked before anything serves.
            let listeners = with_tls(&config, sockets)?;
            // Stopped when this returns.
            let groups = daemon::start_groups(&config, identity.uid_gid(), &log)?;
            let sockets_env = groups.sockets_env();
            // The top process only supervises, as gunicorn's and
            // granian's masters do: serving processes can then be replaced
            // (SIGHUP, --maximum-requests, --reload-on-changes) and run as
            // another user while this one keeps root, as Apache's parent
            // does. With --daemon, the processes and their recycling are
            // the daemon group's; one serving process relays to it.
            for url in serving_on(&listeners) {
                log.log(
                    LogLevel::Info,
                    &format!("serving on {url} with {} processes x {} threads", args.processes, args.threads),
                );
            }
            // Serving processes find the daemon groups' sockets in
            // their environment.
            let (log_fds, (log_env, log_fds_text)) = log_files.for_children();
            let sockets: Vec<ListenSocket> = listeners.into_iter().map(|l| l.socket).collect();
            let supervision = supervisor::Supervision {
                processes: if args.daemon { 1 } else { args.processes as usize },
                graceful: Duration::from_secs(args.graceful_timeout),
                drain_delay: args.health_path.as_ref().map(|_| Duration::from_secs(args.drain_delay.unwrap_or(5))),
                liveness: wsgi_daemon::control::silence_allowed(Duration::from_secs(args.request_timeout)),
            };
            let _pid_file = args.pid_file.as_deref().map(PidFile::write).transpose()?;
            let mut control =
                hangup::TopProcess { args: &args, running: &config, groups: &groups, log: &log, systemd: &systemd };
            let nonce_text = String::from_utf8_lossy(&nonce_secret).into_owned();
            let mut env = vec![
                (daemon::SOCKETS_ENV, sockets_env.as_str()),
                (log_env, log_fds_text.as_str()),
                (NONCE_SECRET_ENV, nonce_text.as_str()),
            ];
            let handler = served.as_ref().and_then(ServedScript::handler_env);
            env.extend(handler.as_ref().map(|(name, path)| (*name, path.as_str())));
            let result = supervisor::supervise(&sockets, &supervision, &env, log_fds, &log, &mut control);
            result?;
            log.log(LogLevel::Info, "stopped");
            return Ok(());
        }
    };

    // Python in this process only for embedded mode.
    let mut embedded: Option<Arc<dyn wsgi_core::WsgiRunner>> = None;
    let mut reload_watch = None;
    let mut python_runner: Option<Arc<EmbeddedRunner>> = None;
    if config.global.restrict_embedded != Some(true) {
        let mut python = PythonConfig::from_settings(&config.global);
        python.interpreter_options = config.interpreter_options.clone();
        python.process = ProcessFacts {
            process_group: String::new(),
            maximum_processes: args.processes.max(1),
            threads_per_process: args.threads.max(1),
            // No Apache scoreboard here (WSGIServerMetrics On is refused).
            server_metrics: false,
        };
        let runtime = PythonRuntime::initialize(python).map_err(|e| e.to_string())?;
        let runner = Arc::new(EmbeddedRunner::new(runtime.clone()));
        runner.preload_all(&config.preloads(""), log.as_ref());
        if let Some(served) = &served {
            // As mod_wsgi-express does: the application is imported before
            // the process serves (and so before a replacement reports ready).
            let group =
                if args.application_group == "%{GLOBAL}" { String::new() } else { args.application_group.clone() };
            runner.preload(&served.path, &group, log.as_ref());
        }
        reload_watch = args.reload_on_changes.then(|| runtime.clone());
        python_runner = Some(runner.clone());
        embedded = Some(runner);
    }
    // Daemon groups run as long as the top process; serving processes
    // find their sockets in the environment.
    let clients = daemon::clients(&config);
    let daemon_groups = daemon::relay_groups(&config, &clients);
    let runner = if clients.is_empty() && embedded.is_some() {
        embedded.clone().expect("checked")
    } else {
        daemon::runner(clients, embedded.clone())
    };
    // Relaying to daemon processes blocks a worker thread per request:
    // enough of them for every daemon thread.
    let pool_threads = if args.daemon { (args.threads * args.processes).max(args.threads) } else { args.threads };

    let software = wsgi_interp::software_component();
    let mut site = Site::new(
        config,
        SiteOptions {
            server_software: software.clone(),
            flags: WsgiFlags::embedded(args.processes > 1 && !args.daemon, args.threads > 1),
            versions: Versions { mod_wsgi: wsgi_core::environ_build::MOD_WSGI_VERSION, apache: None },
            default_document_root: "/var/www/html".into(),
        },
    );
    if let Some(python) = &python_runner {
        // WSGIDispatchScript: run before the request is queued, on a
        // blocking thread (http.rs), as Apache runs it in the request's.
        site = site.with_dispatch_script(Arc::new(ScriptDispatcher::new(python.clone(), log.clone())));
    }
    if site.controls_access() {
        let scripts = python_runner.clone().map(|python| Arc::new(ScriptAuth::new(python)) as Arc<dyn AuthScripts>);
        site = site.with_access(AccessParts {
            scripts,
            hosts: Arc::new(SystemHostNames),
            nonce_secret: nonce_secret.clone(),
        });
    }
    let after = recycle_after(&args);
    if args.max_requests_jitter > 0 && after > 0 {
        log.log(LogLevel::Info, &format!("process {} recycles after {after} requests", std::process::id()));
    }
    let pool = workers::Pool::start(
        workers::PoolSettings {
            threads: pool_threads as usize,
            queue_timeout: Duration::from_secs(args.queue_timeout),
        },
        runner,
        log.clone(),
    )
    .map_err(|e| format!("cannot start worker threads: {e}"))?;
    let shared = Arc::new(http::Shared {
        site,
        pool,
        log: log.clone(),
        settings: http::HttpSettings {
            header_timeout: Duration::from_secs(args.header_timeout),
            request_timeout: Duration::from_secs(args.request_timeout),
            queue_timeout: Duration::from_secs(args.queue_timeout),
            graceful_timeout: Duration::from_secs(args.graceful_timeout),
            max_head_size: args.max_header_size,
            https_redirect: args.https_only.then_some(args.https_port).flatten(),
            server_software: software,
            proxy_protocol: args.proxy_protocol.then(|| proxy_allow_from(&args)),
        },
        supervisor: http::SupervisorLink::new(after, control),
        draining: std::sync::atomic::AtomicBool::new(false),
        logs,
        pid: std::process::id(),
        health: http::Health::new(args.health_path.clone()),
        daemon_groups,
        static_files: Default::default(),
    });
    if let Some(runtime) = reload_watch {
        // The baseline is taken before serving, so that no edit can slip in
        // between the first request and the first look.
        let known = reload::module_stamps(&runtime);
        let shared = shared.clone();
        std::thread::spawn(move || reload::watch_modules(&runtime, known, &shared));
    }
    // One I/O thread serves more requests than one Python interpreter can
    // run, and without the cross-thread wake-ups of a work-stealing pool.
    let io_runtime = if args.io_threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.io_threads as usize).enable_all().build()
    }
    .map_err(|e| format!("cannot start the I/O runtime: {e}"))?;
    io_runtime.block_on(http::serve(listeners, shared.clone())).map_err(|e| e.to_string())?;
    http::SupervisorLink::keep_beating(shared);
    if let Some(embedded) = &embedded {
        embedded.stop("", Duration::from_secs(args.shutdown_timeout));
    }
    PythonRuntime::prepare_for_exit();
    log.log(LogLevel::Info, "stopped");
    drop(log_files);
    Ok(())
}
