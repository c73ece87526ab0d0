//! HTTP/1.1 conformance of the standalone server (RFC 9110, RFC 9112),
//! compared with Apache: every row of the table below is a raw request,
//! valid or not, with the clause it checks. Each is sent, with a valid
//! request pipelined behind it, to a real Apache running our module and
//! to the standalone server, both serving the same application, which
//! records every call. The standalone server's answer must fit what the
//! clause asks, and the two servers must agree, or the row must say why
//! they differ (`differs`): an undocumented difference fails, and so does
//! a documented one that went away.
//!
//! The table is rendered to `docs/conformance.md`; the test fails when
//! that file is stale (`UPDATE_CONFORMANCE=1` rewrites it).

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use tests::apache::{Apache, ApacheOptions};
use tests::{HttpConnection, Server, TempDir};

/// Writes each call (method and path) to the file `calls` next to the
/// script before anything else, then echoes what it read.
const APP: &str = r#"
import os
CALLS = os.path.join(os.path.dirname(__file__), 'calls')
def application(environ, start_response):
    with open(CALLS, 'a') as calls:
        calls.write('%s %s\n' % (environ['REQUEST_METHOD'], environ['PATH_INFO']))
    body = environ['wsgi.input'].read()
    text = ('app %s %s %d' % (environ['REQUEST_METHOD'], environ['PATH_INFO'], len(body))).encode('latin-1')
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(text)))])
    return [text]
"#;

/// The valid request pipelined behind each row's.
const NEXT: &[u8] = b"GET /next HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// How long a read may wait for an answer that may never come.
const READ_LIMIT: Duration = Duration::from_secs(2);

/// What RFC 9110/9112 ask of the server for a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A valid request: the application answers it, and the pipelined
    /// request after it too.
    Valid,
    /// Valid, and the connection ends after it (`Connection: close`,
    /// HTTP/1.0): the application answers, the next request is not read.
    ValidThenClose,
    /// Answered by the server itself (2xx, no application), the next
    /// request too.
    ServerAnswers,
    /// Invalid: a 4xx or 5xx without the application.
    Invalid,
    /// Could be read two ways: 400, the connection closed, never the
    /// application.
    Refused,
    /// The clause lets the server either accept it or refuse it (400).
    Either,
}

/// One raw request and what is expected of it.
struct Row {
    id: &'static str,
    what: &'static str,
    clause: &'static str,
    raw: Vec<u8>,
    expect: Expect,
    /// Shut the client's sending side after the request (and the
    /// pipelined one).
    half_close: bool,
    /// Why Apache answers otherwise, where it does.
    differs: Option<&'static str>,
}

fn row(id: &'static str, what: &'static str, clause: &'static str, raw: impl Into<Vec<u8>>, expect: Expect) -> Row {
    Row { id, what, clause, raw: raw.into(), expect, half_close: false, differs: None }
}

impl Row {
    fn differs(mut self, reason: &'static str) -> Row {
        self.differs = Some(reason);
        self
    }

    fn half_closed(mut self) -> Row {
        self.half_close = true;
        self
    }
}

/// A POST of `body` with `fields` (CRLF-ended lines) after its Host.
fn post(fields: &str, body: &[u8]) -> Vec<u8> {
    let mut raw = format!("POST /p HTTP/1.1\r\nHost: localhost\r\n{fields}\r\n").into_bytes();
    raw.extend_from_slice(body);
    raw
}

/// A chunked POST whose body (chunks, last chunk, trailers) is `body`.
fn chunked(body: &str) -> Vec<u8> {
    post("Transfer-Encoding: chunked\r\n", body.as_bytes())
}

/// A GET with `value` as its Host.
fn host(value: &str) -> Vec<u8> {
    format!("GET /h HTTP/1.1\r\nHost: {value}\r\n\r\n").into_bytes()
}

/// A GET with `fields` (CRLF-ended lines) after its Host.
fn get(fields: &str) -> Vec<u8> {
    format!("GET /g HTTP/1.1\r\nHost: localhost\r\n{fields}\r\n").into_bytes()
}

const OBS_FOLD: &str =
    "Apache unfolds obs-fold into one space (RFC 9112 §5.2 allows either); hyper refuses it with 400";
const CONNECT_D: &str = "Apache without mod_proxy passes CONNECT to the handler as a request for /; the standalone \
    server refuses an authority-form target (400) and the application never sees it";
const VERSION_D: &str = "hyper's parser (httparse) knows only HTTP/1.0 and HTTP/1.1 and refuses other versions with \
    400; Apache serves any HTTP/x.y request line as HTTP/1.1 (RFC 9110 §2.5 asks a 1.x minor version above 1 to be \
    read as 1.1, and allows 505 for other major versions)";
const HTTP09_D: &str = "Apache still serves HTTP/0.9 simple requests (HttpProtocolOptions Allow0.9 is its default), \
    answering without a status line; hyper refuses a request line without a version (400)";
const FRAGMENT_D: &str = "the http crate's URI parser drops a fragment from the target, so the request is served \
    for its path; Apache refuses a target with a fragment (400), which RFC 9112 §3.2's grammar leaves out";
const BARE_LF_D: &str = "hyper accepts a bare LF as a line end in the head (RFC 9112 §2.2 allows it); Apache 2.4.71 \
    refuses it (400)";
const DUP_CL_D: &str = "hyper accepts repeated identical Content-Length fields (RFC 9110 §8.6 allows it); Apache \
    refuses them (400)";
const TE10_D: &str = "hyper refuses Transfer-Encoding in an HTTP/1.0 request (400; RFC 9112 §6.1 says to treat its \
    framing as faulty); Apache reads the body as chunked and closes the connection after the response";
const CL_TE_D: &str = "Apache 2.4.71 reads the body by its chunked coding, drops Content-Length and closes the \
    connection after the response (RFC 9112 §6.3 ¶3 allows it), so the application runs; the standalone server \
    refuses the request (400, closed) so that a request another server on the path could read the other way never \
    reaches the application";
const LAZY_D: &str = "Apache decodes a chunked body as the application reads it, so the application is called \
    before the malformed chunk is found (its read fails, the module answers an error); the standalone server reads \
    what has arrived of a chunked body (up to 256 KiB) before calling the application and refuses it (400, \
    closed) unseen";
const TRAILER_FOLD_D: &str = "Apache reads a folded trailer line as a continuation and keeps the trailer apart; hyper \
    refuses obs-fold in a trailer section as in a head (400)";

