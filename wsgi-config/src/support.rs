//! What each front end does with each directive and `WSGIDaemonProcess`
//! option: honours it, accepts it where mod_wsgi itself gives it no
//! effect, or refuses it with the reason.
//!
//! This is the one place that says so. Both front ends check every parsed
//! line against it ([`check`]), so a setting that would do nothing is an
//! error at `file:line`, never a silent difference; and `cargo xtask
//! directives` writes `docs/directives.md` from it.

use std::fmt;

use crate::directives::Setting;
use crate::values::{split_option, DirectiveError};

/// A front end: where a configuration is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontEnd {
    /// The Apache module (`mod_wsgi.so`).
    Apache,
    /// `wsgi-standalone start-server --config FILE`.
    Standalone,
}

/// What a front end does with one directive or option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Acts as mod_wsgi documents it.
    Honoured,
    /// Accepted, with no effect, for the reason given: mod_wsgi gives it
    /// none either, or what it asks for is how this server always works.
    NoEffect(&'static str),
    /// Accepted only with the value given (mod_wsgi's default, case
    /// aside); any other value is refused with the reason.
    OnlyValue(&'static str, &'static str),
    /// Refused with the reason. For a daemon option: refused when it
    /// differs from mod_wsgi's default.
    Refused(&'static str),
    /// Another module's directive, which Apache itself reads.
    ApacheOwn,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Honoured => f.write_str("honoured"),
            Status::NoEffect(why) => write!(f, "accepted, no effect: {why}"),
            Status::OnlyValue(value, why) => write!(f, "only `{value}`; other values refused: {why}"),
            Status::Refused(why) => write!(f, "refused: {why}"),
            Status::ApacheOwn => f.write_str("Apache's own directive"),
        }
    }
}

/// One row of the table: a directive or a `WSGIDaemonProcess` option.
#[derive(Debug, Clone, Copy)]
pub struct Support {
    /// The directive name, or the option name (`processes`).
    pub name: &'static str,
    /// mod_wsgi's default, as text (`-` when it has none).
    pub default: &'static str,
    /// In the Apache module.
    pub apache: Status,
    /// In the standalone server.
    pub standalone: Status,
}

impl Support {
    /// The status in `front_end`.
    pub fn status(&self, front_end: FrontEnd) -> Status {
        match front_end {
            FrontEnd::Apache => self.apache,
            FrontEnd::Standalone => self.standalone,
        }
    }
}

const H: Status = Status::Honoured;

/// mod_wsgi 4 records these but decides nothing with them under Apache
/// 2.4, where authn/authz providers chain by themselves.
const AUTHORITATIVE: Status =
    Status::NoEffect("mod_wsgi 4 decides nothing with it under Apache 2.4, where providers chain by themselves");
const TELEMETRY: Status = Status::Refused("mod_wsgi 6's telemetry service is not implemented");
const NEW_RELIC: Status =
    Status::Refused("New Relic agent start-up is not implemented: start the agent from the WSGI script");

const fn both(name: &'static str, default: &'static str, status: Status) -> Support {
    Support { name, default, apache: status, standalone: status }
}

const fn each(name: &'static str, default: &'static str, apache: Status, standalone: Status) -> Support {
    Support { name, default, apache, standalone }
}

