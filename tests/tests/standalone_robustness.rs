//! Clients and applications that misbehave must not hold a Python worker
//! or leave processes behind.

use std::time::Duration;

use tests::{wait_for, HttpConnection, Server, TempDir};

const APP: &str = r#"
import time
def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/endless':
        def forever():
            while True:
                yield b'tick\n'
                time.sleep(0.05)
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return forever()
    if path == '/half':
        def half():
            yield b'x' * 100000
            raise RuntimeError('failed mid-response')
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return half()
    if path == '/big':
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return [b'b' * (64 * 1024)] * 200
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'ok']
"#;

fn one_thread_server(dir: &TempDir, extra: &[&str]) -> Server {
    let script = dir.write("app.wsgi", APP);
    let mut args: Vec<std::ffi::OsString> = vec![script.into(), "--threads".into(), "1".into()];
    args.extend(extra.iter().map(Into::into));
    Server::start(args)
}

#[test]
fn head_of_an_endless_stream_does_not_hold_the_worker() {
    let dir = TempDir::new("robust-head");
    let server = one_thread_server(&dir, &[]);
    let mut connection = server.connect();
    connection.send(b"HEAD /endless HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let head = connection.read_head().unwrap();
    assert_eq!(head.status, 200);
    drop(connection);
    // The only worker must come free once the client has gone.
    let served = wait_for(Duration::from_secs(20), || (server.get("/").text() == "ok").then_some(()));
    assert!(served.is_some(), "the worker stayed busy\n{}", server.stderr());
}

#[test]
fn a_failure_mid_response_breaks_the_connection() {
    let dir = TempDir::new("robust-half");
    let server = one_thread_server(&dir, &[]);
    let mut connection = server.connect();
    connection.send(b"GET /half HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let response = connection.read_response(false);
    assert!(response.is_err(), "a cut-off body must not arrive as a complete response: {response:?}");
    assert!(server.stderr().contains("failed mid-response"), "{}", server.stderr());
    assert_eq!(server.get("/").text(), "ok");
}

#[test]
fn a_client_that_never_reads_frees_its_worker_after_the_socket_timeout() {
    let dir = TempDir::new("robust-noread");
    let server =
        one_thread_server(&dir, &["--socket-timeout", "2", "--queue-timeout", "30", "--request-timeout", "30"]);
    let mut stalled = HttpConnection::open(server.address());
    stalled.send(b"GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    // Never read: 12.5 MiB cannot fit the socket buffers and channel.
    let served = wait_for(Duration::from_secs(30), || (server.get("/").text() == "ok").then_some(()));
    assert!(served.is_some(), "the worker stayed blocked on the stalled client\n{}", server.stderr());
    drop(stalled);
}

#[test]
fn serving_processes_do_not_outlive_a_killed_supervisor() {
    let dir = TempDir::new("robust-orphans");
    let script = dir.write("app.wsgi", APP);
    let server = Server::start([script.as_os_str(), "--processes".as_ref(), "2".as_ref()]);
    let children = wait_for(Duration::from_secs(20), || {
        let pids = tests::child_pids(server.pid());
        (pids.len() == 2).then_some(pids)
    })
    .expect("two serving processes");
    std::process::Command::new("kill").args(["-9", &server.pid().to_string()]).status().unwrap();
    for child in children {
        let gone = wait_for(Duration::from_secs(20), || {
            (!std::path::Path::new(&format!("/proc/{child}/status")).exists()).then_some(())
        });
        assert!(gone.is_some(), "serving process {child} outlived its supervisor");
    }
}

#[test]
fn host_must_be_given_once_and_errors_are_in_the_access_log() {
    let dir = TempDir::new("robust-host");
    let script = dir.write("app.wsgi", APP);
    let server = Server::start([script.as_os_str(), "--access-log".as_ref()]);
    for request in [
        &b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n",
    ] {
        let mut connection = server.connect();
        connection.send(request).unwrap();
        assert_eq!(connection.read_response(false).unwrap().status(), 400);
    }
    let mut connection = server.connect();
    connection.send(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(connection.read_response(false).unwrap().text(), "ok", "HTTP/1.0 needs no Host");
    assert_eq!(server.get("/missing%00").status(), 400);
    let logged = wait_for(Duration::from_secs(10), || {
        let log = server.stdout();
        (log.contains("\"GET / HTTP/1.1\" 400") && log.contains("\"GET / HTTP/1.0\" 200 2")).then_some(log)
    });
    assert!(logged.is_some(), "access log:\n{}", server.stdout());
}

#[test]
fn a_supervisor_whose_processes_cannot_start_gives_up() {
    let dir = TempDir::new("robust-crashloop");
    let script = dir.write("app.wsgi", APP);
    let port = tests::free_port().to_string();
    let mut child = std::process::Command::new(tests::standalone_binary())
        .arg("start-server")
        .arg(&script)
        .args(["--port", &port, "--processes", "2", "--python-home", "/nonexistent/python"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_for(Duration::from_secs(60), || child.try_wait().ok().flatten());
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the supervisor kept restarting processes that cannot start");
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(stderr.contains("exited before serving; giving up"), "{stderr}");
}

#[test]
fn options_star_is_answered_by_the_server() {
    let dir = TempDir::new("robust-options");
    let script = dir.write("app.wsgi", APP);
    let server = Server::start([script.as_os_str()]);
    let mut connection = server.connect();
    connection.send(b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let response = connection.read_response(false).unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.header("allow"), Some("GET,HEAD,POST,OPTIONS"));
}

#[test]
fn an_absolute_form_target_names_the_host() {
    let dir = TempDir::new("robust-absolute");
    let script = dir.write(
        "app.wsgi",
        "def application(environ, start_response):\n    start_response('200 OK', [])\n    keys = ('REQUEST_URI', 'HTTP_HOST', 'SERVER_NAME', 'SERVER_PORT', 'PATH_INFO', 'QUERY_STRING')\n    return ['|'.join(environ[k] for k in keys).encode()]\n",
    );
    let server = Server::start([script.as_os_str()]);
    let mut connection = server.connect();
    connection
        .send(b"GET http://other.example:9999/x?q=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let response = connection.read_response(false).unwrap();
    assert_eq!(response.text(), "http://other.example:9999/x?q=1|other.example:9999|other.example|9999|/x|q=1");
}

#[test]
fn options_that_a_config_file_decides_are_refused_with_config() {
    for extra in [&["--url-alias", "/static", "/tmp"][..], &["--limit-request-body", "5"][..]] {
        let out = std::process::Command::new(tests::standalone_binary())
            .args(["start-server", "--config", "/nonexistent.conf"])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"), "{extra:?}");
    }
}
