//! The request pipeline both front ends share: from a request head to the
//! application to run (or the answer to give without one).
//!
//! A [`Site`] is a configuration compiled for serving. [`Site::dispatch`]
//! selects the virtual host, routes the path, applies the body policy,
//! resolves the process group, application group and callable, and builds
//! the environ, exactly once for every front end.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use wsgi_config::directives::UrlPattern;
use wsgi_config::{Config, DirSettings, Server};

use crate::access::{AccessControl, AccessOutcome, AuthRequest, AuthScripts, HostNames};
use crate::app::{AppTarget, ErrorLog, SslLookup};
use crate::body::{check_body, BodyKind};
use crate::environ::Environ;
use crate::environ_build::{
    build_environ, server_port, AppNames, DaemonFacts, EnvironInputs, RequestStats, ServerFacts, Versions, WsgiFlags,
};
use crate::group::{self, DispatchScript, GivenNames, GroupContext, GroupScope, ResolvedNames};
use crate::request::RequestHead;
use crate::route::{normalize_path, Router};

/// How a front end serves a site: the facts the environ reports.
#[derive(Debug, Clone)]
pub struct SiteOptions {
    /// `SERVER_SOFTWARE` and the `Server` header.
    pub server_software: String,
    /// `wsgi.multithread` / `wsgi.multiprocess` / `wsgi.run_once` for
    /// requests run in this process (embedded mode).
    pub flags: WsgiFlags,
    /// The versions reported in the environ.
    pub versions: Versions,
    /// `DOCUMENT_ROOT` when the matched server sets none.
    pub default_document_root: String,
}

/// A request that runs an application.
#[derive(Debug, Clone)]
pub struct AppRequest {
    /// The script, callable and application group.
    pub target: AppTarget,
    /// The expanded process group: `""` runs embedded, any other name in
    /// that daemon process group.
    pub process_group: String,
    /// The environ (without the interpreter's objects).
    pub environ: Environ,
    /// How the body arrives.
    pub body: BodyKind,
    /// `LimitRequestBody` (0: unlimited), to enforce on chunked bodies.
    pub body_limit: u64,
    /// A HEAD request still HEAD after `WSGIMapHEADToGET`: discard the body.
    pub head_only: bool,
    /// mod_env's variables (`SetEnv`, `PassEnv`), also in the environ, as
    /// mod_wsgi passes them; the access log's `env=` conditions read them.
    pub env_vars: Vec<(String, String)>,
    /// The authenticated user (also `REMOTE_USER` in the environ).
    pub remote_user: Option<String>,
}

/// What to do with a request.
#[derive(Debug, Clone)]
pub enum Dispatch {
    /// Run an application.
    App(Box<AppRequest>),
    /// Send this file (an `Alias`), to this authenticated user if any.
    File(PathBuf, Option<String>),
    /// Answer with this error status; nothing runs.
    Error(u16),
    /// Refused by the configuration: answer the status and log why.
    Refused(u16, String),
    /// Refused by access control (401, 403, or 400 and 500 when the
    /// credentials or the configuration are wrong), with the
    /// `WWW-Authenticate` challenge of a 401.
    Denied(u16, Option<String>),
    /// mod_alias's `Redirect`: this status (3xx or 410), to this location.
    Redirect(u16, Option<String>),
}

/// Access control's parts that live outside this crate: the Python of
/// mod_wsgi's scripts (none when the front end runs no Python), host-name
/// lookups, and the secret of Digest nonces (the same in every process of
/// a server, so that any of them accepts a nonce another made).
pub struct AccessParts {
    /// `WSGIAccessScript`, `WSGIAuthUserScript`, `WSGIAuthGroupScript`.
    pub scripts: Option<Arc<dyn AuthScripts>>,
    /// `Require host`.
    pub hosts: Arc<dyn HostNames>,
    /// The Digest nonce secret.
    pub nonce_secret: Vec<u8>,
}

