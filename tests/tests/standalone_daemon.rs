//! Daemon mode in the standalone server: `start-server --daemon` and
//! WSGIDaemonProcess groups in `--config` files, on real processes.

use std::time::Duration;

use tests::{field, Server, TempDir};

fn site() -> TempDir {
    let site = TempDir::new("standalone-daemon");
    site.write("app.wsgi", tests::PROCESS_APP);
    site
}

/// A server from a configuration with one daemon group `NAME OPTIONS`.
fn start_config(site: &TempDir, daemon: &str) -> Server {
    let name = daemon.split_whitespace().next().unwrap_or("grp").to_string();
    let config = site.write(
        &format!("{name}.conf"),
        &format!(
            "WSGIDaemonProcess {daemon}\nWSGIScriptAlias /app {}/app.wsgi process-group={name} application-group=%{{GLOBAL}}\n",
            site.path().display()
        ),
    );
    Server::start(["--config".as_ref(), config.as_os_str()])
}

#[test]
fn daemon_option_runs_the_script_in_a_daemon_group_without_python_in_front() {
    let site = site();
    let script = site.path().join("app.wsgi");
    let server = Server::start([script.as_os_str(), "--daemon".as_ref(), "--processes".as_ref(), "2".as_ref()]);
    let response = server.get("/x");
    assert_eq!(response.status(), 200, "{}", server.stderr());
    let text = response.text();
    assert_eq!(field(&text, "group"), format!("127.0.0.1:{}", server.port()));
    assert_ne!(field(&text, "pid"), server.pid().to_string(), "served by the front end itself");
    assert_eq!(field(&text, "multiprocess"), "true");
    let body: Vec<u8> = (0..2_000_000u32).map(|i| (i % 239) as u8).collect();
    let echoed = server.request("POST", "/echo", &[], &body);
    assert!(echoed.body == body, "echo differs");
    // A chunked body (no Content-Length) reaches the daemon too; requests
    // without a body (none relayed) read an empty wsgi.input.
    let pieces: [&[u8]; 3] = [b"chunked ", &body[..70_000], b" end"];
    let echoed = server.request("POST", "/echo", &[("Transfer-Encoding", "chunked")], &tests::chunked(&pieces));
    assert!(echoed.body == pieces.concat(), "chunked echo differs ({} bytes)", echoed.body.len());
    assert!(server.request("POST", "/echo", &[("Content-Length", "0")], b"").body.is_empty());
    assert!(server.get("/echo").body.is_empty());
}

#[test]
fn flags_follow_the_processes_and_threads_table() {
    let site = site();
    for (n, row) in tests::DAEMON_FLAGS.into_iter().enumerate() {
        let server = start_config(&site, &format!("flags{n} {}", row.0));
        tests::assert_daemon_flags(&server.get("/app/flags").text(), row);
    }
}

#[test]
fn maximum_requests_recycles_without_failing_a_request() {
    let site = site();
    let server = start_config(&site, "recycle processes=1 threads=4 maximum-requests=20");
    let load = tests::Load::start(server.address(), "/app/load", 4);
    std::thread::sleep(Duration::from_secs(4));
    let report = load.finish();
    let failures = &report.failures;
    assert!(failures.is_empty(), "failed during recycling: {failures:?}\n{}", server.stderr());
    let pids: std::collections::BTreeSet<&str> = report.bodies.iter().map(|b| field(b, "pid")).collect();
    assert!(pids.len() >= 2, "no recycle: {pids:?}");
}

#[test]
fn a_killed_daemon_is_replaced_and_timeouts_answer_504() {
    let site = site();
    let server = start_config(&site, "timeouts processes=1 threads=2 request-timeout=1");
    let before = field(&server.get("/app/x").text(), "pid").to_string();
    let _ = std::process::Command::new("kill").args(["-9", &before]).status();
    let replaced = tests::wait_for(Duration::from_secs(1), || {
        tests::http_request(server.address(), "GET", "/app/x", &[], b"")
            .ok()
            .filter(|r| r.status() == 200 && field(&r.text(), "pid") != before)
    });
    assert!(replaced.is_some(), "not replaced within 1 s:\n{}", server.stderr());
    assert_eq!(server.get("/app/sleep?5").status(), 504, "{}", server.stderr());
}

