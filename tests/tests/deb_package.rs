//! The Debian package of the Apache module (`cargo xtask deb`): built,
//! installed with apt in place of Debian's mod_wsgi, enabled with
//! `a2enmod wsgi_rs` and loaded by a graceful restart of a running Apache
//! that reads the system's `mods-enabled/`, which then serves an
//! application through the module as the package installed it.
//!
//! It swaps system packages: Debian's `libapache2-mod-wsgi-py3`, which the
//! other Apache tests use as their reference, is removed by the package's
//! Conflicts, and a guard puts it back (with the modules enabled as they
//! were) even when the test fails. One test in its own binary, so that it
//! never runs beside other tests of the same binary (cargo runs test
//! binaries one at a time).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tests::apache::{processes_running, APACHE_BINARY, REFERENCE_MODULE};
use tests::{free_port, http_request, wait_for, workspace_root, TempDir};

const PACKAGE: &str = "libapache2-mod-wsgi-rs";
const REFERENCE_PACKAGE: &str = "libapache2-mod-wsgi-py3";
const INSTALLED_MODULE: &str = "/usr/lib/apache2/modules/mod_wsgi_rs.so";
const MODS_ENABLED: &str = "/etc/apache2/mods-enabled";
/// The modules whose enabled state installing and removing the packages
/// changes (Debian's mod_wsgi and ours).
const MODULES: [&str; 2] = ["wsgi", "wsgi_rs"];

/// What the test needs on the system: it fails, never skips, without one.
const NEEDED: [&str; 8] = [
    APACHE_BINARY,
    "/usr/bin/apt-get",
    "/usr/bin/dpkg-deb",
    "/usr/bin/dpkg-shlibdeps",
    "/usr/sbin/a2enmod",
    "/usr/sbin/a2dismod",
    "/usr/share/apache2/apache2-maintscript-helper",
    REFERENCE_MODULE,
];

const HELLO_APP: &str = r#"
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'Hello from the package!']
"#;

