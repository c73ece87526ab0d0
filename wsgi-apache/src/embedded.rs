//! Embedded mode: Python in Apache's child processes, requests run on
//! Apache's own threads. The hooks' logic, in safe code over `ffi`.
//!
//! The environ starts from Apache's own CGI variables, to which wsgi-core's
//! adapter keys are added; the names of the groups and callable come from
//! wsgi-core's one rule. Output goes through Apache's filters: a finished
//! main response sends its own end of stream and flushes the connection,
//! so that Apache writes it before looking for the client's next request.

use std::cell::Cell;
use std::ffi::c_int;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};

use wsgi_config::directives::HandlerScript;
use wsgi_core::environ::{environ_key, environ_value};
use wsgi_core::environ_build::{
    add_adapter_keys, new_request_id, now_us, AdapterInputs, AppNames, RequestStats, Versions, WsgiFlags,
};
use wsgi_core::group::{self, GivenNames, GroupContext, ResolvedNames};
use wsgi_core::route::latin1;
use wsgi_core::{AppTarget, EnvValue, Environ, ResponseSink, ResponseWriter, WsgiRunner};
use wsgi_interp::{ApacheFacts, EmbeddedRunner, ProcessFacts, PythonConfig, PythonRuntime, ScriptDispatcher};

use crate::config::{DirConfig, ServerConfig};
use crate::ffi::{self, Level, Pool, Request, RequestLog, Server};

/// The banner component and `SERVER_SOFTWARE` addition, made once: Apache
/// keeps the pointer for the life of the process.
fn version_component() -> &'static std::ffi::CStr {
    static COMPONENT: OnceLock<std::ffi::CString> = OnceLock::new();
    COMPONENT.get_or_init(|| {
        std::ffi::CString::new(wsgi_interp::software_component()).unwrap_or_else(|_| c"mod_wsgi-rs".to_owned())
    })
}

/// The handler names mod_wsgi answers to.
const HANDLERS: [&[u8]; 2] = [b"wsgi-script", b"application/x-httpd-wsgi"];

/// The Python side of one Apache child process.
struct Embedded {
    runner: EmbeddedRunner,
    flags: WsgiFlags,
}

/// Set once in each child by `child_init`; never in the Apache parent.
static EMBEDDED: OnceLock<Embedded> = OnceLock::new();

/// Requests served by this process.
static TOTAL_REQUESTS: AtomicI64 = AtomicI64::new(0);
/// Numbers request threads from 1 in the order they first serve.
static THREADS_SEEN: AtomicI64 = AtomicI64::new(0);

thread_local! {
    /// (thread number, requests this thread served).
    static THREAD_STATS: Cell<(i64, i64)> = const { Cell::new((0, 0)) };
}

/// `post_config`: announce the module in the server banner.
pub(crate) fn post_config(pool: Pool, main: Server) -> c_int {
    ffi::add_version_component(pool, version_component());
    crate::daemon::start_groups(pool, main);
    ffi::OK as c_int
}

/// `check_config`: a Python home of another version stops Apache, with
/// the group named, rather than failing in every child and daemon
/// process. Run under `apachectl configtest` too, which `apachectl
/// graceful` runs first, so a running server is never stopped by it.
pub(crate) fn check_config(main: Server) -> c_int {
    match check_python_homes(main) {
        Ok(()) => ffi::OK as c_int,
        Err(message) => {
            main.log(Level::Error, &format!("mod_wsgi (pid={}): {message}", pid()));
            ffi::HTTP_INTERNAL_SERVER_ERROR as c_int
        }
    }
}

/// wsgi-interp's check of every Python home the configuration names:
/// embedded mode's and each daemon group's, in every server record.
fn check_python_homes(main: Server) -> Result<(), String> {
    let Some(config) = main.config::<ServerConfig>() else { return Ok(()) };
    let mut groups = Vec::new();
    for server in main.and_following() {
        if let Some(server_config) = server.config::<ServerConfig>() {
            groups.extend(server_config.daemon_processes.iter().cloned());
        }
    }
    wsgi_interp::check_homes(&config.global, &groups, &main)
}

