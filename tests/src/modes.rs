//! The five ways we serve one application, and Debian's mod_wsgi beside
//! them: differential tests send the same requests to each and compare.

use std::path::PathBuf;

use crate::apache::{Apache, ApacheOptions, WsgiModule};
use crate::{HttpResponse, Server};

/// How our product serves the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Our module in Apache, embedded, in the main interpreter
    /// (`application-group=%{GLOBAL}`).
    ApacheGlobal,
    /// Our module in Apache, embedded, in a named sub-interpreter.
    ApacheNamedGroup,
    /// Our module in Apache, in a `WSGIDaemonProcess` group.
    ApacheDaemon,
    /// `wsgi-standalone start-server SCRIPT`.
    Standalone,
    /// `wsgi-standalone start-server SCRIPT --daemon`.
    StandaloneDaemon,
}

impl Mode {
    /// Every mode, in a fixed order.
    pub const ALL: [Mode; 5] =
        [Mode::ApacheGlobal, Mode::ApacheNamedGroup, Mode::ApacheDaemon, Mode::Standalone, Mode::StandaloneDaemon];

    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Mode::ApacheGlobal => "apache embedded %{GLOBAL}",
            Mode::ApacheNamedGroup => "apache embedded named group",
            Mode::ApacheDaemon => "apache daemon",
            Mode::Standalone => "standalone",
            Mode::StandaloneDaemon => "standalone --daemon",
        }
    }

    /// Whether the application runs in a daemon process.
    pub fn is_daemon(self) -> bool {
        matches!(self, Mode::ApacheDaemon | Mode::StandaloneDaemon)
    }
}

/// What is served: one WSGI script at `/`, and directories of static files
/// under URL prefixes (`Alias`, `--url-alias`).
#[derive(Debug, Clone)]
pub struct Deployment {
    /// The WSGI script (its callable is `application`).
    pub script: PathBuf,
    /// (URL prefix, directory) pairs served as static files.
    pub aliases: Vec<(String, PathBuf)>,
    /// Threads of each daemon process, and of the standalone server.
    pub threads: u32,
}

impl Deployment {
    /// `script` at `/`, with no static files.
    pub fn script(script: impl Into<PathBuf>) -> Deployment {
        Deployment { script: script.into(), aliases: Vec::new(), threads: 4 }
    }

    /// Adds static files from `dir` at `url`.
    pub fn alias(mut self, url: &str, dir: impl Into<PathBuf>) -> Deployment {
        self.aliases.push((url.to_string(), dir.into()));
        self
    }

    /// The Apache configuration: the aliases, then the script alias with
    /// its groups.
    fn apache_config(&self, daemon: bool, application_group: &str) -> String {
        let mut config = String::new();
        for (url, dir) in &self.aliases {
            config.push_str(&format!("Alias {url} {}\n", dir.display()));
        }
        let mut options = format!("application-group={application_group}");
        if daemon {
            config.push_str(&format!("WSGIDaemonProcess site processes=1 threads={}\n", self.threads));
            options.push_str(" process-group=site");
        }
        config.push_str(&format!("WSGIScriptAlias / {} {options}\n", self.script.display()));
        config
    }

    fn standalone_args(&self, daemon: bool) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = vec![self.script.clone().into()];
        for (url, dir) in &self.aliases {
            args.extend(["--url-alias".into(), url.into(), dir.clone().into()]);
        }
        args.extend(["--threads".into(), self.threads.to_string().into()]);
        if daemon {
            args.extend(["--daemon".into(), "--processes".into(), "1".into()]);
        }
        args
    }
}

/// Apache modules a deployment needs: `Alias`, and content types for
/// static files.
const APACHE_MODULES: [&str; 2] = ["alias", "mime"];

/// A running server for a deployment, stopped on drop.
pub enum Host {
    /// Apache with our module or Debian's mod_wsgi.
    Apache(Apache),
    /// `wsgi-standalone start-server`.
    Standalone(Server),
}

impl Host {
    /// Serves `deployment` in `mode`.
    pub fn start(mode: Mode, deployment: &Deployment) -> Host {
        match mode {
            Mode::ApacheGlobal => Host::apache(WsgiModule::Ours, deployment.apache_config(false, "%{GLOBAL}")),
            Mode::ApacheNamedGroup => Host::apache(WsgiModule::Ours, deployment.apache_config(false, "site")),
            Mode::ApacheDaemon => Host::apache(WsgiModule::Ours, deployment.apache_config(true, "%{GLOBAL}")),
            Mode::Standalone => Host::Standalone(Server::start(deployment.standalone_args(false))),
            Mode::StandaloneDaemon => Host::Standalone(Server::start(deployment.standalone_args(true))),
        }
    }

    /// Serves `deployment` with Debian's mod_wsgi: embedded in the main
    /// interpreter, or in a daemon group.
    pub fn reference(daemon: bool, deployment: &Deployment) -> Host {
        Host::apache(WsgiModule::Reference, deployment.apache_config(daemon, "%{GLOBAL}"))
    }

    fn apache(module: WsgiModule, config: String) -> Host {
        Host::Apache(Apache::start(&ApacheOptions {
            module,
            modules: APACHE_MODULES.to_vec(),
            ..ApacheOptions::ours(config)
        }))
    }

    /// The address it listens on.
    pub fn address(&self) -> std::net::SocketAddr {
        match self {
            Host::Apache(apache) => apache.address(),
            Host::Standalone(server) => server.address(),
        }
    }

    /// One request on a new connection; panics, with the server's log, if
    /// no complete response arrives.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
        crate::http_request(self.address(), method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n--- log\n{}", self.log()))
    }

    /// What the server logged so far (Apache's error log, the standalone
    /// server's standard error).
    pub fn log(&self) -> String {
        match self {
            Host::Apache(apache) => apache.error_log(),
            Host::Standalone(server) => server.stderr(),
        }
    }
}
