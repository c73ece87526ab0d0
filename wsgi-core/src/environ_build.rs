//! Building the environ of a request, key for key as mod_wsgi 4.9.4 does on
//! Apache 2.4 (its `wsgi_build_environment`, Apache's CGI variables, and
//! the adapter's `wsgi.*`/`mod_wsgi.*` keys).
//!
//! The interpreter adds the objects ([`INTERPRETER_KEYS`]) itself.
//!
//! Headers become `HTTP_*` variables as Apache makes them: repeated fields
//! are joined with `", "`, names with characters other than letters, digits
//! and `-` are dropped, `Proxy` is never passed (httpoxy), `Authorization`
//! only with `WSGIPassAuthorization On`, and `Content-Type`/`Content-Length`
//! become `CONTENT_TYPE`/`CONTENT_LENGTH`. `WSGITrustedProxyHeaders` are
//! honoured as mod_wsgi does (see [`build_environ`]).

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicU32, Ordering};

use wsgi_config::values::MapHeadToGet;
use wsgi_config::{DaemonProcess, DirSettings};

use crate::environ::{environ_text, EnvValue, Environ};
use crate::group::collapse_slashes;
use crate::request::{RequestHead, Scheme};
use crate::route::{latin1, latin1_bytes, RouteMatch, Router};

/// The environ keys the interpreter adds (the input, error and file-wrapper
/// objects); [`build_environ`] never sets them.
pub const INTERPRETER_KEYS: [&str; 3] = ["wsgi.input", "wsgi.errors", "wsgi.file_wrapper"];

/// `SERVER_ADMIN` when no `ServerAdmin` is configured (Apache's default).
pub const DEFAULT_SERVER_ADMIN: &str = "[no address given]";

/// `wsgi.multithread`, `wsgi.multiprocess` and `wsgi.run_once`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WsgiFlags {
    /// Requests may run concurrently in other threads of this process.
    pub multithread: bool,
    /// Requests may run in other processes.
    pub multiprocess: bool,
    /// The process handles one request and exits.
    pub run_once: bool,
}

impl WsgiFlags {
    /// Embedded mode: whether the server runs several processes and several
    /// threads per process. `run_once` is always false.
    pub fn embedded(multiprocess: bool, multithread: bool) -> WsgiFlags {
        WsgiFlags { multithread, multiprocess, run_once: false }
    }

    /// Embedded mode from the MPM's limits, as mod_wsgi reads them: each
    /// flag is set unless the maximum is exactly 1.
    pub fn from_mpm(max_processes: u32, max_threads: u32) -> WsgiFlags {
        WsgiFlags::embedded(max_processes != 1, max_threads != 1)
    }

    /// Daemon mode: `threads != 1` is multithread; giving `processes=` at
    /// all (even 1) is multiprocess; one thread recycled after every request
    /// is run-once.
    pub fn daemon(process: &DaemonProcess) -> WsgiFlags {
        WsgiFlags {
            multithread: process.multithread(),
            multiprocess: process.multiprocess(),
            run_once: process.run_once(),
        }
    }
}

/// Facts about the server and listener a request arrived on; the same for
/// every request on that server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerFacts<'a> {
    /// The host part of the matched server's `ServerName`: `SERVER_NAME`
    /// when the request has no `Host` header.
    pub server_hostname: &'a str,
    /// `DOCUMENT_ROOT` (and `CONTEXT_DOCUMENT_ROOT`).
    pub document_root: &'a str,
    /// `ServerAdmin`; `None` gives [`DEFAULT_SERVER_ADMIN`].
    pub server_admin: Option<&'a str>,
    /// `SERVER_SOFTWARE`, e.g. `Apache/2.4.62 (Debian) mod_wsgi/4.9.4 Python/3.11`.
    pub server_software: &'a str,
    /// The host of the `Listen` address (`""` for a wildcard listener):
    /// `mod_wsgi.listener_host`.
    pub listener_host: &'a str,
    /// The port of the `Listen` address: `mod_wsgi.listener_port`.
    pub listener_port: u16,
}

/// The names mod_wsgi resolved for the request (see [`crate::group`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppNames<'a> {
    /// The expanded process group (`""`: embedded).
    pub process_group: &'a str,
    /// The expanded application group (`""`: main interpreter).
    pub application_group: &'a str,
    /// The callable's name.
    pub callable_object: &'a str,
    /// The handler that took the request: `wsgi-script` for script aliases.
    pub request_handler: &'a str,
    /// The `WSGIHandlerScript` file, or `""`.
    pub handler_script: &'a str,
}

/// Per-request identity, timing and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestStats<'a> {
    /// `mod_wsgi.request_id` (see [`new_request_id`]).
    pub request_id: &'a str,
    /// When the request arrived, in microseconds since the epoch.
    pub request_start_us: u64,
    /// When the application is called, in microseconds since the epoch.
    pub script_start_us: u64,
    /// The number of the request thread in its process (from 1).
    pub thread_id: i64,
    /// Requests this thread handled before this one.
    pub thread_requests: i64,
    /// Requests this process handled before this one.
    pub total_requests: i64,
}

/// The mod_wsgi release whose behaviour this product implements (Debian
/// 12's, which the tests compare against): `mod_wsgi.version` in the
/// environ and in the `mod_wsgi` module, so that applications' checks such
/// as `mod_wsgi.version >= (4, 9)` hold.
pub const MOD_WSGI_VERSION: (i64, i64, i64) = (4, 9, 4);

/// This product's own version (`mod_wsgi.product_version` in the
/// `mod_wsgi` module, and the server banner's).
pub fn product_version() -> (i64, i64, i64) {
    let part = |text: &str| text.parse().unwrap_or(0);
    (
        part(env!("CARGO_PKG_VERSION_MAJOR")),
        part(env!("CARGO_PKG_VERSION_MINOR")),
        part(env!("CARGO_PKG_VERSION_PATCH")),
    )
}

/// The product's part of the server banner and of `SERVER_SOFTWARE`,
/// with the `X.Y` of the Python it embeds: `mod_wsgi-rs/0.1.0 Python/3.11`.
pub fn software_component(python_version: &str) -> String {
    format!("mod_wsgi-rs/{} Python/{python_version}", env!("CARGO_PKG_VERSION"))
}

/// The versions reported in `mod_wsgi.version` and `apache.version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    /// `mod_wsgi.version`.
    pub mod_wsgi: (i64, i64, i64),
    /// `apache.version`; `None` leaves the key out (no Apache in front).
    pub apache: Option<(i64, i64, i64)>,
}

/// What daemon mode adds: the proxying child's connection attempts and the
/// daemon's timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaemonFacts {
    /// Attempts to connect to the daemon socket: `mod_wsgi.daemon_connects`.
    pub connects: i64,
    /// Daemon restarts seen while connecting: `mod_wsgi.daemon_restarts`.
    pub restarts: i64,
    /// When the daemon accepted the request (µs since the epoch).
    pub start_us: u64,
    /// When the child queued the request for the daemon (µs since the epoch).
    pub queue_start_us: u64,
}

