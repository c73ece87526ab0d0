//! Where the embedded Python's home comes from: never from whichever
//! `python3` comes first on `PATH`. The configured home (`--python-home`,
//! `WSGIPythonHome`, `python-home=`), else the activated virtual
//! environment (`VIRTUAL_ENV`), else the installation the server was built
//! against; a home of another Python version stops the server at start-up
//! naming both versions. Driven through the real binaries: the standalone
//! server (embedded and daemon mode) and Apache with our module.

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use tests::apache::{Apache, ApacheOptions, APACHE_BINARY};
use tests::{free_port, require, standalone_binary, wait_for, Server, TempDir};

/// The interpreter the workspace builds against (`PYO3_PYTHON` in
/// `.cargo/config.toml`): Debian's.
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// Embedded mode, then daemon mode.
const MODES: [&[&str]; 2] = [&[], &["--daemon"]];

/// An application that reports where its Python comes from, one
/// `key=value` per line (`path=` once per `sys.path` entry).
const PROBE_APP: &str = r#"
import sys

def _import(name):
    try:
        return __import__(name).__file__
    except Exception as e:
        return 'failed: %r' % (e,)

def application(environ, start_response):
    lines = [
        'prefix=' + sys.prefix,
        'base_prefix=' + sys.base_prefix,
        'exec_prefix=' + sys.exec_prefix,
        'executable=' + sys.executable,
        'version=' + sys.version.split()[0],
        'flask=' + _import('flask'),
        'venv_probe=' + _import('venv_only_probe'),
    ] + ['path=' + p for p in sys.path]
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return ['\n'.join(lines).encode()]
"#;

/// What the probe application reported.
#[derive(Debug)]
struct Facts {
    text: String,
}

impl Facts {
    fn get(&self, key: &str) -> &str {
        let prefix = format!("{key}=");
        self.text
            .lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no {key} in:\n{}", self.text))
    }

    fn path(&self) -> Vec<&str> {
        self.text.lines().filter_map(|line| line.strip_prefix("path=")).collect()
    }
}

/// The system interpreter's installation, as it reports it itself.
struct System {
    /// `sys.base_prefix` (`/usr`).
    prefix: String,
    /// Its full version (`3.11.2`).
    version: String,
    /// `X.Y`.
    short: String,
}

impl System {
    /// `PREFIX/bin/pythonX.Y`, the `sys.executable` the server reports.
    fn executable(&self) -> String {
        format!("{}/bin/python{}", self.prefix, self.short)
    }

    /// An `X.Y` that is not the system's.
    fn other_version(&self) -> &'static str {
        if self.short == "3.9" {
            "3.10"
        } else {
            "3.9"
        }
    }

    /// The start of the message refusing `subject` of version `other`.
    fn mismatch(&self, subject: &str, other: &str) -> String {
        format!("{subject} is Python {other}, but this server embeds Python {}", self.short)
    }
}

fn system() -> &'static System {
    static SYSTEM: OnceLock<System> = OnceLock::new();
    SYSTEM.get_or_init(|| {
        let output = Command::new(SYSTEM_PYTHON)
            .args(["-I", "-c", "import sys; print(sys.base_prefix); print(sys.version.split()[0])"])
            .output()
            .expect("run the system Python");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let text = String::from_utf8(output.stdout).expect("UTF-8");
        let mut lines = text.lines();
        let prefix = lines.next().expect("a prefix").to_string();
        let version = lines.next().expect("a version").to_string();
        let short = version.splitn(3, '.').take(2).collect::<Vec<_>>().join(".");
        System { prefix, version, short }
    })
}

/// A directory holding the probe application.
fn site() -> TempDir {
    let site = TempDir::new("python-home-site");
    site.write("app.wsgi", PROBE_APP);
    site
}

/// A foreign Python installation that CPython's own search would adopt if
/// it came first on `PATH`: an executable `bin/python3` (printing a prefix
/// of its own) and a standard library landmark of the embedded version,
/// whose "library" cannot start anything. Guaranteed foreign, so the tests
/// need no pyenv.
fn foreign_installation() -> TempDir {
    let foreign = TempDir::new("python-home-foreign");
    let python = foreign.write("bin/python3", &format!("#!/bin/sh\necho {}\n", foreign.path().display()));
    std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).expect("chmod python3");
    let stdlib = format!("lib/python{}", system().short);
    foreign.write(&format!("{stdlib}/os.py"), "raise ImportError('the foreign standard library was used')\n");
    foreign.write(&format!("{stdlib}/encodings/__init__.py"), "raise ImportError('the foreign encodings were used')\n");
    foreign
}

