//! Application groups with a GIL of their own (`WSGIPerInterpreterGIL On`,
//! Python 3.12 or later), through the standalone server and Apache: one
//! group's Python runs while another's holds its GIL; groups stay
//! isolated; many requests over several groups and threads run without a
//! crash. Built against Python 3.11 the directive is refused instead.
//!
//! Parallelism is shown without timing: group `a` raises its GIL's switch
//! interval to an hour and spins in Python until a byte of shared memory
//! changes, holding its GIL all along; group `b` changes it. With a GIL per
//! group, `b` runs meanwhile and `a` sees the change; with one shared GIL,
//! `b` cannot run until `a` gives up (after 5 seconds) and `a` says so.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tests::apache::{Apache, ApacheOptions};
use tests::{Server, TempDir};

const APP: &str = r#"
import mmap, os, sys, time

COUNTER = [0]

def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    query = environ.get('QUERY_STRING', '')
    if path == '/hold':
        # Hold this interpreter's GIL: no switch for an hour, and a loop
        # that calls nothing that releases it (reading shared memory does
        # not; a stat would).
        flag = os.path.join(SITE, query)
        with open(flag, 'wb') as f:
            f.write(b'0')
        with open(flag, 'r+b') as f:
            shared = mmap.mmap(f.fileno(), 1)
        sys.setswitchinterval(3600)
        open(flag + '.started', 'w').close()
        deadline = time.monotonic() + 5
        seen = False
        while time.monotonic() < deadline:
            if shared[0] == 0x31:
                seen = True
                break
        sys.setswitchinterval(0.005)
        shared.close()
        body = 'saw it' if seen else 'gave up'
    elif path == '/release':
        with open(os.path.join(SITE, query), 'r+b') as f:
            f.write(b'1')
        body = 'released'
    elif path == '/count':
        COUNTER[0] += 1
        body = '%s %d %d' % (environ['mod_wsgi.application_group'], COUNTER[0], id(sys.modules))
    else:
        body = environ['mod_wsgi.application_group']
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
"#;

fn site() -> TempDir {
    let site = TempDir::new("own-gil");
    let app = APP.replace("COUNTER = [0]", &format!("COUNTER = [0]\nSITE = {:?}", site.path().display().to_string()));
    site.write("app.wsgi", &app);
    std::fs::set_permissions(site.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    site
}

/// Four groups over one script, with or without a GIL each.
fn config(site: &TempDir, own_gil: bool) -> String {
    let dir = site.path().display();
    let mut text = format!("WSGIPerInterpreterGIL {}\n", if own_gil { "On" } else { "Off" });
    for group in ["a", "b", "c", "d"] {
        text.push_str(&format!("WSGIScriptAlias /{group} {dir}/app.wsgi application-group={group}\n"));
    }
    text
}

fn standalone(site: &TempDir, own_gil: bool) -> Server {
    standalone_with(site, &config(site, own_gil))
}

fn standalone_with(site: &TempDir, text: &str) -> Server {
    let file = site.path().join("site.conf");
    Server::start_with(|port| {
        std::fs::write(&file, format!("Listen 127.0.0.1:{port}\n{text}")).unwrap();
        vec!["--config".into(), file.clone().into(), "--threads".into(), "8".into()]
    })
}

/// `GET path` on the standalone `server`: status and body.
fn status_and_text(server: &Server) -> impl Fn(&str) -> (u16, String) + Sync + '_ {
    |path| {
        let response = server.get(path);
        (response.status(), response.text())
    }
}

/// What `/a/hold` answers while `/b/release` is sent once it holds its GIL.
fn hold_and_release(site: &Path, get: impl Fn(&str) -> (u16, String) + Sync) -> String {
    let flag = format!("flag-{}", std::process::id());
    let started = site.join(format!("{flag}.started"));
    std::thread::scope(|scope| {
        let holder = scope.spawn(|| get(&format!("/a/hold?{flag}")));
        let up = tests::wait_for(Duration::from_secs(20), || started.exists().then_some(()));
        assert!(up.is_some(), "/a/hold never started");
        assert_eq!(get(&format!("/b/release?{flag}")), (200, "released".to_string()));
        let (status, body) = holder.join().unwrap();
        assert_eq!(status, 200, "{body}");
        let _ = std::fs::remove_file(site.join(&flag));
        let _ = std::fs::remove_file(&started);
        body
    })
}