/// Every directive of [`crate::directives::DIRECTIVES`], in its order.
pub static DIRECTIVE_SUPPORT: &[Support] = &[
    both("WSGIScriptAlias", "-", H),
    both("WSGIScriptAliasMatch", "-", H),
    both("WSGIDaemonProcess", "-", H),
    both("WSGISocketPrefix", "logs/wsgi", H),
    both(
        "WSGISocketRotation",
        "On",
        Status::NoEffect(
            "a group's socket lives as long as its manager, so a graceful restart never mixes generations",
        ),
    ),
    both(
        "WSGIAcceptMutex",
        "default",
        Status::NoEffect("daemon processes accept on one socket and the kernel wakes one of them"),
    ),
    both(
        "WSGIVerboseDebugging",
        "Off",
        Status::OnlyValue("Off", "mod_wsgi's extra debug log lines for its developers are not written"),
    ),
    both("WSGIDontWriteBytecode", "Off", H),
    both("WSGIPythonWarnings", "-", H),
    both("WSGIPythonOptimize", "0", H),
    both("WSGIPythonHome", "-", H),
    both("WSGIPythonPath", "-", H),
    both("WSGIPythonEggs", "-", H),
    both("WSGIPythonHashSeed", "-", H),
    both("WSGISwitchInterval", "0.005", H),
    both("WSGIDestroyInterpreter", "On", H),
    both("WSGIApplicationGroupFallback", "-", H),
    both("WSGIPerInterpreterGIL", "Off", Status::OnlyValue("Off", "a GIL per interpreter needs Python 3.12 or later")),
    both(
        "WSGIFreeThreading",
        "Off",
        Status::OnlyValue("Off", "free threading needs a free-threaded Python 3.13 or later"),
    ),
    both("WSGIRestrictEmbedded", "Off", H),
    both("WSGIRestrictStdin", "On", H),
    both("WSGIRestrictStdout", "On", H),
    both("WSGIRestrictSignal", "On", H),
    both("WSGICaseSensitivity", "On", H),
    both("WSGIRestrictProcess", "-", H),
    both("WSGIProcessGroup", "%{GLOBAL}", H),
    both("WSGIApplicationGroup", "%{RESOURCE}", H),
    both("WSGICallableObject", "application", H),
    both("WSGIImportScript", "-", H),
    both("WSGIDispatchScript", "-", H),
    both("WSGIPassApacheRequest", "Off", Status::OnlyValue("Off", "the `apache` request object is not implemented")),
    both("WSGIPassAuthorization", "Off", H),
    both("WSGIScriptReloading", "On", H),
    each(
        "WSGIErrorOverride",
        "Off",
        H,
        Status::OnlyValue("Off", "the standalone server has no ErrorDocument pages to put in the application's place"),
    ),
    both("WSGIChunkedRequest", "Off", H),
    both("WSGIMapHEADToGET", "-", H),
    both("WSGIIgnoreActivity", "Off", H),
    both("WSGITrustedProxyHeaders", "-", H),
    both("WSGITrustedProxies", "-", H),
    each(
        "WSGIEnableSendfile",
        "Off",
        H,
        Status::OnlyValue("Off", "the standalone server's HTTP layer copies a file's bytes; it has no sendfile path"),
    ),
    both("WSGIAccessScript", "-", H),
    both("WSGIAuthUserScript", "-", H),
    both("WSGIAuthGroupScript", "-", H),
    both("WSGIGroupAuthoritative", "On", AUTHORITATIVE),
    both("WSGIUserAuthoritative", "On", AUTHORITATIVE),
    each("WSGIHandlerScript", "-", H, Status::Refused("handler scripts are not run by the standalone server yet")),
    each(
        "WSGIServerMetrics",
        "On",
        H,
        Status::OnlyValue("Off", "server_metrics() reports Apache's scoreboard, which the standalone server has not"),
    ),
    both("WSGITelemetryService", "-", TELEMETRY),
    both("WSGISlowRequests", "-", TELEMETRY),
    both("WSGITelemetryOptions", "-", TELEMETRY),
    both(
        "WSGILazyInitialization",
        "On",
        Status::OnlyValue("On", "Python is always initialised in the serving processes, never before"),
    ),
    both("WSGIPy3kWarningFlag", "Off", Status::NoEffect("a Python 2 flag; mod_wsgi built for Python 3 ignores it too")),
    both("WSGINewRelicConfigFile", "-", NEW_RELIC),
    both("WSGINewRelicEnvironment", "-", NEW_RELIC),
    each("Listen", "-", Status::ApacheOwn, H),
    each("ServerName", "-", Status::ApacheOwn, H),
    each("ServerAlias", "-", Status::ApacheOwn, H),
    each("ServerRoot", "-", Status::ApacheOwn, H),
    each("LimitRequestBody", "1073741824", Status::ApacheOwn, H),
    each("Require", "-", Status::ApacheOwn, H),
    each("AuthMerging", "Off", Status::ApacheOwn, H),
    each("AuthType", "-", Status::ApacheOwn, H),
    each("AuthName", "-", Status::ApacheOwn, H),
    each("AuthUserFile", "-", Status::ApacheOwn, H),
    each("AuthBasicProvider", "file", Status::ApacheOwn, H),
    each("AuthDigestProvider", "file", Status::ApacheOwn, H),
    each("SetEnv", "-", Status::ApacheOwn, H),
    each("PassEnv", "-", Status::ApacheOwn, H),
    each("UnsetEnv", "-", Status::ApacheOwn, H),
    each("Alias", "-", Status::ApacheOwn, H),
    each("AliasMatch", "-", Status::ApacheOwn, H),
    each("Redirect", "-", Status::ApacheOwn, H),
    each("RedirectMatch", "-", Status::ApacheOwn, H),
    each("RedirectPermanent", "-", Status::ApacheOwn, H),
    each("RedirectTemp", "-", Status::ApacheOwn, H),
    each("DocumentRoot", "-", Status::ApacheOwn, H),
    each("Timeout", "60", Status::ApacheOwn, H),
    each("KeepAlive", "On", Status::ApacheOwn, H),
    each("KeepAliveTimeout", "5", Status::ApacheOwn, H),
    each("MaxKeepAliveRequests", "100", Status::ApacheOwn, H),
    each("LimitRequestLine", "8190", Status::ApacheOwn, H),
    each("LimitRequestFieldSize", "8190", Status::ApacheOwn, H),
    each("LimitRequestFields", "100", Status::ApacheOwn, H),
    each("User", "-", Status::ApacheOwn, H),
    each("Group", "-", Status::ApacheOwn, H),
    each("ErrorLog", "-", Status::ApacheOwn, H),
    each("CustomLog", "-", Status::ApacheOwn, H),
    each("LogLevel", "warn", Status::ApacheOwn, H),
    each("LogFormat", "-", Status::ApacheOwn, H),
    each("Protocols", "http/1.1", Status::ApacheOwn, H),
    each("SSLEngine", "Off", Status::ApacheOwn, H),
    each("SSLCertificateFile", "-", Status::ApacheOwn, H),
    each("SSLCertificateKeyFile", "-", Status::ApacheOwn, H),
    each("SSLCertificateChainFile", "-", Status::ApacheOwn, H),
    each("SSLProtocol", "all", Status::ApacheOwn, H),
    each("SSLCipherSuite", "DEFAULT", Status::ApacheOwn, H),
    each("SSLHonorCipherOrder", "Off", Status::ApacheOwn, H),
    each("SSLOptions", "-", Status::ApacheOwn, H),
];