/// pyenv's interpreters of the embedded `X.Y` version, and its shims, when
/// pyenv is installed (it is on the development machine; CI relies on
/// [`foreign_installation`]).
fn pyenv_dirs() -> Vec<PathBuf> {
    let root = std::env::var_os("PYENV_ROOT").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root/.pyenv"));
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("versions"))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&format!("{}.", system().short)))
                .map(|e| e.path().join("bin"))
                .filter(|bin| bin.join("python3").exists())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs.push(root.join("shims"));
    dirs.into_iter().filter(|d| d.is_dir()).collect()
}

/// `first` ahead of the test's own `PATH`.
fn path_with(first: &[PathBuf]) -> OsString {
    let own = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = first.iter().cloned().chain(std::env::split_paths(&own)).collect();
    std::env::join_paths(dirs).expect("a valid PATH")
}

/// The `PATH`s to start servers with: the foreign installation first, and
/// (when present) pyenv's interpreters of the same version first.
fn foreign_paths(foreign: &TempDir) -> Vec<OsString> {
    let mut paths = vec![path_with(&[foreign.path().join("bin")])];
    let pyenv = pyenv_dirs();
    if !pyenv.is_empty() {
        paths.push(path_with(&pyenv));
    }
    paths
}

/// A virtual environment made by the system Python, with
/// `venv_only_probe` in its site-packages only.
fn make_venv(system_site_packages: bool) -> TempDir {
    let venv = TempDir::new("python-home-venv");
    let mut command = Command::new(SYSTEM_PYTHON);
    command.args(["-m", "venv", "--without-pip"]);
    if system_site_packages {
        command.arg("--system-site-packages");
    }
    let output = command.arg(venv.path()).output().expect("run python3 -m venv");
    assert!(output.status.success(), "python3 -m venv failed: {}", String::from_utf8_lossy(&output.stderr));
    venv.write(&format!("lib/python{}/site-packages/venv_only_probe.py", system().short), "MARK = 1\n");
    venv
}

/// Rewrites the `version` line of a virtual environment's `pyvenv.cfg`.
fn set_venv_version(venv: &Path, version: &str) {
    let cfg = venv.join("pyvenv.cfg");
    let text = std::fs::read_to_string(&cfg).expect("read pyvenv.cfg");
    let text: String = text
        .lines()
        .map(|line| if line.starts_with("version") { format!("version = {version}\n") } else { format!("{line}\n") })
        .collect();
    std::fs::write(&cfg, text).expect("write pyvenv.cfg");
}

/// An installation-shaped directory of another version: `lib/pythonX.Y/os.py`.
fn other_version_home() -> TempDir {
    let home = TempDir::new("python-home-other");
    home.write(&format!("lib/python{}/os.py", system().other_version()), "\n");
    home
}

/// Starts `start-server SCRIPT ARGS` with `env` and returns what the probe
/// reports.
fn serve_and_probe(env: &[(&str, &OsStr)], script: &Path, args: &[&OsStr]) -> (Server, Facts) {
    let mut all: Vec<OsString> = vec![script.as_os_str().to_owned()];
    all.extend(args.iter().map(|a| a.to_os_string()));
    let server = Server::start_with_env(env, |_| all.clone());
    let response = server.get("/");
    assert_eq!(response.status(), 200, "{}\n{}", response.text(), server.stderr());
    let facts = Facts { text: response.text() };
    (server, facts)
}

/// Runs `start-server ARGS` with `env`, which must exit unsuccessfully
/// within 20 s; its standard error.
fn start_fails(env: &[(&str, &OsStr)], args: &[&OsStr]) -> String {
    let logs = TempDir::new("python-home-fails");
    let stderr_path = logs.path().join("stderr");
    let mut child = Command::new(standalone_binary())
        .arg("start-server")
        .args(args)
        .arg("--port")
        .arg(free_port().to_string())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).expect("create stderr file"))
        .spawn()
        .expect("spawn wsgi-standalone");
    let status = wait_for(Duration::from_secs(20), || child.try_wait().expect("poll the server"));
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("start-server {args:?} kept running; stderr:\n{stderr}");
    };
    assert!(!status.success(), "start-server {args:?} exited successfully; stderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "a typed error, not a panic:\n{stderr}");
    stderr
}

/// Checks that `facts` describe the system installation, untouched by
/// what is on `PATH`.
fn assert_system_installation(facts: &Facts, context: &str) {
    let system = system();
    assert_eq!(facts.get("prefix"), system.prefix, "{context}: {facts:?}");
    assert_eq!(facts.get("base_prefix"), system.prefix, "{context}");
    assert_eq!(facts.get("exec_prefix"), system.prefix, "{context}");
    assert_eq!(facts.get("executable"), system.executable(), "{context}: not a shim or a foreign python3");
    assert_eq!(facts.get("version"), system.version, "{context}");
    let flask = facts.get("flask");
    assert!(flask.starts_with(&format!("{}/", system.prefix)), "{context}: flask (python3-flask) imports: {flask}");
    for entry in facts.path() {
        assert!(!entry.contains("pyenv") && !entry.contains("python-home-foreign"), "{context}: {entry} on sys.path");
    }
}

