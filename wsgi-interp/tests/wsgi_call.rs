//! The WSGI call through real Python, driven through wsgi-core's seam by an
//! in-memory front end.

mod common;

use common::*;
use wsgi_core::{EnvValue, LogLevel, RunOutcome};

fn script(scripts: &Scripts, name: &str, source: &str) -> std::path::PathBuf {
    scripts.write(name, source)
}

#[test]
fn hello_world() {
    let scripts = Scripts::new("hello");
    let path = script(
        &scripts,
        "hello.wsgi",
        "def application(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'Hello ', environ['PATH_INFO'].encode()]\n",
    );
    let out = run(&target(&path, ""), "GET", "/world", b"");
    assert_eq!(out.outcome, RunOutcome::Completed, "{}", out.log.text());
    assert_eq!(out.response.status, 200);
    assert_eq!(out.response.text(), "Hello /world");
    assert_eq!(out.response.header("content-type"), Some("text/plain"));
}

const VALIDATED_APPS: &str = r#"
from wsgiref.validate import validator

def _plain(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'plain']

def _writer(environ, start_response):
    write = start_response('200 OK', [('Content-Type', 'text/plain')])
    write(b'written ')
    return [b'and returned']

def _echo(environ, start_response):
    length = int(environ.get('CONTENT_LENGTH') or 0)
    data = environ['wsgi.input'].read(length)
    environ['wsgi.errors'].write('echoing %d bytes\n' % len(data))
    environ['wsgi.errors'].flush()
    start_response('200 OK', [('Content-Type', 'application/octet-stream'), ('Content-Length', str(len(data)))])
    return [data]

class _Closing:
    def __init__(self, start_response):
        start_response('200 OK', [('Content-Type', 'text/plain')])
    def __iter__(self):
        yield b'gen'
        yield b'erated'
    def close(self):
        pass

def _generator(environ, start_response):
    return _Closing(start_response)

def _lines(environ, start_response):
    inp = environ['wsgi.input']
    first = inp.readline()
    rest = inp.readlines()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'%d|%s|%d' % (len(first), first.strip(), len(rest))]

plain = validator(_plain)
writer = validator(_writer)
echo = validator(_echo)
generator = validator(_generator)
lines = validator(_lines)
"#;

#[test]
fn applications_pass_wsgiref_validator() {
    let scripts = Scripts::new("validator");
    let path = script(&scripts, "apps.wsgi", VALIDATED_APPS);
    let cases: &[(&str, &str, &[u8], &str)] = &[
        ("plain", "GET", b"", "plain"),
        ("writer", "GET", b"", "written and returned"),
        ("echo", "POST", b"some body bytes", "some body bytes"),
        ("generator", "GET", b"", "generated"),
        ("lines", "POST", b"first line\nsecond\nthird\n", "11|first line|2"),
    ];
    for (callable, method, body, expected) in cases {
        let mut t = target(&path, "validator");
        t.callable = callable.to_string();
        let mut env = environ(method, "/x");
        if !body.is_empty() {
            env.set_str("CONTENT_LENGTH", body.len().to_string());
            env.set_str("CONTENT_TYPE", "text/plain");
        }
        let out = run_with(&t, env, body, None);
        assert_eq!(out.outcome, RunOutcome::Completed, "{callable}: {}", out.log.text());
        assert_eq!(out.response.text(), *expected, "{callable}: {}", out.log.text());
        assert!(!out.log.text().contains("Warning"), "{callable}: validator warned: {}", out.log.text());
    }
}

#[test]
fn wsgi_errors_go_to_the_error_log_line_by_line() {
    let scripts = Scripts::new("errors");
    let path = script(
        &scripts,
        "errors.wsgi",
        "def application(environ, start_response):\n    e = environ['wsgi.errors']\n    e.write('one\\ntw')\n    e.writelines(['o\\n', 'three'])\n    start_response('200 OK', [])\n    return []\n",
    );
    let out = run(&target(&path, ""), "GET", "/", b"");
    assert_eq!(out.outcome, RunOutcome::Completed);
    let lines = out.log.lines.lock().unwrap().clone();
    assert_eq!(
        lines,
        vec![
            (LogLevel::Error, "one".to_string()),
            (LogLevel::Error, "two".to_string()),
            (LogLevel::Error, "three".to_string())
        ]
    );
}

