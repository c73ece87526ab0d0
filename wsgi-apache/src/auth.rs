//! Access and authentication scripts: WSGIAccessScript (`allow_access`),
//! the authn provider `wsgi` (WSGIAuthUserScript: `check_password` for
//! Basic, `get_realm_hash` for Digest) and the authz provider `wsgi-group`
//! (WSGIAuthGroupScript: `groups_for_user`), with mod_wsgi's result
//! mapping. Their environ has mod_wsgi's `mod_ssl.is_https` and
//! `mod_ssl.var_lookup` callables, with or without mod_ssl (Apache's core
//! then answers "no TLS").

use std::ffi::c_int;

use wsgi_config::directives::ScriptRef;
use wsgi_core::environ::{environ_key, environ_value};
use wsgi_core::group::{self, GroupContext};
use wsgi_core::route::latin1;
use wsgi_core::{EnvValue, Environ};
use wsgi_interp::{HookCall, HookError, HookValue};

use crate::config::DirConfig;
use crate::embedded::{self, pid};
use crate::ffi::{self, Level, Request, RequestLog, RequestSsl};

/// What an authentication provider answers (Apache's `authn_status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Authn {
    Granted,
    Denied,
    UserFound(Vec<u8>),
    UserNotFound,
    GeneralError,
}

/// What an authorization provider answers (Apache's `authz_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Authz {
    Granted,
    Denied,
    DeniedNoUser,
}

/// The CGI variables an auth script sees: request headers and server facts,
/// without the credentials, the body or the WSGI keys.
const AUTH_VARIABLES: &[&str] = &[
    "CONTENT_TYPE",
    "CONTENT_LENGTH",
    "SERVER_SIGNATURE",
    "SERVER_SOFTWARE",
    "SERVER_NAME",
    "SERVER_ADDR",
    "SERVER_PORT",
    "REMOTE_HOST",
    "REMOTE_ADDR",
    "DOCUMENT_ROOT",
    "SERVER_ADMIN",
    "REMOTE_PORT",
    "SERVER_PROTOCOL",
    "REQUEST_METHOD",
    "QUERY_STRING",
    "REQUEST_URI",
    "SCRIPT_NAME",
    "PATH_INFO",
];

/// The script, its group and the environ for one call.
struct Prepared {
    script: ScriptRef,
    group: String,
    environ: Environ,
    reload: bool,
}

fn prepare(request: &mut Request, script: &ScriptRef, settings: &wsgi_config::DirSettings) -> Prepared {
    let mut environ = Environ { entries: Vec::with_capacity(32) };
    request.cgi_variables(|key, value| {
        let keep = (key.starts_with(b"HTTP_") && key != b"HTTP_AUTHORIZATION" && key != b"HTTP_PROXY_AUTHORIZATION")
            || AUTH_VARIABLES.iter().any(|k| k.as_bytes() == key);
        if keep {
            environ.entries.push((environ_key(key), EnvValue::Str(environ_value(value))));
        }
    });
    let hostname = latin1(request.server_hostname());
    let host_header = environ.get_str("HTTP_HOST").map(str::to_string);
    let no_env = |_: &str| None;
    let ctx = GroupContext {
        server_hostname: &hostname,
        port: request.server_port(),
        request_host: host_header.as_deref(),
        script_name: "",
        case_sensitive: true,
        env: &no_env,
    };
    let group = group::server_group(script.application_group.as_deref(), &ctx);
    let reload = settings.effective_script_reloading();
    environ.set("apache.version", EnvValue::Tuple(embedded::apache_version().to_vec()));
    let (major, minor, patch) = wsgi_core::environ_build::MOD_WSGI_VERSION;
    environ.set("mod_wsgi.version", EnvValue::Tuple(vec![major, minor, patch]));
    environ.set_str("mod_wsgi.process_group", "");
    environ.set_str("mod_wsgi.application_group", group.clone());
    environ.set("mod_wsgi.script_reloading", EnvValue::Int(i64::from(reload)));
    Prepared { script: script.clone(), group, environ, reload }
}

