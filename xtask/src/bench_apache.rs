//! `cargo xtask bench --apache`: Apache httpd with our `mod_wsgi.so`, with
//! Debian's mod_wsgi, and serving a static file with the same body (the
//! ceiling), side by side: the same Apache binary, the same MPM and MPM
//! settings, the same application and the same wrk load. With `--daemon`
//! both modules run the application in daemon mode, with the same
//! `WSGIDaemonProcess` processes and threads.

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::bench::{descendants, free_port, processes, run_wrk, Case, Load, Over, Proc, Result, APP};

pub(crate) const APACHE: &str = "/usr/sbin/apache2";
pub(crate) const MODULES_DIR: &str = "/usr/lib/apache2/modules";
pub(crate) const REFERENCE_MODULE: &str = "/usr/lib/apache2/modules/mod_wsgi.so";

/// The MPM and its settings, the same for every server: `children`
/// event-MPM children (the benches use two) started up front and never
/// replaced, each with a thread for every wrk connection (otherwise a
/// child whose threads are all busy closes its idle keep-alive
/// connections, which wrk counts as read errors), and unlimited
/// keep-alive requests.
pub(crate) fn mpm_settings(children: u32, threads_per_child: u32) -> String {
    format!(
        "LoadModule mpm_event_module {MODULES_DIR}/mod_mpm_event.so\n\
         StartServers {children}\n\
         ServerLimit {children}\n\
         ThreadLimit {threads_per_child}\n\
         ThreadsPerChild {threads_per_child}\n\
         MaxRequestWorkers {workers}\n\
         MinSpareThreads 1\n\
         MaxSpareThreads {workers}\n\
         MaxConnectionsPerChild 0\n\
         KeepAlive On\n\
         MaxKeepAliveRequests 0\n\
         KeepAliveTimeout 5\n",
        workers = children * threads_per_child,
    )
}

/// Threads per Apache child for `load`.
fn threads_per_child(load: &Load) -> u32 {
    load.connections.max(25)
}

/// Where the application runs: in Apache's children, or in the processes
/// of one `WSGIDaemonProcess` group (the same directive text for both
/// modules).
#[derive(Clone, Copy)]
pub enum Mode {
    Embedded,
    Daemon { processes: u32, threads: u32 },
}

/// The daemon process group's name.
const GROUP: &str = "bench";

/// The script behind `/process-group`: answers `mod_wsgi.process_group`,
/// so the bench can check that requests really reach the daemon processes
/// (a separate script, so the measured application is untouched).
const GROUP_APP: &str = r#"
def application(environ, start_response):
    body = environ.get('mod_wsgi.process_group', '').encode()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
"#;

const HELLO: &[u8] = b"Hello world!";

