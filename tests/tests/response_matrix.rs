//! Every shape of WSGI response, sent through Debian's mod_wsgi and through
//! each of our five modes: status, headers and body must agree.
//!
//! The application builds its response from the query string: the kind of
//! iterable, the pattern of chunks, the status, the Content-Length it
//! declares; each is requested with GET and with HEAD.

use tests::modes::{Deployment, Host, Mode};
use tests::{HttpResponse, TempDir};

const APP: &str = r#"
STATUS = {'200': '200 OK', '204': '204 No Content', '302': '302 Found',
          '304': '304 Not Modified', '404': '404 Not Found'}
CHUNKS = {'none': [], 'empty': [b''], 'empty-then-data': [b'', b'hello'],
          'one': [b'hello world'], 'mixed': [b'ab', b'', b'cde', b'', b'', b'f']}

class Closing:
    """An iterable object with close(), as Django's HttpResponse is."""
    def __init__(self, chunks):
        self.chunks = chunks
        self.closed = False
    def __iter__(self):
        return iter(self.chunks)
    def close(self):
        self.closed = True

def application(environ, start_response):
    case = dict(pair.split('=') for pair in environ['QUERY_STRING'].split('&'))
    chunks = CHUNKS[case['chunks']]
    headers = [('Content-Type', 'text/plain; charset=utf-8'), ('X-Case', environ['QUERY_STRING'])]
    if case['status'] == '302':
        headers.append(('Location', 'http://example.com/login/?next=/admin/'))
    length = {'absent': None, 'right': sum(map(len, chunks)), 'zero': 0}[case['length']]
    if length is not None:
        headers.append(('Content-Length', str(length)))
    write = start_response(STATUS[case['status']], headers)
    kind = case['kind']
    if kind == 'list':
        return list(chunks)
    if kind == 'tuple':
        return tuple(chunks)
    if kind == 'generator':
        return (chunk for chunk in chunks)
    if kind == 'closing':
        return Closing(chunks)
    for chunk in chunks:
        write(chunk)
    return []
"#;

const KINDS: [&str; 5] = ["list", "tuple", "generator", "closing", "write"];
const CHUNKS: [&str; 5] = ["none", "empty", "empty-then-data", "one", "mixed"];
const STATUSES: [&str; 5] = ["200", "204", "302", "304", "404"];
const LENGTHS: [&str; 3] = ["absent", "right", "zero"];
const METHODS: [&str; 2] = ["GET", "HEAD"];

/// One request of the matrix.
struct Case {
    method: &'static str,
    query: String,
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for kind in KINDS {
        for chunks in CHUNKS {
            for status in STATUSES {
                for length in LENGTHS {
                    for method in METHODS {
                        let query = format!("kind={kind}&chunks={chunks}&status={status}&length={length}");
                        cases.push(Case { method, query });
                    }
                }
            }
        }
    }
    cases
}

/// The headers compared. The others (Date, Server, Keep-Alive,
/// Connection) vary by nature.
const COMPARED_HEADERS: [&str; 5] = ["Content-Type", "Content-Length", "Transfer-Encoding", "Location", "X-Case"];

/// The framing headers, compared only where the application declared a
/// Content-Length: without one, a server may send the body chunked or
/// with a length it counted (RFC 9112 allows both; mod_wsgi flushes each
/// block and chunks, ours counts a whole list). The body is compared
/// either way.
const FRAMING_HEADERS: [&str; 2] = ["Content-Length", "Transfer-Encoding"];

/// What is compared of a response: the status, the compared headers
/// (each with every value it had) and the body.
fn shape(case: &Case, response: &HttpResponse) -> String {
    let declared_length = !case.query.contains("length=absent");
    let mut text = format!("{}", response.status());
    for name in COMPARED_HEADERS.into_iter().filter(|name| declared_length || !FRAMING_HEADERS.contains(name)) {
        let values = response.head.header_all(name);
        if !values.is_empty() {
            text.push_str(&format!(" | {name}: {}", values.join(", ")));
        }
    }
    text.push_str(&format!(" | body {:?}", response.text()));
    text
}

#[test]
fn every_response_shape_agrees_with_mod_wsgi_in_every_mode() {
    tests::require!(tests::apache::APACHE_BINARY, tests::apache::REFERENCE_MODULE);
    let site = TempDir::new("response-matrix");
    let deployment = Deployment::script(site.write("matrix.wsgi", APP));
    let cases = cases();
    assert_eq!(cases.len(), 750);

    let mut differences = Vec::new();
    let mut compared = 0;
    for daemon in [false, true] {
        let reference = Host::reference(daemon, &deployment);
        let expected: Vec<String> = cases
            .iter()
            .map(|case| shape(case, &reference.request(case.method, &format!("/?{}", case.query), &[], b"")))
            .collect();
        drop(reference);
        for mode in Mode::ALL.into_iter().filter(|mode| mode.is_daemon() == daemon) {
            let host = Host::start(mode, &deployment);
            for (case, expected) in cases.iter().zip(&expected) {
                let got = shape(case, &host.request(case.method, &format!("/?{}", case.query), &[], b""));
                compared += 1;
                if &got != expected {
                    differences.push(format!(
                        "{}: {} {}\n    ours:     {got}\n    mod_wsgi: {expected}",
                        mode.name(),
                        case.method,
                        case.query
                    ));
                }
            }
            let log = host.log();
            if log.contains("Traceback") {
                differences.push(format!("{}: the application failed:\n{log}", mode.name()));
            }
        }
    }
    assert_eq!(compared, 750 * 5);
    for difference in &differences {
        eprintln!("{difference}");
    }
    assert!(
        differences.is_empty(),
        "{} of {compared} responses differ from mod_wsgi's:\n{}",
        differences.len(),
        differences.iter().take(60).cloned().collect::<Vec<_>>().join("\n")
    );
}
