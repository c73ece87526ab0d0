//! The cost of one WSGI call driven from Rust (environ dict built from the
//! Rust environ, application called, body collected, `close()` called)
//! against the same loop written in pure Python in the same process: once
//! with the environ values as ready-made `str` objects (the cheapest a
//! Python loop can have them) and once decoding them from bytes, as a
//! pure-Python server does. Script reloading is off: its per-request
//! `stat()` is file-system cost, not WSGI-call cost (reported apart).

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use wsgi_core::testing::{CountingSink, StderrLog};
use wsgi_core::{AppTarget, EnvValue, Environ, ResponseWriter, WsgiRunner};
use wsgi_interp::{EmbeddedRunner, PythonConfig, PythonRuntime};

const APP: &str = "def application(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '12')])\n    return [b'Hello world!']\n";

/// The environ mod_wsgi gives a plain GET (the keys of the reference).
fn environ() -> Environ {
    let mut env = Environ::default();
    for (k, v) in [
        ("CONTEXT_DOCUMENT_ROOT", "/var/www/html"),
        ("CONTEXT_PREFIX", ""),
        ("DOCUMENT_ROOT", "/var/www/html"),
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("HTTP_ACCEPT", "*/*"),
        ("HTTP_HOST", "127.0.0.1:8000"),
        ("HTTP_USER_AGENT", "wrk"),
        ("PATH_INFO", "/hello"),
        ("QUERY_STRING", ""),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("REMOTE_PORT", "50312"),
        ("REQUEST_METHOD", "GET"),
        ("REQUEST_SCHEME", "http"),
        ("REQUEST_URI", "/hello"),
        ("SCRIPT_FILENAME", "/srv/app/hello.wsgi"),
        ("SCRIPT_NAME", ""),
        ("SERVER_ADDR", "127.0.0.1"),
        ("SERVER_ADMIN", "[no address given]"),
        ("SERVER_NAME", "127.0.0.1"),
        ("SERVER_PORT", "8000"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("SERVER_SIGNATURE", ""),
        ("SERVER_SOFTWARE", "mod_wsgi-rs"),
        ("mod_wsgi.application_group", ""),
        ("mod_wsgi.callable_object", "application"),
        ("mod_wsgi.process_group", ""),
        ("mod_wsgi.request_handler", "wsgi-script"),
        ("mod_wsgi.request_id", "AbCdEfGh12345678"),
        ("mod_wsgi.script_name", ""),
        ("mod_wsgi.path_info", "/hello"),
        ("wsgi.url_scheme", "http"),
    ] {
        env.set_str(k, v);
    }
    env.set("wsgi.version", EnvValue::Tuple(vec![1, 0]));
    env.set("wsgi.multithread", EnvValue::Bool(true));
    env.set("wsgi.multiprocess", EnvValue::Bool(false));
    env.set("wsgi.run_once", EnvValue::Bool(false));
    env.set("wsgi.input_terminated", EnvValue::Bool(true));
    env.set("mod_wsgi.thread_id", EnvValue::Int(1));
    env
}

/// The pure-Python loop: the same keys and values (prebuilt str objects,
/// the cheapest a Python server could have them), the app called, the body
/// joined, close() called if present.
fn python_loop(env: &Environ) -> String {
    let mut items = String::new();
    for (k, v) in &env.entries {
        let v = match v {
            EnvValue::Str(s) => format!("{s:?}"),
            EnvValue::Bool(true) => "True".into(),
            EnvValue::Bool(false) => "False".into(),
            EnvValue::Int(n) => n.to_string(),
            EnvValue::Tuple(t) => format!("({},)", t.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")),
        };
        items.push_str(&format!("    ({k:?}, {v}),\n"));
    }
    format!(
        r#"
import io, sys, time
{APP}
_items = [
{items}]
_keys = tuple(k for k, v in _items)
_values = tuple(v for k, v in _items)

# As a pure-Python server builds it: values decoded from the request bytes.
_raw = tuple((k, v.encode('latin-1') if isinstance(v, str) else v) for k, v in _items)

def _prebuilt(keys=_keys, values=_values):
    return dict(zip(keys, values))

def _decoded(raw=_raw):
    return {{k: (v.decode('latin-1') if type(v) is bytes else v) for k, v in raw}}

def _loop(n, make_environ, application=application):
    inp = io.BytesIO(b'')
    err = sys.stderr
    wrapper = object
    t0 = time.perf_counter()
    for _ in range(n):
        environ = make_environ()
        environ['wsgi.input'] = inp
        environ['wsgi.errors'] = err
        environ['wsgi.file_wrapper'] = wrapper
        response = []
        def start_response(status, headers, exc_info=None):
            response[:] = [status, headers]
            return None
        result = application(environ, start_response)
        try:
            body = b''.join(result)
        finally:
            close = getattr(result, 'close', None)
            if close is not None:
                close()
    return time.perf_counter() - t0
"#
    )
}

fn bench(c: &mut Criterion) {
    let runtime = PythonRuntime::initialize(PythonConfig { restrict_signal: true, ..PythonConfig::default() })
        .expect("Python initialises");
    let runner = EmbeddedRunner::new(runtime.clone());
    let dir = std::env::temp_dir().join(format!("wsgi-interp-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("hello.wsgi");
    std::fs::write(&script, APP).unwrap();
    let target = AppTarget {
        script: script.clone(),
        callable: "application".into(),
        application_group: "".into(),
        reload_on_change: std::env::var_os("WSGI_BENCH_RELOAD").is_some(),
        script_mtime_us: None,
    };
    let env = environ();
    let loop_source = python_loop(&env);

    let mut group = c.benchmark_group("wsgi_call_hello_world");
    group.measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    group.bench_function("rust_driven", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let mut sink = CountingSink::default();
                let mut writer = ResponseWriter::new(&mut sink, false);
                let mut body: &[u8] = b"";
                runner.run(&target, env.clone(), &mut body, &mut writer, &StderrLog);
                assert_eq!(sink.body_bytes, 12);
            }
            start.elapsed()
        })
    });
    group.bench_function("pure_python", |b| {
        b.iter_custom(|iters| {
            let source = format!("{loop_source}\nresult = _loop({iters}, _prebuilt)\n");
            let seconds: f64 = runtime.evaluate("", &source).expect("loop runs").parse().unwrap();
            Duration::from_secs_f64(seconds)
        })
    });
    group.bench_function("pure_python_decoding", |b| {
        b.iter_custom(|iters| {
            let source = format!("{loop_source}\nresult = _loop({iters}, _decoded)\n");
            let seconds: f64 = runtime.evaluate("", &source).expect("loop runs").parse().unwrap();
            Duration::from_secs_f64(seconds)
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