/// A configuration compiled for serving.
pub struct Site {
    config: Config,
    /// Runs `WSGIDispatchScript`s (the front end's embedded Python).
    dispatch_script: Option<Arc<dyn DispatchScript + Send + Sync>>,
    /// Access control's outside parts, when the configuration has any.
    access: Option<AccessParts>,
    /// [`Site::runs_dispatch_scripts`] and [`Site::controls_access`],
    /// worked out once: requests ask.
    runs_dispatch_scripts: bool,
    controls_access: bool,
    /// One router per server: the main server's, then each virtual host's.
    routers: Vec<Router>,
    /// What the environ says of each server, in the routers' order:
    /// worked out once, not for every request.
    server_texts: Vec<ServerTexts>,
    options: SiteOptions,
}

/// A server's name and document root, as the environ gives them.
struct ServerTexts {
    /// `ServerName`'s host (the main server's, or `localhost`).
    hostname: String,
    /// `DOCUMENT_ROOT` (the main server's, or the front end's default).
    document_root: String,
}

impl ServerTexts {
    fn of(config: &Config, server: &Server, default_document_root: &str) -> ServerTexts {
        let document_root = server
            .document_root
            .as_ref()
            .or(config.main_server.document_root.as_ref())
            .map_or_else(|| default_document_root.to_string(), |p| p.display().to_string());
        ServerTexts { hostname: config.server_hostname(server), document_root }
    }
}

impl Site {
    /// Compiles `config` for serving.
    pub fn new(config: Config, options: SiteOptions) -> Site {
        let case_sensitive = config.global.case_sensitivity.unwrap_or(true);
        let routers = std::iter::once(&config.main_server)
            .chain(&config.virtual_hosts)
            .map(|server| Router::new(config.script_aliases(server), case_sensitive))
            .collect();
        let runs_dispatch_scripts = any_settings(&config, |settings| settings.dispatch_script.is_some());
        let controls_access = any_settings(&config, has_access_control);
        let server_texts = std::iter::once(&config.main_server)
            .chain(&config.virtual_hosts)
            .map(|server| ServerTexts::of(&config, server, &options.default_document_root))
            .collect();
        Site {
            config,
            dispatch_script: None,
            access: None,
            runs_dispatch_scripts,
            controls_access,
            routers,
            server_texts,
            options,
        }
    }

    /// Whether the configuration controls access anywhere (`Require`,
    /// `AuthType`, `WSGIAccessScript`).
    pub fn controls_access(&self) -> bool {
        self.controls_access
    }

    /// The site with access control's outside parts.
    pub fn with_access(self, parts: AccessParts) -> Site {
        Site { access: Some(parts), ..self }
    }

    /// Whether any part of the configuration names a `WSGIDispatchScript`:
    /// [`Site::dispatch`] may then run Python, so a front end whose thread
    /// must not block calls it where it may.
    pub fn runs_dispatch_scripts(&self) -> bool {
        self.runs_dispatch_scripts
    }

    /// Whether [`Site::dispatch`] may block: it runs dispatch scripts, or
    /// checks access (Python scripts, bcrypt, host-name lookups).
    pub fn dispatch_may_block(&self) -> bool {
        self.runs_dispatch_scripts || self.controls_access
    }

    /// This site with `script` to run its `WSGIDispatchScript`s (without
    /// one, a request under a dispatch script fails with 500).
    pub fn with_dispatch_script(self, script: Arc<dyn DispatchScript + Send + Sync>) -> Site {
        Site { dispatch_script: Some(script), ..self }
    }

    /// The configuration served.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The front end's options.
    pub fn options(&self) -> &SiteOptions {
        &self.options
    }

    fn server_index(&self, server: &Server) -> usize {
        if std::ptr::eq(server, &self.config.main_server) {
            return 0;
        }
        self.config.virtual_hosts.iter().position(|v| std::ptr::eq(v, server)).map_or(0, |i| i + 1)
    }