/// Everything the environ of one request is built from.
#[derive(Debug, Clone, Copy)]
pub struct EnvironInputs<'a> {
    /// The request.
    pub head: &'a RequestHead,
    /// Where it was routed.
    pub route: &'a RouteMatch,
    /// The settings in effect for it (`Config::settings_for`).
    pub settings: &'a DirSettings,
    /// The alias's or handler script's `pass-authorization=`, which
    /// overrides `settings`.
    pub pass_authorization: Option<bool>,
    /// The router that resolved the request: `PATH_INFO` is mapped through
    /// it for `PATH_TRANSLATED`, as Apache's sub-request does (without it,
    /// or when no alias matches, `PATH_INFO` maps under `DOCUMENT_ROOT`).
    pub router: Option<&'a Router>,
    /// The server and listener.
    pub server: ServerFacts<'a>,
    /// The resolved group and callable names.
    pub names: AppNames<'a>,
    /// `wsgi.multithread`, `wsgi.multiprocess`, `wsgi.run_once`.
    pub flags: WsgiFlags,
    /// Request identity, timing and counters.
    pub stats: RequestStats<'a>,
    /// Versions to report.
    pub versions: Versions,
    /// Daemon-mode facts; `None` in embedded mode.
    pub daemon: Option<DaemonFacts>,
    /// Whether an output filter that may change the body is installed
    /// (Apache: one below the protocol level); `WSGIMapHEADToGET Auto` then
    /// maps HEAD to GET.
    pub content_filters: bool,
}

/// `REQUEST_METHOD` as the application sees it: `WSGIMapHEADToGET` turns
/// HEAD into GET (`On`), or only when a content filter will see the body
/// (`Auto`), so that what the filter computes (a compressed length, say)
/// is the same for HEAD as for GET. Where the directive is not given,
/// nothing is mapped: mod_wsgi documents `Auto` as the default, but
/// Debian's mod_wsgi 4.9.4 maps only when told to (tests/tests/apache_head.rs
/// shows both side by side). Both front ends map here.
pub fn mapped_method<'m>(method: &'m str, settings: &DirSettings, content_filters: bool) -> &'m str {
    match (method, settings.map_head_to_get) {
        ("HEAD", Some(MapHeadToGet::On)) => "GET",
        ("HEAD", Some(MapHeadToGet::Auto)) if content_filters => "GET",
        (method, _) => method,
    }
}

/// Builds the environ of a request (without the interpreter's objects).
///
/// Trusted proxy headers (`WSGITrustedProxyHeaders`) are honoured only when
/// `WSGITrustedProxies` is unset or lists the peer. Whether or not they are
/// honoured, every header of a configured header's category other than the
/// one honoured is removed, so an untrusted peer cannot spoof them:
///
/// | category | headers | effect when honoured |
/// |---|---|---|
/// | client | X-Forwarded-For, X-Client-IP, X-Real-IP | `REMOTE_ADDR` |
/// | host | X-Forwarded-Host, X-Host | `HTTP_HOST` |
/// | server | X-Forwarded-Server | `SERVER_NAME` |
/// | port | X-Forwarded-Port | `SERVER_PORT` |
/// | script name | X-Script-Name, X-Forwarded-Script-Name | `SCRIPT_NAME`, `mod_wsgi.mount_point` |
/// | scheme | X-Forwarded-Proto, X-Forwarded-Scheme, X-Scheme, X-Forwarded-HTTPS, X-Forwarded-SSL, X-HTTPS | `wsgi.url_scheme` |
pub fn build_environ(inputs: &EnvironInputs<'_>) -> Environ {
    let head = inputs.head;
    let settings = inputs.settings;
    let server = &inputs.server;
    let mut env = Environ::for_request();
    env.entries.reserve(head.headers.len());
    // Keys pushed directly are distinct by construction; later rewrites use
    // `Environ::set`.

    let method = environ_text(mapped_method(&head.method, settings, inputs.content_filters));
    let script_name = collapse_slashes(&inputs.route.script_name);
    let path_info = collapse_slashes(&inputs.route.path_info);

    push_str(&mut env, "GATEWAY_INTERFACE", "CGI/1.1");
    push_str(&mut env, "SERVER_PROTOCOL", environ_text(&head.protocol));
    push_str(&mut env, "REQUEST_METHOD", method);
    push_str(&mut env, "QUERY_STRING", head.query().to_string());
    push_str(&mut env, "REQUEST_URI", head.raw_uri.clone());
    push_str(&mut env, "SCRIPT_NAME", script_name.clone());
    push_str(&mut env, "PATH_INFO", path_info.clone());
    if !inputs.route.path_info.is_empty() {
        push_str(&mut env, "PATH_TRANSLATED", path_translated(inputs));
    }

    let headers = header_variables(head);
    let pass_authorization = inputs.pass_authorization.unwrap_or_else(|| settings.effective_pass_authorization());
    for (key, value) in headers.variables {
        env.entries.push((key, EnvValue::Str(value.into())));
    }

    let (host, host_port) = head.header("host").map(parse_host_header).unwrap_or_default();
    push_str(&mut env, "SERVER_SIGNATURE", "");
    push_str(&mut env, "SERVER_SOFTWARE", server.server_software.to_string());
    push_str(&mut env, "SERVER_NAME", server_name_for(&host, server.server_hostname));
    push_str(&mut env, "SERVER_ADDR", ip_text(head.local.ip()));
    push_str(&mut env, "SERVER_PORT", decimal(u64::from(host_port.unwrap_or(head.local.port()))));
    push_str(&mut env, "REMOTE_ADDR", ip_text(head.peer.ip()));
    push_str(&mut env, "DOCUMENT_ROOT", server.document_root.to_string());
    push_str(&mut env, "REQUEST_SCHEME", head.scheme.as_str());
    push_str(&mut env, "CONTEXT_PREFIX", "");
    push_str(&mut env, "CONTEXT_DOCUMENT_ROOT", server.document_root.to_string());
    push_str(
        &mut env,
        "SERVER_ADMIN",
        server.server_admin.map_or(Cow::Borrowed(DEFAULT_SERVER_ADMIN), |admin| Cow::Owned(admin.to_string())),
    );
    push_str(&mut env, "SCRIPT_FILENAME", latin1(inputs.route.script_filename.as_os_str().as_bytes()));
    push_str(&mut env, "REMOTE_PORT", decimal(u64::from(head.peer.port())));
    if pass_authorization {
        if let Some(authorization) = headers.authorization {
            push_str(&mut env, "HTTP_AUTHORIZATION", authorization);
        }
    }
    add_adapter_keys(
        &mut env,
        &AdapterInputs {
            settings,
            peer: head.peer.ip(),
            https: head.scheme == Scheme::Https,
            listener_host: server.listener_host,
            listener_port: server.listener_port,
            names: inputs.names,
            flags: inputs.flags,
            stats: inputs.stats,
            versions: inputs.versions,
            daemon: inputs.daemon,
        },
    );
    env
}