#[test]
fn the_installation_built_against_is_used_whatever_python3_comes_first_on_path() {
    let site = site();
    let script = site.path().join("app.wsgi");
    let foreign = foreign_installation();
    for path in foreign_paths(&foreign) {
        // An activated virtual environment would count: none here.
        let env = [("PATH", path.as_os_str()), ("VIRTUAL_ENV", OsStr::new(""))];
        for mode in MODES {
            let mode: Vec<&OsStr> = mode.iter().map(OsStr::new).collect();
            let (server, facts) = serve_and_probe(&env, &script, &mode);
            assert_system_installation(&facts, &format!("PATH={path:?} {mode:?}"));
            assert!(
                server.stderr().contains(&format!(
                    "Python home {} (the installation this server was built against",
                    system().prefix
                )),
                "the chosen home is logged:\n{}",
                server.stderr()
            );
        }
    }
}

#[test]
fn an_activated_virtual_environment_is_used_with_its_site_packages() {
    let site = site();
    let script = site.path().join("app.wsgi");
    let foreign = foreign_installation();
    let venv = make_venv(true);
    let path = path_with(&[venv.path().join("bin"), foreign.path().join("bin")]);
    let env = [("PATH", path.as_os_str()), ("VIRTUAL_ENV", venv.path().as_os_str())];
    for mode in MODES {
        let mode: Vec<&OsStr> = mode.iter().map(OsStr::new).collect();
        let (_server, facts) = serve_and_probe(&env, &script, &mode);
        let context = format!("{mode:?}: {facts:?}");
        assert_eq!(Path::new(facts.get("prefix")), venv.path(), "{context}");
        assert_eq!(Path::new(facts.get("exec_prefix")), venv.path(), "{context}");
        assert_eq!(facts.get("base_prefix"), system().prefix, "{context}");
        assert_eq!(Path::new(facts.get("executable")), venv.path().join("bin/python"), "{context}");
        assert!(
            facts.get("venv_probe").starts_with(&venv.path().display().to_string()),
            "the venv's site-packages: {context}"
        );
        assert!(facts.get("flask").starts_with(&system().prefix), "system site-packages, as configured: {context}");
    }
}

#[test]
fn a_virtual_environment_given_as_python_home_is_used_as_its_own_python_would() {
    let site = site();
    let script = site.path().join("app.wsgi");
    let foreign = foreign_installation();
    // Without the system site-packages: flask must not be importable.
    let venv = make_venv(false);
    let path = path_with(&[foreign.path().join("bin")]);
    let env = [("PATH", path.as_os_str()), ("VIRTUAL_ENV", OsStr::new(""))];
    for mode in MODES {
        let mut args = vec![OsStr::new("--python-home"), venv.path().as_os_str()];
        args.extend(mode.iter().map(OsStr::new));
        let (_server, facts) = serve_and_probe(&env, &script, &args);
        let context = format!("{mode:?}: {facts:?}");
        assert_eq!(Path::new(facts.get("prefix")), venv.path(), "{context}");
        assert_eq!(Path::new(facts.get("executable")), venv.path().join("bin/python"), "{context}");
        assert!(facts.get("venv_probe").starts_with(&venv.path().display().to_string()), "{context}");
        assert!(facts.get("flask").starts_with("failed"), "no system site-packages: {context}");
    }

    // What the environment's own interpreter sees, the server sees.
    let output = Command::new(venv.path().join("bin/python"))
        .args(["-c", "import sys; print('\\n'.join(sys.path[1:]))"])
        .env_remove("PYTHONPATH")
        .output()
        .expect("run the venv's python");
    let own: Vec<String> = String::from_utf8_lossy(&output.stdout).lines().map(str::to_string).collect();
    let (_server, facts) = serve_and_probe(&env, &script, &["--python-home".as_ref(), venv.path().as_os_str()]);
    let served: Vec<&str> =
        facts.path().into_iter().filter(|p| !p.starts_with(&site.path().display().to_string())).collect();
    assert_eq!(served, own, "sys.path of the server and of {}/bin/python", venv.path().display());
}