    /// Decides what to do with a request. `ssl` is what the front end's
    /// TLS layer knows of its connection, for access scripts and
    /// `SSLOptions`; `stats` identifies it; `daemon` is set when the
    /// request will run in a daemon process; access control logs to `log`.
    pub fn dispatch(
        &self,
        head: &RequestHead,
        ssl: Option<&dyn SslLookup>,
        stats: RequestStats<'_>,
        daemon: Option<DaemonFacts>,
        log: &dyn ErrorLog,
    ) -> Dispatch {
        let server = self.config.select_server(head.local, head.header("host"));
        let server_index = self.server_index(server);
        let ServerTexts { hostname, document_root } = &self.server_texts[server_index];
        // mod_alias translates before mod_wsgi: a Redirect, then an Alias,
        // wins over a WSGIScriptAlias that also matches (such as one
        // mounted at /).
        if let Some(dispatch) = self.redirect(server, head, hostname) {
            return dispatch;
        }
        if let Some(dispatch) = self.static_file(server, head, hostname, ssl, log) {
            return dispatch;
        }
        let router = &self.routers[server_index];
        let route = match router.resolve(head.raw_path()) {
            Ok(Some(route)) => route,
            // Access control answers first, as Apache's does before its
            // handler finds nothing.
            Ok(None) => return self.not_found(server, head, hostname, 404, ssl, log),
            Err(e) => return self.not_found(server, head, hostname, e.status(), ssl, log),
        };
        let Some(alias) = self.config.script_aliases(server).nth(route.alias_index) else {
            return Dispatch::Error(500);
        };
        // Sections match the path as configuration text is read: the
        // decoded bytes as UTF-8, as for static files.
        let url = location_path(&route.script_name, &route.path_info);
        let settings = self.config.settings_for(server, &url, Some(&route.script_filename));
        // Checked once access is: Apache reads the body in its handler.
        let body = check_body(head, settings.effective_limit_request_body(), settings.effective_chunked_request());
        let env_lookup = |name: &str| std::env::var(name).ok();
        let ctx = GroupContext {
            server_hostname: hostname,
            port: server_port(head),
            request_host: head.header("host"),
            script_name: &route.script_name,
            case_sensitive: self.config.global.case_sensitivity.unwrap_or(true),
            env: &env_lookup,
        };
        let given = GivenNames {
            process_group: alias.process_group.as_deref(),
            application_group: alias.application_group.as_deref(),
            callable_object: alias.callable_object.as_deref(),
        };
        let mut names = group::resolve_names(given, &settings, &ctx);
        let listener_host = crate::environ_build::ip_display(head.local.ip());
        let mut environ = build_environ(&EnvironInputs {
            head,
            route: &route,
            settings: &settings,
            pass_authorization: alias.pass_authorization,
            router: Some(router),
            server: ServerFacts {
                server_hostname: hostname,
                document_root,
                server_admin: None,
                server_software: &self.options.server_software,
                listener_host: &listener_host,
                listener_port: head.local.port(),
            },
            names: AppNames {
                process_group: &names.process_group,
                application_group: &names.application_group,
                callable_object: &names.callable,
                request_handler: "wsgi-script",
                handler_script: "",
            },
            flags: self.options.flags,
            stats,
            versions: self.options.versions,
            daemon,
            content_filters: false,
        });
        // mod_wsgi's HTTPS, when mod_ssl says the connection is secure.
        if head.scheme == crate::request::Scheme::Https {
            environ.set_str("HTTPS", "1");
        }
        let env_vars = settings.env_vars();
        for (name, value) in &env_vars {
            environ.set_str(name.clone(), value.clone());
        }
        add_tls_variables(&mut environ, &settings, ssl);
        let filename = route.script_filename.display();
        let access = AccessFacts { head, settings: &settings, hostname, filename: &filename, ssl, log };
        let remote_user = match self.check_access(&access, || {
            // The scripts see the connection's own facts, not what trusted
            // proxy headers make of them in the application's environ.
            let mut cgi = cgi_environ(head, hostname);
            cgi.set_str("SCRIPT_NAME", route.script_name.clone());
            cgi.set_str("PATH_INFO", route.path_info.clone());
            cgi
        }) {
            Ok(user) => user,
            Err(denied) => return denied,
        };
        if let Some((user, auth_type)) = &remote_user {
            environ.set_str("REMOTE_USER", user.clone());
            environ.set_str("AUTH_TYPE", *auth_type);
        }
        let body = match body {
            Ok(body) => body,
            Err(e) => return Dispatch::Error(e.status),
        };
        if let Some(dispatch) = &settings.dispatch_script {
            let Some(script) = &self.dispatch_script else {
                let why = "mod_wsgi: WSGIDispatchScript needs Python in this process (WSGIRestrictEmbedded On)";
                return Dispatch::Refused(500, why.into());
            };
            if let Err(status) =
                group::run_dispatch_script(&**script, dispatch, &settings, &ctx, &mut environ, &mut names)
            {
                return Dispatch::Error(status);
            }
        }
        let ResolvedNames { process_group, application_group, callable } = names;
        if let Some(refusal) = self.refuse_process_group(server, &process_group, &settings) {
            return refusal;
        }
        let head_only = environ.get_str("REQUEST_METHOD") == Some("HEAD");
        Dispatch::App(Box::new(AppRequest {
            target: AppTarget {
                script: route.script_filename,
                callable,
                application_group,
                reload_on_change: settings.effective_script_reloading(),
                script_mtime_us: None,
            },
            process_group,
            environ,
            body,
            body_limit: settings.effective_limit_request_body(),
            head_only,
            env_vars,
            remote_user: remote_user.map(|(user, _)| user),
        }))
    }

