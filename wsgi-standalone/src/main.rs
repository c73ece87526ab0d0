//! `wsgi-standalone`: the standalone front end of mod_wsgi-rs.
//!
//! A thin binary: the command line, HTTP over hyper, and the Python worker
//! pool, wired over the library crates (configuration from wsgi-config,
//! the request pipeline from wsgi-core, Python from wsgi-interp).

mod daemon;
mod http;
mod idle;
mod logging;
mod supervisor;
mod workers;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use wsgi_config::lexer::quote_word;
use wsgi_config::tree::ReadOptions;
use wsgi_config::Config;
use wsgi_core::environ_build::{Versions, WsgiFlags};
use wsgi_core::pipeline::{Site, SiteOptions};
use wsgi_core::LogLevel;
use wsgi_interp::{EmbeddedRunner, HomeError, PythonConfig, PythonRuntime};

use crate::logging::{AccessLog, LogSink, ServerLog};

/// Requests allocate many small strings (the environ, headers); mimalloc
/// serves those markedly faster than glibc's allocator. Python keeps its own.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "wsgi-standalone", version, about = "Host Python WSGI applications; reads mod_wsgi configuration")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check an Apache-style configuration file, as `apachectl configtest` does.
    ///
    /// Prints `Syntax OK` and exits 0 when the file is valid; otherwise prints
    /// each error as `FILE:LINE: message` and exits 1.
    CheckConfig {
        /// Print the resolved model (virtual hosts, script aliases, daemon
        /// process groups with every effective option) instead of `Syntax OK`.
        #[arg(long)]
        dump: bool,
        /// Base directory for relative `Include` paths [default: the
        /// directory of FILE]. A `ServerRoot` directive in the file wins.
        #[arg(long, value_name = "DIR")]
        server_root: Option<PathBuf>,
        /// Define NAME for `<IfDefine NAME>`, as `httpd -D NAME` does.
        #[arg(short = 'D', value_name = "NAME")]
        define: Vec<String>,
        /// The configuration file.
        file: PathBuf,
    },
    /// Serve a WSGI script (or the script aliases of a configuration file)
    /// over HTTP/1.1, as mod_wsgi-express start-server does.
    StartServer(Box<ServerArgs>),
    /// Print the lines that load the Apache module (`mod_wsgi.so`) into
    /// Apache httpd, as mod_wsgi-express module-config does.
    ///
    /// Prints a `LoadModule wsgi_module` line with the module's absolute
    /// path and a `WSGIPythonHome` line with the prefix of /usr/bin/python3,
    /// for a `.load` file or the server configuration. The module is looked
    /// for next to this executable: `mod_wsgi.so` (the layout of
    /// `cargo xtask release`'s target/dist/), then `libmod_wsgi.so` (Cargo's
    /// target/release/ or target/debug/). Exits 1 if there is none.
    ModuleConfig {
        /// Use this module file instead of looking next to the executable.
        #[arg(long, value_name = "PATH")]
        module: Option<PathBuf>,
    },
    /// Internal: the manager of one daemon process group (started by
    /// start-server, with the configuration in the environment).
    #[command(hide = true)]
    DaemonManager {
        /// The group's name.
        #[arg(long)]
        group: String,
        /// The group's socket file (removed when the manager stops).
        #[arg(long)]
        socket: PathBuf,
    },
}

