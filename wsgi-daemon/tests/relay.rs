//! The client and the daemon-side worker over a real UNIX socket, with a
//! Rust application standing in for Python.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use wsgi_core::testing::RecordingSink;
use wsgi_core::{AppTarget, Environ, ErrorLog, LogLevel, ResponseWriter, RunOutcome, WsgiRunner};
use wsgi_daemon::client::{DaemonClient, ForwardError};
use wsgi_daemon::control::ControlPipe;
use wsgi_daemon::protocol::{
    read_frame, read_handshake, write_frame, write_handshake, Frame, RequestStart, ResponseStart,
};
use wsgi_daemon::worker::{serve, WorkerOptions};

/// Echoes the body with the PATH_INFO; `/fail` fails, `/slow` sleeps,
/// `/strict` gives up (as the client gone) when the body cannot be read.
struct EchoApp {
    calls: AtomicUsize,
}

impl WsgiRunner for EchoApp {
    fn run(
        &self,
        _target: &AppTarget,
        environ: Environ,
        body: &mut dyn Read,
        response: &mut ResponseWriter<'_>,
        _log: &dyn ErrorLog,
    ) -> RunOutcome {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let path = environ.get_str("PATH_INFO").unwrap_or_default().to_string();
        if path == "/fail" {
            let _ = response.fail();
            return RunOutcome::Failed;
        }
        if path == "/slow" {
            std::thread::sleep(Duration::from_millis(1500));
        }
        let mut data = Vec::new();
        if body.read_to_end(&mut data).is_err() && path == "/strict" {
            return RunOutcome::ClientGone;
        }
        let _ = response.start_response("200 OK", vec![("X-Path".into(), path.clone())], false);
        let _ = response.write(&data);
        let _ = response.write(path.as_bytes());
        match response.finish() {
            Ok(_) => RunOutcome::Completed,
            Err(_) => RunOutcome::ClientGone,
        }
    }
}

struct NoLog;
impl ErrorLog for NoLog {
    fn log(&self, _: LogLevel, _: &str) {}
}

fn request(path: &str, has_body: bool) -> RequestStart {
    let mut environ = Environ::default();
    environ.set_str("PATH_INFO", path.to_string());
    environ.set_str("REQUEST_METHOD", "POST");
    RequestStart {
        request_id: 1,
        target: AppTarget {
            script: PathBuf::from("/app.wsgi"),
            callable: "application".into(),
            application_group: String::new(),
            reload_on_change: false,
            script_mtime_us: None,
        },
        environ,
        has_body,
    }
}

