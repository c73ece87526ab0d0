//! mod_wsgi's access, authentication and group scripts, for both front
//! ends: what environ they see, how they are called, and how what they
//! return maps to Apache's results, with mod_wsgi's log lines.
//! `WSGIAccessScript` (`allow_access`), `WSGIAuthUserScript`
//! (`check_password` for Basic, `get_realm_hash` for Digest) and
//! `WSGIAuthGroupScript` (`groups_for_user`).

use wsgi_config::directives::ScriptRef;
use wsgi_config::DirSettings;
use wsgi_core::access::{AuthRequest, AuthScripts, Authn, Authz, HostAccess};
use wsgi_core::app::SslLookup;
use wsgi_core::group::{self, GroupContext};
use wsgi_core::{EnvValue, Environ, ErrorLog, LogLevel};

use crate::{EmbeddedRunner, HookCall, HookError, HookValue};

/// The CGI variables an auth script sees besides the request headers
/// (`HTTP_*` but the credentials): server facts, without the body or the
/// WSGI keys.
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

/// Whether an auth script's environ carries the CGI variable `key`.
pub fn is_auth_variable(key: &[u8]) -> bool {
    (key.starts_with(b"HTTP_") && key != b"HTTP_AUTHORIZATION" && key != b"HTTP_PROXY_AUTHORIZATION")
        || AUTH_VARIABLES.iter().any(|k| k.as_bytes() == key)
}

/// One call of a script's function, ready to go: the script, the group it
/// runs in, its environ, and where it logs.
pub struct AuthCall<'a> {
    runner: &'a EmbeddedRunner,
    script: &'a ScriptRef,
    group: String,
    environ: Environ,
    reload: bool,
    ssl: Option<&'a dyn SslLookup>,
    log: &'a dyn ErrorLog,
}

impl<'a> AuthCall<'a> {
    /// A call of `script` with `environ` (the request's CGI variables, of
    /// which those of [`is_auth_variable`] are kept), in the application
    /// group `script` names (expanded with `ctx`), with mod_wsgi's keys
    /// added; `apache_version` for `apache.version` under Apache.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        runner: &'a EmbeddedRunner,
        script: &'a ScriptRef,
        settings: &DirSettings,
        cgi: Environ,
        ctx: &GroupContext<'_>,
        apache_version: Option<[i64; 3]>,
        ssl: Option<&'a dyn SslLookup>,
        log: &'a dyn ErrorLog,
    ) -> AuthCall<'a> {
        let mut environ = Environ { entries: Vec::with_capacity(32) };
        let mut cgi = cgi;
        environ
            .entries
            .extend(std::mem::take(&mut cgi.entries).into_iter().filter(|(key, _)| is_auth_variable(key.as_bytes())));
        let group = group::server_group(script.application_group.as_deref(), ctx);
        let reload = settings.effective_script_reloading();
        if let Some(version) = apache_version {
            environ.set("apache.version", EnvValue::Tuple(version.to_vec()));
        }
        let (major, minor, patch) = wsgi_core::environ_build::MOD_WSGI_VERSION;
        environ.set("mod_wsgi.version", EnvValue::Tuple(vec![major, minor, patch]));
        environ.set_str("mod_wsgi.process_group", "");
        environ.set_str("mod_wsgi.application_group", group.clone());
        environ.set("mod_wsgi.script_reloading", EnvValue::Int(i64::from(reload)));
        AuthCall { runner, script, group, environ, reload, ssl, log }
    }

    fn call(self, function: &str, args: &[&str]) -> Result<HookValue, HookError> {
        let call = HookCall {
            script: &self.script.path,
            application_group: &self.group,
            function,
            reload_on_change: self.reload,
            ssl: self.ssl,
        };
        self.runner.call_hook(&call, self.environ, args, self.log)
    }

    fn path(&self) -> String {
        self.script.path.display().to_string()
    }

    /// `allow_access(environ, host)`; `filename` names what was asked for
    /// in the log line of a refusal.
    pub fn allow_access(self, host: &str, filename: &str) -> HostAccess {
        let (path, log) = (self.path(), self.log);
        let denied = |message: Option<String>| {
            if let Some(message) = message {
                log_error(log, &message);
            }
            log_error(log, &format!("Client denied by server configuration: '{filename}'."));
            HostAccess::Deny
        };
        match self.call("allow_access", &[host]) {
            Ok(HookValue::Bool(true)) => HostAccess::Allow,
            Ok(HookValue::None) => HostAccess::Decline,
            Ok(HookValue::Bool(false)) => denied(None),
            Ok(_) => {
                denied(Some(format!("Indicator of host accessibility returned from '{path}' must a boolean or None.")))
            }
            Err(HookError::Missing) => {
                denied(Some(format!("Target WSGI host access script '{path}' does not provide host validator.")))
            }
            Err(_) => denied(None),
        }
    }

    /// `check_password(environ, user, password)` for Basic authentication.
    pub fn check_password(self, user: &str, password: &str) -> Authn {
        let path = self.path();
        let log = self.log;
        let error = |message: String| log_error(log, &message);
        match self.call("check_password", &[user, password]) {
            Ok(HookValue::Bool(true)) => Authn::Granted,
            Ok(HookValue::Bool(false)) => Authn::Denied,
            Ok(HookValue::None) => Authn::UserNotFound,
            // A returned name replaces the user name, as in mod_wsgi.
            Ok(HookValue::Text(name)) => Authn::GrantedAs(name),
            Ok(_) => {
                error(format!(
                    "TypeError: Basic auth provider must return True, False None or user name as string (script '{path}')."
                ));
                Authn::GeneralError
            }
            Err(HookError::Missing) => {
                error(format!(
                    "Target WSGI user authentication script '{path}' does not provide 'Basic' auth provider."
                ));
                Authn::GeneralError
            }
            Err(_) => Authn::GeneralError,
        }
    }

    /// `get_realm_hash(environ, user, realm)` for Digest authentication.
    pub fn get_realm_hash(self, user: &str, realm: &str) -> Authn {
        let path = self.path();
        let log = self.log;
        let error = |message: String| log_error(log, &message);
        match self.call("get_realm_hash", &[user, realm]) {
            Ok(HookValue::None) => Authn::UserNotFound,
            Ok(HookValue::Text(hash)) if hash.chars().all(|c| (c as u32) < 256) => {
                Authn::RealmHash(wsgi_core::route::latin1_bytes(&hash))
            }
            Ok(HookValue::Bytes(hash)) => Authn::RealmHash(hash),
            Ok(_) => {
                error(format!("TypeError: Digest auth provider must return None or string object (script '{path}')."));
                Authn::GeneralError
            }
            Err(HookError::Missing) => {
                error(format!(
                    "Target WSGI user authentication script '{path}' does not provide 'Digest' auth provider."
                ));
                Authn::GeneralError
            }
            Err(_) => Authn::GeneralError,
        }
    }

    /// `groups_for_user(environ, user)` for `Require wsgi-group`: granted
    /// when one of `wanted` is among the groups (compared as Apache's
    /// tables compare, ignoring case); `uri` is for the log lines.
    pub fn groups_for_user(self, user: &str, wanted: &[String], uri: &str) -> Authz {
        let path = self.path();
        let log = self.log;
        let error = |message: String| log_error(log, &message);
        let groups = match self.call("groups_for_user", &[user]) {
            Ok(HookValue::Items(groups)) => groups,
            Ok(HookValue::None) => Vec::new(),
            Ok(_) => {
                error(format!("Groups for user returned from '{path}' must be an iterable sequence of byte strings."));
                return Authz::Denied;
            }
            Err(_) => return Authz::Denied,
        };
        if groups.is_empty() {
            error(format!(
                "Authorization of user '{user}' to access '{uri}' failed. User is not a member of any groups."
            ));
            return Authz::Denied;
        }
        if wanted.iter().any(|w| groups.iter().any(|g| g.eq_ignore_ascii_case(w.as_bytes()))) {
            return Authz::Granted;
        }
        error(format!(
            "Authorization of user '{user}' to access '{uri}' failed. User is not a member of designated groups."
        ));
        Authz::Denied
    }
}