    /// Whether a request may go to daemon group `name` (`""`: embedded):
    /// the group must exist, be defined in the main server or in `server`,
    /// and be allowed by `WSGIRestrictProcess`; otherwise a 500 with the
    /// reason mod_wsgi logs.
    fn refuse_process_group(&self, server: &Server, name: &str, settings: &DirSettings) -> Option<Dispatch> {
        if name.is_empty() {
            return None;
        }
        let scope = match self.config.daemon_processes.iter().find(|g| g.process.name == name) {
            None => GroupScope::Undefined,
            Some(group) => match group.virtual_host {
                None => GroupScope::Usable,
                Some(index) if self.config.virtual_hosts.get(index).is_some_and(|v| std::ptr::eq(v, server)) => {
                    GroupScope::Usable
                }
                Some(_) => GroupScope::OtherVirtualHost,
            },
        };
        let refusal = group::check_process_group(name, scope, settings).err()?;
        Some(Dispatch::Refused(500, format!("mod_wsgi: {refusal}")))
    }

    /// Checks access where the settings control it: the authenticated
    /// user and `AUTH_TYPE` (none where nothing is controlled), or the
    /// answer. `environ` makes the scripts' environ, only when needed.
    fn check_access(
        &self,
        facts: &AccessFacts<'_>,
        environ: impl FnOnce() -> Environ,
    ) -> Result<Option<(String, &'static str)>, Dispatch> {
        if !has_access_control(facts.settings) {
            return Ok(None);
        }
        let (environ, filename) = (environ(), facts.filename.to_string());
        let Some(parts) = &self.access else {
            return Err(Dispatch::Refused(
                500,
                "access control is configured but this server did not set it up".into(),
            ));
        };
        let request = AuthRequest {
            head: facts.head,
            environ: &environ,
            settings: facts.settings,
            server_hostname: facts.hostname,
            filename: &filename,
            ssl: facts.ssl,
            log: facts.log,
        };
        let control = AccessControl {
            scripts: parts.scripts.as_deref(),
            hosts: &*parts.hosts,
            nonce_secret: &parts.nonce_secret,
            server_root: &self.config.server_root,
        };
        match control.check(&request) {
            AccessOutcome::Granted { user: Some(user), auth_type } => Ok(Some((user, auth_type.unwrap_or("Basic")))),
            AccessOutcome::Granted { user: None, .. } => Ok(None),
            AccessOutcome::Denied { status, challenge } => Err(Dispatch::Denied(status, challenge)),
        }
    }