/// The `<WSGIInterpreterOptions>` container (mod_wsgi 6).
pub static INTERPRETER_OPTIONS_SUPPORT: Support = both("<WSGIInterpreterOptions>", "-", H);

const NOT_YET: Status = Status::Refused("not implemented");

/// Every `WSGIDaemonProcess` option, in the order of mod_wsgi's manual.
/// The default column is filled from [`crate::DaemonProcess::new`].
pub static OPTION_SUPPORT: &[Support] = &[
    both("processes", "", H),
    both("threads", "", H),
    both("display-name", "", H),
    both("home", "", H),
    both("chroot", "", Status::Refused("chroot needs a Python installation inside the new root; not supported")),
    both("user", "", H),
    both("group", "", H),
    both("supplementary-groups", "", H),
    both("umask", "", H),
    both("lang", "", H),
    both("locale", "", H),
    both("python-home", "", H),
    both("python-path", "", H),
    both("python-eggs", "", H),
    both("switch-interval", "", H),
    both("stack-size", "", H),
    both("maximum-requests", "", H),
    both("startup-timeout", "", H),
    both("shutdown-timeout", "", H),
    both("deadlock-timeout", "", H),
    both("inactivity-timeout", "", H),
    both("request-timeout", "", H),
    both("interrupt-timeout", "", H),
    both("graceful-timeout", "", H),
    both("eviction-timeout", "", H),
    both("restart-interval", "", H),
    both("connect-timeout", "", H),
    both("socket-timeout", "", H),
    both("queue-timeout", "", H),
    both("listen-backlog", "", H),
    both("send-buffer-size", "", H),
    both("receive-buffer-size", "", H),
    both("header-buffer-size", "", H),
    both("response-buffer-size", "", NOT_YET),
    both("response-socket-timeout", "", H),
    both("response-flush-delay", "", NOT_YET),
    both("socket-user", "", H),
    both("script-user", "", H),
    both("script-group", "", H),
    both("cpu-time-limit", "", H),
    both("cpu-priority", "", H),
    both("memory-limit", "", H),
    both("virtual-memory-limit", "", H),
    each(
        "server-metrics",
        "",
        H,
        Status::Refused("server_metrics() reports Apache's scoreboard, which the standalone server has not"),
    ),
    both("newrelic-config-file", "", NEW_RELIC),
    both("newrelic-environment", "", NEW_RELIC),
];

