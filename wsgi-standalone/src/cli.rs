//! The command line: its commands and options (clap), and `check-config`
//! (the commands about the Apache module are `install`'s).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use wsgi_config::tree::ReadOptions;

use crate::app_target::ApplicationType;

#[derive(Parser)]
#[command(name = "wsgi-standalone", version, about = "Host Python WSGI applications; reads mod_wsgi configuration")]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
    /// over HTTP (1.1, and 2 when asked), as mod_wsgi-express start-server does.
    StartServer(Box<ServerArgs>),
    /// Print the lines that load the Apache module into Apache httpd, as
    /// mod_wsgi-express module-config does.
    ///
    /// Prints a `LoadModule wsgi_module` line with the module's absolute
    /// path and a `WSGIPythonHome` line: the virtual environment this
    /// program is installed in (so that Apache's Python sees its packages),
    /// else the prefix of the Python it was built against. The module is
    /// looked for next to this executable, `mod_wsgi.so` (`cargo xtask
    /// release`'s target/dist/) then `libmod_wsgi.so` (Cargo's
    /// target/release/), then in the `mod_wsgi_rs` Python package installed
    /// with it (`pip install` of the wheel). Exits 1 if there is none, or
    /// if the virtual environment is of another Python version.
    ModuleConfig {
        /// Use this module file instead of looking for it.
        #[arg(long, value_name = "PATH")]
        module: Option<PathBuf>,
    },
    /// Print the absolute path of the Apache module (found as
    /// module-config finds it), as mod_wsgi-express module-location does.
    ModuleLocation,
    /// Copy the Apache module into Apache's modules directory, as
    /// `mod_wsgi_rs-pyXY.so`, and print the lines that load that copy, as
    /// mod_wsgi-express install-module does.
    InstallModule {
        /// Apache's modules directory [default: `apxs -q LIBEXECDIR`, else
        /// /usr/lib/apache2/modules].
        #[arg(long, value_name = "DIR")]
        modules_directory: Option<PathBuf>,
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
pub(crate) struct ServerArgs {
    /// What to serve (omit with --config): a WSGI script file, or a
    /// module's callable as `package.module:callable`, or
    /// `package.module:factory()` to call a factory once per interpreter.
    #[arg(value_name = "TARGET", required_unless_present_any = ["config", "entry_point"], conflicts_with = "config")]
    pub(crate) script: Option<PathBuf>,
    /// TARGET given as an option, as mod_wsgi-express takes it.
    #[arg(long, value_name = "TARGET", conflicts_with_all = ["config", "script"])]
    pub(crate) entry_point: Option<PathBuf>,
    /// How TARGET is read: `script` (a file) or `module` (`module`,
    /// `module:callable` or `module:factory()`; a bare module's callable is
    /// --callable-object) [default: module when TARGET has a colon and
    /// names no file, else script].
    #[arg(long, value_enum, conflicts_with = "config")]
    pub(crate) application_type: Option<ApplicationType>,
    /// Change to DIR before reading TARGET or loading anything (daemon
    /// processes start there too), and put it first on the Python path
    /// [default: a module target's path has the current directory first,
    /// as gunicorn's has].
    #[arg(long, value_name = "DIR", conflicts_with = "config")]
    pub(crate) working_directory: Option<PathBuf>,
    /// Serve the virtual hosts, WSGIScriptAlias/WSGIScriptAliasMatch and
    /// Alias mappings of an Apache-style configuration file instead.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Address to listen on (ignored with --config when it has Listen lines).
    #[arg(long, default_value = "127.0.0.1")]
    pub(crate) host: String,
    /// Port to listen on (ignored with --config when it has Listen lines).
    #[arg(long, default_value_t = 8000)]
    pub(crate) port: u16,
    /// Python worker threads per process.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) threads: u32,
    /// Threads per serving process that handle connections and HTTP
    /// (never Python).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub(crate) io_threads: u32,
    /// Serving processes, each with its own Python, sharing the listening
    /// sockets under a supervisor that restarts any that dies.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub(crate) processes: u32,
    /// Replace a serving process after it has taken this many requests (0:
    /// never); its replacement starts serving before it stops.
    #[arg(long, default_value_t = 0)]
    pub(crate) maximum_requests: u64,
    /// Run the application in daemon mode, as mod_wsgi-express does: a
    /// group of --processes daemon processes x --threads threads (recycled
    /// after --maximum-requests), apart from the serving process, which
    /// runs no Python and relays requests to them.
    #[arg(long, conflicts_with = "config")]
    pub(crate) daemon: bool,
    /// Replace the serving processes when a Python module they loaded
    /// changes on disk (for development).
    #[arg(long)]
    pub(crate) reload_on_changes: bool,
    /// URL path the script is mounted at.
    #[arg(long, default_value = "/", value_name = "URL-PATH")]
    pub(crate) mount_point: String,
    /// Serve files under PATH at URL (static files); may be repeated. (With
    /// --config, use Alias in the file.)
    #[arg(long, num_args = 2, value_names = ["URL-PATH", "PATH"], action = clap::ArgAction::Append, conflicts_with = "config")]
    pub(crate) url_alias: Vec<String>,
    /// Name of the WSGI callable in the script (or in a module TARGET
    /// that names none).
    #[arg(long, default_value = "application")]
    pub(crate) callable_object: String,
    /// Application group (Python interpreter) to run the script in.
    #[arg(long, default_value = "%{GLOBAL}")]
    pub(crate) application_group: String,
    /// Largest request body accepted, in bytes (413 beyond). (With --config,
    /// use LimitRequestBody in the file.)
    #[arg(long, default_value_t = 10_485_760, conflicts_with = "config")]
    pub(crate) limit_request_body: u64,
    /// Seconds an application may take to start its response (504 after).
    /// A serving process of --processes silent for this plus 2 s (stopped
    /// or frozen) is killed and replaced; 0 turns both off.
    #[arg(long, default_value_t = 60)]
    pub(crate) request_timeout: u64,
    /// Seconds a request may wait for a free worker (504 after).
    #[arg(long, default_value_t = 45)]
    pub(crate) queue_timeout: u64,
    /// Seconds to wait for a client to send more of a request body, or to
    /// read more of a response, before giving up on it: Apache's Timeout,
    /// which it replaces in every virtual host of --config [default: 60,
    /// or the file's Timeout].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) socket_timeout: Option<u64>,
    /// Seconds to let in-flight requests finish after SIGTERM or SIGINT.
    #[arg(long, default_value_t = 15)]
    pub(crate) graceful_timeout: u64,
    /// Seconds the application's shutdown callbacks and atexit handlers may
    /// take once serving has stopped, before the process exits anyway.
    #[arg(long, default_value_t = 5)]
    pub(crate) shutdown_timeout: u64,
    /// Seconds a kept-alive connection may stay idle (0: no keep-alive):
    /// Apache's KeepAliveTimeout, which it replaces in every virtual host
    /// of --config [default: 5, or the file's KeepAliveTimeout].
    #[arg(long)]
    pub(crate) keep_alive_timeout: Option<u64>,
    /// Requests a connection may carry after its first before the server
    /// closes it (0: no limit): Apache's MaxKeepAliveRequests, which it
    /// replaces in every virtual host of --config [default: 0, as
    /// mod_wsgi-express sets it under mpm_event; with --config, the file's
    /// MaxKeepAliveRequests or Apache's 100].
    #[arg(long)]
    pub(crate) max_keep_alive_requests: Option<u64>,
    /// Seconds a client may take to send a request's headers.
    #[arg(long, default_value_t = 15)]
    pub(crate) header_timeout: u64,
    /// Longest request line, in bytes (414 beyond): Apache's
    /// LimitRequestLine, which it replaces in every virtual host of
    /// --config [default: 8190, or the file's LimitRequestLine].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i32::MAX as i64))]
    pub(crate) limit_request_line: Option<u32>,
    /// Longest request header field, in bytes (400 beyond): Apache's
    /// LimitRequestFieldSize [default: 8190, or the file's].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i32::MAX as i64))]
    pub(crate) limit_request_field_size: Option<u32>,
    /// Most request header fields (400 beyond; 0: no limit of ours, 1000
    /// at most): Apache's LimitRequestFields [default: 100, or the file's].
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=i32::MAX as i64))]
    pub(crate) limit_request_fields: Option<u32>,
    /// Largest request head (request line and headers), in bytes (431
    /// beyond) [default: what the three limits above allow].
    #[arg(long)]
    pub(crate) max_header_size: Option<usize>,
    /// Also serve HTTPS on this port, with --ssl-certificate-file and
    /// --ssl-certificate-key-file. (With --config, use Listen ... https and
    /// SSLEngine in the file.)
    #[arg(long, value_name = "PORT", conflicts_with = "config")]
    pub(crate) https_port: Option<u16>,
    /// The certificate (PEM, with its chain) of --https-port.
    #[arg(long, value_name = "FILE", requires = "https_port")]
    pub(crate) ssl_certificate_file: Option<PathBuf>,
    /// The private key (PEM) of --https-port.
    #[arg(long, value_name = "FILE", requires = "https_port")]
    pub(crate) ssl_certificate_key_file: Option<PathBuf>,
    /// Speak HTTP/2 too: over TLS to clients that ask for it (ALPN), and
    /// in clear to clients that start with it (h2c with prior knowledge);
    /// `Protocols h2 h2c http/1.1` in every server of --config.
    #[arg(long)]
    pub(crate) http2: bool,
    /// Answer plain HTTP requests with a redirect to --https-port.
    #[arg(long, requires = "https_port")]
    pub(crate) https_only: bool,
    /// When started as root: the user the serving and daemon processes run
    /// as (a name or #uid), set before any Python runs; the top process
    /// keeps root to bind the sockets and supervise them. Replaces the
    /// file's `User`.
    #[arg(long, value_name = "USER")]
    pub(crate) user: Option<String>,
    /// With --user: the group (a name or #gid) [default: the user's
    /// primary group, or the file's `Group`].
    #[arg(long, value_name = "GROUP")]
    pub(crate) group: Option<String>,
    /// Directory added to the Python path (site.addsitedir); may be repeated.
    #[arg(long, value_name = "DIR")]
    pub(crate) python_path: Vec<PathBuf>,
    /// The Python installation or virtual environment to use.
    #[arg(long, value_name = "DIR")]
    pub(crate) python_home: Option<PathBuf>,
    /// Write an access log (to standard output, or to FILE), for the
    /// servers of --config without a CustomLog of their own.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    pub(crate) access_log: Option<String>,
    /// The --access-log format: a LogFormat string or nickname (common,
    /// combined, vhost_combined, referer, agent, or one of --config's)
    /// [default: combined, with %b].
    #[arg(long, value_name = "FORMAT", requires = "access_log")]
    pub(crate) access_log_format: Option<String>,
    /// Write the error log to FILE instead of standard error (replaces
    /// the ErrorLog of --config's main server). SIGUSR1 reopens the log
    /// files, for logrotate.
    #[arg(long, value_name = "FILE")]
    pub(crate) error_log: Option<PathBuf>,
    /// Least severe error-log level: error, warn, info or debug (replaces
    /// --config's LogLevel) [default: info, or the file's LogLevel].
    #[arg(long, value_parser = ["error", "warn", "info", "debug"])]
    pub(crate) log_level: Option<String>,
    /// Listen on a UNIX domain socket at PATH instead of --host/--port (a
    /// stale socket file there is replaced).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["config", "https_port"])]
    pub(crate) uds: Option<PathBuf>,
    /// The --uds socket file's mode, in octal (e.g. 660) [default: as the
    /// umask leaves it].
    #[arg(long, value_name = "MODE", requires = "uds", value_parser = octal_mode)]
    pub(crate) uds_permissions: Option<u32>,
    /// Trust this header from a proxy (X-Forwarded-For, X-Real-IP,
    /// X-Forwarded-Proto, X-Forwarded-Host, ...), as WSGITrustedProxyHeaders
    /// does: without --trust-proxy, from any client, as mod_wsgi trusts
    /// it; may be repeated. (With --config, use the directive.)
    #[arg(long, value_name = "HEADER", conflicts_with = "config")]
    pub(crate) trust_proxy_header: Vec<String>,
    /// Trust the proxy headers only from this address or subnet, as
    /// WSGITrustedProxies does; may be repeated.
    #[arg(long, value_name = "ADDRESS[/BITS]", conflicts_with = "config", requires = "trust_proxy_header")]
    pub(crate) trust_proxy: Vec<String>,
    /// Every TCP connection starts with a PROXY protocol header (v1 or
    /// v2, as HAProxy's send-proxy sends it), whose client address becomes
    /// REMOTE_ADDR; connections without one are closed.
    #[arg(long)]
    pub(crate) proxy_protocol: bool,
    /// With --proxy-protocol: the proxies allowed to connect (an address
    /// or subnet; may be repeated) [default: 127.0.0.1 and ::1].
    #[arg(long, value_name = "ADDRESS[/BITS]", requires = "proxy_protocol", value_parser = wsgi_config::values::IpSubnet::parse)]
    pub(crate) proxy_allow_from: Vec<wsgi_config::values::IpSubnet>,
    /// Write the top process's id to FILE (removed when it stops).
    #[arg(long, value_name = "FILE")]
    pub(crate) pid_file: Option<PathBuf>,
    /// The queue of connections not yet accepted, per listening socket
    /// (the kernel caps it at net.core.somaxconn).
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub(crate) server_backlog: u32,
    /// Add NAME=VALUE to every request's environ, as Apache's SetEnv does;
    /// may be repeated. (With --config, use SetEnv in the file.)
    #[arg(long, num_args = 2, value_names = ["NAME", "VALUE"], action = clap::ArgAction::Append, conflicts_with = "config")]
    pub(crate) setenv: Vec<String>,
    /// The name `ps -o comm`, `pgrep` and `top` show for the top and
    /// serving processes (its first 15 bytes).
    #[arg(long, value_name = "NAME", value_parser = process_name)]
    pub(crate) process_name: Option<String>,
    /// With --maximum-requests: add a random 0..=N to each serving
    /// process's maximum, so that processes started together are not all
    /// replaced at once.
    #[arg(long, value_name = "N", default_value_t = 0, conflicts_with = "daemon",
          value_parser = clap::value_parser!(u64).range(0..=1_000_000_000))]
    pub(crate) max_requests_jitter: u64,
    /// Answer this path from the front end, before the application: 200
    /// while the server serves, 503 once it is stopping, for a load
    /// balancer's health checks.
    #[arg(long, value_name = "URL-PATH", value_parser = absolute_url_path)]
    pub(crate) health_path: Option<String>,
    /// With --health-path: seconds the server keeps serving after SIGTERM,
    /// its health path answering 503, before it stops accepting, so that
    /// a load balancer stops sending first [default: 5].
    #[arg(long, value_name = "SECONDS", requires = "health_path")]
    pub(crate) drain_delay: Option<u64>,
    /// Log to the terminal (the default here; accepted for mod_wsgi-express
    /// compatibility).
    #[arg(long)]
    pub(crate) log_to_terminal: bool,
}