/// What Apache's MPM says of its children, as mod_wsgi reports it in
/// embedded mode: threads per child (1 unless threaded), and the children
/// in use so far (else the most it may run); never below 1.
fn mpm_process_facts() -> ProcessFacts {
    let supported = |query| ffi::mpm_query(query).is_some_and(|answer| answer != ffi::AP_MPMQ_NOT_SUPPORTED as i32);
    let threads = if supported(ffi::AP_MPMQ_IS_THREADED) { ffi::mpm_query(ffi::AP_MPMQ_MAX_THREADS) } else { None };
    let processes = if supported(ffi::AP_MPMQ_IS_FORKED) {
        match ffi::mpm_query(ffi::AP_MPMQ_MAX_DAEMON_USED) {
            Some(-1) | None => ffi::mpm_query(ffi::AP_MPMQ_MAX_DAEMONS),
            used => used,
        }
    } else {
        None
    };
    let at_least_one = |n: Option<i32>| n.map_or(1, |n| n.max(1) as u32);
    ProcessFacts {
        process_group: String::new(),
        maximum_processes: at_least_one(processes),
        threads_per_process: at_least_one(threads),
        server_metrics: false,
    }
}

/// The `apache` module's facts, in Apache's children and daemon processes.
pub(crate) fn apache_facts() -> ApacheFacts {
    let mpm = mpm_process_facts();
    let [major, minor, patch] = apache_version();
    ApacheFacts {
        version: (major, minor, patch),
        mpm_name: ffi::mpm_name(),
        description: ffi::server_description(),
        build_date: ffi::server_built(),
        maximum_processes: mpm.maximum_processes,
        threads_per_process: mpm.threads_per_process,
    }
}

/// `child_init`: initialise Python in the child (never in the parent),
/// then preload the `WSGIImportScript`s of embedded mode.
pub(crate) fn child_init(pool: Pool, main: Server) {
    CHILD_PID.store(std::process::id(), std::sync::atomic::Ordering::Relaxed);
    crate::daemon::child_init();
    let Some(config) = main.config::<ServerConfig>() else {
        return;
    };
    if config.global.restrict_embedded == Some(true) {
        return;
    }
    // The home is chosen by wsgi-interp's rule (WSGIPythonHome, else
    // VIRTUAL_ENV, else the installation built against); a home of another
    // Python version is refused, and this child serves no Python.
    let mut python = PythonConfig::from_settings(&config.global);
    // As in mod_wsgi, where the unset flag counts as on: only an explicit
    // `WSGIServerMetrics Off` hides the scoreboard in embedded mode.
    python.process =
        ProcessFacts { server_metrics: config.global.server_metrics != Some(false), ..mpm_process_facts() };
    wsgi_interp::read_scoreboard_with(ffi::scoreboard);
    python.apache = Some(apache_facts());
    python.interpreter_options = config.interpreter_options.clone();
    match python.python_home() {
        Ok(home) => main.log(Level::Info, &format!("mod_wsgi (pid={}): Python home {home}.", pid())),
        Err(e) => {
            main.log(Level::Error, &format!("mod_wsgi (pid={}): cannot initialise Python: {e}", pid()));
            return;
        }
    }
    let runtime = match PythonRuntime::initialize(python) {
        Ok(runtime) => runtime,
        Err(e) => {
            main.log(Level::Error, &format!("mod_wsgi (pid={}): cannot initialise Python: {e}", pid()));
            return;
        }
    };
    pool.on_cleanup(child_exit);
    let max_daemons = ffi::mpm_query(ffi::AP_MPMQ_MAX_DAEMONS).unwrap_or(1);
    let max_threads = ffi::mpm_query(ffi::AP_MPMQ_MAX_THREADS).unwrap_or(1);
    let flags = WsgiFlags::from_mpm(max_daemons.max(0) as u32, max_threads.max(0) as u32);
    let embedded = EMBEDDED.get_or_init(|| Embedded { runner: EmbeddedRunner::new(Arc::clone(&runtime)), flags });
    embedded.runner.preload_all(&crate::config::preloads(main, ""), &main);
    main.log(Level::Info, &format!("mod_wsgi (pid={}): Python initialised in this child.", pid()));
}

/// How long an embedded child's shutdown callbacks and atexit handlers
/// may run (daemon processes have `shutdown-timeout=`; this is its
/// default).
const EMBEDDED_SHUTDOWN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

