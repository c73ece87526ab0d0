//! Request and queue timeouts of the standalone server answer 504, and the
//! server goes on serving.

use tests::{Server, TempDir};

const SLOW_APP: &str = r#"
import time
def application(environ, start_response):
    if environ['PATH_INFO'] == '/slow':
        time.sleep(3)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'done']
"#;

#[test]
fn a_request_running_past_the_request_timeout_gets_504() {
    let dir = TempDir::new("standalone-request-timeout");
    let script = dir.write("app.wsgi", SLOW_APP);
    let server = Server::start([script.as_os_str(), "--request-timeout".as_ref(), "1".as_ref()]);
    let response = server.get("/slow");
    assert_eq!(response.status(), 504, "{response:?}");
    assert!(server.stderr().contains("request timeout"), "{}", server.stderr());
    assert_eq!(server.get("/fast").text(), "done");
}

#[test]
fn a_request_queued_past_the_queue_timeout_gets_504() {
    let dir = TempDir::new("standalone-queue-timeout");
    let script = dir.write("app.wsgi", SLOW_APP);
    let server = Server::start([
        script.as_os_str(),
        "--threads".as_ref(),
        "1".as_ref(),
        "--queue-timeout".as_ref(),
        "1".as_ref(),
    ]);
    let address = server.address();
    // The only worker is busy for 3 s; the next request waits in the queue.
    let busy = std::thread::spawn(move || {
        let mut connection = tests::HttpConnection::open(address);
        connection.send(b"GET /slow HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
        connection.read_response(false).unwrap().text()
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    // The only worker cannot finish before the marker exists, so this 504
    // comes from the wait in the queue, not from the worker picking it up.
    let queued = server.get("/fast");
    assert_eq!(queued.status(), 504, "{queued:?}");
    assert!(server.stderr().contains("Queue timeout expired"), "{}", server.stderr());
    dir.write("release", "");
    assert_eq!(busy.join().unwrap(), "done");
    assert_eq!(server.get("/fast").text(), "done");
}

#[test]
fn the_idle_keep_alive_timeout_is_separate_from_the_header_timeout() {
    let dir = TempDir::new("standalone-idle");
    let script = dir.write("app.wsgi", SLOW_APP);
    let server = Server::start([
        script.as_os_str(),
        "--keep-alive-timeout".as_ref(),
        "1".as_ref(),
        "--header-timeout".as_ref(),
        "30".as_ref(),
    ]);
    // An idle kept-alive connection is closed by the idle timeout, long
    // before the header timeout.
    let mut connection = server.connect();
    connection.send(b"GET /fast HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    assert_eq!(connection.read_response(false).unwrap().text(), "done");
    connection.stream().set_read_timeout(Some(std::time::Duration::from_secs(15))).unwrap();
    let after_idle = connection.read_some(16);
    assert!(matches!(&after_idle, Ok(bytes) if bytes.is_empty()), "expected the server to close: {after_idle:?}");

    // A client sending its head slowly, but never idle for the keep-alive
    // timeout, has the header timeout to finish it.
    let mut slow = server.connect();
    for piece in
        [&b"GET /fast HT"[..], b"TP/1.1\r\n", b"Host: local", b"host\r\nX-A: ", b"1\r\nX-B: 2", b"\r\n", b"\r\n"]
    {
        slow.send(piece).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(400));
    }
    assert_eq!(slow.read_response(false).unwrap().text(), "done");
}
