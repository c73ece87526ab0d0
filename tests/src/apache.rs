//! Real Apache httpd for the end-to-end tests: a private configuration on a
//! free loopback port, with our `mod_wsgi.so` or Debian's mod_wsgi.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::{free_port, wait_for, workspace_root, HttpResponse, TempDir};

/// Debian's Apache binary.
pub const APACHE_BINARY: &str = "/usr/sbin/apache2";
/// Where Debian keeps Apache's modules.
pub const MODULES_DIR: &str = "/usr/lib/apache2/modules";
/// Debian's mod_wsgi (package libapache2-mod-wsgi-py3): the reference.
pub const REFERENCE_MODULE: &str = "/usr/lib/apache2/modules/mod_wsgi.so";

/// Which mod_wsgi the server loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsgiModule {
    /// Ours, built from wsgi-apache.
    Ours,
    /// Debian's mod_wsgi, the behaviour reference.
    Reference,
    /// None from the harness: the configuration text loads a module itself
    /// (as the lines `wsgi-standalone module-config` prints do).
    InConfig,
}

/// Apache's multi-processing module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mpm {
    /// mpm_event (Debian's default).
    Event,
    /// mpm_worker.
    Worker,
    /// mpm_prefork.
    Prefork,
}

impl Mpm {
    fn module(self) -> (&'static str, &'static str) {
        match self {
            Mpm::Event => ("mpm_event_module", "mod_mpm_event.so"),
            Mpm::Worker => ("mpm_worker_module", "mod_mpm_worker.so"),
            Mpm::Prefork => ("mpm_prefork_module", "mod_mpm_prefork.so"),
        }
    }
}

/// Path of our module, built (once per test process) in the same profile
/// as the tests.
pub fn our_module() -> &'static Path {
    static MODULE: OnceLock<PathBuf> = OnceLock::new();
    MODULE.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace_root())
            .args(["build", "--quiet", "--package", "wsgi-apache", "--lib"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building wsgi-apache failed");
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"));
        target.join("debug").join("libmod_wsgi.so")
    })
}

/// What to start.
#[derive(Debug, Clone)]
pub struct ApacheOptions {
    /// The mod_wsgi to load.
    pub module: WsgiModule,
    /// The MPM.
    pub mpm: Mpm,
    /// Configuration text appended after the harness's own lines; `${PORT}`
    /// is the server's port (an Apache `Define`).
    pub config: String,
    /// Extra modules to load by name (`headers`, `auth_basic`, ...), from
    /// Debian's module directory.
    pub modules: Vec<&'static str>,
    /// Variables set in Apache's environment (over the test's own), which
    /// its children and daemon processes inherit.
    pub env: Vec<(&'static str, std::ffi::OsString)>,
    /// The main server's error log (`None`: `error.log` in the run
    /// directory).
    pub error_log: Option<PathBuf>,
}

impl ApacheOptions {
    /// Our module under mpm_event with `config`.
    pub fn ours(config: impl Into<String>) -> ApacheOptions {
        ApacheOptions {
            module: WsgiModule::Ours,
            mpm: Mpm::Event,
            config: config.into(),
            modules: Vec::new(),
            env: Vec::new(),
            error_log: None,
        }
    }
}

/// A running Apache in the foreground (`-DFOREGROUND`), stopped on drop.
pub struct Apache {
    child: Child,
    port: u16,
    run_dir: TempDir,
    error_log: PathBuf,
}

impl Apache {
    /// Writes the configuration, starts Apache and waits (at most 20 s)
    /// until it accepts connections. Panics with the error log if it does
    /// not.
    pub fn start(options: &ApacheOptions) -> Apache {
        let mut apache = Apache::spawn(options);
        let port = apache.port;
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let up = wait_for(Duration::from_secs(20), || {
            if let Ok(Some(_)) = apache.child.try_wait() {
                return Some(false);
            }
            if !apache.error_log().contains("resuming normal operations") {
                return None;
            }
            std::net::TcpStream::connect_timeout(&address, Duration::from_millis(300)).ok().map(|_| true)
        });
        if up != Some(true) {
            panic!(
                "Apache did not start on port {port}:\n--- stderr\n{}\n--- error.log\n{}\n--- httpd.conf\n{}",
                apache.stderr(),
                apache.error_log(),
                crate::read_text(&apache.run_dir().join("httpd.conf"))
            );
        }
        apache
    }