unsafe extern "C" fn child_exit(_data: *mut std::ffi::c_void) -> ffi::apr_status_t {
    ffi::guard((), || {
        // A threaded MPM's child exits from its main thread, which runs no
        // requests. prefork's exits on the thread that serves them, from
        // its SIGTERM handler on a stop: the shutdown code runs there
        // unless the signal interrupted Python on that thread, as
        // mod_wsgi's does.
        let threaded =
            ffi::mpm_query(ffi::AP_MPMQ_IS_THREADED).is_some_and(|answer| answer != ffi::AP_MPMQ_NOT_SUPPORTED as i32);
        if let Some(embedded) = EMBEDDED.get() {
            if threaded || !PythonRuntime::this_thread_is_in_python() {
                embedded.runner.stop("", EMBEDDED_SHUTDOWN_TIMEOUT);
            }
        }
        // Threads ending from here on must not wait for the GIL.
        PythonRuntime::prepare_for_exit();
    });
    ffi::APR_SUCCESS as ffi::apr_status_t
}

pub(crate) fn pid() -> u32 {
    match CHILD_PID.load(std::sync::atomic::Ordering::Relaxed) {
        0 => std::process::id(),
        pid => pid,
    }
}

/// This child's process id, set by child_init (after the fork): asked of
/// the kernel once rather than per request. Zero in the parent, whose value
/// a forked child must never inherit.
static CHILD_PID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// `apache.version`: the Apache headers the module was built against.
pub(crate) fn apache_version() -> [i64; 3] {
    [
        i64::from(ffi::AP_SERVER_MAJORVERSION_NUMBER),
        i64::from(ffi::AP_SERVER_MINORVERSION_NUMBER),
        i64::from(ffi::AP_SERVER_PATCHLEVEL_NUMBER),
    ]
}

/// The runner of this child's Python, once `child_init` made it.
pub(crate) fn runner() -> Option<&'static EmbeddedRunner> {
    EMBEDDED.get().map(|embedded| &embedded.runner)
}

/// `translate_name`: map a URL under a WSGIScriptAlias to its script, as
/// mod_wsgi does, marking the request for the `wsgi-script` handler.
pub(crate) fn translate_name(request: &mut Request) -> c_int {
    let declined = ffi::DECLINED as c_int;
    let Some(server) = request.server_config::<ServerConfig>() else {
        return declined;
    };
    if server.script_aliases.is_empty() {
        return declined;
    }
    let uri = request.uri();
    if !uri.starts_with(b"/") {
        return declined;
    }
    let Some(split) = server.router().split_path(uri) else {
        return declined;
    };
    let Some(alias) = server.script_aliases.get(split.alias_index) else {
        return declined;
    };
    if let Some(confine) = &split.confine {
        // A pattern alias chose the script from the URL: it must stay in the
        // directory the configuration named.
        if !split.target.starts_with(confine) || split.target.components().any(|c| c.as_os_str() == "..") {
            return ffi::HTTP_NOT_FOUND as c_int;
        }
    }
    let filename = split.filename();
    request.set_filename(filename.as_os_str().as_bytes());
    request.set_handler(c"wsgi-script");
    request.set_note(c"alias-forced-type", b"wsgi-script");
    if let Some(group) = &alias.process_group {
        request.set_note(c"mod_wsgi.process_group", group.as_bytes());
    }
    if let Some(group) = &alias.application_group {
        request.set_note(c"mod_wsgi.application_group", group.as_bytes());
    }
    if let Some(callable) = &alias.callable_object {
        request.set_note(c"mod_wsgi.callable_object", callable.as_bytes());
    }
    if let Some(flag) = alias.pass_authorization {
        request.set_note(c"mod_wsgi.pass_authorization", if flag { b"1" } else { b"0" });
    }
    ffi::OK as c_int
}

/// What took the request: a script mapped to the `wsgi-script` handler, or
/// a `WSGIHandlerScript` named by the handler.
enum HandlerKind {
    Script,
    HandlerScript(HandlerScript),
}

impl HandlerKind {
    fn handler_script(&self) -> Option<&HandlerScript> {
        match self {
            HandlerKind::HandlerScript(script) => Some(script),
            HandlerKind::Script => None,
        }
    }
}

