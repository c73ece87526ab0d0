//! `cargo xtask stress`: the standalone server, the Apache module (embedded
//! mode, mpm_event), granian and gunicorn under the same hostile loads, one
//! table per load: a long soak (memory growth), slowloris (connections
//! that send half a request head and stall), idle keep-alive connections
//! under load, and parallel large uploads and slow downloads (peak
//! memory).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bench::{exchange, free_port, stop, tree_rss_kib};
use crate::bench_apache::{mpm_settings, Apache, TempDir, MODULES_DIR};

/// What every server runs: a hello world, an upload that reads its body in
/// 64 KiB blocks and answers how much it read, and a download of
/// `QUERY_STRING` bytes in 64 KiB blocks.
const APP: &str = r#"
BLOCK = b'd' * 65536

def application(environ, start_response):
    path = environ.get('PATH_INFO', '/')
    if path == '/upload':
        stream, total = environ['wsgi.input'], 0
        while True:
            block = stream.read(65536)
            if not block:
                break
            total += len(block)
        body = str(total).encode()
    elif path == '/download':
        size = int(environ.get('QUERY_STRING') or 0)
        start_response('200 OK', [('Content-Type', 'application/octet-stream'), ('Content-Length', str(size))])
        def blocks(left=size):
            while left > 0:
                n = min(left, len(BLOCK))
                left -= n
                yield BLOCK[:n]
        return blocks()
    else:
        body = b'Hello world!'
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
"#;

/// Seconds every server gives a client to send a request's head.
const HEADER_TIMEOUT_SECS: u64 = 15;

/// The sizes of the loads (`cargo xtask stress` options).
pub struct Settings {
    /// Requests of the soak.
    pub soak_requests: u64,
    /// Connections that send half a request head and stall.
    pub stalled: usize,
    /// Idle keep-alive connections held open under load.
    pub idle: usize,
    /// Parallel uploads, and parallel downloads.
    pub transfers: usize,
    /// Bytes of each upload and download.
    pub transfer_bytes: u64,
    /// Bytes per second each downloading client reads.
    pub read_rate: u64,
    /// Seconds of each wrk run of the slowloris and idle loads.
    pub duration_secs: u64,
    /// Python threads of every server (enough for every transfer at once).
    pub threads: u32,
    /// The loads to run (all when empty): names of [`LOADS`].
    pub only: Vec<String>,
    /// The servers to run them against (all when empty): names of
    /// [`SERVERS`].
    pub servers: Vec<String>,
}

/// The servers, by the names `--servers` takes.
pub const SERVERS: [&str; 4] = ["standalone", "apache", "granian", "gunicorn"];

/// The loads, by the names `--only` takes, in the order they run.
pub const LOADS: [&str; 4] = ["soak", "slowloris", "idle", "transfers"];

/// The servers measured.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Ours,
    Apache,
    Granian,
    Gunicorn,
}

const TARGETS: [Target; 4] = [Target::Ours, Target::Apache, Target::Granian, Target::Gunicorn];

impl Target {
    /// Its name for `--servers`.
    fn key(self) -> &'static str {
        match self {
            Target::Ours => SERVERS[0],
            Target::Apache => SERVERS[1],
            Target::Granian => SERVERS[2],
            Target::Gunicorn => SERVERS[3],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Target::Ours => "mod_wsgi-rs standalone",
            Target::Apache => "Apache + mod_wsgi-rs (embedded)",
            Target::Granian => "granian",
            Target::Gunicorn => "gunicorn (gthread)",
        }
    }
}

/// The servers of `--servers`, in table order.
fn chosen_targets(settings: &Settings) -> impl Iterator<Item = Target> + '_ {
    TARGETS.into_iter().filter(|t| settings.servers.is_empty() || settings.servers.iter().any(|s| s == t.key()))
}

/// Where the programs and the application are.
struct Setup {
    ours: PathBuf,
    module: PathBuf,
    venv_bin: PathBuf,
    site: TempDir,
}

/// A running server, stopped on drop.
struct Running {
    port: u16,
    process: Process,
}

enum Process {
    Child(Child),
    Apache(Apache),
}

