//! The typed configuration model: scopes, mod_wsgi's merge rules, and the
//! question every later crate asks: which settings apply to this request's
//! host and path?

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;

use crate::authz::{AuthMerging, AuthType, AuthzNode, AuthzSection, Logic};
use crate::daemon::DaemonProcess;
use crate::directives::{
    self, Alias, Context, CoreSetting, CustomLog, DirSetting, EnvChange, GlobalSetting, HandlerScript, ImportScript,
    Listen, ScriptAlias, ScriptRef, Setting, TelemetryFlags, GLOBAL_GROUP,
};
use crate::error::{ConfigError, Location};
use crate::support::{self, FrontEnd, Status};
use crate::tree::{Directive, Node, Section};
use crate::values::{AcceptMutex, HashSeed, IpSubnet, MapHeadToGet};

/// A whole server configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `ServerRoot`: base of relative paths.
    pub server_root: PathBuf,
    /// `Listen` addresses, in order.
    pub listen: Vec<Listen>,
    /// `User` the server's children run as.
    pub user: Option<String>,
    /// `Group` the server's children run as.
    pub group: Option<String>,
    /// Process-wide mod_wsgi settings.
    pub global: GlobalSettings,
    /// `<WSGIInterpreterOptions>` blocks, in order.
    pub interpreter_options: Vec<InterpreterOptions>,
    /// Every `WSGIDaemonProcess`, in order.
    pub daemon_processes: Vec<DaemonGroup>,
    /// Every `WSGIImportScript`, in order.
    pub import_scripts: Vec<ImportScript>,
    /// The main server (outside any `<VirtualHost>`).
    pub main_server: Server,
    /// The virtual hosts, in order.
    pub virtual_hosts: Vec<Server>,
}

/// A daemon process group and where it was defined.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonGroup {
    /// The group's options.
    pub process: DaemonProcess,
    /// Index into [`Config::virtual_hosts`] when defined inside one.
    pub virtual_host: Option<usize>,
    /// Where the directive stands.
    pub location: Location,
}

/// Process-wide mod_wsgi settings; `None` means not set (the default applies).
#[derive(Debug, Clone, Default, PartialEq)]
#[allow(missing_docs)] // Each field is the directive of the same name.
pub struct GlobalSettings {
    pub socket_prefix: Option<PathBuf>,
    pub socket_rotation: Option<bool>,
    pub accept_mutex: Option<AcceptMutex>,
    pub verbose_debugging: Option<bool>,
    pub dont_write_bytecode: Option<bool>,
    /// Every `WSGIPythonWarnings`, in order.
    pub python_warnings: Vec<String>,
    pub python_optimize: Option<u8>,
    pub python_home: Option<PathBuf>,
    pub python_path: Option<Vec<PathBuf>>,
    pub python_eggs: Option<PathBuf>,
    pub python_hash_seed: Option<HashSeed>,
    pub switch_interval: Option<f64>,
    pub destroy_interpreter: Option<bool>,
    /// `WSGIApplicationGroupFallback %{GLOBAL}`.
    pub application_group_fallback: Option<bool>,
    pub per_interpreter_gil: Option<bool>,
    pub free_threading: Option<bool>,
    pub restrict_embedded: Option<bool>,
    pub restrict_stdin: Option<bool>,
    pub restrict_stdout: Option<bool>,
    pub restrict_signal: Option<bool>,
    pub case_sensitivity: Option<bool>,
    pub server_metrics: Option<bool>,
    /// `WSGITelemetryService` socket and interval.
    pub telemetry_service: Option<(PathBuf, Duration)>,
    pub slow_requests: Option<Duration>,
    /// `WSGITelemetryOptions` flag bits (see [`directives::TELEMETRY_CAPTURE_USER_AGENT`]).
    pub telemetry_options: Option<u8>,
    pub lazy_initialization: Option<bool>,
    pub py3k_warning_flag: Option<bool>,
    pub newrelic_config_file: Option<String>,
    pub newrelic_environment: Option<String>,
}

impl GlobalSettings {
    /// Applies one process-wide directive, as mod_wsgi does: later values
    /// replace earlier ones, except `WSGIPythonWarnings`, which add up, and
    /// `+`/`-` telemetry options, which adjust.
    pub fn apply(&mut self, setting: GlobalSetting) {
        use GlobalSetting::*;
        match setting {
            SocketPrefix(v) => self.socket_prefix = Some(v),
            SocketRotation(v) => self.socket_rotation = Some(v),
            AcceptMutex(v) => self.accept_mutex = Some(v),
            VerboseDebugging(v) => self.verbose_debugging = Some(v),
            DontWriteBytecode(v) => self.dont_write_bytecode = Some(v),
            PythonWarnings(v) => self.python_warnings.push(v),
            PythonOptimize(v) => self.python_optimize = Some(v),
            PythonHome(v) => self.python_home = Some(v),
            PythonPath(v) => self.python_path = Some(v),
            PythonEggs(v) => self.python_eggs = Some(v),
            PythonHashSeed(v) => self.python_hash_seed = Some(v),
            SwitchInterval(v) => self.switch_interval = Some(v),
            DestroyInterpreter(v) => self.destroy_interpreter = Some(v),
            ApplicationGroupFallback => self.application_group_fallback = Some(true),
            PerInterpreterGil(v) => self.per_interpreter_gil = Some(v),
            FreeThreading(v) => self.free_threading = Some(v),
            RestrictEmbedded(v) => self.restrict_embedded = Some(v),
            RestrictStdin(v) => self.restrict_stdin = Some(v),
            RestrictStdout(v) => self.restrict_stdout = Some(v),
            RestrictSignal(v) => self.restrict_signal = Some(v),
            CaseSensitivity(v) => self.case_sensitivity = Some(v),
            ServerMetrics(v) => self.server_metrics = Some(v),
            TelemetryService { socket, interval } => self.telemetry_service = Some((socket, interval)),
            SlowRequests(v) => self.slow_requests = Some(v),
            TelemetryOptions(TelemetryFlags::Set(bits)) => self.telemetry_options = Some(bits),
            TelemetryOptions(TelemetryFlags::Adjust { add, remove }) => {
                self.telemetry_options = Some((self.telemetry_options.unwrap_or(0) | add) & !remove)
            }
            LazyInitialization(v) => self.lazy_initialization = Some(v),
            Py3kWarningFlag(v) => self.py3k_warning_flag = Some(v),
            NewRelicConfigFile(v) => self.newrelic_config_file = Some(v),
            NewRelicEnvironment(v) => self.newrelic_environment = Some(v),
        }
    }

    /// The settings as directives that [`GlobalSettings::apply`] rebuilds.
    pub fn to_settings(&self) -> Vec<GlobalSetting> {
        use GlobalSetting::*;
        let mut out = Vec::new();
        macro_rules! put {
            ($field:ident, $variant:ident) => {
                if let Some(v) = &self.$field {
                    out.push($variant(v.clone()));
                }
            };
        }
        put!(socket_prefix, SocketPrefix);
        put!(socket_rotation, SocketRotation);
        put!(accept_mutex, AcceptMutex);
        put!(verbose_debugging, VerboseDebugging);
        put!(dont_write_bytecode, DontWriteBytecode);
        out.extend(self.python_warnings.iter().cloned().map(PythonWarnings));
        put!(python_optimize, PythonOptimize);
        put!(python_home, PythonHome);
        put!(python_path, PythonPath);
        put!(python_eggs, PythonEggs);
        put!(python_hash_seed, PythonHashSeed);
        put!(switch_interval, SwitchInterval);
        put!(destroy_interpreter, DestroyInterpreter);
        if self.application_group_fallback == Some(true) {
            out.push(ApplicationGroupFallback);
        }
        put!(per_interpreter_gil, PerInterpreterGil);
        put!(free_threading, FreeThreading);
        put!(restrict_embedded, RestrictEmbedded);
        put!(restrict_stdin, RestrictStdin);
        put!(restrict_stdout, RestrictStdout);
        put!(restrict_signal, RestrictSignal);
        put!(case_sensitivity, CaseSensitivity);
        put!(server_metrics, ServerMetrics);
        if let Some((socket, interval)) = &self.telemetry_service {
            out.push(TelemetryService { socket: socket.clone(), interval: *interval });
        }
        put!(slow_requests, SlowRequests);
        if let Some(bits) = self.telemetry_options {
            out.push(TelemetryOptions(TelemetryFlags::Set(bits)));
        }
        put!(lazy_initialization, LazyInitialization);
        put!(py3k_warning_flag, Py3kWarningFlag);
        put!(newrelic_config_file, NewRelicConfigFile);
        put!(newrelic_environment, NewRelicEnvironment);
        out
    }
}