fn socket_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("wsgi-daemon-test-{name}-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

fn options(threads: usize) -> WorkerOptions {
    WorkerOptions { socket_timeout: Duration::from_secs(10), ..WorkerOptions::unlimited(threads) }
}

#[test]
fn requests_bodies_and_responses_travel_over_reused_connections() {
    let path = socket_path("relay");
    let listener = UnixListener::bind(&path).unwrap();
    let app = EchoApp { calls: AtomicUsize::new(0) };
    let (stop_read, stop_write) = wsgi_daemon::sys::pipe().unwrap();
    std::thread::scope(|scope| {
        let server =
            scope.spawn(|| serve(&listener, &app, &options(2), &ControlPipe::none(), stop_read.as_raw_fd(), &NoLog));
        let client = DaemonClient::new(path.clone(), Duration::from_secs(5), Duration::from_secs(10));
        // Bodies larger than a frame's chunk arrive whole.
        let body: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        for i in 0..20 {
            let mut sink = RecordingSink::default();
            let path_info = format!("/r{i}");
            client.forward(&request(&path_info, true), &mut &body[..], &mut sink).unwrap();
            assert_eq!(sink.status, 200);
            assert_eq!(sink.headers, vec![("X-Path".to_string(), path_info.clone())]);
            assert_eq!(&sink.body[..body.len()], &body[..]);
            assert_eq!(&sink.body[body.len()..], path_info.as_bytes());
        }
        // A failure before the head is a status for the front end to answer.
        let mut sink = RecordingSink::default();
        match client.forward(&request("/fail", false), &mut std::io::empty(), &mut sink) {
            Err(ForwardError::Failed { status: 500, .. }) => {}
            other => panic!("expected a 500 failure, got {other:?}"),
        }
        // Still serving after it, on a new connection.
        let mut sink = RecordingSink::default();
        client.forward(&request("/after", false), &mut std::io::empty(), &mut sink).unwrap();
        assert_eq!(sink.body, b"/after");
        std::fs::File::from(stop_write).write_all(b"x").unwrap();
        server.join().unwrap();
    });
    assert_eq!(app.calls.load(Ordering::Relaxed), 22);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn idle_connections_do_not_hold_request_threads() {
    let path = socket_path("idle");
    let listener = UnixListener::bind(&path).unwrap();
    let app = EchoApp { calls: AtomicUsize::new(0) };
    let (stop_read, stop_write) = wsgi_daemon::sys::pipe().unwrap();
    std::thread::scope(|scope| {
        let server =
            scope.spawn(|| serve(&listener, &app, &options(1), &ControlPipe::none(), stop_read.as_raw_fd(), &NoLog));
        // Ten clients each keep a connection open; with one request thread
        // every one of them is still served.
        let clients: Vec<DaemonClient> =
            (0..10).map(|_| DaemonClient::new(path.clone(), Duration::from_secs(5), Duration::from_secs(10))).collect();
        for round in 0..3 {
            for client in &clients {
                let mut sink = RecordingSink::default();
                client.forward(&request(&format!("/{round}"), false), &mut std::io::empty(), &mut sink).unwrap();
                assert_eq!(sink.status, 200);
            }
        }
        std::fs::File::from(stop_write).write_all(b"x").unwrap();
        server.join().unwrap();
    });
    let _ = std::fs::remove_file(&path);
}

#[test]
fn no_daemon_listening_is_unavailable_after_the_connect_timeout() {
    let path = socket_path("nobody");
    // A socket that exists but where no process accepts.
    let _listener = UnixListener::bind(&path).unwrap();
    let client = DaemonClient::new(path.clone(), Duration::from_millis(300), Duration::from_secs(10));
    let mut sink = RecordingSink::default();
    match client.forward(&request("/", false), &mut std::io::empty(), &mut sink) {
        Err(ForwardError::Unavailable(_)) => {}
        other => panic!("expected unavailable, got {other:?}"),
    }
    let _ = std::fs::remove_file(&path);
}

// Found by the daemon_serve fuzz target: a request whose body broke off
// before the application answered ended with a ResponseEnd and no head,
// which the front end logs as a daemon's malformed response.
#[test]
fn a_request_body_that_breaks_off_gets_an_error_not_a_headless_end() {
    let path = socket_path("broken-body");
    let listener = UnixListener::bind(&path).unwrap();
    let app = EchoApp { calls: AtomicUsize::new(0) };
    let (stop_read, stop_write) = wsgi_daemon::sys::pipe().unwrap();
    std::thread::scope(|scope| {
        let server =
            scope.spawn(|| serve(&listener, &app, &options(1), &ControlPipe::none(), stop_read.as_raw_fd(), &NoLog));
        let mut connection = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let mut sent = Vec::new();
        write_handshake(&mut sent).unwrap();
        write_frame(&mut sent, &Frame::RequestStart(request("/strict", true))).unwrap();
        write_frame(&mut sent, &Frame::BodyChunk(bytes::Bytes::from_static(b"half a bo"))).unwrap();
        connection.write_all(&sent).unwrap();
        connection.shutdown(std::net::Shutdown::Write).unwrap();
        let mut reader = std::io::BufReader::new(connection);
        read_handshake(&mut reader).unwrap();
        let mut frames = Vec::new();
        while let Ok(Some(frame)) = read_frame(&mut reader) {
            frames.push(frame);
        }
        assert!(
            matches!(&frames[..], [Frame::Error(message)] if message.starts_with("400 ")),
            "the daemon answered {frames:?}"
        );
        std::fs::File::from(stop_write).write_all(b"x").unwrap();
        server.join().unwrap();
    });
    let _ = std::fs::remove_file(&path);
}

/// Relays a request to a fake daemon process that answers with the frames
/// `answer` (after its handshake) and closes; what reached the client.
fn relay_from_fake_daemon(name: &str, answer: &[Frame]) -> (Result<(), ForwardError>, RecordingSink) {
    let path = socket_path(name);
    let listener = UnixListener::bind(&path).unwrap();
    let mut bytes = Vec::new();
    write_handshake(&mut bytes).unwrap();
    for frame in answer {
        write_frame(&mut bytes, frame).unwrap();
    }
    let daemon = std::thread::spawn(move || {
        let (mut connection, _) = listener.accept().unwrap();
        connection.write_all(&bytes).unwrap();
        connection.shutdown(std::net::Shutdown::Write).unwrap();
        let _ = std::io::copy(&mut connection, &mut std::io::sink());
    });
    let client = DaemonClient::new(path.clone(), Duration::from_secs(5), Duration::from_secs(5));
    let mut sink = RecordingSink::default();
    let result = client.forward(&request("/", false), &mut std::io::empty(), &mut sink);
    drop(client);
    daemon.join().unwrap();
    let _ = std::fs::remove_file(path);
    (result, sink)
}

fn head(status: u16, reason: &str, headers: &[(&str, &str)]) -> Frame {
    Frame::ResponseStart(ResponseStart {
        status,
        reason: reason.into(),
        headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
    })
}

// Found by the protocol_exchange fuzz target: a daemon process's head went
// to the client unchecked, control characters (CR, LF) included.
#[test]
fn a_daemon_head_with_control_characters_never_reaches_the_client() {
    for (i, bad) in [
        head(200, "OK", &[("Set-Cookie", "a=\u{5}")]),
        head(200, "OK", &[("X-Injected", "a\r\nLocation: http://evil.example/")]),
        head(200, "OK", &[("Bad Name", "v")]),
        head(200, "OK\r\nX: y", &[]),
        head(0, "Zero", &[]),
    ]
    .into_iter()
    .enumerate()
    {
        let (result, sink) = relay_from_fake_daemon(&format!("badhead{i}"), &[bad, Frame::ResponseEnd]);
        assert!(matches!(result, Err(ForwardError::BadResponse(_))), "{result:?}");
        assert_eq!(sink.heads, 0);
    }
}

// Found by the protocol_exchange fuzz target: a response end (or data)
// before any head was relayed as a finished response with no head at all,
// and a second head went to the client as well.
#[test]
fn a_daemon_response_out_of_order_is_refused() {
    let (result, sink) = relay_from_fake_daemon("nohead", &[Frame::ResponseEnd]);
    assert!(matches!(result, Err(ForwardError::BadResponse(_))), "{result:?}");
    assert_eq!((sink.heads, sink.finished), (0, false));

    let chunk = Frame::ResponseChunk(bytes::Bytes::from_static(b"data"));
    let (result, sink) = relay_from_fake_daemon("datafirst", &[chunk, Frame::ResponseEnd]);
    assert!(matches!(result, Err(ForwardError::BadResponse(_))), "{result:?}");
    assert!(sink.body.is_empty());

    let (result, sink) = relay_from_fake_daemon("bodyend", &[Frame::BodyEnd]);
    assert!(matches!(result, Err(ForwardError::BadResponse(_))), "{result:?}");
    assert_eq!(sink.heads, 0);

    let ok = head(200, "OK", &[]);
    let (result, sink) = relay_from_fake_daemon("twoheads", &[ok.clone(), ok, Frame::ResponseEnd]);
    assert!(matches!(result, Err(ForwardError::Broken(_))), "{result:?}");
    assert_eq!(sink.heads, 1);
}

// Found by the protocol_exchange fuzz target: an Error frame's status was
// whatever three digits began its message.
#[test]
fn a_daemon_error_names_an_error_status_or_means_500() {
    for (message, status) in [("504 request timed out", 504), ("413 too large", 413), ("000 x", 500), ("200 OK", 500)] {
        let (result, _) = relay_from_fake_daemon("errorstatus", &[Frame::Error(message.into())]);
        assert_eq!(result.unwrap_err().recovery(), wsgi_daemon::client::Recovery::Answer(status), "{message}");
    }
}

/// A daemon process that takes one request and goes away after `after`
/// without answering (killed while it ran the request).
fn daemon_that_dies(path: &std::path::Path, after: Duration) -> std::thread::JoinHandle<()> {
    let listener = UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        wsgi_daemon::protocol::write_handshake(&mut writer).unwrap();
        writer.flush().unwrap();
        wsgi_daemon::protocol::read_handshake(&mut reader).unwrap();
        let _ = wsgi_daemon::protocol::read_frame_buffered(&mut reader).unwrap();
        std::thread::sleep(after);
    })
}

#[test]
fn a_daemon_lost_past_the_request_timeout_answers_504_and_before_it_502() {
    let mut process = wsgi_config::DaemonProcess::new("g");
    process.request_timeout = Duration::from_millis(300);
    process.connect_timeout = Duration::from_secs(2);
    for (after, status) in [(Duration::ZERO, 502), (Duration::from_millis(600), 504)] {
        let path = socket_path(&format!("dies-{status}"));
        let daemon = daemon_that_dies(&path, after);
        let client = DaemonClient::for_group(path.clone(), &process);
        let mut sink = RecordingSink::default();
        match client.forward(&request("/", false), &mut std::io::empty(), &mut sink) {
            Err(ForwardError::Failed { status: got, .. }) => assert_eq!(got, status, "closed after {after:?}"),
            other => panic!("closed after {after:?}: expected {status}, got {other:?}"),
        }
        daemon.join().unwrap();
        let _ = std::fs::remove_file(&path);
    }
}
