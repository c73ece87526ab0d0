//! Tests of the front-end-to-daemon wire protocol.

use std::borrow::Cow;
use std::io::{BufReader, Cursor, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::thread;

use bytes::Bytes;
use proptest::prelude::*;
use wsgi_core::{AppTarget, EnvValue, Environ};
use wsgi_daemon::protocol::{
    buffered_response_chunk, read_frame, read_frame_buffered, read_handshake, write_data_chunk, write_frame,
    write_handshake, Frame, FrameKind, ProtocolError, RequestStart, ResponseStart, MAGIC, MAX_FRAME_SIZE,
    PROTOCOL_VERSION,
};

fn sample_request(id: u64, has_body: bool) -> RequestStart {
    let mut environ = Environ::default();
    environ.set_str("REQUEST_METHOD", if has_body { "POST" } else { "GET" });
    environ.set_str("PATH_INFO", "/caf\u{e9}/\u{ff}\u{80}");
    environ.set_str("QUERY_STRING", "");
    environ.set("wsgi.version", EnvValue::Tuple(vec![1, 0]));
    environ.set("wsgi.multithread", EnvValue::Bool(true));
    environ.set("wsgi.run_once", EnvValue::Bool(false));
    environ.set("mod_wsgi.script_start", EnvValue::Int(-1_700_000_000_000));
    environ.set("mod_wsgi.empty", EnvValue::Tuple(vec![]));
    RequestStart {
        request_id: id,
        target: AppTarget {
            script: PathBuf::from("/srv/app/wsgi.py"),
            callable: "application".into(),
            application_group: "example.com|/app".into(),
            reload_on_change: true,
            script_mtime_us: Some(1_700_000_000_123_456),
        },
        environ,
        has_body,
    }
}

fn sample_response() -> ResponseStart {
    ResponseStart {
        status: 200,
        reason: "OK".into(),
        headers: vec![
            ("Content-Type".into(), "text/plain; charset=latin-1".into()),
            ("X-Latin1".into(), "\u{e9}t\u{e9}".into()),
            ("Set-Cookie".into(), "a=1".into()),
            ("Set-Cookie".into(), "b=2".into()),
        ],
    }
}

fn every_kind() -> Vec<Frame> {
    vec![
        Frame::RequestStart(sample_request(7, true)),
        Frame::BodyChunk(Bytes::from_static(b"hello \x00\xff body")),
        Frame::BodyChunk(Bytes::new()),
        Frame::BodyEnd,
        Frame::ResponseStart(sample_response()),
        Frame::ResponseChunk(Bytes::from_static(b"response bytes")),
        Frame::ResponseEnd,
        Frame::Error("daemon process failed: \u{e9}".into()),
        Frame::Ping,
        Frame::Pong,
    ]
}

fn encode(frame: &Frame) -> Vec<u8> {
    let mut buf = Vec::new();
    write_frame(&mut buf, frame).expect("encodes");
    buf
}

#[test]
fn every_frame_kind_round_trips() {
    for frame in every_kind() {
        let buf = encode(&frame);
        assert_eq!(buf[0], frame.kind().as_byte());
        assert_eq!(FrameKind::from_byte(buf[0]), Some(frame.kind()));
        let mut r = Cursor::new(buf);
        assert_eq!(read_frame(&mut r).unwrap(), Some(frame.clone()), "{}", frame.kind());
        assert_eq!(read_frame(&mut r).unwrap(), None);
    }
}

#[test]
fn a_stream_of_frames_round_trips_in_order() {
    let frames = every_kind();
    let mut wire = Vec::new();
    write_handshake(&mut wire).unwrap();
    for frame in &frames {
        write_frame(&mut wire, frame).unwrap();
    }
    let mut r = Cursor::new(wire);
    read_handshake(&mut r).unwrap();
    let mut got = Vec::new();
    while let Some(frame) = read_frame(&mut r).unwrap() {
        got.push(frame);
    }
    assert_eq!(got, frames);
}

/// A buffered reader decodes frames whole in its buffer from there, and
/// reads the others as `read_frame` does: either way the same frames come
/// back, in order, whatever the buffer's size.
#[test]
fn frames_read_from_a_buffer_match_frames_read_from_the_stream() {
    let frames = every_kind();
    let mut wire = Vec::new();
    for frame in &frames {
        write_frame(&mut wire, frame).unwrap();
    }
    for capacity in [1, 7, 64, 200, 64 * 1024] {
        let mut r = BufReader::with_capacity(capacity, Cursor::new(wire.clone()));
        let mut got = Vec::new();
        while let Some(frame) = read_frame_buffered(&mut r).unwrap() {
            got.push(frame);
        }
        assert_eq!(got, frames, "buffer of {capacity} bytes");
    }
    // A frame refused for its size is refused from the buffer too.
    let mut oversized = wire[..5].to_vec();
    oversized[0] = FrameKind::Error.as_byte();
    oversized[1..5].copy_from_slice(&(MAX_FRAME_SIZE + 1).to_be_bytes());
    let mut r = BufReader::new(Cursor::new(oversized));
    assert!(matches!(read_frame_buffered(&mut r), Err(ProtocolError::FrameTooLarge { .. })));
}

#[test]
fn latin1_environ_values_come_back_exactly() {
    let all_latin1: String = (0u8..=255).map(char::from).collect();
    let mut start = sample_request(1, false);
    start.environ.set_str("HTTP_X_ALL", all_latin1.clone());
    let mut r = Cursor::new(encode(&Frame::RequestStart(start)));
    let Some(Frame::RequestStart(back)) = read_frame(&mut r).unwrap() else { panic!("not a RequestStart") };
    assert_eq!(back.environ.get_str("HTTP_X_ALL"), Some(all_latin1.as_str()));
}

#[test]
fn common_keys_and_values_travel_as_numbers_and_come_back_static() {
    let mut start = sample_request(1, false);
    start.environ.entries.clear();
    start.environ.set_str("REQUEST_METHOD", "GET");
    start.environ.set_str("SERVER_PROTOCOL", "HTTP/1.1");
    // The same texts, owned: spelled out, and equal on arrival.
    start.environ.set_str(String::from("HTTP_HOST"), String::from("POST"));
    start.environ.set_str("HTTP_X_OWN", "GETTING");
    let wire = encode(&Frame::RequestStart(start.clone()));
    let spelled = |text: &str| wire.windows(text.len()).any(|w| w == text.as_bytes());
    for common in ["REQUEST_METHOD", "SERVER_PROTOCOL", "HTTP/1.1"] {
        assert!(!spelled(common), "{common} is sent by number");
    }
    for owned in ["HTTP_HOST", "POST", "HTTP_X_OWN", "GETTING"] {
        assert!(spelled(owned), "{owned} is spelled out");
    }
    let Some(Frame::RequestStart(back)) = read_frame(&mut Cursor::new(wire)).unwrap() else {
        panic!("not a RequestStart")
    };
    assert_eq!(back.environ, start.environ);
    let static_ = |i: usize| matches!(&back.environ.entries[i].0, Cow::Borrowed(_));
    assert!(static_(0) && static_(1) && !static_(3));
    assert!(matches!(&back.environ.entries[0].1, EnvValue::Str(Cow::Borrowed("GET"))));
    assert!(matches!(&back.environ.entries[1].1, EnvValue::Str(Cow::Borrowed("HTTP/1.1"))));

    // A number beyond the table is malformed, not a panic.
    let mut start = sample_request(1, false);
    start.environ.entries.clear();
    start.environ.set_str("REQUEST_METHOD", "x");
    let mut wire = encode(&Frame::RequestStart(start));
    let key_at = wire.len() - (4 + 1 + 4 + 1);
    assert_eq!(wire[key_at], 0x80, "the key goes as a number");
    wire[key_at + 3] = 0xff;
    let err = read_frame(&mut Cursor::new(wire)).unwrap_err();
    assert!(matches!(err, ProtocolError::Malformed { kind: FrameKind::RequestStart, .. }), "{err:?}");
}

#[test]
fn handshake_with_the_same_version_succeeds() {
    let mut wire = Vec::new();
    write_handshake(&mut wire).unwrap();
    assert_eq!(wire.len(), 8);
    assert_eq!(&wire[..6], &MAGIC);
    assert_eq!(&wire[6..], &PROTOCOL_VERSION.to_be_bytes());
    read_handshake(&mut Cursor::new(wire)).unwrap();
}

#[test]
fn version_mismatch_is_rejected_naming_both_versions() {
    let theirs = PROTOCOL_VERSION + 1;
    let mut wire = MAGIC.to_vec();
    wire.extend_from_slice(&theirs.to_be_bytes());
    let err = read_handshake(&mut Cursor::new(wire)).unwrap_err();
    match &err {
        ProtocolError::VersionMismatch { ours, theirs: t } => {
            assert_eq!(*ours, PROTOCOL_VERSION);
            assert_eq!(*t, theirs);
        }
        other => panic!("expected VersionMismatch, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(&format!("version {PROTOCOL_VERSION}")), "{message}");
    assert!(message.contains(&format!("version {theirs}")), "{message}");
}

#[test]
fn bad_magic_is_rejected() {
    let err = read_handshake(&mut Cursor::new(b"GET / HTTP/1.1\r\n".to_vec())).unwrap_err();
    assert!(matches!(err, ProtocolError::BadMagic { found } if &found == b"GET / "), "{err:?}");
    assert!(err.to_string().contains("WSGIRS"), "{err}");
}

#[test]
fn truncated_handshake_is_an_error() {
    for n in 0..8 {
        let mut wire = Vec::new();
        write_handshake(&mut wire).unwrap();
        wire.truncate(n);
        let err = read_handshake(&mut Cursor::new(wire)).unwrap_err();
        assert!(matches!(err, ProtocolError::Truncated(_)), "{n}: {err:?}");
    }
}

#[test]
fn truncated_frames_are_errors_not_panics() {
    for frame in every_kind() {
        let buf = encode(&frame);
        for cut in 1..buf.len() {
            let err = read_frame(&mut Cursor::new(&buf[..cut])).unwrap_err();
            assert!(matches!(err, ProtocolError::Truncated(_)), "{} cut at {cut}: {err:?}", frame.kind());
        }
        assert_eq!(read_frame(&mut Cursor::new(&buf[..0])).unwrap(), None);
    }
}

#[test]
fn oversized_frame_header_is_refused_without_reading_the_payload() {
    // A reader that would fail loudly if more than the header were read.
    struct HeaderOnly(Cursor<Vec<u8>>);
    impl Read for HeaderOnly {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            assert!(self.0.position() < 5, "read past the header");
            self.0.read(buf)
        }
    }
    for len in [MAX_FRAME_SIZE + 1, u32::MAX] {
        let mut header = vec![FrameKind::BodyChunk.as_byte()];
        header.extend_from_slice(&len.to_be_bytes());
        let err = read_frame(&mut HeaderOnly(Cursor::new(header))).unwrap_err();
        assert!(
            matches!(err, ProtocolError::FrameTooLarge { size, max } if size == u64::from(len) && max == MAX_FRAME_SIZE),
            "{err:?}"
        );
    }
}

#[test]
fn a_truncated_maximum_size_frame_is_an_error() {
    let mut wire = vec![FrameKind::ResponseChunk.as_byte()];
    wire.extend_from_slice(&MAX_FRAME_SIZE.to_be_bytes());
    wire.extend_from_slice(b"only a little");
    let err = read_frame(&mut Cursor::new(wire)).unwrap_err();
    assert!(matches!(err, ProtocolError::Truncated(_)), "{err:?}");
}

#[test]
fn a_maximum_size_frame_is_accepted_and_a_larger_one_refused_on_write() {
    let max = Frame::ResponseChunk(Bytes::from(vec![0xab; MAX_FRAME_SIZE as usize]));
    let mut r = Cursor::new(encode(&max));
    assert_eq!(read_frame(&mut r).unwrap(), Some(max));

    let too_big = Frame::BodyChunk(Bytes::from(vec![0; MAX_FRAME_SIZE as usize + 1]));
    let mut out = Vec::new();
    let err = write_frame(&mut out, &too_big).unwrap_err();
    assert!(matches!(err, ProtocolError::FrameTooLarge { .. }), "{err:?}");
    assert!(out.is_empty(), "nothing is written for a refused frame");
}

#[test]
fn unknown_kinds_and_malformed_payloads_are_errors() {
    let err = read_frame(&mut Cursor::new(vec![0x7f, 0, 0, 0, 0])).unwrap_err();
    assert!(matches!(err, ProtocolError::UnknownKind(0x7f)), "{err:?}");

    // Trailing bytes after an empty frame.
    let err = read_frame(&mut Cursor::new(vec![FrameKind::Ping.as_byte(), 0, 0, 0, 1, 0])).unwrap_err();
    assert!(matches!(err, ProtocolError::Malformed { kind: FrameKind::Ping, .. }), "{err:?}");

    // An Error frame whose string is not UTF-8.
    let err = read_frame(&mut Cursor::new(vec![FrameKind::Error.as_byte(), 0, 0, 0, 5, 0, 0, 0, 1, 0xff])).unwrap_err();
    assert!(matches!(err, ProtocolError::Malformed { kind: FrameKind::Error, .. }), "{err:?}");

    // A ResponseStart announcing four billion headers.
    let mut wire = vec![FrameKind::ResponseStart.as_byte(), 0, 0, 0, 10, 0, 200, 0, 0, 0, 0];
    wire.extend_from_slice(&u32::MAX.to_be_bytes());
    let err = read_frame(&mut Cursor::new(wire)).unwrap_err();
    assert!(matches!(err, ProtocolError::Malformed { kind: FrameKind::ResponseStart, .. }), "{err:?}");

    // A boolean that is neither 0 nor 1 (has_body in a RequestStart).
    let mut buf = encode(&Frame::RequestStart(sample_request(1, false)));
    // Header, request id, script, callable, group, reload flag, mtime.
    let has_body_at = 5 + 8 + (4 + 16) + (4 + 11) + (4 + 16) + 1 + (1 + 8);
    assert_eq!(buf[has_body_at], 0);
    buf[has_body_at] = 2;
    let err = read_frame(&mut Cursor::new(buf)).unwrap_err();
    assert!(matches!(err, ProtocolError::Malformed { kind: FrameKind::RequestStart, .. }), "{err:?}");
}

/// The daemon side of the exchange test: echoes the body back, upper-cased,
/// with the request id and method in headers; answers a Ping with a Pong.
fn serve(mut stream: UnixStream) -> usize {
    write_handshake(&mut stream).unwrap();
    read_handshake(&mut stream).unwrap();
    let mut served = 0;
    while let Some(frame) = read_frame(&mut stream).unwrap() {
        let start = match frame {
            Frame::RequestStart(start) => start,
            Frame::Ping => {
                write_frame(&mut stream, &Frame::Pong).unwrap();
                continue;
            }
            other => panic!("daemon got {other:?} between requests"),
        };
        let mut body = Vec::new();
        if start.has_body {
            loop {
                match read_frame(&mut stream).unwrap() {
                    Some(Frame::BodyChunk(chunk)) => body.extend_from_slice(&chunk),
                    Some(Frame::BodyEnd) => break,
                    other => panic!("daemon got {other:?} in a body"),
                }
            }
        }
        let method = start.environ.get_str("REQUEST_METHOD").unwrap_or("?").to_owned();
        let head = ResponseStart {
            status: 200,
            reason: "OK".into(),
            headers: vec![("X-Request-Id".into(), start.request_id.to_string()), ("X-Method".into(), method)],
        };
        write_frame(&mut stream, &Frame::ResponseStart(head)).unwrap();
        for piece in body.to_ascii_uppercase().chunks(3) {
            write_frame(&mut stream, &Frame::ResponseChunk(Bytes::copy_from_slice(piece))).unwrap();
        }
        write_frame(&mut stream, &Frame::ResponseEnd).unwrap();
        served += 1;
    }
    served
}

/// The front-end side: sends one request and collects its response.
fn request(stream: &mut UnixStream, id: u64, body: Option<&[u8]>) -> (ResponseStart, Vec<u8>) {
    write_frame(stream, &Frame::RequestStart(sample_request(id, body.is_some()))).unwrap();
    if let Some(body) = body {
        for piece in body.chunks(4) {
            write_frame(stream, &Frame::BodyChunk(Bytes::copy_from_slice(piece))).unwrap();
        }
        write_frame(stream, &Frame::BodyEnd).unwrap();
    }
    stream.flush().unwrap();
    let Some(Frame::ResponseStart(head)) = read_frame(stream).unwrap() else { panic!("no ResponseStart") };
    let mut out = Vec::new();
    loop {
        match read_frame(stream).unwrap() {
            Some(Frame::ResponseChunk(chunk)) => out.extend_from_slice(&chunk),
            Some(Frame::ResponseEnd) => break,
            other => panic!("front end got {other:?} in a response"),
        }
    }
    (head, out)
}

#[test]
fn two_requests_on_one_unix_socket_connection() {
    let (mut front, daemon) = UnixStream::pair().unwrap();
    let server = thread::spawn(move || serve(daemon));

    write_handshake(&mut front).unwrap();
    read_handshake(&mut front).unwrap();

    let (head, body) = request(&mut front, 1, Some(b"first request body"));
    assert_eq!(head.status, 200);
    assert_eq!(head.headers[0], ("X-Request-Id".into(), "1".into()));
    assert_eq!(head.headers[1], ("X-Method".into(), "POST".into()));
    assert_eq!(body, b"FIRST REQUEST BODY");

    write_frame(&mut front, &Frame::Ping).unwrap();
    assert_eq!(read_frame(&mut front).unwrap(), Some(Frame::Pong));

    let (head, body) = request(&mut front, 2, None);
    assert_eq!(head.headers[0], ("X-Request-Id".into(), "2".into()));
    assert_eq!(head.headers[1], ("X-Method".into(), "GET".into()));
    assert!(body.is_empty());

    let (_, body) = request(&mut front, 3, Some(b""));
    assert!(body.is_empty());

    drop(front);
    assert_eq!(server.join().unwrap(), 3);
}

#[test]
fn a_peer_with_another_version_is_rejected_over_a_socket() {
    let (mut front, mut daemon) = UnixStream::pair().unwrap();
    let server = thread::spawn(move || {
        daemon.write_all(b"WSGIRS\xff\xff").unwrap();
        read_handshake(&mut daemon)
    });
    write_handshake(&mut front).unwrap();
    let err = read_handshake(&mut front).unwrap_err();
    assert!(matches!(err, ProtocolError::VersionMismatch { ours: PROTOCOL_VERSION, theirs: 0xffff }), "{err:?}");
    // The (pretend) newer daemon sees our older version; here both checks
    // run in one build, so it accepts it, but the front end has refused.
    server.join().unwrap().unwrap();
}

// ---------------------------------------------------------------------------
// Properties

fn latin1_string() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<u8>(), 0..24).prop_map(|b| b.into_iter().map(char::from).collect())
}

