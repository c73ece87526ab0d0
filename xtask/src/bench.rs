//! `cargo xtask bench`: our standalone server against granian and gunicorn,
//! side by side on loopback with the same application and the same wrk load.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Load settings, the same for every server.
pub struct Load {
    pub duration_secs: u64,
    /// Runs of every case against every server, taken in turn; the table
    /// shows each server's median run (by requests/s).
    pub rounds: u32,
    pub connections: u32,
    pub wrk_threads: u32,
    pub python_threads: u32,
}

/// The application every server runs (the Apache bench serves it too).
pub(crate) const APP: &str = r#"
HELLO = b'Hello world!'
TEN_K = b'x' * 10240

def application(environ, start_response):
    path = environ.get('PATH_INFO', '/')
    if path == '/echo':
        length = int(environ.get('CONTENT_LENGTH') or 0)
        data = environ['wsgi.input'].read(length)
        start_response('200 OK', [('Content-Type', 'application/octet-stream'), ('Content-Length', str(len(data)))])
        return [data]
    body = TEN_K if path == '/10k' else HELLO
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
"#;

const UPLOAD_LUA: &str = r#"
wrk.method = "POST"
wrk.body = string.rep("u", 1048576)
wrk.headers["Content-Type"] = "application/octet-stream"
"#;

/// The row of the HTTP layer alone (no Python): the ceiling.
const CEILING: &str = "hyper alone, no Python (ceiling)";

/// One load: a name for the table, the path wrk requests and an optional
/// wrk Lua script (a file in the bench directory).
pub(crate) struct Case {
    pub name: &'static str,
    pub path: &'static str,
    pub script: Option<&'static str>,
    /// How the load is sent.
    pub over: Over,
}

/// The protocol a case's load speaks.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Over {
    /// HTTP/1.1 in clear (wrk).
    Http,
    /// HTTP/1.1 over TLS (wrk).
    Https,
    /// HTTP/2 over TLS, by ALPN (h2load).
    Http2,
}

const CASES: [Case; 3] = [
    Case { name: "hello world (12 B)", path: "/hello", script: None, over: Over::Http },
    Case { name: "10 KB response", path: "/10k", script: None, over: Over::Http },
    Case { name: "1 MB upload echo", path: "/echo", script: Some("upload.lua"), over: Over::Http },
];

const TLS_CASES: [Case; 2] = [
    Case { name: "HTTPS hello world", path: "/hello", script: None, over: Over::Https },
    Case { name: "HTTPS 10 KB response", path: "/10k", script: None, over: Over::Https },
];

const HTTP2_CASES: [Case; 2] = [
    Case { name: "HTTP/2 hello world", path: "/hello", script: None, over: Over::Http2 },
    Case { name: "HTTP/2 10 KB response", path: "/10k", script: None, over: Over::Http2 },
];

/// The median of `runs` by requests/s (the upper one of an even count),
/// carrying the errors of every run, each with its round number (an error
/// in a run that is not the median must not go unreported); `None` when
/// there is none.
pub(crate) fn median(mut runs: Vec<Result>) -> Option<Result> {
    let errors: Vec<String> = runs
        .iter()
        .enumerate()
        .filter(|(_, run)| !run.errors.is_empty())
        .map(|(round, run)| format!("round {}: {}", round + 1, run.errors))
        .collect();
    runs.sort_by(|a, b| a.requests_per_sec.total_cmp(&b.requests_per_sec));
    let middle = runs.len() / 2;
    let mut median = runs.into_iter().nth(middle)?;
    median.errors = errors.join("; ");
    Some(median)
}

/// Says how a table's rows came from several rounds (see [`median`]).
pub(crate) fn print_rounds(load: &Load) {
    if load.rounds > 1 {
        println!(
            "each row: the median of {} runs taken in turn with the other servers; errors: wrk's, from any of them",
            load.rounds
        );
    }
}

