//! Many threads running requests in several groups at once: no crash, the
//! right group answers, and memory stays flat. (Alone in its test binary.)

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use wsgi_core::RunOutcome;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn eight_threads_three_groups_twenty_thousand_requests() {
    const THREADS: usize = 8;
    const REQUESTS: usize = 20_000;
    const GROUPS: [&str; 3] = ["", "alpha", "beta"];
    let scripts = Scripts::new("concurrency");
    let path = scripts.write(
        "app.wsgi",
        r#"
import sys, threading
hits = 0
lock = threading.Lock()
def application(environ, start_response):
    global hits
    with lock:
        hits += 1
    body = environ['wsgi.input'].read()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [environ['GROUP'].encode(), b':', str(id(sys)).encode(), b':', body]
"#,
    );
    let path = Arc::new(path);
    let done = Arc::new(AtomicUsize::new(0));
    let mut baseline = None;
    let run_batch = |count: usize, done: &Arc<AtomicUsize>| {
        let handles: Vec<_> = (0..THREADS)
            .map(|worker| {
                let path = path.clone();
                let done = done.clone();
                std::thread::spawn(move || {
                    let mut sys_ids = std::collections::HashMap::new();
                    for i in 0..count / THREADS {
                        let group = GROUPS[(worker + i) % GROUPS.len()];
                        let mut env = environ("POST", "/");
                        env.set_str("GROUP", group);
                        env.set_str("CONTENT_LENGTH", "4");
                        let out = run_with(&target(&path, group), env, b"ping", None);
                        assert_eq!(out.outcome, RunOutcome::Completed, "{}", out.log.text());
                        let text = out.response.text();
                        let mut parts = text.splitn(3, ':');
                        assert_eq!(parts.next(), Some(group));
                        let sys_id = parts.next().unwrap().to_string();
                        assert_eq!(parts.next(), Some("ping"));
                        let seen = sys_ids.entry(group).or_insert_with(|| sys_id.clone());
                        assert_eq!(*seen, sys_id, "a group always runs in the same interpreter");
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    sys_ids
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("worker thread")).collect::<Vec<_>>()
    };
    // The first tenth warms up every group and thread; then RSS is the baseline.
    let first = run_batch(REQUESTS / 10, &done);
    baseline.get_or_insert(rss_kib());
    let rest = run_batch(REQUESTS - REQUESTS / 10, &done);
    let end = rss_kib();
    assert_eq!(done.load(Ordering::Relaxed), REQUESTS);
    // Each group's interpreter is distinct, and the same across threads.
    for ids in first.iter().chain(&rest) {
        assert_ne!(ids[""], ids["alpha"]);
        assert_ne!(ids["alpha"], ids["beta"]);
        assert_eq!(ids["alpha"], first[0]["alpha"]);
    }
    let growth_mib = end.saturating_sub(baseline.unwrap()) as f64 / 1024.0;
    eprintln!("RSS after warm-up {} KiB, at the end {end} KiB, growth {growth_mib:.1} MiB", baseline.unwrap());
    assert!(growth_mib < 16.0, "RSS grew by {growth_mib:.1} MiB over 18,000 requests");
}