/// The content handler for `wsgi-script`, `application/x-httpd-wsgi` and
/// the `WSGIHandlerScript` names.
pub(crate) fn handler(request: &mut Request) -> c_int {
    // The merged settings live in a pool at least as long as the request.
    let no_settings = wsgi_config::DirSettings::default();
    let settings = request.dir_config::<DirConfig>().map_or(&no_settings, |d| &d.settings);
    let Some((kind, handler_name)) = handler_kind(request, settings) else {
        return ffi::DECLINED as c_int;
    };
    if let Err(status) = check_target(request, &kind) {
        return status;
    }
    if let Err(status) = request.setup_body(settings.effective_chunked_request()) {
        return status;
    }
    let embedded = EMBEDDED.get();
    let mut env = request_environ(request, settings, &kind);
    let facts = GroupFacts::of(request, &env);
    let env_lookup = |name: &str| env_variable(request, name);
    let ctx = facts.context(&env_lookup);
    let mut names = resolve_names(request, settings, &kind, &ctx);
    add_module_keys(request, &mut env, settings, &names, &handler_name, &kind);
    if let Some(dispatch) = &settings.dispatch_script {
        let Some(embedded) = embedded else {
            request.log(
                Level::Error,
                &format!("mod_wsgi (pid={}): WSGIDispatchScript needs Python in this process.", pid()),
            );
            return ffi::HTTP_INTERNAL_SERVER_ERROR as c_int;
        };
        let log = RequestLog::new(request);
        let dispatcher = ScriptDispatcher::new(&embedded.runner, &log);
        if let Err(status) = group::run_dispatch_script(&dispatcher, dispatch, settings, &ctx, &mut env, &mut names) {
            return c_int::from(status);
        }
    }
    let process_group = std::mem::take(&mut names.process_group);
    let target = app_target(request, &kind, names, settings);
    if !process_group.is_empty() {
        return crate::daemon::forward(request, &process_group, target, env, settings);
    }
    let Some(embedded) = embedded else {
        request.log(
            Level::Error,
            &format!(
                "mod_wsgi (pid={}): Embedded mode of mod_wsgi disabled by runtime configuration: {}",
                pid(),
                latin1(request.filename())
            ),
        );
        return ffi::HTTP_INTERNAL_SERVER_ERROR as c_int;
    };
    run_embedded(request, embedded, &target, env)
}

/// Which handler took the request (`None`: not ours), and its name.
fn handler_kind(request: &Request, settings: &wsgi_config::DirSettings) -> Option<(HandlerKind, String)> {
    let handler = request.handler()?;
    let name = latin1(handler);
    if HANDLERS.contains(&handler) {
        return Some((HandlerKind::Script, name));
    }
    let script = settings.handler_scripts.get(&name)?.clone();
    Some((HandlerKind::HandlerScript(script), name))
}

/// mod_wsgi's checks of the file a script request maps to, and of its
/// path info: the status to answer when one fails.
fn check_target(request: &Request, kind: &HandlerKind) -> Result<(), c_int> {
    if let HandlerKind::Script = kind {
        let filename = latin1(request.filename());
        let aliased = request.note(c"alias-forced-type").is_some();
        if !aliased && !request.allows_exec_cgi() {
            request.log(Level::Error, &format!("Options ExecCGI is off in this directory: {filename}"));
            return Err(ffi::HTTP_FORBIDDEN as c_int);
        }
        match request.file_kind() {
            ffi::FileKind::Missing => {
                request.log(Level::Error, &format!("Target WSGI script not found or unable to stat: {filename}"));
                return Err(ffi::HTTP_NOT_FOUND as c_int);
            }
            ffi::FileKind::Directory => {
                request.log(Level::Error, &format!("Attempt to invoke directory as WSGI application: {filename}"));
                return Err(ffi::HTTP_FORBIDDEN as c_int);
            }
            ffi::FileKind::Other => {}
        }
    }
    if request.rejects_path_info() && !request.path_info().is_empty() {
        return Err(ffi::HTTP_NOT_FOUND as c_int);
    }
    Ok(())
}

