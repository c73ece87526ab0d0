//! The directive table: every mod_wsgi directive (4.x and 6.x) and the core
//! directives a WSGI host reads, each with its allowed contexts and the one
//! function that parses its arguments into a typed [`Setting`].
//!
//! The Apache module registers each entry of [`DIRECTIVES`] in Apache's
//! command table as `RAW_ARGS`, splits the raw text with
//! [`crate::lexer::split_args`] and calls the entry's `parse`: the same code
//! path as the file reader, so no directive is parsed in two places.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;

use crate::authz::{AuthMerging, AuthType, AuthzNode, AuthzSection, Logic, Requirement};
use crate::daemon::DaemonProcess;
use crate::lexer::quote_word;
use crate::values::{
    flag_word, option_word, parse_flag, parse_number, split_option, AcceptMutex, DirectiveError, HashSeed, IpSubnet,
    MapHeadToGet,
};

/// Where a directive may stand, as a set of [`Context`]s (Apache's
/// `RSRC_CONF`, `ACCESS_CONF`, `OR_FILEINFO`, `OR_AUTHCFG` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contexts(u8);

impl Contexts {
    /// The main server configuration, outside any container.
    pub const SERVER: Contexts = Contexts(1);
    /// Inside `<VirtualHost>`.
    pub const VIRTUAL_HOST: Contexts = Contexts(2);
    /// Inside `<Directory>`, `<Location>`, `<Files>` and their `Match` forms.
    pub const DIRECTORY: Contexts = Contexts(4);
    /// In a `.htaccess` file.
    pub const HTACCESS: Contexts = Contexts(8);
    /// Apache's `RSRC_CONF`: server config and virtual host.
    pub const RSRC: Contexts = Contexts(1 | 2);
    /// `ACCESS_CONF | RSRC_CONF`: anywhere but `.htaccess`.
    pub const ACCESS_RSRC: Contexts = Contexts(1 | 2 | 4);
    /// Apache's `OR_FILEINFO`: anywhere, including `.htaccess`.
    pub const ANYWHERE: Contexts = Contexts(1 | 2 | 4 | 8);
    /// Apache's `OR_AUTHCFG`: directory sections and `.htaccess` only.
    pub const AUTH: Contexts = Contexts(4 | 8);

    /// Whether `context` is one of these.
    pub fn allows(self, context: Context) -> bool {
        let bit = match context {
            Context::Server => 1,
            Context::VirtualHost => 2,
            Context::Directory => 4,
            Context::Htaccess => 8,
        };
        self.0 & bit != 0
    }
}

/// The context one directive line stands in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// Main server configuration.
    Server,
    /// Inside a `<VirtualHost>`.
    VirtualHost,
    /// Inside a directory, location or files section.
    Directory,
    /// A `.htaccess` file.
    Htaccess,
}

/// Where a directive may stand and how its arguments are parsed.
pub struct DirectiveSpec {
    /// The canonical spelling (names match case-insensitively).
    pub name: &'static str,
    /// The contexts it is allowed in.
    pub contexts: Contexts,
    /// Process-wide: only in the main server, never in a virtual host
    /// (Apache's `GLOBAL_ONLY` check).
    pub global_only: bool,
    /// Allowed inside `<WSGIInterpreterOptions>`, where it applies to the
    /// selected interpreters only.
    pub interpreter_scoped: bool,
    /// The arguments it takes, for help and messages.
    pub syntax: &'static str,
    /// Parses the argument words into a typed setting.
    pub parse: fn(&[String]) -> Result<Setting, DirectiveError>,
}

impl fmt::Debug for DirectiveSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectiveSpec").field("name", &self.name).finish_non_exhaustive()
    }
}

/// Finds a directive by name, case-insensitively.
pub fn find(name: &str) -> Option<&'static DirectiveSpec> {
    DIRECTIVES.iter().find(|spec| spec.name.eq_ignore_ascii_case(name))
}

/// Whether `name` belongs to mod_wsgi's namespace (`WSGI...`), where an
/// unknown name is an error rather than another module's directive.
pub fn is_wsgi_name(name: &str) -> bool {
    // By bytes: a name may start with a character of several.
    name.len() > 4 && name.as_bytes()[..4].eq_ignore_ascii_case(b"wsgi")
}

/// Parses one directive by name: the entry point for any front end.
pub fn parse(name: &str, args: &[String]) -> Option<Result<Setting, DirectiveError>> {
    find(name).map(|spec| (spec.parse)(args))
}

/// A typed directive value, grouped by where mod_wsgi stores it.
#[derive(Debug, Clone, PartialEq)]
pub enum Setting {
    /// `WSGIScriptAlias` / `WSGIScriptAliasMatch` (per server).
    ScriptAlias(ScriptAlias),
    /// `WSGIDaemonProcess` (server-wide list, scoped to its virtual host).
    DaemonProcess(Box<DaemonProcess>),
    /// `WSGIImportScript` (server-wide list).
    ImportScript(ImportScript),
    /// Process-wide settings (main server only).
    Global(GlobalSetting),
    /// Settings that merge server -> virtual host -> directory.
    Dir(DirSetting),
    /// Apache core directives a WSGI host reads.
    Core(CoreSetting),
}

/// Process-wide settings, allowed only in the main server configuration.
#[derive(Debug, Clone, PartialEq)]
pub enum GlobalSetting {
    /// `WSGISocketPrefix`.
    SocketPrefix(PathBuf),
    /// `WSGISocketRotation`.
    SocketRotation(bool),
    /// `WSGIAcceptMutex`.
    AcceptMutex(AcceptMutex),
    /// `WSGIVerboseDebugging`.
    VerboseDebugging(bool),
    /// `WSGIDontWriteBytecode`.
    DontWriteBytecode(bool),
    /// `WSGIPythonWarnings` (each use adds one).
    PythonWarnings(String),
    /// `WSGIPythonOptimize`.
    PythonOptimize(u8),
    /// `WSGIPythonHome`.
    PythonHome(PathBuf),
    /// `WSGIPythonPath` (`:`-separated).
    PythonPath(Vec<PathBuf>),
    /// `WSGIPythonEggs`.
    PythonEggs(PathBuf),
    /// `WSGIPythonHashSeed`.
    PythonHashSeed(HashSeed),
    /// `WSGISwitchInterval` in seconds.
    SwitchInterval(f64),
    /// `WSGIDestroyInterpreter`.
    DestroyInterpreter(bool),
    /// `WSGIApplicationGroupFallback %{GLOBAL}` (ours): an application
    /// whose extension modules refuse sub-interpreters runs in the main
    /// interpreter instead.
    ApplicationGroupFallback,
    /// `WSGIPerInterpreterGIL`.
    PerInterpreterGil(bool),
    /// `WSGIFreeThreading`.
    FreeThreading(bool),
    /// `WSGIRestrictEmbedded`.
    RestrictEmbedded(bool),
    /// `WSGIRestrictStdin`.
    RestrictStdin(bool),
    /// `WSGIRestrictStdout`.
    RestrictStdout(bool),
    /// `WSGIRestrictSignal`.
    RestrictSignal(bool),
    /// `WSGICaseSensitivity`.
    CaseSensitivity(bool),
    /// `WSGIServerMetrics`.
    ServerMetrics(bool),
    /// `WSGITelemetryService unix:/path [interval=N]`.
    TelemetryService {
        /// The UNIX socket path.
        socket: PathBuf,
        /// Push interval.
        interval: Duration,
    },
    /// `WSGISlowRequests` threshold (zero disables).
    SlowRequests(Duration),
    /// `WSGITelemetryOptions`.
    TelemetryOptions(TelemetryFlags),
    /// `WSGILazyInitialization` (4.x).
    LazyInitialization(bool),
    /// `WSGIPy3kWarningFlag` (4.x, Python 2 only; no effect).
    Py3kWarningFlag(bool),
    /// `WSGINewRelicConfigFile` (4.x; no effect).
    NewRelicConfigFile(String),
    /// `WSGINewRelicEnvironment` (4.x; no effect).
    NewRelicEnvironment(String),
}

/// `WSGITelemetryOptions` words: absolute, or adjustments to what is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TelemetryFlags {
    /// `None`, `All` or flag names: replaces the set.
    Set(u8),
    /// `+Flag` / `-Flag` words: adds and removes.
    Adjust {
        /// Flags to add.
        add: u8,
        /// Flags to remove.
        remove: u8,
    },
}

/// The one telemetry flag mod_wsgi defines.
pub const TELEMETRY_CAPTURE_USER_AGENT: u8 = 0x01;