/// A `<WSGIInterpreterOptions>` block: settings for the interpreters its
/// selectors match (an absent selector matches any).
#[derive(Debug, Clone, PartialEq)]
pub struct InterpreterOptions {
    /// `process-group=` selector (`%{GLOBAL}`: embedded).
    pub process_group: Option<String>,
    /// `application-group=` selector (`%{GLOBAL}`: main interpreter).
    pub application_group: Option<String>,
    /// The scoped settings (only interpreter-scoped directives).
    pub settings: Vec<GlobalSetting>,
    /// Where the block opens.
    pub location: Location,
}

/// A server: the main server or one `<VirtualHost>`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Server {
    /// Where `<VirtualHost>` opens (`None` for the main server).
    pub location: Option<Location>,
    /// The `<VirtualHost>` addresses (`*:80`, `127.0.0.1:8080`, ...).
    pub addresses: Vec<String>,
    /// `ServerName`.
    pub server_name: Option<String>,
    /// `ServerAlias` names.
    pub server_aliases: Vec<String>,
    /// `DocumentRoot`.
    pub document_root: Option<PathBuf>,
    /// `Timeout`.
    pub timeout: Option<Duration>,
    /// `KeepAlive`.
    pub keep_alive: Option<bool>,
    /// `KeepAliveTimeout`.
    pub keep_alive_timeout: Option<Duration>,
    /// `MaxKeepAliveRequests`.
    pub max_keep_alive_requests: Option<u64>,
    /// `LimitRequestLine`.
    pub limit_request_line: Option<u32>,
    /// `LimitRequestFieldSize`.
    pub limit_request_field_size: Option<u32>,
    /// `LimitRequestFields`.
    pub limit_request_fields: Option<u32>,
    /// `ErrorLog`.
    pub error_log: Option<String>,
    /// `CustomLog` entries.
    pub custom_logs: Vec<CustomLog>,
    /// `LogLevel` words.
    pub log_level: Option<Vec<String>>,
    /// `LogFormat` lines: (nickname, format), in order.
    pub log_formats: Vec<(Option<String>, String)>,
    /// `Protocols`.
    pub protocols: Option<Vec<String>>,
    /// mod_ssl's settings.
    pub ssl: SslSettings,
    /// `WSGIScriptAlias`/`WSGIScriptAliasMatch` in this server, in order.
    pub script_aliases: Vec<ScriptAlias>,
    /// `Alias`/`AliasMatch` in this server, in order.
    pub aliases: Vec<Alias>,
    /// `Redirect` and its kin in this server, in order.
    pub redirects: Vec<crate::directives::Redirect>,
    /// Mergeable settings given at server level.
    pub settings: DirSettings,
    /// `<Directory>`, `<Location>` and `<Files>` sections, in order.
    pub sections: Vec<DirSection>,
    /// Directives of other modules, kept as written.
    pub other_directives: Vec<Directive>,
}

/// One `CustomLog` of a server, resolved: where, in what format, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogSpec {
    /// The file (relative paths resolved under `ServerRoot`).
    pub path: PathBuf,
    /// The format, nicknames resolved.
    pub format: crate::log_format::LogFormat,
    /// `env=NAME` (log when set) or `env=!NAME` (log when not set).
    pub condition: Option<EnvCondition>,
}

/// A `CustomLog` condition on a request's environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvCondition {
    /// The variable.
    pub name: String,
    /// `env=!NAME`: log when it is not set.
    pub negated: bool,
}

/// mod_ssl's settings of one server, as written (see
/// [`Config::ssl_settings`] for the ones in effect).
#[derive(Debug, Clone, Default, PartialEq)]
#[allow(missing_docs)] // Each field is the directive of the same name.
pub struct SslSettings {
    pub engine: Option<bool>,
    pub certificate_file: Option<String>,
    pub certificate_key_file: Option<String>,
    pub certificate_chain_file: Option<String>,
    pub protocol: Option<Vec<String>>,
    pub cipher_suite: Option<String>,
    pub cipher_suite_tls13: Option<String>,
    pub honor_cipher_order: Option<bool>,
}

/// Apache core's connection settings for one server: its own values, the
/// main server's where a virtual host sets none, and Apache's defaults
/// where neither does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// `Timeout` (default 60 s): the longest wait for a client to send or
    /// take more.
    pub timeout: Duration,
    /// `KeepAlive` (default On).
    pub keep_alive: bool,
    /// `KeepAliveTimeout` (default 5 s).
    pub keep_alive_timeout: Duration,
    /// `MaxKeepAliveRequests` (default 100; 0: unlimited).
    pub max_keep_alive_requests: u64,
    /// `LimitRequestLine` (default 8190 bytes).
    pub limit_request_line: u32,
    /// `LimitRequestFieldSize` (default 8190 bytes).
    pub limit_request_field_size: u32,
    /// `LimitRequestFields` (default 100; 0: unlimited).
    pub limit_request_fields: u32,
}

impl Server {
    /// The host part of `ServerName` (no scheme, no port), lower-cased.
    pub fn host_name(&self) -> Option<String> {
        self.server_name.as_deref().map(host_of_server_name)
    }

    /// The port of `ServerName`, when it names one.
    pub fn server_name_port(&self) -> Option<u16> {
        let name = self.server_name.as_deref()?;
        let name = name.split_once("://").map_or(name, |(_, rest)| rest);
        let (host, port) = name.rsplit_once(':')?;
        if host.ends_with(']') || !host.contains(':') {
            port.parse().ok()
        } else {
            None
        }
    }

    fn apply_core(&mut self, setting: CoreSetting) {
        use CoreSetting::*;
        match setting {
            ServerName(v) => self.server_name = Some(v),
            ServerAlias(v) => self.server_aliases.extend(v),
            DocumentRoot(v) => self.document_root = Some(v),
            Alias(v) => self.aliases.push(v),
            Redirect(v) => self.redirects.push(v),
            Timeout(v) => self.timeout = Some(v),
            KeepAlive(v) => self.keep_alive = Some(v),
            KeepAliveTimeout(v) => self.keep_alive_timeout = Some(v),
            MaxKeepAliveRequests(v) => self.max_keep_alive_requests = Some(v),
            LimitRequestLine(v) => self.limit_request_line = Some(v),
            LimitRequestFieldSize(v) => self.limit_request_field_size = Some(v),
            LimitRequestFields(v) => self.limit_request_fields = Some(v),
            ErrorLog(v) => self.error_log = Some(v),
            CustomLog(v) => self.custom_logs.push(v),
            LogLevel(v) => self.log_level = Some(v),
            LogFormat { format, nickname } => self.log_formats.push((nickname, format)),
            Protocols(v) => self.protocols = Some(v),
            SslEngine(v) => self.ssl.engine = Some(v),
            SslCertificateFile(v) => self.ssl.certificate_file = Some(v),
            SslCertificateKeyFile(v) => self.ssl.certificate_key_file = Some(v),
            SslCertificateChainFile(v) => self.ssl.certificate_chain_file = Some(v),
            SslProtocol(v) => self.ssl.protocol = Some(v),
            SslCipherSuite { tls13: false, spec } => self.ssl.cipher_suite = Some(spec),
            SslCipherSuite { tls13: true, spec } => self.ssl.cipher_suite_tls13 = Some(spec),
            SslHonorCipherOrder(v) => self.ssl.honor_cipher_order = Some(v),
            Listen(_) | ServerRoot(_) | User(_) | Group(_) => {
                unreachable!("process-wide core directives are applied to the Config")
            }
        }
    }

    fn core_settings(&self) -> Vec<CoreSetting> {
        use CoreSetting::*;
        let mut out = Vec::new();
        out.extend(self.server_name.clone().map(ServerName));
        if !self.server_aliases.is_empty() {
            out.push(ServerAlias(self.server_aliases.clone()));
        }
        out.extend(self.document_root.clone().map(DocumentRoot));
        out.extend(self.aliases.iter().cloned().map(Alias));
        out.extend(self.redirects.iter().cloned().map(Redirect));
        out.extend(self.timeout.map(Timeout));
        out.extend(self.keep_alive.map(KeepAlive));
        out.extend(self.keep_alive_timeout.map(KeepAliveTimeout));
        out.extend(self.max_keep_alive_requests.map(MaxKeepAliveRequests));
        out.extend(self.limit_request_line.map(LimitRequestLine));
        out.extend(self.limit_request_field_size.map(LimitRequestFieldSize));
        out.extend(self.limit_request_fields.map(LimitRequestFields));
        out.extend(self.error_log.clone().map(ErrorLog));
        out.extend(self.custom_logs.iter().cloned().map(CustomLog));
        out.extend(self.log_level.clone().map(LogLevel));
        out.extend(
            self.log_formats
                .iter()
                .map(|(nickname, format)| LogFormat { format: format.clone(), nickname: nickname.clone() }),
        );
        out.extend(self.protocols.clone().map(Protocols));
        let ssl = &self.ssl;
        out.extend(ssl.engine.map(SslEngine));
        out.extend(ssl.certificate_file.clone().map(SslCertificateFile));
        out.extend(ssl.certificate_key_file.clone().map(SslCertificateKeyFile));
        out.extend(ssl.certificate_chain_file.clone().map(SslCertificateChainFile));
        out.extend(ssl.protocol.clone().map(SslProtocol));
        out.extend(ssl.cipher_suite.clone().map(|spec| SslCipherSuite { tls13: false, spec }));
        out.extend(ssl.cipher_suite_tls13.clone().map(|spec| SslCipherSuite { tls13: true, spec }));
        out.extend(ssl.honor_cipher_order.map(SslHonorCipherOrder));
        out
    }
}

