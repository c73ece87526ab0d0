//! `wsgi-standalone start-server`, driven as a client drives it: the real
//! binary serving real Python applications over real sockets, spoken to in
//! raw HTTP/1.1.
//!
//! Every test starts its own server on its own free port (stopped when the
//! test ends, pass or fail), bounds every wait, and measures no time.

use std::path::{Path, PathBuf};
use std::time::Duration;

use md5::{Digest, Md5};
use tests::{wait_for, HttpConnection, Server, TempDir};

/// `path` as a Python string literal.
fn py(path: &Path) -> String {
    let text = path.to_str().expect("a UTF-8 path");
    assert!(!text.contains(['\'', '\\', '\n']), "path unsuitable for a Python literal: {text}");
    format!("'{text}'")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Deterministic pseudo-random bytes (xorshift64*), block by block.
struct Noise(u64);

impl Noise {
    fn new(seed: u64) -> Noise {
        Noise(seed | 1)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let word = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

/// Renders bytes for a failure message: printable ASCII as is, the rest escaped.
fn shown(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

// ---------------------------------------------------------------------------
// 1. A real Flask application.

const FLASK_APP: &str = r#"
from flask import Flask, abort, jsonify, make_response, redirect, request, url_for

application = Flask(__name__)


@application.route('/hello/<name>')
def hello(name):
    return f'Hello, {name}!'


@application.route('/items/<int:item_id>')
def item(item_id):
    return jsonify(id=item_id, q=request.args.get('q'), tags=request.args.getlist('tag'))


@application.route('/form', methods=['POST'])
def form():
    return f"name={request.form['name']} age={int(request.form['age']) + 1} type={request.mimetype}"


@application.route('/json', methods=['POST'])
def json_echo():
    data = request.get_json()
    return jsonify(received=data, total=sum(data['numbers'])), 201


@application.route('/cookie/set')
def cookie_set():
    response = make_response('cookie set')
    response.set_cookie('flavour', 'oatmeal')
    return response


@application.route('/cookie/get')
def cookie_get():
    return 'flavour=' + request.cookies.get('flavour', '<none>')


@application.route('/old-place')
def old_place():
    return redirect(url_for('hello', name='redirected'))


@application.route('/missing')
def missing():
    abort(404)


@application.route('/boom')
def boom():
    raise RuntimeError('a Flask view failed on purpose')
"#;

#[test]
fn flask_application_routes_forms_json_cookies_redirects_and_errors() {
    let dir = TempDir::new("standalone-flask");
    let script = dir.write("app.wsgi", FLASK_APP);
    let server = Server::start([script.as_os_str()]);
    let stderr = || server.stderr();

    // Path parameters, including a percent-encoded UTF-8 one.
    let r = server.get("/hello/world");
    assert_eq!(r.status(), 200, "{}\n{}", r.text(), stderr());
    assert_eq!(r.text(), "Hello, world!");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("content-length"), Some("13"));
    let r = server.get("/hello/J%C3%BCrgen");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text(), "Hello, J\u{fc}rgen!");

    // A typed path parameter and a query string with repeats and escapes.
    let r = server.get("/items/42?q=a%20b&tag=x&tag=y");
    assert_eq!(r.status(), 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.text().trim_end(), r#"{"id":42,"q":"a b","tags":["x","y"]}"#);
    let r = server.get("/items/not-a-number");
    assert_eq!(r.status(), 404);

    // A form POST.
    let r = server.request(
        "POST",
        "/form",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"name=Ada+Lovelace&age=36",
    );
    assert_eq!(r.status(), 200, "{}", r.text());
    assert_eq!(r.text(), "name=Ada Lovelace age=37 type=application/x-www-form-urlencoded");
    let r = server.get("/form");
    assert_eq!(r.status(), 405);
    assert!(r.header("allow").is_some_and(|allow| allow.contains("POST")), "{:?}", r.head);

    // JSON in, JSON out, with a status other than 200.
    let r = server.request(
        "POST",
        "/json",
        &[("Content-Type", "application/json")],
        br#"{"numbers": [1, 2, 3.5], "label": "sum"}"#,
    );
    assert_eq!(r.status(), 201, "{}", r.text());
    assert_eq!(r.head.reason, "CREATED");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.text().trim_end(), r#"{"received":{"label":"sum","numbers":[1,2,3.5]},"total":6.5}"#);

    // A cookie set, then sent back.
    let r = server.get("/cookie/set");
    assert_eq!(r.status(), 200);
    let set_cookie = r.header("set-cookie").expect("a Set-Cookie header");
    assert!(set_cookie.starts_with("flavour=oatmeal;"), "{set_cookie}");
    assert!(set_cookie.contains("Path=/"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap();
    let r = server.request("GET", "/cookie/get", &[("Cookie", cookie)], b"");
    assert_eq!(r.text(), "flavour=oatmeal");
    let r = server.get("/cookie/get");
    assert_eq!(r.text(), "flavour=<none>");

    // A redirect.
    let r = server.get("/old-place");
    assert_eq!(r.status(), 302);
    assert_eq!(r.header("location"), Some("/hello/redirected"));
    assert!(r.text().contains("/hello/redirected"), "{}", r.text());

    // Error pages: an abort, an unknown URL, an exception in a view.
    let r = server.get("/missing");
    assert_eq!(r.status(), 404);
    assert!(r.text().contains("Not Found"), "{}", r.text());
    let r = server.get("/no/such/route");
    assert_eq!(r.status(), 404);
    let r = server.get("/boom");
    assert_eq!(r.status(), 500);
    assert!(r.text().contains("Internal Server Error"), "{}", r.text());
    assert!(
        wait_for(Duration::from_secs(10), || server.stderr().contains("a Flask view failed on purpose").then_some(()))
            .is_some(),
        "Flask's logged exception not in stderr:\n{}",
        stderr()
    );

    // Still serving.
    let r = server.get("/hello/again");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text(), "Hello, again!");
}

// ---------------------------------------------------------------------------
// 2. Streaming.

#[test]
fn a_streamed_response_arrives_incrementally_with_chunked_encoding() {
    let dir = TempDir::new("standalone-stream");
    let marker = dir.path().join("go-on");
    let script = dir.write(
        "app.wsgi",
        &format!(
            r#"
import os, time

MARKER = {marker}

def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    def body():
        yield b'first chunk\n'
        deadline = time.monotonic() + 30
        while not os.path.exists(MARKER) and time.monotonic() < deadline:
            time.sleep(0.01)
        yield b'marker seen\n' if os.path.exists(MARKER) else b'marker never appeared\n'
        yield b'last chunk\n'
    return body()
"#,
            marker = py(&marker)
        ),
    );
    let server = Server::start([script.as_os_str()]);
    let mut connection = server.connect();
    connection.send(b"GET /stream HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let head = connection.read_head().expect("the head arrives before the body is complete");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), None, "{head:?}");
    assert!(head.is_chunked(), "{head:?}");
    let first = connection.read_chunk().expect("the first chunk arrives").expect("a non-empty chunk");
    assert_eq!(shown(&first), "first chunk\\n");
    // Only now, with the first chunk in hand, let the application go on.
    assert!(!marker.exists());
    std::fs::write(&marker, b"").unwrap();
    let mut rest = Vec::new();
    while let Some(chunk) = connection.read_chunk().expect("the rest of the body") {
        rest.extend_from_slice(&chunk);
    }
    assert_eq!(shown(&rest), "marker seen\\nlast chunk\\n");
}

// ---------------------------------------------------------------------------
// 3. A 100 MB upload.

const HASHING_APP: &str = r#"
import hashlib

def application(environ, start_response):
    stream = environ['wsgi.input']
    digest = hashlib.md5()
    length = 0
    while True:
        chunk = stream.read(65536)
        if not chunk:
            break
        digest.update(chunk)
        length += len(chunk)
    body = f'{length} {digest.hexdigest()}'.encode()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
"#;

#[test]
fn a_100_mb_upload_is_echoed_by_length_and_md5() {
    const TOTAL: usize = 100 * 1024 * 1024;
    let dir = TempDir::new("standalone-upload");
    let script = dir.write("app.wsgi", HASHING_APP);
    let server = Server::start([script.as_os_str(), "--limit-request-body".as_ref(), "200000000".as_ref()]);
    let mut connection = server.connect();
    connection
        .send(
            format!(
                "PUT /upload HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\n\
                 Content-Length: {TOTAL}\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    let mut noise = Noise::new(0x5eed_1234_abcd_0001);
    let mut hasher = Md5::new();
    let mut block = vec![0u8; 64 * 1024];
    let mut sent = 0;
    let mut write_error = None;
    while sent < TOTAL {
        let n = block.len().min(TOTAL - sent);
        noise.fill(&mut block[..n]);
        hasher.update(&block[..n]);
        if let Err(e) = connection.send(&block[..n]) {
            write_error = Some(e);
            break;
        }
        sent += n;
    }
    let expected = format!("{TOTAL} {}", hex(&hasher.finalize()));
    let response = connection.read_response(false);
    assert!(
        write_error.is_none(),
        "the upload broke off after {sent} bytes: {write_error:?}; response: {response:?}\n{}",
        server.stderr()
    );
    let response = response.unwrap_or_else(|e| panic!("no response: {e}\n{}", server.stderr()));
    assert_eq!(response.status(), 200, "{}\n{}", response.text(), server.stderr());
    assert_eq!(response.text(), expected);
}

#[test]
fn several_io_threads_serve_concurrent_keep_alive_clients_and_streamed_uploads() {
    let dir = TempDir::new("standalone-io-threads");
    let script = dir.write("app.wsgi", HASHING_APP);
    let server = Server::start([script.as_os_str(), "--io-threads".as_ref(), "3".as_ref()]);
    let address = server.address();
    // Bodies above the size read before queueing go the streamed way.
    let clients: Vec<_> = (0..6u64)
        .map(|client| {
            std::thread::spawn(move || {
                let mut connection = HttpConnection::open(address);
                let mut noise = Noise::new(0x10_0000 + client);
                for round in 0..5 {
                    let mut body = vec![0u8; 300 * 1024 + (client as usize) * 1000 + round];
                    noise.fill(&mut body);
                    let head =
                        format!("POST /hash HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n", body.len());
                    connection.send(head.as_bytes()).unwrap();
                    connection.send(&body).unwrap();
                    let response = connection.read_response(false).expect("a response on the kept-alive connection");
                    assert_eq!(response.status(), 200, "{}", response.text());
                    assert_eq!(response.text(), format!("{} {}", body.len(), hex(&Md5::digest(&body))));
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap_or_else(|_| panic!("a client failed\n{}", server.stderr()));
    }
}

// ---------------------------------------------------------------------------
// 4. wsgi.file_wrapper.

#[test]
fn a_file_wrapper_download_equals_the_file_byte_for_byte() {
    const SIZE: usize = 3 * 1024 * 1024 + 12_345;
    let dir = TempDir::new("standalone-file-wrapper");
    let mut contents = vec![0u8; SIZE];
    Noise::new(0xf11e_0003).fill(&mut contents);
    let data = dir.path().join("data.bin");
    std::fs::write(&data, &contents).unwrap();
    let script = dir.write(
        "app.wsgi",
        &format!(
            r#"
import os

PATH = {data}

def application(environ, start_response):
    size = os.path.getsize(PATH)
    start_response('200 OK', [('Content-Type', 'application/octet-stream'), ('Content-Length', str(size))])
    return environ['wsgi.file_wrapper'](open(PATH, 'rb'), 65536)
"#,
            data = py(&data)
        ),
    );
    let server = Server::start([script.as_os_str()]);
    let r = server.get("/download");
    assert_eq!(r.status(), 200, "{}\n{}", r.text(), server.stderr());
    assert_eq!(r.header("content-length"), Some(SIZE.to_string().as_str()));
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(r.body.len(), SIZE);
    assert!(r.body == contents, "the body differs from the file");
}

// ---------------------------------------------------------------------------
// 5. Malformed requests.

const READ_BODY_APP: &str = r#"
def application(environ, start_response):
    body = environ['wsgi.input'].read()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'ok ' + str(len(body)).encode()]
"#;

/// Sends `request` on its own connection, expects `expected`, then checks
/// that a normal GET on a new connection still gets 200.
fn malformed_request_gets(request: &[u8], expected: u16) {
    let dir = TempDir::new("standalone-malformed");
    let script = dir.write("app.wsgi", READ_BODY_APP);
    let server = Server::start([script.as_os_str()]);

    let mut connection = server.connect();
    // The server may answer and close before reading everything.
    let write = connection.send(request);
    let response = connection.read_response(false);
    let raw = shown(connection.raw_received());
    drop(connection);

    let after = server.get("/after");
    let request_shown = if request.len() > 300 {
        format!("{}... ({} bytes)", shown(&request[..300]), request.len())
    } else {
        shown(request)
    };
    let status = response.as_ref().ok().map(|r| r.status());
    assert_eq!(
        status,
        Some(expected),
        "request {request_shown:?}: expected {expected}, got {status:?}; write: {write:?}; raw response: \
         {raw:?}; parsed: {response:?}\nserver stderr:\n{}",
        server.stderr()
    );
    assert_eq!(after.status(), 200, "a normal GET after {request_shown:?}: {after:?}\n{}", server.stderr());
    assert_eq!(after.text(), "ok 0");
}

#[test]
fn malformed_bad_request_line_is_400() {
    malformed_request_gets(b"GARBAGE\r\n\r\n", 400);
}

#[test]
fn malformed_header_name_with_a_space_is_400() {
    malformed_request_gets(b"GET / HTTP/1.1\r\nHost: localhost\r\nBad Header: value\r\n\r\n", 400);
}

#[test]
fn malformed_header_line_without_a_colon_is_400() {
    malformed_request_gets(b"GET / HTTP/1.1\r\nHost: localhost\r\nNoColonHere\r\n\r\n", 400);
}

#[test]
fn malformed_chunk_size_is_400() {
    malformed_request_gets(
        b"POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        400,
    );
}

#[test]
fn content_length_with_transfer_encoding_is_refused_and_the_connection_closed() {
    // hyper would read the body by its chunked coding after dropping
    // Content-Length (RFC 9112 section 6.3); such a request could be read
    // the other way by another server on the path, so it is refused
    // before the application, and nothing after it is read.
    // (tests/tests/http_conformance.rs compares this with Apache.)
    let dir = TempDir::new("standalone-cl-te");
    let script = dir.write("app.wsgi", READ_BODY_APP);
    let server = Server::start([script.as_os_str()]);
    for order in
        ["Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"]
    {
        let mut connection = server.connect();
        let smuggled = format!(
            "POST / HTTP/1.1\r\nHost: localhost\r\n{order}\r\n\
             5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n"
        );
        connection.send(smuggled.as_bytes()).unwrap();
        let response = connection.read_response(false).unwrap();
        assert_eq!(response.status(), 400, "{order}");
        assert_eq!(response.header("connection"), Some("close"), "{response:?}");
        assert!(connection.read_response(false).is_err(), "nothing is answered after the closing response");
    }
    // A valid chunked request on a kept-alive connection is still read and
    // the one pipelined behind it answered.
    let mut connection = server.connect();
    connection
        .send(
            b"POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n\
              POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\nhi",
        )
        .unwrap();
    assert_eq!(connection.read_response(false).unwrap().text(), "ok 5");
    assert_eq!(connection.read_response(false).unwrap().text(), "ok 2");
    assert_eq!(server.get("/after").status(), 200);
}

#[test]
fn malformed_differing_duplicate_content_lengths_are_400() {
    malformed_request_gets(
        b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        400,
    );
}

#[test]
fn malformed_oversized_header_field_is_400_as_apache_answers() {
    let mut request = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', 100 * 1024));
    request.extend_from_slice(b"\r\n\r\n");
    malformed_request_gets(&request, 400);
}

#[test]
fn a_head_over_max_header_size_is_431() {
    let dir = TempDir::new("standalone-max-header-size");
    let script = dir.write("app.wsgi", READ_BODY_APP);
    let server = Server::start([script.as_os_str(), "--max-header-size".as_ref(), "4096".as_ref()]);
    let fields: String = (0..10).map(|i| format!("X-Field-{i}: {}\r\n", "v".repeat(500))).collect();
    let mut connection = server.connect();
    let _ = connection.send(format!("GET / HTTP/1.1\r\nHost: localhost\r\n{fields}\r\n").as_bytes());
    let response = connection.read_response(false).expect("a response");
    assert_eq!(response.status(), 431, "{}", server.stderr());
    assert_eq!(server.get("/after").status(), 200);
}

#[test]
fn malformed_nul_in_the_path_is_400() {
    malformed_request_gets(b"GET /a\0b HTTP/1.1\r\nHost: localhost\r\n\r\n", 400);
}

#[test]
fn malformed_unknown_transfer_encoding_is_refused() {
    // The issue asks for 501; hyper refuses a request whose final transfer
    // coding is not chunked with 400 (RFC 9112 section 6.3) before we see
    // it. Either way the application never runs. (README: differences.)
    malformed_request_gets(
        b"POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\nhello",
        400,
    );
}

// ---------------------------------------------------------------------------
// 6. An application that raises.

#[test]
fn an_exception_is_a_500_with_the_traceback_in_stderr_and_the_next_request_succeeds() {
    let dir = TempDir::new("standalone-raise");
    let script = dir.write(
        "app.wsgi",
        r#"
def fail_deeply():
    raise ValueError('deliberate failure for the test')

def application(environ, start_response):
    if environ['PATH_INFO'] == '/raise':
        fail_deeply()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'fine']
"#,
    );
    let server = Server::start([script.as_os_str()]);
    let r = server.get("/raise");
    assert_eq!(r.status(), 500, "{}", r.text());
    assert!(r.text().contains("Internal Server Error"), "{}", r.text());
    let logged = wait_for(Duration::from_secs(10), || {
        let stderr = server.stderr();
        stderr.contains("ValueError: deliberate failure for the test").then_some(stderr)
    });
    let stderr = logged.unwrap_or_else(|| panic!("no traceback in stderr:\n{}", server.stderr()));
    assert!(stderr.contains("Traceback (most recent call last):"), "{stderr}");
    assert!(stderr.contains("in fail_deeply"), "{stderr}");

    let r = server.get("/fine");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text(), "fine");
}

// ---------------------------------------------------------------------------
// 7. A client that goes away mid-response.

#[test]
fn a_client_disconnecting_mid_response_gets_close_called() {
    const CHUNKS: usize = 1000;
    let dir = TempDir::new("standalone-disconnect");
    let marker = dir.path().join("closed");
    let script = dir.write(
        "app.wsgi",
        &format!(
            r#"
import os, time

MARKER = {marker}
CHUNKS = {CHUNKS}


class Slow:
    def __init__(self):
        self.sent = 0

    def __iter__(self):
        for _ in range(CHUNKS):
            self.sent += 1
            yield b'x' * 65536
            time.sleep(0.05)

    def close(self):
        with open(MARKER + '.tmp', 'w') as f:
            f.write(str(self.sent))
        os.rename(MARKER + '.tmp', MARKER)


def application(environ, start_response):
    if environ['PATH_INFO'] != '/slow':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'quick']
    start_response('200 OK', [('Content-Type', 'application/octet-stream')])
    return Slow()
"#,
            marker = py(&marker)
        ),
    );
    let server = Server::start([script.as_os_str()]);
    let mut connection = server.connect();
    connection.send(b"GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let head = connection.read_head().expect("the head");
    assert_eq!(head.status, 200);
    let mut received = 0;
    while received < 100 * 1024 {
        let bytes = connection.read_some(16 * 1024).expect("some body");
        assert!(!bytes.is_empty(), "the body ended early");
        received += bytes.len();
    }
    drop(connection);

    // Iterating to the end would take far longer than this wait.
    let sent = wait_for(Duration::from_secs(30), || std::fs::read_to_string(&marker).ok());
    let sent = sent.unwrap_or_else(|| panic!("close() was not called\n{}", server.stderr()));
    let sent: usize = sent.trim().parse().expect("a count");
    assert!(sent < CHUNKS, "close() came only after all {sent} chunks: the disconnect went unnoticed");

    let r = server.get("/quick");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text(), "quick");
}

// ---------------------------------------------------------------------------
// 8. SIGTERM during a request.

#[test]
fn sigterm_lets_a_request_in_flight_finish_and_the_server_exits_0() {
    let dir = TempDir::new("standalone-sigterm");
    let started = dir.path().join("started");
    let script = dir.write(
        "app.wsgi",
        &format!(
            r#"
import time

STARTED = {started}

def application(environ, start_response):
    open(STARTED, 'w').close()
    time.sleep(2)
    body = b'finished after SIGTERM\n'
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
"#,
            started = py(&started)
        ),
    );
    let mut server = Server::start([script.as_os_str()]);
    let mut connection = server.connect();
    connection.send(b"GET /long HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    assert!(
        wait_for(Duration::from_secs(20), || started.exists().then_some(())).is_some(),
        "the application never started\n{}",
        server.stderr()
    );
    server.terminate();
    let response = connection.read_response(false);
    let exit = server.wait_exit(Duration::from_secs(30));
    let response = response.unwrap_or_else(|e| panic!("no response after SIGTERM: {e}\n{}", server.stderr()));
    assert_eq!(response.status(), 200, "{}", server.stderr());
    assert_eq!(response.text(), "finished after SIGTERM\n");
    let exit = exit.unwrap_or_else(|| panic!("the server still runs 30 s after SIGTERM\n{}", server.stderr()));
    assert_eq!(exit.code(), Some(0), "exit status {exit}\n{}", server.stderr());
}

// ---------------------------------------------------------------------------
// 9. Virtual hosts from --config, and static files.

fn hello_app(name: &str) -> String {
    format!(
        r#"
def application(environ, start_response):
    body = ('{name} ' + environ['SERVER_NAME'] + ' ' + environ['SCRIPT_NAME'] + '|' + environ['PATH_INFO']).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
"#
    )
}

#[test]
fn config_name_based_virtual_hosts_select_the_app_by_host_header() {
    let dir = TempDir::new("standalone-vhosts");
    let one = dir.write("one/app.wsgi", &hello_app("app-one"));
    let two = dir.write("two/app.wsgi", &hello_app("app-two"));
    dir.write("static/hello.txt", "static hello\n");
    let static_dir = dir.path().join("static");
    let config: PathBuf = dir.path().join("site.conf");
    let server = Server::start_with(|port| {
        let text = format!(
            "<VirtualHost *:{port}>\n\
             \x20   ServerName one.example.test\n\
             \x20   WSGIScriptAlias / {one}\n\
             </VirtualHost>\n\
             <VirtualHost *:{port}>\n\
             \x20   ServerName two.example.test\n\
             \x20   ServerAlias *.two.example.test\n\
             \x20   Alias /static {static_dir}\n\
             \x20   WSGIScriptAlias /app {two}\n\
             </VirtualHost>\n",
            one = one.display(),
            two = two.display(),
            static_dir = static_dir.display(),
        );
        std::fs::write(&config, text).unwrap();
        vec!["--config".into(), config.clone().into()]
    });
    let host = |name: &str, path: &str| server.request("GET", path, &[("Host", name)], b"");

    let r = host("one.example.test", "/x/y");
    assert_eq!(r.status(), 200, "{}\n{}", r.text(), server.stderr());
    assert_eq!(r.text(), "app-one one.example.test |/x/y");

    let r = host(&format!("two.example.test:{}", server.port()), "/app/z");
    assert_eq!(r.status(), 200, "{}\n{}", r.text(), server.stderr());
    assert_eq!(r.text(), "app-two two.example.test /app|/z");
    let r = host("www.two.example.test", "/app");
    assert_eq!(r.status(), 200, "{}", r.text());
    assert!(r.text().starts_with("app-two "), "{}", r.text());

    // The second host mounts its app at /app only.
    let r = host("two.example.test", "/elsewhere");
    assert_eq!(r.status(), 404, "{}", r.text());

    // Its static files.
    let r = host("two.example.test", "/static/hello.txt");
    assert_eq!(r.status(), 200, "{}", r.text());
    assert_eq!(r.text(), "static hello\n");
    assert!(r.header("content-type").is_some_and(|t| t.starts_with("text/plain")), "{:?}", r.head);

    // An unknown name gets the first virtual host.
    let r = host("unknown.example.test", "/q");
    assert_eq!(r.status(), 200, "{}", r.text());
    assert!(r.text().starts_with("app-one "), "{}", r.text());
}

#[test]
fn url_alias_serves_static_files_beside_the_script() {
    let dir = TempDir::new("standalone-url-alias");
    let script = dir.write("app.wsgi", &hello_app("app"));
    dir.write("files/hello.txt", "hello from a static file\n");
    dir.write("files/sub/page.html", "<p>nested</p>\n");
    let files = dir.path().join("files");
    let server = Server::start([script.as_os_str(), "--url-alias".as_ref(), "/static".as_ref(), files.as_os_str()]);

    // As with mod_wsgi-express, where mod_alias translates before mod_wsgi,
    // the alias wins over the script mounted at /.
    let r = server.get("/static/hello.txt");
    assert_eq!(r.status(), 200, "{}\n{}", r.text(), server.stderr());
    assert_eq!(r.text(), "hello from a static file\n", "GET /static/hello.txt went to the application: {r:?}");
    assert_eq!(r.header("content-length"), Some("25"));
    assert!(r.header("content-type").is_some_and(|t| t.starts_with("text/plain")), "{:?}", r.head);

    let r = server.get("/static/sub/page.html");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text(), "<p>nested</p>\n");
    assert!(r.header("content-type").is_some_and(|t| t.starts_with("text/html")), "{:?}", r.head);

    let r = server.get("/static/absent.txt");
    assert_eq!(r.status(), 404);

    // Everything else still goes to the application.
    let r = server.get("/dynamic");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text(), "app 127.0.0.1 |/dynamic");
}
