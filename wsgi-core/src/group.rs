//! Application and process group naming: mod_wsgi's expansion of
//! `%{GLOBAL}`, `%{RESOURCE}`, `%{SERVER}`, `%{HOST}` and `%{ENV:NAME}` in
//! `WSGIApplicationGroup`, `WSGIProcessGroup`, the script directives'
//! `application-group=` and `WSGICallableObject`.
//!
//! Common rules: a value not starting with `%` is used as written; an
//! unrecognised `%...` is returned literally (except by
//! [`callable_object`]); the host is the matched server's `ServerName`
//! (only `%{HOST}` reads the `Host` header) and `:port` is appended unless
//! the port is 80 or 443, whatever the scheme.

use crate::environ_build::parse_host_header;

/// What group names expand from, for one request.
pub struct GroupContext<'a> {
    /// The host part of the matched server's `ServerName`.
    pub server_hostname: &'a str,
    /// The server port as Apache reports it (`ap_get_server_port`, see
    /// [`crate::environ_build::server_port`]).
    pub port: u16,
    /// The `Host` header as sent (a port in it is ignored here).
    pub request_host: Option<&'a str>,
    /// The request's `SCRIPT_NAME`.
    pub script_name: &'a str,
    /// `WSGICaseSensitivity`: when false, `SCRIPT_NAME` is lower-cased in
    /// `%{RESOURCE}`.
    pub case_sensitive: bool,
    /// Looks up `%{ENV:NAME}`: mod_wsgi tries the request notes, then the
    /// request environment (`SetEnv`), then the process environment.
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl std::fmt::Debug for GroupContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupContext")
            .field("server_hostname", &self.server_hostname)
            .field("port", &self.port)
            .field("request_host", &self.request_host)
            .field("script_name", &self.script_name)
            .field("case_sensitive", &self.case_sensitive)
            .finish_non_exhaustive()
    }
}

impl GroupContext<'_> {
    fn with_port(&self, host: &str) -> String {
        let mut text = String::with_capacity(host.len() + 6);
        self.push_with_port(&mut text, host);
        text
    }

    /// `host`, then `:port` unless the port is 80 or 443.
    fn push_with_port(&self, text: &mut String, host: &str) {
        text.push_str(host);
        if self.port != 80 && self.port != 443 {
            use std::fmt::Write;
            let _ = write!(text, ":{}", self.port);
        }
    }

    fn server(&self) -> String {
        self.with_port(self.server_hostname)
    }

    fn host(&self) -> String {
        let host = self.request_host.map(|h| parse_host_header(h).0).filter(|h| !h.is_empty());
        self.with_port(host.as_deref().unwrap_or(self.server_hostname))
    }

    fn resource(&self) -> String {
        let mut script_name = collapse_slashes(self.script_name);
        if !self.case_sensitive {
            script_name.make_ascii_lowercase();
        }
        // Built in place: every request resolves its application group.
        let mut resource = String::with_capacity(self.server_hostname.len() + script_name.len() + 7);
        self.push_with_port(&mut resource, self.server_hostname);
        resource.push('|');
        resource.push_str(&script_name);
        resource
    }
}

/// Which tokens a directive accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Application,
    Process,
    Server,
}

fn expand(raw: &str, ctx: &GroupContext<'_>, flavor: Flavor) -> String {
    let Some(name) = raw.strip_prefix('%') else {
        return raw.to_string();
    };
    match name {
        "{GLOBAL}" => return String::new(),
        "{RESOURCE}" if flavor != Flavor::Server => return ctx.resource(),
        "{SERVER}" => return ctx.server(),
        "{HOST}" => return ctx.host(),
        _ => {}
    }
    if flavor != Flavor::Server {
        if let Some(value) = env_lookup(name, ctx) {
            // One more round for a value that is itself a token, but never
            // for another `%{ENV:`, so lookups cannot loop.
            if value.starts_with('%') && !value.starts_with("%{ENV:") {
                return expand(&value, ctx, flavor);
            }
            return value;
        }
    }
    raw.to_string()
}

/// The value of `{ENV:NAME}` when `name` has that form and NAME is set.
fn env_lookup(name: &str, ctx: &GroupContext<'_>) -> Option<String> {
    let variable = name.strip_prefix("{ENV:")?.strip_suffix('}')?;
    (ctx.env)(variable)
}

/// The names a request gives for its groups and callable, most specific
/// first: a script alias's options (or a handler script's), before the
/// directory's `WSGIProcessGroup`, `WSGIApplicationGroup` and
/// `WSGICallableObject`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GivenNames<'a> {
    /// `process-group=`.
    pub process_group: Option<&'a str>,
    /// `application-group=`.
    pub application_group: Option<&'a str>,
    /// `callable-object=`, used as written (mod_wsgi expands only the
    /// directive's).
    pub callable_object: Option<&'a str>,
}