/// The cases: the path is the same for the application (through
/// `WSGIScriptAlias /`) and for the static file (under the DocumentRoot),
/// and both answer the same body.
const CASES: [(Case, usize); 2] = [
    (Case { name: "hello world (12 B)", path: "/hello", script: None, over: Over::Http }, 12),
    (Case { name: "10 KB response", path: "/10k", script: None, over: Over::Http }, 10240),
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
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(prefix: &str) -> std::result::Result<TempDir, String> {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        readable_dir(&path)?;
        Ok(TempDir(path))
    }

    /// Makes the world-readable directory `name` inside.
    pub(crate) fn sub_dir(&self, name: &str) -> std::result::Result<(), String> {
        readable_dir(&self.0.join(name))
    }

    pub(crate) fn write(&self, name: &str, contents: &[u8]) -> std::result::Result<PathBuf, String> {
        let path = self.0.join(name);
        std::fs::write(&path, contents).map_err(|e| format!("{}: {e}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }
}

/// Creates `path` (and its parents) with mode 0755.
fn readable_dir(path: &Path) -> std::result::Result<(), String> {
    std::fs::create_dir_all(path).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("{}: {e}", path.display()))
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The prefix of every Apache run directory of this bench: the command
/// line of every Apache process (and of every daemon process forked from
/// one) names its configuration file in there.
/// (`TempDir::new` names them `<prefix>-<our pid>-<n>`.)
pub(crate) fn run_dir_prefix() -> String {
    format!("bench-apache-run-{}-", std::process::id())
}

/// A running `apache2 -DFOREGROUND` in its own process group, stopped on
/// drop (so on every error path too).
pub(crate) struct Apache {
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
        mode: Mode,
    ) -> std::result::Result<Apache, String> {
        let mut config = mpm_settings(2, threads_per_child);
        match (variant, mode) {
            (Variant::Static, _) => {}
            (Variant::Ours | Variant::ModWsgi, Mode::Embedded) => {
                config.push_str(&format!("LoadModule wsgi_module {}\n", module.display()));
                config.push_str(&format!("WSGIScriptAlias / {}/app.wsgi\n", site.display()));
            }
            (Variant::Ours | Variant::ModWsgi, Mode::Daemon { processes, threads }) => {
                // The same text for both modules. With both process-group
                // and application-group on WSGIScriptAlias the script is
                // loaded as each daemon process starts. The more specific
                // alias comes first: the first that matches wins.
                let site = site.display();
                config.push_str(&format!(
                    "LoadModule wsgi_module {module}\n\
                     WSGISocketPrefix %RUN%/wsgi\n\
                     WSGIDaemonProcess {GROUP} processes={processes} threads={threads}\n\
                     WSGIScriptAlias /process-group {site}/group.wsgi process-group={GROUP} application-group=%{{GLOBAL}}\n\
                     WSGIScriptAlias / {site}/app.wsgi process-group={GROUP} application-group=%{{GLOBAL}}\n",
                    module = module.display(),
                ));
            }
        }
        Apache::start_with(site, &config)
    }

    /// Starts Apache serving `site` as its DocumentRoot with `settings`
    /// after the common part of the configuration (`%RUN%` in them stands
    /// for the run directory): the MPM, modules and handlers.
    pub(crate) fn start_with(site: &Path, settings: &str) -> std::result::Result<Apache, String> {
        let run_dir = TempDir::new("bench-apache-run")?;
        let port = free_port().map_err(|e| e.to_string())?;
        let root = run_dir.0.display().to_string();
        // `AllowOverride None` as Debian's apache2.conf sets it for `/`:
        // without it every request looks for an .htaccess in each directory
        // above the file, which inflates every server's cost alike and so
        // lowers the static ceiling the modules are measured against.
        let config = format!(
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
             <Directory />\n  AllowOverride None\n</Directory>\n\
             LoadModule authz_core_module {MODULES_DIR}/mod_authz_core.so\n\
             {settings}",
            site = site.display(),
            settings = settings.replace("%RUN%", &root),
        );
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

    /// The port Apache listens on (127.0.0.1).
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The pid of Apache's parent process.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
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

    pub(crate) fn logs(&self) -> String {
        let stderr = std::fs::read_to_string(self.run_dir.0.join("stderr.log")).unwrap_or_default();
        format!("--- stderr\n{stderr}--- error.log\n{}", self.error_log())
    }

    /// SIGTERM and a wait of up to 15 s; then SIGKILL to the whole process
    /// group. Then every process of the tree as it was before the stop
    /// (daemon processes too, which may be in process groups of their own)
    /// and every process still running this run's configuration gets up to
    /// 10 s to exit on its own before it is killed.
    fn stop(&mut self) {
        let pid = self.child.id();
        let tree = descendants(pid);
        if self.child.try_wait().ok().flatten().is_none() {
            signal("-TERM", &pid.to_string());
            let deadline = Instant::now() + Duration::from_secs(15);
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // Whatever is left of the group (children that outlived the parent).
        signal("-KILL", &format!("-{pid}"));
        let _ = self.child.wait();
        let marker = self.run_dir.0.display().to_string();
        let left = |tree: &[Proc]| -> Vec<u32> {
            let mut left: Vec<u32> = tree.iter().filter(|p| p.running()).map(|p| p.pid).collect();
            for pid in running_with(&marker) {
                if !left.contains(&pid) {
                    left.push(pid);
                }
            }
            left
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !left(&tree).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let left = left(&tree);
        if !left.is_empty() {
            eprintln!("xtask: processes of {marker} still running 10 s after Apache stopped, killed: {left:?}");
            for pid in left {
                signal("-KILL", &pid.to_string());
            }
        }
    }
}

/// `kill SIGNAL TARGET`, errors ignored (the target may be gone already).
pub(crate) fn signal(signal: &str, target: &str) {
    let _ = Command::new("kill").args([signal, "--", target]).stderr(Stdio::null()).status();
}

/// The running processes whose command line contains `marker` (the Apache
/// processes of a run directory, and the daemon processes forked from them,
/// which keep Apache's command line).
pub(crate) fn running_with(marker: &str) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|p| p.state != 'Z' && p.pid != std::process::id())
        .filter(|p| {
            std::fs::read(format!("/proc/{}/cmdline", p.pid))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(marker))
        })
        .map(|p| p.pid)
        .collect()
}

impl Drop for Apache {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `GET path` over HTTP/1.0; the status code and the body.
fn get(port: u16, path: &str) -> std::result::Result<(u16, Vec<u8>), String> {
    let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    crate::bench::exchange(port, request.as_bytes(), Duration::from_secs(30))
}

/// Starts the server, waits until it answers the case's body (daemon
/// processes start after Apache does), checks that daemon mode really is in
/// use, warms it up (a wrk run: every process imports the application),
/// measures.
fn measure(
    variant: Variant,
    case: &Case,
    body_len: usize,
    site: &Path,
    module: &Path,
    load: &Load,
    mode: Mode,
) -> std::result::Result<Result, String> {
    let apache = Apache::start(variant, site, module, threads_per_child(load), mode)?;
    // Until the first 200: daemon processes may still be starting (a 503,
    // or a refused connection). What came before it is reported.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut before: Vec<String> = Vec::new();
    let (status, body) = loop {
        let answer = get(apache.port, case.path);
        match &answer {
            Ok((200, _)) => break answer?,
            _ if Instant::now() > deadline => break answer?,
            Ok((status, _)) => before.push(status.to_string()),
            Err(e) => before.push(e.clone()),
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if !before.is_empty() {
        eprintln!(
            "xtask: {} / {}: {} answers before the first 200 (starting up): {}",
            case.name,
            variant.name(),
            before.len(),
            before.join(", ")
        );
    }
    if status != 200 || body.len() != body_len {
        return Err(format!(
            "GET {} answered {status} with {} bytes, not 200 with {body_len}:\n{}",
            case.path,
            body.len(),
            apache.logs()
        ));
    }
    let warm_up_secs = match (variant, mode) {
        (Variant::Static, _) | (_, Mode::Embedded) => 1,
        (_, Mode::Daemon { .. }) => {
            let (status, body) = get(apache.port, "/process-group")?;
            if status != 200 || body != GROUP.as_bytes() {
                return Err(format!(
                    "GET /process-group answered {status} '{}', not 200 '{GROUP}': not in daemon mode:\n{}",
                    String::from_utf8_lossy(&body),
                    apache.logs()
                ));
            }
            2
        }
    };
    let warm_up = Load { duration_secs: warm_up_secs, ..*load };
    run_wrk(apache.port, case, &warm_up, site, apache.child.id())?;
    let result = run_wrk(apache.port, case, load, site, apache.child.id());
    // A wrk failure is reported with what Apache logged.
    result.map_err(|e| format!("{e}\n{}", apache.logs()))
}

pub fn bench(root: &Path, load: &Load, mode: Mode) -> std::result::Result<(), String> {
    for needed in [APACHE, REFERENCE_MODULE] {
        if !Path::new(needed).exists() {
            return Err(format!("{needed} is missing (install apache2 and libapache2-mod-wsgi-py3)"));
        }
    }
    crate::cargo(root, &["build", "--release", "--package", "wsgi-apache"], &[])?;
    let ours = crate::target_dir(root).join("release/libmod_wsgi.so");
    let site = TempDir::new("bench-apache-site")?;
    site.write("app.wsgi", APP.as_bytes())?;
    site.write("group.wsgi", GROUP_APP.as_bytes())?;
    site.write("hello", HELLO)?;
    site.write("10k", &[b'x'; 10240])?;
    let variants = [Variant::Ours, Variant::ModWsgi, Variant::Static];
    let mode_text = match mode {
        Mode::Embedded => "embedded mode".to_string(),
        Mode::Daemon { processes, threads } => format!(
            "daemon mode (WSGIDaemonProcess {GROUP} processes={processes} threads={threads}, application-group %{{GLOBAL}})"
        ),
    };
    println!(
        "wrk -t{} -c{} -d{}s on loopback; Apache {} mpm_event, 2 children x {} threads, {mode_text}; {} cores",
        load.wrk_threads,
        load.connections,
        load.duration_secs,
        apache_version(),
        threads_per_child(load),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "peak RSS: the sum over Apache's parent and all its descendants (daemon processes included), \
         sampled every 100 ms; processes: the most in that tree"
    );
    crate::bench::print_rounds(load);
    println!();
    println!(
        "| case | server | requests/s | p50 ms | p99 ms | peak RSS MiB | processes | ours / mod_wsgi req/s | \
         ours / mod_wsgi p99 | ours / static req/s | errors |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for (case, body_len) in &CASES {
        let mut runs: Vec<Vec<Result>> = variants.iter().map(|_| Vec::new()).collect();
        // Round after round through the servers, so that a slow spell of
        // the machine falls on all of them rather than on one.
        for _round in 0..load.rounds.max(1) {
            for (variant, variant_runs) in variants.into_iter().zip(runs.iter_mut()) {
                let module = match variant {
                    Variant::Ours => ours.as_path(),
                    Variant::ModWsgi | Variant::Static => Path::new(REFERENCE_MODULE),
                };
                match measure(variant, case, *body_len, &site.0, module, load, mode) {
                    Ok(result) => variant_runs.push(result),
                    Err(e) => eprintln!("{} / {}: {e}", case.name, variant.name()),
                }
            }
        }
        let results: Vec<(Variant, Result)> = variants
            .into_iter()
            .zip(runs)
            .filter_map(|(variant, runs)| Some((variant, crate::bench::median(runs)?)))
            .collect();
        let of = |v: Variant| results.iter().find(|(w, _)| *w == v).map(|(_, r)| r);
        let rate = |v: Variant| of(v).map(|r| r.requests_per_sec);
        let p99 = |v: Variant| of(v).map(|r| r.p99_ms);
        let ratio = |of: Option<f64>, to: Option<f64>| match (of, to) {
            (Some(of), Some(to)) if to > 0.0 => format!("{:.2}x", of / to),
            _ => "-".to_string(),
        };
        let ours_rate = rate(Variant::Ours);
        for (variant, r) in &results {
            let (vs_mod_wsgi, p99_vs_mod_wsgi, vs_static) = match variant {
                Variant::Ours => (
                    ratio(ours_rate, rate(Variant::ModWsgi)),
                    ratio(p99(Variant::Ours), p99(Variant::ModWsgi)),
                    ratio(ours_rate, rate(Variant::Static)),
                ),
                _ => Default::default(),
            };
            println!(
                "| {} | {} | {:.0} | {:.2} | {:.2} | {:.1} | {} | {vs_mod_wsgi} | {p99_vs_mod_wsgi} | {vs_static} | {} |",
                case.name,
                variant.name(),
                r.requests_per_sec,
                r.p50_ms,
                r.p99_ms,
                r.peak_rss_kib as f64 / 1024.0,
                r.processes,
                if r.errors.is_empty() { "-" } else { &r.errors },
            );
        }
        let _ = std::io::stdout().flush();
    }
    // Every Apache has been stopped and waited for; check that none of
    // their processes (daemon processes included) outlived them.
    let left = running_with(&run_dir_prefix());
    if !left.is_empty() {
        return Err(format!("processes of this bench still running: {left:?}"));
    }
    println!();
    println!("after the bench: no Apache or daemon process of it left running");
    if let Mode::Daemon { processes, threads } = mode {
        crate::bench::standalone_modes(root, load, processes, threads)?;
    }
    Ok(())
}

/// `Apache/2.4.x` from `apache2 -v`.
pub(crate) fn apache_version() -> String {
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