fn rows() -> Vec<Row> {
    use Expect::*;
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: localhost\r\n\r\n", "a".repeat(9000));
    let long_field = get(&format!("X-Long: {}\r\n", "v".repeat(9000)));
    // With Host: one over LimitRequestFields (100), and far over it.
    let many_fields = get(&(0..100).map(|i| format!("X-F{i}: v\r\n")).collect::<String>());
    let too_many_fields = get(&(0..150).map(|i| format!("X-F{i}: v\r\n")).collect::<String>());
    vec![
        // Request line: the four target forms (RFC 9112 §3.2).
        row("RL-01", "origin-form", "RFC 9112 §3.2.1", b"GET /o HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(), Valid),
        row("RL-02", "origin-form with query", "RFC 9112 §3.2.1", &b"GET /o?a=1&b HTTP/1.1\r\nHost: localhost\r\n\r\n"[..], Valid),
        row("RL-03", "absolute-form", "RFC 9112 §3.2.2", &b"GET http://localhost/abs HTTP/1.1\r\nHost: localhost\r\n\r\n"[..], Valid),
        row("RL-04", "absolute-form, Host differs (target wins)", "RFC 9112 §3.2.2 ¶8", &b"GET http://localhost/abs HTTP/1.1\r\nHost: other.example\r\n\r\n"[..], Valid),
        row("RL-05", "absolute-form with port", "RFC 9112 §3.2.2", &b"GET http://localhost:80/abs?q HTTP/1.1\r\nHost: localhost\r\n\r\n"[..], Valid),
        row("RL-06", "authority-form with GET", "RFC 9112 §3.2.3", &b"GET localhost:80 HTTP/1.1\r\nHost: localhost\r\n\r\n"[..], Invalid),
        row("RL-07", "authority-form CONNECT", "RFC 9112 §3.2.3", &b"CONNECT localhost:80 HTTP/1.1\r\nHost: localhost:80\r\n\r\n"[..], Either).differs(CONNECT_D),
        row("RL-08", "asterisk-form OPTIONS *", "RFC 9112 §3.2.4", &b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n"[..], ServerAnswers),
        row("RL-09", "asterisk-form with GET", "RFC 9112 §3.2.4", &b"GET * HTTP/1.1\r\nHost: localhost\r\n\r\n"[..], Invalid),
        row("RL-10", "unknown method token", "RFC 9110 §9.1", &b"FOO /m HTTP/1.1\r\nHost: localhost\r\n\r\n"[..], Either),
        row("RL-11", "lower-case method (case-sensitive)", "RFC 9110 §9.1", &b"get /m HTTP/1.1\r\nHost: localhost\r\n\r\n"[..], Either),
        row("RL-12", "method with a non-token character", "RFC 9110 §9.1, §5.6.2", &b"GE(T /m HTTP/1.1\r\nHost: localhost\r\n\r\n"[..], Invalid),
        row("RL-13", "empty method", "RFC 9112 §3", &b" /m HTTP/1.1\r\nHost: localhost\r\n\r\n"[..], Invalid),
        row("RL-14", "HTTP/1.0 without Host", "RFC 9112 §3.2", &b"GET /v HTTP/1.0\r\n\r\n"[..], ValidThenClose),
        row("RL-15", "HTTP/1.1 without Host", "RFC 9112 §3.2 ¶6", &b"GET /v HTTP/1.1\r\n\r\n"[..], Invalid),
        row("RL-16", "two Host fields", "RFC 9112 §3.2 ¶6", &b"GET /v HTTP/1.1\r\nHost: localhost\r\nHost: other\r\n\r\n"[..], Invalid),
        row("RL-17", "Host with a bad character", "RFC 9112 §3.2 ¶6", &b"GET /v HTTP/1.1\r\nHost: local/host\r\n\r\n"[..], Either),
        row("HO-01", "Host with an empty label (a..b)", "RFC 9112 §3.2 ¶6", host("a..b"), Invalid),
        row("HO-02", "Host with a tilde", "RFC 9112 §3.2 ¶6", host("a~b"), Invalid),
        row("HO-03", "Host with a percent-encoding", "RFC 9112 §3.2 ¶6", host("a%41b"), Invalid),
        row("HO-04", "Host with a trailing dot", "RFC 9110 §7.2", host("localhost."), Valid),
        row("HO-05", "Host an IPv6 literal with port", "RFC 9110 §7.2, RFC 3986 §3.2.2", host("[::1]:80"), Valid),
        row("HO-06", "Host an IPv4 address", "RFC 9110 §7.2", host("127.0.0.1"), Valid),
        row("HO-07", "Host a bare number", "RFC 3986 §7.4", host("123"), Invalid),
        row("HO-08", "Host with an empty port", "RFC 9110 §7.2", host("localhost:"), Invalid),
        row("HO-09", "Host with an underscore", "RFC 9110 §7.2", host("a_b.example"), Valid),
        row("HO-10", "Host an IPv6 literal with a zone id", "RFC 9110 §7.2, RFC 6874", host("[fe80::1%25eth0]"), Invalid),
        row("HO-11", "empty Host", "RFC 9110 §7.2 ¶5, RFC 9112 §3.2 ¶6", host(""), Either),
        row("RL-18", "version HTTP/1.2", "RFC 9110 §2.5", &b"GET /v HTTP/1.2\r\nHost: localhost\r\n\r\n"[..], Either).differs(VERSION_D),
        row("RL-19", "version HTTP/2.0 in HTTP/1 syntax", "RFC 9110 §2.5, §15.6.6", &b"GET /v HTTP/2.0\r\nHost: localhost\r\n\r\n"[..], Invalid).differs(VERSION_D),
        row("RL-20", "version HTTP/3.0", "RFC 9110 §15.6.6", &b"GET /v HTTP/3.0\r\nHost: localhost\r\n\r\n"[..], Invalid).differs(VERSION_D),
        row("RL-21", "lower-case version name", "RFC 9112 §2.3", &b"GET /v http/1.1\r\nHost: localhost\r\n\r\n"[..], Invalid),
        row("RL-22", "version with two-digit major", "RFC 9112 §2.3", &b"GET /v HTTP/01.1\r\nHost: localhost\r\n\r\n"[..], Invalid),
        row("RL-23", "no version (HTTP/0.9 form)", "RFC 9112 §2.3, §3", &b"GET /v\r\n\r\n"[..], Invalid).differs(HTTP09_D),
        row("RL-24", "two spaces between method and target", "RFC 9112 §3 ¶2", &b"GET  /v HTTP/1.1\r\nHost: localhost\r\n\r\n"[..], Either),
        row("RL-25", "tabs as separators", "RFC 9112 §3 ¶3", &b"GET\t/v\tHTTP/1.1\r\nHost: localhost\r\n\r\n"[..], Either),
        row("RL-26", "space after the version", "RFC 9112 §3", &b"GET /v HTTP/1.1 \r\nHost: localhost\r\n\r\n"[..], Invalid),
        row("RL-27", "empty lines before the request line", "RFC 9112 §2.2 ¶6", &b"\r\n\r\nGET /v HTTP/1.1\r\nHost: localhost\r\n\r\n"[..], Valid),
        row("RL-28", "fragment in the target", "RFC 9112 §3.2", &b"GET /v#frag HTTP/1.1\r\nHost: localhost\r\n\r\n"[..], Either).differs(FRAGMENT_D),
        row("RL-29", "raw UTF-8 in the target", "RFC 9112 §3.2, RFC 3986 §2", &b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: localhost\r\n\r\n"[..], Either),
        row("RL-30", "NUL in the target", "RFC 9112 §3.2", &b"GET /a\0b HTTP/1.1\r\nHost: localhost\r\n\r\n"[..], Invalid),
        row("RL-31", "space inside the target", "RFC 9112 §3.2", &b"GET /a b HTTP/1.1\r\nHost: localhost\r\n\r\n"[..], Invalid),
        row("RL-32", "target over LimitRequestLine (9000 bytes)", "RFC 9112 §3 ¶5", long_target, Invalid),
        // Field syntax (RFC 9112 §5, RFC 9110 §5.5).
        row("HF-01", "space before the colon", "RFC 9112 §5.1 ¶2", get("X-A : 1\r\n"), Invalid),
        row("HF-02", "tab before the colon", "RFC 9112 §5.1 ¶2", get("X-A\t: 1\r\n"), Invalid),
        row("HF-03", "space inside a field name", "RFC 9110 §5.1", get("X A: 1\r\n"), Invalid),
        row("HF-04", "empty field name", "RFC 9110 §5.1", get(": 1\r\n"), Invalid),
        row("HF-05", "non-token character in a name", "RFC 9110 §5.1, §5.6.2", get("X@A: 1\r\n"), Invalid),
        row("HF-06", "non-ASCII byte in a name", "RFC 9110 §5.1", get("X-é: 1\r\n"), Invalid),
        row("HF-07", "line without a colon", "RFC 9112 §5", get("NoColon\r\n"), Invalid),
        row("HF-08", "obs-fold continuation line", "RFC 9112 §5.2 ¶2", get("X-A: one\r\n two\r\n"), Either).differs(OBS_FOLD),
        row("HF-09", "obs-fold with a tab", "RFC 9112 §5.2 ¶2", get("X-A: one\r\n\ttwo\r\n"), Either).differs(OBS_FOLD),
        row("HF-10", "whitespace before the first field", "RFC 9112 §2.2 ¶8", &b"GET /g HTTP/1.1\r\n Host: localhost\r\n\r\n"[..], Invalid),
        row("HF-11", "bare LF line endings", "RFC 9112 §2.2 ¶3", &b"GET /g HTTP/1.1\nHost: localhost\n\n"[..], Either).differs(BARE_LF_D),
        row("HF-12", "bare LF ending one field", "RFC 9112 §2.2 ¶3", get("X-A: 1\nX-B: 2\r\n"), Either).differs(BARE_LF_D),
        row("HF-13", "bare CR inside a value", "RFC 9112 §2.2 ¶4", get("X-A: 1\r2\r\n"), Invalid),
        row("HF-14", "bare CR ending a field", "RFC 9112 §2.2 ¶4", get("X-A: 1\rX-B: 2\r\n"), Invalid),
        row("HF-15", "NUL in a value", "RFC 9110 §5.5 ¶5", get("X-A: 1\x002\r\n"), Invalid),
        row("HF-16", "control character 0x01 in a value", "RFC 9110 §5.5", get("X-A: 1\x012\r\n"), Invalid),
        row("HF-17", "DEL in a value", "RFC 9110 §5.5", get("X-A: 1\x7f2\r\n"), Either),
        row("HF-18", "obs-text (0x80-0xFF) in a value", "RFC 9110 §5.5", &b"GET /g HTTP/1.1\r\nHost: localhost\r\nX-A: caf\xe9\r\n\r\n"[..], Valid),
        row("HF-19", "tab inside a value", "RFC 9110 §5.5", get("X-A: a\tb\r\n"), Valid),
        row("HF-20", "leading and trailing whitespace around a value", "RFC 9112 §5.1 ¶3", get("X-A: \t a b \t\r\n"), Valid),
        row("HF-21", "empty value", "RFC 9110 §5.5", get("X-A:\r\n"), Valid),
        row("HF-22", "field over LimitRequestFieldSize (9000 bytes)", "RFC 9110 §5.4", long_field, Invalid),
        row("HF-23", "101 fields, one over LimitRequestFields", "RFC 9110 §5.4", many_fields, Invalid),
        row("HF-25", "151 fields, far over LimitRequestFields", "RFC 9110 §5.4, RFC 6585 §5", too_many_fields, Invalid).differs(
            "beyond one field more than LimitRequestFields hyper stops parsing the head and answers 431 (Request Header \
             Fields Too Large) itself; Apache answers 400 to any number over the limit",
        ),
        row("HF-24", "field name of one character", "RFC 9110 §5.1", get("X: 1\r\n"), Valid),
        // Content-Length (RFC 9112 §6.2, §6.3; RFC 9110 §8.6).
        row("CL-01", "Content-Length with its body", "RFC 9112 §6.2", post("Content-Length: 5\r\n", b"hello"), Valid),
        row("CL-02", "Content-Length: 0", "RFC 9112 §6.2", post("Content-Length: 0\r\n", b""), Valid),
        row("CL-03", "POST without a length", "RFC 9112 §6.3 ¶7", post("", b""), Valid),
        row("CL-04", "two identical Content-Length fields", "RFC 9110 §8.6 ¶4", post("Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"), Either).differs(DUP_CL_D),
        row("CL-05", "Content-Length list of identical values", "RFC 9110 §8.6 ¶4", post("Content-Length: 5, 5\r\n", b"hello"), Either),
        row("CL-06", "two differing Content-Length fields", "RFC 9112 §6.3 ¶5", post("Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!"), Refused),
        row("CL-07", "Content-Length list of differing values", "RFC 9112 §6.3 ¶5", post("Content-Length: 5, 6\r\n", b"hello!"), Refused),
        row("CL-08", "Content-Length with a plus sign", "RFC 9110 §8.6", post("Content-Length: +5\r\n", b"hello"), Refused),
        row("CL-09", "negative Content-Length", "RFC 9110 §8.6", post("Content-Length: -1\r\n", b"hello"), Refused),
        row("CL-10", "hexadecimal Content-Length", "RFC 9110 §8.6", post("Content-Length: 0x5\r\n", b"hello"), Refused),
        row("CL-11", "Content-Length with whitespace around it", "RFC 9112 §5.1 ¶3", post("Content-Length:  5 \r\n", b"hello"), Valid),
        row("CL-12", "Content-Length with leading zeros", "RFC 9110 §8.6", post("Content-Length: 005\r\n", b"hello"), Valid),
        row("CL-13", "Content-Length past 2^64", "RFC 9110 §8.6 ¶7", post("Content-Length: 99999999999999999999\r\n", b"hello"), Refused),
        row("CL-14", "empty Content-Length", "RFC 9110 §8.6", post("Content-Length:\r\n", b"hello"), Refused),
        row("CL-15", "GET with a Content-Length body", "RFC 9110 §9.3.1", &b"GET /g HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc"[..], Valid),
        row("CL-16", "Content-Length with a decimal point", "RFC 9110 §8.6", post("Content-Length: 5.0\r\n", b"hello"), Refused),
        // Transfer-Encoding (RFC 9112 §6.1, §6.3).
        row("TE-01", "chunked body", "RFC 9112 §7.1", chunked("5\r\nhello\r\n0\r\n\r\n"), Valid),
        row("TE-02", "chunked, in capitals", "RFC 9112 §7 ¶2", post("Transfer-Encoding: CHUNKED\r\n", b"5\r\nhello\r\n0\r\n\r\n"), Valid),
        row("TE-03", "gzip then chunked", "RFC 9112 §6.1 ¶7", post("Transfer-Encoding: gzip, chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"), Invalid),
        row("TE-04", "chunked then gzip (chunked not final)", "RFC 9112 §6.3 ¶4", post("Transfer-Encoding: chunked, gzip\r\n", b"5\r\nhello\r\n0\r\n\r\n"), Refused),
        row("TE-05", "gzip only", "RFC 9112 §6.3 ¶4", post("Transfer-Encoding: gzip\r\n", b"hello"), Refused),
        row("TE-06", "identity (no longer a coding)", "RFC 9112 §6.1, §7", post("Transfer-Encoding: identity\r\n", b"hello"), Refused),
        row("TE-07", "an unknown coding", "RFC 9112 §6.1 ¶13", post("Transfer-Encoding: x-unknown\r\n", b"hello"), Refused),
        row("TE-08", "chunked twice in one field", "RFC 9112 §6.1 ¶5", post("Transfer-Encoding: chunked, chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"), Invalid),
        row("TE-09", "chunked in two fields", "RFC 9112 §6.1 ¶5", post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"), Invalid),
        row("TE-10", "gzip field, then chunked field", "RFC 9110 §5.3, RFC 9112 §6.1", post("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"), Invalid),
        row("TE-11", "chunked with trailing whitespace", "RFC 9112 §5.1 ¶3", post("Transfer-Encoding: chunked \r\n", b"5\r\nhello\r\n0\r\n\r\n"), Valid),
        row("TE-12", "a word ending in chunked", "RFC 9112 §6.1", post("Transfer-Encoding: xchunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"), Refused),
        row("TE-13", "empty Transfer-Encoding", "RFC 9112 §6.1", post("Transfer-Encoding:\r\n", b""), Refused),
        row("TE-14", "Transfer-Encoding in HTTP/1.0", "RFC 9112 §6.1 ¶16", &b"POST /p HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"[..], Refused).differs(TE10_D),
        // Content-Length with Transfer-Encoding (RFC 9112 §6.1 ¶15, §6.3 ¶3).
        row("CT-01", "Content-Length, then Transfer-Encoding", "RFC 9112 §6.1 ¶15, §6.3 ¶3", post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"), Refused).differs(CL_TE_D),
        row("CT-02", "Transfer-Encoding, then Content-Length", "RFC 9112 §6.1 ¶15, §6.3 ¶3", post("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"5\r\nhello\r\n0\r\n\r\n"), Refused).differs(CL_TE_D),
        row("CT-03", "Content-Length: 0 with chunked", "RFC 9112 §6.1 ¶15, §6.3 ¶3", post("Content-Length: 0\r\nTransfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"), Refused).differs(CL_TE_D),
        row("CT-04", "smuggling attempt: chunked body hides a request", "RFC 9112 §6.3 ¶3, §11.2", post("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n"), Refused).differs(CL_TE_D),
        row("CT-05", "invalid Content-Length with chunked", "RFC 9112 §6.3 ¶3", post("Content-Length: x\r\nTransfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"), Refused),
        // Chunk syntax (RFC 9112 §7.1).
        row("CK-01", "upper-case hexadecimal size", "RFC 9112 §7.1", chunked("A\r\n0123456789\r\n0\r\n\r\n"), Valid),
        row("CK-02", "lower-case hexadecimal size", "RFC 9112 §7.1", chunked("a\r\n0123456789\r\n0\r\n\r\n"), Valid),
        row("CK-03", "size with leading zeros", "RFC 9112 §7.1", chunked("0005\r\nhello\r\n0000\r\n\r\n"), Valid),
        row("CK-04", "size with a plus sign", "RFC 9112 §7.1", chunked("+5\r\nhello\r\n0\r\n\r\n"), Invalid).differs(LAZY_D),
        row("CK-05", "size with a minus sign", "RFC 9112 §7.1", chunked("-5\r\nhello\r\n0\r\n\r\n"), Invalid).differs(LAZY_D),
        row("CK-06", "size with 0x", "RFC 9112 §7.1", chunked("0x5\r\nhello\r\n0\r\n\r\n"), Invalid).differs(LAZY_D),
        row("CK-07", "size overflowing 64 bits", "RFC 9112 §7.1 ¶3", chunked("10000000000000000\r\nhello\r\n0\r\n\r\n"), Invalid).differs(LAZY_D),
        row("CK-08", "size not hexadecimal", "RFC 9112 §7.1", chunked("zz\r\nhello\r\n0\r\n\r\n"), Invalid).differs(LAZY_D),
        row("CK-09", "empty size line", "RFC 9112 §7.1", chunked("\r\nhello\r\n0\r\n\r\n"), Invalid).differs(LAZY_D),
        row("CK-10", "chunk extension", "RFC 9112 §7.1.1", chunked("5;name=value\r\nhello\r\n0\r\n\r\n"), Valid),
        row("CK-11", "chunk extension with a quoted value", "RFC 9112 §7.1.1", chunked("5;n=\"a b\"\r\nhello\r\n0;x\r\n\r\n"), Valid),
        row("CK-12", "whitespace before an extension", "RFC 9112 §7.1.1 (BWS)", chunked("5 ;n=v\r\nhello\r\n0\r\n\r\n"), Either),
        row("CK-13", "data longer than its size", "RFC 9112 §7.1", chunked("3\r\nhello\r\n0\r\n\r\n"), Invalid).differs(LAZY_D),
        row("CK-14", "data without its CRLF", "RFC 9112 §7.1", chunked("5\r\nhello0\r\n\r\n"), Invalid).differs(LAZY_D),
        row("CK-15", "bare LF after the size", "RFC 9112 §7.1, §2.2", chunked("5\nhello\r\n0\r\n\r\n"), Either).differs(LAZY_D),
        row("CK-16", "bare LF after the data", "RFC 9112 §7.1, §2.2", chunked("5\r\nhello\n0\r\n\r\n"), Either).differs(LAZY_D),
        row("CK-17", "several chunks", "RFC 9112 §7.1", chunked("2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n"), Valid),
        row("CK-18", "only the last chunk", "RFC 9112 §7.1", chunked("0\r\n\r\n"), Valid),
        // Trailer sections (RFC 9110 §6.5, RFC 9112 §7.1.2).
        row("TR-01", "allowed trailer field", "RFC 9112 §7.1.2", chunked("5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n"), Valid),
        row("TR-02", "Content-Length in the trailer", "RFC 9110 §6.5.1", chunked("5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n"), Refused).differs(
            "Apache keeps trailer fields apart (MergeTrailers off) and runs the request; the standalone server refuses a forbidden trailer field",
        ),
        row("TR-03", "Host in the trailer", "RFC 9110 §6.5.1", chunked("5\r\nhello\r\n0\r\nHost: other\r\n\r\n"), Refused).differs(
            "Apache keeps trailer fields apart (MergeTrailers off) and runs the request; the standalone server refuses a forbidden trailer field",
        ),
        row("TR-04", "Transfer-Encoding in the trailer", "RFC 9110 §6.5.1", chunked("5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n"), Refused).differs(
            "Apache keeps trailer fields apart (MergeTrailers off) and runs the request; the standalone server refuses a forbidden trailer field",
        ),
        row("TR-05", "Content-Type in the trailer", "RFC 9110 §6.5.1", chunked("5\r\nhello\r\n0\r\nContent-Type: text/plain\r\n\r\n"), Refused).differs(
            "Apache keeps trailer fields apart (MergeTrailers off) and runs the request; the standalone server refuses a forbidden trailer field",
        ),
        row("TR-06", "Authorization in the trailer", "RFC 9110 §6.5.1", chunked("5\r\nhello\r\n0\r\nAuthorization: Basic eDp5\r\n\r\n"), Refused).differs(
            "Apache keeps trailer fields apart (MergeTrailers off) and runs the request; the standalone server refuses a forbidden trailer field",
        ),
        row("TR-07", "trailer line without a colon", "RFC 9112 §7.1.2, §5", chunked("5\r\nhello\r\n0\r\nNoColon\r\n\r\n"), Invalid).differs(LAZY_D),
        row("TR-08", "obs-fold in the trailer", "RFC 9112 §5.2", chunked("5\r\nhello\r\n0\r\nX-A: 1\r\n 2\r\n\r\n"), Either).differs(TRAILER_FOLD_D),
        row("TR-09", "two allowed trailer fields", "RFC 9112 §7.1.2", chunked("5\r\nhello\r\n0\r\nX-A: 1\r\nX-B: 2\r\n\r\n"), Valid),
        // Connection management (RFC 9112 §9).
        row("CN-01", "Connection: close", "RFC 9112 §9.6", get("Connection: close\r\n"), ValidThenClose),
        row("CN-02", "HTTP/1.0 without keep-alive", "RFC 9112 §9.3", &b"GET /g HTTP/1.0\r\nHost: localhost\r\n\r\n"[..], ValidThenClose),
        row("CN-03", "HTTP/1.0 with Connection: keep-alive", "RFC 9112 §9.3, §C.2.2", &b"GET /g HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n"[..], Valid),
        row("CN-04", "Expect: 100-continue with a body", "RFC 9110 §10.1.1", post("Content-Length: 5\r\nExpect: 100-continue\r\n", b"hello"), Valid),
        row("CN-05", "Connection: close among other options", "RFC 9112 §9.6", get("Connection: keep-alive, close\r\n"), ValidThenClose),
        // Half-closed connections (RFC 9112 §9.6): the client shuts its
        // sending side after its requests and still reads the answers.
        row("HC-01", "half-closed after a GET", "RFC 9112 §9.6 ¶5", get(""), Valid).half_closed(),
        row("HC-02", "half-closed after a POST with a body", "RFC 9112 §9.6 ¶5", post("Content-Length: 5\r\n", b"hello"), Valid).half_closed(),
        row("HC-03", "half-closed after a chunked POST", "RFC 9112 §9.6 ¶5", chunked("5\r\nhello\r\n0\r\n\r\n"), Valid).half_closed(),
        row("HC-04", "half-closed after an invalid request", "RFC 9112 §9.6 ¶5", get("X A: 1\r\n"), Invalid).half_closed(),
        row("HC-05", "half-closed after Content-Length with chunked", "RFC 9112 §6.3 ¶3", post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"), Refused).half_closed().differs(CL_TE_D),
    ]
}

/// What a server did with a row.
#[derive(Debug, Clone)]
struct Outcome {
    /// The status, or how the connection ended without one.
    answer: String,
    /// What the application echoed (`METHOD PATH LENGTH`), if it answered.
    echo: Option<String>,
    /// Whether the application was called for the row's request.
    reached: bool,
    /// Whether the pipelined request was answered.
    next: bool,
    /// Whether the connection then ended (end of file or reset, not a
    /// read timeout). Not compared: Apache's lingering close may or may
    /// not end within the read limit.
    closed: bool,
}

impl PartialEq for Outcome {
    fn eq(&self, other: &Outcome) -> bool {
        (&self.answer, &self.echo, self.reached, self.next) == (&other.answer, &other.echo, other.reached, other.next)
    }
}

impl Outcome {
    fn render(&self) -> String {
        let mut text = self.answer.clone();
        if let Some(echo) = &self.echo {
            text.push_str(&format!(" app({echo})"));
        } else if self.reached {
            text.push_str(" app");
        }
        text.push_str(if self.next { ", next answered" } else { ", closed" });
        text
    }

    fn status(&self) -> Option<u16> {
        self.answer.parse().ok()
    }
}

/// One server under test: where it listens and the file its application
/// records calls in.
struct Target {
    address: std::net::SocketAddr,
    calls: std::path::PathBuf,
}

impl Target {
    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(&self.calls).unwrap_or_default().lines().map(str::to_string).collect()
    }

    /// Sends `row` (and the pipelined request) on a new connection.
    fn send(&self, row: &Row) -> Outcome {
        let before = self.calls().len();
        let mut connection = HttpConnection::open(self.address);
        connection.stream().set_read_timeout(Some(READ_LIMIT)).unwrap();
        let mut bytes = row.raw.clone();
        bytes.extend_from_slice(NEXT);
        let _ = connection.send(&bytes);
        if row.half_close {
            let _ = connection.stream().shutdown(std::net::Shutdown::Write);
        }
        let head_request = row.raw.starts_with(b"HEAD ");
        let (answer, echo) = match connection.read_response(head_request) {
            Ok(response) => {
                let text = response.text();
                let echo = text.strip_prefix("app ").map(str::to_string);
                (response.status().to_string(), echo)
            }
            Err(e) => (describe(&e, connection.raw_received()), None),
        };
        let after = connection.read_response(false);
        let closed = after.as_ref().is_err_and(ended);
        let next = after.is_ok_and(|r| r.text() == "app GET /next 0");
        // The call record is written before the application answers; a
        // refused request never appears.
        let reached = self.calls()[before..].iter().any(|call| call != "GET /next");
        Outcome { answer, echo, reached, next, closed }
    }
}

/// Whether a read failed because the connection ended (not a timeout).
fn ended(error: &std::io::Error) -> bool {
    matches!(error.kind(), ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted)
}

/// How a connection ended without a response it could parse.
fn describe(error: &std::io::Error, received: &[u8]) -> String {
    match error.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => "no answer".to_string(),
        _ if received.is_empty() => "closed".to_string(),
        _ if !received.starts_with(b"HTTP/") => "no status line".to_string(),
        _ => format!("malformed ({error})"),
    }
}

/// Whether the standalone server's `outcome` is what `expect` asks.
fn fits(expect: Expect, outcome: &Outcome) -> bool {
    let status = outcome.status();
    let ok = status.is_some_and(|s| (200..300).contains(&s)) && outcome.reached;
    let refused = |s: Option<u16>| s.is_some_and(|s| s >= 400) && !outcome.reached;
    match expect {
        Expect::Valid => ok && outcome.next,
        Expect::ValidThenClose => ok && !outcome.next,
        Expect::ServerAnswers => status.is_some_and(|s| (200..300).contains(&s)) && !outcome.reached && outcome.next,
        Expect::Invalid => refused(status),
        Expect::Refused => status == Some(400) && !outcome.reached && !outcome.next && outcome.closed,
        Expect::Either => (ok && outcome.next) || refused(status),
    }
}

/// Escapes raw bytes for the table: CR, LF, tab and other bytes outside
/// printable ASCII as `\r`, `\n`, `\t`, `\xNN`; long runs shortened.
fn escape(raw: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        let run = raw[i..].iter().take_while(|&&c| c == b).count();
        if run > 16 {
            out.push_str(&format!("{}…×{run}", b as char));
            i += run;
            continue;
        }
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'|' => out.push_str("\\|"),
            b'`' => out.push_str("\\x60"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
        i += 1;
    }
    if out.len() > 400 {
        let cut = (0..=400).rev().find(|&n| out.is_char_boundary(n)).unwrap_or(0);
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// The table as `docs/conformance.md` holds it.
fn render(results: &[(Row, Outcome, Outcome)]) -> String {
    let agree = results.iter().filter(|(_, ours, apache)| ours == apache).count();
    let differ = results.len() - agree;
    let mut text = format!(
        "# HTTP/1.1 conformance\n\n\
         Generated by `tests/tests/http_conformance.rs` (`UPDATE_CONFORMANCE=1 cargo test -p tests --test \
         http_conformance` rewrites it; the test fails when it is stale).\n\n\
         Each row is one raw request, sent on a new connection with a valid request (`GET /next`) pipelined \
         behind it, to the standalone server and to Apache 2.4 running our module, both serving the same \
         application, which records every call. A result is the status (or how the connection ended \
         without one), `app(...)` when the application answered (method, path and body length it read), \
         `app` when it was called but did not answer, and whether the pipelined request was answered. \
         Rows marked half-closed shut the client's sending side after the requests. \
         A request that could be read two ways (both `Content-Length` and `Transfer-Encoding`, a trailer \
         field RFC 9110 §6.5.1 forbids) is refused by the standalone server with 400 and its connection \
         closed, before the application.\n\n\
         **{} requests: {agree} agree with Apache, {differ} differ** (each difference gives its reason \
         in its row).\n\n\
         | id | request | clause | raw bytes | standalone | Apache | comparison |\n\
         |---|---|---|---|---|---|---|\n",
        results.len()
    );
    for (row, ours, apache) in results {
        let what = if row.half_close { format!("{} (half-closed)", row.what) } else { row.what.to_string() };
        let comparison = match row.differs {
            Some(reason) if ours != apache => format!("differs: {reason}"),
            _ if ours != apache => "differs (undocumented)".to_string(),
            _ => "agree".to_string(),
        };
        text.push_str(&format!(
            "| {} | {} | {} | `{}` | {} | {} | {} |\n",
            row.id,
            what,
            row.clause,
            escape(&row.raw),
            ours.render(),
            apache.render(),
            comparison
        ));
    }
    text
}

#[test]
fn raw_requests_against_the_standalone_server_and_apache() {
    tests::require!(tests::apache::APACHE_BINARY);
    let started = Instant::now();
    let ours_dir = TempDir::new("conformance-standalone");
    let apache_dir = TempDir::new("conformance-apache");
    let mut targets = Vec::new();
    for dir in [&ours_dir, &apache_dir] {
        dir.write("app.wsgi", APP);
        let calls = dir.write("calls", "");
        // Apache's children run as www-data.
        std::fs::set_permissions(&calls, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    }
    let server = Server::start([ours_dir.path().join("app.wsgi").as_os_str()]);
    let apache = Apache::start(&ApacheOptions::ours(format!(
        "WSGIScriptAlias / {dir}/app.wsgi\nWSGIChunkedRequest On\n",
        dir = apache_dir.path().display()
    )));
    targets.push(Target { address: server.address(), calls: ours_dir.path().join("calls") });
    targets.push(Target { address: apache.address(), calls: apache_dir.path().join("calls") });

    let mut failures = Vec::new();
    let mut results = Vec::new();
    let mut ids = std::collections::BTreeSet::new();
    for row in rows() {
        assert!(ids.insert(row.id), "row id {} twice", row.id);
        let ours = targets[0].send(&row);
        let theirs = targets[1].send(&row);
        if !fits(row.expect, &ours) {
            failures.push(format!(
                "{}: the standalone server's {} does not fit {:?}",
                row.id,
                ours.render(),
                row.expect
            ));
        }
        match (ours == theirs, row.differs) {
            (false, None) => failures.push(format!(
                "{}: undocumented difference: standalone {}, Apache {}",
                row.id,
                ours.render(),
                theirs.render()
            )),
            (true, Some(_)) => {
                failures.push(format!("{}: documented difference went away: both {}", row.id, ours.render()))
            }
            _ => {}
        }
        results.push((row, ours, theirs));
    }
    assert!(results.len() >= 80, "at least 80 rows");
    // Both servers still serve.
    assert_eq!(server.get("/after").status(), 200);
    assert_eq!(apache.get("/after").status(), 200);

    let table = render(&results);
    let path = tests::workspace_root().join("docs").join("conformance.md");
    if std::env::var_os("UPDATE_CONFORMANCE").is_some() {
        std::fs::write(&path, &table).unwrap();
    } else if std::fs::read_to_string(&path).unwrap_or_default() != table {
        failures.push(format!("{} is stale: run with UPDATE_CONFORMANCE=1 and review the change", path.display()));
    }
    // The README's Differences section states the counts.
    let agree = results.iter().filter(|(_, ours, apache)| ours == apache).count();
    let readme = std::fs::read_to_string(tests::workspace_root().join("README.md")).unwrap();
    let readme = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    let counts = format!("{} raw requests", results.len());
    let split = format!("{agree} agree with Apache, {} differ", results.len() - agree);
    if !readme.contains(&counts) || !readme.contains(&split) {
        failures.push(format!("README.md's Differences section must say \"{counts}\" and \"{split}\""));
    }
    eprintln!("{} rows in {:?}", results.len(), started.elapsed());
    assert!(failures.is_empty(), "{}\n\n{table}", failures.join("\n"));
}

/// A chunked body larger than what the server reads before calling the
/// application (256 KiB, or what has arrived) is streamed to it: a forbidden trailer field at
/// its end makes the application's last read fail, so the request still
/// fails with 400 (the application is called, but never sees a complete
/// body), and the connection closes, the pipelined request unread. A
/// smaller one is refused before the application (TR-02..06). The same
/// in daemon mode, where the body is relayed to a daemon process.
#[test]
fn a_forbidden_trailer_after_a_large_chunked_body_fails_the_read_and_closes() {
    for daemon in [false, true] {
        let dir = TempDir::new("conformance-large-trailer");
        dir.write("app.wsgi", APP);
        let calls = dir.write("calls", "");
        std::fs::set_permissions(&calls, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
        let script = dir.path().join("app.wsgi");
        let mut args = vec![script.as_os_str()];
        if daemon {
            args.push("--daemon".as_ref());
        }
        let server = Server::start(args);
        let piece = vec![b'x'; 64 * 1024];
        let pieces: Vec<&[u8]> = (0..5).map(|_| &piece[..]).collect();
        let mut body = tests::chunked(&pieces);
        // The last chunk's blank line gives way to a trailer section.
        body.truncate(body.len() - 2);
        body.extend_from_slice(b"Host: other\r\n\r\n");
        let mut request = post("Transfer-Encoding: chunked\r\n", b"");
        request.extend_from_slice(&body);
        request.extend_from_slice(NEXT);
        let mut connection = server.connect();
        connection.stream().set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        connection.send(&request).unwrap();
        let response = connection.read_response(false).unwrap();
        assert_eq!(response.status(), 400, "daemon {daemon}: {}", response.text());
        assert!(!response.text().starts_with("app "), "{}", response.text());
        let after = connection.read_response(false);
        assert!(after.as_ref().is_err_and(ended), "daemon {daemon}: the connection stays open: {after:?}");
        // Without the forbidden field the same body is read whole.
        let mut fine = post("Transfer-Encoding: chunked\r\n", b"");
        fine.extend_from_slice(&tests::chunked(&pieces));
        let mut connection = server.connect();
        connection.send(&fine).unwrap();
        assert_eq!(connection.read_response(false).unwrap().text(), format!("app POST /p {}", 5 * 64 * 1024));
    }
}

/// The watch for requests with both `Content-Length` and
/// `Transfer-Encoding` goes on after a request whose method is `PRI` or
/// `CONNECT` (only a connection's first bytes can be HTTP/2's preface):
/// the request smuggled behind it is refused, never reaching the
/// application.
#[test]
fn pri_and_connect_requests_do_not_let_a_smuggled_request_through() {
    let dir = TempDir::new("conformance-pri-smuggle");
    dir.write("app.wsgi", APP);
    dir.write("calls", "");
    let server = Server::start([dir.path().join("app.wsgi").as_os_str()]);
    let target = Target { address: server.address(), calls: dir.path().join("calls") };
    let smuggle = b"POST /smug HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n\
        5\r\nhello\r\n0\r\n\r\n";
    for first in [&b"PRI /x HTTP/1.1\r\nHost: a\r\n\r\n"[..], b"CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n"] {
        let mut connection = HttpConnection::open(server.address());
        connection.stream().set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        connection.send(&[first, &smuggle[..], NEXT].concat()).unwrap();
        let label = String::from_utf8_lossy(first).lines().next().unwrap_or_default().to_string();
        // The first is answered by the application; then the smuggling
        // request is refused (400) and the connection closed, or, after a
        // CONNECT answered 2xx, the connection is a tunnel hyper does not
        // read requests from, and ends.
        // (hyper drops a CONNECT's 2xx whose application set a
        // Content-Length, closing the connection.)
        match connection.read_response(false) {
            Ok(first_answer) => assert!(first_answer.text().starts_with("app "), "{label}: {}", first_answer.text()),
            Err(e) => assert!(first.starts_with(b"CONNECT") && ended(&e), "{label}: {e:?}"),
        }
        let mut statuses = Vec::new();
        let end = loop {
            match connection.read_response(false) {
                Ok(response) => statuses.push(response.status()),
                Err(e) => break e,
            }
        };
        assert!(ended(&end), "{label}: {end:?}");
        assert!(statuses.is_empty() || statuses == [400], "{label}: {statuses:?}");
        assert!(!target.calls().iter().any(|call| call.contains("/smug")), "{label}: {:?}", target.calls());
    }
}

/// An application that reads a chunked body as it comes: a client that
/// sends part of it and waits for the answer gets it (the server does not
/// wait for the rest before calling the application).
const INTERACTIVE_APP: &str = r#"
def application(environ, start_response):
    if environ['PATH_INFO'] == '/noread':
        start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '6')])
        return [b'unread']
    first = environ['wsgi.input'].read(5)
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(first)))])
    return [first]
"#;

#[test]
fn an_interactive_chunked_upload_is_answered_before_it_ends() {
    let dir = TempDir::new("conformance-interactive");
    dir.write("app.wsgi", INTERACTIVE_APP);
    let server = Server::start([dir.path().join("app.wsgi").as_os_str()]);
    let mut connection = server.connect();
    // Far below the server's socket timeout (60 s): an answer only after
    // the rest of the body would never come.
    connection.stream().set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    connection.send(b"POST /stream HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n").unwrap();
    let response = connection.read_response(false).expect("answered before the body ended");
    assert_eq!((response.status(), response.text().as_str()), (200, "hello"));
}

/// With `Expect: 100-continue`, a chunked body is not read ahead: `100
/// Continue` goes out only when the application reads, and an application
/// that does not read never asks for the body.
#[test]
fn expect_continue_with_a_chunked_body_waits_for_the_application() {
    let dir = TempDir::new("conformance-expect");
    dir.write("app.wsgi", INTERACTIVE_APP);
    let server = Server::start([dir.path().join("app.wsgi").as_os_str()]);
    let head = "HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n";
    // Not read: the final answer with no 100 before it.
    let mut connection = server.connect();
    connection.stream().set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    connection.send(format!("POST /noread {head}").as_bytes()).unwrap();
    let response = connection.read_response(false).unwrap();
    assert_eq!((response.status(), response.text().as_str()), (200, "unread"));
    assert!(
        connection.raw_received().starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(connection.raw_received())
    );
    // Read: 100, then the body is sent, then the answer.
    let mut connection = server.connect();
    connection.stream().set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    connection.send(format!("POST /read {head}").as_bytes()).unwrap();
    let mut interim = Vec::new();
    while !interim.ends_with(b"\r\n\r\n") {
        interim.extend(connection.read_some(1).unwrap());
    }
    assert!(interim.starts_with(b"HTTP/1.1 100"), "{:?}", String::from_utf8_lossy(&interim));
    connection.send(b"5\r\nhello\r\n0\r\n\r\n").unwrap();
    let response = connection.read_response(false).unwrap();
    assert_eq!((response.status(), response.text().as_str()), (200, "hello"));
}

/// A chunked body over `LimitRequestBody` is refused with 413 before the
/// application, and the connection closed (the pipelined request unread),
/// as Apache does.
#[test]
fn a_chunked_body_over_the_limit_is_refused_before_the_application() {
    let dir = TempDir::new("conformance-chunked-limit");
    dir.write("app.wsgi", APP);
    dir.write("calls", "");
    let server =
        Server::start([dir.path().join("app.wsgi").as_os_str(), "--limit-request-body".as_ref(), "1000".as_ref()]);
    let target = Target { address: server.address(), calls: dir.path().join("calls") };
    let piece = vec![b'x'; 1024];
    let pieces: Vec<&[u8]> = (0..100).map(|_| &piece[..]).collect();
    let mut request = post("Transfer-Encoding: chunked\r\n", b"");
    request.extend_from_slice(&tests::chunked(&pieces));
    request.extend_from_slice(NEXT);
    let mut connection = server.connect();
    connection.stream().set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = connection.send(&request);
    let response = connection.read_response(false).unwrap();
    assert_eq!(response.status(), 413, "{}", response.text());
    let after = connection.read_response(false);
    assert!(after.as_ref().is_err_and(ended), "{after:?}");
    assert!(target.calls().is_empty(), "{:?}", target.calls());
}

/// One long keep-alive connection, its requests written in small pieces
/// that split heads, chunk-size lines and bodies anywhere: every request
/// is served, so the framing watch follows them; a request with both
/// `Content-Length` and `Transfer-Encoding` at the end is still found.
#[test]
fn a_long_keep_alive_connection_with_split_writes() {
    let dir = TempDir::new("conformance-keepalive");
    dir.write("app.wsgi", APP);
    dir.write("calls", "");
    let server = Server::start([dir.path().join("app.wsgi").as_os_str()]);
    let mut connection = server.connect();
    connection.stream().set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    connection.stream().set_nodelay(true).unwrap();
    for i in 0..60usize {
        let body = vec![b'b'; i * 37 % 500];
        let request = match i % 3 {
            0 => post(&format!("Content-Length: {}\r\n", body.len()), &body),
            1 => {
                let mut raw = post("Transfer-Encoding: chunked\r\n", b"");
                let pieces: Vec<&[u8]> = body.chunks(7 + i % 11).collect();
                raw.extend_from_slice(&tests::chunked(&pieces));
                raw
            }
            _ => get("X-Filler: Content-Length: 99\r\n"),
        };
        for piece in request.chunks(1 + i % 13) {
            connection.send(piece).unwrap();
        }
        let response = connection.read_response(false).unwrap();
        let expected = if i % 3 == 2 { "app GET /g 0".to_string() } else { format!("app POST /p {}", body.len()) };
        assert_eq!(response.text(), expected, "request {i}");
    }
    let smuggle = post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n");
    for piece in smuggle.chunks(3) {
        connection.send(piece).unwrap();
    }
    assert_eq!(connection.read_response(false).unwrap().status(), 400);
    let after = connection.read_response(false);
    assert!(after.as_ref().is_err_and(ended), "{after:?}");
}