impl Running {
    /// The pid at the top of the server's process tree.
    fn pid(&self) -> u32 {
        match &self.process {
            Process::Child(child) => child.id(),
            Process::Apache(apache) => apache.pid(),
        }
    }

    /// The resident set of the whole process tree, in MiB.
    fn rss_mib(&self) -> f64 {
        tree_rss_kib(self.pid()).0 as f64 / 1024.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Process::Child(child) = &mut self.process {
            stop(child);
        }
    }
}

fn start(target: Target, setup: &Setup, settings: &Settings) -> Result<Running, String> {
    let threads = settings.threads.to_string();
    let site = &setup.site.0;
    let app = site.join("app.py");
    if target == Target::Apache {
        // One child, as every other server runs one process, of 64
        // threads: more than wrk's 50 connections, or mpm_event closes
        // kept-alive connections when its workers are all busy (one child
        // of 50 threads gave 19 to 47 read errors in each 10 s run).
        // mod_reqtimeout gives the same header time-out as the others.
        let config = format!(
            "{mpm}LoadModule reqtimeout_module {MODULES_DIR}/mod_reqtimeout.so\n\
             RequestReadTimeout header={HEADER_TIMEOUT_SECS} body=20,MinRate=500\n\
             LoadModule wsgi_module {module}\n\
             WSGIScriptAlias / {app}\n",
            mpm = mpm_settings(1, 64),
            module = setup.module.display(),
            app = app.display(),
        );
        let apache = Apache::start_with(site, &config)?;
        let running = Running { port: apache.port(), process: Process::Apache(apache) };
        wait_answering(&running)?;
        return Ok(running);
    }
    let port = free_port().map_err(|e| e.to_string())?;
    let mut command = match target {
        Target::Ours => {
            let mut c = Command::new(&setup.ours);
            c.arg("start-server").arg(&app).args(["--port", &port.to_string(), "--threads", &threads]);
            c.args(["--header-timeout", &HEADER_TIMEOUT_SECS.to_string(), "--log-level", "warn"]);
            c.args(["--user", "www-data", "--group", "www-data", "--limit-request-body", "0"]);
            c
        }
        Target::Granian => {
            let mut c = Command::new(setup.venv_bin.join("granian"));
            c.current_dir(site).args(["--interface", "wsgi", "--host", "127.0.0.1", "--port", &port.to_string()]);
            c.args(["--workers", "1", "--blocking-threads", &threads, "--no-ws"]);
            c.args(["--http1-header-read-timeout", &(HEADER_TIMEOUT_SECS * 1000).to_string(), "app:application"]);
            c
        }
        Target::Gunicorn => {
            let mut c = Command::new(setup.venv_bin.join("gunicorn"));
            c.current_dir(site).args(["--workers", "1", "--threads", &threads, "--worker-class", "gthread"]);
            c.args(["--bind", &format!("127.0.0.1:{port}"), "--log-level", "warning", "app:application"]);
            c
        }
        Target::Apache => unreachable!("started above"),
    };
    command.stdout(Stdio::null()).stderr(Stdio::null());
    let child = command.spawn().map_err(|e| format!("cannot start {}: {e}", target.name()))?;
    let running = Running { port, process: Process::Child(child) };
    wait_answering(&running)?;
    Ok(running)
}