#[test]
fn a_group_that_cannot_start_answers_503_and_says_why() {
    let site = site();
    let server = start_config(&site, "broken python-home=/nonexistent/python connect-timeout=2");
    assert_eq!(server.get("/app/x").status(), 503);
    let log = server.stderr();
    assert!(log.contains("cannot start"), "{log}");
    assert!(log.contains("Unable to connect to WSGI daemon process 'broken'"), "{log}");
}

#[test]
fn sigterm_stops_daemon_processes_and_removes_the_socket() {
    let site = site();
    let prefix = site.path().join("sock");
    let config = site.write(
        "term.conf",
        &format!(
            "WSGISocketPrefix {}\nWSGIDaemonProcess term processes=2 threads=2\nWSGIScriptAlias /app {}/app.wsgi process-group=term\n",
            prefix.display(),
            site.path().display()
        ),
    );
    let mut server = Server::start(["--config".as_ref(), config.as_os_str()]);
    assert_eq!(server.get("/app/x").status(), 200);
    let sockets = || {
        std::fs::read_dir(site.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".sock"))
            .count()
    };
    assert_eq!(sockets(), 1);
    let daemons = tests::child_pids(server.pid()).into_iter().flat_map(tests::child_pids).collect::<Vec<_>>();
    assert_eq!(daemons.len(), 2, "{daemons:?}");
    server.terminate();
    assert!(server.wait_exit(Duration::from_secs(20)).is_some_and(|s| s.success()), "{}", server.stderr());
    let gone = tests::wait_for(Duration::from_secs(10), || {
        daemons.iter().all(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    });
    assert!(gone.is_some(), "daemon processes left: {daemons:?}");
    assert_eq!(sockets(), 0, "stale socket");
}

#[test]
fn wsgi_restrict_process_refuses_a_group_it_does_not_list() {
    let site = site();
    let dir = site.path().display();
    let config = site.write(
        "restrict.conf",
        &format!(
            "WSGIDaemonProcess allowed processes=1 threads=1\nWSGIDaemonProcess other processes=1 threads=1\n\
             WSGIScriptAlias /a {dir}/app.wsgi process-group=allowed\n\
             WSGIScriptAlias /b {dir}/app.wsgi process-group=other\n\
             <Location />\n  WSGIRestrictProcess allowed\n</Location>\n"
        ),
    );
    let server = Server::start(["--config".as_ref(), config.as_os_str()]);
    let allowed = server.get("/a/x");
    assert_eq!(allowed.status(), 200, "{}", server.stderr());
    assert_eq!(field(&allowed.text(), "group"), "allowed");
    assert_eq!(server.get("/b/x").status(), 500);
    assert!(server.stderr().contains("WSGIRestrictProcess"), "{}", server.stderr());
}

/// Responses the I/O thread relays from a daemon process (requests whose
/// body is read before the relay): streamed chunk by chunk as the
/// application yields them, cut off when it fails mid-response, whole when
/// large, and without a body for HEAD.
const RELAY_APP: &str = r#"
import os, time

def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/stream':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        def chunks():
            yield b'first;'
            # The rest waits for the client to have seen the first chunk.
            go = environ['QUERY_STRING']
            for _ in range(600):
                if os.path.exists(go):
                    break
                time.sleep(0.05)
            yield b'second;'
            yield b'last'
        return chunks()
    if path == '/fail':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        def broken():
            yield b'partial;'
            raise RuntimeError('failed mid-response')
        return broken()
    if path == '/large':
        body = bytes(range(256)) * 12288
        start_response('200 OK', [('Content-Type', 'application/octet-stream'), ('Content-Length', str(len(body)))])
        return [body]
    data = environ['wsgi.input'].read()
    start_response('200 OK', [('Content-Type', 'application/octet-stream'), ('X-Method', environ['REQUEST_METHOD'])])
    return [data]
