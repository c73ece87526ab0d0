//! Access and authentication scripts under Apache: WSGIAccessScript's
//! access checker, the authn provider `wsgi` (WSGIAuthUserScript) and the
//! authz provider `wsgi-group` (WSGIAuthGroupScript). How the scripts are
//! called and what their answers mean is wsgi-interp's `auth`, shared with
//! the standalone server; this is the Apache side: the request's CGI
//! variables, and mod_wsgi's `mod_ssl.is_https` and `mod_ssl.var_lookup`
//! callables, with or without mod_ssl (Apache's core then answers "no
//! TLS").

use std::ffi::c_int;

use wsgi_config::directives::ScriptRef;
use wsgi_core::access::{Authn, Authz, HostAccess};
use wsgi_core::environ::{environ_key, environ_value};
use wsgi_core::group::GroupContext;
use wsgi_core::route::latin1;
use wsgi_core::{EnvValue, Environ};
use wsgi_interp::auth::{is_auth_variable, AuthCall};

use crate::config::DirConfig;
use crate::embedded::{self, pid};
use crate::ffi::{self, Level, Request, RequestLog, RequestSsl};

fn settings(request: &Request) -> wsgi_config::DirSettings {
    request.dir_config::<DirConfig>().map(|d| d.settings.clone()).unwrap_or_default()
}

/// Runs `body` with a call of `script` prepared for `request`; `None` when
/// this child has no Python.
fn with_call<T>(request: &mut Request, script: &ScriptRef, body: impl FnOnce(AuthCall<'_>) -> T) -> Option<T> {
    let runner = embedded::runner()?;
    let settings = settings(request);
    let mut cgi = Environ { entries: Vec::with_capacity(32) };
    request.cgi_variables(|key, value| {
        if is_auth_variable(key) {
            cgi.entries.push((environ_key(key), EnvValue::Str(environ_value(value))));
        }
    });
    let hostname = latin1(request.server_hostname());
    let host_header = cgi.get_str("HTTP_HOST").map(str::to_string);
    let no_env = |_: &str| None;
    let ctx = GroupContext {
        server_hostname: &hostname,
        port: request.server_port(),
        request_host: host_header.as_deref(),
        script_name: "",
        case_sensitive: true,
        env: &no_env,
    };
    let log = RequestLog::new(request);
    let ssl = RequestSsl::new(request);
    let call = AuthCall::new(runner, script, &settings, cgi, &ctx, Some(embedded::apache_version()), Some(&ssl), &log);
    Some(body(call))
}

/// The access checker: `allow_access(environ, host)`.
pub(crate) fn access_checker(request: &mut Request) -> c_int {
    let Some(script) = settings(request).access_script else {
        return ffi::DECLINED as c_int;
    };
    let host = latin1(request.remote_host().unwrap_or_else(|| request.client_ip()));
    let filename = latin1(request.filename());
    match with_call(request, &script, |call| call.allow_access(&host, &filename)) {
        Some(HostAccess::Allow) => ffi::OK as c_int,
        Some(HostAccess::Decline) => ffi::DECLINED as c_int,
        Some(HostAccess::Deny) | None => ffi::HTTP_FORBIDDEN as c_int,
    }
}

fn auth_user_script(request: &Request) -> Option<ScriptRef> {
    let script = settings(request).auth_user_script;
    if script.is_none() {
        request.log(
            Level::Error,
            &format!("mod_wsgi (pid={}): Location of WSGI user authentication script not provided.", pid()),
        );
    }
    script
}

/// `check_password(environ, user, password)` for Basic authentication.
pub(crate) fn check_password(request: &mut Request, user: &str, password: &str) -> Authn {
    let Some(script) = auth_user_script(request) else { return Authn::GeneralError };
    let answer = with_call(request, &script, |call| call.check_password(user, password));
    if let Some(Authn::GrantedAs(name)) = &answer {
        request.set_user(name.as_bytes());
    }
    answer.unwrap_or(Authn::GeneralError)
}

/// `get_realm_hash(environ, user, realm)` for Digest authentication.
pub(crate) fn get_realm_hash(request: &mut Request, user: &str, realm: &str) -> Authn {
    let Some(script) = auth_user_script(request) else { return Authn::GeneralError };
    with_call(request, &script, |call| call.get_realm_hash(user, realm)).unwrap_or(Authn::GeneralError)
}

/// `Require wsgi-group NAME...`: `groups_for_user(environ, user)`.
pub(crate) fn check_groups(request: &mut Request, require_line: &str) -> Authz {
    let Some(user) = request.user().map(latin1) else {
        return Authz::DeniedNoUser;
    };
    let Some(script) = settings(request).auth_group_script else {
        request.log(
            Level::Error,
            &format!("mod_wsgi (pid={}): Location of WSGI group authorization script not provided.", pid()),
        );
        return Authz::Denied;
    };
    let uri = latin1(request.uri());
    let wanted = wsgi_config::lexer::split_args(require_line).unwrap_or_default();
    with_call(request, &script, |call| call.groups_for_user(&user, &wanted, &uri)).unwrap_or(Authz::Denied)
}