/// Settings stored per server and per directory, merged child-over-parent.
#[derive(Debug, Clone, PartialEq)]
pub enum DirSetting {
    /// `WSGIProcessGroup` (raw; expanded per request).
    ProcessGroup(String),
    /// `WSGIApplicationGroup` (raw; expanded per request).
    ApplicationGroup(String),
    /// `WSGICallableObject`.
    CallableObject(String),
    /// `WSGIRestrictProcess` group names.
    RestrictProcess(Vec<String>),
    /// `WSGIDispatchScript`.
    DispatchScript(ScriptRef),
    /// `WSGIPassApacheRequest`.
    PassApacheRequest(bool),
    /// `WSGIPassAuthorization`.
    PassAuthorization(bool),
    /// `WSGIScriptReloading`.
    ScriptReloading(bool),
    /// `WSGIErrorOverride`.
    ErrorOverride(bool),
    /// `WSGIChunkedRequest`.
    ChunkedRequest(bool),
    /// `WSGIMapHEADToGET`.
    MapHeadToGet(MapHeadToGet),
    /// `WSGIIgnoreActivity`.
    IgnoreActivity(bool),
    /// `WSGITrustedProxyHeaders` (appends within one context).
    TrustedProxyHeaders(Vec<String>),
    /// `WSGITrustedProxies` (appends within one context).
    TrustedProxies(Vec<IpSubnet>),
    /// `WSGIEnableSendfile`.
    EnableSendfile(bool),
    /// `WSGIAccessScript`.
    AccessScript(ScriptRef),
    /// `WSGIAuthUserScript`.
    AuthUserScript(ScriptRef),
    /// `WSGIAuthGroupScript`.
    AuthGroupScript(ScriptRef),
    /// `WSGIGroupAuthoritative`.
    GroupAuthoritative(bool),
    /// `WSGIUserAuthoritative` (4.x).
    UserAuthoritative(bool),
    /// `WSGIHandlerScript`.
    HandlerScript(HandlerScript),
    /// Apache's `LimitRequestBody` in bytes (0: unlimited).
    LimitRequestBody(u64),
    /// mod_env's `SetEnv`, `PassEnv` and `UnsetEnv`.
    Env(EnvChange),
    /// mod_ssl's `SSLOptions`.
    SslOptions(crate::tls::SslOptionsLine),
    /// A `Require` line.
    Require(Requirement),
    /// A `<RequireAll>`, `<RequireAny>` or `<RequireNone>` container.
    Authz(AuthzSection),
    /// `AuthMerging`.
    AuthMerging(AuthMerging),
    /// `AuthType`, as written when it names no type this crate knows.
    AuthType(Result<AuthType, String>),
    /// `AuthName`: the realm.
    AuthName(String),
    /// `AuthUserFile`, as written (relative to `ServerRoot`).
    AuthUserFile(String),
    /// `AuthBasicProvider` names, lower-cased.
    AuthBasicProvider(Vec<String>),
    /// `AuthDigestProvider` names, lower-cased.
    AuthDigestProvider(Vec<String>),
}

/// A change mod_env makes to a request's environment variables, which
/// mod_wsgi passes in the WSGI environ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvChange {
    /// `SetEnv NAME [value]`.
    Set(String, String),
    /// `PassEnv NAME...`: the server's own environment's values.
    Pass(Vec<String>),
    /// `UnsetEnv NAME...`.
    Unset(Vec<String>),
}

/// Apache core directives that a WSGI host reads.
#[derive(Debug, Clone, PartialEq)]
pub enum CoreSetting {
    /// `Listen [address:]port [protocol]`.
    Listen(Listen),
    /// `ServerName [scheme://]host[:port]`.
    ServerName(String),
    /// `ServerAlias` names (wildcards allowed).
    ServerAlias(Vec<String>),
    /// `ServerRoot`.
    ServerRoot(PathBuf),
    /// `DocumentRoot`.
    DocumentRoot(PathBuf),
    /// `Alias` / `AliasMatch`.
    Alias(Alias),
    /// `Timeout`.
    Timeout(Duration),
    /// `KeepAlive`.
    KeepAlive(bool),
    /// `KeepAliveTimeout`.
    KeepAliveTimeout(Duration),
    /// `MaxKeepAliveRequests` (0: unlimited).
    MaxKeepAliveRequests(u64),
    /// `LimitRequestLine`: the longest request line, in bytes.
    LimitRequestLine(u32),
    /// `LimitRequestFieldSize`: the longest request header field, in bytes.
    LimitRequestFieldSize(u32),
    /// `LimitRequestFields`: the most request header fields (0: unlimited).
    LimitRequestFields(u32),
    /// `User`.
    User(String),
    /// `Group`.
    Group(String),
    /// `ErrorLog`.
    ErrorLog(String),
    /// `CustomLog`.
    CustomLog(CustomLog),
    /// `LogLevel` words, as written.
    LogLevel(Vec<String>),
    /// `Redirect`, `RedirectMatch`, `RedirectPermanent`, `RedirectTemp`.
    Redirect(Redirect),
    /// `Protocols`: `h2`, `h2c`, `http/1.1`.
    Protocols(Vec<String>),
    /// mod_ssl's `SSLEngine`.
    SslEngine(bool),
    /// mod_ssl's `SSLCertificateFile`, as written.
    SslCertificateFile(String),
    /// mod_ssl's `SSLCertificateKeyFile`, as written.
    SslCertificateKeyFile(String),
    /// mod_ssl's `SSLCertificateChainFile`, as written.
    SslCertificateChainFile(String),
    /// mod_ssl's `SSLProtocol` words.
    SslProtocol(Vec<String>),
    /// mod_ssl's `SSLCipherSuite [protocol] spec`: the spec, for TLS 1.3
    /// when the protocol is `TLSv1.3`.
    SslCipherSuite {
        /// `SSLCipherSuite TLSv1.3 ...`.
        tls13: bool,
        /// The cipher string.
        spec: String,
    },
    /// mod_ssl's `SSLHonorCipherOrder`.
    SslHonorCipherOrder(bool),
    /// `LogFormat format [nickname]`.
    LogFormat {
        /// The format string.
        format: String,
        /// Its name (`None`: the default format of `TransferLog`).
        nickname: Option<String>,
    },
}

/// A URL matcher of an alias: a path prefix or a regular expression.
#[derive(Debug, Clone)]
pub enum UrlPattern {
    /// Matches a URL path prefix on path-segment boundaries.
    Prefix(String),
    /// Matches a regular expression (the `...Match` directives).
    Regex(Regex),
}

impl PartialEq for UrlPattern {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (UrlPattern::Prefix(a), UrlPattern::Prefix(b)) => a == b,
            (UrlPattern::Regex(a), UrlPattern::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

impl UrlPattern {
    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        match self {
            UrlPattern::Prefix(p) => p,
            UrlPattern::Regex(r) => r.as_str(),
        }
    }
}

fn compile(directive: &'static str, pattern: &str) -> Result<Regex, DirectiveError> {
    Regex::new(pattern).map_err(|e| DirectiveError::InvalidValue {
        directive,
        value: pattern.to_string(),
        reason: format!("regular expression could not be compiled: {e}"),
    })
}

/// `WSGIScriptAlias` / `WSGIScriptAliasMatch`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptAlias {
    /// The URL prefix or pattern.
    pub url: UrlPattern,
    /// The script file or directory (with `$N` references for a pattern).
    pub target: String,
    /// `process-group=` (raw).
    pub process_group: Option<String>,
    /// `application-group=` (raw).
    pub application_group: Option<String>,
    /// `callable-object=`.
    pub callable_object: Option<String>,
    /// `pass-authorization=`.
    pub pass_authorization: Option<bool>,
}

impl ScriptAlias {
    /// An alias from `url` to `target` with no options.
    pub fn new(url: UrlPattern, target: impl Into<String>) -> ScriptAlias {
        ScriptAlias {
            url,
            target: target.into(),
            process_group: None,
            application_group: None,
            callable_object: None,
            pass_authorization: None,
        }
    }

    /// Whether both groups are given as fixed names, in which case mod_wsgi
    /// imports the script when the target process starts.
    pub fn preloads(&self) -> bool {
        let fixed = |g: &Option<String>| g.as_deref().is_some_and(|g| g == GLOBAL_GROUP || !g.contains("%{"));
        fixed(&self.process_group)
            && fixed(&self.application_group)
            && !(matches!(self.url, UrlPattern::Regex(_)) && self.target.contains('$'))
    }

    /// `WSGIScriptAlias` or `WSGIScriptAliasMatch`.
    pub fn directive_name(&self) -> &'static str {
        match self.url {
            UrlPattern::Prefix(_) => "WSGIScriptAlias",
            UrlPattern::Regex(_) => "WSGIScriptAliasMatch",
        }
    }

    fn to_args(&self) -> Vec<String> {
        let mut words = vec![self.url.as_str().to_string(), self.target.clone()];
        push_option(&mut words, "process-group", &self.process_group);
        push_option(&mut words, "application-group", &self.application_group);
        push_option(&mut words, "callable-object", &self.callable_object);
        if let Some(flag) = self.pass_authorization {
            words.push(option_word("pass-authorization", flag_word(flag)));
        }
        words
    }
}

/// The group name meaning the main interpreter / embedded mode.
pub const GLOBAL_GROUP: &str = "%{GLOBAL}";

/// `WSGIImportScript path process-group=P application-group=A`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportScript {
    /// The script to import.
    pub path: PathBuf,
    /// The process group it is imported in (`%{GLOBAL}`: embedded).
    pub process_group: String,
    /// The application group it is imported into.
    pub application_group: String,
}

/// A script with an optional `application-group=`: the dispatch, access
/// and auth scripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptRef {
    /// The script file.
    pub path: PathBuf,
    /// The application group it runs in (default: the main interpreter).
    pub application_group: Option<String>,
}

/// `WSGIHandlerScript name path [options]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerScript {
    /// The handler name (`AddHandler`/`SetHandler` value).
    pub name: String,
    /// The script file.
    pub path: PathBuf,
    /// `process-group=` (raw).
    pub process_group: Option<String>,
    /// `application-group=` (raw).
    pub application_group: Option<String>,
    /// `pass-authorization=`.
    pub pass_authorization: Option<bool>,
}

/// `Listen [address:]port [protocol]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// The address to bind, `None` for every address.
    pub address: Option<String>,
    /// The port.
    pub port: u16,
    /// The protocol word, if given (`http`, `https`).
    pub protocol: Option<String>,
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.address {
            Some(a) if a.contains(':') => write!(f, "[{a}]:{}", self.port)?,
            Some(a) => write!(f, "{a}:{}", self.port)?,
            None => write!(f, "{}", self.port)?,
        }
        if let Some(p) = &self.protocol {
            write!(f, " {p}")?;
        }
        Ok(())
    }
}

/// `Alias` / `AliasMatch`: static files.
#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    /// The URL prefix or pattern.
    pub url: UrlPattern,
    /// The file or directory (with `$N` references for a pattern).
    pub target: String,
}