#[derive(Args)]
struct ServerArgs {
    /// The WSGI script file to serve (omit with --config).
    #[arg(required_unless_present = "config", conflicts_with = "config")]
    script: Option<PathBuf>,
    /// Serve the virtual hosts, WSGIScriptAlias/WSGIScriptAliasMatch and
    /// Alias mappings of an Apache-style configuration file instead.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on (ignored with --config when it has Listen lines).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (ignored with --config when it has Listen lines).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Python worker threads per process.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    threads: u32,
    /// Threads per serving process that handle connections and HTTP
    /// (never Python).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    io_threads: u32,
    /// Serving processes, each with its own Python, sharing the listening
    /// sockets under a supervisor that restarts any that dies.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    processes: u32,
    /// Replace a serving process after it has taken this many requests (0:
    /// never); its replacement starts serving before it stops.
    #[arg(long, default_value_t = 0)]
    maximum_requests: u64,
    /// Run the application in daemon mode, as mod_wsgi-express does: a
    /// group of --processes daemon processes x --threads threads (recycled
    /// after --maximum-requests), apart from the serving process, which
    /// runs no Python and relays requests to them.
    #[arg(long, conflicts_with = "config")]
    daemon: bool,
    /// Replace the serving processes when a Python module they loaded
    /// changes on disk (for development).
    #[arg(long)]
    reload_on_changes: bool,
    /// URL path the script is mounted at.
    #[arg(long, default_value = "/", value_name = "URL-PATH")]
    mount_point: String,
    /// Serve files under PATH at URL (static files); may be repeated. (With
    /// --config, use Alias in the file.)
    #[arg(long, num_args = 2, value_names = ["URL-PATH", "PATH"], action = clap::ArgAction::Append, conflicts_with = "config")]
    url_alias: Vec<String>,
    /// Name of the WSGI callable in the script.
    #[arg(long, default_value = "application")]
    callable_object: String,
    /// Application group (Python interpreter) to run the script in.
    #[arg(long, default_value = "%{GLOBAL}")]
    application_group: String,
    /// Largest request body accepted, in bytes (413 beyond). (With --config,
    /// use LimitRequestBody in the file.)
    #[arg(long, default_value_t = 10_485_760, conflicts_with = "config")]
    limit_request_body: u64,
    /// Seconds an application may take to start its response (504 after).
    #[arg(long, default_value_t = 60)]
    request_timeout: u64,
    /// Seconds a request may wait for a free worker (504 after).
    #[arg(long, default_value_t = 45)]
    queue_timeout: u64,
    /// Seconds to wait for a client to send more of a request body, or to
    /// read more of a response, before giving up on it (Apache's Timeout).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    socket_timeout: u64,
    /// Seconds to let in-flight requests finish after SIGTERM or SIGINT.
    #[arg(long, default_value_t = 15)]
    graceful_timeout: u64,
    /// Seconds a kept-alive connection may stay idle.
    #[arg(long, default_value_t = 5)]
    keep_alive_timeout: u64,
    /// Seconds a client may take to send a request's headers.
    #[arg(long, default_value_t = 15)]
    header_timeout: u64,
    /// Largest request head (request line and headers), in bytes (431 beyond).
    #[arg(long, default_value_t = 65_536)]
    max_header_size: usize,
    /// Directory added to the Python path (site.addsitedir); may be repeated.
    #[arg(long, value_name = "DIR")]
    python_path: Vec<PathBuf>,
    /// The Python installation or virtual environment to use.
    #[arg(long, value_name = "DIR")]
    python_home: Option<PathBuf>,
    /// Write an access log in Apache's combined format (to standard output,
    /// or to FILE).
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    access_log: Option<String>,
    /// Write the error log to FILE instead of standard error.
    #[arg(long, value_name = "FILE")]
    error_log: Option<PathBuf>,
    /// Least severe error-log level: error, warn, info or debug.
    #[arg(long, default_value = "info", value_parser = ["error", "warn", "info", "debug"])]
    log_level: String,
    /// Log to the terminal (the default here; accepted for mod_wsgi-express
    /// compatibility).
    #[arg(long)]
    log_to_terminal: bool,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::CheckConfig { dump, server_root, define, file } => check_config(&file, server_root, define, dump),
        Command::StartServer(args) => report(start_server(*args)),
        Command::ModuleConfig { module } => report(module_config(module)),
        Command::DaemonManager { group, socket } => {
            let log = Arc::new(ServerLog::new(LogSink::stderr(), LogLevel::Info));
            report(daemon::manager_main(&group, &socket, log))
        }
    }
}