/// An environ key: any Latin-1 text, or one of the common keys as given
/// by the environ builders.
fn env_key() -> impl Strategy<Value = Cow<'static, str>> {
    prop_oneof![
        latin1_string().prop_map(Cow::Owned),
        proptest::sample::select(&wsgi_core::environ::COMMON_KEYS[..]).prop_map(Cow::Borrowed),
    ]
}

fn env_value() -> impl Strategy<Value = EnvValue> {
    prop_oneof![
        latin1_string().prop_map(|s| EnvValue::Str(s.into())),
        proptest::sample::select(&wsgi_core::environ::COMMON_VALUES[..]).prop_map(|s| EnvValue::Str(Cow::Borrowed(s))),
        any::<bool>().prop_map(EnvValue::Bool),
        any::<i64>().prop_map(EnvValue::Int),
        proptest::collection::vec(any::<i64>(), 0..4).prop_map(EnvValue::Tuple),
    ]
}

fn request_start() -> impl Strategy<Value = RequestStart> {
    (
        any::<u64>(),
        ".{0,20}",
        ".{0,10}",
        ".{0,10}",
        (any::<bool>(), any::<Option<i64>>()),
        proptest::collection::vec((env_key(), env_value()), 0..8),
        any::<bool>(),
    )
        .prop_map(
            |(
                request_id,
                script,
                callable,
                application_group,
                (reload_on_change, script_mtime_us),
                entries,
                has_body,
            )| {
                RequestStart {
                    request_id,
                    target: AppTarget {
                        script: PathBuf::from(script),
                        callable,
                        application_group,
                        reload_on_change,
                        script_mtime_us,
                    },
                    environ: Environ { entries },
                    has_body,
                }
            },
        )
}

