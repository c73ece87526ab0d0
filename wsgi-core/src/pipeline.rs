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

use crate::app::AppTarget;
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
}

/// What to do with a request.
#[derive(Debug, Clone)]
pub enum Dispatch {
    /// Run an application.
    App(Box<AppRequest>),
    /// Send this file (an `Alias`).
    File(PathBuf),
    /// Answer with this error status; nothing runs.
    Error(u16),
    /// Refused by the configuration: answer the status and log why.
    Refused(u16, String),
}

/// A configuration compiled for serving.
pub struct Site {
    config: Config,
    /// Runs `WSGIDispatchScript`s (the front end's embedded Python).
    dispatch_script: Option<Arc<dyn DispatchScript + Send + Sync>>,
    /// One router per server: the main server's, then each virtual host's.
    routers: Vec<Router>,
    options: SiteOptions,
}

impl Site {
    /// Compiles `config` for serving.
    pub fn new(config: Config, options: SiteOptions) -> Site {
        let case_sensitive = config.global.case_sensitivity.unwrap_or(true);
        let routers = std::iter::once(&config.main_server)
            .chain(&config.virtual_hosts)
            .map(|server| Router::new(config.script_aliases(server), case_sensitive))
            .collect();
        Site { config, dispatch_script: None, routers, options }
    }

    /// Whether any part of the configuration names a `WSGIDispatchScript`:
    /// [`Site::dispatch`] may then run Python, so a front end whose thread
    /// must not block calls it where it may.
    pub fn runs_dispatch_scripts(&self) -> bool {
        fn in_sections(sections: &[wsgi_config::model::DirSection]) -> bool {
            sections.iter().any(|s| s.settings.dispatch_script.is_some() || in_sections(&s.nested))
        }
        std::iter::once(&self.config.main_server)
            .chain(&self.config.virtual_hosts)
            .any(|server| server.settings.dispatch_script.is_some() || in_sections(&server.sections))
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

    /// Decides what to do with a request. `stats` identifies it;
    /// `daemon` is set when the request will run in a daemon process.
    pub fn dispatch(&self, head: &RequestHead, stats: RequestStats<'_>, daemon: Option<DaemonFacts>) -> Dispatch {
        let server = self.config.select_server(head.local, head.header("host"));
        // mod_alias translates before mod_wsgi: an Alias wins over a
        // WSGIScriptAlias that also matches (such as one mounted at /).
        if let Some(dispatch) = self.static_file(server, head) {
            return dispatch;
        }
        let router = &self.routers[self.server_index(server)];
        let route = match router.resolve(head.raw_path()) {
            Ok(Some(route)) => route,
            Ok(None) => return Dispatch::Error(404),
            Err(e) => return Dispatch::Error(e.status()),
        };
        let Some(alias) = self.config.script_aliases(server).nth(route.alias_index) else {
            return Dispatch::Error(500);
        };
        let url = format!("{}{}", route.script_name, route.path_info);
        let settings = self.config.settings_for(server, &url, Some(&route.script_filename));
        let body = match check_body(head, settings.effective_limit_request_body(), settings.effective_chunked_request())
        {
            Ok(body) => body,
            Err(e) => return Dispatch::Error(e.status),
        };
        let hostname = server
            .host_name()
            .or_else(|| self.config.main_server.host_name())
            .unwrap_or_else(|| "localhost".to_string());
        let env_lookup = |name: &str| std::env::var(name).ok();
        let ctx = GroupContext {
            server_hostname: &hostname,
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
        let document_root = server
            .document_root
            .as_ref()
            .or(self.config.main_server.document_root.as_ref())
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| self.options.default_document_root.clone());
        let listener_host = head.local.ip().to_string();
        let script_filename = route.script_filename.clone();
        let mut environ = build_environ(&EnvironInputs {
            head,
            route: &route,
            settings: &settings,
            pass_authorization: alias.pass_authorization,
            router: Some(router),
            server: ServerFacts {
                server_hostname: &hostname,
                document_root: &document_root,
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
        let env_vars = settings.env_vars();
        for (name, value) in &env_vars {
            environ.set_str(name.clone(), value.clone());
        }
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
                script: script_filename,
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

    fn static_file(&self, server: &Server, head: &RequestHead) -> Option<Dispatch> {
        if server.aliases.is_empty() && self.config.main_server.aliases.is_empty() {
            return None;
        }
        let Ok(path) = normalize_path(head.raw_path()) else {
            return Some(Dispatch::Error(400));
        };
        let path = String::from_utf8_lossy(&path).into_owned();
        let inherited: &[wsgi_config::directives::Alias] =
            if std::ptr::eq(server, &self.config.main_server) { &[] } else { &self.config.main_server.aliases };
        for alias in server.aliases.iter().chain(inherited) {
            let file = match &alias.url {
                UrlPattern::Prefix(prefix) => {
                    let Some(rest) = alias_rest(prefix, &path) else { continue };
                    PathBuf::from(format!("{}{rest}", alias.target))
                }
                UrlPattern::Regex(regex) => {
                    let Some(captures) = regex.captures(&path) else { continue };
                    let mut target = String::new();
                    captures.expand(&alias.target, &mut target);
                    PathBuf::from(target)
                }
            };
            return Some(match std::fs::metadata(&file) {
                Ok(meta) if meta.is_file() => Dispatch::File(file),
                Ok(_) => Dispatch::Error(403),
                Err(_) => Dispatch::Error(404),
            });
        }
        None
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
            site.dispatch(&head("GET", "/app/x?y=1", &[("Host", "site.example:8000")]), stats(), None)
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
        let status = |h: RequestHead| match site.dispatch(&h, stats(), None) {
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
        assert!(matches!(site.dispatch(&head("GET", "/static/logo.png", &[]), stats(), None), Dispatch::File(_)));
        assert!(matches!(site.dispatch(&head("GET", "/other", &[]), stats(), None), Dispatch::App(_)));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn aliases_serve_static_files() {
        let dir = temp("static");
        std::fs::create_dir_all(dir.join("css")).unwrap();
        std::fs::write(dir.join("css/site.css"), "body{}").unwrap();
        let site =
            site(&format!("Alias /static/ {}/\nAliasMatch ^/img/(.*)$ {}/css/$1\n", dir.display(), dir.display()));
        let dispatch = |uri: &str| site.dispatch(&head("GET", uri, &[]), stats(), None);
        assert!(matches!(dispatch("/static/css/site.css"), Dispatch::File(p) if p == dir.join("css/site.css")));
        assert!(matches!(dispatch("/img/site.css"), Dispatch::File(p) if p == dir.join("css/site.css")));
        assert!(matches!(dispatch("/static/css"), Dispatch::Error(403)));
        assert!(matches!(dispatch("/static/none.css"), Dispatch::Error(404)));
        assert!(matches!(dispatch("/static/../../etc/passwd"), Dispatch::Error(400 | 404)));
        assert_eq!(content_type(Path::new("a/site.CSS")), "text/css");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