#[test]
fn a_python_home_of_another_version_stops_the_server_at_start_up() {
    let site = site();
    let script = site.path().join("app.wsgi");
    let other = other_version_home();
    let expected = system().mismatch(&format!("python home {}", other.path().display()), system().other_version());
    for mode in MODES {
        let mut args = vec![script.as_os_str(), OsStr::new("--python-home"), other.path().as_os_str()];
        args.extend(mode.iter().map(OsStr::new));
        let stderr = start_fails(&[], &args);
        assert!(stderr.contains(&expected), "{mode:?}: expected {expected:?} in:\n{stderr}");
        assert!(!stderr.contains("serving on"), "{mode:?}: refused before serving:\n{stderr}");
    }
}

#[test]
fn a_virtual_environment_of_another_version_stops_the_server_at_start_up() {
    let site = site();
    let script = site.path().join("app.wsgi");
    let venv = make_venv(false);
    let other = system().other_version();
    set_venv_version(venv.path(), &format!("{other}.2"));
    let activated = [("VIRTUAL_ENV", venv.path().as_os_str())];
    for mode in MODES {
        // Activated.
        let mut args = vec![script.as_os_str()];
        args.extend(mode.iter().map(OsStr::new));
        let stderr = start_fails(&activated, &args);
        let expected =
            system().mismatch(&format!("virtual environment {} (VIRTUAL_ENV)", venv.path().display()), other);
        assert!(stderr.contains(&expected), "{mode:?}: expected {expected:?} in:\n{stderr}");
        // Given as the home.
        args.extend([OsStr::new("--python-home"), venv.path().as_os_str()]);
        let stderr = start_fails(&[("VIRTUAL_ENV", OsStr::new(""))], &args);
        let expected = system().mismatch(&format!("python home {}", venv.path().display()), other);
        assert!(stderr.contains(&expected), "{mode:?}: expected {expected:?} in:\n{stderr}");
    }
}

#[test]
fn apache_uses_the_installation_built_against_whatever_python3_comes_first_on_path() {
    require!(APACHE_BINARY);
    let site = site();
    let foreign = foreign_installation();
    let path = path_with(&[foreign.path().join("bin")]);
    let apache = Apache::start(&ApacheOptions {
        env: vec![("PATH", path), ("VIRTUAL_ENV", OsString::new())],
        ..ApacheOptions::ours(format!("WSGIScriptAlias /probe {}/app.wsgi\n", site.path().display()))
    });
    let response = apache.get("/probe");
    assert_eq!(response.status(), 200, "{}\n{}", response.text(), apache.error_log());
    assert_system_installation(&Facts { text: response.text() }, "Apache");
    let logged = format!("Python home {} (the installation this server was built against", system().prefix);
    assert!(apache.error_log().contains(&logged), "{}", apache.error_log());
}

#[test]
fn apache_refuses_a_python_home_of_another_version_and_runs_daemon_groups_in_theirs() {
    require!(APACHE_BINARY);
    let site = site();
    let other = other_version_home();
    let venv = make_venv(false);
    let dir = site.path().display();
    let expected = system().mismatch(&format!("python home {}", other.path().display()), system().other_version());
    // A home of another version, for embedded mode or for a daemon group,
    // stops Apache at start-up with both versions named.
    let logged = Apache::refused(&ApacheOptions::ours(format!(
        "WSGIPythonHome {other}\nWSGIScriptAlias /embedded {dir}/app.wsgi\n",
        other = other.path().display()
    )));
    assert!(logged.contains(&expected), "expected {expected:?} in:\n{logged}");
    let logged = Apache::refused(&ApacheOptions::ours(format!(
        "WSGIDaemonProcess old-group threads=1 python-home={other}\n\
         WSGIScriptAlias /old {dir}/app.wsgi process-group=old-group application-group=%{{GLOBAL}}\n",
        other = other.path().display()
    )));
    let daemon_refused = format!("daemon group 'old-group': {expected}");
    assert!(logged.contains(&daemon_refused), "expected {daemon_refused:?} in:\n{logged}");
    assert!(!logged.contains("panicked"), "{logged}");

    // A daemon group may run in a virtual environment of the right version.
    let apache = Apache::start(&ApacheOptions::ours(format!(
        "WSGIDaemonProcess venv-group threads=2 python-home={venv}\n\
         WSGIScriptAlias /venv {dir}/app.wsgi process-group=venv-group application-group=%{{GLOBAL}}\n",
        venv = venv.path().display(),
    )));
    let response = apache.get("/venv");
    assert_eq!(response.status(), 200, "{}\n{}", response.text(), apache.error_log());
    let facts = Facts { text: response.text() };
    assert_eq!(Path::new(facts.get("prefix")), venv.path(), "{facts:?}");
    assert_eq!(Path::new(facts.get("executable")), venv.path().join("bin/python"), "{facts:?}");
    assert!(facts.get("venv_probe").starts_with(&venv.path().display().to_string()), "{facts:?}");
}