fn response_start() -> impl Strategy<Value = ResponseStart> {
    (any::<u16>(), latin1_string(), proptest::collection::vec((latin1_string(), latin1_string()), 0..6))
        .prop_map(|(status, reason, headers)| ResponseStart { status, reason, headers })
}

fn frame() -> impl Strategy<Value = Frame> {
    let chunk = || proptest::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from);
    prop_oneof![
        request_start().prop_map(Frame::RequestStart),
        chunk().prop_map(Frame::BodyChunk),
        Just(Frame::BodyEnd),
        response_start().prop_map(Frame::ResponseStart),
        chunk().prop_map(Frame::ResponseChunk),
        Just(Frame::ResponseEnd),
        ".{0,30}".prop_map(Frame::Error),
        Just(Frame::Ping),
        Just(Frame::Pong),
    ]
}

/// Reads frames until the end, an error, or (which cannot happen, as each
/// frame consumes at least its header) more frames than bytes.
fn drain(bytes: &[u8]) {
    let mut r = Cursor::new(bytes);
    for _ in 0..=bytes.len() {
        match read_frame(&mut r) {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return,
        }
    }
    panic!("read_frame returned more frames than there were bytes");
}

proptest! {
    #[test]
    fn arbitrary_frames_round_trip(frames in proptest::collection::vec(frame(), 1..6)) {
        let mut wire = Vec::new();
        for frame in &frames {
            write_frame(&mut wire, frame).unwrap();
        }
        let mut r = Cursor::new(wire);
        for frame in &frames {
            let got = read_frame(&mut r).unwrap();
            prop_assert_eq!(got.as_ref(), Some(frame));
        }
        prop_assert!(read_frame(&mut r).unwrap().is_none());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        drain(&bytes);
        let _ = read_handshake(&mut Cursor::new(&bytes));
    }

    #[test]
    fn arbitrary_payloads_behind_a_valid_header_never_panic(
        kind in 1u8..=9,
        payload in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut wire = vec![kind];
        wire.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        wire.extend_from_slice(&payload);
        drain(&wire);
    }

    #[test]
    fn corrupted_frames_never_panic(
        frame in frame(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut wire = encode(&frame);
        for (at, byte) in flips {
            let i = at.index(wire.len());
            wire[i] = byte;
        }
        drain(&wire);
    }
}

#[test]
fn data_chunks_written_from_a_slice_read_back_whole_or_from_the_buffer() {
    let data: Vec<u8> = (0..10_240u32).map(|i| (i % 251) as u8).collect();
    let mut wire = Vec::new();
    write_data_chunk(&mut wire, &data, false).unwrap();
    write_data_chunk(&mut wire, b"request body", true).unwrap();
    write_frame(&mut wire, &Frame::ResponseEnd).unwrap();
    // Whole in a buffer: found in place, and only a response chunk is.
    let (range, frame_len) = buffered_response_chunk(&wire).expect("a whole chunk at the start");
    assert_eq!(&wire[range], &data[..]);
    assert_eq!(buffered_response_chunk(&wire[..frame_len - 1]), None, "a partial frame is not taken");
    assert_eq!(buffered_response_chunk(&wire[frame_len..]), None, "a body chunk is not a response chunk");
    // Read as frames: the same data, in order.
    let mut reader = &wire[..];
    assert_eq!(read_frame(&mut reader).unwrap(), Some(Frame::ResponseChunk(Bytes::from(data))));
    assert_eq!(read_frame(&mut reader).unwrap(), Some(Frame::BodyChunk(Bytes::from_static(b"request body"))));
    assert_eq!(read_frame(&mut reader).unwrap(), Some(Frame::ResponseEnd));
    assert_eq!(read_frame(&mut reader).unwrap(), None);
}