/// mod_alias's `Redirect`, `RedirectPermanent`, `RedirectTemp` and
/// `RedirectMatch`.
#[derive(Debug, Clone)]
pub struct Redirect {
    /// The directive as written (`Redirect`, `RedirectMatch`, ...).
    pub directive: &'static str,
    /// The URL path prefix or pattern.
    pub url: UrlPattern,
    /// The status: 301, 302, 303, another 3xx, or 410 (gone).
    pub status: u16,
    /// Where to (with `$N` references for a pattern); `None` for 410.
    pub target: Option<String>,
}

impl PartialEq for Redirect {
    fn eq(&self, other: &Redirect) -> bool {
        self.url == other.url && self.status == other.status && self.target == other.target
    }
}

/// `CustomLog file|pipe format|nickname [env=...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomLog {
    /// Where to log.
    pub target: String,
    /// A format string or a `LogFormat` nickname.
    pub format: String,
    /// An `env=` / `expr=` condition.
    pub condition: Option<String>,
}

fn push_option(words: &mut Vec<String>, name: &str, value: &Option<String>) {
    if let Some(v) = value {
        words.push(option_word(name, v));
    }
}

impl Setting {
    /// The directive name and argument words that parse back to this value.
    pub fn to_directive(&self) -> (&'static str, Vec<String>) {
        match self {
            Setting::ScriptAlias(alias) => (alias.directive_name(), alias.to_args()),
            Setting::DaemonProcess(daemon) => ("WSGIDaemonProcess", daemon.to_args()),
            Setting::ImportScript(import) => (
                "WSGIImportScript",
                vec![
                    import.path.display().to_string(),
                    option_word("process-group", &import.process_group),
                    option_word("application-group", &import.application_group),
                ],
            ),
            Setting::Global(global) => global.to_directive(),
            Setting::Dir(dir) => dir.to_directive(),
            Setting::Core(core) => core.to_directive(),
        }
    }

    /// One configuration line for this value (a container: its lines).
    pub fn to_line(&self) -> String {
        if let Setting::Dir(DirSetting::Authz(section)) = self {
            return authz_lines(section);
        }
        let (name, args) = self.to_directive();
        let mut line = name.to_string();
        for arg in args {
            line.push(' ');
            line.push_str(&quote_word(&arg));
        }
        line
    }
}

fn require_words(r: &Requirement) -> Vec<String> {
    let mut words = if r.negated { vec!["not".to_string()] } else { Vec::new() };
    words.extend(r.words.iter().cloned());
    words
}

/// A container of `Require` lines as configuration text.
fn authz_lines(section: &AuthzSection) -> String {
    let name = match (section.logic, section.negated) {
        (Logic::And, _) => "RequireAll",
        (Logic::Or, false) => "RequireAny",
        (Logic::Or, true) => "RequireNone",
    };
    let mut text = format!("<{name}>\n");
    for child in &section.children {
        match child {
            AuthzNode::Require(r) => text.push_str(&Setting::Dir(DirSetting::Require(r.clone())).to_line()),
            AuthzNode::Section(inner) => text.push_str(&authz_lines(inner)),
        }
        text.push('\n');
    }
    text.push_str(&format!("</{name}>"));
    text
}

fn one(words: &[String]) -> Vec<String> {
    words.to_vec()
}

fn path_text(p: &std::path::Path) -> String {
    p.display().to_string()
}

impl GlobalSetting {
    fn to_directive(&self) -> (&'static str, Vec<String>) {
        use GlobalSetting::*;
        let flag = |b: &bool| vec![flag_word(*b).to_string()];
        match self {
            SocketPrefix(p) => ("WSGISocketPrefix", vec![path_text(p)]),
            SocketRotation(b) => ("WSGISocketRotation", flag(b)),
            AcceptMutex(m) => ("WSGIAcceptMutex", vec![m.to_string()]),
            VerboseDebugging(b) => ("WSGIVerboseDebugging", flag(b)),
            DontWriteBytecode(b) => ("WSGIDontWriteBytecode", flag(b)),
            PythonWarnings(w) => ("WSGIPythonWarnings", vec![w.clone()]),
            PythonOptimize(n) => ("WSGIPythonOptimize", vec![n.to_string()]),
            PythonHome(p) => ("WSGIPythonHome", vec![path_text(p)]),
            PythonPath(ps) => ("WSGIPythonPath", vec![ps.iter().map(|p| path_text(p)).collect::<Vec<_>>().join(":")]),
            PythonEggs(p) => ("WSGIPythonEggs", vec![path_text(p)]),
            PythonHashSeed(s) => ("WSGIPythonHashSeed", vec![s.to_string()]),
            SwitchInterval(s) => ("WSGISwitchInterval", vec![s.to_string()]),
            DestroyInterpreter(b) => ("WSGIDestroyInterpreter", flag(b)),
            ApplicationGroupFallback => ("WSGIApplicationGroupFallback", vec!["%{GLOBAL}".to_string()]),
            PerInterpreterGil(b) => ("WSGIPerInterpreterGIL", flag(b)),
            FreeThreading(b) => ("WSGIFreeThreading", flag(b)),
            RestrictEmbedded(b) => ("WSGIRestrictEmbedded", flag(b)),
            RestrictStdin(b) => ("WSGIRestrictStdin", flag(b)),
            RestrictStdout(b) => ("WSGIRestrictStdout", flag(b)),
            RestrictSignal(b) => ("WSGIRestrictSignal", flag(b)),
            CaseSensitivity(b) => ("WSGICaseSensitivity", flag(b)),
            ServerMetrics(b) => ("WSGIServerMetrics", flag(b)),
            TelemetryService { socket, interval } => (
                "WSGITelemetryService",
                vec![format!("unix:{}", socket.display()), format!("interval={}", interval.as_secs_f64())],
            ),
            SlowRequests(d) => ("WSGISlowRequests", vec![d.as_secs_f64().to_string()]),
            TelemetryOptions(flags) => ("WSGITelemetryOptions", telemetry_words(*flags)),
            LazyInitialization(b) => ("WSGILazyInitialization", flag(b)),
            Py3kWarningFlag(b) => ("WSGIPy3kWarningFlag", flag(b)),
            NewRelicConfigFile(s) => ("WSGINewRelicConfigFile", vec![s.clone()]),
            NewRelicEnvironment(s) => ("WSGINewRelicEnvironment", vec![s.clone()]),
        }
    }
}

fn telemetry_words(flags: TelemetryFlags) -> Vec<String> {
    match flags {
        TelemetryFlags::Set(0) => vec!["None".into()],
        TelemetryFlags::Set(_) => vec!["CaptureUserAgent".into()],
        TelemetryFlags::Adjust { add, remove } => {
            let mut words = Vec::new();
            if add & TELEMETRY_CAPTURE_USER_AGENT != 0 {
                words.push("+CaptureUserAgent".into());
            }
            if remove & TELEMETRY_CAPTURE_USER_AGENT != 0 {
                words.push("-CaptureUserAgent".into());
            }
            words
        }
    }
}

fn script_ref_args(script: &ScriptRef) -> Vec<String> {
    let mut words = vec![path_text(&script.path)];
    push_option(&mut words, "application-group", &script.application_group);
    words
}

impl DirSetting {
    fn to_directive(&self) -> (&'static str, Vec<String>) {
        use DirSetting::*;
        let flag = |b: &bool| vec![flag_word(*b).to_string()];
        match self {
            ProcessGroup(g) => ("WSGIProcessGroup", vec![g.clone()]),
            ApplicationGroup(g) => ("WSGIApplicationGroup", vec![g.clone()]),
            CallableObject(c) => ("WSGICallableObject", vec![c.clone()]),
            RestrictProcess(gs) => ("WSGIRestrictProcess", one(gs)),
            DispatchScript(s) => ("WSGIDispatchScript", script_ref_args(s)),
            PassApacheRequest(b) => ("WSGIPassApacheRequest", flag(b)),
            PassAuthorization(b) => ("WSGIPassAuthorization", flag(b)),
            ScriptReloading(b) => ("WSGIScriptReloading", flag(b)),
            ErrorOverride(b) => ("WSGIErrorOverride", flag(b)),
            ChunkedRequest(b) => ("WSGIChunkedRequest", flag(b)),
            MapHeadToGet(m) => ("WSGIMapHEADToGET", vec![m.to_string()]),
            IgnoreActivity(b) => ("WSGIIgnoreActivity", flag(b)),
            TrustedProxyHeaders(hs) => ("WSGITrustedProxyHeaders", one(hs)),
            TrustedProxies(ps) => ("WSGITrustedProxies", ps.iter().map(ToString::to_string).collect()),
            EnableSendfile(b) => ("WSGIEnableSendfile", flag(b)),
            AccessScript(s) => ("WSGIAccessScript", script_ref_args(s)),
            AuthUserScript(s) => ("WSGIAuthUserScript", script_ref_args(s)),
            AuthGroupScript(s) => ("WSGIAuthGroupScript", script_ref_args(s)),
            GroupAuthoritative(b) => ("WSGIGroupAuthoritative", flag(b)),
            UserAuthoritative(b) => ("WSGIUserAuthoritative", flag(b)),
            HandlerScript(h) => {
                let mut words = vec![h.name.clone(), path_text(&h.path)];
                push_option(&mut words, "process-group", &h.process_group);
                push_option(&mut words, "application-group", &h.application_group);
                if let Some(flag) = h.pass_authorization {
                    words.push(option_word("pass-authorization", flag_word(flag)));
                }
                ("WSGIHandlerScript", words)
            }
            LimitRequestBody(n) => ("LimitRequestBody", vec![n.to_string()]),
            Env(EnvChange::Set(name, value)) => ("SetEnv", vec![name.clone(), value.clone()]),
            Env(EnvChange::Pass(names)) => ("PassEnv", names.clone()),
            Env(EnvChange::Unset(names)) => ("UnsetEnv", names.clone()),
            SslOptions(line) => ("SSLOptions", line.words()),
            Require(r) => ("Require", require_words(r)),
            // Rendered whole by `Setting::to_line`.
            Authz(_) => ("<RequireAny>", Vec::new()),
            AuthMerging(m) => ("AuthMerging", vec![format!("{m:?}")]),
            AuthType(Ok(t)) => ("AuthType", vec![t.name().to_string()]),
            AuthType(Err(other)) => ("AuthType", vec![other.clone()]),
            AuthName(realm) => ("AuthName", vec![realm.clone()]),
            AuthUserFile(path) => ("AuthUserFile", vec![path.clone()]),
            AuthBasicProvider(names) => ("AuthBasicProvider", names.clone()),
            AuthDigestProvider(names) => ("AuthDigestProvider", names.clone()),
        }
    }
}

