//! `cargo xtask bench --apache`: Apache httpd with our `mod_wsgi.so`, with
//! Debian's mod_wsgi, and serving a static file with the same body (the
//! ceiling), side by side: the same Apache binary, the same MPM and MPM
//! settings, the same application and the same wrk load.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::bench::{free_port, run_wrk, Case, Load, Result, APP};

const APACHE: &str = "/usr/sbin/apache2";
const MODULES_DIR: &str = "/usr/lib/apache2/modules";
const REFERENCE_MODULE: &str = "/usr/lib/apache2/modules/mod_wsgi.so";

/// The MPM and its settings, the same for every server: two event-MPM
/// children started up front and never replaced, each with a thread for
/// every wrk connection (otherwise a child whose threads are all busy
/// closes its idle keep-alive connections, which wrk counts as read
/// errors), and unlimited keep-alive requests.
fn mpm_settings(threads_per_child: u32) -> String {
    format!(
        "LoadModule mpm_event_module {MODULES_DIR}/mod_mpm_event.so\n\
         StartServers 2\n\
         ServerLimit 2\n\
         ThreadLimit {threads_per_child}\n\
         ThreadsPerChild {threads_per_child}\n\
         MaxRequestWorkers {workers}\n\
         MinSpareThreads 1\n\
         MaxSpareThreads {workers}\n\
         MaxConnectionsPerChild 0\n\
         KeepAlive On\n\
         MaxKeepAliveRequests 0\n\
         KeepAliveTimeout 5\n",
        workers = 2 * threads_per_child,
    )
}

/// Threads per Apache child for `load`.
fn threads_per_child(load: &Load) -> u32 {
    load.connections.max(25)
}

const HELLO: &[u8] = b"Hello world!";

/// The cases: the path is the same for the application (through
/// `WSGIScriptAlias /`) and for the static file (under the DocumentRoot),
/// and both answer the same body.
const CASES: [(Case, usize); 2] = [
    (Case { name: "hello world (12 B)", path: "/hello", script: None }, 12),
    (Case { name: "10 KB response", path: "/10k", script: None }, 10240),
];

/// One server set-up.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Ours,
    ModWsgi,
    Static,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Ours => "Apache + mod_wsgi-rs",
            Variant::ModWsgi => "Apache + mod_wsgi 4 (Debian)",
            Variant::Static => "Apache static file",
        }
    }
}