#[test]
fn an_exception_gives_500_with_the_traceback_logged() {
    let scripts = Scripts::new("raises");
    let path = script(
        &scripts,
        "raises.wsgi",
        "def application(environ, start_response):\n    raise KeyError('boom-marker')\n",
    );
    let out = run(&target(&path, ""), "GET", "/", b"");
    assert_eq!(out.outcome, RunOutcome::Failed);
    assert_eq!(out.response.status, 500);
    let log = out.log.text();
    assert!(log.contains("Exception occurred processing WSGI script"), "{log}");
    assert!(log.contains("Traceback (most recent call last)"), "{log}");
    assert!(log.contains("KeyError: 'boom-marker'"), "{log}");
}

#[test]
fn a_failing_import_is_retried_on_the_next_request() {
    let scripts = Scripts::new("syntax");
    let path = script(&scripts, "broken.wsgi", "def application(environ, start_response)\n    pass\n");
    let t = target(&path, "retry");
    let out = run(&t, "GET", "/", b"");
    assert_eq!(out.response.status, 500);
    assert!(out.log.text().contains("SyntaxError"), "{}", out.log.text());

    let path2 = script(&scripts, "raising.wsgi", "raise RuntimeError('at import')\n");
    let out = run(&target(&path2, "retry"), "GET", "/", b"");
    assert_eq!(out.response.status, 500);
    assert!(out.log.text().contains("RuntimeError: at import"), "{}", out.log.text());

    // Fixed without touching the mtime rule: the failed import was not cached.
    std::fs::write(
        &path2,
        "def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'fixed']\n",
    )
    .unwrap();
    let mut t2 = target(&path2, "retry");
    t2.reload_on_change = false;
    let out = run(&t2, "GET", "/", b"");
    assert_eq!(out.response.text(), "fixed", "{}", out.log.text());
}

#[test]
fn a_missing_callable_is_a_clear_500() {
    let scripts = Scripts::new("nocallable");
    let path = script(&scripts, "app.wsgi", "def app(environ, start_response):\n    pass\n");
    let out = run(&target(&path, ""), "GET", "/", b"");
    assert_eq!(out.response.status, 500);
    assert!(
        out.log.text().contains(&format!(
            "Target WSGI script '{}' does not contain WSGI application 'application'",
            path.display()
        )),
        "{}",
        out.log.text()
    );
}

#[test]
fn script_is_reloaded_when_its_mtime_changes() {
    let scripts = Scripts::new("reload");
    let source = |n: u32| {
        format!("def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'version {n}']\n")
    };
    let path = script(&scripts, "app.wsgi", &source(1));
    let t = target(&path, "reloading");
    assert_eq!(run(&t, "GET", "/", b"").response.text(), "version 1");
    std::fs::write(&path, source(2)).unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options().write(true).open(&path).unwrap().set_modified(later).unwrap();
    assert_eq!(run(&t, "GET", "/", b"").response.text(), "version 2");
    // With reloading off, the loaded module stays.
    std::fs::write(&path, source(3)).unwrap();
    let later = later + std::time::Duration::from_secs(5);
    std::fs::File::options().write(true).open(&path).unwrap().set_modified(later).unwrap();
    let mut fixed = t.clone();
    fixed.reload_on_change = false;
    assert_eq!(run(&fixed, "GET", "/", b"").response.text(), "version 2");
}

const COUNTER: &str = "import os, sys\ncount = 0\ndef application(environ, start_response):\n    global count\n    count += 1\n    os.environ['LAST_GROUP'] = environ['GROUP']\n    start_response('200 OK', [])\n    return [('%d %s %s' % (count, id(sys), os.environ.get('LAST_GROUP'))).encode()]\n";