/// What the standalone server does with a directive of another Apache
/// module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtherModule {
    /// Refused, for the reason given: without it, who may see what, or
    /// what is served, would change.
    Refused(&'static str),
    /// It only decorates what Apache would serve: named in one start-up
    /// warning.
    NoEffect,
}

/// What the standalone server does with a directive of another Apache
/// module.
///
/// Refused are the directives whose loss would change who may see what or
/// what is served: access control, TLS, request rewriting and proxying,
/// handler mappings (which would otherwise serve a script's source as a
/// file), and the containers whose contents the server does not evaluate
/// ([`standalone_refuses_section`]).
pub fn standalone_other_module(name: &str) -> OtherModule {
    const ACCESS: &str = "the standalone server implements mod_authz_core's Require, Basic and Digest \
                          authentication with the file and wsgi providers, not this";
    const TLS: &str = "the standalone server's TLS takes SSLEngine, the certificate and key files, \
                       SSLProtocol, SSLCipherSuite, SSLHonorCipherOrder and SSLOptions only";
    const REWRITE: &str = "the standalone server does not rewrite, redirect or proxy requests";
    const HEADERS: &str = "the standalone server does not edit request or response headers";
    const HANDLER: &str = "handler mappings are not read by the standalone server: map scripts with WSGIScriptAlias";
    const CLIENT: &str = "the standalone server does not replace the client address";
    const IDENTITY: &str = "the standalone server does not change identity per virtual host or chroot";
    let lower = name.to_ascii_lowercase();
    let has_prefix = |prefixes: &[&str]| prefixes.iter().any(|p| lower.starts_with(p));
    let why = match lower.as_str() {
        "satisfy" | "order" | "allow" | "deny" | "allowoverride" | "allowoverridelist" => ACCESS,
        "header" | "requestheader" => HEADERS,
        "sethandler" | "addhandler" | "action" | "scriptalias" | "scriptaliasmatch" => HANDLER,
        "chrootdir" | "suexecusergroup" | "assignuserid" | "assignuseridexpr" => IDENTITY,
        _ if has_prefix(&["auth", "ldap", "session", "requireall", "requireany", "requirenone"]) => ACCESS,
        _ if has_prefix(&["ssl"]) => TLS,
        _ if has_prefix(&["rewrite", "proxy", "balancer"]) => REWRITE,
        _ if has_prefix(&["remoteip"]) => CLIENT,
        _ => return OtherModule::NoEffect,
    };
    OtherModule::Refused(why)
}

/// Why the standalone server refuses a container of another module, such
/// as `<Limit>`, `<If>` or `<Proxy>`: it evaluates none, so what is inside
/// would be dropped. Every such container is refused.
pub fn standalone_refuses_section(name: &str) -> &'static str {
    match standalone_other_module(name) {
        OtherModule::Refused(why) => why,
        _ if name.eq_ignore_ascii_case("limit") || name.eq_ignore_ascii_case("limitexcept") => {
            "the standalone server does not evaluate <Limit>: write `Require method ...` instead"
        }
        _ => "the standalone server does not evaluate this container, so what is inside would be dropped",
    }
}

/// The row of a directive (case-insensitive).
pub fn directive(name: &str) -> Option<&'static Support> {
    DIRECTIVE_SUPPORT.iter().find(|row| row.name.eq_ignore_ascii_case(name))
}

/// The row of a `WSGIDaemonProcess` option.
pub fn option(name: &str) -> Option<&'static Support> {
    OPTION_SUPPORT.iter().find(|row| row.name == name)
}

/// What the Python a front end embeds can do, for the directives that need
/// a newer one. wsgi-interp knows it (the Python it was built against);
/// the default is what Python 3.11 has: neither.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PythonFeatures {
    /// A GIL per interpreter (Python 3.12 or later): `WSGIPerInterpreterGIL`.
    pub own_gil: bool,
    /// Free threading (a free-threaded 3.13 or later): `WSGIFreeThreading`.
    pub free_threading: bool,
}

