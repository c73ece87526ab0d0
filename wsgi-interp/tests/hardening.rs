//! Hostile or unusual applications: each of these once crashed, hung or
//! misbehaved, and must now fail cleanly (or work).

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::*;
use wsgi_core::RunOutcome;

fn app(scripts: &Scripts, source: &str) -> std::path::PathBuf {
    scripts.write("app.wsgi", source)
}

#[test]
fn a_bogus_exc_info_is_a_type_error_not_a_crash() {
    let scripts = Scripts::new("excinfo");
    let path = app(
        &scripts,
        r#"
def application(environ, start_response):
    write = start_response('200 OK', [])
    write(b'x')
    for bogus in [(1, 2, 3), ('not', 'an', 'exception'), (ValueError, KeyError('k'), None)]:
        try:
            start_response('500 E', [], bogus)
        except TypeError:
            pass
    return [b'y']
"#,
    );
    let out = run(&target(&path, ""), "GET", "/", b"");
    assert_eq!(out.outcome, RunOutcome::Completed, "{}", out.log.text());
    assert_eq!(out.response.text(), "xy");
}

#[test]
fn request_objects_refuse_other_threads() {
    let scripts = Scripts::new("threads");
    let path = app(
        &scripts,
        r#"
import threading
def application(environ, start_response):
    errors = []
    def read():
        try:
            environ['wsgi.input'].read()
        except RuntimeError as e:
            errors.append(str(e))
    t = threading.Thread(target=read)
    t.start()
    t.join()
    start_response('200 OK', [])
    return [errors[0].encode()]
"#,
    );
    let out = run(&target(&path, ""), "POST", "/", b"body");
    assert_eq!(out.response.text(), "this request object can only be used from the thread that runs the request");
}

const CTYPES_APP: &str = r#"
import ctypes, sys
def application(environ, start_response):
    seen = []
    CMP = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
    def compare(a, b):
        import sys as callback_sys
        seen.append(callback_sys is sys)
        return 0
    callback = CMP(compare)
    lib = ctypes.PyDLL(None) if environ['PATH_INFO'] == '/gil-held' else ctypes.CDLL(None)
    numbers = (ctypes.c_int * 2)(2, 1)
    lib.qsort(numbers, 2, ctypes.sizeof(ctypes.c_int), callback)
    start_response('200 OK', [])
    return [repr(seen).encode()]
"#;

/// ctypes callbacks use the PyGILState API: on a thread that served a
/// sub-interpreter first, they must still find the main interpreter.
#[test]
fn gilstate_callbacks_run_in_the_main_interpreter() {
    let scripts = Scripts::new("gilstate");
    let path = app(&scripts, CTYPES_APP);
    let hello = scripts.write("hello.wsgi", "def application(e, sr):\n    sr('200 OK', [])\n    return [b'hi']\n");
    for url in ["/released", "/gil-held"] {
        let (tx, rx) = mpsc::channel();
        let (path, hello) = (path.clone(), hello.clone());
        std::thread::spawn(move || {
            run(&target(&hello, "gilstate-alpha"), "GET", "/", b"");
            let out = run(&target(&path, ""), "GET", url, b"");
            let _ = tx.send((out.response.text(), out.log.text()));
        });
        let (text, log) = rx.recv_timeout(Duration::from_secs(20)).expect("no deadlock");
        assert_eq!(text, "[True]", "{url}: the callback ran, in the main interpreter: {log}");
    }
}

struct PanickingBody;

impl std::io::Read for PanickingBody {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        panic!("a front end's body reader panicked");
    }
}

#[test]
fn a_panicking_body_reader_fails_the_request_not_the_process() {
    let scripts = Scripts::new("panic");
    let path = app(
        &scripts,
        "def application(environ, start_response):\n    environ['wsgi.input'].read()\n    start_response('200 OK', [])\n    return [b'never']\n",
    );
    let mut sink = Recorded::default();
    let log = Log::default();
    let outcome = {
        let mut writer = wsgi_core::ResponseWriter::new(&mut sink, false);
        let mut env = environ("POST", "/");
        env.set_str("CONTENT_LENGTH", "10");
        wsgi_core::WsgiRunner::run(runner(), &target(&path, ""), env, &mut PanickingBody, &mut writer, &log)
    };
    assert_eq!(outcome, RunOutcome::Failed);
    assert_eq!(sink.status, 500);
    assert!(log.text().contains("SystemError"), "{}", log.text());
}

#[test]
fn helper_types_cannot_be_patched_or_misused() {
    let scripts = Scripts::new("types");
    let path = app(
        &scripts,
        r#"
def application(environ, start_response):
    results = []
    FW = environ['wsgi.file_wrapper']
    try:
        FW.__new__ = staticmethod(lambda cls, *a: object.__new__(cls))
        results.append('patched')
    except TypeError:
        results.append('immutable')
    for obj in (environ['wsgi.input'], environ['wsgi.errors'], start_response):
        try:
            type(obj)()
            results.append('made')
        except TypeError:
            results.append('refused')
    class NoLength:
        def read(self, n):
            return None
    try:
        list(FW(NoLength()))
        results.append('iterated')
    except TypeError:
        results.append('type error')
    start_response('200 OK', [])
    return [' '.join(results).encode()]
"#,
    );
    let out = run(&target(&path, ""), "GET", "/", b"");
    assert_eq!(out.response.text(), "immutable refused refused refused type error", "{}", out.log.text());
}

#[test]
fn file_wrapper_starts_at_the_file_objects_position() {
    let scripts = Scripts::new("tell");
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let file = scripts.dir.join("data.bin");
    std::fs::write(&file, &data).unwrap();
    let path = app(
        &scripts,
        &format!(
            "def application(environ, start_response):\n    f = open({:?}, 'rb')\n    f.read(10)\n    start_response('200 OK', [])\n    return environ['wsgi.file_wrapper'](f)\n",
            file.display().to_string()
        ),
    );
    let out = run(&target(&path, ""), "GET", "/", b"");
    assert_eq!(out.response.files_sent, 1);
    assert_eq!(out.response.body.len(), data.len() - 10);
    assert!(out.response.body == data[10..], "sent from the wrong offset");
}

#[test]
fn a_caught_write_error_still_counts_as_client_gone() {
    let scripts = Scripts::new("gone");
    let path = app(
        &scripts,
        "def application(environ, start_response):\n    write = start_response('200 OK', [])\n    try:\n        write(b'x' * 5000)\n    except OSError:\n        pass\n    return []\n",
    );
    let out = run_with(&target(&path, ""), environ("GET", "/"), b"", Some(100));
    assert_eq!(out.outcome, RunOutcome::ClientGone);
}