fn host_of_server_name(name: &str) -> String {
    let name = name.split_once("://").map_or(name, |(_, rest)| rest);
    let host = if let Some(rest) = name.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        name.split(':').next().unwrap_or(name)
    };
    host.to_ascii_lowercase()
}

/// Settings that merge server -> virtual host -> directory sections, child
/// over parent (mod_wsgi's server and directory configuration). `None`
/// means "not set here".
#[derive(Debug, Clone, Default, PartialEq)]
#[allow(missing_docs)] // Each field is the directive of the same name.
pub struct DirSettings {
    pub process_group: Option<String>,
    pub application_group: Option<String>,
    pub callable_object: Option<String>,
    pub restrict_process: Option<Vec<String>>,
    pub dispatch_script: Option<ScriptRef>,
    pub pass_apache_request: Option<bool>,
    pub pass_authorization: Option<bool>,
    pub script_reloading: Option<bool>,
    pub error_override: Option<bool>,
    pub chunked_request: Option<bool>,
    pub map_head_to_get: Option<MapHeadToGet>,
    pub ignore_activity: Option<bool>,
    pub trusted_proxy_headers: Option<Vec<String>>,
    pub trusted_proxies: Option<Vec<IpSubnet>>,
    pub enable_sendfile: Option<bool>,
    pub access_script: Option<ScriptRef>,
    pub auth_user_script: Option<ScriptRef>,
    pub auth_group_script: Option<ScriptRef>,
    pub group_authoritative: Option<bool>,
    pub user_authoritative: Option<bool>,
    /// `WSGIHandlerScript` entries by handler name.
    pub handler_scripts: BTreeMap<String, HandlerScript>,
    /// Apache's `LimitRequestBody`.
    pub limit_request_body: Option<u64>,
    /// mod_env's changes, outer scopes' first.
    pub env: Vec<EnvChange>,
    /// mod_ssl's `SSLOptions` lines, outer scopes' first.
    pub ssl_options: Vec<crate::tls::SslOptionsLine>,
    /// The `Require` lines and containers in effect (those of one section
    /// combine as `<RequireAny>`).
    pub authz: Option<AuthzSection>,
    /// `AuthMerging` of this section (not inherited).
    pub auth_merging: Option<AuthMerging>,
    /// `AuthType` (`Err`: a type this crate does not know, as written).
    pub auth_type: Option<Result<AuthType, String>>,
    /// `AuthName`.
    pub auth_name: Option<String>,
    /// `AuthUserFile`, as written.
    pub auth_user_file: Option<String>,
    /// `AuthBasicProvider`.
    pub auth_basic_provider: Option<Vec<String>>,
    /// `AuthDigestProvider`.
    pub auth_digest_provider: Option<Vec<String>>,
}

/// The authorization of a section inside another: its own, merged with
/// the outer one's by its `AuthMerging`, or the outer one's when it has
/// none, as mod_authz_core merges them.
fn merge_authz(
    outer: Option<&AuthzSection>,
    inner: Option<&AuthzSection>,
    merging: Option<AuthMerging>,
) -> Option<AuthzSection> {
    match (outer, inner, merging.unwrap_or(AuthMerging::Off)) {
        (_, None, _) => outer.cloned(),
        (None, Some(inner), _) | (Some(_), Some(inner), AuthMerging::Off) => Some(inner.clone()),
        (Some(outer), Some(inner), AuthMerging::And) => Some(AuthzSection::merged(outer, inner, Logic::And)),
        (Some(outer), Some(inner), AuthMerging::Or) => Some(AuthzSection::merged(outer, inner, Logic::Or)),
    }
}

/// Apache 2.4's default `LimitRequestBody`: 1 GiB.
pub const DEFAULT_LIMIT_REQUEST_BODY: u64 = 1 << 30;

impl DirSettings {
    /// Applies one directive within one context, as mod_wsgi does: most
    /// replace, the trusted-proxy lists append, handler scripts add by name.
    pub fn apply(&mut self, setting: DirSetting) {
        use DirSetting::*;
        match setting {
            ProcessGroup(v) => self.process_group = Some(v),
            ApplicationGroup(v) => self.application_group = Some(v),
            CallableObject(v) => self.callable_object = Some(v),
            RestrictProcess(v) => self.restrict_process = Some(v),
            DispatchScript(v) => self.dispatch_script = Some(v),
            PassApacheRequest(v) => self.pass_apache_request = Some(v),
            PassAuthorization(v) => self.pass_authorization = Some(v),
            ScriptReloading(v) => self.script_reloading = Some(v),
            ErrorOverride(v) => self.error_override = Some(v),
            ChunkedRequest(v) => self.chunked_request = Some(v),
            MapHeadToGet(v) => self.map_head_to_get = Some(v),
            IgnoreActivity(v) => self.ignore_activity = Some(v),
            TrustedProxyHeaders(v) => self.trusted_proxy_headers.get_or_insert_with(Vec::new).extend(v),
            TrustedProxies(v) => self.trusted_proxies.get_or_insert_with(Vec::new).extend(v),
            EnableSendfile(v) => self.enable_sendfile = Some(v),
            AccessScript(v) => self.access_script = Some(v),
            AuthUserScript(v) => self.auth_user_script = Some(v),
            AuthGroupScript(v) => self.auth_group_script = Some(v),
            GroupAuthoritative(v) => self.group_authoritative = Some(v),
            UserAuthoritative(v) => self.user_authoritative = Some(v),
            HandlerScript(v) => {
                self.handler_scripts.insert(v.name.clone(), v);
            }
            LimitRequestBody(v) => self.limit_request_body = Some(v),
            Env(v) => self.env.push(v),
            SslOptions(v) => self.ssl_options.push(v),
            Require(r) => self
                .authz
                .get_or_insert_with(|| AuthzSection::new(Logic::Or, false))
                .children
                .push(AuthzNode::Require(r)),
            Authz(section) => self
                .authz
                .get_or_insert_with(|| AuthzSection::new(Logic::Or, false))
                .children
                .push(AuthzNode::Section(section)),
            AuthMerging(v) => self.auth_merging = Some(v),
            AuthType(v) => self.auth_type = Some(v),
            AuthName(v) => self.auth_name = Some(v),
            AuthUserFile(v) => self.auth_user_file = Some(v),
            AuthBasicProvider(v) => self.auth_basic_provider = Some(v),
            AuthDigestProvider(v) => self.auth_digest_provider = Some(v),
        }
    }

    /// `child` over `self`: each field the child sets wins; handler scripts
    /// are the union, the child's entry winning on a name both have.
    pub fn merged_with(&self, child: &DirSettings) -> DirSettings {
        macro_rules! pick {
            ($($field:ident),*) => {
                DirSettings {
                    $($field: child.$field.clone().or_else(|| self.$field.clone()),)*
                    handler_scripts: {
                        let mut scripts = self.handler_scripts.clone();
                        scripts.extend(child.handler_scripts.clone());
                        scripts
                    },
                    env: self.env.iter().chain(&child.env).cloned().collect(),
                    ssl_options: self.ssl_options.iter().chain(&child.ssl_options).cloned().collect(),
                    authz: merge_authz(self.authz.as_ref(), child.authz.as_ref(), child.auth_merging),
                    auth_merging: child.auth_merging,
                }
            };
        }
        pick!(
            process_group,
            application_group,
            callable_object,
            restrict_process,
            dispatch_script,
            pass_apache_request,
            pass_authorization,
            script_reloading,
            error_override,
            chunked_request,
            map_head_to_get,
            ignore_activity,
            trusted_proxy_headers,
            trusted_proxies,
            enable_sendfile,
            access_script,
            auth_user_script,
            auth_group_script,
            group_authoritative,
            user_authoritative,
            limit_request_body,
            auth_type,
            auth_name,
            auth_user_file,
            auth_basic_provider,
            auth_digest_provider
        )
    }