/// A directory under the system temp dir, world-readable (Apache's children
/// run as www-data), removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> std::result::Result<TempDir, String> {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(TempDir(path))
    }

    fn write(&self, name: &str, contents: &[u8]) -> std::result::Result<PathBuf, String> {
        let path = self.0.join(name);
        std::fs::write(&path, contents).map_err(|e| format!("{}: {e}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `apache2 -DFOREGROUND` in its own process group, stopped on
/// drop (so on every error path too).
struct Apache {
    child: Child,
    port: u16,
    run_dir: TempDir,
}

impl Apache {
    fn start(
        variant: Variant,
        site: &Path,
        module: &Path,
        threads_per_child: u32,
    ) -> std::result::Result<Apache, String> {
        let run_dir = TempDir::new("bench-apache-run")?;
        let port = free_port().map_err(|e| e.to_string())?;
        let root = run_dir.0.display().to_string();
        let mut config = format!(
            "ServerRoot {root}\n\
             Listen 127.0.0.1:{port}\n\
             PidFile {root}/httpd.pid\n\
             ErrorLog {root}/error.log\n\
             LogLevel warn\n\
             DefaultRuntimeDir {root}\n\
             Mutex file:{root} default\n\
             User www-data\n\
             Group www-data\n\
             ServerName localhost\n\
             DocumentRoot {site}\n\
             LoadModule authz_core_module {MODULES_DIR}/mod_authz_core.so\n\
             {mpm}",
            site = site.display(),
            mpm = mpm_settings(threads_per_child),
        );
        match variant {
            Variant::Ours | Variant::ModWsgi => {
                config.push_str(&format!("LoadModule wsgi_module {}\n", module.display()));
                config.push_str(&format!("WSGIScriptAlias / {}/app.wsgi\n", site.display()));
            }
            Variant::Static => {}
        }
        let conf = run_dir.write("httpd.conf", config.as_bytes())?;
        let stderr = std::fs::File::create(run_dir.0.join("stderr.log")).map_err(|e| e.to_string())?;
        // Its own process group: on shutdown Apache may signal its whole
        // group, which must not include us.
        let child = Command::new(APACHE)
            .process_group(0)
            .args(["-DFOREGROUND", "-f"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {APACHE}: {e}"))?;
        let mut apache = Apache { child, port, run_dir };
        apache.wait_ready()?;
        Ok(apache)
    }

    fn wait_ready(&mut self) -> std::result::Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("Apache exited early with {status}:\n{}", self.logs()));
            }
            if self.error_log().contains("resuming normal operations")
                && TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("Apache did not start within 30 s:\n{}", self.logs()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.run_dir.0.join("error.log")).unwrap_or_default()
    }

    fn logs(&self) -> String {
        let stderr = std::fs::read_to_string(self.run_dir.0.join("stderr.log")).unwrap_or_default();
        format!("--- stderr\n{stderr}--- error.log\n{}", self.error_log())
    }

    /// SIGTERM and a wait of up to 15 s; then SIGKILL to the whole process
    /// group.
    fn stop(&mut self) {
        let pid = self.child.id().to_string();
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill").args(["-TERM", &pid]).stderr(Stdio::null()).status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // Whatever is left of the group (children that outlived the parent).
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).stderr(Stdio::null()).status();
        let _ = self.child.wait();
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `GET path` over HTTP/1.0; the status code and the body.
fn get(port: u16, path: &str) -> std::result::Result<(u16, Vec<u8>), String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(|e| e.to_string())?;
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no end of the response head")?;
    let head = String::from_utf8_lossy(&response[..split]);
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or("no status line")?;
    Ok((status, response[split + 4..].to_vec()))
}

/// Starts the server, checks that it answers the case's body, warms it up
/// (a one-second wrk run: every child imports the application), measures.
fn measure(
    variant: Variant,
    case: &Case,
    body_len: usize,
    site: &Path,
    module: &Path,
    load: &Load,
) -> std::result::Result<Result, String> {
    let apache = Apache::start(variant, site, module, threads_per_child(load))?;
    let (status, body) = get(apache.port, case.path)?;
    if status != 200 || body.len() != body_len {
        return Err(format!(
            "GET {} answered {status} with {} bytes, not 200 with {body_len}:\n{}",
            case.path,
            body.len(),
            apache.logs()
        ));
    }
    let warm_up = Load { duration_secs: 1, ..*load };
    run_wrk(apache.port, case, &warm_up, site, apache.child.id())?;
    let result = run_wrk(apache.port, case, load, site, apache.child.id());
    // A wrk failure is reported with what Apache logged.
    result.map_err(|e| format!("{e}\n{}", apache.logs()))
}

pub fn bench(root: &Path, load: &Load) -> std::result::Result<(), String> {
    for needed in [APACHE, REFERENCE_MODULE] {
        if !Path::new(needed).exists() {
            return Err(format!("{needed} is missing (install apache2 and libapache2-mod-wsgi-py3)"));
        }
    }
    crate::cargo(root, &["build", "--release", "--package", "wsgi-apache"], &[])?;
    let ours = crate::target_dir(root).join("release/libmod_wsgi.so");
    let site = TempDir::new("bench-apache-site")?;
    site.write("app.wsgi", APP.as_bytes())?;
    site.write("hello", HELLO)?;
    site.write("10k", &[b'x'; 10240])?;
    let variants = [Variant::Ours, Variant::ModWsgi, Variant::Static];
    println!(
        "wrk -t{} -c{} -d{}s on loopback; Apache {} mpm_event, 2 children x {} threads, embedded mode; {} cores",
        load.wrk_threads,
        load.connections,
        load.duration_secs,
        apache_version(),
        threads_per_child(load),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!(
        "| case | server | requests/s | p50 ms | p99 ms | peak RSS MiB | ours / mod_wsgi | ours / static | errors |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---|");
    for (case, body_len) in &CASES {
        let mut results: Vec<(Variant, Result)> = Vec::new();
        for variant in variants {
            let module = match variant {
                Variant::Ours => ours.as_path(),
                Variant::ModWsgi | Variant::Static => Path::new(REFERENCE_MODULE),
            };
            match measure(variant, case, *body_len, &site.0, module, load) {
                Ok(result) => results.push((variant, result)),
                Err(e) => eprintln!("{} / {}: {e}", case.name, variant.name()),
            }
        }
        let rate = |v: Variant| results.iter().find(|(w, _)| *w == v).map(|(_, r)| r.requests_per_sec);
        let ratio = |of: Option<f64>, to: Option<f64>| match (of, to) {
            (Some(of), Some(to)) if to > 0.0 => format!("{:.2}x", of / to),
            _ => "-".to_string(),
        };
        let ours_rate = rate(Variant::Ours);
        for (variant, r) in &results {
            let (vs_mod_wsgi, vs_static) = match variant {
                Variant::Ours => (ratio(ours_rate, rate(Variant::ModWsgi)), ratio(ours_rate, rate(Variant::Static))),
                _ => ("".to_string(), "".to_string()),
            };
            println!(
                "| {} | {} | {:.0} | {:.2} | {:.2} | {:.1} | {vs_mod_wsgi} | {vs_static} | {} |",
                case.name,
                variant.name(),
                r.requests_per_sec,
                r.p50_ms,
                r.p99_ms,
                r.peak_rss_kib as f64 / 1024.0,
                if r.errors.is_empty() { "-" } else { &r.errors },
            );
        }
        let _ = std::io::stdout().flush();
    }
    Ok(())
}

/// `Apache/2.4.x` from `apache2 -v`.
fn apache_version() -> String {
    Command::new(APACHE)
        .arg("-v")
        .output()
        .ok()
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .find(|w| w.starts_with("Apache/"))
                .map(|w| w.trim_start_matches("Apache/").to_string())
        })
        .unwrap_or_else(|| "?".to_string())
}