/// A process name: text without NUL bytes.
fn process_name(text: &str) -> Result<String, String> {
    if text.is_empty() || text.contains('\0') {
        Err("a process name is text without NUL bytes".into())
    } else {
        Ok(text.to_string())
    }
}

/// A file mode in octal, as chmod takes it.
fn octal_mode(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    u32::from_str_radix(digits, 8)
        .ok()
        .filter(|mode| *mode <= 0o7777)
        .ok_or_else(|| format!("'{text}' is not an octal file mode"))
}

/// A URL path as a flag takes it: starting with `/`.
fn absolute_url_path(text: &str) -> Result<String, String> {
    if text.starts_with('/') && !text.contains(['?', '#', ' ']) {
        Ok(text.to_string())
    } else {
        Err("a URL path starts with '/' and has no query".into())
    }
}

pub(crate) fn read_options(file: &Path, server_root: Option<PathBuf>) -> ReadOptions {
    let server_root = server_root.unwrap_or_else(|| {
        file.parent().filter(|p| !p.as_os_str().is_empty()).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."))
    });
    ReadOptions::standalone(server_root).with_python(wsgi_interp::PYTHON_FEATURES)
}

pub(crate) fn check_config(file: &Path, server_root: Option<PathBuf>, define: Vec<String>, dump: bool) -> ExitCode {
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
