//! `start-server --processes N --maximum-requests M`: several serving
//! processes under a supervisor, recycled without failing a request.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tests::{wait_for, HttpConnection, Server, TempDir};

const PID_APP: &str = r#"
import os
def application(environ, start_response):
    body = ('%d %s' % (os.getpid(), environ['wsgi.multiprocess'])).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
"#;

#[test]
fn recycling_under_load_fails_no_request() {
    let dir = TempDir::new("standalone-recycle");
    let script = dir.write("app.wsgi", PID_APP);
    let mut server = Server::start([
        script.as_os_str(),
        "--processes".as_ref(),
        "2".as_ref(),
        "--maximum-requests".as_ref(),
        "15".as_ref(),
        "--threads".as_ref(),
        "2".as_ref(),
        "--keep-alive-timeout".as_ref(),
        "2".as_ref(),
    ]);
    let pids = Arc::new(Mutex::new(BTreeSet::new()));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let address = server.address();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (pids, failures) = (pids.clone(), failures.clone());
            std::thread::spawn(move || {
                // Kept-alive connections, reopened when the server closes one
                // after a response (as a retiring process does).
                let mut connection = HttpConnection::open(address);
                for i in 0..60 {
                    let request = b"GET /pid HTTP/1.1\r\nHost: localhost\r\n\r\n";
                    let result = connection.send(request).and_then(|()| connection.read_response(false));
                    match result {
                        Ok(response) if response.status() == 200 => {
                            let text = response.text();
                            let mut parts = text.split(' ');
                            pids.lock().unwrap().insert(parts.next().unwrap().to_string());
                            assert_eq!(parts.next(), Some("True"), "wsgi.multiprocess");
                            if response.header("connection") == Some("close") {
                                connection = HttpConnection::open(address);
                            }
                        }
                        other => failures.lock().unwrap().push(format!("request {i}: {other:?}")),
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "failed requests: {failures:#?}\n{}", server.stderr());
    // A replacement may still be starting when the load ends: keep asking
    // (bounded) until it serves.
    let _ = wait_for(Duration::from_secs(20), || {
        let text = server.get("/pid").text();
        let mut pids = pids.lock().unwrap();
        pids.insert(text.split(' ').next().unwrap_or("").to_string());
        (pids.len() > 2).then_some(())
    });
    let seen = pids.lock().unwrap().len();
    eprintln!("distinct serving pids: {seen}");
    assert!(seen > 2, "240 requests at 15 per process must have recycled processes; saw {seen} pids");
    assert!(server.stderr().contains("reached its maximum requests"), "{}", server.stderr());

    // SIGTERM stops the supervisor and every serving process.
    let children = tests::child_pids(server.pid());
    server.terminate();
    let status = server.wait_exit(Duration::from_secs(30)).expect("the supervisor exits");
    assert!(status.success(), "exit status {status:?}\n{}", server.stderr());
    for child in children {
        assert!(
            wait_for(Duration::from_secs(10), || (!std::path::Path::new(&format!("/proc/{child}")).exists())
                .then_some(()))
            .is_some(),
            "serving process {child} is left behind"
        );
    }
}

#[test]
fn a_killed_process_is_replaced() {
    let dir = TempDir::new("standalone-kill");
    let script = dir.write("app.wsgi", PID_APP);
    let server = Server::start([script.as_os_str(), "--processes".as_ref(), "2".as_ref()]);
    let children = wait_for(Duration::from_secs(20), || {
        let children = tests::child_pids(server.pid());
        (children.len() == 2).then_some(children)
    })
    .expect("two serving processes");
    let victim = children[0];
    std::process::Command::new("kill").args(["-9", &victim.to_string()]).status().unwrap();
    let replaced = wait_for(Duration::from_secs(20), || {
        let now = tests::child_pids(server.pid());
        (now.len() == 2 && !now.contains(&victim)).then_some(now)
    });
    assert!(
        replaced.is_some(),
        "no replacement for {victim}: {:?}\n{}",
        tests::child_pids(server.pid()),
        server.stderr()
    );
    for _ in 0..10 {
        assert_eq!(server.get("/").status(), 200);
    }
    assert!(server.stderr().contains("exited unexpectedly"), "{}", server.stderr());
}

#[test]
fn reload_on_changes_serves_the_new_code() {
    let dir = TempDir::new("standalone-reload");
    let lib = dir.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::write(lib.join("helper.py"), "VERSION = 'one'\n").unwrap();
    let script = dir.write(
        "app.wsgi",
        "import helper\ndef application(environ, start_response):\n    start_response('200 OK', [])\n    return [helper.VERSION.encode()]\n",
    );
    let server =
        Server::start([script.as_os_str(), "--reload-on-changes".as_ref(), "--python-path".as_ref(), lib.as_os_str()]);
    assert_eq!(server.get("/").text(), "one");
    std::fs::write(lib.join("helper.py"), "VERSION = 'two'\n").unwrap();
    let later = std::time::SystemTime::now() + Duration::from_secs(2);
    std::fs::File::options().write(true).open(lib.join("helper.py")).unwrap().set_modified(later).unwrap();
    let reloaded = wait_for(Duration::from_secs(30), || {
        let response = server.get("/");
        (response.status() == 200 && response.text() == "two").then_some(())
    });
    assert!(reloaded.is_some(), "still serving the old module\n{}", server.stderr());
}