    /// Access control for a URL no script answers: what guards it answers
    /// first, else `status` (404, or the routing error's).
    fn not_found(
        &self,
        server: &Server,
        head: &RequestHead,
        hostname: &str,
        status: u16,
        ssl: Option<&dyn SslLookup>,
        log: &dyn ErrorLog,
    ) -> Dispatch {
        let Ok(path) = normalize_path(head.raw_path()) else { return Dispatch::Error(status) };
        if !self.controls_access {
            return Dispatch::Error(status);
        }
        let path = String::from_utf8_lossy(&path).into_owned();
        let settings = self.config.settings_for(server, &path, None);
        let facts = AccessFacts { head, settings: &settings, hostname, filename: &path, ssl, log };
        match self.check_access(&facts, || cgi_environ(head, hostname)) {
            Ok(_) => Dispatch::Error(status),
            Err(denied) => denied,
        }
    }

    /// What `list` gives of `server`, then of the main server, which a
    /// virtual host inherits (mod_alias's merge).
    fn with_main_servers<'a, T: 'a>(
        &'a self,
        server: &'a Server,
        list: fn(&Server) -> &Vec<T>,
    ) -> impl Iterator<Item = &'a T> {
        let inherited: &[T] =
            if std::ptr::eq(server, &self.config.main_server) { &[] } else { list(&self.config.main_server) };
        list(server).iter().chain(inherited)
    }

    /// mod_alias's redirects: the server's, then the main server's; the
    /// first that matches the request's path answers.
    fn redirect(&self, server: &Server, head: &RequestHead, hostname: &str) -> Option<Dispatch> {
        if server.redirects.is_empty() && self.config.main_server.redirects.is_empty() {
            return None;
        }
        let path = normalize_path(head.raw_path()).ok()?;
        let path = String::from_utf8_lossy(&path).into_owned();
        for redirect in self.with_main_servers(server, |s| &s.redirects) {
            // A 410 has no target: only whether the path matches counts.
            let Some(mapped) = map_url(&redirect.url, redirect.target.as_deref().unwrap_or_default(), &path) else {
                continue;
            };
            let location = redirect.target.is_some().then(|| redirect_location(head, hostname, mapped));
            return Some(Dispatch::Redirect(redirect.status, location));
        }
        None
    }

    fn static_file(
        &self,
        server: &Server,
        head: &RequestHead,
        hostname: &str,
        ssl: Option<&dyn SslLookup>,
        log: &dyn ErrorLog,
    ) -> Option<Dispatch> {
        if server.aliases.is_empty() && self.config.main_server.aliases.is_empty() {
            return None;
        }
        let Ok(path) = normalize_path(head.raw_path()) else {
            return Some(Dispatch::Error(400));
        };
        let path = String::from_utf8_lossy(&path).into_owned();
        for alias in self.with_main_servers(server, |s| &s.aliases) {
            let Some(file) = map_url(&alias.url, &alias.target, &path).map(PathBuf::from) else { continue };
            let user = if self.controls_access {
                let settings = self.config.settings_for(server, &path, Some(&file));
                let filename = file.display();
                let facts = AccessFacts { head, settings: &settings, hostname, filename: &filename, ssl, log };
                match self.check_access(&facts, || cgi_environ(head, hostname)) {
                    Ok(user) => user.map(|(user, _)| user),
                    Err(denied) => return Some(denied),
                }
            } else {
                None
            };
            return Some(match std::fs::metadata(&file) {
                Ok(meta) if meta.is_file() => Dispatch::File(file, user),
                Ok(_) => Dispatch::Error(403),
                Err(_) => Dispatch::Error(404),
            });
        }
        None
    }
}