/// The environ from Apache's own CGI variables: without the server's
/// `PATH`, with `PATH_INFO` always, and the credentials only where
/// `WSGIPassAuthorization` says so.
fn request_environ(request: &mut Request, settings: &wsgi_config::DirSettings, kind: &HandlerKind) -> Environ {
    let mut env = Environ::for_request();
    request.cgi_variables(|key, value| {
        // mod_wsgi passes neither the server's PATH nor (unless
        // WSGIPassAuthorization) the credentials Apache may have added.
        if key == b"PATH" || key == b"HTTP_AUTHORIZATION" {
            return;
        }
        env.entries.push((environ_key(key), EnvValue::Str(environ_value(value))));
    });
    // Apache leaves PATH_INFO out when it is empty; WSGI always has it.
    if env.get("PATH_INFO").is_none() {
        env.set_str("PATH_INFO", "");
    }
    if env.get_str("REQUEST_METHOD") == Some("HEAD") {
        let method = wsgi_core::environ_build::mapped_method("HEAD", settings, request.has_content_filters());
        env.set_str("REQUEST_METHOD", method);
    }
    let pass_authorization = match request.note(c"mod_wsgi.pass_authorization") {
        Some(flag) => flag == b"1",
        None => kind
            .handler_script()
            .and_then(|h| h.pass_authorization)
            .unwrap_or_else(|| settings.effective_pass_authorization()),
    };
    if pass_authorization {
        let mut values: Vec<String> = Vec::new();
        request.headers_in(|name, value| {
            if name.eq_ignore_ascii_case(b"authorization") {
                values.push(latin1(value));
            }
        });
        if !values.is_empty() {
            env.set_str("HTTP_AUTHORIZATION", values.join(", "));
        }
    }
    env
}

/// What group names expand with (`%{SERVER}`, `%{HOST}`, `%{RESOURCE}`),
/// taken from the request once.
struct GroupFacts {
    hostname: String,
    host_header: Option<String>,
    script_name: String,
    port: u16,
    case_sensitive: bool,
}

impl GroupFacts {
    fn of(request: &Request, env: &Environ) -> GroupFacts {
        GroupFacts {
            hostname: latin1(request.server_hostname()),
            host_header: env.get_str("HTTP_HOST").map(str::to_string),
            script_name: env.get_str("SCRIPT_NAME").unwrap_or_default().to_string(),
            port: request.server_port(),
            case_sensitive: request
                .server_config::<ServerConfig>()
                .and_then(|s| s.global.case_sensitivity)
                .unwrap_or(true),
        }
    }

    fn context<'a>(&'a self, env: &'a dyn Fn(&str) -> Option<String>) -> GroupContext<'a> {
        GroupContext {
            server_hostname: &self.hostname,
            port: self.port,
            request_host: self.host_header.as_deref(),
            script_name: &self.script_name,
            case_sensitive: self.case_sensitive,
            env,
        }
    }
}

/// `%{ENV:NAME}`: the request notes, then the request's environment
/// (SetEnv), then the process's, as mod_wsgi looks them up.
fn env_variable(request: &Request, name: &str) -> Option<String> {
    let key = std::ffi::CString::new(name).ok()?;
    request.note(&key).or_else(|| request.env_var(&key)).map(latin1).or_else(|| std::env::var(name).ok())
}

/// The request's groups and callable: the script alias's options (which
/// translate_name left in notes) or the handler script's, else the
/// directory's settings, resolved by wsgi-core's one rule.
fn resolve_names(
    request: &Request,
    settings: &wsgi_config::DirSettings,
    kind: &HandlerKind,
    ctx: &GroupContext<'_>,
) -> ResolvedNames {
    let note = |key: &std::ffi::CStr| request.note(key).map(latin1);
    let handler_script = kind.handler_script();
    let process_group =
        note(c"mod_wsgi.process_group").or_else(|| handler_script.and_then(|h| h.process_group.clone()));
    let application_group =
        note(c"mod_wsgi.application_group").or_else(|| handler_script.and_then(|h| h.application_group.clone()));
    let callable = match kind {
        HandlerKind::HandlerScript(_) => Some("handle_request".to_string()),
        HandlerKind::Script => note(c"mod_wsgi.callable_object"),
    };
    let given = GivenNames {
        process_group: process_group.as_deref(),
        application_group: application_group.as_deref(),
        callable_object: callable.as_deref(),
    };
    group::resolve_names(given, settings, ctx)
}