impl PythonFeatures {
    /// Refuses `WSGIPerInterpreterGIL On` and `WSGIFreeThreading On` where
    /// the Python lacks the feature: `Ok(true)` when `setting` is one of
    /// them and allowed, `Ok(false)` when it is neither.
    pub fn check(self, setting: &Setting) -> Result<bool, DirectiveError> {
        use crate::directives::GlobalSetting;
        let needs = match setting {
            Setting::Global(GlobalSetting::PerInterpreterGil(true)) if !self.own_gil => {
                ("WSGIPerInterpreterGIL", "Python 3.12 or later (a GIL per interpreter)")
            }
            Setting::Global(GlobalSetting::FreeThreading(true)) if !self.free_threading => {
                ("WSGIFreeThreading", "a free-threaded Python 3.13 or later (3.13t)")
            }
            Setting::Global(GlobalSetting::PerInterpreterGil(_) | GlobalSetting::FreeThreading(_)) => return Ok(true),
            _ => return Ok(false),
        };
        Err(DirectiveError::NeedsPython { directive: needs.0, needs: needs.1 })
    }
}

/// Refuses a parsed directive line that `front_end`, embedding a Python
/// with `python`'s features, would not act on. `args` are the line's words,
/// `setting` what they parsed to.
pub fn check(
    front_end: FrontEnd,
    python: PythonFeatures,
    name: &str,
    args: &[String],
    setting: &Setting,
) -> Result<(), DirectiveError> {
    let Some(row) = directive(name) else {
        return Ok(());
    };
    // The table's "only Off" for the Python features is the rule for a
    // Python without them; one with them honours On.
    if !python.check(setting)? {
        refuse(row.name, args, row.status(front_end))?;
    }
    if front_end == FrontEnd::Standalone {
        refuse_standalone_value(setting)?;
    }
    if let Setting::DaemonProcess(process) = setting {
        // Options at their default are not listed, so only the ones given
        // a value of their own are checked.
        for word in process.to_args().iter().skip(1) {
            let Some((option_name, _)) = split_option(word) else { continue };
            if let Some(row) = option(option_name) {
                if let Status::Refused(why) = row.status(front_end) {
                    return Err(DirectiveError::Refused {
                        directive: "WSGIDaemonProcess",
                        what: format!("option {option_name}="),
                        why,
                    });
                }
            }
        }
    }
    Ok(())
}

/// The values of honoured directives the standalone server cannot act on.
fn refuse_standalone_value(setting: &Setting) -> Result<(), DirectiveError> {
    use crate::authz::Provider;
    use crate::directives::{CoreSetting, DirSetting};
    const PIPED: &str =
        "piped logs are not supported by the standalone server: log to a file and rotate it with SIGUSR1";
    let refused = |directive, what: &str, why| Err(DirectiveError::Refused { directive, what: what.into(), why });
    const OTHER_AUTHN: &str = "the standalone server authenticates with the file and wsgi providers only";
    match setting {
        Setting::Dir(DirSetting::Require(r)) => match &r.provider {
            Provider::Other(name) => refused(
                "Require",
                &format!("provider {name}"),
                "the standalone server knows all, ip, host, local, user, valid-user, method and wsgi-group",
            ),
            // What Require env tests, SetEnvIf sets; without it a `not env`
            // rule could never deny.
            Provider::Env(_) => refused(
                "Require",
                "provider env",
                "the standalone server sets no variables before authorization (no SetEnvIf)",
            ),
            _ => Ok(()),
        },
        Setting::Core(CoreSetting::SslProtocol(words)) => match crate::tls::protocols(words) {
            Ok(_) => Ok(()),
            Err(why) => Err(DirectiveError::Other { directive: "SSLProtocol", message: why }),
        },
        Setting::Core(CoreSetting::SslCipherSuite { tls13, spec }) => {
            let checked = if *tls13 { crate::tls::tls13_suites(spec) } else { crate::tls::tls12_suites(spec) };
            checked.map(|_| ()).map_err(|why| DirectiveError::Other { directive: "SSLCipherSuite", message: why })
        }
        Setting::Dir(DirSetting::SslOptions(line)) => {
            use crate::tls::SslOption::{ExportCertData, StdEnvVars};
            match line.add.iter().find(|o| !matches!(o, StdEnvVars | ExportCertData)) {
                Some(option) => refused(
                    "SSLOptions",
                    &format!("option {}", option.name()),
                    "the standalone server's TLS takes StdEnvVars and ExportCertData only (no client certificates)",
                ),
                None => Ok(()),
            }
        }
        Setting::Dir(DirSetting::AuthType(Err(name))) => {
            refused("AuthType", name, "the standalone server authenticates with Basic and Digest only")
        }
        Setting::Dir(DirSetting::AuthBasicProvider(names) | DirSetting::AuthDigestProvider(names))
            if names.iter().any(|n| n != "file" && n != "wsgi") =>
        {
            let directive = if matches!(setting, Setting::Dir(DirSetting::AuthBasicProvider(_))) {
                "AuthBasicProvider"
            } else {
                "AuthDigestProvider"
            };
            refused(directive, "a provider other than file or wsgi", OTHER_AUTHN)
        }
        Setting::Core(CoreSetting::ErrorLog(target)) if target.starts_with('|') => refused("ErrorLog", "a pipe", PIPED),
        Setting::Core(CoreSetting::ErrorLog(target)) if target.starts_with("syslog") => {
            refused("ErrorLog", "syslog", "the standalone server does not log to syslog: log to a file")
        }
        Setting::Core(CoreSetting::CustomLog(log)) if log.target.starts_with('|') => {
            refused("CustomLog", "a pipe", PIPED)
        }
        Setting::Core(CoreSetting::CustomLog(log))
            if log.condition.as_deref().is_some_and(|c| !c.starts_with("env=")) =>
        {
            refused(
                "CustomLog",
                "a condition other than env=",
                "expr= conditions are not evaluated by the standalone server",
            )
        }
        _ => Ok(()),
    }
}