/// What one wrk run measured.
pub(crate) struct Result {
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The largest resident set of the server's process tree seen during
    /// the run.
    pub peak_rss_kib: u64,
    /// The most processes that tree had during the run.
    pub processes: usize,
    /// wrk's socket-error and non-2xx lines, if any.
    pub errors: String,
}

/// Sends `request` on a new connection to 127.0.0.1:`port` and reads the
/// answer to its end, waiting at most `timeout` for each read: the status
/// and the body.
pub(crate) fn exchange(port: u16, request: &[u8], timeout: Duration) -> std::result::Result<(u16, Vec<u8>), String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    stream.write_all(request).map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(|e| e.to_string())?;
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no end of the response head")?;
    let status = String::from_utf8_lossy(&answer[..split])
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status line")?;
    Ok((status, answer[split + 4..].to_vec()))
}

pub(crate) fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_ready(port: u16, child: &mut Child) -> std::result::Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("server exited early with {status}"));
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err("server did not start listening within 30 s".into())
}

/// One process as `/proc/PID/stat` describes it.
pub(crate) struct Proc {
    pub pid: u32,
    pub ppid: u32,
    /// `R`, `S`, `Z`, ...
    pub state: char,
    /// Start time in clock ticks after boot: with the pid, identifies the
    /// process even if the pid is reused.
    pub start: u64,
}

impl Proc {
    pub(crate) fn read(pid: u32) -> Option<Proc> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name is in parentheses and may itself hold spaces and
        // parentheses: the fields that follow start after the last ')'.
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        Some(Proc {
            pid,
            state: fields.first()?.chars().next()?,
            ppid: fields.get(1)?.parse().ok()?,
            start: fields.get(19)?.parse().ok()?,
        })
    }

    /// Whether this very process still runs (a zombie does not).
    pub(crate) fn running(&self) -> bool {
        Proc::read(self.pid).is_some_and(|now| now.start == self.start && now.state != 'Z')
    }
}

/// Every process on the machine.
pub(crate) fn processes() -> Vec<Proc> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).filter_map(Proc::read).collect()
}

/// `pid` and all its descendants, found through the parent pids of every
/// process (so children forked by any thread, and grandchildren such as
/// daemon processes forked by a manager, are all included).
pub(crate) fn descendants(pid: u32) -> Vec<Proc> {
    let all = processes();
    let mut tree: Vec<Proc> = Vec::new();
    let mut wanted = vec![pid];
    let mut rest = all;
    while !wanted.is_empty() {
        let (found, others): (Vec<Proc>, Vec<Proc>) = rest.into_iter().partition(|p| wanted.contains(&p.pid));
        rest = others;
        wanted = rest.iter().filter(|p| found.iter().any(|f| f.pid == p.ppid)).map(|p| p.pid).collect();
        tree.extend(found);
    }
    tree
}

