//! The seam between front ends and interpreters: what an interpreter is
//! asked to run, and with what.

use std::io::Read;
use std::path::PathBuf;

use crate::environ::Environ;
use crate::response::ResponseWriter;

/// The application a request resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AppTarget {
    /// Absolute path of the WSGI script file.
    pub script: PathBuf,
    /// The name of the callable in the script (`WSGICallableObject`).
    pub callable: String,
    /// The expanded application group; `""` is the main interpreter.
    pub application_group: String,
    /// Reload the script when its modification time changes
    /// (`WSGIScriptReloading`).
    pub reload_on_change: bool,
    /// The script's modification time in microseconds since the epoch, as
    /// the front end has just found it (Apache's `r->finfo`, as mod_wsgi
    /// uses), so that the interpreter need not read the file's status
    /// again; `None`: the interpreter reads it. Daemon processes get it
    /// with the request and use it for their own check.
    pub script_mtime_us: Option<i64>,
}

/// The modification time of the file at `path` in microseconds since the
/// epoch, if it can be read: the precision Apache records, to which every
/// time compared with [`AppTarget::script_mtime_us`] is cut.
pub fn file_mtime_us(path: &std::path::Path) -> Option<i64> {
    let time = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    Some(match time.duration_since(std::time::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_micros()).map_or(i64::MIN, |us| -us),
    })
}

/// Severity of a log line, as Apache's `LogLevel` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// An error (tracebacks, failed requests).
    Error,
    /// Something wrong that did not fail the request.
    Warn,
    /// Normal but noteworthy.
    Info,
    /// Detail for debugging.
    Debug,
}

/// Where `wsgi.errors`, tracebacks and request-level problems go: the host's
/// error log, with the request's context added by the implementation.
pub trait ErrorLog: Sync {
    /// Writes one message (which may span lines).
    fn log(&self, level: LogLevel, message: &str);
}

/// What the front end's TLS layer knows about the connection a request
/// came on. mod_wsgi hands these to access, authentication and group
/// scripts as `environ['mod_ssl.is_https']()` and
/// `environ['mod_ssl.var_lookup'](name)` (Apache's `ssl_is_https` and
/// `ssl_var_lookup`, served by mod_ssl); an interpreter wraps a lookup in
/// those callables for the duration of one call.
///
/// It is used only on the thread serving the request, and only while the
/// request lasts: an implementation may hold a front end's request handle.
pub trait SslLookup {
    /// Whether the connection uses TLS (`false` when the server has no TLS
    /// layer).
    fn is_https(&self) -> bool;

    /// The value of the TLS variable `name` (`HTTPS`, `SSL_PROTOCOL`,
    /// `SSL_CIPHER`, certificate fields, ...), as the TLS layer's bytes;
    /// `None` when the server has no TLS layer or it has no answer (mod_ssl
    /// answers `""` for a variable it does not know). `name` holds no NUL:
    /// the caller ends it at the first, as C would.
    fn var_lookup(&self, name: &[u8]) -> Option<Vec<u8>>;

    /// The variables mod_ssl puts in a secure request's environment: those
    /// it always sets (`SSL_TLS_SNI`); with `standard`, those of
    /// `SSLOptions +StdEnvVars`; with `certificates`, the certificates in
    /// PEM (`+ExportCertData`). None by default, for a front end whose TLS
    /// module sets them itself (Apache's mod_ssl).
    fn environment(&self, standard: bool, certificates: bool) -> Vec<(String, String)> {
        let _ = (standard, certificates);
        Vec::new()
    }
}

/// How a request ended, for the front end's logs and connection handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// The response was produced in full.
    Completed,
    /// The client went away while the response was being written.
    ClientGone,
    /// The application failed; a 500 was sent if the head had not been,
    /// otherwise the response was cut short and the connection must close.
    Failed,
    /// The script could not be loaded (or has no such callable); a 500 was
    /// sent. A daemon process that keeps failing so restarts
    /// (`startup-timeout`).
    NotLoaded,
}

/// What an interpreter supplies: run the application of a resolved route.
///
/// The runner calls the application with `environ` (adding the
/// `wsgi.input`, `wsgi.errors` and `wsgi.file_wrapper` objects), streams
/// `body` to it as `wsgi.input`, and produces the response through
/// `response`, which enforces the response rules. It must call the
/// iterable's `close()` whatever happens.
pub trait WsgiRunner: Send + Sync {
    /// Runs one request to completion.
    fn run(
        &self,
        target: &AppTarget,
        environ: Environ,
        body: &mut dyn Read,
        response: &mut ResponseWriter<'_>,
        log: &dyn ErrorLog,
    ) -> RunOutcome;

    /// Returns once the interpreter can run code (it takes and releases its
    /// lock), blocking while it cannot: a watchdog calls it periodically to
    /// detect a deadlocked interpreter (`deadlock-timeout`). The default
    /// returns at once.
    fn probe(&self) {}

    /// Runs what the applications asked to run when the process stops
    /// (mod_wsgi's `process_stopping` event, its shutdown callbacks, Python's
    /// `atexit` handlers), for a planned stop: `reason` is mod_wsgi's
    /// `shutdown_reason` (`""`, `maximum_requests`, ...). Returns within
    /// `timeout`, or ends the process: a hanging callback never keeps it
    /// alive. The default does nothing.
    fn stop(&self, reason: &str, timeout: std::time::Duration) {
        let _ = (reason, timeout);
    }

    /// Raises mod_wsgi's `RequestTimeout` in the request running on
    /// `thread` (its `pthread_self`) in `application_group`, when it next
    /// runs Python (`interrupt-timeout`). May wait for the interpreter's
    /// lock. Whether an exception was set; the default sets none.
    fn interrupt(&self, thread: u64, application_group: &str) -> bool {
        let _ = (thread, application_group);
        false
    }
}