#[test]
fn groups_with_their_own_gil_run_in_parallel_under_the_standalone_server() {
    if !tests::built_python_at_least(3, 12) {
        return refused_where_the_python_has_no_gil_per_interpreter();
    }
    let site = site();
    let server = standalone(&site, true);
    assert_eq!(hold_and_release(site.path(), status_and_text(&server)), "saw it", "{}", server.stderr());
    // Each group keeps its own module state and sys.modules.
    let a1 = server.get("/a/count").text();
    let b1 = server.get("/b/count").text();
    let a2 = server.get("/a/count").text();
    let field = |text: &str, n: usize| text.split(' ').nth(n).unwrap_or_default().to_string();
    assert_eq!((field(&a1, 0), field(&a1, 1)), ("a".into(), "1".into()), "{a1}");
    assert_eq!((field(&b1, 0), field(&b1, 1)), ("b".into(), "1".into()), "{b1}");
    assert_eq!(field(&a2, 1), "2", "{a2}");
    assert_ne!(field(&a1, 2), field(&b1, 2), "the groups share sys.modules");
    drop(server);

    // The same test fails with one GIL for all: it tells the two apart.
    let shared = standalone(&site, false);
    assert_eq!(hold_and_release(site.path(), status_and_text(&shared)), "gave up", "{}", shared.stderr());
}

/// `<WSGIInterpreterOptions application-group=NAME>` with
/// `WSGIPerInterpreterGIL On` gives just those groups their own GIL.
#[test]
fn the_interpreter_options_form_gives_the_groups_it_selects_their_own_gil() {
    if !tests::built_python_at_least(3, 12) {
        return;
    }
    let site = site();
    // Selecting a and b, the holder and the releaser run at once; selecting
    // c and d, they share the main GIL.
    for (selected, expected) in [(["a", "b"], "saw it"), (["c", "d"], "gave up")] {
        let mut text = config(&site, false);
        for group in selected {
            text.push_str(&format!(
                "<WSGIInterpreterOptions application-group={group}>\nWSGIPerInterpreterGIL On\n\
                 </WSGIInterpreterOptions>\n"
            ));
        }
        let server = standalone_with(&site, &text);
        assert_eq!(
            hold_and_release(site.path(), status_and_text(&server)),
            expected,
            "{selected:?}: {}",
            server.stderr()
        );
    }
}

#[test]
fn groups_with_their_own_gil_run_in_parallel_under_apache() {
    tests::require!(tests::apache::APACHE_BINARY, "/usr/bin/curl");
    if !tests::built_python_at_least(3, 12) {
        return;
    }
    let site = site();
    let apache = Apache::start(&ApacheOptions::ours(config(&site, true)));
    let get = |path: &str| tests::apache::curl(&format!("http://127.0.0.1:{}{path}", apache.port()), &[]);
    assert_eq!(hold_and_release(site.path(), get), "saw it", "{}", apache.error_log());
}

/// 100,000 requests over four groups with their own GIL, from eight
/// connections at once, all answered by the right group.
#[test]
fn a_soak_over_four_groups_with_their_own_gil_runs_without_a_crash() {
    if !tests::built_python_at_least(3, 12) {
        return;
    }
    let site = site();
    let server = standalone(&site, true);
    const CLIENTS: usize = 8;
    const EACH: usize = 100_000 / CLIENTS;
    std::thread::scope(|scope| {
        for client in 0..CLIENTS {
            let server = &server;
            scope.spawn(move || {
                let mut connection = server.connect();
                for n in 0..EACH {
                    let group = ["a", "b", "c", "d"][(client + n) % 4];
                    let request = format!("GET /{group}/ HTTP/1.1\r\nHost: localhost\r\n\r\n");
                    connection.send(request.as_bytes()).unwrap();
                    let response = connection.read_response(false).unwrap();
                    assert_eq!((response.status(), response.text()), (200, group.to_string()));
                    // MaxKeepAliveRequests: the server closes after 100.
                    if response.header("connection").is_some_and(|c| c.eq_ignore_ascii_case("close")) {
                        connection = server.connect();
                    }
                }
            });
        }
    });
    assert_eq!(server.get("/a/").text(), "a", "{}", server.stderr());
}

/// Built against 3.11, `WSGIPerInterpreterGIL On` is refused at its line.
fn refused_where_the_python_has_no_gil_per_interpreter() {
    let site = site();
    let file = site.write("site.conf", &config(&site, true));
    let out = Command::new(tests::standalone_binary()).arg("check-config").arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("{}:1: WSGIPerInterpreterGIL On needs Python 3.12 or later", file.display())),
        "{stderr}"
    );
}
