//! The daemon side of the wire protocol: `worker::serve`, the loop of a
//! daemon process, reading whatever a front end sends.
//!
//! Input: a flag byte, then what the front end sends on a fresh connection.
//! Flag bit 0: the target sends the front end's handshake first (else the
//! input must hold its own). Bit 1: the rest is a list of frames the target
//! encodes, each as a kind byte, a payload length byte and the payload (so
//! that the fuzzer explores frame sequences without getting lengths
//! right); else the rest is sent as it is. Bit 2: a well-formed request
//! (with a body when bit 3 is set) goes first.
//!
//! One daemon serves every input, over a real UNIX socket, with a Rust
//! application that reads the whole body and answers with its length.
//!
//! Invariants: once the front end has sent its input and shut its side,
//! the daemon closes the connection (it never waits for ever); what it sent
//! before is its handshake and then well-formed frames of its own kinds, a
//! response head before any body and only valid header fields in it; and
//! afterwards it still serves a well-formed request on a new connection
//! (bad input loses nothing).

#![no_main]

use std::io::{self, BufReader, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use wsgi_core::response::validate_header;
use wsgi_core::{AppTarget, EnvValue, Environ, ErrorLog, LogLevel, ResponseWriter, RunOutcome, WsgiRunner};
use wsgi_daemon::client::DaemonClient;
use wsgi_daemon::control::ControlPipe;
use wsgi_daemon::protocol::{
    read_frame, read_handshake, write_data_chunk, write_frame, write_handshake, write_request_start, Frame,
    RequestStart,
};
use wsgi_daemon::worker::{serve, WorkerOptions};

/// Reads the whole body, then answers 200 with its length.
struct BodyLength;

impl WsgiRunner for BodyLength {
    fn run(
        &self,
        _target: &AppTarget,
        _environ: Environ,
        body: &mut dyn Read,
        response: &mut ResponseWriter<'_>,
        _log: &dyn ErrorLog,
    ) -> RunOutcome {
        let Ok(length) = io::copy(body, &mut io::sink()) else { return RunOutcome::ClientGone };
        let text = length.to_string();
        let headers =
            vec![("Content-Type".into(), "text/plain".into()), ("Content-Length".into(), text.len().to_string())];
        let _ = response.start_response("200 OK", headers, false);
        let _ = response.write(text.as_bytes());
        match response.finish() {
            Ok(_) => RunOutcome::Completed,
            Err(_) => RunOutcome::ClientGone,
        }
    }
}

/// Drops the daemon's log lines: bad input is expected to be logged.
struct Quiet;

impl ErrorLog for Quiet {
    fn log(&self, _level: LogLevel, _message: &str) {}
}

/// The socket of the one daemon, started on first use and serving until
/// the fuzzer exits.
fn daemon() -> &'static PathBuf {
    static SOCKET: OnceLock<PathBuf> = OnceLock::new();
    SOCKET.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("wsgi-fuzz-serve-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("daemon.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind the daemon socket");
        let (stop_read, stop_write) = wsgi_daemon::sys::pipe().expect("a stop pipe");
        // Never written: the daemon serves until the process ends.
        std::mem::forget::<OwnedFd>(stop_write);
        std::thread::spawn(move || {
            let options = WorkerOptions::unlimited(2);
            serve(&listener, &BodyLength, &options, &ControlPipe::none(), stop_read.as_raw_fd(), &Quiet);
        });
        path
    })
}

fn request(has_body: bool) -> RequestStart {
    let mut environ = Environ::default();
    environ.set_str("REQUEST_METHOD", if has_body { "POST" } else { "GET" });
    environ.set_str("PATH_INFO", "/");
    if has_body {
        environ.set_str("CONTENT_LENGTH", "5");
    }
    environ.set("wsgi.version", EnvValue::Tuple(vec![1, 0]));
    RequestStart {
        request_id: 7,
        target: AppTarget {
            script: PathBuf::from("/srv/app.wsgi"),
            callable: "application".into(),
            application_group: "".into(),
            reload_on_change: false,
            script_mtime_us: None,
        },
        environ,
        has_body,
    }
}

/// The bytes the front end sends, from the input (see the module's text).
fn front_end_bytes(flags: u8, rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if flags & 1 != 0 {
        write_handshake(&mut out).expect("a handshake encodes");
    }
    if flags & 4 != 0 {
        let has_body = flags & 8 != 0;
        write_request_start(&mut out, &request(has_body)).expect("a request encodes");
        if has_body {
            write_data_chunk(&mut out, b"hello", true).expect("a chunk encodes");
            write_frame(&mut out, &Frame::BodyEnd).expect("a frame encodes");
        }
    }
    if flags & 2 == 0 {
        out.extend_from_slice(rest);
        return out;
    }
    let mut records = rest;
    while let [kind, len, tail @ ..] = records {
        let len = usize::from(*len).min(tail.len());
        out.push(*kind);
        out.extend_from_slice(&(len as u32).to_be_bytes());
        out.extend_from_slice(&tail[..len]);
        records = &tail[len..];
    }
    out
}

/// Checks what the daemon sent: its handshake, then well-formed frames of
/// the kinds a daemon sends, each response's head before its body.
fn check_daemon_stream(stream: &[u8]) {
    if stream.is_empty() {
        return;
    }
    let mut reader = BufReader::new(stream);
    read_handshake(&mut reader).expect("the daemon's handshake");
    let mut frames = Vec::new();
    loop {
        match read_frame(&mut reader) {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => break,
            Err(e) => panic!("the daemon sent a malformed frame after {frames:?}: {e}"),
        }
    }
    let mut in_response = false;
    for frame in &frames {
        match frame {
            Frame::ResponseStart(start) => {
                assert!(!in_response, "a second head in one response: {frames:?}");
                assert!((100..=999).contains(&start.status), "status {}", start.status);
                for (name, value) in &start.headers {
                    assert!(validate_header(name, value).is_ok(), "header {name:?}: {value:?}");
                }
                in_response = true;
            }
            Frame::ResponseChunk(_) => assert!(in_response, "a body chunk before the head: {frames:?}"),
            Frame::ResponseEnd => {
                assert!(in_response, "a response end without a head: {frames:?}");
                in_response = false;
            }
            Frame::Error(_) => in_response = false,
            Frame::Pong => assert!(!in_response, "a pong inside a response: {frames:?}"),
            other => panic!("the daemon sent a front end's frame: {:?}", other.kind()),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let socket = daemon();
    let input = front_end_bytes(flags, rest);

    let mut connection = UnixStream::connect(socket).expect("connect to the daemon");
    connection.set_read_timeout(Some(Duration::from_secs(20))).expect("a read timeout");
    // The daemon may close before it has read everything: a failed write
    // is an answer too.
    let _ = connection.write_all(&input);
    let _ = connection.shutdown(Shutdown::Write);
    let mut answer = Vec::new();
    if let Err(e) = connection.read_to_end(&mut answer) {
        assert!(
            !matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut),
            "the daemon neither answered nor closed within 20 s of the input's end"
        );
    }
    check_daemon_stream(&answer);

    // The daemon still serves a well-formed request.
    let client = DaemonClient::new(socket.clone(), Duration::from_secs(5), Duration::from_secs(20));
    let mut sink = wsgi_core::testing::CountingSink::default();
    let mut body = &b"hello"[..];
    client.forward(&request(true), &mut body, &mut sink).expect("the daemon serves after the input");
    assert_eq!(sink.status, 200, "the daemon answers the request after the input");
    assert_eq!(sink.body_bytes, 1, "the body length, as text");
});