#[test]
fn groups_are_isolated_and_global_is_shared() {
    let scripts = Scripts::new("groups");
    let path = script(&scripts, "counter.wsgi", COUNTER);
    let hit = |group: &str| {
        let mut env = environ("GET", "/");
        env.set_str("GROUP", group.to_string());
        let out = run_with(&target(&path, group), env, b"", None);
        assert_eq!(out.outcome, RunOutcome::Completed, "{}", out.log.text());
        let text = out.response.text();
        let parts: Vec<String> = text.split(' ').map(String::from).collect();
        (parts[0].parse::<u32>().unwrap(), parts[1].clone(), parts[2].clone())
    };
    let a1 = hit("isolated-a");
    let b1 = hit("isolated-b");
    let a2 = hit("isolated-a");
    let b2 = hit("isolated-b");
    let b3 = hit("isolated-b");
    assert_eq!((a1.0, a2.0), (1, 2), "group a counts on its own");
    assert_eq!((b1.0, b2.0, b3.0), (1, 2, 3), "group b counts on its own");
    assert_ne!(a1.1, b1.1, "each group has its own sys module");
    assert_eq!(a2.2, "isolated-a", "os.environ of a is not changed by b");
    // The main interpreter: two scripts share its modules.
    let shared = script(
        &scripts,
        "shared.wsgi",
        "import sys\ndef application(environ, start_response):\n    sys.shared_marker = getattr(sys, 'shared_marker', 0) + 1\n    start_response('200 OK', [])\n    return [str(sys.shared_marker).encode()]\n",
    );
    let other = script(
        &scripts,
        "other.wsgi",
        "import sys\ndef application(environ, start_response):\n    start_response('200 OK', [])\n    return [str(getattr(sys, 'shared_marker', 0)).encode()]\n",
    );
    assert_eq!(run(&target(&shared, ""), "GET", "/", b"").response.text(), "1");
    assert_eq!(run(&target(&other, ""), "GET", "/", b"").response.text(), "1", "%{{GLOBAL}} shares state");
    assert_eq!(run(&target(&other, "isolated-a"), "GET", "/", b"").response.text(), "0", "a sub-interpreter does not");
}

#[test]
fn close_is_called_on_success_error_and_disconnect() {
    let scripts = Scripts::new("close");
    let marker = scripts.dir.join("closed.txt");
    let source = format!(
        r#"
class Body:
    def __init__(self, environ, fail):
        self.fail = fail
    def __iter__(self):
        yield b'x' * 1000
        if self.fail:
            raise ValueError('mid-stream')
        yield b'y' * 1000
    def close(self):
        with open({marker:?}, 'a') as f:
            f.write('closed\n')

def application(environ, start_response):
    start_response('200 OK', [])
    return Body(environ, environ['PATH_INFO'] == '/fail')
"#,
        marker = marker.display().to_string()
    );
    let path = script(&scripts, "close.wsgi", &source);
    let t = target(&path, "");
    let closes = || std::fs::read_to_string(&marker).unwrap_or_default().lines().count();

    let out = run(&t, "GET", "/ok", b"");
    assert_eq!(out.outcome, RunOutcome::Completed);
    assert_eq!(closes(), 1);

    let out = run(&t, "GET", "/fail", b"");
    assert_eq!(out.outcome, RunOutcome::Failed);
    assert!(out.log.text().contains("ValueError: mid-stream"));
    assert_eq!(out.response.body.len(), 1000, "the head was out: the response is cut short");
    assert_eq!(closes(), 2);

    let out = run_with(&t, environ("GET", "/ok"), b"", Some(1500));
    assert_eq!(out.outcome, RunOutcome::ClientGone);
    assert_eq!(closes(), 3);
}

