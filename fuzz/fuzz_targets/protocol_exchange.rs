//! A whole exchange of the daemon wire protocol, as the front end sees it.
//!
//! Input: a flag byte (bit 0: the request has a body; bits 1-3: the size
//! of the reads through which the front end's side decodes the stream a
//! second time), then the byte stream a daemon process sends after its
//! handshake. The front end's client (`DaemonClient::forward`) relays a
//! request to a fake daemon over a real UNIX socket; the fake daemon
//! answers with the input and closes.
//!
//! Invariants: whatever the daemon sends, the client hands its sink at
//! most one head, nothing before it, and no status or header a response
//! must never carry (CR, LF, other controls; a status outside 100-999); an
//! `Ok` relay sent a head and finished; an error the front end answers
//! with a status of its own (`Recovery::Answer`) sent nothing; one that
//! closes the connection came after the head, and one answered with an
//! error status names a 4xx or 5xx. The stream decodes to the
//! same frames whether read whole or in small pieces, and those frames
//! re-encode to the bytes they came from.

#![no_main]

use std::io::{self, BufReader, Read, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use wsgi_core::response::validate_header;
use wsgi_core::{AppTarget, EnvValue, Environ, ResponseSink};
use wsgi_daemon::client::{DaemonClient, Recovery};
use wsgi_daemon::protocol::{read_frame, read_frame_buffered, write_frame, write_handshake, Frame, RequestStart};

/// A sink that checks the order of the calls and what it is given.
#[derive(Default)]
struct CheckingSink {
    heads: usize,
    body: usize,
    finished: bool,
}

impl ResponseSink for CheckingSink {
    fn send_head(&mut self, status: u16, reason: &str, headers: &[(String, String)]) -> io::Result<()> {
        assert_eq!(self.heads, 0, "a second head");
        assert!((100..=999).contains(&status), "status {status}");
        assert!(!reason.chars().any(char::is_control), "reason {reason:?}");
        for (name, value) in headers {
            assert!(validate_header(name, value).is_ok(), "header {name:?}: {value:?}");
        }
        self.heads += 1;
        Ok(())
    }

    fn send_body(&mut self, chunk: &[u8]) -> io::Result<()> {
        assert_eq!(self.heads, 1, "body before the head");
        assert!(!self.finished, "body after the end");
        self.body += chunk.len();
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        assert_eq!(self.heads, 1, "flush before the head");
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        assert_eq!(self.heads, 1, "finish without a head");
        assert!(!self.finished, "finished twice");
        self.finished = true;
        Ok(())
    }
}

fn listener() -> &'static (UnixListener, PathBuf) {
    static LISTENER: OnceLock<(UnixListener, PathBuf)> = OnceLock::new();
    LISTENER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("wsgi-fuzz-exchange-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("daemon.sock");
        let _ = std::fs::remove_file(&path);
        (UnixListener::bind(&path).expect("bind the fake daemon's socket"), path)
    })
}

fn request(has_body: bool) -> RequestStart {
    let mut environ = Environ::default();
    environ.set_str("REQUEST_METHOD", if has_body { "POST" } else { "GET" });
    environ.set_str("PATH_INFO", "/");
    environ.set("wsgi.version", EnvValue::Tuple(vec![1, 0]));
    RequestStart {
        request_id: 1,
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

/// Reads in pieces of at most `size` bytes.
struct Trickle<'a>(&'a [u8], usize);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.1).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// Decodes `stream` to its frames, in reads of at most `size` bytes,
/// through `read_frame` or `read_frame_buffered`; the frames and the
/// first error, as text.
fn decode(stream: &[u8], size: usize, buffered: bool) -> (Vec<Frame>, Option<String>) {
    let mut frames = Vec::new();
    let mut reader = BufReader::with_capacity(size.max(8), Trickle(stream, size));
    loop {
        let next = if buffered { read_frame_buffered(&mut reader) } else { read_frame(&mut reader) };
        match next {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => return (frames, None),
            Err(e) => return (frames, Some(e.to_string())),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, stream)) = data.split_first() else { return };
    let has_body = flags & 1 != 0;
    let read_size = 1 + usize::from((flags >> 1) & 7) * 3;

    // The stream, read whole and in pieces, gives the same frames, which
    // re-encode to the stream's bytes.
    let (whole, whole_error) = decode(stream, stream.len().max(1), false);
    for buffered in [false, true] {
        let (pieces, error) = decode(stream, read_size, buffered);
        assert_eq!(whole, pieces, "reads of {read_size} bytes decode other frames");
        assert_eq!(whole_error, error);
    }
    let mut encoded = Vec::new();
    for frame in &whole {
        write_frame(&mut encoded, frame).expect("a decoded frame encodes");
    }
    assert_eq!(encoded, &stream[..encoded.len()], "frames re-encode to other bytes");

    // The client relays a request to a daemon that answers with `stream`.
    let (listener, path) = listener();
    let daemon_bytes = stream.to_vec();
    let daemon = std::thread::spawn(move || {
        let (mut connection, _) = listener.accept().expect("accept");
        let mut out = Vec::new();
        write_handshake(&mut out).unwrap();
        out.extend_from_slice(&daemon_bytes);
        let _ = connection.write_all(&out);
        let _ = connection.shutdown(std::net::Shutdown::Write);
        // Read what the front end sends until it closes.
        let _ = io::copy(&mut connection, &mut io::sink());
    });
    let client = DaemonClient::new(path.clone(), Duration::from_secs(5), Duration::from_secs(5));
    let mut sink = CheckingSink::default();
    let mut body = &b"name=value&other=1"[..];
    let result = client.forward(&request(has_body), &mut body, &mut sink);
    // The client keeps a connection whose exchange went well: dropping it
    // closes the connection, which ends the fake daemon.
    drop(client);
    daemon.join().expect("the fake daemon");

    match &result {
        Ok(()) => assert!(sink.heads == 1 && sink.finished, "an Ok relay without a finished response"),
        Err(e) => match e.recovery() {
            Recovery::Answer(status) => {
                assert_eq!(sink.heads, 0, "{e}: answered with {status} after a head went out");
                assert!((400..=599).contains(&status), "{e}: answered with {status}");
            }
            Recovery::CloseConnection => assert_eq!(sink.heads, 1, "{e}: a broken response without a head"),
            Recovery::Nothing => {}
        },
    }
});