    /// The settings as directives that [`DirSettings::apply`] rebuilds.
    pub fn to_settings(&self) -> Vec<DirSetting> {
        use DirSetting::*;
        let mut out = Vec::new();
        macro_rules! put {
            ($($field:ident => $variant:ident),*) => {
                $(if let Some(v) = &self.$field {
                    out.push($variant(v.clone()));
                })*
            };
        }
        put!(
            process_group => ProcessGroup,
            application_group => ApplicationGroup,
            callable_object => CallableObject,
            restrict_process => RestrictProcess,
            dispatch_script => DispatchScript,
            pass_apache_request => PassApacheRequest,
            pass_authorization => PassAuthorization,
            script_reloading => ScriptReloading,
            error_override => ErrorOverride,
            chunked_request => ChunkedRequest,
            map_head_to_get => MapHeadToGet,
            ignore_activity => IgnoreActivity,
            trusted_proxy_headers => TrustedProxyHeaders,
            trusted_proxies => TrustedProxies,
            enable_sendfile => EnableSendfile,
            access_script => AccessScript,
            auth_user_script => AuthUserScript,
            auth_group_script => AuthGroupScript,
            group_authoritative => GroupAuthoritative,
            user_authoritative => UserAuthoritative,
            limit_request_body => LimitRequestBody,
            auth_merging => AuthMerging,
            auth_type => AuthType,
            auth_name => AuthName,
            auth_user_file => AuthUserFile,
            auth_basic_provider => AuthBasicProvider,
            auth_digest_provider => AuthDigestProvider
        );
        if let Some(section) = &self.authz {
            for child in &section.children {
                out.push(match child {
                    AuthzNode::Require(r) => Require(r.clone()),
                    AuthzNode::Section(s) => Authz(s.clone()),
                });
            }
        }
        out.extend(self.handler_scripts.values().cloned().map(HandlerScript));
        out.extend(self.env.iter().cloned().map(Env));
        out.extend(self.ssl_options.iter().cloned().map(SslOptions));
        out
    }

    /// Effective `WSGIProcessGroup` (raw; empty means embedded mode).
    pub fn effective_process_group(&self) -> &str {
        self.process_group.as_deref().unwrap_or("")
    }

    /// Effective `WSGIApplicationGroup` (raw; default `%{RESOURCE}`).
    pub fn effective_application_group(&self) -> &str {
        self.application_group.as_deref().unwrap_or("%{RESOURCE}")
    }

    /// Effective `WSGICallableObject` (raw; default `application`).
    pub fn effective_callable_object(&self) -> &str {
        self.callable_object.as_deref().unwrap_or("application")
    }

    /// Whether `WSGIRestrictProcess` lets requests here go to the daemon
    /// process group `name` (no such directive: any group).
    pub fn allows_process_group(&self, name: &str) -> bool {
        self.restrict_process.as_ref().is_none_or(|allowed| allowed.iter().any(|a| a == name))
    }

    /// Effective `WSGIPassAuthorization` (default Off).
    pub fn effective_pass_authorization(&self) -> bool {
        self.pass_authorization.unwrap_or(false)
    }

    /// Effective `WSGIScriptReloading` (default On).
    pub fn effective_script_reloading(&self) -> bool {
        self.script_reloading.unwrap_or(true)
    }

    /// Effective `WSGIChunkedRequest` (default Off).
    pub fn effective_chunked_request(&self) -> bool {
        self.chunked_request.unwrap_or(false)
    }

    /// Effective `WSGIMapHEADToGET` (default Auto).
    pub fn effective_map_head_to_get(&self) -> MapHeadToGet {
        self.map_head_to_get.unwrap_or(MapHeadToGet::Auto)
    }

    /// The environment variables mod_env gives a request: `SetEnv`
    /// values, `PassEnv` names with their values in this process's
    /// environment (those it lacks are left out), less `UnsetEnv` names,
    /// applied outer scope first.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> = Vec::new();
        let set = |vars: &mut Vec<(String, String)>, name: &str, value: String| {
            vars.retain(|(n, _)| n != name);
            vars.push((name.to_string(), value));
        };
        for change in &self.env {
            match change {
                EnvChange::Set(name, value) => set(&mut vars, name, value.clone()),
                EnvChange::Pass(names) => {
                    for name in names {
                        if let Ok(value) = std::env::var(name) {
                            set(&mut vars, name, value);
                        }
                    }
                }
                EnvChange::Unset(names) => vars.retain(|(n, _)| !names.contains(n)),
            }
        }
        vars
    }

    /// The `SSLOptions` in effect (none by default).
    pub fn effective_ssl_options(&self) -> Vec<crate::tls::SslOption> {
        crate::tls::effective_ssl_options(&self.ssl_options)
    }

    /// Effective `LimitRequestBody` (default 1 GiB; 0 means unlimited).
    pub fn effective_limit_request_body(&self) -> u64 {
        self.limit_request_body.unwrap_or(DEFAULT_LIMIT_REQUEST_BODY)
    }
}

/// What a directory-level section matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    /// `<Directory>` / `<DirectoryMatch>`: file-system directories.
    Directory,
    /// `<Files>` / `<FilesMatch>`: file base names.
    Files,
    /// `<Location>` / `<LocationMatch>`: URL paths.
    Location,
}

/// A section's pattern: literal (with shell wildcards) or regex.
#[derive(Debug, Clone)]
pub enum SectionPattern {
    /// A path or name, possibly with `*`, `?` and `[]` wildcards.
    Literal(String),
    /// A regular expression (`...Match`, or `~ regex`).
    Regex(Regex),
}