/// The `Location` of a redirect to `target`: a path gets this server's
/// scheme and the host asked for (escaped, as `ap_construct_url`), and the
/// request's query goes along.
fn redirect_location(head: &RequestHead, hostname: &str, target: String) -> String {
    let mut location = if target.starts_with('/') {
        let host = head.header("host").unwrap_or(hostname);
        format!("{}://{host}{}", head.scheme.as_str(), escape_path(&target))
    } else {
        target
    };
    if !head.query().is_empty() {
        location.push('?');
        location.push_str(head.query());
    }
    location
}

/// A path with the characters a URL cannot carry as they are escaped, as
/// Apache's `ap_escape_uri` does (Latin-1 text: one byte per character).
fn escape_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            'A'..='Z'
            | 'a'..='z'
            | '0'..='9'
            | '/'
            | '-'
            | '_'
            | '.'
            | '~'
            | '!'
            | '$'
            | '&'
            | '\''
            | '('
            | ')'
            | '*'
            | '+'
            | ','
            | ';'
            | '='
            | ':'
            | '@' => out.push(c),
            other => out.push_str(&format!("%{:02x}", u32::from(other) & 0xff)),
        }
    }
    out
}

/// A request's path (`SCRIPT_NAME` then `PATH_INFO`) as sections match
/// it: Latin-1 text (one character per decoded byte) read back as the
/// UTF-8 configuration text is.
fn location_path(script_name: &str, path_info: &str) -> String {
    // ASCII reads the same both ways: most paths need no conversion.
    if script_name.is_ascii() && path_info.is_ascii() {
        return [script_name, path_info].concat();
    }
    String::from_utf8_lossy(&crate::route::latin1_bytes(&[script_name, path_info].concat())).into_owned()
}

/// What access control knows of a request besides its environ.
struct AccessFacts<'a> {
    head: &'a RequestHead,
    settings: &'a DirSettings,
    hostname: &'a str,
    /// What the request maps to, for log lines.
    filename: &'a dyn std::fmt::Display,
    ssl: Option<&'a dyn SslLookup>,
    log: &'a dyn ErrorLog,
}

/// The TLS variables mod_ssl puts in a secure connection's environ, where
/// the front end's TLS layer supplies them: always `SSL_TLS_SNI`, and more
/// where `SSLOptions` asks (`+StdEnvVars`, `+ExportCertData`).
fn add_tls_variables(environ: &mut Environ, settings: &DirSettings, ssl: Option<&dyn SslLookup>) {
    use wsgi_config::tls::SslOption;
    let Some(ssl) = ssl.filter(|ssl| ssl.is_https()) else { return };
    let options = settings.effective_ssl_options();
    let (standard, certificates) =
        (options.contains(&SslOption::StdEnvVars), options.contains(&SslOption::ExportCertData));
    for (name, value) in ssl.environment(standard, certificates) {
        environ.set_str(name, value);
    }
}

/// Whether `settings` control access: `Require`, `AuthType` or
/// `WSGIAccessScript`.
fn has_access_control(settings: &DirSettings) -> bool {
    settings.authz.is_some() || settings.auth_type.is_some() || settings.access_script.is_some()
}

