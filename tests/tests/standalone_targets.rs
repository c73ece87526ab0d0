//! Application targets as gunicorn and granian take them
//! (`module:callable`, `module:factory()`), mod_wsgi-express's
//! `--application-type`/`--entry-point`, and `--working-directory`, served
//! by the standalone server in embedded and daemon mode.

use std::path::Path;
use std::process::Command;

use tests::{standalone_binary, Server, TempDir};

/// The server of `args`, started in `dir`, with its temporary files (a
/// module target's handler) under `site`, which the test removes even
/// when it kills the server.
fn serve<'a>(dir: &Path, site: &TempDir, args: impl IntoIterator<Item = &'a str>) -> Server {
    Server::start_in(dir, &[("TMPDIR", site.path().as_os_str())], args)
}

/// A package `shop` with an application, a factory that counts its calls
/// and an application that reports where it runs.
fn site() -> TempDir {
    let dir = TempDir::new("targets");
    std::fs::create_dir(dir.path().join("shop")).expect("create the package");
    dir.write("shop/__init__.py", "");
    dir.write(
        "shop/web.py",
        r#"
import os, sys

factory_calls = 0

def app(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [('app from %s' % __name__).encode()]

def where(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [('cwd=%s path0=%s' % (os.getcwd(), sys.path[0])).encode()]

def create_app():
    global factory_calls
    factory_calls += 1
    calls = factory_calls
    def made(environ, start_response):
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [('made by factory call %d in pid %d' % (calls, os.getpid())).encode()]
    return made
"#,
    );
    dir
}

#[test]
fn a_module_callable_is_served_from_the_current_directory_as_gunicorn_does() {
    let site = site();
    let server = serve(site.path(), &site, ["shop.web:app"]);
    let response = server.get("/");
    assert_eq!((response.status(), response.text()), (200, "app from shop.web".to_string()), "{}", server.stderr());
}

#[test]
fn a_factory_is_called_once_per_interpreter_in_embedded_and_daemon_mode() {
    let site = site();
    for mode in [&[][..], &["--daemon"][..]] {
        let mut args = vec!["shop.web:create_app()", "--threads", "4"];
        args.extend_from_slice(mode);
        let server = serve(site.path(), &site, args);
        let answers: Vec<String> = (0..12).map(|_| server.get("/").text()).collect();
        for answer in &answers {
            assert!(answer.starts_with("made by factory call 1 in pid "), "{mode:?}: {answers:?}\n{}", server.stderr());
        }
        // One process served them all: one interpreter, one call.
        assert!(answers.iter().all(|a| *a == answers[0]), "{mode:?}: {answers:?}");
    }
}

#[test]
fn the_express_options_name_the_module_and_the_working_directory() {
    let site = site();
    let canonical = std::fs::canonicalize(site.path()).expect("the site exists");
    let expected = format!("cwd={0} path0={0}", canonical.display());
    for mode in [&[][..], &["--daemon"][..]] {
        let mut args: Vec<&str> = vec!["--application-type", "module", "--entry-point", "shop.web"];
        args.extend_from_slice(&["--callable-object", "where", "--working-directory"]);
        args.push(site.path().to_str().expect("a UTF-8 path"));
        args.extend_from_slice(mode);
        // Started from elsewhere: the working directory is what counts.
        let server = serve(Path::new("/"), &site, args);
        let response = server.get("/");
        assert_eq!((response.status(), response.text()), (200, expected.clone()), "{mode:?}: {}", server.stderr());
    }
}

#[test]
fn a_relative_working_directory_is_the_one_daemon_processes_start_in() {
    let site = site();
    let canonical = std::fs::canonicalize(site.path()).expect("the site exists");
    let parent = canonical.parent().expect("a parent");
    let name = canonical.file_name().expect("a name").to_str().expect("UTF-8");
    let args = ["shop.web:where", "--working-directory", name, "--daemon"];
    let server = serve(parent, &site, args);
    let expected = format!("cwd={0} path0={0}", canonical.display());
    assert_eq!(server.get("/").text(), expected, "{}", server.stderr());
}

#[test]
fn a_script_path_keeps_working_and_can_be_forced_with_the_application_type() {
    let site = site();
    site.write("hello:world.wsgi", "from shop.web import app as application\n");
    let server = serve(
        site.path(),
        &site,
        ["--application-type", "script", "hello:world.wsgi", "--python-path", site.path().to_str().expect("UTF-8")],
    );
    assert_eq!(server.get("/").text(), "app from shop.web", "{}", server.stderr());
}

#[test]
fn the_handler_of_a_module_target_is_removed_when_the_server_stops() {
    let site = site();
    let handlers = || {
        std::fs::read_dir(site.path())
            .expect("read the site")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("wsgi-standalone-app."))
            .count()
    };
    let mut server = serve(site.path(), &site, ["shop.web:app", "--processes", "2"]);
    assert_eq!(server.get("/").text(), "app from shop.web");
    assert_eq!(handlers(), 1);
    server.terminate();
    assert!(server.wait_exit(std::time::Duration::from_secs(30)).is_some_and(|s| s.success()), "{}", server.stderr());
    assert_eq!(handlers(), 0, "{}", server.stderr());
}

#[test]
fn a_missing_callable_is_a_500_with_the_reason_logged() {
    let site = site();
    let server = serve(site.path(), &site, ["shop.web:nothing_here"]);
    assert_eq!(server.get("/").status(), 500);
    let stderr = server.stderr();
    assert!(stderr.contains("AttributeError") && stderr.contains("nothing_here"), "{stderr}");
}

#[test]
fn a_target_python_cannot_import_is_refused_before_serving() {
    for (target, reason) in [
        ("my-shop:app", "'my-shop' is not a Python module name"),
        ("shop.web:app(1)", "'app(1)' is not a callable's name"),
    ] {
        let output = Command::new(standalone_binary())
            .args(["start-server", target, "--port", "1"])
            .output()
            .expect("run wsgi-standalone");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{target}: {stderr}");
        assert!(stderr.contains(reason), "{target}: {stderr}");
    }
}