impl PartialEq for SectionPattern {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (SectionPattern::Literal(a), SectionPattern::Literal(b)) => a == b,
            (SectionPattern::Regex(a), SectionPattern::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

/// A `<Directory>`, `<Location>` or `<Files>` section (or a `Match` form).
#[derive(Debug, Clone, PartialEq)]
pub struct DirSection {
    /// What it matches.
    pub kind: SectionKind,
    /// The pattern.
    pub pattern: SectionPattern,
    /// The settings inside.
    pub settings: DirSettings,
    /// `<Files>` sections nested inside a `<Directory>`.
    pub nested: Vec<DirSection>,
    /// Directives of other modules inside, kept as written.
    pub other_directives: Vec<Directive>,
    /// Where the section opens.
    pub location: Location,
}

impl DirSection {
    /// The container name that renders this section.
    pub fn container_name(&self) -> &'static str {
        match (&self.kind, &self.pattern) {
            (SectionKind::Directory, SectionPattern::Literal(_)) => "Directory",
            (SectionKind::Directory, SectionPattern::Regex(_)) => "DirectoryMatch",
            (SectionKind::Files, SectionPattern::Literal(_)) => "Files",
            (SectionKind::Files, SectionPattern::Regex(_)) => "FilesMatch",
            (SectionKind::Location, SectionPattern::Literal(_)) => "Location",
            (SectionKind::Location, SectionPattern::Regex(_)) => "LocationMatch",
        }
    }

    /// The pattern as written.
    pub fn pattern_text(&self) -> &str {
        match &self.pattern {
            SectionPattern::Literal(s) => s,
            SectionPattern::Regex(r) => r.as_str(),
        }
    }

    fn matches(&self, url_path: &str, file: Option<&Path>) -> bool {
        match self.kind {
            SectionKind::Location => match &self.pattern {
                SectionPattern::Literal(p) => location_matches(p, url_path),
                SectionPattern::Regex(r) => r.is_match(url_path),
            },
            SectionKind::Directory => {
                let Some(dir) = file.and_then(Path::parent) else {
                    return false;
                };
                match &self.pattern {
                    SectionPattern::Literal(p) => directory_matches(p, dir),
                    SectionPattern::Regex(r) => r.is_match(&dir.to_string_lossy()),
                }
            }
            SectionKind::Files => {
                let Some(name) = file.and_then(Path::file_name).map(|n| n.to_string_lossy()) else {
                    return false;
                };
                match &self.pattern {
                    SectionPattern::Literal(p) => glob::Pattern::new(p).is_ok_and(|g| g.matches(&name)),
                    SectionPattern::Regex(r) => r.is_match(&name),
                }
            }
        }
    }
}

/// `<Location /a>` matches `/a`, `/a/` and `/a/b`, not `/ab` (Apache 2.4).
fn location_matches(pattern: &str, url_path: &str) -> bool {
    if pattern.contains(['*', '?', '[']) {
        return glob::Pattern::new(pattern).is_ok_and(|g| {
            g.matches_with(url_path, glob::MatchOptions { require_literal_separator: true, ..Default::default() })
        });
    }
    match url_path.strip_prefix(pattern) {
        Some(rest) => pattern.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// `<Directory /srv/app>` applies to `/srv/app` and everything below it;
/// wildcards match one path component each.
fn directory_matches(pattern: &str, dir: &Path) -> bool {
    let pattern = pattern.trim_end_matches('/');
    if pattern.is_empty() {
        return true; // `<Directory />`
    }
    let components = Path::new(pattern).components().count();
    let prefix: PathBuf = dir.components().take(components).collect();
    if prefix.components().count() < components {
        return false;
    }
    if pattern.contains(['*', '?', '[']) {
        glob::Pattern::new(pattern).is_ok_and(|g| {
            g.matches_path_with(&prefix, glob::MatchOptions { require_literal_separator: true, ..Default::default() })
        })
    } else {
        prefix == Path::new(pattern)
    }
}

impl Config {
    fn empty(server_root: PathBuf) -> Config {
        Config {
            server_root,
            listen: Vec::new(),
            user: None,
            group: None,
            global: GlobalSettings::default(),
            interpreter_options: Vec::new(),
            daemon_processes: Vec::new(),
            import_scripts: Vec::new(),
            main_server: Server::default(),
            virtual_hosts: Vec::new(),
        }
    }

    /// Builds the model from a configuration tree; every error is reported.
    /// `front_end`, when given, refuses the lines it would not act on.
    pub fn from_tree(
        nodes: &[Node],
        server_root: PathBuf,
        front_end: Option<FrontEnd>,
        python: support::PythonFeatures,
    ) -> Result<Config, Vec<ConfigError>> {
        let mut builder = Builder {
            front_end,
            python,
            config: Config::empty(server_root),
            errors: Vec::new(),
            group_refs: Vec::new(),
            current_host: None,
        };
        builder.walk_server(nodes, None);
        builder.check_group_refs();
        if builder.errors.is_empty() {
            Ok(builder.config)
        } else {
            Err(builder.errors)
        }
    }

    /// Finds a daemon process group by name.
    pub fn daemon(&self, name: &str) -> Option<&DaemonGroup> {
        self.daemon_processes.iter().find(|d| d.process.name == name)
    }

    /// The server that handles a request that arrived on `local` with the
    /// given `Host` header: name-based virtual hosting as Apache does it.
    ///
    /// Virtual hosts whose address names `local`'s IP win over wildcard
    /// ones; among those, the first whose `ServerName` or `ServerAlias`
    /// matches the host wins, else the first of them; with none, the main
    /// server.
    pub fn select_server(&self, local: SocketAddr, host: Option<&str>) -> &Server {
        let exact: Vec<&Server> =
            self.virtual_hosts.iter().filter(|v| v.addresses.iter().any(|a| address_matches(a, local, true))).collect();
        let candidates = if exact.is_empty() {
            self.virtual_hosts.iter().filter(|v| v.addresses.iter().any(|a| address_matches(a, local, false))).collect()
        } else {
            exact
        };
        let Some(first) = candidates.first() else {
            return &self.main_server;
        };
        let host = host.map(host_of_server_name);
        let by_name = host.as_deref().and_then(|host| {
            candidates.iter().find(|server| {
                server.host_name().as_deref() == Some(host)
                    || server.server_aliases.iter().any(|alias| {
                        let alias = alias.to_ascii_lowercase();
                        glob::Pattern::new(&alias).is_ok_and(|g| g.matches(host))
                    })
            })
        });
        by_name.unwrap_or(first)
    }

    /// The servers that may answer on `local`: the virtual hosts whose
    /// addresses name it (its IP, or a wildcard for its port), as
    /// [`Config::select_server`] chooses among them; the main server when
    /// none does.
    pub fn servers_at(&self, local: SocketAddr) -> Vec<&Server> {
        let exact: Vec<&Server> =
            self.virtual_hosts.iter().filter(|v| v.addresses.iter().any(|a| address_matches(a, local, true))).collect();
        let servers = if exact.is_empty() {
            self.virtual_hosts.iter().filter(|v| v.addresses.iter().any(|a| address_matches(a, local, false))).collect()
        } else {
            exact
        };
        if servers.is_empty() {
            vec![&self.main_server]
        } else {
            servers
        }
    }

    /// The position of `server`, one of this configuration's: 0 for the
    /// main server, then 1 + its index among the virtual hosts.
    pub fn server_index(&self, server: &Server) -> usize {
        self.virtual_hosts.iter().position(|v| std::ptr::eq(v, server)).map_or(0, |i| i + 1)
    }

    /// The scripts a process of `process_group` imports when it starts
    /// (see [`preloads`]), from every server of the configuration.
    pub fn preloads(&self, process_group: &str) -> Vec<(PathBuf, String)> {
        let servers = || std::iter::once(&self.main_server).chain(&self.virtual_hosts);
        preloads(&self.import_scripts, servers().flat_map(|server| &server.script_aliases), process_group)
    }

    /// The script aliases that apply in `server`, in match order: a virtual
    /// host's own first, then the main server's (mod_wsgi's merge order).
    pub fn script_aliases<'a>(&'a self, server: &'a Server) -> impl Iterator<Item = &'a ScriptAlias> + 'a {
        let inherited: &[ScriptAlias] =
            if std::ptr::eq(server, &self.main_server) { &[] } else { &self.main_server.script_aliases };
        server.script_aliases.iter().chain(inherited)
    }

    /// The settings that apply to a request for `url_path` in `server`
    /// whose script is `file` (when known): the main server's, then the
    /// virtual host's, then every matching section in Apache's order
    /// (directories shortest first, then directory regexes, then files,
    /// then locations), each over the one before.
    pub fn settings_for(&self, server: &Server, url_path: &str, file: Option<&Path>) -> DirSettings {
        let mut settings = if std::ptr::eq(server, &self.main_server) {
            self.main_server.settings.clone()
        } else {
            self.main_server.settings.merged_with(&server.settings)
        };
        let mut sections: Vec<&DirSection> = self.main_server.sections.iter().collect();
        if !std::ptr::eq(server, &self.main_server) {
            sections.extend(&server.sections);
        }
        let phase = |s: &DirSection| match (s.kind, &s.pattern) {
            (SectionKind::Directory, SectionPattern::Literal(p)) => (0, Path::new(p).components().count()),
            (SectionKind::Directory, SectionPattern::Regex(_)) => (1, 0),
            (SectionKind::Files, _) => (2, 0),
            (SectionKind::Location, _) => (3, 0),
        };
        let mut matching: Vec<&DirSection> = Vec::new();
        for section in sections {
            if section.matches(url_path, file) {
                matching.push(section);
                matching.extend(section.nested.iter().filter(|n| n.matches(url_path, file)));
            }
        }
        // A stable sort keeps file order within each phase.
        matching.sort_by_key(|s| phase(s));
        for section in matching {
            settings = settings.merged_with(&section.settings);
        }
        settings
    }

    /// Renders the model as configuration text that reads back to an equal
    /// model (apart from source locations).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let mut line = |indent: usize, text: String| {
            out.push_str(&"    ".repeat(indent));
            out.push_str(&text);
            out.push('\n');
        };
        let core = |s: CoreSetting| Setting::Core(s).to_line();
        line(0, core(CoreSetting::ServerRoot(self.server_root.clone())));
        for listen in &self.listen {
            line(0, core(CoreSetting::Listen(listen.clone())));
        }
        if let Some(user) = &self.user {
            line(0, core(CoreSetting::User(user.clone())));
        }
        if let Some(group) = &self.group {
            line(0, core(CoreSetting::Group(group.clone())));
        }
        for setting in self.global.to_settings() {
            line(0, Setting::Global(setting).to_line());
        }
        for block in &self.interpreter_options {
            let mut selectors = String::new();
            for (key, value) in
                [("process-group", &block.process_group), ("application-group", &block.application_group)]
            {
                if let Some(v) = value {
                    selectors.push(' ');
                    selectors.push_str(&crate::lexer::quote_word(&format!("{key}={v}")));
                }
            }
            line(0, format!("<WSGIInterpreterOptions{selectors}>"));
            for setting in &block.settings {
                line(1, Setting::Global(setting.clone()).to_line());
            }
            line(0, "</WSGIInterpreterOptions>".into());
        }
        let daemons_in = |host: Option<usize>| {
            self.daemon_processes
                .iter()
                .filter(move |d| d.virtual_host == host)
                .map(|d| Setting::DaemonProcess(Box::new(d.process.clone())).to_line())
        };
        for text in daemons_in(None) {
            line(0, text);
        }
        render_server(&self.main_server, 0, &mut line);
        for import in &self.import_scripts {
            line(0, Setting::ImportScript(import.clone()).to_line());
        }
        for (index, vhost) in self.virtual_hosts.iter().enumerate() {
            let addresses = vhost.addresses.iter().map(|a| crate::lexer::quote_word(a)).collect::<Vec<_>>().join(" ");
            line(0, format!("<VirtualHost {addresses}>"));
            // ServerName first: daemon scoping reads it.
            for text in daemons_in(Some(index)) {
                line(1, text);
            }
            render_server(vhost, 1, &mut line);
            line(0, "</VirtualHost>".into());
        }
        out
    }