/// What the adapter's own keys (`mod_wsgi.*`, `wsgi.*`) are made from.
#[derive(Debug, Clone, Copy)]
pub struct AdapterInputs<'a> {
    /// The settings in effect for the request.
    pub settings: &'a DirSettings,
    /// The client's address (trusted proxy headers are honoured only from
    /// `WSGITrustedProxies`).
    pub peer: IpAddr,
    /// Whether the connection itself is HTTPS.
    pub https: bool,
    /// The host of the `Listen` address: `mod_wsgi.listener_host`.
    pub listener_host: &'a str,
    /// The port of the `Listen` address: `mod_wsgi.listener_port`.
    pub listener_port: u16,
    /// The resolved group and callable names.
    pub names: AppNames<'a>,
    /// `wsgi.multithread`, `wsgi.multiprocess`, `wsgi.run_once`.
    pub flags: WsgiFlags,
    /// Request identity, timing and counters.
    pub stats: RequestStats<'a>,
    /// Versions to report.
    pub versions: Versions,
    /// Daemon-mode facts; `None` in embedded mode.
    pub daemon: Option<DaemonFacts>,
}

/// Adds what mod_wsgi adds to the CGI variables of a request: the
/// `mod_wsgi.*` and `wsgi.*` keys, after applying `WSGITrustedProxyHeaders`.
/// `env` must hold the CGI variables (`SCRIPT_NAME`, `PATH_INFO`, the
/// `HTTP_*` headers), however the front end produced them.
pub fn add_adapter_keys(env: &mut Environ, inputs: &AdapterInputs<'_>) {
    let settings = inputs.settings;
    let script_name = env.get_str("SCRIPT_NAME").unwrap_or_default().to_string();
    let path_info = env.get_str("PATH_INFO").unwrap_or_default().to_string();
    push_str(env, "mod_wsgi.script_name", script_name);
    push_str(env, "mod_wsgi.path_info", path_info);

    let scheme_override = apply_proxy_headers(env, settings, inputs.peer);
    let https = scheme_override.unwrap_or(inputs.https);

    let names = &inputs.names;
    push_str(env, "mod_wsgi.process_group", environ_text(names.process_group));
    push_str(env, "mod_wsgi.application_group", environ_text(names.application_group));
    push_str(env, "mod_wsgi.callable_object", environ_text(names.callable_object));
    push_str(env, "mod_wsgi.request_handler", environ_text(names.request_handler));
    push_str(env, "mod_wsgi.handler_script", environ_text(names.handler_script));
    push_str(env, "mod_wsgi.script_reloading", flag_text(settings.effective_script_reloading()));
    push_str(env, "mod_wsgi.listener_host", environ_text(inputs.listener_host));
    push_str(env, "mod_wsgi.listener_port", decimal(u64::from(inputs.listener_port)));
    push_str(env, "mod_wsgi.enable_sendfile", flag_text(settings.enable_sendfile.unwrap_or(false)));
    push_str(env, "mod_wsgi.ignore_activity", flag_text(settings.ignore_activity.unwrap_or(false)));
    push_str(env, "mod_wsgi.request_start", decimal(inputs.stats.request_start_us));
    push_str(env, "mod_wsgi.request_id", inputs.stats.request_id.to_string());
    if let Some(daemon) = &inputs.daemon {
        push_str(env, "mod_wsgi.daemon_connects", daemon.connects.to_string());
        push_str(env, "mod_wsgi.daemon_restarts", daemon.restarts.to_string());
        push_str(env, "mod_wsgi.queue_start", decimal(daemon.queue_start_us));
        push_str(env, "mod_wsgi.daemon_start", decimal(daemon.start_us));
    }
    push_str(env, "mod_wsgi.script_start", decimal(inputs.stats.script_start_us));

    push(env, "wsgi.version", EnvValue::Tuple(vec![1, 0]));
    push(env, "wsgi.multithread", EnvValue::Bool(inputs.flags.multithread));
    push(env, "wsgi.multiprocess", EnvValue::Bool(inputs.flags.multiprocess));
    push(env, "wsgi.run_once", EnvValue::Bool(inputs.flags.run_once));
    push_str(env, "wsgi.url_scheme", if https { "https" } else { "http" });
    push(env, "wsgi.input_terminated", EnvValue::Bool(true));
    if let Some((major, minor, patch)) = inputs.versions.apache {
        push(env, "apache.version", EnvValue::Tuple(vec![major, minor, patch]));
    }
    let (major, minor, micro) = inputs.versions.mod_wsgi;
    push(env, "mod_wsgi.version", EnvValue::Tuple(vec![major, minor, micro]));
    push(env, "mod_wsgi.total_requests", EnvValue::Int(inputs.stats.total_requests));
    push(env, "mod_wsgi.thread_id", EnvValue::Int(inputs.stats.thread_id));
    push(env, "mod_wsgi.thread_requests", EnvValue::Int(inputs.stats.thread_requests));
}

fn flag_text(on: bool) -> &'static str {
    if on {
        "1"
    } else {
        "0"
    }
}

/// Adds a key the builder knows to be new (later rewrites use
/// [`Environ::set`]).
fn push(env: &mut Environ, key: &'static str, value: EnvValue) {
    env.entries.push((Cow::Borrowed(key), value));
}

/// Adds a string value under a key the builder knows to be new.
fn push_str(env: &mut Environ, key: &'static str, value: impl Into<Cow<'static, str>>) {
    push(env, key, EnvValue::Str(value.into()));
}

/// `PATH_TRANSLATED`: `PATH_INFO` looked up as a URL of its own, as
/// Apache's sub-request does.
fn path_translated(inputs: &EnvironInputs<'_>) -> String {
    let path_info = &inputs.route.path_info;
    if let Some(router) = inputs.router {
        let bytes = latin1_bytes(path_info);
        if let Some(file) = router.translate(&bytes) {
            return latin1(file.as_os_str().as_bytes());
        }
    }
    let root = inputs.server.document_root;
    format!("{}{path_info}", root.strip_suffix('/').unwrap_or(root))
}

