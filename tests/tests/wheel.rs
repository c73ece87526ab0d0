//! The Python wheel: `cargo xtask wheel` builds it, pip installs it with no
//! index into a fresh virtual environment of Debian's Python, and the
//! environment's `wsgi-standalone` then serves an application from a
//! package only that environment has, as does a real Apache loading the
//! module with the lines the environment's `module-config` prints.
//!
//! Nothing here skips: a missing tool (Apache, python3-venv's pip) fails
//! the test.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tests::apache::{Apache, ApacheOptions, WsgiModule};
use tests::{workspace_root, Server, TempDir};

/// The Python the workspace builds against (`.cargo/config.toml`).
const PYTHON: &str = "/usr/bin/python3";

/// The package only the test's virtual environment has; its application
/// answers with where it and `sys.prefix` are, which proves that the
/// environment's package was used.
const PACKAGE: &str = r#"
import sys

def app(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [('mypkg %s prefix %s' % (__file__, sys.prefix)).encode()]
"#;

/// What Apache serves: a script that imports the venv's package (the
/// standalone server takes `mypkg:app` itself).
const SCRIPT: &str = "from mypkg import app as application\n";

fn wheel() -> &'static Path {
    tests::wheel::built()
}

/// `X.Y` of Debian's Python.
fn python_version() -> (u32, u32) {
    let output = run(Command::new(PYTHON).args(["-c", "import sys; print(*sys.version_info[:2])"]));
    let text = String::from_utf8_lossy(&output.stdout);
    let mut words = text.split_whitespace().map(|w| w.parse().expect("a number"));
    (words.next().expect("major"), words.next().expect("minor"))
}

use tests::wheel::run;

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The word after `directive` on its line, unquoted.
fn directive_value(text: &str, directive: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(directive)?.strip_prefix(' ')?;
        Some(rest.trim().trim_matches('"').to_string())
    })
}

/// A fresh virtual environment of Debian's Python, in a world-readable
/// directory (Apache's children, as www-data, read it), with the wheel
/// installed by pip from no index and `mypkg` in its site-packages only.
struct Venv {
    _dir: TempDir,
    path: PathBuf,
}

impl Venv {
    fn new() -> Venv {
        let dir = TempDir::new("wheel-venv");
        let path = std::fs::canonicalize(dir.path()).expect("the temp dir exists").join("venv");
        tests::wheel::install(&path, false);
        let (major, minor) = python_version();
        let site = path.join(format!("lib/python{major}.{minor}/site-packages"));
        std::fs::create_dir(site.join("mypkg")).expect("create mypkg");
        std::fs::write(site.join("mypkg/__init__.py"), PACKAGE).expect("write mypkg");
        Venv { _dir: dir, path }
    }

    fn bin(&self, name: &str) -> PathBuf {
        self.path.join("bin").join(name)
    }

    fn standalone(&self, args: &[&str]) -> Output {
        run(Command::new(self.bin("wsgi-standalone")).args(args).env_remove("VIRTUAL_ENV"))
    }
}

#[test]
fn the_wheel_is_tagged_for_the_python_that_built_it_and_holds_the_module() {
    let (major, minor) = python_version();
    let name = wheel().file_name().unwrap().to_string_lossy().into_owned();
    let arch = std::env::consts::ARCH;
    assert!(name.starts_with("mod_wsgi_rs-"), "{name}");
    assert!(name.ends_with(&format!("-cp{major}{minor}-cp{major}{minor}-linux_{arch}.whl")), "{name}");
    let list = run(Command::new(PYTHON)
        .args(["-c", "import sys, zipfile; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))"])
        .arg(wheel()));
    let names = stdout(&list);
    for wanted in [
        format!("mod_wsgi_rs/server/mod_wsgi_rs-py{major}{minor}.so"),
        "mod_wsgi_rs/__init__.py".to_string(),
        "mod_wsgi_rs/__main__.py".to_string(),
        "mod_wsgi_rs/_built.py".to_string(),
    ] {
        assert!(names.lines().any(|n| n == wanted), "{wanted} missing from {name}:\n{names}");
    }
    assert!(names.lines().any(|n| n.ends_with(".data/scripts/wsgi-standalone")), "{names}");
}