    /// The host name `server` answers as: its `ServerName`'s host, else
    /// the main server's, else `localhost`.
    pub fn server_hostname(&self, server: &Server) -> String {
        server.host_name().or_else(|| self.main_server.host_name()).unwrap_or_else(|| "localhost".to_string())
    }

    /// The connection settings of `server` (see [`ConnectionSettings`]).
    pub fn connection_settings(&self, server: &Server) -> ConnectionSettings {
        let main = &self.main_server;
        ConnectionSettings {
            timeout: server.timeout.or(main.timeout).unwrap_or(Duration::from_secs(60)),
            keep_alive: server.keep_alive.or(main.keep_alive).unwrap_or(true),
            keep_alive_timeout: server.keep_alive_timeout.or(main.keep_alive_timeout).unwrap_or(Duration::from_secs(5)),
            max_keep_alive_requests: server.max_keep_alive_requests.or(main.max_keep_alive_requests).unwrap_or(100),
            limit_request_line: server.limit_request_line.or(main.limit_request_line).unwrap_or(8190),
            limit_request_field_size: server.limit_request_field_size.or(main.limit_request_field_size).unwrap_or(8190),
            limit_request_fields: server.limit_request_fields.or(main.limit_request_fields).unwrap_or(100),
        }
    }

    /// The `Protocols` of `server` (its own, else the main server's;
    /// Apache's default `http/1.1`).
    pub fn protocols(&self, server: &Server) -> Vec<String> {
        server
            .protocols
            .clone()
            .or_else(|| self.main_server.protocols.clone())
            .unwrap_or_else(|| vec!["http/1.1".to_string()])
    }

    /// mod_ssl's settings in effect for `server`: its own, else the main
    /// server's, as mod_ssl merges them; file paths resolved under
    /// `ServerRoot`.
    pub fn ssl_settings(&self, server: &Server) -> SslSettings {
        let (own, main) = (&server.ssl, &self.main_server.ssl);
        let path = |p: &Option<String>| p.as_deref().map(|p| self.server_root_relative(p).display().to_string());
        SslSettings {
            engine: own.engine.or(main.engine),
            certificate_file: path(&own.certificate_file).or_else(|| path(&main.certificate_file)),
            certificate_key_file: path(&own.certificate_key_file).or_else(|| path(&main.certificate_key_file)),
            certificate_chain_file: path(&own.certificate_chain_file).or_else(|| path(&main.certificate_chain_file)),
            protocol: own.protocol.clone().or_else(|| main.protocol.clone()),
            cipher_suite: own.cipher_suite.clone().or_else(|| main.cipher_suite.clone()),
            cipher_suite_tls13: own.cipher_suite_tls13.clone().or_else(|| main.cipher_suite_tls13.clone()),
            honor_cipher_order: own.honor_cipher_order.or(main.honor_cipher_order),
        }
    }

    /// The access logs of `server`: its own `CustomLog` lines, or the main
    /// server's when it has none, as Apache inherits them.
    pub fn access_logs(&self, server: &Server) -> Vec<AccessLogSpec> {
        let source = if server.custom_logs.is_empty() { &self.main_server } else { server };
        source
            .custom_logs
            .iter()
            .map(|log| AccessLogSpec {
                path: self.server_root_relative(&log.target),
                format: self.log_format(source, &log.format),
                condition: log.condition.as_deref().and_then(|c| c.strip_prefix("env=")).map(|name| {
                    match name.strip_prefix('!') {
                        Some(name) => EnvCondition { name: name.to_string(), negated: true },
                        None => EnvCondition { name: name.to_string(), negated: false },
                    }
                }),
            })
            .collect()
    }

    /// The format `CustomLog` names: a nickname from `LogFormat` in
    /// `server` or the main server (the last definition wins), one of
    /// Debian's predefined ones, or else the text itself, as Apache reads
    /// a word it knows no nickname for.
    pub fn log_format(&self, server: &Server, format_or_nickname: &str) -> crate::log_format::LogFormat {
        use crate::log_format::{LogField, LogFormat, PREDEFINED};
        let defined = |s: &Server| {
            s.log_formats
                .iter()
                .rev()
                .find(|(nickname, _)| nickname.as_deref() == Some(format_or_nickname))
                .map(|(_, format)| format.clone())
        };
        let text = defined(server)
            .or_else(|| defined(&self.main_server))
            .or_else(|| PREDEFINED.iter().find(|(n, _)| *n == format_or_nickname).map(|(_, f)| f.to_string()))
            .unwrap_or_else(|| format_or_nickname.to_string());
        // Formats were checked when read; a nickname's text is plain.
        LogFormat::parse(&text).unwrap_or_else(|_| LogFormat { fields: vec![LogField::Literal(text)] })
    }

    /// The error log of `server` (`ErrorLog`, its own or the main
    /// server's), relative paths resolved under `ServerRoot`.
    pub fn error_log(&self, server: &Server) -> Option<PathBuf> {
        server.error_log.as_ref().or(self.main_server.error_log.as_ref()).map(|t| self.server_root_relative(t))
    }

    /// The `LogLevel` words of `server`, its own or the main server's.
    pub fn log_level<'a>(&'a self, server: &'a Server) -> Option<&'a [String]> {
        server.log_level.as_deref().or(self.main_server.log_level.as_deref())
    }

    fn server_root_relative(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.server_root.join(path)
        }
    }

    /// Every directive of another module kept in the model, in the order
    /// of the servers and sections that hold them.
    pub fn other_directives(&self) -> Vec<&Directive> {
        fn from_sections<'a>(sections: &'a [DirSection], out: &mut Vec<&'a Directive>) {
            for section in sections {
                out.extend(&section.other_directives);
                from_sections(&section.nested, out);
            }
        }
        let mut out = Vec::new();
        for server in std::iter::once(&self.main_server).chain(&self.virtual_hosts) {
            out.extend(&server.other_directives);
            from_sections(&server.sections, &mut out);
        }
        out
    }

    /// A copy with every source location replaced by `<model>:0`, for
    /// comparing models read from different texts.
    pub fn without_locations(&self) -> Config {
        let blank = Location::new("<model>", 0);
        let mut config = self.clone();
        for daemon in &mut config.daemon_processes {
            daemon.location = blank.clone();
        }
        for block in &mut config.interpreter_options {
            block.location = blank.clone();
        }
        fn strip_sections(sections: &mut [DirSection], blank: &Location) {
            for section in sections {
                section.location = blank.clone();
                section.other_directives.clear();
                strip_sections(&mut section.nested, blank);
            }
        }
        for server in std::iter::once(&mut config.main_server).chain(&mut config.virtual_hosts) {
            server.location = server.location.as_ref().map(|_| blank.clone());
            server.other_directives.clear();
            strip_sections(&mut server.sections, &blank);
        }
        config
    }
}

fn render_server(server: &Server, indent: usize, line: &mut impl FnMut(usize, String)) {
    for setting in server.core_settings() {
        line(indent, Setting::Core(setting).to_line());
    }
    for alias in &server.script_aliases {
        line(indent, Setting::ScriptAlias(alias.clone()).to_line());
    }
    for setting in server.settings.to_settings() {
        line(indent, Setting::Dir(setting).to_line());
    }
    for section in &server.sections {
        render_section(section, indent, line);
    }
}

fn render_section(section: &DirSection, indent: usize, line: &mut impl FnMut(usize, String)) {
    line(indent, format!("<{} {}>", section.container_name(), crate::lexer::quote_word(section.pattern_text())));
    for setting in section.settings.to_settings() {
        line(indent + 1, Setting::Dir(setting).to_line());
    }
    for nested in &section.nested {
        render_section(nested, indent + 1, line);
    }
    line(indent, format!("</{}>", section.container_name()));
}

/// Whether a `<VirtualHost>` address applies to a connection on `local`.
/// With `exact_ip`, only addresses naming `local`'s IP count; otherwise only
/// wildcard ones (`*`, `_default_`).
fn address_matches(address: &str, local: SocketAddr, exact_ip: bool) -> bool {
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        match rest.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':')),
            None => return false,
        }
    } else {
        match address.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (address, None),
        }
    };
    let port_ok = match port {
        None | Some("*") => true,
        Some(p) => p.parse::<u16>() == Ok(local.port()),
    };
    let wildcard = host == "*" || host.eq_ignore_ascii_case("_default_");
    if exact_ip {
        port_ok && !wildcard && host.parse::<IpAddr>().is_ok_and(|ip| ip == local.ip())
    } else {
        port_ok && wildcard
    }
}