struct HeaderVariables {
    /// `HTTP_*`, `CONTENT_TYPE` and `CONTENT_LENGTH`, in first-arrival order.
    variables: Vec<(Cow<'static, str>, String)>,
    /// The joined `Authorization` values, passed only when allowed.
    authorization: Option<String>,
}

/// Apache's header-to-CGI conversion, after it has joined repeated fields.
fn header_variables(head: &RequestHead) -> HeaderVariables {
    let mut variables: Vec<(Cow<'static, str>, String)> = Vec::with_capacity(head.headers.len());
    let mut authorization: Option<String> = None;
    for (name, value) in &head.headers {
        let Some(key) = http_variable_key(name) else {
            continue;
        };
        let key: Cow<'static, str> = match &*key {
            "HTTP_CONTENT_TYPE" => Cow::Borrowed("CONTENT_TYPE"),
            "HTTP_CONTENT_LENGTH" => Cow::Borrowed("CONTENT_LENGTH"),
            // httpoxy: HTTP_PROXY would configure the application's proxy.
            "HTTP_PROXY" | "HTTP_PROXY_AUTHORIZATION" => continue,
            "HTTP_AUTHORIZATION" => {
                join_value(&mut authorization, value);
                continue;
            }
            _ => key,
        };
        match variables.iter_mut().find(|(k, _)| *k == key) {
            Some((_, joined)) => {
                joined.push_str(", ");
                joined.push_str(value);
            }
            None => variables.push((key, value.clone())),
        }
    }
    if let Some((_, length)) = variables.iter_mut().find(|(key, _)| key == "CONTENT_LENGTH") {
        single_content_length(length);
    }
    HeaderVariables { variables, authorization }
}

/// A Content-Length given more than once (in several fields, or as a list
/// in one), which the body policy (`body::check_body`) accepts when every
/// copy is the same number, reaches the application once, as that number:
/// applications read `CONTENT_LENGTH` with `int()`. Anything else is left
/// as it came.
fn single_content_length(length: &mut String) {
    if !length.contains(',') {
        return;
    }
    let mut values = length.split(',').map(|item| {
        let item = item.trim_matches([' ', '\t']);
        (!item.is_empty() && item.bytes().all(|b| b.is_ascii_digit())).then(|| item.parse::<u64>().ok()).flatten()
    });
    let Some(Some(first)) = values.next() else { return };
    if values.all(|value| value == Some(first)) {
        *length = first.to_string();
    }
}

fn join_value(slot: &mut Option<String>, value: &str) {
    match slot {
        Some(joined) => {
            joined.push_str(", ");
            joined.push_str(value);
        }
        None => *slot = Some(value.to_string()),
    }
}

/// [`http_variable_name`], borrowed from a constant for the fields most
/// requests carry: no allocation, and the WSGI call finds the key's Python
/// string in its cache of constants rather than building one.
pub fn http_variable_key(header: &str) -> Option<Cow<'static, str>> {
    match common_http_variable(header) {
        Some(constant) => Some(Cow::Borrowed(constant)),
        None => http_variable_name(header).map(Cow::Owned),
    }
}

/// The `HTTP_*` name of a common field (any case), looked up among those
/// of its length.
fn common_http_variable(header: &str) -> Option<&'static str> {
    let candidates: &[(&str, &'static str)] = match header.len() {
        4 => &[("host", "HTTP_HOST")],
        6 => &[
            ("accept", "HTTP_ACCEPT"),
            ("cookie", "HTTP_COOKIE"),
            ("origin", "HTTP_ORIGIN"),
            ("pragma", "HTTP_PRAGMA"),
        ],
        7 => &[("referer", "HTTP_REFERER")],
        10 => &[("user-agent", "HTTP_USER_AGENT"), ("connection", "HTTP_CONNECTION")],
        12 => &[("content-type", "HTTP_CONTENT_TYPE")],
        13 => &[
            ("cache-control", "HTTP_CACHE_CONTROL"),
            ("authorization", "HTTP_AUTHORIZATION"),
            ("if-none-match", "HTTP_IF_NONE_MATCH"),
        ],
        14 => &[
            ("content-length", "HTTP_CONTENT_LENGTH"),
            ("sec-fetch-dest", "HTTP_SEC_FETCH_DEST"),
            ("sec-fetch-mode", "HTTP_SEC_FETCH_MODE"),
            ("sec-fetch-site", "HTTP_SEC_FETCH_SITE"),
            ("sec-fetch-user", "HTTP_SEC_FETCH_USER"),
        ],
        15 => &[
            ("accept-encoding", "HTTP_ACCEPT_ENCODING"),
            ("accept-language", "HTTP_ACCEPT_LANGUAGE"),
            ("x-forwarded-for", "HTTP_X_FORWARDED_FOR"),
        ],
        16 => &[("x-requested-with", "HTTP_X_REQUESTED_WITH"), ("x-forwarded-host", "HTTP_X_FORWARDED_HOST")],
        17 => &[("if-modified-since", "HTTP_IF_MODIFIED_SINCE"), ("x-forwarded-proto", "HTTP_X_FORWARDED_PROTO")],
        25 => &[("upgrade-insecure-requests", "HTTP_UPGRADE_INSECURE_REQUESTS")],
        _ => return None,
    };
    candidates.iter().find(|(field, _)| field.eq_ignore_ascii_case(header)).map(|&(_, variable)| variable)
}

/// `HTTP_` + the header name upper-cased with `-` as `_`; `None` for a name
/// with any other character than ASCII letters, digits and `-` (or empty),
/// which Apache and mod_wsgi drop rather than risk two names colliding.
pub fn http_variable_name(header: &str) -> Option<String> {
    if header.is_empty() {
        return None;
    }
    let mut key = String::with_capacity(5 + header.len());
    key.push_str("HTTP_");
    for b in header.bytes() {
        match b {
            b'-' => key.push('_'),
            b if b.is_ascii_alphanumeric() => key.push(char::from(b.to_ascii_uppercase())),
            _ => return None,
        }
    }
    Some(key)
}

/// Splits a `Host` header as Apache does: the host lower-cased, without
/// IPv6 brackets or a trailing dot, and the port when one is given (a port
/// that is not a number from 1 to 65535 is ignored).
pub fn parse_host_header(value: &str) -> (String, Option<u16>) {
    let value = value.trim_matches(|c| c == ' ' || c == '\t');
    let (host, port) = if let Some(bracketed) = value.strip_prefix('[') {
        match bracketed.split_once(']') {
            Some((host, rest)) => (host, rest.strip_prefix(':')),
            None => (bracketed, None),
        }
    } else {
        match value.split_once(':') {
            Some((host, port)) if !port.contains(':') => (host, Some(port)),
            _ => (value, None),
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let port = port.and_then(|p| p.parse::<u16>().ok()).filter(|&p| p != 0);
    (host, port)
}

/// `SERVER_PORT` and the port group names use (`ap_get_server_port` with
/// `UseCanonicalName Off`): the `Host` header's port, else the port the
/// connection arrived on.
pub fn server_port(head: &RequestHead) -> u16 {
    head.header("host").and_then(|h| parse_host_header(h).1).unwrap_or(head.local.port())
}

/// `SERVER_NAME` (`UseCanonicalName Off`): the `Host` header's host, else
/// `server_hostname`; an IPv6 address in brackets; HTML-escaped.
pub fn server_name(head: &RequestHead, server_hostname: &str) -> String {
    let host = head.header("host").map(|h| parse_host_header(h).0).unwrap_or_default();
    server_name_for(&host, server_hostname)
}

fn server_name_for(host: &str, server_hostname: &str) -> String {
    let name = if host.is_empty() { server_hostname } else { host };
    let name = if name.contains(':') { format!("[{name}]") } else { name.to_string() };
    escape_html(&name)
}

fn escape_html(text: &str) -> String {
    if !text.contains(['<', '>', '&', '"']) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// An address as APR prints it: IPv4-mapped IPv6 addresses as IPv4.
fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => ipv4_text(v4),
            None => v6.to_string(),
        },
        IpAddr::V4(v4) => ipv4_text(v4),
    }
}

/// Dotted decimal, as `Ipv4Addr`'s `Display` writes it without width or
/// padding, for a fraction of its cost: every request formats two
/// addresses.
fn ipv4_text(ip: Ipv4Addr) -> String {
    let mut text = String::with_capacity(15);
    for (index, octet) in ip.octets().into_iter().enumerate() {
        if index > 0 {
            text.push('.');
        }
        push_decimal(&mut text, u64::from(octet));
    }
    text
}

/// `n` in decimal, as `to_string` writes it, without the formatting
/// machinery: every request formats ports and times.
fn decimal(n: u64) -> String {
    let mut text = String::with_capacity(20);
    push_decimal(&mut text, n);
    text
}