/// A request's groups and callable, expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedNames {
    /// The process group (`""`: embedded mode).
    pub process_group: String,
    /// The application group (`""`: the main interpreter).
    pub application_group: String,
    /// The callable's name.
    pub callable: String,
}

/// Resolves a request's names: what `given` names, else the directory's
/// settings, expanded in `ctx`. Every front end names its groups here.
pub fn resolve_names(
    given: GivenNames<'_>,
    settings: &wsgi_config::DirSettings,
    ctx: &GroupContext<'_>,
) -> ResolvedNames {
    ResolvedNames {
        process_group: process_group(given.process_group.or(settings.process_group.as_deref()), ctx),
        application_group: application_group(given.application_group.or(settings.application_group.as_deref()), ctx),
        callable: match given.callable_object {
            Some(name) => name.to_string(),
            None => callable_object(settings.callable_object.as_deref(), ctx),
        },
    }
}

/// Why a request may not use the process group it names, in mod_wsgi's
/// words (front ends log it after `mod_wsgi: ` or `mod_wsgi (pid=N): `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupRefusal {
    /// No `WSGIDaemonProcess` of that name.
    #[error("No WSGI daemon process called '{0}' has been configured.")]
    NotConfigured(String),
    /// The group is defined in another virtual host.
    #[error("Daemon process called '{0}' cannot be accessed by this WSGI application.")]
    OtherVirtualHost(String),
    /// `WSGIRestrictProcess` does not list it.
    #[error("Daemon process called '{0}' cannot be accessed by this WSGI application (WSGIRestrictProcess).")]
    Restricted(String),
}

/// Where a process group is defined, as a front end sees it from the
/// request's virtual host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupScope {
    /// No group has the name.
    Undefined,
    /// Defined for the whole server or in the request's virtual host.
    Usable,
    /// Defined in another virtual host.
    OtherVirtualHost,
}

/// Whether a request whose settings are `settings` may run in process
/// group `name` (not empty), defined as `scope` says: the three checks
/// mod_wsgi makes, for every front end.
pub fn check_process_group(
    name: &str,
    scope: GroupScope,
    settings: &wsgi_config::DirSettings,
) -> Result<(), GroupRefusal> {
    match scope {
        GroupScope::Undefined => Err(GroupRefusal::NotConfigured(name.to_string())),
        GroupScope::OtherVirtualHost => Err(GroupRefusal::OtherVirtualHost(name.to_string())),
        GroupScope::Usable if !settings.allows_process_group(name) => Err(GroupRefusal::Restricted(name.to_string())),
        GroupScope::Usable => Ok(()),
    }
}

/// What one function of a `WSGIDispatchScript` gave back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatchAnswer {
    /// A name (before expansion) to use instead.
    Name(String),
    /// `None`, or the script has no such function: the name stays.
    Unchanged,
    /// The script did not load (logged): no name changes.
    NotLoaded,
    /// The function raised or returned something other than a string
    /// (logged): the request fails with 500.
    Failed,
}

/// The functions of a `WSGIDispatchScript`, run in a front end's embedded
/// Python (wsgi-interp's `EmbeddedRunner` answers them).
pub trait DispatchScript {
    /// Calls `function(environ)` of `script` in the interpreter of
    /// `application_group` (`""`: the main one), reloading the script if
    /// it changed and `reload_on_change` says so.
    fn call(
        &self,
        script: &std::path::Path,
        application_group: &str,
        function: &str,
        reload_on_change: bool,
        environ: crate::Environ,
    ) -> DispatchAnswer;
}