fn run(program: &str, args: &[&str], dir: Option<&Path>) -> Output {
    let mut command = Command::new(program);
    command.args(args).env("DEBIAN_FRONTEND", "noninteractive").stdin(Stdio::null());
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    command.output().unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

/// Runs the command and returns its standard output; panics with its
/// output when it fails.
fn run_ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args, None);
    assert!(out.status.success(), "{program} {args:?} failed: {}", describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn describe(out: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `dpkg-query`'s `${Status}` of `package` ("" when dpkg never heard of it).
fn status(package: &str) -> String {
    let out = run("dpkg-query", &["-W", "-f=${Status}", package], None);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn installed(package: &str) -> bool {
    status(package) == "install ok installed"
}

/// `dpkg -l | grep mod-wsgi`.
fn mod_wsgi_packages() -> String {
    run_ok("dpkg", &["-l"]).lines().filter(|line| line.contains("mod-wsgi")).collect::<Vec<_>>().join("\n")
}

/// The names in mods-enabled, sorted.
fn mods_enabled() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(MODS_ENABLED)
        .expect("read mods-enabled")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn module_enabled(module: &str) -> bool {
    Path::new(MODS_ENABLED).join(format!("{module}.load")).exists()
}

/// Puts the system's mod_wsgi packages and enabled modules back as they
/// were: removes ours (purge: dpkg forgets it), reinstalls Debian's mod_wsgi
/// (from the .deb saved before the swap when there is one), restores its
/// automatic-install mark and each of [`MODULES`]' enabled state. Runs on
/// drop when the test did not run it, so a failed test leaves no trace.
struct SystemRestore {
    saved_reference: Option<PathBuf>,
    reference_was_auto: bool,
    enabled_before: Vec<(&'static str, bool)>,
    done: bool,
}

impl SystemRestore {
    fn restore(&mut self) -> Result<(), String> {
        self.done = true;
        let mut errors = Vec::new();
        let mut attempt = |program: &str, args: &[&str]| {
            let out = run(program, args, None);
            if !out.status.success() {
                errors.push(format!("{program} {args:?}: {}", describe(&out)));
            }
        };
        if !status(PACKAGE).is_empty() && !status(PACKAGE).contains("not-installed") {
            attempt("apt-get", &["purge", "-y", PACKAGE]);
        }
        if !installed(REFERENCE_PACKAGE) {
            let what = match &self.saved_reference {
                Some(deb) => deb.to_string_lossy().into_owned(),
                None => REFERENCE_PACKAGE.to_string(),
            };
            attempt("apt-get", &["install", "-y", "-o", "Dpkg::Options::=--force-confold", &what]);
        }
        if self.reference_was_auto {
            attempt("apt-mark", &["auto", REFERENCE_PACKAGE]);
        }
        for (module, was_enabled) in self.enabled_before.clone() {
            if module_enabled(module) == was_enabled {
                continue;
            }
            if was_enabled {
                attempt("a2enmod", &["-q", module]);
            } else {
                attempt("a2dismod", &["-q", "-f", module]);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("\n"))
        }
    }
}

impl Drop for SystemRestore {
    fn drop(&mut self) {
        if !self.done {
            if let Err(e) = self.restore() {
                eprintln!("could not restore the system's mod_wsgi packages:\n{e}");
            }
        }
    }
}

/// Apache started from our configuration (ServerRoot /etc/apache2, the
/// system's enabled modules), in the foreground in its own process group;
/// stopped on drop, its children with it.
struct RunningApache {
    child: Child,
    config: PathBuf,
}

impl RunningApache {
    fn signal(&self, signal: &str) {
        let _ = Command::new("kill").args([signal, &self.child.id().to_string()]).stderr(Stdio::null()).status();
    }

    /// SIGTERM, then SIGKILL for whatever of it is left after 15 s.
    fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let children = tests::child_pids(self.child.id());
        self.signal("-TERM");
        if wait_for(Duration::from_secs(15), || self.child.try_wait().ok().flatten()).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let alive = |pid: &u32| Path::new(&format!("/proc/{pid}")).exists();
        wait_for(Duration::from_secs(10), || (!children.iter().any(alive)).then_some(()));
        let leftovers = children.iter().copied().filter(alive).chain(processes_running(&self.config));
        for pid in leftovers.collect::<Vec<_>>() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).stderr(Stdio::null()).status();
        }
    }
}

impl Drop for RunningApache {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

#[test]
fn the_deb_installs_enables_and_serves_through_a_graceful_restart() {
    let started = Instant::now();
    let missing: Vec<&str> = NEEDED.iter().copied().filter(|path| !Path::new(path).exists()).collect();
    assert!(missing.is_empty(), "missing (cargo xtask deps installs them): {}", missing.join(", "));
    assert_eq!(run_ok("id", &["-u"]).trim(), "0", "installing a package needs root");
    assert!(installed(REFERENCE_PACKAGE), "{REFERENCE_PACKAGE} must be installed (cargo xtask deps installs it)");
    assert!(
        status(PACKAGE).is_empty() || status(PACKAGE).contains("not-installed"),
        "{PACKAGE} is already known to dpkg ({}): purge it first, the test puts the system back as it found it",
        status(PACKAGE)
    );
    let packages_before = mod_wsgi_packages();
    let enabled_before = mods_enabled();

    // The package, as `cargo xtask deb` builds it.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(&cargo)
        .current_dir(workspace_root())
        .args(["run", "--quiet", "--package", "xtask", "--", "deb"])
        .output()
        .expect("run cargo xtask deb");
    assert!(out.status.success(), "cargo xtask deb: {}", describe(&out));
    let arch = run_ok("dpkg", &["--print-architecture"]).trim().to_string();
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"));
    let deb = workspace_root()
        .join(target)
        .join("debian")
        .join(format!("{PACKAGE}_{}_{arch}.deb", env!("CARGO_PKG_VERSION")));
    assert!(deb.is_file(), "no {}:\n{}", deb.display(), String::from_utf8_lossy(&out.stdout));
    let size = std::fs::metadata(&deb).expect("the .deb").len();
    eprintln!("built {} ({size} bytes)", deb.display());
    let deb_path = deb.to_str().expect("a UTF-8 path");

    let contents = run_ok("dpkg-deb", &["-c", deb_path]);
    for file in [
        "./usr/lib/apache2/modules/mod_wsgi_rs.so",
        "./etc/apache2/mods-available/wsgi_rs.load",
        "./etc/apache2/mods-available/wsgi_rs.conf",
    ] {
        assert!(contents.lines().any(|line| line.ends_with(file)), "dpkg-deb -c lists no {file}:\n{contents}");
    }
    assert!(contents.lines().all(|line| line.contains(" root/root ")), "files not owned by root:\n{contents}");
    let conffiles = run_ok("dpkg-deb", &["-I", deb_path, "conffiles"]);
    assert_eq!(conffiles, "/etc/apache2/mods-available/wsgi_rs.load\n/etc/apache2/mods-available/wsgi_rs.conf\n");

    // Debian's mod_wsgi, saved (the version installed) so that putting it
    // back needs no network; without it the guard installs it by name.
    let work = TempDir::new("deb-package");
    let reference_version = run_ok("dpkg-query", &["-W", "-f=${Version}", REFERENCE_PACKAGE]);
    let download =
        run("apt-get", &["download", &format!("{REFERENCE_PACKAGE}={reference_version}")], Some(work.path()));
    let saved_reference = std::fs::read_dir(work.path())
        .expect("read the work directory")
        .flatten()
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|ext| ext == "deb"));
    if saved_reference.is_none() {
        eprintln!("could not save {REFERENCE_PACKAGE} {reference_version}: {}", describe(&download));
    }
    let reference_was_auto = run_ok("apt-mark", &["showauto", REFERENCE_PACKAGE]).trim() == REFERENCE_PACKAGE;
    let mut restore = SystemRestore {
        saved_reference,
        reference_was_auto,
        enabled_before: MODULES.iter().map(|module| (*module, module_enabled(module))).collect(),
        done: false,
    };

    let install = run("apt-get", &["install", "-y", deb_path], None);
    assert!(install.status.success(), "apt-get install {deb_path}: {}", describe(&install));
    assert!(installed(PACKAGE), "{}", describe(&install));
    assert!(!installed(REFERENCE_PACKAGE), "the Conflicts did not remove {REFERENCE_PACKAGE}");
    assert!(!module_enabled("wsgi"), "Debian's wsgi stayed enabled after its package was removed");
    assert!(Path::new(INSTALLED_MODULE).is_file());
    // Enabled by the postinst, as Debian's mod_wsgi is.
    assert!(module_enabled("wsgi_rs"), "the postinst did not enable wsgi_rs:\n{}", describe(&install));

    let shown = run_ok("dpkg", &["-s", PACKAGE]);
    let field = |name: &str| -> String {
        shown
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
            .unwrap_or_else(|| panic!("dpkg -s shows no {name}:\n{shown}"))
            .to_string()
    };
    let conflicts = field("Conflicts");
    assert!(conflicts.split(", ").any(|name| name == REFERENCE_PACKAGE), "Conflicts: {conflicts}");
    // The libpython the installed module links, by its soname, and the
    // version of the package installed: the build's own.
    let dynamic = run_ok("readelf", &["-d", INSTALLED_MODULE]);
    let soname = dynamic
        .lines()
        .filter(|line| line.contains("(NEEDED)"))
        .filter_map(|line| line.split('[').nth(1)?.strip_suffix(']'))
        .find(|name| name.starts_with("libpython"))
        .unwrap_or_else(|| panic!("the module links no libpython:\n{dynamic}"));
    let python_package = soname.split(".so").next().expect("a soname");
    let python_version = run_ok("dpkg-query", &["-W", "-f=${Version}", python_package]);
    let depends = field("Depends");
    let expected = format!("{python_package} (>= {python_version})");
    assert!(depends.split(", ").any(|entry| entry == expected), "Depends: {depends}\nexpected {expected}");
    for entry in ["apache2-api-20120211", "libc6"] {
        assert!(depends.split(", ").any(|d| d.split(' ').next() == Some(entry)), "Depends: {depends}");
    }
    eprintln!("Depends: {depends}");

    // A running Apache without the module: a2dismod, then started.
    run_ok("a2dismod", &["-q", "wsgi_rs"]);
    let site = TempDir::new("deb-package-site");
    let app = site.write("hello.wsgi", HELLO_APP);
    let run_dir = TempDir::new("deb-package-run");
    let port = free_port();
    let config = format!(
        "ServerRoot /etc/apache2\n\
         Include mods-enabled/*.load\n\
         Include mods-enabled/*.conf\n\
         Listen 127.0.0.1:{port}\n\
         ServerName localhost\n\
         PidFile {run}/httpd.pid\n\
         ErrorLog {run}/error.log\n\
         LogLevel info\n\
         DefaultRuntimeDir {run}\n\
         Mutex file:{run} default\n\
         User www-data\n\
         Group www-data\n\
         DocumentRoot {site}\n\
         <Directory {site}>\n    Require all granted\n</Directory>\n\
         <IfModule wsgi_module>\n    WSGIScriptAlias /hello {app}\n</IfModule>\n",
        run = run_dir.path().display(),
        site = site.path().display(),
        app = app.display(),
    );
    let config_path = run_dir.write("httpd.conf", &config);
    let stderr = std::fs::File::create(run_dir.path().join("stderr.log")).expect("create stderr log");
    let child = Command::new(APACHE_BINARY)
        .process_group(0)
        .args(["-DFOREGROUND", "-f"])
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start apache2");
    let apache = RunningApache { child, config: config_path };
    let error_log = || read(&run_dir.path().join("error.log"));
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let get = || http_request(address, "GET", "/hello", &[], b"").ok();
    let before = wait_for(Duration::from_secs(20), get).unwrap_or_else(|| {
        panic!("Apache did not start:\n{}\n{}", error_log(), read(&run_dir.path().join("stderr.log")))
    });
    assert_eq!(before.status(), 404, "served /hello before wsgi_rs was enabled:\n{}", error_log());

    // The README's `a2enmod wsgi_rs && apachectl graceful`: SIGUSR1 is
    // what `apachectl graceful` sends to the parent.
    run_ok("a2enmod", &["-q", "wsgi_rs"]);
    assert!(module_enabled("wsgi_rs"));
    apache.signal("-USR1");
    let served = wait_for(Duration::from_secs(30), || get().filter(|response| response.status() == 200))
        .unwrap_or_else(|| panic!("no 200 from /hello after the graceful restart:\n{}", error_log()));
    assert_eq!(served.text(), "Hello from the package!");
    let log = error_log();
    assert!(log.contains("mod_wsgi-rs"), "the server banner names no mod_wsgi-rs:\n{log}");

    let parent = apache.child.id();
    drop(apache);
    assert!(!Path::new(&format!("/proc/{parent}")).exists(), "Apache's parent {parent} remains");
    assert!(processes_running(&run_dir.path().join("httpd.conf")).is_empty(), "Apache processes remain");

    restore.restore().expect("the system's mod_wsgi packages put back");
    assert!(installed(REFERENCE_PACKAGE));
    assert!(Path::new(REFERENCE_MODULE).exists(), "{REFERENCE_MODULE} is missing after the restore");
    assert!(status(PACKAGE).is_empty() || status(PACKAGE).contains("not-installed"), "{}", status(PACKAGE));
    assert_eq!(mod_wsgi_packages(), packages_before, "dpkg -l | grep mod-wsgi changed");
    assert_eq!(mods_enabled(), enabled_before, "mods-enabled changed");
    eprintln!("deb_package: {:.1} s", started.elapsed().as_secs_f64());
}