fn call(request: &Request, prepared: Prepared, function: &str, args: &[&str]) -> Option<Result<HookValue, HookError>> {
    let runner = embedded::runner()?;
    let log = RequestLog::new(request);
    let ssl = RequestSsl::new(request);
    let call = HookCall {
        script: &prepared.script.path,
        application_group: &prepared.group,
        function,
        reload_on_change: prepared.reload,
        ssl: Some(&ssl),
    };
    Some(runner.call_hook(&call, prepared.environ, args, &log))
}

fn settings(request: &Request) -> wsgi_config::DirSettings {
    request.dir_config::<DirConfig>().map(|d| d.settings.clone()).unwrap_or_default()
}

/// The access checker: `allow_access(environ, host)`.
pub(crate) fn access_checker(request: &mut Request) -> c_int {
    let settings = settings(request);
    let Some(script) = settings.access_script.clone() else {
        return ffi::DECLINED as c_int;
    };
    let host = latin1(request.remote_host().unwrap_or_else(|| request.client_ip()));
    let prepared = prepare(request, &script, &settings);
    let path = script.path.display().to_string();
    let forbidden = |request: &Request| {
        request.log(
            Level::Error,
            &format!(
                "mod_wsgi (pid={}): Client denied by server configuration: '{}'.",
                pid(),
                latin1(request.filename())
            ),
        );
        ffi::HTTP_FORBIDDEN as c_int
    };
    match call(request, prepared, "allow_access", &[&host]) {
        Some(Ok(HookValue::Bool(true))) => ffi::OK as c_int,
        Some(Ok(HookValue::None)) => ffi::DECLINED as c_int,
        Some(Ok(HookValue::Bool(false))) => forbidden(request),
        Some(Ok(_)) => {
            request.log(
                Level::Error,
                &format!(
                    "mod_wsgi (pid={}): Indicator of host accessibility returned from '{path}' must a boolean or None.",
                    pid()
                ),
            );
            forbidden(request)
        }
        Some(Err(HookError::Missing)) => {
            request.log(
                Level::Error,
                &format!(
                    "mod_wsgi (pid={}): Target WSGI host access script '{path}' does not provide host validator.",
                    pid()
                ),
            );
            forbidden(request)
        }
        Some(Err(_)) | None => forbidden(request),
    }
}

fn auth_user_script(request: &Request) -> Option<(ScriptRef, wsgi_config::DirSettings)> {
    let settings = settings(request);
    match settings.auth_user_script.clone() {
        Some(script) => Some((script, settings)),
        None => {
            request.log(
                Level::Error,
                &format!("mod_wsgi (pid={}): Location of WSGI user authentication script not provided.", pid()),
            );
            None
        }
    }
}

/// `check_password(environ, user, password)` for Basic authentication.
pub(crate) fn check_password(request: &mut Request, user: &str, password: &str) -> Authn {
    let Some((script, settings)) = auth_user_script(request) else {
        return Authn::GeneralError;
    };
    let path = script.path.display().to_string();
    let prepared = prepare(request, &script, &settings);
    match call(request, prepared, "check_password", &[user, password]) {
        Some(Ok(HookValue::Bool(true))) => Authn::Granted,
        Some(Ok(HookValue::Bool(false))) => Authn::Denied,
        Some(Ok(HookValue::None)) => Authn::UserNotFound,
        Some(Ok(HookValue::Text(name))) => {
            // A returned name replaces the user name, as in mod_wsgi.
            request.set_user(name.as_bytes());
            Authn::Granted
        }
        Some(Ok(_)) => {
            request.log(
                Level::Error,
                &format!(
                    "mod_wsgi (pid={}): TypeError: Basic auth provider must return True, False None or user name as string (script '{path}').",
                    pid()
                ),
            );
            Authn::GeneralError
        }
        Some(Err(HookError::Missing)) => {
            request.log(
                Level::Error,
                &format!(
                    "mod_wsgi (pid={}): Target WSGI user authentication script '{path}' does not provide 'Basic' auth provider.",
                    pid()
                ),
            );
            Authn::GeneralError
        }
        Some(Err(_)) | None => Authn::GeneralError,
    }
}