    /// Starts Apache with a configuration it must refuse: waits (at most
    /// 20 s) for it to exit and returns what it logged (error log, then
    /// standard error). Panics if it serves or exits successfully.
    pub fn refused(options: &ApacheOptions) -> String {
        let mut apache = Apache::spawn(options);
        let exit = wait_for(Duration::from_secs(20), || apache.child.try_wait().ok().flatten());
        let logged = format!("{}\n{}", apache.error_log(), apache.stderr());
        match exit {
            Some(status) => assert!(!status.success(), "Apache exited successfully:\n{logged}"),
            None => panic!("Apache kept running with a configuration it must refuse:\n{logged}"),
        }
        logged
    }

    /// Writes the configuration and starts Apache in the foreground.
    fn spawn(options: &ApacheOptions) -> Apache {
        let run_dir = TempDir::new("apache-run");
        let port = free_port();
        let module = match options.module {
            WsgiModule::Ours => Some(our_module().to_path_buf()),
            WsgiModule::Reference => Some(PathBuf::from(REFERENCE_MODULE)),
            WsgiModule::InConfig => None,
        };
        let (mpm_name, mpm_file) = options.mpm.module();
        let error_log = options.error_log.clone().unwrap_or_else(|| run_dir.path().join("error.log"));
        let mut config = format!(
            "Define PORT {port}\n\
             ServerRoot {root}\n\
             Listen 127.0.0.1:{port}\n\
             PidFile {root}/httpd.pid\n\
             ErrorLog {error_log}\n\
             LogLevel info\n\
             DefaultRuntimeDir {root}\n\
             Mutex file:{root} default\n\
             User www-data\n\
             Group www-data\n\
             ServerName localhost\n\
             DocumentRoot /var/www/html\n\
             LoadModule {mpm_name} {MODULES_DIR}/{mpm_file}\n\
             LoadModule authz_core_module {MODULES_DIR}/mod_authz_core.so\n",
            root = run_dir.path().display(),
            error_log = error_log.display(),
        );
        if options.mpm == Mpm::Prefork {
            config.push_str("StartServers 2\nMinSpareServers 1\nMaxSpareServers 4\n");
        }
        for name in &options.modules {
            config.push_str(&format!("LoadModule {name}_module {MODULES_DIR}/mod_{name}.so\n"));
            if *name == "mime" {
                config.push_str("TypesConfig /etc/mime.types\n");
            }
        }
        if let Some(module) = module {
            config.push_str(&format!("LoadModule wsgi_module {}\n", module.display()));
        }
        config.push_str(&options.config);
        config.push('\n');
        let conf = run_dir.write("httpd.conf", &config);
        let stderr = std::fs::File::create(run_dir.path().join("stderr.log")).expect("create stderr log");
        // Its own process group: on shutdown, prefork signals its whole
        // group, which would otherwise include the test process.
        let child = Command::new(APACHE_BINARY)
            .process_group(0)
            .args(["-DFOREGROUND", "-f"])
            .arg(&conf)
            .envs(options.env.iter().map(|(name, value)| (*name, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start apache2");
        Apache { child, port, run_dir, error_log }
    }

    /// Its private ServerRoot (also DefaultRuntimeDir).
    pub fn run_dir(&self) -> &Path {
        self.run_dir.path()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The parent process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The error log so far.
    pub fn error_log(&self) -> String {
        crate::read_text(&self.error_log)
    }

    /// What Apache wrote to its standard error (startup problems).
    pub fn stderr(&self) -> String {
        crate::read_text(&self.run_dir.path().join("stderr.log"))
    }

    /// `apachectl graceful`: SIGUSR1 to the parent.
    pub fn graceful(&self) {
        self.signal(libc_signal::SIGUSR1);
    }

    /// `apachectl restart`: SIGHUP to the parent.
    pub fn restart(&self) {
        self.signal(libc_signal::SIGHUP);
    }

    fn signal(&self, signal: i32) {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .stderr(Stdio::null())
            .status();
    }

    /// Stops Apache (SIGTERM, then SIGKILL for it and its children after
    /// 15 s) and returns whether it exited by itself.
    pub fn stop(&mut self) -> bool {
        if let Ok(Some(_)) = self.child.try_wait() {
            return true;
        }
        let children = crate::child_pids(self.child.id());
        self.signal(libc_signal::SIGTERM);
        let mut exited = wait_for(Duration::from_secs(15), || self.child.try_wait().ok().flatten()).is_some();
        if !exited {
            // Rare under load: record what the parent and its children
            // are doing, then give it as long again.
            eprintln!("Apache is slow to stop; its processes:\n{}", process_table());
            exited = wait_for(Duration::from_secs(15), || self.child.try_wait().ok().flatten()).is_some();
        }
        if !exited {
            eprintln!("Apache did not stop; error.log:\n{}", self.error_log());
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Its other children (mod_wsgi daemon managers) stop on their own
        // once it is gone; give them time before killing what is left.
        let alive = |pid: &u32| Path::new(&format!("/proc/{pid}")).exists();
        wait_for(Duration::from_secs(10), || (!children.iter().any(alive)).then_some(()));
        for pid in children.iter().filter(|pid| alive(pid)) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).stderr(Stdio::null()).status();
        }
        // Children started after the list was taken (a restart) would be
        // orphans if the parent had to be killed: none may outlive the test.
        for pid in processes_running(&self.run_dir.path().join("httpd.conf")) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).stderr(Stdio::null()).status();
        }
        exited
    }

    /// One request on a new connection (see [`crate::http_request`]).
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
        crate::http_request(self.address(), method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n--- error.log\n{}", self.error_log()))
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> HttpResponse {
        self.request("GET", path, &[], b"")
    }

    /// The address it listens on.
    pub fn address(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Pids of the processes whose command line names `config` (an Apache
/// and its children).
pub fn processes_running(config: &Path) -> Vec<u32> {
    let needle = config.as_os_str().as_encoded_bytes().to_vec();
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| cmdline.windows(needle.len()).any(|w| w == needle.as_slice()))
        })
        .collect()
}

/// The signal numbers used here (Linux).
mod libc_signal {
    pub const SIGHUP: i32 = 1;
    pub const SIGUSR1: i32 = 10;
    pub const SIGTERM: i32 = 15;
}

/// Where two environs (key -> value text) disagree, one line each, led by
/// `context`: every key's value must match, except the keys of
/// `may_differ` (ids, times, versions), which need only be present on both
/// sides or on neither.
pub fn environ_differences(
    context: &str,
    ours: &std::collections::BTreeMap<String, String>,
    theirs: &std::collections::BTreeMap<String, String>,
    may_differ: &[&str],
) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
    keys.into_iter()
        .filter(|key| {
            if may_differ.contains(&key.as_str()) {
                ours.contains_key(*key) != theirs.contains_key(*key)
            } else {
                ours.get(*key) != theirs.get(*key)
            }
        })
        .map(|key| format!("{context}: {key}: ours {:?}, mod_wsgi {:?}", ours.get(key), theirs.get(key)))
        .collect()
}

/// Environ keys whose values differ by nature between two servers and
/// runs: versions, ids, times, the client's port, and which child and
/// thread took the request.
pub const MAY_DIFFER: &[&str] = &[
    "REMOTE_PORT",
    "SERVER_SOFTWARE",
    "apache.version",
    "mod_wsgi.connection_id",
    "mod_wsgi.version",
    "mod_wsgi.request_id",
    "mod_wsgi.request_start",
    "mod_wsgi.script_start",
    "mod_wsgi.thread_id",
    "mod_wsgi.thread_requests",
    "mod_wsgi.total_requests",
];

/// Runs curl on `url` with extra arguments (`-k` for a self-signed
/// certificate, `-u` for credentials, ...): the status code and the body.
pub fn curl(url: &str, args: &[&str]) -> (u16, String) {
    let output = Command::new("curl")
        .args(["-s", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// `ps` of every process, with the kernel function each waits in.
fn process_table() -> String {
    Command::new("ps")
        .args(["-eo", "pid,ppid,pgid,stat,wchan:32,etime,args"])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_else(|e| format!("ps: {e}"))
}