/// The resident set of a process and all its descendants, in KiB, and how
/// many processes that is.
pub(crate) fn tree_rss_kib(pid: u32) -> (u64, usize) {
    let tree: Vec<Proc> = descendants(pid).into_iter().filter(|p| p.state != 'Z').collect();
    let total = tree
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{}/status", p.pid)).ok())
        .filter_map(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .sum();
    (total, tree.len())
}

fn parse_latency_ms(text: &str) -> Option<f64> {
    let number: f64 = text.trim_end_matches(|c: char| c.is_ascii_alphabetic()).parse().ok()?;
    let unit = text.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
    Some(match unit {
        "us" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        "m" => number * 60_000.0,
        _ => return None,
    })
}

/// Runs wrk (h2load for HTTP/2) against 127.0.0.1:`port` with `case`,
/// sampling the resident set of `pid` and its descendants every 100 ms
/// while it runs.
pub(crate) fn run_wrk(
    port: u16,
    case: &Case,
    load: &Load,
    dir: &Path,
    pid: u32,
) -> std::result::Result<Result, String> {
    if case.over == Over::Http2 {
        return run_h2load(port, case, load, pid);
    }
    let mut wrk = Command::new("wrk");
    wrk.args(["-t", &load.wrk_threads.to_string(), "-c", &load.connections.to_string()]).args([
        "-d",
        &format!("{}s", load.duration_secs),
        "--latency",
    ]);
    if let Some(script) = case.script {
        wrk.arg("-s").arg(dir.join(script));
    }
    let scheme = if case.over == Over::Https { "https" } else { "http" };
    wrk.arg(format!("{scheme}://127.0.0.1:{port}{}", case.path)).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = wrk.spawn().map_err(|e| format!("cannot run wrk: {e}"))?;
    let (mut peak, mut processes) = (0, 0);
    let output = {
        let started = Instant::now();
        let mut child = child;
        loop {
            let (rss, count) = tree_rss_kib(pid);
            peak = peak.max(rss);
            processes = processes.max(count);
            if child.try_wait().map_err(|e| e.to_string())?.is_some() {
                break child.wait_with_output().map_err(|e| e.to_string())?;
            }
            if started.elapsed() > Duration::from_secs(load.duration_secs + 60) {
                let _ = child.kill();
                return Err("wrk did not finish".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let field = |prefix: &str| text.lines().find_map(|l| l.trim().strip_prefix(prefix).map(|r| r.trim().to_string()));
    let requests_per_sec =
        field("Requests/sec:").and_then(|v| v.parse().ok()).ok_or_else(|| format!("wrk said:\n{text}"))?;
    let p50 = field("50%").and_then(|v| parse_latency_ms(&v)).unwrap_or(f64::NAN);
    let p99 = field("99%").and_then(|v| parse_latency_ms(&v)).unwrap_or(f64::NAN);
    let mut errors = Vec::new();
    if let Some(line) = text.lines().find(|l| l.contains("Socket errors")) {
        errors.push(line.trim().to_string());
    }
    if let Some(line) = text.lines().find(|l| l.contains("Non-2xx")) {
        errors.push(line.trim().to_string());
    }
    Ok(Result { requests_per_sec, p50_ms: p50, p99_ms: p99, peak_rss_kib: peak, processes, errors: errors.join("; ") })
}

/// Runs h2load (HTTP/2 over TLS, the same connections, 10 streams each)
/// against 127.0.0.1:`port`, sampling the resident set as [`run_wrk`].
/// h2load reports a mean time per request, given here as the p50 column;
/// it has no p99.
fn run_h2load(port: u16, case: &Case, load: &Load, pid: u32) -> std::result::Result<Result, String> {
    let mut child = Command::new("h2load")
        .args(["-c", &load.connections.to_string(), "-t", &load.wrk_threads.to_string(), "-m", "10"])
        .args(["-D", &load.duration_secs.to_string()])
        .arg(format!("https://127.0.0.1:{port}{}", case.path))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run h2load: {e}"))?;
    let (mut peak, mut processes) = (0, 0);
    let started = Instant::now();
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        let (rss, count) = tree_rss_kib(pid);
        peak = peak.max(rss);
        processes = processes.max(count);
        if started.elapsed() > Duration::from_secs(load.duration_secs + 60) {
            let _ = child.kill();
            return Err("h2load did not finish".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    // "finished in 10.00s, 12345.60 req/s, 1.20MB/s"
    let requests_per_sec = text
        .lines()
        .find_map(|l| l.strip_prefix("finished in ")?.split(", ").nth(1)?.strip_suffix(" req/s")?.parse().ok())
        .ok_or_else(|| format!("h2load said:\n{text}"))?;
    // "time for request:   1.2ms   30ms   3.4ms   2.1ms  80.00%"
    let mean = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("time for request:"))
        .and_then(|rest| rest.split_whitespace().nth(2).and_then(parse_latency_ms))
        .unwrap_or(f64::NAN);
    // "requests: 100 total, 100 started, 100 done, 100 succeeded, 0 failed, 0 errored, 0 timeout"
    let errors = text
        .lines()
        .find(|l| l.starts_with("requests:"))
        .filter(|l| !l.contains(" 0 failed, 0 errored"))
        .map(|l| l.trim().to_string())
        .unwrap_or_default();
    Ok(Result { requests_per_sec, p50_ms: mean, p99_ms: f64::NAN, peak_rss_kib: peak, processes, errors })
}

struct Peer {
    name: &'static str,
    command: Box<dyn Fn(u16) -> Command>,
}

/// Installs granian and gunicorn into a venv under target/ if missing.
pub(crate) fn ensure_venv(root: &Path) -> std::result::Result<PathBuf, String> {
    let venv = root.join("target/bench-venv");
    let bin = venv.join("bin");
    if bin.join("granian").exists() && bin.join("gunicorn").exists() {
        return Ok(bin);
    }
    crate::run(Command::new("/usr/bin/python3").args(["-m", "venv"]).arg(&venv))?;
    crate::run(Command::new(bin.join("pip")).args(["install", "--quiet", "granian", "gunicorn"]))?;
    Ok(bin)
}

pub fn bench(root: &Path, load: &Load) -> std::result::Result<(), String> {
    crate::cargo(root, &["build", "--release", "--package", "wsgi-standalone"], &[])?;
    crate::cargo(root, &["build", "--release", "--package", "wsgi-standalone", "--example", "bench_ceiling"], &[])?;
    let venv_bin = ensure_venv(root)?;
    let dir = root.join("target/bench-app");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("app.py"), APP).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("upload.lua"), UPLOAD_LUA).map_err(|e| e.to_string())?;
    let threads = load.python_threads.to_string();
    let ours = root.join("target/release/wsgi-standalone");
    let ceiling = root.join("target/release/examples/bench_ceiling");
    let (app_dir, app_file) = (dir.clone(), dir.join("app.py"));
    let peers: Vec<Peer> = vec![
        Peer {
            name: "mod_wsgi-rs",
            command: Box::new({
                let threads = threads.clone();
                move |port| {
                    let mut c = Command::new(&ours);
                    c.arg("start-server").arg(&app_file).args(["--port", &port.to_string(), "--threads", &threads]);
                    c.args(["--log-level", "warn", "--limit-request-body", "20000000"]);
                    c
                }
            }),
        },
        Peer {
            name: "granian",
            command: Box::new({
                let (bin, app_dir, threads) = (venv_bin.clone(), app_dir.clone(), threads.clone());
                move |port| {
                    let mut c = Command::new(bin.join("granian"));
                    c.current_dir(&app_dir).args([
                        "--interface",
                        "wsgi",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        &port.to_string(),
                    ]);
                    c.args(["--workers", "1", "--blocking-threads", &threads, "--no-ws", "app:application"]);
                    c
                }
            }),
        },
        Peer {
            name: "gunicorn",
            command: Box::new({
                let (bin, app_dir, threads) = (venv_bin.clone(), app_dir.clone(), threads.clone());
                move |port| {
                    let mut c = Command::new(bin.join("gunicorn"));
                    c.current_dir(&app_dir).args([
                        "--workers",
                        "1",
                        "--threads",
                        &threads,
                        "--worker-class",
                        "gthread",
                    ]);
                    c.args(["--bind", &format!("127.0.0.1:{port}"), "--log-level", "warning", "app:application"]);
                    c
                }
            }),
        },
        // Not a peer: what hyper alone answers on this machine, so the
        // table shows how much of a request's cost is left to Python.
        Peer {
            name: CEILING,
            command: Box::new(move |port| {
                let mut c = Command::new(&ceiling);
                c.arg(port.to_string());
                c
            }),
        },
    ];
    println!(
        "wrk -t{} -c{} -d{}s on loopback; 1 process each, {} Python threads; {} cores",
        load.wrk_threads,
        load.connections,
        load.duration_secs,
        load.python_threads,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    print_rounds(load);
    println!();
    println!("| case | server | requests/s | p50 ms | p99 ms | peak RSS MiB | vs granian req/s | errors |");
    println!("|---|---|---:|---:|---:|---:|---:|---|");
    print_rows(&peers, &CASES, load, &dir, "granian")?;
    tls_tables(root, load, &dir, &venv_bin)
}

/// The HTTPS (wrk) and HTTP/2 over TLS (h2load) tables: our server and
/// granian with the same self-signed certificate, the same load.
fn tls_tables(root: &Path, load: &Load, dir: &Path, venv_bin: &Path) -> std::result::Result<(), String> {
    let (cert, key) = (dir.join("bench.crt"), dir.join("bench.key"));
    if !cert.exists() {
        crate::run(
            Command::new("openssl")
                .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=127.0.0.1"])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert),
        )?;
    }
    let threads = load.python_threads.to_string();
    let ours = root.join("target/release/wsgi-standalone");
    let peers = |http2: bool| -> Vec<Peer> {
        vec![
            Peer {
                name: "mod_wsgi-rs",
                command: Box::new({
                    let (ours, app, cert, key, threads) =
                        (ours.clone(), dir.join("app.py"), cert.clone(), key.clone(), threads.clone());
                    move |port| {
                        // The plain port is not measured; the TLS one is.
                        let plain = free_port().unwrap_or(0);
                        let mut c = Command::new(&ours);
                        c.arg("start-server").arg(&app).args(["--port", &plain.to_string(), "--threads", &threads]);
                        c.args(["--https-port", &port.to_string(), "--ssl-certificate-file"]).arg(&cert);
                        c.arg("--ssl-certificate-key-file").arg(&key).args(["--log-level", "warn"]);
                        if http2 {
                            c.arg("--http2");
                        }
                        c
                    }
                }),
            },
            Peer {
                name: "granian",
                command: Box::new({
                    let (bin, app_dir, cert, key, threads) =
                        (venv_bin.to_path_buf(), dir.to_path_buf(), cert.clone(), key.clone(), threads.clone());
                    move |port| {
                        let mut c = Command::new(bin.join("granian"));
                        c.current_dir(&app_dir).args(["--interface", "wsgi", "--host", "127.0.0.1"]);
                        c.args(["--port", &port.to_string(), "--workers", "1", "--blocking-threads", &threads]);
                        c.arg("--ssl-certificate").arg(&cert).arg("--ssl-keyfile").arg(&key);
                        c.args(["--http", if http2 { "2" } else { "1" }, "--no-ws", "app:application"]);
                        c
                    }
                }),
            },
        ]
    };
    println!();
    println!("HTTPS (TLS 1.3), wrk, same load:");
    println!();
    println!("| case | server | requests/s | p50 ms | p99 ms | peak RSS MiB | vs granian req/s | errors |");
    println!("|---|---|---:|---:|---:|---:|---:|---|");
    print_rows(&peers(false), &TLS_CASES, load, dir, "granian")?;
    println!();
    println!("HTTP/2 over TLS, h2load -m 10 (the p50 column is h2load's mean time per request; no p99):");
    println!();
    println!("| case | server | requests/s | mean ms | p99 ms | peak RSS MiB | vs granian req/s | errors |");
    println!("|---|---|---:|---:|---:|---:|---:|---|");
    print_rows(&peers(true), &HTTP2_CASES, load, dir, "granian")
}

/// `cargo xtask bench --apache --daemon`'s second table: the standalone
/// server with `processes` x `threads` in daemon mode (`--daemon`) against
/// itself in embedded mode (serving processes of their own).
pub(crate) fn standalone_modes(
    root: &Path,
    load: &Load,
    processes: u32,
    threads: u32,
) -> std::result::Result<(), String> {
    crate::cargo(root, &["build", "--release", "--package", "wsgi-standalone"], &[])?;
    let dir = root.join("target/bench-app");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("app.py"), APP).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("upload.lua"), UPLOAD_LUA).map_err(|e| e.to_string())?;
    let ours = root.join("target/release/wsgi-standalone");
    let peer = |name: &'static str, daemon: bool| Peer {
        name,
        command: Box::new({
            let (ours, app) = (ours.clone(), dir.join("app.py"));
            move |port| {
                let mut c = Command::new(&ours);
                c.arg("start-server").arg(&app).args(["--port", &port.to_string()]);
                c.args(["--processes", &processes.to_string(), "--threads", &threads.to_string()]);
                c.args(["--log-level", "warn"]);
                if daemon {
                    c.arg("--daemon");
                }
                c
            }
        }),
    };
    let peers = vec![peer("standalone --daemon", true), peer("standalone embedded", false)];
    println!();
    println!("standalone server, {processes} processes x {threads} threads, same wrk load:");
    println!();
    println!("| case | server | requests/s | p50 ms | p99 ms | peak RSS MiB | vs embedded req/s | errors |");
    println!("|---|---|---:|---:|---:|---:|---:|---|");
    print_rows(&peers, &CASES[..2], load, &dir, "standalone embedded")
}

/// Starts `peer`, warms it up, measures `case` once and stops it.
fn run_peer(peer: &Peer, case: &Case, load: &Load, dir: &Path) -> std::result::Result<Result, String> {
    let port = free_port().map_err(|e| e.to_string())?;
    let mut command = (peer.command)(port);
    command.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = command.spawn().map_err(|e| format!("cannot start {}: {e}", peer.name))?;
    let result = wait_ready(port, &mut child).and_then(|()| {
        // Daemon processes start after the port opens: warm up
        // until requests succeed, then measure.
        let warm_up = Load { duration_secs: 1, ..*load };
        std::thread::sleep(Duration::from_millis(300));
        let _ = run_wrk(port, case, &warm_up, dir, child.id());
        run_wrk(port, case, load, dir, child.id())
    });
    stop(&mut child);
    result
}

/// Stops a server: SIGTERM, up to 10 s to finish, then SIGKILL.
pub(crate) fn stop(child: &mut std::process::Child) {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs every case against every peer and prints a row each, with the
/// ratio of requests/s to the peer named `baseline`.
fn print_rows(
    peers: &[Peer],
    cases: &[Case],
    load: &Load,
    dir: &Path,
    baseline: &str,
) -> std::result::Result<(), String> {
    for case in cases {
        let mut runs: Vec<Vec<Result>> = peers.iter().map(|_| Vec::new()).collect();
        // Round after round through the servers, so that a slow spell of
        // the machine falls on all of them rather than on one.
        for _round in 0..load.rounds.max(1) {
            for (peer, peer_runs) in peers.iter().zip(runs.iter_mut()) {
                match run_peer(peer, case, load, dir) {
                    Ok(r) => peer_runs.push(r),
                    Err(e) => eprintln!("{} / {}: {e}", case.name, peer.name),
                }
            }
        }
        let results: Vec<(&str, Result)> =
            peers.iter().zip(runs).filter_map(|(peer, runs)| Some((peer.name, median(runs)?))).collect();
        let base = results.iter().find(|(n, _)| *n == baseline).map(|(_, r)| r.requests_per_sec);
        for (name, r) in &results {
            let ratio = base.map_or("-".to_string(), |g| format!("{:.2}x", r.requests_per_sec / g));
            let ms = |v: f64| if v.is_nan() { "-".to_string() } else { format!("{v:.2}") };
            println!(
                "| {} | {name} | {:.0} | {} | {} | {:.1} | {ratio} | {} |",
                case.name,
                r.requests_per_sec,
                ms(r.p50_ms),
                ms(r.p99_ms),
                r.peak_rss_kib as f64 / 1024.0,
                if r.errors.is_empty() { "-" } else { &r.errors },
            );
        }
        let _ = std::io::stdout().flush();
    }
    Ok(())
}