/// `get_realm_hash(environ, user, realm)` for Digest authentication.
pub(crate) fn get_realm_hash(request: &mut Request, user: &str, realm: &str) -> Authn {
    let Some((script, settings)) = auth_user_script(request) else {
        return Authn::GeneralError;
    };
    let path = script.path.display().to_string();
    let prepared = prepare(request, &script, &settings);
    match call(request, prepared, "get_realm_hash", &[user, realm]) {
        Some(Ok(HookValue::None)) => Authn::UserNotFound,
        Some(Ok(HookValue::Text(hash))) if hash.chars().all(|c| (c as u32) < 256) => {
            Authn::UserFound(wsgi_core::route::latin1_bytes(&hash))
        }
        Some(Ok(HookValue::Bytes(hash))) => Authn::UserFound(hash),
        Some(Ok(_)) => {
            request.log(
                Level::Error,
                &format!(
                    "mod_wsgi (pid={}): TypeError: Digest auth provider must return None or string object (script '{path}').",
                    pid()
                ),
            );
            Authn::GeneralError
        }
        Some(Err(HookError::Missing)) => {
            request.log(
                Level::Error,
                &format!(
                    "mod_wsgi (pid={}): Target WSGI user authentication script '{path}' does not provide 'Digest' auth provider.",
                    pid()
                ),
            );
            Authn::GeneralError
        }
        Some(Err(_)) | None => Authn::GeneralError,
    }
}

/// `Require wsgi-group NAME...`: `groups_for_user(environ, user)`.
pub(crate) fn check_groups(request: &mut Request, require_line: &str) -> Authz {
    let Some(user) = request.user().map(latin1) else {
        return Authz::DeniedNoUser;
    };
    let settings = settings(request);
    let Some(script) = settings.auth_group_script.clone() else {
        request.log(
            Level::Error,
            &format!("mod_wsgi (pid={}): Location of WSGI group authorization script not provided.", pid()),
        );
        return Authz::Denied;
    };
    let path = script.path.display().to_string();
    let uri = latin1(request.uri());
    let prepared = prepare(request, &script, &settings);
    let groups = match call(request, prepared, "groups_for_user", &[&user]) {
        Some(Ok(HookValue::Items(groups))) => groups,
        Some(Ok(HookValue::None)) => Vec::new(),
        Some(Ok(_)) => {
            request.log(
                Level::Error,
                &format!(
                    "mod_wsgi (pid={}): Groups for user returned from '{path}' must be an iterable sequence of byte strings.",
                    pid()
                ),
            );
            return Authz::Denied;
        }
        Some(Err(_)) | None => return Authz::Denied,
    };
    if groups.is_empty() {
        request.log(
            Level::Error,
            &format!(
                "mod_wsgi (pid={}): Authorization of user '{user}' to access '{uri}' failed. User is not a member of any groups.",
                pid()
            ),
        );
        return Authz::Denied;
    }
    let wanted = wsgi_config::lexer::split_args(require_line).unwrap_or_default();
    // Apache keeps the groups in a table: names compare case-insensitively.
    if wanted.iter().any(|w| groups.iter().any(|g| g.eq_ignore_ascii_case(w.as_bytes()))) {
        return Authz::Granted;
    }
    request.log(
        Level::Error,
        &format!(
            "mod_wsgi (pid={}): Authorization of user '{user}' to access '{uri}' failed. User is not a member of designated groups.",
            pid()
        ),
    );
    Authz::Denied
}