#[test]
fn start_response_rules() {
    let scripts = Scripts::new("start");
    let path = script(
        &scripts,
        "start.wsgi",
        r#"
import sys
def twice(environ, start_response):
    start_response('200 OK', [])
    start_response('500 Again', [])
    return []

def replaced(environ, start_response):
    start_response('200 OK', [('X-First', '1')])
    try:
        raise RuntimeError('late failure')
    except RuntimeError:
        start_response('503 Service Unavailable', [('X-Second', '2')], sys.exc_info())
    return [b'replaced']

def reraised(environ, start_response):
    write = start_response('200 OK', [])
    write(b'partial')
    try:
        raise RuntimeError('after headers')
    except RuntimeError:
        start_response('500 Error', [], sys.exc_info())
    return [b'never']

def bad_header(environ, start_response):
    start_response('200 OK', [('X-Evil', 'a\r\nSet-Cookie: x=1')])
    return [b'never']

def bad_status(environ, start_response):
    start_response('200', [])
    return [b'never']

def not_bytes(environ, start_response):
    start_response('200 OK', [])
    return ['text']

def no_start(environ, start_response):
    return [b'body']

def truncated(environ, start_response):
    start_response('200 OK', [('Content-Length', '4')])
    return [b'abcdefgh']

def short(environ, start_response):
    start_response('200 OK', [('Content-Length', '10')])
    return [b'abc']
"#,
    );
    let call = |callable: &str, method: &str| {
        let mut t = target(&path, "");
        t.callable = callable.into();
        run_with(&t, environ(method, "/"), b"", None)
    };
    let out = call("twice", "GET");
    assert_eq!(out.response.status, 500);
    assert!(out.log.text().contains("start_response() was already called"), "{}", out.log.text());

    let out = call("replaced", "GET");
    assert_eq!(out.response.status, 503);
    assert_eq!(out.response.header("X-Second"), Some("2"));
    assert_eq!(out.response.header("X-First"), None);
    assert_eq!(out.response.text(), "replaced");

    let out = call("reraised", "GET");
    assert_eq!(out.outcome, RunOutcome::Failed);
    assert_eq!((out.response.status, out.response.text().as_str()), (200, "partial"));
    assert!(out.log.text().contains("RuntimeError: after headers"), "{}", out.log.text());

    let out = call("bad_header", "GET");
    assert_eq!(out.response.status, 500);
    assert!(out.response.headers.iter().all(|(n, _)| n != "X-Evil"), "never emitted");
    assert!(out.log.text().contains("control character"), "{}", out.log.text());

    let out = call("bad_status", "GET");
    assert_eq!(out.response.status, 500);
    assert!(out.log.text().contains("invalid status line"), "{}", out.log.text());

    let out = call("not_bytes", "GET");
    assert_eq!(out.response.status, 500);
    assert!(out.log.text().contains("value of type str found"), "{}", out.log.text());

    let out = call("no_start", "GET");
    assert_eq!(out.response.status, 500);

    let out = call("truncated", "GET");
    assert_eq!(out.response.text(), "abcd");

    let out = call("short", "GET");
    assert_eq!(out.outcome, RunOutcome::Completed);
    assert!(out.log.text().contains("truncated: 3 of 10 bytes"), "{}", out.log.text());

    let out = call("truncated", "HEAD");
    assert_eq!(out.response.header("Content-Length"), Some("4"));
    assert!(out.response.body.is_empty(), "HEAD bodies are discarded");
}

#[test]
fn file_wrapper_takes_the_zero_copy_path_from_the_current_offset() {
    let scripts = Scripts::new("filewrapper");
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let file = scripts.dir.join("data.bin");
    std::fs::write(&file, &data).unwrap();
    let path = script(
        &scripts,
        "files.wsgi",
        &format!(
            r#"
import io
def whole(environ, start_response):
    f = open({file:?}, 'rb')
    f.seek(10)
    start_response('200 OK', [('Content-Type', 'application/octet-stream')])
    return environ['wsgi.file_wrapper'](f, 4096)

def bounded(environ, start_response):
    f = open({file:?}, 'rb')
    start_response('200 OK', [('Content-Length', '777')])
    return environ['wsgi.file_wrapper'](f)

def in_memory(environ, start_response):
    start_response('200 OK', [])
    return environ['wsgi.file_wrapper'](io.BytesIO(b'0123456789' * 1000), 64)
"#,
            file = file.display().to_string()
        ),
    );
    let call = |callable: &str| {
        let mut t = target(&path, "files");
        t.callable = callable.into();
        run_with(&t, environ("GET", "/"), b"", None)
    };
    let out = call("whole");
    assert_eq!(out.outcome, RunOutcome::Completed, "{}", out.log.text());
    assert_eq!(out.response.files_sent, 1);
    assert_eq!(out.response.body, data[10..]);

    let out = call("bounded");
    assert_eq!(out.response.files_sent, 1);
    assert_eq!(out.response.body, data[..777]);

    let out = call("in_memory");
    assert_eq!(out.response.files_sent, 0, "no descriptor: iterated");
    assert_eq!(out.response.body.len(), 10_000);
}

