//! A fixed workload of `cargo xtask perf-guard`: routes a typical browser
//! GET through `Site::dispatch` and builds its environ, `N` times.
//!
//! ```text
//! cargo run --release -p wsgi-core --example perf_route -- N
//! ```
//!
//! perf-guard counts the instructions of a run of `N` and of `2N` under
//! callgrind; the difference over `N` is the cost of one request, with the
//! set-up cancelled out.

use std::hint::black_box;

use wsgi_core::pipeline::Dispatch;
use wsgi_core::testing::{fixed_stats, script_site, typical_get, StderrLog};

fn main() {
    let count: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).expect("usage: perf_route N");
    let dir = std::env::temp_dir().join(format!("wsgi-perf-route-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let script = dir.join("app.wsgi");
    std::fs::write(&script, "").expect("the script file");

    let site = script_site("/app", &script);
    let head = typical_get("/app/blog/2024/05/some-post?page=2&sort=new");
    let mut path_bytes = 0;
    for _ in 0..count {
        match site.dispatch(black_box(&head), None, fixed_stats(), None, &StderrLog) {
            Dispatch::App(app) => path_bytes += app.environ.get_str("PATH_INFO").map_or(0, str::len),
            other => panic!("the typical GET runs no application: {other:?}"),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("{count} requests, {path_bytes} bytes of PATH_INFO");
}