"#;

#[test]
fn the_relay_streams_breaks_and_answers_head_as_the_application_says() {
    let site = TempDir::new("standalone-relay");
    let script = site.write("relay.wsgi", RELAY_APP);
    let server = Server::start([script.as_os_str(), "--daemon".as_ref()]);

    let go = site.path().join("go");
    let mut connection = server.connect();
    let request = format!("GET /stream?{} HTTP/1.1\r\nHost: localhost\r\n\r\n", go.display());
    connection.send(request.as_bytes()).unwrap();
    let head = connection.read_head().unwrap();
    assert_eq!(head.status, 200, "{}", server.stderr());
    assert_eq!(connection.read_chunk().unwrap().as_deref(), Some(&b"first;"[..]), "the first chunk comes alone");
    std::fs::write(&go, "").unwrap();
    let mut rest = Vec::new();
    while let Some(chunk) = connection.read_chunk().unwrap() {
        rest.extend(chunk);
    }
    assert_eq!(rest, b"second;last");

    // Failed after its head: the chunked body never ends.
    let mut connection = server.connect();
    connection.send(b"GET /fail HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let head = connection.read_head().unwrap();
    assert_eq!(head.status, 200);
    let mut seen = Vec::new();
    let ended = loop {
        match connection.read_chunk() {
            Ok(Some(chunk)) => seen.extend(chunk),
            Ok(None) => break true,
            Err(_) => break false,
        }
    };
    assert_eq!(seen, b"partial;");
    assert!(!ended, "a response broken mid-way must not end as if whole");

    let large = server.get("/large");
    assert_eq!(large.body.len(), 256 * 12288);
    assert!(large.body.chunks(256).all(|c| c.iter().enumerate().all(|(i, &b)| b as usize == i)));

    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let echoed = server.request("POST", "/echo", &[], &body);
    assert!(echoed.body == body, "a body read before the relay arrives whole");
    let head = server.request("HEAD", "/stream?/nonexistent", &[], b"");
    assert_eq!((head.status(), head.body.len()), (200, 0));
    // The connections kept from all this still serve.
    for _ in 0..20 {
        assert_eq!(server.request("POST", "/echo", &[], b"again").body, b"again");
    }
}

/// A response the front end does not take: each chunk the application
/// yields is flushed, so its thread ends up waiting for room on the socket.
const FLOOD_APP: &str = r#"
import os

def application(environ, start_response):
    if environ['PATH_INFO'] == '/flood':
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        progress = environ['QUERY_STRING']
        def chunks():
            for n in range(65536):
                with open(progress, 'w') as f:
                    f.write(str(n))
                yield b'x' * 8192
        return chunks()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'still serving']
"#;

#[test]
fn a_flush_that_waits_for_the_front_end_leaves_python_to_other_threads() {
    let site = TempDir::new("standalone-flood");
    let script = site.write("flood.wsgi", FLOOD_APP);
    let server = Server::start([script.as_os_str(), "--daemon".as_ref(), "--threads".as_ref(), "2".as_ref()]);
    let progress = site.path().join("progress");
    let mut stalled = server.connect();
    let request = format!("GET /flood?{} HTTP/1.1\r\nHost: localhost\r\n\r\n", progress.display());
    stalled.send(request.as_bytes()).unwrap();

    // Wait until the application stops making progress: the client reads
    // nothing, so the buffers between it and the daemon process are full.
    let read = || std::fs::read_to_string(&progress).unwrap_or_default();
    let mut last = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = read();
        if !now.is_empty() && now == last {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the flood never stalled: {now} chunks");
        last = now;
    }
    assert!(last.parse::<u32>().unwrap() < 65535, "the whole flood went out: {last}");

    // The stalled thread waits without the interpreter's lock.
    let response = server.get("/other");
    assert_eq!(response.status(), 200, "{}", server.stderr());
    assert_eq!(response.text(), "still serving");
    drop(stalled);
}