/// A reference to a process group by name, checked once everything is read.
struct GroupRef {
    location: Location,
    directive: &'static str,
    group: String,
    /// The virtual host it was written in.
    virtual_host: Option<usize>,
    /// For preloads and import scripts: the daemon must come earlier, and
    /// host scoping applies even from the main server (mod_wsgi checks these
    /// while reading).
    daemons_before: Option<usize>,
}

struct Builder {
    front_end: Option<FrontEnd>,
    /// What the front end's Python can do.
    python: support::PythonFeatures,
    config: Config,
    errors: Vec<ConfigError>,
    group_refs: Vec<GroupRef>,
    /// The virtual host being read (`None`: the main server).
    current_host: Option<usize>,
}

impl Builder {
    fn server_mut(&mut self, host: Option<usize>) -> &mut Server {
        match host {
            Some(index) => &mut self.config.virtual_hosts[index],
            None => &mut self.config.main_server,
        }
    }

    fn error(&mut self, location: &Location, message: impl Into<String>) {
        self.errors.push(ConfigError::at(location, message));
    }

    /// Walks the nodes of the main server (`host` = None) or a virtual host.
    fn walk_server(&mut self, nodes: &[Node], host: Option<usize>) {
        let outer = std::mem::replace(&mut self.current_host, host);
        self.walk_server_nodes(nodes, host);
        self.current_host = outer;
    }

    fn walk_server_nodes(&mut self, nodes: &[Node], host: Option<usize>) {
        let context = if host.is_some() { Context::VirtualHost } else { Context::Server };
        for node in nodes {
            match node {
                Node::Directive(d) => {
                    if let Some(setting) = self.parse_directive(d, context) {
                        self.apply_server_level(setting, d, host);
                    } else if self.is_other_modules(d) {
                        self.server_mut(host).other_directives.push(d.clone());
                    }
                }
                Node::Section(s) => self.server_section(s, host),
            }
        }
    }

    fn server_section(&mut self, section: &Section, host: Option<usize>) {
        let kind = section.name.to_ascii_lowercase();
        match kind.as_str() {
            "virtualhost" => {
                if host.is_some() {
                    self.error(&section.location, "<VirtualHost> cannot occur within <VirtualHost> section");
                    return;
                }
                if section.args.is_empty() {
                    self.error(&section.location, "<VirtualHost> requires at least one address");
                    return;
                }
                self.config.virtual_hosts.push(Server {
                    location: Some(section.location.clone()),
                    addresses: section.args.clone(),
                    ..Server::default()
                });
                let index = self.config.virtual_hosts.len() - 1;
                self.walk_server(&section.children, Some(index));
            }
            "wsgiinterpreteroptions" => {
                if host.is_some() {
                    self.error(&section.location, "<WSGIInterpreterOptions> cannot occur within <VirtualHost> section");
                    return;
                }
                self.interpreter_options(section);
            }
            _ => match self.dir_section(section, false) {
                Some(dir) => self.server_mut(host).sections.push(dir),
                None => self.opaque_section(section),
            },
        }
    }

    /// Reads a directory-level section; `None` if `section` is not one.
    fn dir_section(&mut self, section: &Section, inside_directory: bool) -> Option<DirSection> {
        let name = section.name.to_ascii_lowercase();
        let (kind, regex) = match name.as_str() {
            "directory" => (SectionKind::Directory, false),
            "directorymatch" => (SectionKind::Directory, true),
            "location" => (SectionKind::Location, false),
            "locationmatch" => (SectionKind::Location, true),
            "files" => (SectionKind::Files, false),
            "filesmatch" => (SectionKind::Files, true),
            _ => return None,
        };
        let (regex, pattern) = match section.args.as_slice() {
            [tilde, pattern] if tilde == "~" && !regex => (true, pattern),
            [pattern] => (regex, pattern),
            _ => {
                self.error(
                    &section.location,
                    format!("<{}> takes one argument (or ~ and a regular expression)", section.name),
                );
                (regex, &String::new())
            }
        };
        let pattern = if regex {
            match Regex::new(pattern) {
                Ok(r) => SectionPattern::Regex(r),
                Err(e) => {
                    self.error(
                        &section.location,
                        format!("<{}>: regular expression could not be compiled: {e}", section.name),
                    );
                    SectionPattern::Literal(pattern.clone())
                }
            }
        } else {
            SectionPattern::Literal(pattern.clone())
        };
        let mut dir = DirSection {
            kind,
            pattern,
            settings: DirSettings::default(),
            nested: Vec::new(),
            other_directives: Vec::new(),
            location: section.location.clone(),
        };
        for node in &section.children {
            match node {
                Node::Directive(d) => {
                    if let Some(setting) = self.parse_directive(d, Context::Directory) {
                        self.apply_section_level(setting, d, &mut dir.settings);
                    } else if self.is_other_modules(d) {
                        dir.other_directives.push(d.clone());
                    }
                }
                Node::Section(inner) if AuthzSection::for_container(&inner.name).is_some() => {
                    if let Some(section) = self.authz_container(inner) {
                        dir.settings.apply(DirSetting::Authz(section));
                    }
                }
                Node::Section(inner) => {
                    let inner_name = inner.name.to_ascii_lowercase();
                    let is_files = inner_name == "files" || inner_name == "filesmatch";
                    if is_files && kind == SectionKind::Directory && !inside_directory {
                        if let Some(nested) = self.dir_section(inner, true) {
                            dir.nested.push(nested);
                        }
                    } else if self.is_dir_section_name(&inner_name)
                        || inner_name == "virtualhost"
                        || inner_name == "wsgiinterpreteroptions"
                    {
                        self.error(
                            &inner.location,
                            format!("<{}> cannot occur within <{}> section", inner.name, section.name),
                        );
                    } else {
                        self.opaque_section(inner);
                    }
                }
            }
        }
        if let Some(problem) = dir.settings.authz.as_ref().and_then(AuthzSection::problem) {
            self.error(&section.location, problem);
        }
        Some(dir)
    }

    /// A `<RequireAll>`, `<RequireAny>` or `<RequireNone>` container: its
    /// `Require` lines and the containers inside it.
    fn authz_container(&mut self, container: &Section) -> Option<AuthzSection> {
        let mut section = AuthzSection::for_container(&container.name)?;
        if !container.args.is_empty() {
            self.error(&container.location, format!("<{}> takes no arguments", container.name));
        }
        for node in &container.children {
            match node {
                Node::Directive(d) if d.name.eq_ignore_ascii_case("require") => {
                    if let Some(Setting::Dir(DirSetting::Require(r))) = self.parse_directive(d, Context::Directory) {
                        section.children.push(AuthzNode::Require(r));
                    }
                }
                Node::Section(inner) if AuthzSection::for_container(&inner.name).is_some() => {
                    if let Some(inner) = self.authz_container(inner) {
                        section.children.push(AuthzNode::Section(inner));
                    }
                }
                Node::Directive(d) => {
                    self.error(&d.location, format!("{} cannot occur within <{}> section", d.name, container.name))
                }
                Node::Section(inner) => self.error(
                    &inner.location,
                    format!("<{}> cannot occur within <{}> section", inner.name, container.name),
                ),
            }
        }
        if section.children.is_empty() {
            self.error(&container.location, format!("<{}> contains no authorization directives", container.name));
        }
        if let Some(problem) = section.problem() {
            self.error(&container.location, problem);
        }
        Some(section)
    }

    /// Whether `directive` belongs to another Apache module, to be kept
    /// in the model as written. The standalone server refuses the ones
    /// whose loss would matter ([`support::standalone_other_module`]).
    fn is_other_modules(&mut self, directive: &Directive) -> bool {
        if directives::find(&directive.name).is_some() || directives::is_wsgi_name(&directive.name) {
            return false;
        }
        if self.front_end == Some(FrontEnd::Standalone) {
            if let support::OtherModule::Refused(why) = support::standalone_other_module(&directive.name) {
                self.error(
                    &directive.location,
                    format!("{} is not supported by the standalone server: {why}", directive.name),
                );
                return false;
            }
        }
        true
    }

    fn is_dir_section_name(&self, lower: &str) -> bool {
        matches!(lower, "directory" | "directorymatch" | "location" | "locationmatch" | "files" | "filesmatch")
    }

    /// A container of another module (`<Proxy>`, `<If>`, `<Limit>`, ...):
    /// kept out of the model. A mod_wsgi directive inside one is refused,
    /// since its meaning would depend on a module we do not implement.
    fn opaque_section(&mut self, section: &Section) {
        if self.front_end == Some(FrontEnd::Standalone) {
            let why = support::standalone_refuses_section(&section.name);
            self.error(
                &section.location,
                format!("<{}> is not supported by the standalone server: {why}", section.name),
            );
            return;
        }
        for node in &section.children {
            match node {
                Node::Directive(d) if directives::is_wsgi_name(&d.name) => self.error(
                    &d.location,
                    format!(
                        "{} inside <{}> is not supported: move it to a <VirtualHost>, <Directory> or <Location>",
                        d.name, section.name
                    ),
                ),
                Node::Directive(_) => {}
                Node::Section(inner) => self.opaque_section(inner),
            }
        }
    }