fn report(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("wsgi-standalone: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `module-config`: the `LoadModule` and `WSGIPythonHome` lines.
fn module_config(module: Option<PathBuf>) -> Result<(), String> {
    let module = match module {
        Some(path) => std::fs::canonicalize(&path).map_err(|e| format!("{}: {e}", path.display()))?,
        None => {
            let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
            let dir = exe.parent().ok_or("this executable has no directory")?;
            let candidates = [dir.join("mod_wsgi.so"), dir.join("libmod_wsgi.so")];
            let found = candidates.iter().find(|p| p.is_file()).ok_or_else(|| {
                format!(
                    "no Apache module next to this executable (looked for {} and {}); \
                     build it with `cargo xtask release` or give --module PATH",
                    candidates[0].display(),
                    candidates[1].display()
                )
            })?;
            std::fs::canonicalize(found).map_err(|e| format!("{}: {e}", found.display()))?
        }
    };
    if !module.is_file() {
        return Err(format!("{}: not a file", module.display()));
    }
    // The home of the Python the module embeds: the installation it was
    // built against.
    let prefix = wsgi_interp::home::Installation::built_against().home();
    println!("LoadModule wsgi_module {}", always_quoted(&module.display().to_string()));
    println!("WSGIPythonHome {}", always_quoted(&prefix.display().to_string()));
    Ok(())
}

/// A word double-quoted for Apache's configuration syntax, as
/// mod_wsgi-express writes paths.
fn always_quoted(word: &str) -> String {
    format!("\"{}\"", word.replace('"', "\\\""))
}

fn read_options(file: &Path, server_root: Option<PathBuf>) -> ReadOptions {
    let server_root = server_root.unwrap_or_else(|| {
        file.parent().filter(|p| !p.as_os_str().is_empty()).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."))
    });
    ReadOptions::standalone(server_root)
}

fn check_config(file: &Path, server_root: Option<PathBuf>, define: Vec<String>, dump: bool) -> ExitCode {
    let mut options = read_options(file, server_root);
    options.defines = define.into_iter().collect::<BTreeSet<_>>();
    match wsgi_config::load_file(file, &options) {
        Ok(config) => {
            if dump {
                print!("{}", config.dump());
            } else {
                println!("Syntax OK");
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for error in &errors.0 {
                eprintln!("{error}");
            }
            ExitCode::FAILURE
        }
    }
}

/// The configuration `start-server SCRIPT` serves, written as the
/// directives mod_wsgi-express would generate, so that it goes through the
/// same parser and checks as any configuration file.
fn script_config(args: &ServerArgs, script: &Path) -> Result<Config, String> {
    let script = std::fs::canonicalize(script).map_err(|e| format!("{}: {e}", script.display()))?;
    if !script.is_file() {
        return Err(format!("{}: not a file", script.display()));
    }
    let mut text = String::new();
    let mut line = |words: Vec<String>| {
        text.push_str(&words.iter().map(|w| quote_word(w)).collect::<Vec<_>>().join(" "));
        text.push('\n');
    };
    if !args.python_path.is_empty() {
        let paths: Vec<String> = args.python_path.iter().map(|p| p.display().to_string()).collect();
        line(vec!["WSGIPythonPath".into(), paths.join(":")]);
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
    for pair in args.url_alias.chunks(2) {
        line(vec!["Alias".into(), pair[0].clone(), pair[1].clone()]);
    }
    let mut alias = vec![
        "WSGIScriptAlias".into(),
        args.mount_point.clone(),
        script.display().to_string(),
        format!("application-group={}", args.application_group),
        format!("callable-object={}", args.callable_object),
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
        ];
        if args.maximum_requests > 0 {
            daemon.push(format!("maximum-requests={}", args.maximum_requests));
        }
        if let Some(home) = &args.python_home {
            daemon.push(format!("python-home={}", home.display()));
        }
        line(daemon);
        alias.push(format!("process-group={group}"));
    }
    line(alias);
    wsgi_config::load_str(&text, Path::new("<start-server options>"), &ReadOptions::standalone("/"))
        .map_err(|errors| errors.to_string())
}

/// Chooses, before anything starts, the Python home of this process's
/// embedded Python and of every daemon group's processes (wsgi-interp's
/// rule: the configured home, else `VIRTUAL_ENV`, else the installation
/// built against) and logs it. A home of another Python version stops the
/// server at once, with the message naming both versions, rather than each
/// process failing as it starts; a home that cannot be used for another
/// reason (missing, not an installation) is logged and left to fail where
/// Python starts, as before: a daemon group that cannot start answers 503
/// while the others serve.
fn check_python_homes(config: &Config, log: &ServerLog) -> Result<(), String> {
    let mut homes = Vec::new();
    if config.global.restrict_embedded != Some(true) {
        homes.push((String::new(), PythonConfig::from_settings(&config.global)));
    }
    for group in &config.daemon_processes {
        let process = &group.process;
        homes.push((
            format!("daemon group '{}': ", process.name),
            PythonConfig::for_daemon_process(&config.global, process),
        ));
    }
    for (context, python) in homes {
        match python.python_home() {
            Ok(home) => log.log(LogLevel::Info, &format!("{context}Python home {home}")),
            Err(e @ HomeError::VersionMismatch { .. }) => return Err(format!("{context}{e}")),
            Err(e) => log.log(LogLevel::Error, &format!("{context}{e}")),
        }
    }
    Ok(())
}

/// The daemon group of `start-server --daemon`: `HOST:PORT`, as
/// mod_wsgi-express names it.
fn daemon_group_name(args: &ServerArgs) -> String {
    format!("{}:{}", args.host, args.port)
}

fn listen_addresses(config: &Config, args: &ServerArgs) -> Result<Vec<SocketAddr>, String> {
    let specs: Vec<(String, u16)> = if config.listen.is_empty() || args.script.is_some() {
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

fn start_server(args: ServerArgs) -> Result<(), String> {
    let level = match args.log_level.as_str() {
        "error" => LogLevel::Error,
        "warn" => LogLevel::Warn,
        "debug" => LogLevel::Debug,
        _ => LogLevel::Info,
    };
    let error_sink = match &args.error_log {
        Some(path) => LogSink::file(path).map_err(|e| format!("{}: {e}", path.display()))?,
        None => LogSink::stderr(),
    };
    let log = Arc::new(ServerLog::new(error_sink, level));
    let access = match args.access_log.as_deref() {
        None => None,
        Some("-") => Some(Arc::new(AccessLog::new(LogSink::stdout()))),
        Some(path) => {
            Some(Arc::new(AccessLog::new(LogSink::file(Path::new(path)).map_err(|e| format!("{path}: {e}"))?)))
        }
    };
    let config = match (&args.config, &args.script) {
        (Some(file), _) => wsgi_config::load_file(file, &read_options(file, None)).map_err(|e| e.to_string())?,
        (None, Some(script)) => script_config(&args, script)?,
        (None, None) => return Err("give a WSGI script or --config FILE".into()),
    };
    let control = wsgi_daemon::control::ControlPipe::inherited();
    // Daemon groups run as long as the top process; serving processes it
    // supervises find their sockets in the environment.
    let mut groups: Option<daemon::Groups> = None;
    let listeners = match supervisor::inherited_listeners() {
        Some(listeners) => listeners,
        None => {
            check_python_homes(&config, &log)?;
            let addresses = listen_addresses(&config, &args)?;
            let listeners = addresses
                .iter()
                .map(|addr| TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            let started = daemon::start_groups(&config, &log)?;
            std::env::set_var(daemon::SOCKETS_ENV, started.sockets_env());
            groups = Some(started);
            // With --daemon, the processes and their recycling are the
            // daemon group's; one serving process relays to it.
            let front_end_processes = !args.daemon && (args.processes > 1 || args.maximum_requests > 0);
            if front_end_processes || args.reload_on_changes {
                for address in &addresses {
                    log.log(
                        LogLevel::Info,
                        &format!(
                            "serving on http://{address}/ with {} processes x {} threads",
                            args.processes, args.threads
                        ),
                    );
                }
                supervisor::supervise(
                    &listeners,
                    args.processes as usize,
                    Duration::from_secs(args.graceful_timeout),
                    &log,
                )?;
                log.log(LogLevel::Info, "stopped");
                return Ok(());
            }
            for address in &addresses {
                log.log(LogLevel::Info, &format!("serving on http://{address}/ with {} worker threads", args.threads));
            }
            listeners
        }
    };

    // Python in this process only for embedded mode.
    let mut embedded: Option<Arc<dyn wsgi_core::WsgiRunner>> = None;
    let mut reload_watch = None;
    if config.global.restrict_embedded != Some(true) {
        let runtime =
            PythonRuntime::initialize(PythonConfig::from_settings(&config.global)).map_err(|e| e.to_string())?;
        let runner = Arc::new(EmbeddedRunner::new(runtime.clone()));
        runner.preload_all(&config.preloads(""), log.as_ref());
        if let Some(script) = &args.script {
            // As mod_wsgi-express does: the application is imported before
            // the process serves (and so before a replacement reports ready).
            let group =
                if args.application_group == "%{GLOBAL}" { String::new() } else { args.application_group.clone() };
            if let Ok(script) = std::fs::canonicalize(script) {
                runner.preload(&script, &group, log.as_ref());
            }
        }
        reload_watch = args.reload_on_changes.then(|| runtime.clone());
        embedded = Some(runner);
    }
    let sockets = groups.as_ref().map(|g| g.sockets().to_vec()).unwrap_or_default();
    let clients = daemon::clients(&config, &sockets);
    let runner = if clients.is_empty() && embedded.is_some() {
        embedded.clone().expect("checked")
    } else {
        daemon::runner(clients, embedded)
    };
    // Relaying to daemon processes blocks a worker thread per request:
    // enough of them for every daemon thread.
    let pool_threads = if args.daemon { (args.threads * args.processes).max(args.threads) } else { args.threads };

    let software = wsgi_interp::software_component();
    let site = Site::new(
        config,
        SiteOptions {
            server_software: software.clone(),
            flags: WsgiFlags::embedded(args.processes > 1 && !args.daemon, args.threads > 1),
            versions: Versions { mod_wsgi: wsgi_core::environ_build::product_version(), apache: None },
            default_document_root: "/var/www/html".into(),
        },
    );
    let pool = workers::Pool::start(
        workers::PoolSettings {
            threads: pool_threads as usize,
            queue_timeout: Duration::from_secs(args.queue_timeout),
            socket_timeout: Duration::from_secs(args.socket_timeout),
        },
        runner,
        log.clone(),
        access.clone(),
    )
    .map_err(|e| format!("cannot start worker threads: {e}"))?;
    let shared = Arc::new(http::Shared {
        site,
        pool,
        log: log.clone(),
        settings: http::HttpSettings {
            header_timeout: Duration::from_secs(args.header_timeout),
            keep_alive_timeout: Duration::from_secs(args.keep_alive_timeout),
            request_timeout: Duration::from_secs(args.request_timeout),
            queue_timeout: Duration::from_secs(args.queue_timeout),
            graceful_timeout: Duration::from_secs(args.graceful_timeout),
            socket_timeout: Duration::from_secs(args.socket_timeout),
            max_head_size: args.max_header_size,
            server_software: software,
        },
        recycle: http::Recycle::new(args.maximum_requests, control),
        draining: std::sync::atomic::AtomicBool::new(false),
        access,
        pid: std::process::id(),
    });
    if let Some(runtime) = reload_watch {
        // The baseline is taken before serving, so that no edit can slip in
        // between the first request and the first look.
        let known = module_stamps(&runtime);
        let shared = shared.clone();
        std::thread::spawn(move || watch_modules(&runtime, known, &shared));
    }
    // One I/O thread serves more requests than one Python interpreter can
    // run, and without the cross-thread wake-ups of a work-stealing pool.
    let io_runtime = if args.io_threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.io_threads as usize).enable_all().build()
    }
    .map_err(|e| format!("cannot start the I/O runtime: {e}"))?;
    io_runtime.block_on(http::serve(listeners, shared)).map_err(|e| e.to_string())?;
    PythonRuntime::prepare_for_exit();
    drop(groups);
    log.log(LogLevel::Info, "stopped");
    Ok(())
}

/// The modification time of the file behind every module loaded in every
/// interpreter.
fn module_stamps(runtime: &PythonRuntime) -> std::collections::HashMap<String, f64> {
    const SNAPSHOT: &str = r#"
import sys, os
stamps = []
for m in list(sys.modules.values()):
    f = getattr(m, '__file__', None)
    if f:
        try:
            stamps.append('%s=%r' % (f, os.stat(f).st_mtime))
        except OSError:
            pass
result = '\n'.join(sorted(stamps))
"#;
    let mut stamps = std::collections::HashMap::new();
    for group in std::iter::once(String::new()).chain(runtime.groups()) {
        for line in runtime.evaluate(&group, SNAPSHOT).unwrap_or_default().lines() {
            if let Some((file, mtime)) = line.rsplit_once('=') {
                stamps.insert(file.to_string(), mtime.parse::<f64>().unwrap_or(0.0));
            }
        }
    }
    stamps
}

/// `--reload-on-changes`: once a second, compares the modification times
/// of the files behind every loaded module with the last look; on a
/// change, asks the supervisor for a fresh process.
fn watch_modules(runtime: &PythonRuntime, mut known: std::collections::HashMap<String, f64>, shared: &http::Shared) {
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = module_stamps(runtime);
        // A module seen before whose file changed, or one imported since
        // whose file is newer than this process.
        let changed = now.iter().any(|(file, mtime)| match known.get(file) {
            Some(before) => before != mtime,
            None => *mtime > started,
        });
        if changed {
            shared.log.log(LogLevel::Info, "a loaded module changed on disk; replacing this process");
            let _ = shared.recycle.request();
            return;
        }
        known = now;
    }
}