/// `WSGIDispatchScript`: its `process_group`, `application_group` and
/// `callable_object` functions (each optional, in that order) may override
/// the request's names, which are expanded in `ctx` and written to `env`.
/// Each function sees the request's environ without the WSGI objects and
/// versions, with the dispatch script's own groups. `Err(500)` when one
/// fails; a script that does not load changes nothing. Every front end
/// runs dispatch scripts here.
pub fn run_dispatch_script(
    script: &dyn DispatchScript,
    dispatch: &wsgi_config::directives::ScriptRef,
    settings: &wsgi_config::DirSettings,
    ctx: &GroupContext<'_>,
    env: &mut crate::Environ,
    names: &mut ResolvedNames,
) -> Result<(), u16> {
    let group = server_group(dispatch.application_group.as_deref(), ctx);
    for function in ["process_group", "application_group", "callable_object"] {
        let mut dispatch_env = crate::Environ {
            entries: env
                .entries
                .iter()
                .filter(|(key, _)| {
                    !key.starts_with("wsgi.")
                        && !matches!(&**key, "apache.version" | "mod_wsgi.version" | "mod_wsgi.callable_object")
                })
                .cloned()
                .collect(),
        };
        dispatch_env.set_str("mod_wsgi.process_group", "");
        dispatch_env.set_str("mod_wsgi.application_group", group.clone());
        let value =
            match script.call(&dispatch.path, &group, function, settings.effective_script_reloading(), dispatch_env) {
                DispatchAnswer::Name(value) => value,
                DispatchAnswer::Unchanged => continue,
                DispatchAnswer::NotLoaded => return Ok(()),
                DispatchAnswer::Failed => return Err(500),
            };
        match function {
            "process_group" => {
                names.process_group = process_group(Some(&value), ctx);
                env.set_str("mod_wsgi.process_group", names.process_group.clone());
            }
            "application_group" => {
                names.application_group = application_group(Some(&value), ctx);
                env.set_str("mod_wsgi.application_group", names.application_group.clone());
            }
            _ => {
                names.callable = callable_object(Some(&value), ctx);
                env.set_str("mod_wsgi.callable_object", names.callable.clone());
            }
        }
    }
    Ok(())
}

/// `WSGIApplicationGroup` (or `application-group=`): `None` means
/// `%{RESOURCE}`, `"host[:port]|SCRIPT_NAME"`; `%{GLOBAL}` is `""`, the
/// main interpreter.
pub fn application_group(raw: Option<&str>, ctx: &GroupContext<'_>) -> String {
    match raw {
        None => ctx.resource(),
        Some(raw) => expand(raw, ctx, Flavor::Application),
    }
}

/// `WSGIProcessGroup` (or `process-group=`): `None` and `%{GLOBAL}` are
/// `""`, embedded mode; the other tokens expand as for application groups.
pub fn process_group(raw: Option<&str>, ctx: &GroupContext<'_>) -> String {
    raw.map_or_else(String::new, |raw| expand(raw, ctx, Flavor::Process))
}

/// The `application-group=` of the access, authentication and dispatch
/// scripts: `None` and `%{GLOBAL}` are `""`; only `%{SERVER}` and `%{HOST}`
/// expand, anything else (even `%{RESOURCE}`) stays literal.
pub fn server_group(raw: Option<&str>, ctx: &GroupContext<'_>) -> String {
    raw.map_or_else(String::new, |raw| expand(raw, ctx, Flavor::Server))
}

/// `WSGICallableObject`: `None`, `%` alone, an unset `%{ENV:NAME}` and any
/// other `%...` give `application`.
pub fn callable_object(raw: Option<&str>, ctx: &GroupContext<'_>) -> String {
    const DEFAULT: &str = "application";
    let Some(raw) = raw else {
        return DEFAULT.to_string();
    };
    let Some(name) = raw.strip_prefix('%') else {
        return raw.to_string();
    };
    env_lookup(name, ctx).unwrap_or_else(|| DEFAULT.to_string())
}