#[test]
fn the_installed_wheel_serves_a_venv_package_standalone_and_under_apache() {
    let venv = Venv::new();
    let (major, minor) = python_version();

    // The commands: the binary and the entry point named for the
    // distribution, which runs it.
    let version = stdout(&venv.standalone(&["--version"]));
    assert!(version.starts_with("wsgi-standalone "), "{version}");
    let help = stdout(&run(Command::new(venv.bin("mod_wsgi_rs")).arg("--help")));
    for command in ["start-server", "module-config", "module-location", "install-module"] {
        assert!(help.contains(command), "{help}");
    }
    let via_python = stdout(&run(Command::new(venv.bin("python")).args(["-m", "mod_wsgi_rs", "--version"])));
    assert_eq!(via_python, version);

    // The module inside the package, where Python says it is.
    let location = PathBuf::from(stdout(&venv.standalone(&["module-location"])).trim());
    let expected = venv
        .path
        .join(format!("lib/python{major}.{minor}/site-packages/mod_wsgi_rs/server/mod_wsgi_rs-py{major}{minor}.so"));
    assert_eq!(location, expected);
    let where_ =
        stdout(&run(Command::new(venv.bin("python")).args(["-c", "import mod_wsgi_rs; print(mod_wsgi_rs.where())"])));
    assert_eq!(where_.trim(), expected.to_str().unwrap());

    // module-config: the module and the environment as Python's home.
    let printed = stdout(&venv.standalone(&["module-config"]));
    assert_eq!(printed.lines().count(), 2, "{printed}");
    assert_eq!(directive_value(&printed, "LoadModule wsgi_module"), Some(expected.display().to_string()), "{printed}");
    assert_eq!(directive_value(&printed, "WSGIPythonHome"), Some(venv.path.display().to_string()), "{printed}");

    let site = TempDir::new("wheel-site");
    let script = site.write("app.wsgi", SCRIPT);
    let package_file = venv.path.join(format!("lib/python{major}.{minor}/site-packages/mypkg/__init__.py"));
    let answer = format!("mypkg {} prefix {}", package_file.display(), venv.path.display());

    // The environment's wsgi-standalone runs with it, not activated,
    // serving the package's callable as gunicorn would name it.
    {
        let server = Server::start_program(&venv.bin("wsgi-standalone"), &[], |_| vec![OsString::from("mypkg:app")]);
        let response = server.get("/");
        assert_eq!(response.status(), 200, "{}", server.stderr());
        assert_eq!(response.text(), answer, "{}", server.stderr());
    }

    // Apache with exactly the printed lines.
    {
        let apache = Apache::start(&ApacheOptions {
            module: WsgiModule::InConfig,
            ..ApacheOptions::ours(format!("{printed}WSGIScriptAlias / {}\n", script.display()))
        });
        let response = apache.get("/");
        assert_eq!(response.status(), 200, "{}", apache.error_log());
        assert_eq!(response.text(), answer, "{}", apache.error_log());
    }

    // install-module copies it and prints the lines for the copy.
    let modules = TempDir::new("wheel-modules");
    let modules_dir = std::fs::canonicalize(modules.path()).unwrap();
    let installed = stdout(&venv.standalone(&["install-module", "--modules-directory", modules_dir.to_str().unwrap()]));
    let copy = modules_dir.join(format!("mod_wsgi_rs-py{major}{minor}.so"));
    assert_eq!(std::fs::read(&copy).expect("the installed copy"), std::fs::read(&expected).unwrap());
    assert_eq!(directive_value(&installed, "LoadModule wsgi_module"), Some(copy.display().to_string()), "{installed}");
    assert_eq!(directive_value(&installed, "WSGIPythonHome"), Some(venv.path.display().to_string()), "{installed}");
}

#[test]
fn a_venv_of_another_python_version_stops_the_commands_naming_both_versions() {
    let (major, minor) = python_version();
    let built = format!("{major}.{minor}");
    let other = format!("{major}.{}", minor + 2);

    // The wheel's binary in an environment of another version (as pip
    // would refuse to put it: the wheel is tagged cpXY).
    let dir = TempDir::new("wheel-other-venv");
    let venv = std::fs::canonicalize(dir.path()).unwrap();
    std::fs::write(venv.join("pyvenv.cfg"), format!("home = /opt/python/bin\nversion = {other}.1\n")).unwrap();
    std::fs::create_dir(venv.join("bin")).unwrap();
    let binary = venv.join("bin/wsgi-standalone");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"));
    wheel();
    std::fs::copy(target.join("wheel/wsgi-standalone"), &binary).expect("copy the wheel's binary");
    let script = dir.write("app.wsgi", SCRIPT);
    let message = format!(
        "wsgi-standalone: this wsgi-standalone was built for Python {built}, but {}, the virtual environment \
         it is installed in, is Python {other}: install the mod_wsgi_rs wheel built for Python {other}",
        venv.display()
    );
    for args in [
        vec!["module-config"],
        vec!["install-module", "--modules-directory", "/nonexistent"],
        vec!["start-server", script.to_str().unwrap()],
    ] {
        let output = Command::new(&binary).args(&args).env_remove("VIRTUAL_ENV").output().expect("run it");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.starts_with(&message), "{args:?}: {stderr}");
        assert!(!stderr.contains("encodings"), "{stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }

    // The entry point, run by a Python of another version than the
    // package's, says so before it runs anything.
    let venv = Venv::new();
    let output = Command::new(venv.bin("python"))
        .args(["-c", &format!("import sys, mod_wsgi_rs, mod_wsgi_rs.__main__ as m; mod_wsgi_rs.PYTHON_VERSION = ({major}, {}); sys.exit(m.main())", minor + 2)])
        .output()
        .expect("run the entry point");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim(),
        format!(
            "mod_wsgi_rs: mod_wsgi_rs was built for Python {other}, but {} is Python {built}: install the wheel built for Python {built}",
            venv.path.display()
        )
    );
}