impl CoreSetting {
    fn to_directive(&self) -> (&'static str, Vec<String>) {
        use CoreSetting::*;
        match self {
            Listen(l) => {
                let text = l.to_string();
                ("Listen", text.split(' ').map(String::from).collect())
            }
            ServerName(n) => ("ServerName", vec![n.clone()]),
            ServerAlias(ns) => ("ServerAlias", one(ns)),
            ServerRoot(p) => ("ServerRoot", vec![path_text(p)]),
            DocumentRoot(p) => ("DocumentRoot", vec![path_text(p)]),
            Alias(a) => match &a.url {
                UrlPattern::Prefix(p) => ("Alias", vec![p.clone(), a.target.clone()]),
                UrlPattern::Regex(r) => ("AliasMatch", vec![r.as_str().to_string(), a.target.clone()]),
            },
            Timeout(d) => ("Timeout", vec![duration_word(*d)]),
            KeepAlive(b) => ("KeepAlive", vec![flag_word(*b).to_string()]),
            KeepAliveTimeout(d) => ("KeepAliveTimeout", vec![duration_word(*d)]),
            MaxKeepAliveRequests(n) => ("MaxKeepAliveRequests", vec![n.to_string()]),
            LimitRequestLine(n) => ("LimitRequestLine", vec![n.to_string()]),
            LimitRequestFieldSize(n) => ("LimitRequestFieldSize", vec![n.to_string()]),
            LimitRequestFields(n) => ("LimitRequestFields", vec![n.to_string()]),
            User(u) => ("User", vec![u.clone()]),
            Group(g) => ("Group", vec![g.clone()]),
            ErrorLog(e) => ("ErrorLog", vec![e.clone()]),
            CustomLog(c) => {
                let mut words = vec![c.target.clone(), c.format.clone()];
                words.extend(c.condition.clone());
                ("CustomLog", words)
            }
            LogLevel(ws) => ("LogLevel", one(ws)),
            Redirect(r) => {
                let pattern = match &r.url {
                    UrlPattern::Prefix(p) => p.clone(),
                    UrlPattern::Regex(re) => re.as_str().to_string(),
                };
                // RedirectPermanent and RedirectTemp imply their status.
                let mut words = if r.directive.starts_with("RedirectP") || r.directive.starts_with("RedirectT") {
                    Vec::new()
                } else {
                    vec![r.status.to_string()]
                };
                words.push(pattern);
                words.extend(r.target.clone());
                (r.directive, words)
            }
            Protocols(ps) => ("Protocols", one(ps)),
            SslEngine(b) => ("SSLEngine", vec![flag_word(*b).to_string()]),
            SslCertificateFile(p) => ("SSLCertificateFile", vec![p.clone()]),
            SslCertificateKeyFile(p) => ("SSLCertificateKeyFile", vec![p.clone()]),
            SslCertificateChainFile(p) => ("SSLCertificateChainFile", vec![p.clone()]),
            SslProtocol(ws) => ("SSLProtocol", one(ws)),
            SslCipherSuite { tls13: true, spec } => ("SSLCipherSuite", vec!["TLSv1.3".into(), spec.clone()]),
            SslCipherSuite { tls13: false, spec } => ("SSLCipherSuite", vec![spec.clone()]),
            SslHonorCipherOrder(b) => ("SSLHonorCipherOrder", vec![flag_word(*b).to_string()]),
            LogFormat { format, nickname } => {
                let mut words = vec![format.clone()];
                words.extend(nickname.clone());
                ("LogFormat", words)
            }
        }
    }
}

fn duration_word(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{}ms", d.as_millis())
    }
}

// ---------------------------------------------------------------------------
// Argument helpers

fn exactly_one<'a>(directive: &'static str, args: &'a [String]) -> Result<&'a str, DirectiveError> {
    match args {
        [one] => Ok(one),
        _ => Err(DirectiveError::ArgCount { directive, expected: "one argument" }),
    }
}

fn at_least_one(directive: &'static str, args: &[String]) -> Result<(), DirectiveError> {
    if args.is_empty() {
        Err(DirectiveError::ArgCount { directive, expected: "at least one argument" })
    } else {
        Ok(())
    }
}

fn flag_arg(directive: &'static str, args: &[String]) -> Result<bool, DirectiveError> {
    parse_flag(directive, exactly_one(directive, args)?)
}

fn non_empty_arg(directive: &'static str, args: &[String]) -> Result<String, DirectiveError> {
    let value = exactly_one(directive, args)?;
    if value.is_empty() {
        return Err(DirectiveError::InvalidValue {
            directive,
            value: String::new(),
            reason: "a value is required".into(),
        });
    }
    Ok(value.to_string())
}

/// The `name=value` options that follow a script path.
#[derive(Default)]
struct ScriptOptions {
    process_group: Option<String>,
    application_group: Option<String>,
    callable_object: Option<String>,
    pass_authorization: Option<bool>,
}