/// The CGI variables of a request that runs no application (a static
/// file, or a URL nothing maps), for access scripts.
fn cgi_environ(head: &RequestHead, hostname: &str) -> Environ {
    let mut environ = Environ { entries: Vec::with_capacity(head.headers.len() + 10) };
    for (name, value) in &head.headers {
        if let Some(key) = crate::environ_build::http_variable_key(name) {
            environ.set_str(key, value.clone());
        }
    }
    environ.set_str("REQUEST_METHOD", head.method.clone());
    environ.set_str("QUERY_STRING", head.query().to_string());
    environ.set_str("REQUEST_URI", head.raw_uri.clone());
    environ.set_str("SERVER_PROTOCOL", head.protocol.clone());
    environ.set_str("SERVER_NAME", crate::environ_build::server_name(head, hostname));
    environ.set_str("SERVER_PORT", server_port(head).to_string());
    environ.set_str("SERVER_ADDR", head.local.ip().to_string());
    environ.set_str("REMOTE_ADDR", head.peer.ip().to_string());
    environ.set_str("REMOTE_PORT", head.peer.port().to_string());
    environ
}

/// Whether some settings of `config` satisfy `wanted`: its servers' and
/// their sections'.
fn any_settings(config: &Config, wanted: impl Fn(&DirSettings) -> bool) -> bool {
    fn in_sections(sections: &[wsgi_config::model::DirSection], wanted: &dyn Fn(&DirSettings) -> bool) -> bool {
        sections.iter().any(|s| wanted(&s.settings) || in_sections(&s.nested, wanted))
    }
    std::iter::once(&config.main_server)
        .chain(&config.virtual_hosts)
        .any(|server| wanted(&server.settings) || in_sections(&server.sections, &wanted))
}

/// Where mod_alias maps `path` by `url` (an `Alias`' or `Redirect`'s
/// pattern) to `target`: the prefix's rest appended, or a pattern's
/// captures substituted; `None` when it does not match.
fn map_url(url: &UrlPattern, target: &str, path: &str) -> Option<String> {
    match url {
        UrlPattern::Prefix(prefix) => alias_rest(prefix, path).map(|rest| format!("{target}{rest}")),
        UrlPattern::Regex(regex) => regex.captures(path).map(|captures| {
            let mut mapped = String::new();
            captures.expand(target, &mut mapped);
            mapped
        }),
    }
}

/// The rest of `path` after an `Alias` prefix, matched on segment boundaries.
fn alias_rest<'p>(prefix: &str, path: &'p str) -> Option<&'p str> {
    let rest = path.strip_prefix(prefix)?;
    if prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/') {
        Some(rest)
    } else {
        None
    }
}