/// Waits up to 30 s for `GET /` to answer 200.
fn wait_answering(running: &Running) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if matches!(
            exchange(running.port, b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n", Duration::from_secs(10)),
            Ok((200, _))
        ) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("the server did not answer GET / within 30 s".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What one wrk run counted.
struct Wrk {
    requests: u64,
    per_sec: f64,
    errors: String,
}

/// `wrk -t2 -c50 -d<secs>s` on `/`; a run that fails or answers nothing
/// counts as 0 requests, with wrk's words as the error.
fn wrk(port: u16, secs: u64) -> Wrk {
    let output = Command::new("wrk")
        .args(["-t2", "-c50", &format!("-d{secs}s"), "--timeout", "5s"])
        .arg(format!("http://127.0.0.1:{port}/"))
        .output();
    let text = match output {
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        Err(e) => return Wrk { requests: 0, per_sec: 0.0, errors: format!("cannot run wrk: {e}") },
    };
    // "  123456 requests in 10.00s, 12.34MB read"
    let requests = text.lines().find_map(|l| l.trim().split_once(" requests in ")?.0.parse().ok()).unwrap_or(0);
    let per_sec = text.lines().find_map(|l| l.trim().strip_prefix("Requests/sec:")?.trim().parse().ok()).unwrap_or(0.0);
    let errors: Vec<&str> =
        text.lines().map(str::trim).filter(|l| l.starts_with("Socket errors") || l.starts_with("Non-2xx")).collect();
    Wrk { requests, per_sec, errors: errors.join("; ") }
}

pub fn stress(root: &Path, settings: &Settings) -> Result<(), String> {
    crate::cargo(root, &["build", "--release", "--package", "wsgi-standalone", "--package", "wsgi-apache"], &[])?;
    let release = crate::target_dir(root).join("release");
    let site = TempDir::new("stress-site")?;
    site.write("app.py", APP.as_bytes())?;
    let setup = Setup {
        ours: release.join("wsgi-standalone"),
        module: release.join("libmod_wsgi.so"),
        venv_bin: crate::bench::ensure_venv(root)?,
        site,
    };
    println!(
        "every server: 1 process (Apache: 1 child of 64 threads, embedded mode), {} Python threads, a header \
         time-out of {HEADER_TIMEOUT_SECS} s; wrk -t2 -c50; {} cores",
        settings.threads,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let chosen = |load: &str| settings.only.is_empty() || settings.only.iter().any(|o| o == load);
    for load in LOADS.into_iter().filter(|load| chosen(load)) {
        match load {
            "soak" => soak(&setup, settings)?,
            "slowloris" => slowloris(&setup, settings)?,
            "idle" => idle(&setup, settings)?,
            _ => transfers(&setup, settings)?,
        }
    }
    Ok(())
}

/// The soak: wrk runs of 10 s until `soak_requests`; the resident set once
/// 100,000 requests are served against the end (at most 5% growth).
fn soak(setup: &Setup, settings: &Settings) -> Result<(), String> {
    println!();
    println!("soak: {} requests of GET / in wrk runs of 10 s", settings.soak_requests);
    println!();
    // The growth over the second half tells a leak, which goes on, from a
    // warm-up that levels off (threads, allocator arenas).
    println!(
        "| server | requests | req/s | RSS at 100,000 MiB | RSS at half MiB | RSS at end MiB | growth | within 5% | \
         second half | errors |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|---:|---|");
    for target in chosen_targets(settings) {
        let running = start(target, setup, settings)?;
        let (mut served, mut seconds, mut base, mut half, mut errors) = (0u64, 0.0f64, None, None, Vec::new());
        while served < settings.soak_requests {
            let run = wrk(running.port, 10);
            if run.requests == 0 {
                errors.push(format!("a wrk run served nothing: {}", run.errors));
                break;
            }
            served += run.requests;
            seconds += run.requests as f64 / run.per_sec.max(1.0);
            if !run.errors.is_empty() {
                errors.push(run.errors);
            }
            if base.is_none() && served >= 100_000 {
                base = Some(running.rss_mib());
            }
            if half.is_none() && served >= settings.soak_requests / 2 {
                half = Some(running.rss_mib());
            }
        }
        let end = running.rss_mib();
        let (base, half) = (base.unwrap_or(f64::NAN), half.unwrap_or(f64::NAN));
        let growth = (end - base) / base * 100.0;
        let second_half = (end - half) / half * 100.0;
        println!(
            "| {} | {served} | {:.0} | {base:.1} | {half:.1} | {end:.1} | {growth:+.1}% | {} | {second_half:+.1}% | {} |",
            target.name(),
            served as f64 / seconds.max(f64::MIN_POSITIVE),
            if growth <= 5.0 { "yes" } else { "NO" },
            if errors.is_empty() { "-".to_string() } else { errors.join("; ") },
        );
        let _ = std::io::stdout().flush();
    }
    Ok(())
}

/// How the connections a [`Holder`] keeps open behave.
#[derive(Clone, Copy)]
enum Hold {
    /// Half a request head, then nothing.
    Stalled,
    /// One whole request, its answer read, then nothing (kept alive).
    Idle,
}

/// Keeps `count` connections of one kind open from a thread of its own,
/// opening a new one for each the server closes until told to stop; then
/// waits for the server to close the rest.
struct Holder {
    keep_up: Arc<AtomicBool>,
    closed: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<HeldOutcome>,
}

/// What a [`Holder`] saw.
struct HeldOutcome {
    /// Connections opened in all.
    opened: u64,
    /// Connections the server closed while they were kept up.
    closed_while_held: u64,
    /// Of those open when keeping up stopped: closed by the server within
    /// the wait, and how long the last took.
    closed_after: u64,
    open_at_stop: u64,
    last_close_secs: f64,
    /// Connections that could not be opened.
    refused: u64,
}

impl Holder {
    fn start(port: u16, count: usize, hold: Hold, wait_after: Duration) -> Holder {
        let keep_up = Arc::new(AtomicBool::new(true));
        let closed = Arc::new(AtomicU64::new(0));
        let thread = std::thread::spawn({
            let (keep_up, closed) = (keep_up.clone(), closed.clone());
            move || hold_connections(port, count, hold, wait_after, &keep_up, &closed)
        });
        Holder { keep_up, closed, thread }
    }

    /// Stops replacing closed connections and waits for the server to
    /// close the rest (or the wait to end).
    fn finish(self) -> HeldOutcome {
        self.keep_up.store(false, Ordering::SeqCst);
        self.thread.join().expect("the holder thread panicked")
    }
}

fn open_held(port: u16, hold: Hold) -> Option<TcpStream> {
    let mut stream = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(5)).ok()?;
    match hold {
        Hold::Stalled => stream.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Stalled: ").ok()?,
        Hold::Idle => {
            stream.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").ok()?;
            stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
            let mut answer = Vec::new();
            let mut buffer = [0u8; 1024];
            // The head and the 12-byte body.
            while answer.windows(4).position(|w| w == b"\r\n\r\n").is_none_or(|at| answer.len() < at + 4 + 12) {
                let n = stream.read(&mut buffer).ok()?;
                if n == 0 {
                    return None;
                }
                answer.extend_from_slice(&buffer[..n]);
            }
        }
    }
    stream.set_nonblocking(true).ok()?;
    Some(stream)
}

/// Whether the server has closed `stream` (what it sends first, such as a
/// 408, is read and dropped).
fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
}

fn hold_connections(
    port: u16,
    count: usize,
    hold: Hold,
    wait_after: Duration,
    keep_up: &AtomicBool,
    closed: &AtomicU64,
) -> HeldOutcome {
    let mut outcome = HeldOutcome {
        opened: 0,
        closed_while_held: 0,
        closed_after: 0,
        open_at_stop: 0,
        last_close_secs: 0.0,
        refused: 0,
    };
    let mut streams: Vec<Option<TcpStream>> = Vec::with_capacity(count);
    for _ in 0..count {
        let stream = open_held(port, hold);
        match &stream {
            Some(_) => outcome.opened += 1,
            None => outcome.refused += 1,
        }
        streams.push(stream);
    }
    while keep_up.load(Ordering::SeqCst) {
        for slot in &mut streams {
            if slot.as_mut().is_some_and(closed_by_server) {
                outcome.closed_while_held += 1;
                closed.fetch_add(1, Ordering::Relaxed);
                *slot = None;
            }
            if slot.is_none() && keep_up.load(Ordering::SeqCst) {
                *slot = open_held(port, hold);
                match slot {
                    Some(_) => outcome.opened += 1,
                    None => outcome.refused += 1,
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    outcome.open_at_stop = streams.iter().flatten().count() as u64;
    let stopped = Instant::now();
    while stopped.elapsed() < wait_after && streams.iter().any(Option::is_some) {
        for slot in &mut streams {
            if slot.as_mut().is_some_and(closed_by_server) {
                outcome.closed_after += 1;
                outcome.last_close_secs = stopped.elapsed().as_secs_f64();
                *slot = None;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    outcome
}

/// Slowloris: the throughput with `stalled` half-sent heads held open
/// against the same server unloaded (at least 80%), and whether the header
/// time-out closes every stalled connection.
fn slowloris(setup: &Setup, settings: &Settings) -> Result<(), String> {
    let wait = Duration::from_secs(HEADER_TIMEOUT_SECS + 30);
    println!();
    println!(
        "slowloris: {} connections send half a request head and stall (each one the server closes is replaced) \
         while wrk runs {} s; then none is replaced, and the rest must be closed by the header time-out \
         (waited for up to {} s)",
        settings.stalled,
        settings.duration_secs,
        wait.as_secs()
    );
    println!();
    println!(
        "| server | unloaded req/s | req/s with stalled | ratio | at least 80% | stalled opened | refused | \
         closed by the server | all closed | last closed after s | errors |"
    );
    println!("|---|---:|---:|---:|---|---:|---:|---:|---|---:|---|");
    for target in chosen_targets(settings) {
        let running = start(target, setup, settings)?;
        let unloaded = wrk(running.port, settings.duration_secs);
        let holder = Holder::start(running.port, settings.stalled, Hold::Stalled, wait);
        // Every stalled connection opened before the load starts.
        std::thread::sleep(Duration::from_secs(3));
        let loaded = wrk(running.port, settings.duration_secs);
        let held = holder.finish();
        let ratio = loaded.per_sec / unloaded.per_sec.max(f64::MIN_POSITIVE);
        let closed = held.closed_while_held + held.closed_after;
        println!(
            "| {} | {:.0} | {:.0} | {:.2} | {} | {} | {} | {closed} | {} | {:.1} | {} |",
            target.name(),
            unloaded.per_sec,
            loaded.per_sec,
            ratio,
            if ratio >= 0.8 { "yes" } else { "NO" },
            held.opened,
            held.refused,
            if held.closed_after == held.open_at_stop { "yes" } else { "NO" },
            held.last_close_secs,
            [unloaded.errors, loaded.errors].iter().filter(|e| !e.is_empty()).cloned().collect::<Vec<_>>().join("; "),
        );
        let _ = std::io::stdout().flush();
    }
    Ok(())
}

/// Idle keep-alive connections: the throughput with `idle` of them held
/// open (each one the server closes is replaced) against the same server
/// unloaded.
fn idle(setup: &Setup, settings: &Settings) -> Result<(), String> {
    println!();
    println!(
        "idle keep-alive: {} connections each send one request, read the answer and stay idle (each one the \
         server closes is replaced) while wrk runs {} s",
        settings.idle, settings.duration_secs
    );
    println!();
    println!(
        "| server | unloaded req/s | req/s with idle | ratio | idle opened | refused | closed by the server | errors |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    for target in chosen_targets(settings) {
        let running = start(target, setup, settings)?;
        let unloaded = wrk(running.port, settings.duration_secs);
        let holder = Holder::start(running.port, settings.idle, Hold::Idle, Duration::ZERO);
        std::thread::sleep(Duration::from_secs(3));
        let closed_before = holder.closed.load(Ordering::Relaxed);
        let loaded = wrk(running.port, settings.duration_secs);
        let held = holder.finish();
        println!(
            "| {} | {:.0} | {:.0} | {:.2} | {} | {} | {} (before the load: {closed_before}) | {} |",
            target.name(),
            unloaded.per_sec,
            loaded.per_sec,
            loaded.per_sec / unloaded.per_sec.max(f64::MIN_POSITIVE),
            held.opened,
            held.refused,
            held.closed_while_held,
            [unloaded.errors, loaded.errors].iter().filter(|e| !e.is_empty()).cloned().collect::<Vec<_>>().join("; "),
        );
        let _ = std::io::stdout().flush();
    }
    Ok(())
}

/// What one transfer client got.
struct Transfer {
    complete: bool,
}

/// Uploads `size` bytes to `/upload` as fast as the server takes them;
/// complete when the server answers 200 with the size it read.
fn upload(port: u16, size: u64) -> Transfer {
    let attempt = || -> Result<bool, String> {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(Duration::from_secs(120))).map_err(|e| e.to_string())?;
        write!(
            stream,
            "POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\n\
             Content-Length: {size}\r\nConnection: close\r\n\r\n"
        )
        .map_err(|e| e.to_string())?;
        let block = vec![b'u'; 256 * 1024];
        let mut left = size;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            stream.write_all(&block[..n]).map_err(|e| e.to_string())?;
            left -= n as u64;
        }
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&answer);
        Ok(text.starts_with("HTTP/1.1 200") && text.ends_with(&format!("\r\n\r\n{size}")))
    };
    Transfer { complete: attempt().unwrap_or(false) }
}

/// Downloads `size` bytes from `/download`, reading at most `rate` bytes a
/// second; complete when the whole body arrived.
fn download(port: u16, size: u64, rate: u64) -> Transfer {
    let attempt = || -> Result<bool, String> {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(Duration::from_secs(60))).map_err(|e| e.to_string())?;
        write!(stream, "GET /download?{size} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let started = Instant::now();
        let (mut received, mut head) = (0u64, Vec::new());
        let mut body_start = None;
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = stream.read(&mut buffer).map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            received += n as u64;
            if body_start.is_none() {
                head.extend_from_slice(&buffer[..n]);
                body_start = head.windows(4).position(|w| w == b"\r\n\r\n").map(|at| at as u64 + 4);
            }
            // Sleep until the bytes so far are what `rate` allows.
            let due = Duration::from_secs_f64(received as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        Ok(head.starts_with(b"HTTP/1.1 200") && body_start.is_some_and(|start| received - start == size))
    };
    Transfer { complete: attempt().unwrap_or(false) }
}

/// Runs `clients` transfers at once against a running server, sampling the
/// resident set of its process tree every 100 ms: how many completed, in
/// how long, and the peak resident set.
fn parallel(running: &Running, clients: usize, transfer: impl Fn(u16) -> Transfer + Sync) -> (usize, f64, f64) {
    let started = Instant::now();
    let done = AtomicU64::new(0);
    let mut peak = running.rss_mib();
    let complete = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(|| {
                    let result = transfer(running.port);
                    done.fetch_add(1, Ordering::SeqCst);
                    result
                })
            })
            .collect();
        while done.load(Ordering::SeqCst) < clients as u64 {
            peak = peak.max(running.rss_mib());
            std::thread::sleep(Duration::from_millis(100));
        }
        handles.into_iter().filter(|h| h.is_finished()).filter_map(|h| h.join().ok()).filter(|t| t.complete).count()
    });
    (complete, started.elapsed().as_secs_f64(), peak)
}

/// Parallel large uploads, and parallel downloads to slow readers: the
/// peak resident set of each server's process tree.
fn transfers(setup: &Setup, settings: &Settings) -> Result<(), String> {
    let (clients, size, rate) = (settings.transfers, settings.transfer_bytes, settings.read_rate);
    println!();
    println!(
        "transfers: {clients} parallel uploads of {} MB, then {clients} parallel downloads of {} MB by clients \
         reading {} MB/s; RSS: the server's whole process tree, sampled every 100 ms",
        size / 1_000_000,
        size / 1_000_000,
        rate as f64 / 1_000_000.0
    );
    println!();
    println!("| server | RSS idle MiB | uploads complete | seconds | peak RSS MiB | downloads complete | seconds | peak RSS MiB |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for target in chosen_targets(settings) {
        let running = start(target, setup, settings)?;
        let idle = running.rss_mib();
        let (uploaded, up_secs, up_peak) = parallel(&running, clients, |port| upload(port, size));
        let (downloaded, down_secs, down_peak) = parallel(&running, clients, |port| download(port, size, rate));
        println!(
            "| {} | {idle:.1} | {uploaded}/{clients} | {up_secs:.1} | {up_peak:.1} | {downloaded}/{clients} | \
             {down_secs:.1} | {down_peak:.1} |",
            target.name(),
        );
        let _ = std::io::stdout().flush();
    }
    Ok(())
}
