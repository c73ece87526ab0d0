//! A fixed workload of `cargo xtask perf-guard`: one embedded WSGI call of
//! a hello-world application, `N` times, with the environ of a typical
//! browser GET.
//!
//! ```text
//! PYTHONHASHSEED=0 cargo run --release -p wsgi-interp --example perf_call -- N
//! ```
//!
//! perf-guard counts the instructions of a run of `N` and of `2N` under
//! callgrind; the difference over `N` is the cost of one call, with
//! Python's start-up cancelled out. (A fixed hash seed keeps Python's
//! dictionaries, and so the count, the same from run to run.)

use std::io;
use std::time::Duration;

use wsgi_core::testing::{script_site, typical_app_request, CountingSink, StderrLog};
use wsgi_core::{ResponseWriter, RunOutcome, WsgiRunner};
use wsgi_interp::{EmbeddedRunner, PythonConfig, PythonRuntime};

const HELLO_APP: &str = r#"
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '12')])
    return [b'Hello world!']
"#;

fn main() {
    let count: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).expect("usage: perf_call N");
    let dir = std::env::temp_dir().join(format!("wsgi-perf-call-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let script = dir.join("hello.wsgi");
    std::fs::write(&script, HELLO_APP).expect("the script file");

    let site = script_site("/", &script);
    let runtime = PythonRuntime::initialize(PythonConfig::from_settings(&site.config().global)).expect("Python starts");
    let runner = EmbeddedRunner::new(runtime);
    let app = typical_app_request(&site, "/blog/2024/05/some-post?page=2");

    // The first call loads the script: it is not part of the workload.
    let mut sink = CountingSink::default();
    for _ in 0..=count {
        let mut writer = ResponseWriter::new(&mut sink, false);
        let outcome = runner.run(&app.target, app.environ.clone(), &mut io::empty(), &mut writer, &StderrLog);
        drop(writer);
        assert!(matches!(outcome, RunOutcome::Completed) && sink.status == 200, "the call ended {outcome:?}");
    }
    runner.stop("", Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&dir);
    println!("{count} calls, {} body bytes", sink.body_bytes);
}