/// The `Content-Type` for a static file, by extension.
pub fn content_type(path: &Path) -> &'static str {
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match extension.as_str() {
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "js" | "mjs" => "text/javascript",
        "json" => "application/json",
        "txt" => "text/plain",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/vnd.microsoft.icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "pdf" => "application/pdf",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoLog;

    impl ErrorLog for NoLog {
        fn log(&self, _: crate::LogLevel, _: &str) {}
    }
    use wsgi_config::tree::ReadOptions;

    fn site(text: &str) -> Site {
        let config = wsgi_config::load_str(text, Path::new("site.conf"), &ReadOptions::standalone("/")).unwrap();
        Site::new(
            config,
            SiteOptions {
                server_software: "test".into(),
                flags: WsgiFlags::embedded(false, true),
                versions: Versions { mod_wsgi: (6, 0, 0), apache: None },
                default_document_root: "/var/www/html".into(),
            },
        )
    }

    fn head(method: &str, uri: &str, headers: &[(&str, &str)]) -> RequestHead {
        RequestHead::for_test(method, uri, headers, "127.0.0.1:40000", "127.0.0.1:8000")
    }

    fn stats() -> RequestStats<'static> {
        RequestStats {
            request_id: "id",
            request_start_us: 1,
            script_start_us: 2,
            thread_id: 1,
            thread_requests: 0,
            total_requests: 0,
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wsgi-core-pipeline-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn resolves_groups_and_builds_the_environ() {
        let dir = temp("groups");
        std::fs::write(dir.join("app.wsgi"), "").unwrap();
        let text = format!(
            "WSGIDaemonProcess d\n<VirtualHost *:8000>\nServerName site.example\n\
             WSGIScriptAlias /app {}/app.wsgi process-group=d callable-object=make\n\
             WSGIApplicationGroup %{{SERVER}}\n</VirtualHost>\n",
            dir.display()
        );
        let site = site(&text);
        let Dispatch::App(app) =
            site.dispatch(&head("GET", "/app/x?y=1", &[("Host", "site.example:8000")]), None, stats(), None, &NoLog)
        else {
            panic!("not an app")
        };
        assert_eq!(app.process_group, "d");
        assert_eq!(app.target.application_group, "site.example:8000");
        assert_eq!(app.target.callable, "make");
        assert_eq!(app.environ.get_str("SCRIPT_NAME"), Some("/app"));
        assert_eq!(app.environ.get_str("PATH_INFO"), Some("/x"));
        assert_eq!(app.environ.get_str("mod_wsgi.process_group"), Some("d"));
        assert!(!app.head_only);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn errors_before_the_application() {
        let dir = temp("errors");
        std::fs::write(dir.join("app.wsgi"), "").unwrap();
        let site = site(&format!("WSGIScriptAlias /app {}/app.wsgi\nLimitRequestBody 10\n", dir.display()));
        let status = |h: RequestHead| match site.dispatch(&h, None, stats(), None, &NoLog) {
            Dispatch::Error(status) => status,
            other => panic!("{other:?}"),
        };
        assert_eq!(status(head("GET", "/nothing", &[])), 404);
        assert_eq!(status(head("POST", "/app", &[("Content-Length", "11")])), 413);
        assert_eq!(status(head("POST", "/app", &[("Transfer-Encoding", "chunked")])), 411);
        assert_eq!(status(head("POST", "/app", &[("Transfer-Encoding", "gzip")])), 501);
        assert_eq!(status(head("POST", "/app", &[("Content-Length", "x")])), 400);
        assert_eq!(status(head("GET", "/app/%2e%2e/%2e%2e/x", &[])), 400);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_alias_wins_over_a_script_alias_at_the_root() {
        let dir = temp("precedence");
        std::fs::write(dir.join("app.wsgi"), "").unwrap();
        std::fs::write(dir.join("logo.png"), "png").unwrap();
        let site = site(&format!("WSGIScriptAlias / {0}/app.wsgi\nAlias /static {0}\n", dir.display()));
        assert!(matches!(
            site.dispatch(&head("GET", "/static/logo.png", &[]), None, stats(), None, &NoLog),
            Dispatch::File(..)
        ));
        assert!(matches!(site.dispatch(&head("GET", "/other", &[]), None, stats(), None, &NoLog), Dispatch::App(_)));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn aliases_serve_static_files() {
        let dir = temp("static");
        std::fs::create_dir_all(dir.join("css")).unwrap();
        std::fs::write(dir.join("css/site.css"), "body{}").unwrap();
        let site =
            site(&format!("Alias /static/ {}/\nAliasMatch ^/img/(.*)$ {}/css/$1\n", dir.display(), dir.display()));
        let dispatch = |uri: &str| site.dispatch(&head("GET", uri, &[]), None, stats(), None, &NoLog);
        assert!(matches!(dispatch("/static/css/site.css"), Dispatch::File(p, _) if p == dir.join("css/site.css")));
        assert!(matches!(dispatch("/img/site.css"), Dispatch::File(p, _) if p == dir.join("css/site.css")));
        assert!(matches!(dispatch("/static/css"), Dispatch::Error(403)));
        assert!(matches!(dispatch("/static/none.css"), Dispatch::Error(404)));
        assert!(matches!(dispatch("/static/../../etc/passwd"), Dispatch::Error(400 | 404)));
        assert_eq!(content_type(Path::new("a/site.CSS")), "text/css");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