fn push_decimal(text: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // ASCII digits: pushed as chars, with no UTF-8 check to pay.
    text.extend(digits[start..].iter().map(|&digit| char::from(digit)));
}

/// An address as its `Display` writes it, IPv4 at a fraction of the cost.
pub fn ip_display(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => ipv4_text(v4),
        IpAddr::V6(v6) => v6.to_string(),
    }
}

fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProxyCategory {
    Client,
    Host,
    Server,
    Port,
    ScriptName,
    Scheme,
}

const CATEGORIES: [ProxyCategory; 6] = [
    ProxyCategory::Client,
    ProxyCategory::Host,
    ProxyCategory::Server,
    ProxyCategory::Port,
    ProxyCategory::ScriptName,
    ProxyCategory::Scheme,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProxyEffect {
    ForwardedFor,
    ClientIp,
    Host,
    Server,
    Port,
    ScriptName,
    SchemeName,
    SchemeFlag,
}

/// The trusted proxy headers mod_wsgi knows, by environ key.
const PROXY_HEADERS: [(&str, ProxyCategory, ProxyEffect); 15] = [
    ("HTTP_X_FORWARDED_FOR", ProxyCategory::Client, ProxyEffect::ForwardedFor),
    ("HTTP_X_CLIENT_IP", ProxyCategory::Client, ProxyEffect::ClientIp),
    ("HTTP_X_REAL_IP", ProxyCategory::Client, ProxyEffect::ClientIp),
    ("HTTP_X_FORWARDED_HOST", ProxyCategory::Host, ProxyEffect::Host),
    ("HTTP_X_HOST", ProxyCategory::Host, ProxyEffect::Host),
    ("HTTP_X_FORWARDED_SERVER", ProxyCategory::Server, ProxyEffect::Server),
    ("HTTP_X_FORWARDED_PORT", ProxyCategory::Port, ProxyEffect::Port),
    ("HTTP_X_SCRIPT_NAME", ProxyCategory::ScriptName, ProxyEffect::ScriptName),
    ("HTTP_X_FORWARDED_SCRIPT_NAME", ProxyCategory::ScriptName, ProxyEffect::ScriptName),
    ("HTTP_X_FORWARDED_PROTO", ProxyCategory::Scheme, ProxyEffect::SchemeName),
    ("HTTP_X_FORWARDED_SCHEME", ProxyCategory::Scheme, ProxyEffect::SchemeName),
    ("HTTP_X_SCHEME", ProxyCategory::Scheme, ProxyEffect::SchemeName),
    ("HTTP_X_FORWARDED_HTTPS", ProxyCategory::Scheme, ProxyEffect::SchemeFlag),
    ("HTTP_X_FORWARDED_SSL", ProxyCategory::Scheme, ProxyEffect::SchemeFlag),
    ("HTTP_X_HTTPS", ProxyCategory::Scheme, ProxyEffect::SchemeFlag),
];

fn category_index(category: ProxyCategory) -> usize {
    CATEGORIES.iter().position(|&c| c == category).unwrap_or(0)
}

/// Applies `WSGITrustedProxyHeaders`. Returns the scheme a trusted scheme
/// header settled (`Some(https)`), which then overrides the connection's.
fn apply_proxy_headers(env: &mut Environ, settings: &DirSettings, peer: IpAddr) -> Option<bool> {
    let configured = settings.trusted_proxy_headers.as_ref()?;
    let trusted_proxies = settings.trusted_proxies.as_deref();
    let peer = canonical_ip(peer);
    let trusted_peer = trusted_proxies.is_none_or(|proxies| proxies.iter().any(|subnet| subnet.contains(peer)));

    let mut matched = [false; CATEGORIES.len()];
    let mut honoured: [Option<&'static str>; CATEGORIES.len()] = [None; CATEGORIES.len()];
    let mut https = false;
    for header in configured {
        let Some(key) = http_variable_name(header) else {
            continue;
        };
        let Some(&(name, category, effect)) = PROXY_HEADERS.iter().find(|(name, _, _)| *name == key) else {
            continue;
        };
        let slot = category_index(category);
        matched[slot] = true;
        if !trusted_peer {
            continue;
        }
        let Some(value) = env.get_str(name).map(str::to_string) else {
            continue;
        };
        match effect {
            ProxyEffect::ForwardedFor => forwarded_for(env, &value, trusted_proxies),
            ProxyEffect::ClientIp => env.set_str("REMOTE_ADDR", value),
            ProxyEffect::Host => env.set_str("HTTP_HOST", value),
            ProxyEffect::Server => env.set_str("SERVER_NAME", value),
            ProxyEffect::Port => env.set_str("SERVER_PORT", value),
            ProxyEffect::ScriptName => {
                env.set_str("mod_wsgi.mount_point", value.clone());
                env.set_str("SCRIPT_NAME", value);
            }
            ProxyEffect::SchemeName => {
                if value.eq_ignore_ascii_case("https") {
                    https = true;
                } else if value.eq_ignore_ascii_case("http") {
                    https = false;
                }
            }
            ProxyEffect::SchemeFlag => {
                if ["on", "true", "1"].iter().any(|v| value.eq_ignore_ascii_case(v)) {
                    https = true;
                } else if ["off", "false", "0"].iter().any(|v| value.eq_ignore_ascii_case(v)) {
                    https = false;
                }
            }
        }
        honoured[slot] = Some(name);
    }
    for (slot, &category) in CATEGORIES.iter().enumerate() {
        if !matched[slot] {
            continue;
        }
        for (name, _, _) in PROXY_HEADERS.iter().filter(|(_, c, _)| *c == category) {
            if honoured[slot] != Some(*name) {
                env.remove(name);
            }
        }
    }
    honoured[category_index(ProxyCategory::Scheme)].map(|_| https)
}

/// `X-Forwarded-For`. Without `WSGITrustedProxies` the first address is the
/// client. With it, the list is walked from the right over trusted proxies:
/// the address before the left-most of them is the client, and the header
/// keeps the list from there; with no trusted address at the right end, the
/// last address is the client and the only one kept.
fn forwarded_for(env: &mut Environ, value: &str, trusted_proxies: Option<&[wsgi_config::values::IpSubnet]>) {
    let items: Vec<&str> =
        value.split(',').map(|item| item.trim_matches(is_c_space)).filter(|i| !i.is_empty()).collect();
    let Some(proxies) = trusted_proxies else {
        if let Some(first) = items.first() {
            env.set_str("REMOTE_ADDR", first.to_string());
        }
        return;
    };
    let Some(last) = items.last() else {
        return;
    };
    let mut first_trusted = None;
    for (index, item) in items.iter().enumerate().rev() {
        let Ok(ip) = item.parse::<IpAddr>() else {
            break;
        };
        let ip = canonical_ip(ip);
        if !proxies.iter().any(|subnet| subnet.contains(ip)) {
            break;
        }
        first_trusted = Some(index);
    }
    match first_trusted {
        Some(index) => {
            let client = index.saturating_sub(1);
            env.set_str("REMOTE_ADDR", items[client].to_string());
            env.set_str("HTTP_X_FORWARDED_FOR", items[client..].join(", "));
        }
        None => {
            env.set_str("REMOTE_ADDR", last.to_string());
            env.set_str("HTTP_X_FORWARDED_FOR", last.to_string());
        }
    }
}

fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{b}' | '\u{c}')
}

/// A new `mod_wsgi.request_id`: 16 URL-safe base64 characters from the
/// request time, the process id `pid` and a per-process counter, so ids are
/// unique across the processes and restarts of a server. (The caller
/// passes its process id, known once, rather than asking the kernel for it
/// per request.)
pub fn new_request_id(request_start_us: u64, pid: u32) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut bytes = [0u8; 12];
    bytes[..6].copy_from_slice(&request_start_us.to_be_bytes()[2..]);
    bytes[6..8].copy_from_slice(&(pid as u16).to_be_bytes());
    bytes[8..].copy_from_slice(&counter.to_be_bytes());
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(16);
    for chunk in bytes.chunks(3) {
        let n = u32::from(chunk[0]) << 16 | u32::from(chunk[1]) << 8 | u32::from(chunk[2]);
        for shift in [18, 12, 6, 0] {
            out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
        }
    }
    out
}