/// The keys mod_wsgi adds to Apache's variables: WSGI's, the request's
/// names, ids and counters, and the versions.
fn add_module_keys(
    request: &Request,
    env: &mut Environ,
    settings: &wsgi_config::DirSettings,
    names: &ResolvedNames,
    handler_name: &str,
    kind: &HandlerKind,
) {
    let request_start_us = request.request_time_us();
    let (thread_id, thread_requests) = THREAD_STATS.with(|stats| {
        let (mut id, served) = stats.get();
        if id == 0 {
            id = THREADS_SEEN.fetch_add(1, Ordering::Relaxed) + 1;
        }
        stats.set((id, served + 1));
        (id, served)
    });
    let total_requests = TOTAL_REQUESTS.fetch_add(1, Ordering::Relaxed);
    let request_id = request.log_id().map(latin1).unwrap_or_else(|| new_request_id(request_start_us, pid()));
    let (listener_host, listener_port) = request.listener();
    let peer = latin1(request.client_ip()).parse().unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
    // mod_wsgi turns HTTPS ("on" from mod_ssl, or "1") into
    // wsgi.url_scheme and leaves it out; a connection mod_ssl's
    // ssl_is_https calls TLS is HTTPS whatever the variable says.
    let https = matches!(env.remove("HTTPS"), Some(EnvValue::Str(v)) if v.eq_ignore_ascii_case("on") || v == "1")
        || request.ssl_is_https() == Some(true);
    let handler_script = kind.handler_script().map(|h| h.path.display().to_string()).unwrap_or_default();
    let [major, minor, patch] = apache_version();
    add_adapter_keys(
        env,
        &AdapterInputs {
            settings,
            peer,
            https,
            listener_host: &listener_host,
            listener_port,
            names: AppNames {
                process_group: &names.process_group,
                application_group: &names.application_group,
                callable_object: &names.callable,
                request_handler: handler_name,
                handler_script: &handler_script,
            },
            flags: EMBEDDED.get().map(|e| e.flags).unwrap_or_default(),
            stats: RequestStats {
                request_id: &request_id,
                request_start_us,
                script_start_us: now_us(),
                thread_id,
                thread_requests,
                total_requests,
            },
            versions: Versions {
                mod_wsgi: wsgi_core::environ_build::MOD_WSGI_VERSION,
                apache: Some((major, minor, patch)),
            },
            daemon: None,
        },
    );
    // Made when something logged about the connection (mod_ssl does).
    if let Some(id) = request.connection_log_id() {
        env.set_str("mod_wsgi.connection_id", latin1(id));
    }
}

/// What runs: the script and its modification time as Apache read it (its
/// r->finfo, which mod_wsgi's reload check uses), or the handler script.
fn app_target(
    request: &Request,
    kind: &HandlerKind,
    names: ResolvedNames,
    settings: &wsgi_config::DirSettings,
) -> AppTarget {
    let (script, script_mtime_us) = match kind {
        HandlerKind::HandlerScript(script) => (script.path.clone(), None),
        HandlerKind::Script => (PathBuf::from(OsStr::from_bytes(request.filename())), request.file_mtime_us()),
    };
    AppTarget {
        script,
        callable: names.callable,
        application_group: names.application_group,
        reload_on_change: settings.effective_script_reloading(),
        script_mtime_us,
    }
}

/// Runs the application in this child's Python, reading the body from and
/// writing the response to Apache's filters.
fn run_embedded(request: &mut Request, embedded: &Embedded, target: &AppTarget, env: Environ) -> c_int {
    let log = RequestLog::new(request);
    // A HEAD that WSGIMapHEADToGET made a GET sends its body down Apache's
    // filters, which see it whole; Apache drops it after them.
    let head_only = env.get_str("REQUEST_METHOD") == Some("HEAD");
    // The body is read through the same request the response is written
    // to; the two never run at once (one thread per request).
    let sendfile = env.get_str("mod_wsgi.enable_sendfile") == Some("1");
    let mut input = request.body_reader();
    let mut sink = ApacheSink::new(request);
    sink.sendfile = sendfile;
    let mut writer = ResponseWriter::new(&mut sink, head_only);
    embedded.runner.run(target, env, &mut input, &mut writer, &log);
    drop(writer);
    sink.handler_status()
}