fn script_options(
    directive: &'static str,
    words: &[String],
    allowed: &[&'static str],
) -> Result<ScriptOptions, DirectiveError> {
    let mut options = ScriptOptions::default();
    for word in words {
        let (name, value) =
            split_option(word).ok_or_else(|| DirectiveError::MalformedOption { directive, word: word.clone() })?;
        let Some(&option) = allowed.iter().find(|a| **a == name) else {
            return Err(DirectiveError::UnknownOption { directive, option: name.to_string() });
        };
        let invalid = |reason: &str| DirectiveError::InvalidOption {
            directive,
            option,
            value: value.to_string(),
            reason: reason.to_string(),
        };
        if value.is_empty() {
            return Err(invalid("a value is required"));
        }
        match option {
            "process-group" => options.process_group = Some(value.to_string()),
            "application-group" => options.application_group = Some(value.to_string()),
            "callable-object" => options.callable_object = Some(value.to_string()),
            "pass-authorization" => {
                options.pass_authorization =
                    Some(parse_flag(directive, value).map_err(|_| invalid("expected On or Off"))?)
            }
            _ => unreachable!("allowed lists only known options"),
        }
    }
    Ok(options)
}

fn script_path(directive: &'static str, what: &str, args: &[String]) -> Result<PathBuf, DirectiveError> {
    match args.first() {
        Some(path) if !path.is_empty() && split_option(path).is_none() => Ok(PathBuf::from(path)),
        _ => Err(DirectiveError::Other { directive, message: format!("location of {what} not supplied") }),
    }
}

fn script_ref(directive: &'static str, what: &str, args: &[String]) -> Result<ScriptRef, DirectiveError> {
    let path = script_path(directive, what, args)?;
    let options = script_options(directive, &args[1..], &["application-group"])?;
    Ok(ScriptRef { path, application_group: options.application_group })
}

// ---------------------------------------------------------------------------
// The per-directive parse functions

fn script_alias(directive: &'static str, regex: bool, args: &[String]) -> Result<Setting, DirectiveError> {
    let (url, target) = match args {
        [url, target, ..] if !url.is_empty() && !target.is_empty() => (url, target),
        _ => {
            return Err(DirectiveError::ArgCount {
                directive,
                expected: "at least two arguments: a URL and a script path",
            })
        }
    };
    let options = script_options(
        directive,
        &args[2..],
        &["process-group", "application-group", "callable-object", "pass-authorization"],
    )?;
    let url = if regex { UrlPattern::Regex(compile(directive, url)?) } else { UrlPattern::Prefix(url.clone()) };
    Ok(Setting::ScriptAlias(ScriptAlias {
        url,
        target: target.clone(),
        process_group: options.process_group,
        application_group: options.application_group,
        callable_object: options.callable_object,
        pass_authorization: options.pass_authorization,
    }))
}

fn wsgi_script_alias(args: &[String]) -> Result<Setting, DirectiveError> {
    script_alias("WSGIScriptAlias", false, args)
}

fn wsgi_script_alias_match(args: &[String]) -> Result<Setting, DirectiveError> {
    script_alias("WSGIScriptAliasMatch", true, args)
}

fn wsgi_daemon_process(args: &[String]) -> Result<Setting, DirectiveError> {
    DaemonProcess::parse(args).map(|d| Setting::DaemonProcess(Box::new(d)))
}

fn wsgi_import_script(args: &[String]) -> Result<Setting, DirectiveError> {
    const D: &str = "WSGIImportScript";
    let path = script_path(D, "import script", args)?;
    let options = script_options(D, &args[1..], &["process-group", "application-group"])?;
    let required = |value: Option<String>, what: &str| {
        value.ok_or_else(|| DirectiveError::Other {
            directive: D,
            message: format!("name of WSGI {what} group required"),
        })
    };
    let application_group = required(options.application_group, "application")?;
    let process_group = required(options.process_group, "process")?;
    Ok(Setting::ImportScript(ImportScript { path, process_group, application_group }))
}

fn wsgi_handler_script(args: &[String]) -> Result<Setting, DirectiveError> {
    const D: &str = "WSGIHandlerScript";
    let name = match args.first() {
        Some(name) if !name.is_empty() => name.clone(),
        _ => {
            return Err(DirectiveError::Other { directive: D, message: "name for handler script not supplied".into() })
        }
    };
    let path = script_path(D, "handler script", &args[1..])?;
    let options = script_options(D, &args[2..], &["process-group", "application-group", "pass-authorization"])?;
    Ok(Setting::Dir(DirSetting::HandlerScript(HandlerScript {
        name,
        path,
        process_group: options.process_group,
        application_group: options.application_group,
        pass_authorization: options.pass_authorization,
    })))
}

fn wsgi_dispatch_script(args: &[String]) -> Result<Setting, DirectiveError> {
    script_ref("WSGIDispatchScript", "dispatch script", args).map(|s| Setting::Dir(DirSetting::DispatchScript(s)))
}

fn wsgi_access_script(args: &[String]) -> Result<Setting, DirectiveError> {
    script_ref("WSGIAccessScript", "access script", args).map(|s| Setting::Dir(DirSetting::AccessScript(s)))
}

fn wsgi_auth_user_script(args: &[String]) -> Result<Setting, DirectiveError> {
    script_ref("WSGIAuthUserScript", "auth user script", args).map(|s| Setting::Dir(DirSetting::AuthUserScript(s)))
}

fn wsgi_auth_group_script(args: &[String]) -> Result<Setting, DirectiveError> {
    script_ref("WSGIAuthGroupScript", "auth group script", args).map(|s| Setting::Dir(DirSetting::AuthGroupScript(s)))
}

/// Checks the `%{...}` forms a group name may take.
fn group_name(directive: &'static str, value: String, allowed: &[&str]) -> Result<String, DirectiveError> {
    if let Some(rest) = value.strip_prefix("%{") {
        let known = allowed.iter().any(|a| value == *a)
            || (allowed.contains(&"%{ENV:") && rest.starts_with("ENV:") && rest.len() > 5 && rest.ends_with('}'));
        if !known {
            return Err(DirectiveError::InvalidValue {
                directive,
                value,
                reason: format!("expected a name or one of {}", allowed.join(", ").replace("%{ENV:", "%{ENV:var}")),
            });
        }
    }
    Ok(value)
}

const GROUP_FORMS: &[&str] = &["%{GLOBAL}", "%{SERVER}", "%{RESOURCE}", "%{HOST}", "%{ENV:"];

fn wsgi_process_group(args: &[String]) -> Result<Setting, DirectiveError> {
    const D: &str = "WSGIProcessGroup";
    let value = group_name(D, non_empty_arg(D, args)?, GROUP_FORMS)?;
    Ok(Setting::Dir(DirSetting::ProcessGroup(value)))
}

fn wsgi_application_group(args: &[String]) -> Result<Setting, DirectiveError> {
    const D: &str = "WSGIApplicationGroup";
    let value = group_name(D, non_empty_arg(D, args)?, GROUP_FORMS)?;
    Ok(Setting::Dir(DirSetting::ApplicationGroup(value)))
}

fn wsgi_callable_object(args: &[String]) -> Result<Setting, DirectiveError> {
    const D: &str = "WSGICallableObject";
    let value = group_name(D, non_empty_arg(D, args)?, &["%{ENV:"])?;
    Ok(Setting::Dir(DirSetting::CallableObject(value)))
}

fn wsgi_restrict_process(args: &[String]) -> Result<Setting, DirectiveError> {
    Ok(Setting::Dir(DirSetting::RestrictProcess(args.to_vec())))
}

fn wsgi_trusted_proxy_headers(args: &[String]) -> Result<Setting, DirectiveError> {
    const D: &str = "WSGITrustedProxyHeaders";
    at_least_one(D, args)?;
    for header in args {
        if header.is_empty() || !header.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(DirectiveError::InvalidValue {
                directive: D,
                value: header.clone(),
                reason: "a header name has only letters, digits and '-'".into(),
            });
        }
    }
    Ok(Setting::Dir(DirSetting::TrustedProxyHeaders(args.to_vec())))
}