#[test]
fn input_is_streamed_in_reads_lines_and_iteration() {
    let scripts = Scripts::new("input");
    let path = script(
        &scripts,
        "input.wsgi",
        r#"
def application(environ, start_response):
    inp = environ['wsgi.input']
    parts = [inp.read(3), inp.readline(), inp.readline(2), b'|'.join(inp.readlines(1)), b'|'.join(list(inp)), inp.read(), inp.read(10)]
    start_response('200 OK', [])
    return [repr(parts).encode()]
"#,
    );
    let out = run(&target(&path, ""), "POST", "/", b"abcdef\nxyz\nline3\nline4\nline5\n");
    assert_eq!(
        out.response.text(),
        "[b'abc', b'def\\n', b'xy', b'z\\n', b'line3\\n|line4\\n|line5\\n', b'', b'']",
        "{}",
        out.log.text()
    );
}

/// A body delivered in pieces of at most 1000 bytes, then (optionally) an
/// error instead of its end.
struct Trickle {
    data: Vec<u8>,
    pos: usize,
    fail_at_end: bool,
}

impl std::io::Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.data.len() && self.fail_at_end {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "the client sent a broken chunk"));
        }
        let n = buf.len().min(1000).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn large_sized_reads_fill_whole_and_stop_short_only_at_the_end() {
    let scripts = Scripts::new("sized");
    let path = script(
        &scripts,
        "sized.wsgi",
        r#"
def application(environ, start_response):
    inp = environ['wsgi.input']
    first = inp.read(5)
    big = inp.read(70000)
    rest = inp.read(200000)
    end = inp.read(100000)
    start_response('200 OK', [])
    whole = first + big + rest
    intact = whole == bytes(i % 251 for i in range(150000))
    return [('%d %d %d %r %s' % (len(first), len(big), len(rest), end, intact)).encode()]
"#,
    );
    let data: Vec<u8> = (0..150_000u32).map(|i| (i % 251) as u8).collect();
    let mut sink = Recorded::default();
    let log = Log::default();
    let mut env = environ("POST", "/");
    env.set_str("CONTENT_LENGTH", data.len().to_string());
    let outcome = {
        let mut writer = wsgi_core::ResponseWriter::new(&mut sink, false);
        let mut body = Trickle { data: data.clone(), pos: 0, fail_at_end: false };
        wsgi_core::WsgiRunner::run(runner(), &target(&path, ""), env, &mut body, &mut writer, &log)
    };
    assert_eq!(outcome, RunOutcome::Completed, "{}", log.text());
    // Reads of 1000-byte pieces are gathered into whole reads; the last one
    // is short because the body ends.
    assert_eq!(sink.text(), "5 70000 79995 b'' True", "{}", log.text());

    let broken = script(
        &scripts,
        "broken.wsgi",
        r#"
def application(environ, start_response):
    try:
        environ['wsgi.input'].read(100000)
    except OSError as e:
        start_response('200 OK', [])
        return [('caught %s' % type(e).__name__).encode()]
    start_response('200 OK', [])
    return [b'not caught']
"#,
    );
    let mut sink = Recorded::default();
    let outcome = {
        let mut writer = wsgi_core::ResponseWriter::new(&mut sink, false);
        let mut env = environ("POST", "/");
        env.set_str("CONTENT_LENGTH", "100000");
        let mut body = Trickle { data: vec![b'x'; 5000], pos: 0, fail_at_end: true };
        wsgi_core::WsgiRunner::run(runner(), &target(&broken, ""), env, &mut body, &mut writer, &log)
    };
    assert_eq!(outcome, RunOutcome::Completed, "{}", log.text());
    assert!(sink.text().starts_with("caught "), "a broken body is an exception: {}", sink.text());
}