fn refuse(name: &'static str, args: &[String], status: Status) -> Result<(), DirectiveError> {
    match status {
        Status::Refused(why) => Err(DirectiveError::Refused { directive: name, what: "the directive".into(), why }),
        Status::OnlyValue(value, why) if !(args.len() == 1 && args[0].eq_ignore_ascii_case(value)) => {
            Err(DirectiveError::Refused { directive: name, what: format!("any value but {value}"), why })
        }
        _ => Ok(()),
    }
}

/// The status of a directive name in `front_end`, for the names the table
/// lists (`None` for others).
pub fn status(front_end: FrontEnd, name: &str) -> Option<Status> {
    directive(name).map(|row| row.status(front_end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::DaemonProcess;
    use crate::directives::DIRECTIVES;

    #[test]
    fn every_directive_has_one_row_in_table_order() {
        let names: Vec<&str> = DIRECTIVES.iter().map(|d| d.name).collect();
        let rows: Vec<&str> = DIRECTIVE_SUPPORT.iter().map(|r| r.name).collect();
        assert_eq!(names, rows);
    }

    #[test]
    fn every_option_has_one_row_in_table_order() {
        let names: Vec<&str> = DaemonProcess::new("x").effective_options().into_iter().map(|(n, _)| n).collect();
        let rows: Vec<&str> = OPTION_SUPPORT.iter().map(|r| r.name).collect();
        assert_eq!(names, rows);
    }

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    fn check_line(front_end: FrontEnd, name: &str, args: &str) -> Result<(), DirectiveError> {
        let args = words(args);
        let setting = crate::directives::parse(name, &args).unwrap().unwrap();
        check(front_end, PythonFeatures::default(), name, &args, &setting)
    }

    #[test]
    fn refusals_name_what_and_why() {
        let err = check_line(FrontEnd::Standalone, "WSGIErrorOverride", "On").unwrap_err().to_string();
        assert!(err.starts_with("WSGIErrorOverride: any value but Off is refused"), "{err}");
        assert!(check_line(FrontEnd::Standalone, "WSGIErrorOverride", "off").is_ok());
        assert!(check_line(FrontEnd::Apache, "WSGIErrorOverride", "On").is_ok());
        let err = check_line(FrontEnd::Standalone, "Require", "ldap-group cn=admins").unwrap_err().to_string();
        assert!(err.starts_with("Require: provider ldap-group is refused"), "{err}");
        assert!(check_line(FrontEnd::Standalone, "Require", "valid-user").is_ok());
        let err = check_line(FrontEnd::Standalone, "AuthBasicProvider", "file ldap").unwrap_err().to_string();
        assert!(err.contains("file and wsgi"), "{err}");
    }

    #[test]
    fn daemon_options_are_refused_only_away_from_their_default() {
        assert!(check_line(FrontEnd::Apache, "WSGIDaemonProcess", "g threads=3").is_ok());
        assert!(check_line(FrontEnd::Apache, "WSGIDaemonProcess", "g response-flush-delay=5").is_ok());
        let err = check_line(FrontEnd::Apache, "WSGIDaemonProcess", "g chroot=/srv").unwrap_err().to_string();
        assert!(err.starts_with("WSGIDaemonProcess: option chroot= is refused"), "{err}");
    }
}