/// Apache's `ap_no2slash`: every run of `/` becomes one.
pub(crate) fn collapse_slashes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut previous_slash = false;
    for c in text.chars() {
        if c == '/' && previous_slash {
            continue;
        }
        previous_slash = c == '/';
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "APP" => Some("myapp".into()),
            "TOKEN" => Some("%{SERVER}".into()),
            "LOOP" => Some("%{ENV:LOOP}".into()),
            "UNKNOWN_TOKEN" => Some("%{FOO}".into()),
            "CALLABLE" => Some("handler".into()),
            _ => None,
        }
    }

    fn ctx(port: u16, host: Option<&'static str>) -> GroupContext<'static> {
        GroupContext {
            server_hostname: "www.example.com",
            port,
            request_host: host,
            script_name: "/Wsgi//Foo",
            case_sensitive: true,
            env: &env,
        }
    }

    #[test]
    fn resource_is_the_default_application_group() {
        let c = ctx(8080, Some("other.example.com:8080"));
        assert_eq!(application_group(None, &c), "www.example.com:8080|/Wsgi/Foo");
        assert_eq!(application_group(Some("%{RESOURCE}"), &c), "www.example.com:8080|/Wsgi/Foo");
        assert_eq!(application_group(None, &ctx(80, None)), "www.example.com|/Wsgi/Foo");
        assert_eq!(application_group(None, &ctx(443, None)), "www.example.com|/Wsgi/Foo");
        let insensitive = GroupContext { case_sensitive: false, ..ctx(8080, None) };
        assert_eq!(application_group(None, &insensitive), "www.example.com:8080|/wsgi/foo");
        let root = GroupContext { script_name: "", ..ctx(80, None) };
        assert_eq!(application_group(None, &root), "www.example.com|");
    }

    #[test]
    fn reference_case_uses_server_name_not_host_header() {
        let c = GroupContext {
            server_hostname: "localhost",
            port: 8080,
            request_host: Some("127.0.0.1:8080"),
            script_name: "/env",
            case_sensitive: true,
            env: &env,
        };
        assert_eq!(application_group(None, &c), "localhost:8080|/env");
    }

    #[test]
    fn tokens() {
        let c = ctx(8080, Some("Other.Example.COM:9999"));
        assert_eq!(application_group(Some("%{GLOBAL}"), &c), "");
        assert_eq!(application_group(Some("%{SERVER}"), &c), "www.example.com:8080");
        assert_eq!(application_group(Some("%{HOST}"), &c), "other.example.com:8080");
        assert_eq!(application_group(Some("%{HOST}"), &ctx(80, None)), "www.example.com");
        assert_eq!(application_group(Some("%{HOST}"), &ctx(80, Some(""))), "www.example.com");
        assert_eq!(application_group(Some("%{HOST}"), &ctx(8000, Some("[::1]:8000"))), "::1:8000");
        assert_eq!(application_group(Some("literal"), &c), "literal");
        assert_eq!(application_group(Some("%{FOO}"), &c), "%{FOO}");
        assert_eq!(application_group(Some("%"), &c), "%");
        assert_eq!(application_group(Some(""), &c), "");
    }

    #[test]
    fn env_expansion_recurses_once() {
        let c = ctx(8080, None);
        assert_eq!(application_group(Some("%{ENV:APP}"), &c), "myapp");
        assert_eq!(application_group(Some("%{ENV:TOKEN}"), &c), "www.example.com:8080");
        assert_eq!(application_group(Some("%{ENV:LOOP}"), &c), "%{ENV:LOOP}");
        assert_eq!(application_group(Some("%{ENV:UNKNOWN_TOKEN}"), &c), "%{FOO}");
        assert_eq!(application_group(Some("%{ENV:UNSET}"), &c), "%{ENV:UNSET}");
        assert_eq!(application_group(Some("%{ENV:APP"), &c), "%{ENV:APP");
        assert_eq!(process_group(Some("%{ENV:APP}"), &c), "myapp");
        assert_eq!(process_group(Some("%{ENV:TOKEN}"), &c), "www.example.com:8080");
    }

    #[test]
    fn process_groups() {
        let c = ctx(8080, None);
        assert_eq!(process_group(None, &c), "");
        assert_eq!(process_group(Some("%{GLOBAL}"), &c), "");
        assert_eq!(process_group(Some("d1"), &c), "d1");
        assert_eq!(process_group(Some("%{RESOURCE}"), &c), "www.example.com:8080|/Wsgi/Foo");
        assert_eq!(process_group(Some("%{NOPE}"), &c), "%{NOPE}");
    }

    #[test]
    fn server_groups_expand_only_global_server_host() {
        let c = ctx(80, Some("h.example.com"));
        assert_eq!(server_group(None, &c), "");
        assert_eq!(server_group(Some("%{GLOBAL}"), &c), "");
        assert_eq!(server_group(Some("%{SERVER}"), &c), "www.example.com");
        assert_eq!(server_group(Some("%{HOST}"), &c), "h.example.com");
        assert_eq!(server_group(Some("%{RESOURCE}"), &c), "%{RESOURCE}");
        assert_eq!(server_group(Some("%{ENV:APP}"), &c), "%{ENV:APP}");
        assert_eq!(server_group(Some("named"), &c), "named");
    }

    #[test]
    fn callable_objects() {
        let c = ctx(80, None);
        assert_eq!(callable_object(None, &c), "application");
        assert_eq!(callable_object(Some("%"), &c), "application");
        assert_eq!(callable_object(Some("app"), &c), "app");
        assert_eq!(callable_object(Some("%{ENV:CALLABLE}"), &c), "handler");
        assert_eq!(callable_object(Some("%{ENV:UNSET}"), &c), "application");
        assert_eq!(callable_object(Some("%{GLOBAL}"), &c), "application");
    }

    #[test]
    fn slashes_collapse() {
        assert_eq!(collapse_slashes("//a///b/"), "/a/b/");
        assert_eq!(collapse_slashes(""), "");
    }
}