#[test]
fn environ_values_have_python_types() {
    let scripts = Scripts::new("types");
    let path = script(
        &scripts,
        "types.wsgi",
        r#"
def application(environ, start_response):
    start_response('200 OK', [])
    keys = ['wsgi.version', 'wsgi.multithread', 'mod_wsgi.thread_id', 'HTTP_X_LATIN']
    return [repr([(k, environ[k]) for k in keys] + [type(environ).__name__]).encode('utf-8')]
"#,
    );
    let mut env = environ("GET", "/");
    env.set("mod_wsgi.thread_id", EnvValue::Int(7));
    env.set_str("HTTP_X_LATIN", "caf\u{e9}");
    let out = run_with(&target(&path, ""), env, b"", None);
    assert_eq!(
        out.response.text(),
        "[('wsgi.version', (1, 0)), ('wsgi.multithread', True), ('mod_wsgi.thread_id', 7), ('HTTP_X_LATIN', 'café')] + ['dict']"
            .replace("] + [", ", "),
        "{}",
        out.log.text()
    );
}

#[test]
fn signal_registration_is_ignored_and_logged() {
    let scripts = Scripts::new("signal");
    let path = script(
        &scripts,
        "signal.wsgi",
        "import signal\ndef application(environ, start_response):\n    signal.signal(signal.SIGTERM, lambda *a: None)\n    start_response('200 OK', [])\n    return [str(signal.getsignal(signal.SIGTERM)).encode()]\n",
    );
    let out = run(&target(&path, "signals"), "GET", "/", b"");
    assert_eq!(out.response.status, 200, "{}", out.log.text());
    assert!(!out.response.text().contains("lambda"), "the handler was not installed: {}", out.response.text());
}

#[test]
fn import_errors_in_sub_interpreters_suggest_global() {
    let scripts = Scripts::new("importhint");
    let path = script(&scripts, "needs.wsgi", "import module_that_does_not_exist_anywhere\n");
    let out = run(&target(&path, "hinted"), "GET", "/", b"");
    assert_eq!(out.response.status, 500);
    assert!(out.log.text().contains("try WSGIApplicationGroup %{GLOBAL}"), "{}", out.log.text());
    let out = run(&target(&path, ""), "GET", "/", b"");
    assert!(!out.log.text().contains("try WSGIApplicationGroup"), "no hint in the main interpreter");
}

#[test]
fn objects_kept_after_the_request_refuse_to_work() {
    let scripts = Scripts::new("kept");
    let path = script(
        &scripts,
        "kept.wsgi",
        r#"
kept = {}
def application(environ, start_response):
    if 'input' in kept:
        try:
            kept['input'].read()
            result = b'read worked'
        except RuntimeError as e:
            result = str(e).encode()
        start_response('200 OK', [])
        return [result]
    kept['input'] = environ['wsgi.input']
    start_response('200 OK', [])
    return [b'kept']
"#,
    );
    let t = target(&path, "kept");
    assert_eq!(run(&t, "GET", "/", b"").response.text(), "kept");
    assert_eq!(run(&t, "GET", "/", b"").response.text(), "the request this object belongs to has finished");
}

#[test]
fn import_scripts_preload_into_their_group() {
    let scripts = Scripts::new("preload");
    let marker = scripts.dir.join("imports.txt");
    let path = script(
        &scripts,
        "preloaded.wsgi",
        &format!(
            "with open({:?}, 'a') as f:\n    f.write('imported\\n')\ndef application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'served']\n",
            marker.display().to_string()
        ),
    );
    let log = Log::default();
    assert!(runner().preload(&path, "preload-group", &log), "{}", log.text());
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "imported\n", "imported before any request");
    assert_eq!(run(&target(&path, "preload-group"), "GET", "/", b"").response.text(), "served");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "imported\n", "not imported a second time");

    let broken = script(&scripts, "broken.wsgi", "raise ImportError('cannot preload')\n");
    let log = Log::default();
    assert!(!runner().preload(&broken, "preload-group", &log));
    assert!(log.text().contains("ImportError: cannot preload"), "{}", log.text());
}
