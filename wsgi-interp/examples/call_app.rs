//! Calls a WSGI application in-process from Rust: no HTTP, no sockets.
//!
//! ```text
//! cargo run -p wsgi-interp --example call_app -- [SCRIPT [URI]]
//! ```
//!
//! `SCRIPT` is a WSGI script file defining `application` (without one, a
//! small application that echoes its environ is written to a temporary
//! directory); `URI` is the request target, `/hello?x=1` by default. The
//! example prints the response's status line, its headers, an empty line
//! and its body, as an HTTP/1.1 response would carry them.
//!
//! It uses the public API of the library crates the way a front end does,
//! minus the network:
//!
//! 1. `wsgi_config` reads a one-line configuration, `WSGIScriptAlias /
//!    SCRIPT`, into the typed model (any mod_wsgi directive could follow);
//! 2. `wsgi_interp::PythonRuntime::initialize` starts the embedded Python
//!    from that model's process-wide settings, and
//!    `wsgi_interp::EmbeddedRunner` is the `wsgi_core::WsgiRunner` that
//!    loads scripts and calls their applications;
//! 3. `wsgi_core::pipeline::Site::dispatch` routes a `wsgi_core::RequestHead`
//!    made up here (the request line and headers a server would have read)
//!    and builds its environ key for key as mod_wsgi does
//!    (`wsgi_core::environ_build`);
//! 4. `WsgiRunner::run` calls the application, with the response going
//!    through `wsgi_core::ResponseWriter` (`start_response` checks,
//!    Content-Length, the 500 page on failure) into a `ResponseSink` that
//!    keeps it in memory.
//!
//! The application's `wsgi.errors` output and tracebacks go to standard
//! error.

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wsgi_config::tree::ReadOptions;
use wsgi_core::environ_build::{new_request_id, RequestStats, Versions, MOD_WSGI_VERSION};
use wsgi_core::pipeline::{Dispatch, Site, SiteOptions};
use wsgi_core::{
    ErrorLog, LogLevel, RequestHead, ResponseSink, ResponseWriter, RunOutcome, Scheme, WsgiFlags, WsgiRunner,
};
use wsgi_interp::{EmbeddedRunner, PythonConfig, PythonRuntime};

/// The application run when no script is given: it answers with a few
/// environ values and the sum of the query's numeric values, computed by
/// Python.
const DEFAULT_APP: &str = r#"
from urllib.parse import parse_qsl

def application(environ, start_response):
    query = parse_qsl(environ['QUERY_STRING'])
    total = sum(int(value) for name, value in query if value.isdigit())
    lines = [
        'method: %s' % environ['REQUEST_METHOD'],
        'path: %s' % environ['PATH_INFO'],
        'query: %s' % environ['QUERY_STRING'],
        'sum: %d' % total,
        'server: %s' % environ['SERVER_SOFTWARE'],
    ]
    body = ('\n'.join(lines) + '\n').encode('utf-8')
    start_response('200 OK', [('Content-Type', 'text/plain; charset=utf-8'),
                              ('Content-Length', str(len(body)))])
    return [body]
"#;

/// A response kept in memory: what a front end would send to its client.
#[derive(Default)]
struct CapturedResponse {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl ResponseSink for CapturedResponse {
    fn send_head(&mut self, status: u16, reason: &str, headers: &[(String, String)]) -> io::Result<()> {
        self.status = status;
        self.reason = reason.to_string();
        self.headers = headers.to_vec();
        Ok(())
    }

    fn send_body(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.body.extend_from_slice(chunk);
        Ok(())
    }