    fn interpreter_options(&mut self, section: &Section) {
        if let Some(Status::Refused(why)) = self.front_end.map(|f| support::INTERPRETER_OPTIONS_SUPPORT.status(f)) {
            self.error(&section.location, format!("<WSGIInterpreterOptions> is refused: {why}"));
        }
        let (mut block, problems) = InterpreterOptions::open(&section.args, section.location.clone());
        for message in problems {
            self.error(&section.location, message);
        }
        for node in &section.children {
            match node {
                Node::Directive(d) => {
                    if let Err(message) = block.add(&d.name, &d.args, self.python) {
                        self.error(&d.location, message);
                    }
                }
                Node::Section(inner) => self.error(
                    &inner.location,
                    format!("<{}> cannot occur within <WSGIInterpreterOptions> section", inner.name),
                ),
            }
        }
        self.config.interpreter_options.push(block);
    }

    /// Looks up, context-checks and parses one directive. `None` for
    /// directives of other modules and for errors (which are recorded).
    fn parse_directive(&mut self, directive: &Directive, context: Context) -> Option<Setting> {
        let Some(spec) = directives::find(&directive.name) else {
            if directives::is_wsgi_name(&directive.name) {
                self.error(
                    &directive.location,
                    format!(
                        "Invalid command '{}', perhaps misspelled or defined by a module not included in the server configuration",
                        directive.name
                    ),
                );
            }
            return None;
        };
        if spec.global_only && context == Context::VirtualHost {
            self.error(&directive.location, format!("{} cannot occur within <VirtualHost> section", spec.name));
            return None;
        }
        if !spec.contexts.allows(context) {
            self.error(&directive.location, format!("{} not allowed here", spec.name));
            return None;
        }
        self.parse_directive_unchecked(directive)
    }

    fn parse_directive_unchecked(&mut self, directive: &Directive) -> Option<Setting> {
        let spec = directives::find(&directive.name)?;
        let parsed = (spec.parse)(&directive.args).and_then(|setting| match self.front_end {
            Some(front_end) => {
                support::check(front_end, self.python, spec.name, &directive.args, &setting).map(|()| setting)
            }
            None => Ok(setting),
        });
        match parsed {
            Ok(setting) => Some(setting),
            Err(e) => {
                self.error(&directive.location, e.to_string());
                None
            }
        }
    }

    /// Records a literal process-group name for checking once every
    /// daemon is known. `strict` marks preloads and import scripts, which
    /// mod_wsgi checks while reading: the daemon must come first.
    fn refer_to_group(&mut self, directive: &Directive, name: &'static str, group: &str, strict: bool) {
        if group == GLOBAL_GROUP || group.contains("%{") {
            return;
        }
        self.group_refs.push(GroupRef {
            location: directive.location.clone(),
            directive: name,
            group: group.to_string(),
            virtual_host: self.current_host,
            daemons_before: strict.then_some(self.config.daemon_processes.len()),
        });
    }

    fn apply_server_level(&mut self, setting: Setting, directive: &Directive, host: Option<usize>) {
        match setting {
            Setting::ScriptAlias(alias) => {
                if let Some(group) = &alias.process_group {
                    let strict = alias.preloads();
                    self.refer_to_group(directive, alias.directive_name(), group, strict);
                }
                self.server_mut(host).script_aliases.push(alias);
            }
            Setting::DaemonProcess(process) => {
                if let Some(previous) = self.config.daemon(&process.name) {
                    let previous = previous.location.clone();
                    self.error(
                        &directive.location,
                        format!(
                            "WSGIDaemonProcess: name '{}' duplicates previous WSGI daemon definition at {previous}",
                            process.name
                        ),
                    );
                    return;
                }
                self.config.daemon_processes.push(DaemonGroup {
                    process: *process,
                    virtual_host: host,
                    location: directive.location.clone(),
                });
            }
            Setting::ImportScript(import) => {
                self.refer_to_group(directive, "WSGIImportScript", &import.process_group, true);
                self.config.import_scripts.push(import);
            }
            Setting::Global(global) => self.config.global.apply(global),
            Setting::Dir(dir) => {
                self.refer_in_dir_setting(&dir, directive);
                self.server_mut(host).settings.apply(dir);
            }
            Setting::Core(core) => match core {
                CoreSetting::Listen(l) => self.config.listen.push(l),
                CoreSetting::ServerRoot(p) => self.config.server_root = p,
                CoreSetting::User(u) => self.config.user = Some(u),
                CoreSetting::Group(g) => self.config.group = Some(g),
                other => self.server_mut(host).apply_core(other),
            },
        }
    }

    fn apply_section_level(&mut self, setting: Setting, directive: &Directive, settings: &mut DirSettings) {
        match setting {
            Setting::Dir(dir) => {
                self.refer_in_dir_setting(&dir, directive);
                settings.apply(dir);
            }
            // The context table admits only per-directory settings here.
            _ => self.error(&directive.location, format!("{} not allowed here", directive.name)),
        }
    }

    fn refer_in_dir_setting(&mut self, dir: &DirSetting, directive: &Directive) {
        match dir {
            DirSetting::ProcessGroup(group) => self.refer_to_group(directive, "WSGIProcessGroup", group, false),
            DirSetting::HandlerScript(HandlerScript { process_group: Some(group), .. }) => {
                self.refer_to_group(directive, "WSGIHandlerScript", group, false)
            }
            _ => {}
        }
    }

    /// Checks every literal process-group reference against the daemons.
    fn check_group_refs(&mut self) {
        let refs = std::mem::take(&mut self.group_refs);
        for r in refs {
            let position = self.config.daemon_processes.iter().position(|d| d.process.name == r.group);
            let Some(position) = position else {
                self.error(
                    &r.location,
                    format!("{}: no WSGIDaemonProcess named '{}' is defined", r.directive, r.group),
                );
                continue;
            };
            if r.daemons_before.is_some_and(|before| position >= before) {
                self.error(
                    &r.location,
                    format!(
                        "{}: WSGI process group '{}' not yet configured: its WSGIDaemonProcess must come first",
                        r.directive, r.group
                    ),
                );
                continue;
            }
            let daemon = &self.config.daemon_processes[position];
            let Some(defined_in) = daemon.virtual_host else {
                continue;
            };
            if r.virtual_host == Some(defined_in) || (r.virtual_host.is_none() && r.daemons_before.is_none()) {
                continue;
            }
            let theirs = self.config.virtual_hosts[defined_in].host_name();
            let ours = match r.virtual_host {
                Some(index) => self.config.virtual_hosts[index].host_name(),
                None => self.config.main_server.host_name(),
            };
            let message = match (ours, theirs) {
                (Some(a), Some(b)) if a == b => continue,
                (Some(_), Some(b)) => format!(
                    "{}: WSGI process group '{}' is defined in the virtual host for '{b}' and not accessible from here",
                    r.directive, r.group
                ),
                _ => format!(
                    "{}: WSGI process group '{}' is defined in another virtual host and not matchable from here \
                     (both need the same ServerName)",
                    r.directive, r.group
                ),
            };
            self.error(&r.location, message);
        }
    }
}

/// The scripts a process of `process_group` imports when it starts, as
/// mod_wsgi does: the `WSGIImportScript` lines for it, then the script
/// aliases that name it and a fixed application group, each with its
/// application group as configured (`%{GLOBAL}` for none), once each.
/// `""` (or `%{GLOBAL}`) is embedded mode. Both front ends take their
/// preloads from here.
pub fn preloads<'a>(
    imports: impl IntoIterator<Item = &'a ImportScript>,
    aliases: impl IntoIterator<Item = &'a ScriptAlias>,
    process_group: &str,
) -> Vec<(PathBuf, String)> {
    let wanted =
        |group: &str| group == process_group || (process_group.is_empty() && group == directives::GLOBAL_GROUP);
    let imports =
        imports.into_iter().filter(|i| wanted(&i.process_group)).map(|i| (i.path.clone(), i.application_group.clone()));
    let aliases = aliases
        .into_iter()
        .filter(|a| a.preloads() && wanted(a.process_group.as_deref().unwrap_or_default()))
        .map(|a| {
            let group = a.application_group.clone().unwrap_or_else(|| directives::GLOBAL_GROUP.into());
            (PathBuf::from(&a.target), group)
        });
    let mut preloads: Vec<(PathBuf, String)> = Vec::new();
    for preload in imports.chain(aliases) {
        if !preloads.contains(&preload) {
            preloads.push(preload);
        }
    }
    preloads
}