/// Writes the response through Apache's output filters.
pub(crate) struct ApacheSink<'r> {
    request: &'r Request,
    /// An error the application's failure left for Apache to answer (with
    /// its own page or `ErrorDocument`).
    error_status: Option<u16>,
    /// Body bytes written since the last flush that Apache may still hold
    /// (in `ap_rwrite`'s buffer or set aside by the core output filter),
    /// or [`CORE_BUFFER_LIMIT`] when that is not known to be below it.
    buffered: usize,
    /// `WSGIEnableSendfile On`: files go out with `sendfile`.
    pub(crate) sendfile: bool,
    /// `WSGIErrorOverride On` (daemon mode): an error status from the
    /// application is answered with Apache's own page (or `ErrorDocument`),
    /// the application's body discarded.
    pub(crate) error_override: bool,
    /// The application's error response is being discarded.
    overridden: bool,
    /// The client socket's timeout before `set_write_timeout` changed it.
    saved_timeout: Option<std::time::Duration>,
}

/// How much body Apache holds in memory without writing to the client in
/// a way that can wait for it: the core output filter sets data aside, or
/// writes it without blocking, until it holds THRESHOLD_MAX_BUFFER (64
/// KiB) in memory buckets; only beyond, or for a flush, does it block on
/// a slow client. Kept below that with a margin for headers.
const CORE_BUFFER_LIMIT: usize = 60 * 1024;

impl<'r> ApacheSink<'r> {
    /// A sink writing to `request`'s response.
    pub(crate) fn new(request: &'r Request) -> ApacheSink<'r> {
        ApacheSink {
            request,
            error_status: None,
            buffered: 0,
            sendfile: false,
            error_override: false,
            overridden: false,
            saved_timeout: None,
        }
    }
}

impl ApacheSink<'_> {
    /// What the handler returns once the response is written: an error
    /// status the application's failure left for Apache to answer (with
    /// its page or `ErrorDocument`), else OK.
    /// Gives the client connection back its own timeout, after a response
    /// that set another (mod_wsgi restores it, for the connection's next
    /// requests).
    pub(crate) fn restore_client_timeout(&mut self) {
        if let Some(timeout) = self.saved_timeout.take() {
            self.request.set_client_timeout(timeout);
        }
    }

    pub(crate) fn handler_status(&self) -> c_int {
        match self.error_status {
            Some(status) => c_int::from(status),
            None => ffi::OK as c_int,
        }
    }
}

impl ResponseSink for ApacheSink<'_> {
    fn send_head(&mut self, status: u16, reason: &str, headers: &[(String, String)]) -> io::Result<()> {
        if self.error_override && status >= 400 {
            self.error_status = Some(status);
            self.overridden = true;
            return Ok(());
        }
        let line = format!("{status} {reason}");
        self.request.set_status(status, &wsgi_core::route::latin1_bytes(&line));
        for (name, value) in headers {
            self.request.add_header(&wsgi_core::route::latin1_bytes(name), &wsgi_core::route::latin1_bytes(value));
        }
        Ok(())
    }

    fn send_body(&mut self, chunk: &[u8]) -> io::Result<()> {
        if self.overridden {
            return Ok(());
        }
        // Past the limit the filters may have written, and may still hold
        // up to the limit: from then on every write counts as blocking.
        self.buffered = (self.buffered + chunk.len()).min(CORE_BUFFER_LIMIT);
        self.request.write(chunk)
    }

    fn send_file(&mut self, file: &File, offset: u64, len: u64) -> io::Result<u64> {
        if self.overridden {
            return Ok(len);
        }
        // The file goes with a flush: nothing is held after it.
        self.buffered = 0;
        self.request.send_file(file.as_raw_fd(), offset, len, self.sendfile)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.overridden {
            return Ok(());
        }
        self.buffered = 0;
        self.request.flush()
    }

    fn finish(&mut self) -> io::Result<()> {
        // An overridden response is Apache's to make, once the handler
        // returns its status.
        if self.overridden {
            return Ok(());
        }
        self.request.end_response()
    }

    fn is_closed(&self) -> bool {
        self.request.connection_aborted()
    }

    fn may_block(&self, len: usize) -> bool {
        // A write Apache keeps in memory never waits for the client: the
        // interpreter keeps its lock for it. A flush (len 0), or a write
        // that takes Apache past its in-memory limit, may block on a slow
        // client.
        len == 0 || self.buffered + len >= CORE_BUFFER_LIMIT
    }

    fn set_write_timeout(&mut self, timeout: std::time::Duration) {
        let previous = self.request.set_client_timeout(timeout);
        if self.saved_timeout.is_none() {
            self.saved_timeout = previous;
        }
    }

    fn error_response(&mut self, status: u16) -> io::Result<bool> {
        self.error_status = Some(status);
        Ok(true)
    }
}