/// Logs `message` as mod_wsgi's lines begin.
fn log_error(log: &dyn ErrorLog, message: &str) {
    log.log(LogLevel::Error, &format!("mod_wsgi (pid={}): {message}", std::process::id()));
}

/// The scripts of a front end without Apache, run by `runner`: the
/// environ is the request's CGI variables, and the group is expanded as
/// for the request's server.
pub struct ScriptAuth<R> {
    runner: R,
}

impl<R> ScriptAuth<R>
where
    R: std::ops::Deref<Target = EmbeddedRunner> + Send + Sync,
{
    /// Scripts run by `runner`.
    pub fn new(runner: R) -> ScriptAuth<R> {
        ScriptAuth { runner }
    }

    fn call<'a>(&'a self, script: &'a ScriptRef, request: &'a AuthRequest<'_>) -> AuthCall<'a> {
        let host = request.head.header("host");
        let no_env = |_: &str| None;
        let ctx = GroupContext {
            server_hostname: request.server_hostname,
            port: wsgi_core::environ_build::server_port(request.head),
            request_host: host,
            script_name: "",
            case_sensitive: true,
            env: &no_env,
        };
        AuthCall::new(
            &self.runner,
            script,
            request.settings,
            request.environ.clone(),
            &ctx,
            None,
            request.ssl,
            request.log,
        )
    }
}

impl<R> AuthScripts for ScriptAuth<R>
where
    R: std::ops::Deref<Target = EmbeddedRunner> + Send + Sync,
{
    fn allow_access(&self, script: &ScriptRef, request: &AuthRequest<'_>, host: &str) -> HostAccess {
        self.call(script, request).allow_access(host, request.filename)
    }

    fn check_password(&self, script: &ScriptRef, request: &AuthRequest<'_>, user: &str, password: &str) -> Authn {
        self.call(script, request).check_password(user, password)
    }

    fn get_realm_hash(&self, script: &ScriptRef, request: &AuthRequest<'_>, user: &str, realm: &str) -> Authn {
        self.call(script, request).get_realm_hash(user, realm)
    }

    fn groups_for_user(&self, script: &ScriptRef, request: &AuthRequest<'_>, user: &str, wanted: &[String]) -> Authz {
        self.call(script, request).groups_for_user(user, wanted, request.head.raw_path())
    }
}