/// Microseconds since the Unix epoch now (0 if the clock is before it).
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use wsgi_config::values::IpSubnet;

    fn head(method: &str, uri: &str, headers: &[(&str, &str)]) -> RequestHead {
        RequestHead::for_test(method, uri, headers, "10.0.0.9:40000", "10.0.0.1:8080")
    }

    fn route() -> RouteMatch {
        RouteMatch {
            alias_index: 0,
            script_filename: PathBuf::from("/srv/app.wsgi"),
            script_name: "/app".into(),
            path_info: "/x".into(),
        }
    }

    #[test]
    fn common_fields_borrow_the_name_they_would_build() {
        let fields = [
            "host",
            "accept",
            "cookie",
            "origin",
            "pragma",
            "referer",
            "user-agent",
            "connection",
            "content-type",
            "cache-control",
            "authorization",
            "if-none-match",
            "content-length",
            "sec-fetch-dest",
            "sec-fetch-mode",
            "sec-fetch-site",
            "sec-fetch-user",
            "accept-encoding",
            "accept-language",
            "x-forwarded-for",
            "x-requested-with",
            "x-forwarded-host",
            "if-modified-since",
            "x-forwarded-proto",
            "upgrade-insecure-requests",
        ];
        for field in fields {
            for spelled in [
                field.to_string(),
                field.to_ascii_uppercase(),
                format!("{}{}", field[..1].to_ascii_uppercase(), &field[1..]),
            ] {
                let key = http_variable_key(&spelled);
                assert!(matches!(key, Some(Cow::Borrowed(_))), "{spelled}: {key:?}");
                assert_eq!(key.as_deref(), http_variable_name(&spelled).as_deref(), "{spelled}");
            }
        }
        // Others are built, and bad names still dropped.
        assert_eq!(http_variable_key("X-Custom-Thing"), Some(Cow::Owned("HTTP_X_CUSTOM_THING".to_string())));
        assert_eq!(http_variable_key("hosts"), Some(Cow::Owned("HTTP_HOSTS".to_string())));
        assert_eq!(http_variable_key("ho_t"), None);
        assert_eq!(http_variable_key(""), None);
    }

    fn build(head: &RequestHead, settings: &DirSettings) -> Environ {
        build_with(head, settings, |_| {})
    }

    fn build_with(head: &RequestHead, settings: &DirSettings, tweak: impl FnOnce(&mut EnvironInputs<'_>)) -> Environ {
        build_routed(head, &route(), settings, tweak)
    }

    fn build_routed<'a>(
        head: &'a RequestHead,
        route: &'a RouteMatch,
        settings: &'a DirSettings,
        tweak: impl FnOnce(&mut EnvironInputs<'a>),
    ) -> Environ {
        let mut inputs = EnvironInputs {
            head,
            route,
            settings,
            pass_authorization: None,
            router: None,
            server: ServerFacts {
                server_hostname: "www.example.com",
                document_root: "/var/www/html",
                server_admin: None,
                server_software: "Apache",
                listener_host: "",
                listener_port: 8080,
            },
            names: AppNames {
                process_group: "",
                application_group: "www.example.com:8080|/app",
                callable_object: "application",
                request_handler: "wsgi-script",
                handler_script: "",
            },
            flags: WsgiFlags::embedded(true, true),
            stats: RequestStats {
                request_id: "id",
                request_start_us: 1,
                script_start_us: 2,
                thread_id: 1,
                thread_requests: 0,
                total_requests: 0,
            },
            versions: Versions { mod_wsgi: (4, 9, 4), apache: Some((2, 4, 62)) },
            daemon: None,
            content_filters: false,
        };
        tweak(&mut inputs);
        build_environ(&inputs)
    }

    fn proxy_settings(headers: &[&str], proxies: Option<&[&str]>) -> DirSettings {
        DirSettings {
            trusted_proxy_headers: Some(headers.iter().map(|h| h.to_string()).collect()),
            trusted_proxies: proxies.map(|p| p.iter().map(|s| IpSubnet::parse(s).unwrap()).collect()),
            ..DirSettings::default()
        }
    }

    // Found by the route_environ fuzz target: a Content-Length the body
    // policy accepts as repeated copies of one number reached the
    // application as `5, 5`, which `int()` refuses.
    #[test]
    fn a_repeated_content_length_reaches_the_application_once() {
        for headers in [
            &[("Content-Length", "5, 5")][..],
            &[("Content-Length", "5"), ("content-length", "5")],
            &[("Content-Length", "5,\t005")],
        ] {
            let env = build(&head("POST", "/app", headers), &DirSettings::default());
            assert_eq!(env.get_str("CONTENT_LENGTH"), Some("5"), "{headers:?}");
        }
        // What the body policy refuses is left alone (the request never runs).
        let env = build(&head("POST", "/app", &[("Content-Length", "5, 6")]), &DirSettings::default());
        assert_eq!(env.get_str("CONTENT_LENGTH"), Some("5, 6"));
        let env = build(&head("POST", "/app", &[("Content-Length", "007")]), &DirSettings::default());
        assert_eq!(env.get_str("CONTENT_LENGTH"), Some("007"));
    }

    #[test]
    fn headers_become_cgi_variables() {
        let h = head(
            "POST",
            "/app/x?a=1",
            &[
                ("Host", "Example.COM:81"),
                ("Content-Type", "text/plain"),
                ("content-length", "3"),
                ("X-Multi", "a"),
                ("Accept", "*/*"),
                ("x-multi", "b"),
                ("Bad_Name", "dropped"),
                ("Bad Name", "dropped"),
                ("Proxy", "http://evil"),
                ("Proxy-Authorization", "Basic x"),
                ("Authorization", "Basic y"),
            ],
        );
        let env = build(&h, &DirSettings::default());
        assert_eq!(env.get_str("CONTENT_TYPE"), Some("text/plain"));
        assert_eq!(env.get_str("CONTENT_LENGTH"), Some("3"));
        assert_eq!(env.get_str("HTTP_X_MULTI"), Some("a, b"));
        assert_eq!(env.get_str("HTTP_ACCEPT"), Some("*/*"));
        assert_eq!(env.get_str("HTTP_HOST"), Some("Example.COM:81"));
        assert_eq!(env.get_str("SERVER_NAME"), Some("example.com"));
        assert_eq!(env.get_str("SERVER_PORT"), Some("81"));
        assert_eq!(env.get_str("QUERY_STRING"), Some("a=1"));
        assert_eq!(env.get_str("REQUEST_URI"), Some("/app/x?a=1"));
        for absent in
            ["HTTP_CONTENT_TYPE", "HTTP_BAD_NAME", "HTTP_PROXY", "HTTP_PROXY_AUTHORIZATION", "HTTP_AUTHORIZATION"]
        {
            assert_eq!(env.get(absent), None, "{absent}");
        }
        let keys: Vec<&str> = env.entries.iter().map(|(k, _)| k.as_ref()).collect();
        let position = |k: &str| keys.iter().position(|x| *x == k).unwrap();
        assert!(position("HTTP_HOST") < position("HTTP_X_MULTI") && position("HTTP_X_MULTI") < position("HTTP_ACCEPT"));
    }

    #[test]
    fn authorization_passes_only_when_enabled() {
        let h = head("GET", "/app", &[("Authorization", "Basic a"), ("authorization", "Basic b")]);
        let on = DirSettings { pass_authorization: Some(true), ..DirSettings::default() };
        assert_eq!(build(&h, &on).get_str("HTTP_AUTHORIZATION"), Some("Basic a, Basic b"));
        let alias_off = build_with(&h, &on, |i| i.pass_authorization = Some(false));
        assert_eq!(alias_off.get("HTTP_AUTHORIZATION"), None);
        let alias_on = build_with(&h, &DirSettings::default(), |i| i.pass_authorization = Some(true));
        assert_eq!(alias_on.get_str("HTTP_AUTHORIZATION"), Some("Basic a, Basic b"));
    }

    #[test]
    fn server_name_and_port_fall_back_without_host() {
        let env = build(&head("GET", "/app", &[]), &DirSettings::default());
        assert_eq!(env.get_str("SERVER_NAME"), Some("www.example.com"));
        assert_eq!(env.get_str("SERVER_PORT"), Some("8080"));
        let env = build(&head("GET", "/app", &[("Host", "[::1]:9000")]), &DirSettings::default());
        assert_eq!(env.get_str("SERVER_NAME"), Some("[::1]"));
        assert_eq!(env.get_str("SERVER_PORT"), Some("9000"));
        assert_eq!(parse_host_header("Example.com."), ("example.com".into(), None));
        assert_eq!(parse_host_header("h:0"), ("h".into(), None));
        assert_eq!(parse_host_header("h:x"), ("h".into(), None));
        assert_eq!(parse_host_header("[::1"), ("::1".into(), None));
        assert_eq!(server_name(&head("GET", "/", &[("Host", "a<b")]), "x"), "a&lt;b");
    }

    #[test]
    fn mapped_ipv4_addresses_print_as_ipv4() {
        let mut h = head("GET", "/app", &[]);
        h.peer = "[::ffff:192.0.2.1]:5".parse().unwrap();
        h.local = "[::1]:80".parse().unwrap();
        let env = build(&h, &DirSettings::default());
        assert_eq!(env.get_str("REMOTE_ADDR"), Some("192.0.2.1"));
        assert_eq!(env.get_str("SERVER_ADDR"), Some("::1"));
    }

    #[test]
    fn path_translated_maps_path_info() {
        let env = build(&head("GET", "/app/x", &[]), &DirSettings::default());
        assert_eq!(env.get_str("PATH_TRANSLATED"), Some("/var/www/html/x"));
        let alias = wsgi_config::directives::ScriptAlias::new(
            wsgi_config::directives::UrlPattern::Prefix("/x".into()),
            "/srv/other.wsgi",
        );
        let router = Router::new([&alias], true);
        let (h, r, settings) = (head("GET", "/app/x", &[]), route(), DirSettings::default());
        let env = build_routed(&h, &r, &settings, |i| i.router = Some(&router));
        assert_eq!(env.get_str("PATH_TRANSLATED"), Some("/srv/other.wsgi"));
        let no_path_info = RouteMatch { path_info: String::new(), ..route() };
        let env = build_routed(&head("GET", "/app", &[]), &no_path_info, &DirSettings::default(), |_| {});
        assert_eq!(env.get("PATH_TRANSLATED"), None);
        assert_eq!(env.get_str("PATH_INFO"), Some(""));
    }

    #[test]
    fn head_maps_to_get_as_configured() {
        let h = head("HEAD", "/app", &[]);
        let method = |map, filters| {
            let settings = DirSettings { map_head_to_get: Some(map), ..DirSettings::default() };
            let env = build_with(&h, &settings, |i| i.content_filters = filters);
            env.get_str("REQUEST_METHOD").unwrap().to_string()
        };
        assert_eq!(method(MapHeadToGet::Auto, false), "HEAD");
        assert_eq!(method(MapHeadToGet::Auto, true), "GET");
        assert_eq!(method(MapHeadToGet::On, false), "GET");
        assert_eq!(method(MapHeadToGet::Off, true), "HEAD");
        // Not given: nothing is mapped, as Debian's mod_wsgi 4.9.4 does.
        assert_eq!(mapped_method("HEAD", &DirSettings::default(), true), "HEAD");
    }

    #[test]
    fn https_connection_and_flags() {
        let mut h = head("GET", "/app", &[]);
        h.scheme = Scheme::Https;
        let settings =
            DirSettings { script_reloading: Some(false), enable_sendfile: Some(true), ..DirSettings::default() };
        let env = build(&h, &settings);
        assert_eq!(env.get_str("wsgi.url_scheme"), Some("https"));
        assert_eq!(env.get_str("REQUEST_SCHEME"), Some("https"));
        assert_eq!(env.get_str("mod_wsgi.script_reloading"), Some("0"));
        assert_eq!(env.get_str("mod_wsgi.enable_sendfile"), Some("1"));
        assert_eq!(env.get_str("mod_wsgi.ignore_activity"), Some("0"));
        assert_eq!(env.get("HTTPS"), None);
    }

    #[test]
    fn trusted_proxy_without_proxy_list_trusts_every_peer() {
        let h = head(
            "GET",
            "/app",
            &[
                ("X-Forwarded-For", " , 203.0.113.5, 10.0.0.2"),
                ("X-Real-IP", "198.51.100.1"),
                ("X-Forwarded-Host", "public.example.com"),
                ("X-Forwarded-Proto", "HTTPS"),
                ("X-Forwarded-SSL", "off"),
                ("X-Forwarded-Port", "443"),
                ("X-Forwarded-Server", "front"),
                ("X-Script-Name", "/mount"),
            ],
        );
        let settings = proxy_settings(
            &[
                "X-Forwarded-For",
                "X-Forwarded-Host",
                "X-Forwarded-Proto",
                "X-Forwarded-Port",
                "X-Forwarded-Server",
                "X-Script-Name",
            ],
            None,
        );
        let env = build(&h, &settings);
        assert_eq!(env.get_str("REMOTE_ADDR"), Some("203.0.113.5"));
        assert_eq!(env.get_str("HTTP_X_FORWARDED_FOR"), Some(" , 203.0.113.5, 10.0.0.2"), "kept as sent");
        assert_eq!(env.get("HTTP_X_REAL_IP"), None, "synonym removed");
        assert_eq!(env.get_str("HTTP_HOST"), Some("public.example.com"));
        assert_eq!(env.get_str("wsgi.url_scheme"), Some("https"));
        assert_eq!(env.get("HTTP_X_FORWARDED_SSL"), None);
        assert_eq!(env.get_str("SERVER_PORT"), Some("443"));
        assert_eq!(env.get_str("SERVER_NAME"), Some("front"));
        assert_eq!(env.get_str("SCRIPT_NAME"), Some("/mount"));
        assert_eq!(env.get_str("mod_wsgi.mount_point"), Some("/mount"));
        assert_eq!(env.get_str("mod_wsgi.script_name"), Some("/app"));
    }

    #[test]
    fn untrusted_peer_gets_configured_categories_stripped() {
        let h = head(
            "GET",
            "/app",
            &[
                ("X-Forwarded-For", "203.0.113.5"),
                ("X-Client-IP", "203.0.113.6"),
                ("X-Forwarded-Proto", "https"),
                ("X-Scheme", "https"),
                ("X-Forwarded-Port", "1"),
                ("X-Other", "kept"),
            ],
        );
        let settings =
            proxy_settings(&["X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Port"], Some(&["192.0.2.0/24"]));
        let env = build(&h, &settings);
        assert_eq!(env.get_str("REMOTE_ADDR"), Some("10.0.0.9"));
        assert_eq!(env.get_str("wsgi.url_scheme"), Some("http"));
        assert_eq!(env.get_str("SERVER_PORT"), Some("8080"));
        for gone in [
            "HTTP_X_FORWARDED_FOR",
            "HTTP_X_CLIENT_IP",
            "HTTP_X_FORWARDED_PROTO",
            "HTTP_X_SCHEME",
            "HTTP_X_FORWARDED_PORT",
        ] {
            assert_eq!(env.get(gone), None, "{gone}");
        }
        assert_eq!(env.get_str("HTTP_X_OTHER"), Some("kept"));
    }

    #[test]
    fn forwarded_for_with_trusted_proxies_takes_the_right_most_untrusted() {
        let settings = proxy_settings(&["X-Forwarded-For"], Some(&["10.0.0.0/8"]));
        let remote = |xff: &str| {
            let env = build(&head("GET", "/app", &[("X-Forwarded-For", xff)]), &settings);
            (env.get_str("REMOTE_ADDR").unwrap().to_string(), env.get_str("HTTP_X_FORWARDED_FOR").unwrap().to_string())
        };
        assert_eq!(
            remote("1.1.1.1, 2.2.2.2, 10.0.0.5, 10.0.0.6"),
            ("2.2.2.2".into(), "2.2.2.2, 10.0.0.5, 10.0.0.6".into())
        );
        assert_eq!(remote("1.1.1.1, 2.2.2.2"), ("2.2.2.2".into(), "2.2.2.2".into()));
        assert_eq!(remote("10.0.0.7, 10.0.0.5"), ("10.0.0.7".into(), "10.0.0.7, 10.0.0.5".into()));
        assert_eq!(remote("garbage, 10.0.0.5"), ("garbage".into(), "garbage, 10.0.0.5".into()));
        assert_eq!(remote("1.1.1.1,,10.0.0.5"), ("1.1.1.1".into(), "1.1.1.1, 10.0.0.5".into()));
    }

    #[test]
    fn scheme_header_overrides_the_connection() {
        let mut h = head("GET", "/app", &[("X-Forwarded-Proto", "http")]);
        h.scheme = Scheme::Https;
        let env = build(&h, &proxy_settings(&["X-Forwarded-Proto"], None));
        assert_eq!(env.get_str("wsgi.url_scheme"), Some("http"));
        let env = build(&h, &proxy_settings(&["X-Forwarded-Host"], None));
        assert_eq!(env.get_str("wsgi.url_scheme"), Some("https"));
    }

    #[test]
    fn daemon_keys_and_flags() {
        let h = head("GET", "/app", &[]);
        let daemon = DaemonFacts { connects: 1, restarts: 0, start_us: 30, queue_start_us: 20 };
        let env = build_with(&h, &DirSettings::default(), |i| i.daemon = Some(daemon));
        assert_eq!(env.get_str("mod_wsgi.daemon_connects"), Some("1"));
        assert_eq!(env.get_str("mod_wsgi.daemon_restarts"), Some("0"));
        assert_eq!(env.get_str("mod_wsgi.daemon_start"), Some("30"));
        assert_eq!(env.get_str("mod_wsgi.queue_start"), Some("20"));
        let args: Vec<String> = ["d1", "threads=1", "maximum-requests=1"].iter().map(|s| s.to_string()).collect();
        let process = DaemonProcess::parse(&args).unwrap();
        assert_eq!(WsgiFlags::daemon(&process), WsgiFlags { multithread: false, multiprocess: false, run_once: true });
        assert_eq!(WsgiFlags::from_mpm(1, 25), WsgiFlags { multithread: true, multiprocess: false, run_once: false });
        assert_eq!(WsgiFlags::from_mpm(0, 1), WsgiFlags { multithread: false, multiprocess: true, run_once: false });
    }

    #[test]
    fn keys_are_unique() {
        let h = head("GET", "/app", &[("Host", "h"), ("HOST", "h2"), ("Content-Type", "a"), ("content-type", "b")]);
        let env = build(&h, &DirSettings { pass_authorization: Some(true), ..DirSettings::default() });
        let mut keys: Vec<&str> = env.entries.iter().map(|(k, _)| k.as_ref()).collect();
        let total = keys.len();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), total);
        assert_eq!(env.get_str("HTTP_HOST"), Some("h, h2"));
        assert_eq!(env.get_str("CONTENT_TYPE"), Some("a, b"));
    }

    #[test]
    fn request_ids_are_unique_and_url_safe() {
        let ids: Vec<String> = (0..1000).map(|_| new_request_id(1_795_467_656_572_627, 4242)).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len());
        assert!(ids
            .iter()
            .all(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')));
        assert!(now_us() > 1_600_000_000_000_000);
    }

    #[test]
    fn numbers_and_addresses_are_written_as_display_writes_them() {
        for n in [0u64, 7, 9, 10, 99, 100, 65535, 1_700_000_000_000_000, u64::MAX] {
            assert_eq!(decimal(n), n.to_string());
        }
        for ip in ["0.0.0.0", "127.0.0.1", "192.0.2.10", "255.255.255.255", "10.200.3.45"] {
            let ip: Ipv4Addr = ip.parse().unwrap();
            assert_eq!(ipv4_text(ip), ip.to_string());
        }
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(ip_text(mapped), "192.0.2.1");
        assert_eq!(ip_text("2001:db8::1".parse().unwrap()), "2001:db8::1");
        for ip in ["192.0.2.7", "::ffff:192.0.2.1", "2001:db8::1"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(ip_display(ip), ip.to_string());
        }
    }
}