    /// Writes only append to memory: the interpreter may keep its lock.
    fn may_block(&self, _len: usize) -> bool {
        false
    }
}

/// The error log: standard error, one line per message, with its level.
struct StderrLog;

impl ErrorLog for StderrLog {
    fn log(&self, level: LogLevel, message: &str) {
        eprintln!("[{level:?}] {message}");
    }
}

/// The script given on the command line, or the default application
/// written to `scratch` (which the caller removes).
fn script_path(given: Option<String>, scratch: &Path) -> io::Result<PathBuf> {
    match given {
        Some(path) => std::fs::canonicalize(path),
        None => {
            std::fs::create_dir_all(scratch)?;
            let path = scratch.join("app.wsgi");
            std::fs::write(&path, DEFAULT_APP)?;
            Ok(path)
        }
    }
}

/// The request a server would have read from its client: `GET uri` with
/// a `Host` header, between two made-up loopback addresses.
fn request_head(uri: &str) -> RequestHead {
    RequestHead {
        method: "GET".into(),
        raw_uri: uri.into(),
        protocol: "HTTP/1.1".into(),
        headers: vec![("Host".into(), "localhost".into()), ("User-Agent".into(), "call_app".into())],
        peer: "127.0.0.1:50000".parse().expect("a socket address"),
        local: "127.0.0.1:80".parse().expect("a socket address"),
        scheme: Scheme::Http,
    }
}

/// Runs the request `uri` against the application of `script` and prints
/// the response; the outcome decides the exit status.
fn call(script: &Path, uri: &str) -> Result<RunOutcome, String> {
    // 1. The configuration, exactly as a server would read it from a file.
    let text = format!("WSGIScriptAlias / \"{}\"\n", script.display());
    let config = wsgi_config::load_str(&text, Path::new("call_app.conf"), &ReadOptions::standalone("/"))
        .map_err(|errors| errors.to_string())?;

    // 2. Python, from the configuration's process-wide settings.
    let runtime = PythonRuntime::initialize(PythonConfig::from_settings(&config.global)).map_err(|e| e.to_string())?;
    let runner = EmbeddedRunner::new(runtime);

    // 3. Route the request and build its environ.
    let document_root = script.parent().unwrap_or(Path::new("/")).display().to_string();
    let site = Site::new(
        config,
        SiteOptions {
            server_software: wsgi_interp::software_component(),
            flags: WsgiFlags::embedded(false, false),
            versions: Versions { mod_wsgi: MOD_WSGI_VERSION, apache: None },
            default_document_root: document_root,
        },
    );
    let now_us = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
    let request_id = new_request_id(now_us, std::process::id());
    let stats = RequestStats {
        request_id: &request_id,
        request_start_us: now_us,
        script_start_us: now_us,
        thread_id: 1,
        thread_requests: 0,
        total_requests: 0,
    };
    let app = match site.dispatch(&request_head(uri), None, stats, None, &StderrLog) {
        Dispatch::App(app) => app,
        other => return Err(format!("{uri} runs no application: {other:?}")),
    };

    // 4. Call the application; the response collects in memory.
    let mut response = CapturedResponse::default();
    let mut writer = ResponseWriter::new(&mut response, app.head_only);
    let mut body: &[u8] = b"";
    let outcome = runner.run(&app.target, app.environ, &mut body, &mut writer, &StderrLog);
    drop(writer);
    // The applications' shutdown code (mod_wsgi's `process_stopping`,
    // `atexit`), as a server runs it before it exits.
    runner.stop("", Duration::from_secs(5));

    println!("{} {}", response.status, response.reason);
    for (name, value) in &response.headers {
        println!("{name}: {value}");
    }
    println!();
    print!("{}", String::from_utf8_lossy(&response.body));
    Ok(outcome)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let given = args.next();
    let uri = args.next().unwrap_or_else(|| "/hello?x=1".to_string());
    let scratch = std::env::temp_dir().join(format!("wsgi-interp-call-app-{}", std::process::id()));
    let result = script_path(given.clone(), &scratch)
        .map_err(|e| format!("cannot read the script: {e}"))
        .and_then(|script| call(&script, &uri));
    if given.is_none() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    match result {
        Ok(RunOutcome::Completed) => ExitCode::SUCCESS,
        Ok(outcome) => {
            eprintln!("call_app: the request ended {outcome:?}");
            ExitCode::FAILURE
        }
        Err(message) => {
            eprintln!("call_app: {message}");
            ExitCode::FAILURE
        }
    }
}
