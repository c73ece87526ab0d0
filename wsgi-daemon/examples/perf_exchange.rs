//! A fixed workload of `cargo xtask perf-guard`: one request exchange of
//! the daemon protocol, `N` times. A `DaemonClient` relays a typical
//! browser GET over a real UNIX socket to `worker::serve`, where a Rust
//! hello-world application stands in for Python, and reads the response.
//!
//! ```text
//! cargo run --release -p wsgi-daemon --example perf_exchange -- N
//! ```
//!
//! perf-guard counts the instructions of a run of `N` and of `2N` under
//! callgrind; the difference over `N` is the cost of one exchange, both
//! sides of the socket, with the set-up cancelled out.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::Duration;

use wsgi_core::testing::{script_site, typical_app_request, CountingSink, StderrLog};
use wsgi_core::{AppTarget, Environ, ErrorLog, ResponseWriter, RunOutcome, WsgiRunner};
use wsgi_daemon::client::DaemonClient;
use wsgi_daemon::control::ControlPipe;
use wsgi_daemon::protocol::RequestStart;
use wsgi_daemon::worker::{serve, WorkerOptions};

/// Hello world, in Rust: the workload measures the relay, not Python.
struct HelloApp;

impl WsgiRunner for HelloApp {
    fn run(
        &self,
        _target: &AppTarget,
        _environ: Environ,
        _body: &mut dyn Read,
        response: &mut ResponseWriter<'_>,
        _log: &dyn ErrorLog,
    ) -> RunOutcome {
        let headers = vec![("Content-Type".into(), "text/plain".into()), ("Content-Length".into(), "12".into())];
        let _ = response.start_response("200 OK", headers, false);
        let _ = response.write(b"Hello world!");
        match response.finish() {
            Ok(_) => RunOutcome::Completed,
            Err(_) => RunOutcome::ClientGone,
        }
    }
}

/// The request a front end sends for the typical GET: its target and
/// environ as `Site::dispatch` builds them.
fn typical_request(dir: &Path) -> RequestStart {
    let script = dir.join("app.wsgi");
    std::fs::write(&script, "").expect("the script file");
    let app = typical_app_request(&script_site("/", &script), "/blog/2024/05/some-post?page=2");
    RequestStart { request_id: 1, target: app.target, environ: app.environ, has_body: false }
}

fn main() {
    let count: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).expect("usage: perf_exchange N");
    let dir = std::env::temp_dir().join(format!("wsgi-perf-exchange-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let request = typical_request(&dir);
    let socket = dir.join("daemon.sock");
    let listener = UnixListener::bind(&socket).expect("bind the daemon socket");
    let (stop_read, stop_write) = wsgi_daemon::sys::pipe().expect("a stop pipe");
    let mut sink = CountingSink::default();
    std::thread::scope(|scope| {
        let daemon = scope.spawn(|| {
            serve(
                &listener,
                &HelloApp,
                &WorkerOptions::unlimited(1),
                &ControlPipe::none(),
                stop_read.as_raw_fd(),
                &StderrLog,
            )
        });
        let client = DaemonClient::new(socket.clone(), Duration::from_secs(10), Duration::from_secs(60));
        // The first exchange connects: it is not part of the workload.
        for _ in 0..=count {
            client.forward(&request, &mut io::empty(), &mut sink).expect("the exchange succeeds");
            assert_eq!(sink.status, 200, "hello world answers 200");
        }
        drop(client);
        std::fs::File::from(stop_write).write_all(b"x").expect("tell the daemon to stop");
        daemon.join().expect("the daemon thread ends");
    });
    let _ = std::fs::remove_dir_all(&dir);
    println!("{count} exchanges, {} body bytes", sink.body_bytes);
}
