//! `cargo xtask memcheck`: the unit and integration tests of wsgi-core,
//! wsgi-daemon and wsgi-interp, then a short end-to-end run of the
//! standalone server, under valgrind's memcheck; prints what it found.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The crates whose tests run under memcheck.
const CRATES: [&str; 3] = ["wsgi-core", "wsgi-daemon", "wsgi-interp"];

/// memcheck's options for every run: errors make the run fail; leaks are
/// counted (definite ones only: Python and the test harness keep much
/// reachable memory until exit by design). Python keeps its own
/// allocator: since 3.10 pymalloc finds its arenas through a radix tree and
/// no longer reads memory memcheck calls uninitialised.
const VALGRIND: [&str; 5] = [
    "--tool=memcheck",
    "--error-exitcode=99",
    "--leak-check=full",
    "--show-leak-kinds=definite",
    "--errors-for-leak-kinds=definite",
];

/// The application of the end-to-end run.
const APP: &str = r#"
def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/fail':
        raise RuntimeError('a failure memcheck watches')
    body = environ['wsgi.input'].read() if path == '/echo' else b'hello'
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
"#;

/// One run under memcheck: its name, exit code, errors, definitely lost
/// bytes and seconds.
struct Run {
    name: String,
    code: Option<i32>,
    errors: u64,
    lost: u64,
    seconds: u64,
}

pub fn memcheck(root: &Path) -> Result<(), String> {
    if which_valgrind().is_none() {
        crate::install_system_packages(&["valgrind"])?;
    }
    let logs = crate::target_dir(root).join("memcheck");
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    let mut rows = Vec::new();
    for binary in test_binaries(root)? {
        let name = binary.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let log = logs.join(format!("{name}.log"));
        let started = Instant::now();
        let status = Command::new("valgrind")
            .args(VALGRIND)
            .arg(format!("--log-file={}", log.display()))
            .arg(&binary)
            .args(["--test-threads", "2"])
            // Property tests run 32 cases each rather than 256: memcheck
            // makes every case some 30 times slower.
            .env("PROPTEST_CASES", "32")
            // Tests that bound the resident set skip that bound: valgrind's
            // bookkeeping counts in it.
            .env("WSGI_RS_MEMCHECK", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run valgrind: {e}"))?;
        let (errors, lost) = summary(&[log]);
        rows.push(Run { name, code: status.code(), errors, lost, seconds: started.elapsed().as_secs() });
    }
    rows.push(end_to_end(root, &logs)?);
    println!("| run | exit | errors | definitely lost bytes | seconds |");
    println!("|---|---:|---:|---:|---:|");
    let mut failed = false;
    for run in &rows {
        failed |= run.code != Some(0) || run.errors > 0;
        let code = run.code.map_or("signal".to_string(), |c| c.to_string());
        println!("| {} | {code} | {} | {} | {} |", run.name, run.errors, run.lost, run.seconds);
    }
    println!("\nvalgrind's logs: {}", logs.display());
    if failed {
        return Err("memcheck found errors (or a run failed): see the logs".into());
    }
    Ok(())
}

fn which_valgrind() -> Option<PathBuf> {
    crate::which("valgrind")
}

/// The test executables of [`CRATES`], built (debug) by cargo.
fn test_binaries(root: &Path) -> Result<Vec<PathBuf>, String> {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(root).args(["test", "--no-run", "--message-format=json"]);
    for name in CRATES {
        command.args(["--package", name]);
    }
    let output = command.stderr(Stdio::inherit()).output().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err("cargo test --no-run failed".into());
    }
    // One JSON object a line; the test executables are the artifacts with
    // an "executable" that is not null.
    let text = String::from_utf8_lossy(&output.stdout);
    let binaries = text
        .lines()
        .filter(|line| line.contains(r#""reason":"compiler-artifact""#) && line.contains(r#""test":true"#))
        .filter_map(|line| {
            let rest = &line[line.find(r#""executable":""#)? + r#""executable":""#.len()..];
            Some(PathBuf::from(&rest[..rest.find('"')?]))
        })
        .collect();
    Ok(binaries)
}

/// Memcheck's error count and definitely lost bytes over `logs`.
fn summary(logs: &[PathBuf]) -> (u64, u64) {
    let (mut errors, mut lost) = (0, 0);
    for log in logs {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for line in text.lines() {
            // "==123== ERROR SUMMARY: 0 errors from 0 contexts (...)"
            if let Some(rest) = line.split("ERROR SUMMARY: ").nth(1) {
                errors += rest.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
            }
            // "==123==    definitely lost: 0 bytes in 0 blocks"
            if let Some(rest) = line.split("definitely lost: ").nth(1) {
                lost +=
                    rest.split_whitespace().next().and_then(|n| n.replace(',', "").parse::<u64>().ok()).unwrap_or(0);
            }
        }
    }
    (errors, lost)
}

/// The standalone server (debug build) under memcheck, its serving process
/// included (`--trace-children`): requests of each kind, then SIGTERM.
fn end_to_end(root: &Path, logs: &Path) -> Result<Run, String> {
    // Without mimalloc: memcheck follows glibc's allocator, not one that
    // carves its own pages.
    crate::cargo(root, &["build", "--package", "wsgi-standalone", "--no-default-features"], &[])?;
    let binary = crate::target_dir(root).join("debug/wsgi-standalone");
    let site = crate::bench_apache::TempDir::new("memcheck-site")?;
    let app = site.write("app.wsgi", APP.as_bytes())?;
    let port = crate::bench::free_port().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut server = Command::new("valgrind")
        .args(VALGRIND)
        .args(["--trace-children=yes", &format!("--log-file={}/standalone.%p.log", logs.display())])
        .arg(&binary)
        .arg("start-server")
        .arg(&app)
        .args(["--port", &port.to_string(), "--user", "www-data", "--group", "www-data", "--threads", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run valgrind: {e}"))?;
    let requests: [&[u8]; 5] = [
        b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"GET /fail HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
    ];
    let expected = ["200", "200", "200", "500", "400"];
    // Under memcheck the server starts slowly: up to 3 minutes.
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut answers = Vec::new();
    while answers.is_empty() && Instant::now() < deadline {
        match status_of(port, requests[0]) {
            Ok(status) => answers.push(status),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
    for request in &requests[1..] {
        answers.push(status_of(port, request).unwrap_or_else(|e| e));
    }
    let _ = Command::new("kill").args(["-TERM", &server.id().to_string()]).status();
    let status = server.wait().map_err(|e| e.to_string())?;
    if answers != expected {
        return Err(format!("the server under memcheck answered {answers:?}, not {expected:?}"));
    }
    let logs: Vec<PathBuf> = std::fs::read_dir(logs)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("standalone.")))
        .collect();
    let name = format!("wsgi-standalone end to end ({} processes: {answers:?})", logs.len());
    let (errors, lost) = summary(&logs);
    Ok(Run { name, code: status.code(), errors, lost, seconds: started.elapsed().as_secs() })
}

/// Sends `request` on a new connection; the status of the answer.
fn status_of(port: u16, request: &[u8]) -> Result<String, String> {
    crate::bench::exchange(port, request, Duration::from_secs(60)).map(|(status, _)| status.to_string())
}
