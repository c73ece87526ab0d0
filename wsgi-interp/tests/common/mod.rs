//! A test front end: implements wsgi-core's sink and log in memory, so the
//! interpreter is driven through the same seam real front ends use.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use wsgi_core::{AppTarget, EnvValue, Environ, ErrorLog, LogLevel, ResponseWriter, RunOutcome, WsgiRunner};
use wsgi_interp::{EmbeddedRunner, PythonConfig, PythonRuntime};

/// The one runtime of the test process.
pub fn runner() -> &'static EmbeddedRunner {
    static RUNNER: OnceLock<EmbeddedRunner> = OnceLock::new();
    RUNNER.get_or_init(|| {
        let config = PythonConfig { restrict_signal: true, ..PythonConfig::default() };
        EmbeddedRunner::new(PythonRuntime::initialize(config).expect("Python initialises"))
    })
}

pub fn runtime() -> Arc<PythonRuntime> {
    runner();
    PythonRuntime::initialize(PythonConfig { restrict_signal: true, ..PythonConfig::default() }).unwrap()
}

/// What a request's response was, as the sink recorded it.
pub use wsgi_core::testing::RecordingSink as Recorded;

#[derive(Default)]
pub struct Log {
    pub lines: Mutex<Vec<(LogLevel, String)>>,
}

impl ErrorLog for Log {
    fn log(&self, level: LogLevel, message: &str) {
        self.lines.lock().unwrap().push((level, message.to_string()));
    }
}

impl Log {
    pub fn text(&self) -> String {
        self.lines.lock().unwrap().iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>().join("\n")
    }
}

/// A minimal environ for `method path?query`.
pub fn environ(method: &str, path: &str) -> Environ {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut env = Environ::default();
    for (k, v) in [
        ("REQUEST_METHOD", method),
        ("SCRIPT_NAME", ""),
        ("PATH_INFO", path),
        ("QUERY_STRING", query),
        ("SERVER_NAME", "localhost"),
        ("SERVER_PORT", "80"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("HTTP_HOST", "localhost"),
        ("wsgi.url_scheme", "http"),
    ] {
        env.set_str(k, v.to_string());
    }
    env.set("wsgi.version", EnvValue::Tuple(vec![1, 0]));
    env.set("wsgi.multithread", EnvValue::Bool(true));
    env.set("wsgi.multiprocess", EnvValue::Bool(false));
    env.set("wsgi.run_once", EnvValue::Bool(false));
    env.set("wsgi.input_terminated", EnvValue::Bool(true));
    env
}

pub struct Outcome {
    pub outcome: RunOutcome,
    pub response: Recorded,
    pub log: Log,
}

pub fn run_with(target: &AppTarget, env: Environ, body: &[u8], fail_after: Option<usize>) -> Outcome {
    let mut sink = Recorded { fail_after, ..Recorded::default() };
    let log = Log::default();
    let head_only = env.get_str("REQUEST_METHOD") == Some("HEAD");
    let mut body = body;
    let outcome = {
        let mut writer = ResponseWriter::new(&mut sink, head_only);
        runner().run(target, env, &mut body, &mut writer, &log)
    };
    Outcome { outcome, response: sink, log }
}

pub fn run(target: &AppTarget, method: &str, path: &str, body: &[u8]) -> Outcome {
    let mut env = environ(method, path);
    if !body.is_empty() {
        env.set_str("CONTENT_LENGTH", body.len().to_string());
    }
    run_with(target, env, body, None)
}

pub fn target(script: &Path, group: &str) -> AppTarget {
    AppTarget {
        script: script.to_path_buf(),
        callable: "application".into(),
        application_group: group.into(),
        reload_on_change: true,
        script_mtime_us: None,
    }
}

/// A fresh directory for scripts, removed on drop.
pub struct Scripts {
    pub dir: PathBuf,
}

impl Scripts {
    pub fn new(name: &str) -> Scripts {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("wsgi-interp-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scripts { dir }
    }

    pub fn write(&self, name: &str, source: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, source).unwrap();
        path
    }
}

impl Drop for Scripts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