fn wsgi_trusted_proxies(args: &[String]) -> Result<Setting, DirectiveError> {
    const D: &str = "WSGITrustedProxies";
    at_least_one(D, args)?;
    let proxies = args
        .iter()
        .map(|word| {
            IpSubnet::parse(word).map_err(|reason| DirectiveError::InvalidValue {
                directive: D,
                value: word.clone(),
                reason: format!("unable to parse trusted proxy IP address/subnet: {reason}"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Setting::Dir(DirSetting::TrustedProxies(proxies)))
}

fn wsgi_map_head_to_get(args: &[String]) -> Result<Setting, DirectiveError> {
    const D: &str = "WSGIMapHEADToGET";
    let value = exactly_one(D, args)?;
    let mode = match value.to_ascii_lowercase().as_str() {
        "off" => MapHeadToGet::Off,
        "on" => MapHeadToGet::On,
        "auto" => MapHeadToGet::Auto,
        _ => {
            return Err(DirectiveError::NotOneOf { directive: D, choices: "Off | On | Auto", value: value.to_string() })
        }
    };
    Ok(Setting::Dir(DirSetting::MapHeadToGet(mode)))
}

fn wsgi_python_optimize(args: &[String]) -> Result<Setting, DirectiveError> {
    const D: &str = "WSGIPythonOptimize";
    let value = exactly_one(D, args)?;
    let level = parse_number(value, 0u8, 2).map_err(|reason| DirectiveError::InvalidValue {
        directive: D,
        value: value.to_string(),
        reason,
    })?;
    Ok(Setting::Global(GlobalSetting::PythonOptimize(level)))
}

fn wsgi_python_hash_seed(args: &[String]) -> Result<Setting, DirectiveError> {
    const D: &str = "WSGIPythonHashSeed";
    let value = exactly_one(D, args)?;
    let seed = if value == "random" {
        HashSeed::Random
    } else {
        HashSeed::Fixed(parse_number(value, 0u32, u32::MAX).map_err(|_| DirectiveError::InvalidValue {
            directive: D,
            value: value.to_string(),
            reason: "must be \"random\" or an integer in range [0; 4294967295]".into(),
        })?)
    };
    Ok(Setting::Global(GlobalSetting::PythonHashSeed(seed)))
}

fn positive_seconds(directive: &'static str, value: &str) -> Result<f64, DirectiveError> {
    value.parse::<f64>().ok().filter(|s| s.is_finite() && *s > 0.0).ok_or_else(|| DirectiveError::InvalidValue {
        directive,
        value: value.to_string(),
        reason: "must be a positive number of seconds".into(),
    })
}

fn wsgi_switch_interval(args: &[String]) -> Result<Setting, DirectiveError> {
    const D: &str = "WSGISwitchInterval";
    let seconds = positive_seconds(D, exactly_one(D, args)?)?;
    Ok(Setting::Global(GlobalSetting::SwitchInterval(seconds)))
}

fn wsgi_accept_mutex(args: &[String]) -> Result<Setting, DirectiveError> {
    const D: &str = "WSGIAcceptMutex";
    let value = exactly_one(D, args)?;
    let mutex = AcceptMutex::parse(value).ok_or_else(|| DirectiveError::InvalidValue {
        directive: D,
        value: value.to_string(),
        reason: "valid accept mutex mechanisms are: default, flock, fcntl, sysvsem, posixsem, pthread".into(),
    })?;
    Ok(Setting::Global(GlobalSetting::AcceptMutex(mutex)))
}

fn wsgi_python_path(args: &[String]) -> Result<Setting, DirectiveError> {
    const D: &str = "WSGIPythonPath";
    let value = exactly_one(D, args)?;
    let paths = value.split(':').filter(|p| !p.is_empty()).map(PathBuf::from).collect();
    Ok(Setting::Global(GlobalSetting::PythonPath(paths)))
}

fn wsgi_telemetry_service(args: &[String]) -> Result<Setting, DirectiveError> {
    const D: &str = "WSGITelemetryService";
    let (target, interval) = match args {
        [target] => (target, None),
        [target, interval] => (target, Some(interval)),
        _ => return Err(DirectiveError::ArgCount { directive: D, expected: "1-2 arguments: unix:/path [interval=N]" }),
    };
    let socket =
        target.strip_prefix("unix:").filter(|p| !p.is_empty()).ok_or_else(|| DirectiveError::InvalidValue {
            directive: D,
            value: target.clone(),
            reason: "target must be 'unix:/path'".into(),
        })?;
    let interval = match interval {
        None => 1.0,
        Some(word) => {
            let seconds = word
                .strip_prefix("interval=")
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|s| s.is_finite())
                .ok_or_else(|| DirectiveError::InvalidValue {
                    directive: D,
                    value: word.clone(),
                    reason: "second argument must be 'interval=N'".into(),
                })?;
            if seconds < 0.5 {
                return Err(DirectiveError::InvalidValue {
                    directive: D,
                    value: word.clone(),
                    reason: "interval must be at least 0.5 seconds".into(),
                });
            }
            seconds
        }
    };
    Ok(Setting::Global(GlobalSetting::TelemetryService {
        socket: PathBuf::from(socket),
        interval: Duration::from_secs_f64(interval),
    }))
}

fn wsgi_slow_requests(args: &[String]) -> Result<Setting, DirectiveError> {
    const D: &str = "WSGISlowRequests";
    let value = exactly_one(D, args)?;
    let seconds = value.parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0).ok_or_else(|| {
        DirectiveError::InvalidValue {
            directive: D,
            value: value.to_string(),
            reason: "threshold must be a non-negative number of seconds".into(),
        }
    })?;
    Ok(Setting::Global(GlobalSetting::SlowRequests(Duration::from_secs_f64(seconds))))
}

fn wsgi_telemetry_options(args: &[String]) -> Result<Setting, DirectiveError> {
    const D: &str = "WSGITelemetryOptions";
    let err = |message: String| DirectiveError::Other { directive: D, message };
    if args.is_empty() {
        return Err(err("at least one flag required".into()));
    }
    let flag_bit = |name: &str| -> Result<u8, DirectiveError> {
        if name.eq_ignore_ascii_case("CaptureUserAgent") {
            Ok(TELEMETRY_CAPTURE_USER_AGENT)
        } else {
            Err(err(format!("unknown flag '{name}'")))
        }
    };
    let signed = args.iter().filter(|w| w.starts_with(['+', '-'])).count();
    if signed != 0 && signed != args.len() {
        return Err(err("cannot mix +/- form with absolute names in a single directive".into()));
    }
    if signed == 0 {
        let mut set = 0;
        for word in args {
            if word.eq_ignore_ascii_case("None") {
                set = 0;
            } else if word.eq_ignore_ascii_case("All") {
                set = TELEMETRY_CAPTURE_USER_AGENT;
            } else {
                set |= flag_bit(word)?;
            }
        }
        return Ok(Setting::Global(GlobalSetting::TelemetryOptions(TelemetryFlags::Set(set))));
    }
    let (mut add, mut remove) = (0, 0);
    for word in args {
        let (sign, name) = word.split_at(1);
        if name.is_empty() {
            return Err(err("bare '+' / '-' is not a flag".into()));
        }
        if name.eq_ignore_ascii_case("None") || name.eq_ignore_ascii_case("All") {
            return Err(err(format!("'{name}' may not have a +/- prefix")));
        }
        let bit = flag_bit(name)?;
        if sign == "+" {
            add |= bit;
            remove &= !bit;
        } else {
            remove |= bit;
            add &= !bit;
        }
    }
    Ok(Setting::Global(GlobalSetting::TelemetryOptions(TelemetryFlags::Adjust { add, remove })))
}

// Core directives.

fn listen(args: &[String]) -> Result<Setting, DirectiveError> {
    const D: &str = "Listen";
    let (spec, protocol) = match args {
        [spec] => (spec, None),
        [spec, protocol] => (spec, Some(protocol.clone())),
        _ => {
            return Err(DirectiveError::ArgCount { directive: D, expected: "1-2 arguments: [address:]port [protocol]" })
        }
    };
    let bad = |reason: &str| DirectiveError::InvalidValue { directive: D, value: spec.clone(), reason: reason.into() };
    let (address, port) = if let Some(rest) = spec.strip_prefix('[') {
        let (host, port) = rest.split_once("]:").ok_or_else(|| bad("expected [ipv6]:port"))?;
        (Some(host.to_string()), port)
    } else {
        match spec.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (Some(host.to_string()), port),
            Some(_) => return Err(bad("an IPv6 address must be written in brackets: [addr]:port")),
            None => (None, spec.as_str()),
        }
    };
    let port = parse_number(port, 1u16, u16::MAX).map_err(|e| bad(&format!("port: {e}")))?;
    Ok(Setting::Core(CoreSetting::Listen(Listen { address, port, protocol })))
}

/// Parses an Apache time value: seconds, or a number with `ms`, `s`, `mi`
/// or `h` units.
fn apache_time(directive: &'static str, value: &str) -> Result<Duration, DirectiveError> {
    let digits = value.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &value[digits.len()..];
    let bad = || DirectiveError::InvalidValue {
        directive,
        value: value.to_string(),
        reason: "expected a time such as 5, 5s or 500ms".into(),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let d = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "mi" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(bad()),
    };
    Ok(d)
}

fn alias(directive: &'static str, regex: bool, args: &[String]) -> Result<Setting, DirectiveError> {
    let [url, target] = args else {
        return Err(DirectiveError::ArgCount { directive, expected: "two arguments: a URL and a file-system path" });
    };
    let url = if regex { UrlPattern::Regex(compile(directive, url)?) } else { UrlPattern::Prefix(url.clone()) };
    Ok(Setting::Core(CoreSetting::Alias(Alias { url, target: target.clone() })))
}

/// `Redirect [status] URL-path URL` (and its kin): status words as
/// mod_alias reads them.
fn redirect(
    directive: &'static str,
    regex: bool,
    fixed: Option<u16>,
    args: &[String],
) -> Result<Setting, DirectiveError> {
    let usage = || DirectiveError::ArgCount { directive, expected: "[status] URL-path URL" };
    let (status, rest) = match (fixed, args.split_first()) {
        (Some(status), _) => (status, args),
        (None, Some((first, rest))) => match first.to_ascii_lowercase().as_str() {
            "permanent" => (301, rest),
            "temp" => (302, rest),
            "seeother" => (303, rest),
            "gone" => (410, rest),
            word if word.len() == 3 && word.bytes().all(|b| b.is_ascii_digit()) => {
                let status: u16 = word.parse().map_err(|_| usage())?;
                if !(300..400).contains(&status) && status != 410 {
                    return Err(DirectiveError::InvalidValue {
                        directive,
                        value: word.to_string(),
                        reason: "a redirect status is 3xx, or 410".into(),
                    });
                }
                (status, rest)
            }
            _ => (302, args),
        },
        (None, None) => return Err(usage()),
    };
    let (pattern, target) = match rest {
        [pattern] if status == 410 || !(300..400).contains(&status) => (pattern, None),
        [pattern, target] if status != 410 => (pattern, Some(target.clone())),
        _ => return Err(usage()),
    };
    if let Some(target) = &target {
        if !target.contains("://") && !target.starts_with('/') {
            return Err(DirectiveError::InvalidValue {
                directive,
                value: target.clone(),
                reason: "the target must be a full URL or a path starting with /".into(),
            });
        }
    }
    let url = if regex { UrlPattern::Regex(compile(directive, pattern)?) } else { UrlPattern::Prefix(pattern.clone()) };
    Ok(Setting::Core(CoreSetting::Redirect(Redirect { directive, url, status, target })))
}

fn custom_log(args: &[String]) -> Result<Setting, DirectiveError> {
    match args {
        [target, format] | [target, format, _] => {
            // A nickname is resolved once every LogFormat is read; a format
            // written in place is checked now.
            if format.contains('%') {
                check_log_format("CustomLog", format)?;
            }
            Ok(Setting::Core(CoreSetting::CustomLog(CustomLog {
                target: target.clone(),
                format: format.clone(),
                condition: args.get(2).cloned(),
            })))
        }
        _ => Err(DirectiveError::ArgCount {
            directive: "CustomLog",
            expected: "two or three arguments: a file or pipe, a format or nickname, and an optional condition",
        }),
    }
}

fn check_log_format(directive: &'static str, format: &str) -> Result<(), DirectiveError> {
    crate::log_format::LogFormat::parse(format)
        .map(|_| ())
        .map_err(|e| DirectiveError::Other { directive, message: e.to_string() })
}

fn log_format(args: &[String]) -> Result<Setting, DirectiveError> {
    let (format, nickname) = match args {
        [format] => (format, None),
        [format, nickname] => (format, Some(nickname.clone())),
        _ => {
            return Err(DirectiveError::ArgCount {
                directive: "LogFormat",
                expected: "a format and an optional nickname",
            })
        }
    };
    check_log_format("LogFormat", format)?;
    Ok(Setting::Core(CoreSetting::LogFormat { format: format.clone(), nickname }))
}

/// The levels of Apache's `LogLevel`, least verbose first.
pub const LOG_LEVELS: &[&str] = &[
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug", "trace1", "trace2", "trace3", "trace4",
    "trace5", "trace6", "trace7", "trace8",
];

fn log_level(args: &[String]) -> Result<Setting, DirectiveError> {
    at_least_one("LogLevel", args)?;
    for word in args {
        let level = word.rsplit_once(':').map_or(word.as_str(), |(_, level)| level);
        if !LOG_LEVELS.iter().any(|known| known.eq_ignore_ascii_case(level)) {
            return Err(DirectiveError::InvalidValue {
                directive: "LogLevel",
                value: word.clone(),
                reason: format!("expected a level ({}) or module:level", LOG_LEVELS.join(", ")),
            });
        }
    }
    Ok(Setting::Core(CoreSetting::LogLevel(args.to_vec())))
}

fn limit_request_body(args: &[String]) -> Result<Setting, DirectiveError> {
    const D: &str = "LimitRequestBody";
    let value = exactly_one(D, args)?;
    let limit = parse_number(value, 0u64, 2_147_483_647).map_err(|reason| DirectiveError::InvalidValue {
        directive: D,
        value: value.to_string(),
        reason,
    })?;
    Ok(Setting::Dir(DirSetting::LimitRequestBody(limit)))
}

fn server_name(args: &[String]) -> Result<Setting, DirectiveError> {
    const D: &str = "ServerName";
    let name = non_empty_arg(D, args)?;
    if name.contains('/') && !name.contains("://") {
        return Err(DirectiveError::InvalidValue {
            directive: D,
            value: name,
            reason: "expected [scheme://]host[:port]".into(),
        });
    }
    Ok(Setting::Core(CoreSetting::ServerName(name)))
}

/// A request-size limit of Apache's core: a whole number from `min`.
fn request_limit(directive: &'static str, args: &[String], min: u32) -> Result<u32, DirectiveError> {
    let value = exactly_one(directive, args)?;
    parse_number(value, min, i32::MAX as u32).map_err(|reason| DirectiveError::InvalidValue {
        directive,
        value: value.to_string(),
        reason,
    })
}

fn seconds_time(directive: &'static str, args: &[String]) -> Result<Duration, DirectiveError> {
    apache_time(directive, exactly_one(directive, args)?)
}

/// Builds a [`DirectiveSpec`] for the table with fewer words.
macro_rules! spec {
    ($name:literal, $contexts:ident, $global:expr, $scoped:expr, $syntax:literal, $parse:expr) => {
        DirectiveSpec {
            name: $name,
            contexts: Contexts::$contexts,
            global_only: $global,
            interpreter_scoped: $scoped,
            syntax: $syntax,
            parse: $parse,
        }
    };
}

/// A process-wide `On|Off` directive.
macro_rules! global_flag {
    ($name:literal, $variant:ident, $scoped:expr) => {
        spec!($name, RSRC, true, $scoped, "On|Off", |args| {
            flag_arg($name, args).map(|b| Setting::Global(GlobalSetting::$variant(b)))
        })
    };
}

/// A process-wide `On|Off` directive for a feature only a newer Python than
/// the embedded 3.11 has: `Off` is accepted, `On` refused with what it
/// needs (issue 18 brings those Pythons).
macro_rules! python_feature_flag {
    ($name:literal, $variant:ident) => {
        // `On` needs a Python that has the feature: the front end's check
        // refuses it otherwise (`support::PythonFeatures`).
        spec!($name, RSRC, true, true, "On|Off", |args| {
            flag_arg($name, args).map(|b| Setting::Global(GlobalSetting::$variant(b)))
        })
    };
}

/// A per-directory `On|Off` directive.
macro_rules! dir_flag {
    ($name:literal, $contexts:ident, $variant:ident) => {
        spec!($name, $contexts, false, false, "On|Off", |args| {
            flag_arg($name, args).map(|b| Setting::Dir(DirSetting::$variant(b)))
        })
    };
}

/// A process-wide directive taking one path.
macro_rules! global_path {
    ($name:literal, $variant:ident) => {
        spec!($name, RSRC, true, false, "path", |args| {
            non_empty_arg($name, args).map(|p| Setting::Global(GlobalSetting::$variant(p.into())))
        })
    };
}

/// Every directive this crate knows: mod_wsgi's, then Apache core's.
pub static DIRECTIVES: &[DirectiveSpec] = &[
    spec!("WSGIScriptAlias", RSRC, false, false, "URL-path file-path|directory-path [options]", wsgi_script_alias),
    spec!(
        "WSGIScriptAliasMatch",
        RSRC,
        false,
        false,
        "regex file-path|directory-path [options]",
        wsgi_script_alias_match
    ),
    spec!("WSGIDaemonProcess", RSRC, false, false, "name [options]", wsgi_daemon_process),
    global_path!("WSGISocketPrefix", SocketPrefix),
    global_flag!("WSGISocketRotation", SocketRotation, false),
    spec!("WSGIAcceptMutex", RSRC, true, false, "default|flock|fcntl|sysvsem|posixsem|pthread", wsgi_accept_mutex),
    global_flag!("WSGIVerboseDebugging", VerboseDebugging, false),
    global_flag!("WSGIDontWriteBytecode", DontWriteBytecode, false),
    spec!("WSGIPythonWarnings", RSRC, true, false, "action:message:category:module:lineno", |args| {
        non_empty_arg("WSGIPythonWarnings", args).map(|w| Setting::Global(GlobalSetting::PythonWarnings(w)))
    }),
    spec!("WSGIPythonOptimize", RSRC, true, false, "0|1|2", wsgi_python_optimize),
    global_path!("WSGIPythonHome", PythonHome),
    spec!("WSGIPythonPath", RSRC, true, true, "directory[:directory...]", wsgi_python_path),
    global_path!("WSGIPythonEggs", PythonEggs),
    spec!("WSGIPythonHashSeed", RSRC, true, false, "random|0..4294967295", wsgi_python_hash_seed),
    spec!("WSGISwitchInterval", RSRC, true, true, "seconds", wsgi_switch_interval),
    global_flag!("WSGIDestroyInterpreter", DestroyInterpreter, false),
    spec!("WSGIApplicationGroupFallback", RSRC, true, false, "%{GLOBAL}", |args| match args {
        [group] if group == "%{GLOBAL}" => Ok(Setting::Global(GlobalSetting::ApplicationGroupFallback)),
        [other] => Err(DirectiveError::InvalidValue {
            directive: "WSGIApplicationGroupFallback",
            value: other.clone(),
            reason: "the only fallback is %{GLOBAL}, the main interpreter".into(),
        }),
        _ => Err(DirectiveError::ArgCount { directive: "WSGIApplicationGroupFallback", expected: "%{GLOBAL}" }),
    }),
    python_feature_flag!("WSGIPerInterpreterGIL", PerInterpreterGil),
    python_feature_flag!("WSGIFreeThreading", FreeThreading),
    global_flag!("WSGIRestrictEmbedded", RestrictEmbedded, false),
    global_flag!("WSGIRestrictStdin", RestrictStdin, true),
    global_flag!("WSGIRestrictStdout", RestrictStdout, true),
    global_flag!("WSGIRestrictSignal", RestrictSignal, true),
    global_flag!("WSGICaseSensitivity", CaseSensitivity, false),
    spec!("WSGIRestrictProcess", ACCESS_RSRC, false, false, "group ...", wsgi_restrict_process),
    spec!("WSGIProcessGroup", ACCESS_RSRC, false, false, "name|%{GLOBAL}|%{ENV:var}", wsgi_process_group),
    spec!(
        "WSGIApplicationGroup",
        ACCESS_RSRC,
        false,
        false,
        "name|%{GLOBAL}|%{SERVER}|%{RESOURCE}|%{HOST}|%{ENV:var}",
        wsgi_application_group
    ),
    spec!("WSGICallableObject", ANYWHERE, false, false, "name|%{ENV:var}", wsgi_callable_object),
    spec!("WSGIImportScript", RSRC, false, false, "path process-group=name application-group=name", wsgi_import_script),
    spec!("WSGIDispatchScript", ACCESS_RSRC, false, false, "path [application-group=name]", wsgi_dispatch_script),
    dir_flag!("WSGIPassApacheRequest", ACCESS_RSRC, PassApacheRequest),
    dir_flag!("WSGIPassAuthorization", ANYWHERE, PassAuthorization),
    dir_flag!("WSGIScriptReloading", ANYWHERE, ScriptReloading),
    dir_flag!("WSGIErrorOverride", ANYWHERE, ErrorOverride),
    dir_flag!("WSGIChunkedRequest", ANYWHERE, ChunkedRequest),
    spec!("WSGIMapHEADToGET", ANYWHERE, false, false, "On|Off|Auto", wsgi_map_head_to_get),
    dir_flag!("WSGIIgnoreActivity", ANYWHERE, IgnoreActivity),
    spec!("WSGITrustedProxyHeaders", ANYWHERE, false, false, "header ...", wsgi_trusted_proxy_headers),
    spec!("WSGITrustedProxies", ANYWHERE, false, false, "address[/bits] ...", wsgi_trusted_proxies),
    dir_flag!("WSGIEnableSendfile", ANYWHERE, EnableSendfile),
    spec!("WSGIAccessScript", AUTH, false, false, "path [application-group=name]", wsgi_access_script),
    spec!("WSGIAuthUserScript", AUTH, false, false, "path [application-group=name]", wsgi_auth_user_script),
    spec!("WSGIAuthGroupScript", AUTH, false, false, "path [application-group=name]", wsgi_auth_group_script),
    dir_flag!("WSGIGroupAuthoritative", AUTH, GroupAuthoritative),
    dir_flag!("WSGIUserAuthoritative", AUTH, UserAuthoritative),
    spec!("WSGIHandlerScript", ACCESS_RSRC, false, false, "name path [options]", wsgi_handler_script),
    global_flag!("WSGIServerMetrics", ServerMetrics, false),
    spec!("WSGITelemetryService", RSRC, true, false, "unix:/path [interval=N]", wsgi_telemetry_service),
    spec!("WSGISlowRequests", RSRC, true, false, "seconds", wsgi_slow_requests),
    spec!("WSGITelemetryOptions", RSRC, true, false, "[+|-]flag ...|None|All", wsgi_telemetry_options),
    global_flag!("WSGILazyInitialization", LazyInitialization, false),
    global_flag!("WSGIPy3kWarningFlag", Py3kWarningFlag, false),
    spec!("WSGINewRelicConfigFile", RSRC, true, false, "path", |args| {
        non_empty_arg("WSGINewRelicConfigFile", args).map(|v| Setting::Global(GlobalSetting::NewRelicConfigFile(v)))
    }),
    spec!("WSGINewRelicEnvironment", RSRC, true, false, "name", |args| {
        non_empty_arg("WSGINewRelicEnvironment", args).map(|v| Setting::Global(GlobalSetting::NewRelicEnvironment(v)))
    }),
    // Apache core directives.
    spec!("Listen", SERVER, true, false, "[address:]port [protocol]", listen),
    spec!("ServerName", RSRC, false, false, "[scheme://]host[:port]", server_name),
    spec!("ServerAlias", VIRTUAL_HOST, false, false, "name ...", |args| {
        at_least_one("ServerAlias", args).map(|()| Setting::Core(CoreSetting::ServerAlias(args.to_vec())))
    }),
    spec!("ServerRoot", SERVER, true, false, "directory", |args| {
        non_empty_arg("ServerRoot", args).map(|p| Setting::Core(CoreSetting::ServerRoot(p.into())))
    }),
    spec!("LimitRequestBody", ANYWHERE, false, false, "bytes", limit_request_body),
    spec!("Require", AUTH, false, false, "[not] provider [args...]", |args| {
        crate::authz::parse_require(args)
            .map(|r| Setting::Dir(DirSetting::Require(r)))
            .map_err(|message| DirectiveError::Other { directive: "Require", message })
    }),
    spec!("AuthMerging", AUTH, false, false, "Off|And|Or", |args| {
        let value = exactly_one("AuthMerging", args)?;
        let merging = match value.to_ascii_lowercase().as_str() {
            "off" => AuthMerging::Off,
            "and" => AuthMerging::And,
            "or" => AuthMerging::Or,
            _ => {
                return Err(DirectiveError::InvalidValue {
                    directive: "AuthMerging",
                    value: value.to_string(),
                    reason: "expected Off, And or Or".into(),
                })
            }
        };
        Ok(Setting::Dir(DirSetting::AuthMerging(merging)))
    }),
    spec!("AuthType", AUTH, false, false, "Basic|Digest|None", |args| {
        let value = exactly_one("AuthType", args)?;
        let auth_type = match value.to_ascii_lowercase().as_str() {
            "basic" => Ok(AuthType::Basic),
            "digest" => Ok(AuthType::Digest),
            "none" => Ok(AuthType::None),
            _ => Err(value.to_string()),
        };
        Ok(Setting::Dir(DirSetting::AuthType(auth_type)))
    }),
    spec!("AuthName", AUTH, false, false, "realm", |args| {
        non_empty_arg("AuthName", args).map(|realm| Setting::Dir(DirSetting::AuthName(realm)))
    }),
    spec!("AuthUserFile", AUTH, false, false, "path", |args| {
        non_empty_arg("AuthUserFile", args).map(|path| Setting::Dir(DirSetting::AuthUserFile(path)))
    }),
    spec!("AuthBasicProvider", AUTH, false, false, "provider ...", |args| {
        at_least_one("AuthBasicProvider", args).map(|()| {
            Setting::Dir(DirSetting::AuthBasicProvider(args.iter().map(|a| a.to_ascii_lowercase()).collect()))
        })
    }),
    spec!("AuthDigestProvider", AUTH, false, false, "provider ...", |args| {
        at_least_one("AuthDigestProvider", args).map(|()| {
            Setting::Dir(DirSetting::AuthDigestProvider(args.iter().map(|a| a.to_ascii_lowercase()).collect()))
        })
    }),
    spec!("SetEnv", ANYWHERE, false, false, "name [value]", |args| match args {
        [name] => Ok(Setting::Dir(DirSetting::Env(EnvChange::Set(name.clone(), String::new())))),
        [name, value] => Ok(Setting::Dir(DirSetting::Env(EnvChange::Set(name.clone(), value.clone())))),
        _ => Err(DirectiveError::ArgCount { directive: "SetEnv", expected: "a name and an optional value" }),
    }),
    spec!("PassEnv", ANYWHERE, false, false, "name ...", |args| {
        at_least_one("PassEnv", args).map(|()| Setting::Dir(DirSetting::Env(EnvChange::Pass(args.to_vec()))))
    }),
    spec!("UnsetEnv", ANYWHERE, false, false, "name ...", |args| {
        at_least_one("UnsetEnv", args).map(|()| Setting::Dir(DirSetting::Env(EnvChange::Unset(args.to_vec()))))
    }),
    spec!("Alias", RSRC, false, false, "URL-path file-path", |args| alias("Alias", false, args)),
    spec!("AliasMatch", RSRC, false, false, "regex file-path", |args| alias("AliasMatch", true, args)),
    spec!("Redirect", RSRC, false, false, "[status] URL-path URL", |args| redirect("Redirect", false, None, args)),
    spec!("RedirectMatch", RSRC, false, false, "[status] regex URL", |args| {
        redirect("RedirectMatch", true, None, args)
    }),
    spec!("RedirectPermanent", RSRC, false, false, "URL-path URL", |args| {
        redirect("RedirectPermanent", false, Some(301), args)
    }),
    spec!("RedirectTemp", RSRC, false, false, "URL-path URL", |args| redirect("RedirectTemp", false, Some(302), args)),
    spec!("DocumentRoot", RSRC, false, false, "directory", |args| {
        non_empty_arg("DocumentRoot", args).map(|p| Setting::Core(CoreSetting::DocumentRoot(p.into())))
    }),
    spec!("Timeout", RSRC, false, false, "seconds", |args| {
        seconds_time("Timeout", args).map(|d| Setting::Core(CoreSetting::Timeout(d)))
    }),
    spec!("KeepAlive", RSRC, false, false, "On|Off", |args| {
        flag_arg("KeepAlive", args).map(|b| Setting::Core(CoreSetting::KeepAlive(b)))
    }),
    spec!("KeepAliveTimeout", RSRC, false, false, "seconds", |args| {
        seconds_time("KeepAliveTimeout", args).map(|d| Setting::Core(CoreSetting::KeepAliveTimeout(d)))
    }),
    spec!("MaxKeepAliveRequests", RSRC, false, false, "number", |args| {
        let value = exactly_one("MaxKeepAliveRequests", args)?;
        parse_number(value, 0u64, u64::MAX).map(|n| Setting::Core(CoreSetting::MaxKeepAliveRequests(n))).map_err(
            |reason| DirectiveError::InvalidValue {
                directive: "MaxKeepAliveRequests",
                value: value.to_string(),
                reason,
            },
        )
    }),
    spec!("LimitRequestLine", RSRC, false, false, "bytes", |args| {
        request_limit("LimitRequestLine", args, 1).map(|n| Setting::Core(CoreSetting::LimitRequestLine(n)))
    }),
    spec!("LimitRequestFieldSize", RSRC, false, false, "bytes", |args| {
        request_limit("LimitRequestFieldSize", args, 1).map(|n| Setting::Core(CoreSetting::LimitRequestFieldSize(n)))
    }),
    spec!("LimitRequestFields", RSRC, false, false, "number", |args| {
        request_limit("LimitRequestFields", args, 0).map(|n| Setting::Core(CoreSetting::LimitRequestFields(n)))
    }),
    spec!("User", SERVER, true, false, "user", |args| {
        non_empty_arg("User", args).map(|u| Setting::Core(CoreSetting::User(u)))
    }),
    spec!("Group", SERVER, true, false, "group", |args| {
        non_empty_arg("Group", args).map(|g| Setting::Core(CoreSetting::Group(g)))
    }),
    spec!("ErrorLog", RSRC, false, false, "file|pipe|syslog", |args| {
        non_empty_arg("ErrorLog", args).map(|e| Setting::Core(CoreSetting::ErrorLog(e)))
    }),
    spec!("CustomLog", RSRC, false, false, "file|pipe format|nickname [env=...]", custom_log),
    spec!("LogLevel", ACCESS_RSRC, false, false, "level [module:level] ...", log_level),
    spec!("LogFormat", RSRC, false, false, "format [nickname]", log_format),
    spec!("Protocols", RSRC, false, false, "protocol ...", |args| {
        at_least_one("Protocols", args)?;
        for word in args {
            if !["h2", "h2c", "http/1.1"].contains(&word.to_ascii_lowercase().as_str()) {
                return Err(DirectiveError::InvalidValue {
                    directive: "Protocols",
                    value: word.clone(),
                    reason: "expected h2, h2c or http/1.1".into(),
                });
            }
        }
        Ok(Setting::Core(CoreSetting::Protocols(args.iter().map(|a| a.to_ascii_lowercase()).collect())))
    }),
    spec!("SSLEngine", RSRC, false, false, "On|Off", |args| {
        // mod_ssl also takes `optional`, for TLS upgrades nobody uses.
        flag_arg("SSLEngine", args).map(|b| Setting::Core(CoreSetting::SslEngine(b)))
    }),
    spec!("SSLCertificateFile", RSRC, false, false, "path", |args| {
        non_empty_arg("SSLCertificateFile", args).map(|p| Setting::Core(CoreSetting::SslCertificateFile(p)))
    }),
    spec!("SSLCertificateKeyFile", RSRC, false, false, "path", |args| {
        non_empty_arg("SSLCertificateKeyFile", args).map(|p| Setting::Core(CoreSetting::SslCertificateKeyFile(p)))
    }),
    spec!("SSLCertificateChainFile", RSRC, false, false, "path", |args| {
        non_empty_arg("SSLCertificateChainFile", args).map(|p| Setting::Core(CoreSetting::SslCertificateChainFile(p)))
    }),
    spec!("SSLProtocol", RSRC, false, false, "[+|-]protocol ...", |args| {
        at_least_one("SSLProtocol", args).map(|()| Setting::Core(CoreSetting::SslProtocol(args.to_vec())))
    }),
    spec!("SSLCipherSuite", RSRC, false, false, "[protocol] cipher-spec", |args| match args {
        [spec] => Ok(Setting::Core(CoreSetting::SslCipherSuite { tls13: false, spec: spec.clone() })),
        [protocol, spec] if protocol.eq_ignore_ascii_case("TLSv1.3") => {
            Ok(Setting::Core(CoreSetting::SslCipherSuite { tls13: true, spec: spec.clone() }))
        }
        [protocol, spec] if protocol.eq_ignore_ascii_case("SSL") => {
            Ok(Setting::Core(CoreSetting::SslCipherSuite { tls13: false, spec: spec.clone() }))
        }
        _ => Err(DirectiveError::ArgCount { directive: "SSLCipherSuite", expected: "[SSL|TLSv1.3] cipher-spec" }),
    }),
    spec!("SSLHonorCipherOrder", RSRC, false, false, "On|Off", |args| {
        flag_arg("SSLHonorCipherOrder", args).map(|b| Setting::Core(CoreSetting::SslHonorCipherOrder(b)))
    }),
    spec!("SSLOptions", ANYWHERE, false, false, "[+|-]option ...", |args| {
        at_least_one("SSLOptions", args)?;
        crate::tls::SslOptionsLine::parse(args)
            .map(|line| Setting::Dir(DirSetting::SslOptions(line)))
            .map_err(|message| DirectiveError::Other { directive: "SSLOptions", message })
    }),
];
