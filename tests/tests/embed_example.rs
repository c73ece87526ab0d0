//! wsgi-interp's example `call_app`, which embeds wsgi-interp and wsgi-core
//! to call a WSGI application in-process from Rust (no HTTP), works: run
//! against scripts in a temporary directory, it prints what the application
//! computed from the environ it was given.

use std::process::{Command, Output};

use tests::{example_binary, TempDir};

/// Answers with values Python computes from the environ: the query's
/// numbers summed, the path reversed, and the `mod_wsgi` keys the pipeline
/// adds, so that only a real call can print them.
const APP: &str = r#"
import sys
from urllib.parse import parse_qsl

def application(environ, start_response):
    numbers = [int(v) for k, v in parse_qsl(environ['QUERY_STRING'])]
    print('logged to wsgi.errors', file=environ['wsgi.errors'])
    body = '\n'.join([
        'sum=%d' % sum(numbers),
        'reversed=%s' % environ['PATH_INFO'][::-1],
        'method=%s' % environ['REQUEST_METHOD'],
        'script_name=%r' % environ['SCRIPT_NAME'],
        'callable=%s' % environ['mod_wsgi.callable_object'],
        'input=%r' % environ['wsgi.input'].read(),
        'python=%d.%d' % sys.version_info[:2],
    ]).encode('ascii') + b'\n'
    start_response('201 Created', [('Content-Type', 'text/plain'), ('X-Items', str(len(numbers)))])
    return [body]
"#;

/// Runs the example with `args`.
fn call_app(args: &[&std::ffi::OsStr]) -> Output {
    let binary = example_binary("wsgi-interp", "call_app");
    let output = Command::new(&binary).args(args).output().expect("the example runs");
    eprintln!("stderr of call_app:\n{}", String::from_utf8_lossy(&output.stderr));
    output
}

#[test]
fn calls_an_application_in_process() {
    let dir = TempDir::new("embed-example");
    let script = dir.write("app.wsgi", APP);
    let output = call_app(&[script.as_os_str(), "/some/path?a=20&b=22&c=3".as_ref()]);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    let (head, body) = stdout.split_once("\n\n").expect("a head, an empty line, a body");
    let mut lines = head.lines();
    assert_eq!(lines.next(), Some("201 Created"));
    let headers: Vec<&str> = lines.collect();
    assert!(headers.contains(&"Content-Type: text/plain"), "{headers:?}");
    assert!(headers.contains(&"X-Items: 3"), "{headers:?}");
    assert_eq!(
        body,
        "sum=45\nreversed=htap/emos/\nmethod=GET\nscript_name=''\ncallable=application\ninput=b''\npython=3.11\n"
            .replace("3.11", &python_version()),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("logged to wsgi.errors"), "wsgi.errors reaches the error log: {stderr}");
}

#[test]
fn runs_its_default_application() {
    let output = call_app(&[]);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    assert!(stdout.starts_with("200 OK\n"), "{stdout}");
    assert!(stdout.contains("\npath: /hello\nquery: x=1\nsum: 1\n"), "{stdout}");
}

#[test]
fn an_application_that_fails_gets_a_500() {
    let dir = TempDir::new("embed-example-fail");
    let script = dir.write("app.wsgi", "def application(environ, start_response):\n    raise ValueError('no')\n");
    let output = call_app(&[script.as_os_str()]);
    assert!(!output.status.success(), "a failed request fails the example");
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    assert!(stdout.starts_with("500 Internal Server Error\n"), "{stdout}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("ValueError: no"), "the traceback is logged");
}

/// The `X.Y` of the Python the workspace embeds (`PYO3_PYTHON`: Debian's
/// `/usr/bin/python3`, as `tests::built_python_at_least` asks it).
fn python_version() -> String {
    let output = Command::new("/usr/bin/python3")
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output()
        .expect("python runs");
    String::from_utf8(output.stdout).expect("UTF-8").trim().to_string()
}
