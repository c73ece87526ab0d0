//! Our mod_wsgi.so in real Apache httpd 2.4: embedded mode, errors, body
//! limits, application groups, MPMs and restarts.

use std::time::Duration;

use tests::apache::{Apache, ApacheOptions, Mpm};
use tests::TempDir;

const ENVIRON_APP: &str = r#"
import json, os, sys
def application(environ, start_response):
    if environ.get('PATH_INFO') == '/fail':
        raise RuntimeError('deliberate failure')
    if environ.get('PATH_INFO') == '/echo':
        body = environ['wsgi.input'].read()
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return [body]
    print('hello from wsgi.errors', file=environ['wsgi.errors'])
    out = {k: v for k, v in environ.items() if isinstance(v, (str, int, bool, tuple))}
    out['pid'] = os.getpid()
    data = json.dumps(out, sort_keys=True).encode()
    start_response('200 OK', [('Content-Type', 'application/json'), ('X-App', 'environ')])
    return [data]
"#;

fn site_with(app: &str) -> TempDir {
    let site = TempDir::new("apache-site");
    site.write("app.wsgi", app);
    site
}

#[test]
fn serves_an_application_with_its_environ_and_headers() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site_with(ENVIRON_APP);
    let apache =
        Apache::start(&ApacheOptions::ours(format!("WSGIScriptAlias /env {}/app.wsgi", site.path().display())));
    let response = apache.request("GET", "/env/a/b?x=1", &[("X-Custom", "v1")], b"");
    assert_eq!(response.status(), 200, "{}", apache.error_log());
    assert_eq!(response.header("X-App"), Some("environ"));
    assert_eq!(response.header("Content-Type"), Some("application/json"));
    let text = response.text();
    assert_eq!(tests::json_field(&text, "SCRIPT_NAME"), Some("/env"));
    assert_eq!(tests::json_field(&text, "PATH_INFO"), Some("/a/b"));
    assert_eq!(tests::json_field(&text, "QUERY_STRING"), Some("x=1"));
    assert_eq!(tests::json_field(&text, "HTTP_X_CUSTOM"), Some("v1"));
    assert_eq!(
        tests::json_field(&text, "mod_wsgi.application_group"),
        Some(&*format!("localhost:{}|/env", apache.port()))
    );
    assert!(response.header("Server").is_some_and(|s| s.contains("mod_wsgi-rs/")), "{:?}", response.header("Server"));
    let log = apache.error_log();
    assert!(log.contains("hello from wsgi.errors"), "{log}");
}

#[test]
fn a_failing_application_gets_500_and_its_traceback_logged_then_the_next_request_works() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site_with(ENVIRON_APP);
    let apache =
        Apache::start(&ApacheOptions::ours(format!("WSGIScriptAlias /app {}/app.wsgi", site.path().display())));
    let response = apache.get("/app/fail");
    assert_eq!(response.status(), 500);
    let log = apache.error_log();
    assert!(log.contains("Exception occurred processing WSGI script"), "{log}");
    assert!(log.contains("Traceback (most recent call last):"), "{log}");
    assert!(log.contains("RuntimeError: deliberate failure"), "{log}");
    assert_eq!(apache.get("/app/ok").status(), 200);
}

#[test]
fn limit_request_body_answers_413_without_running_the_app_and_honours_error_document() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site_with(ENVIRON_APP);
    let apache = Apache::start(&ApacheOptions::ours(format!(
        "WSGIScriptAlias /app {dir}/app.wsgi\nLimitRequestBody 1000\nErrorDocument 413 \"custom too large\"",
        dir = site.path().display()
    )));
    let small = apache.request("POST", "/app/echo", &[], &[b'a'; 1000]);
    assert_eq!(small.status(), 200);
    assert_eq!(small.body.len(), 1000);
    let big = apache.request("POST", "/app/echo", &[], &[b'a'; 1001]);
    assert_eq!(big.status(), 413);
    assert!(big.text().contains("custom too large"), "{}", big.text());
}

#[test]
fn uploads_and_downloads_large_bodies_intact() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site_with(ENVIRON_APP);
    let apache =
        Apache::start(&ApacheOptions::ours(format!("WSGIScriptAlias /app {}/app.wsgi", site.path().display())));
    let body: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    let response = apache.request("POST", "/app/echo", &[], &body);
    assert_eq!(response.status(), 200);
    assert!(response.body == body, "echoed body differs ({} bytes back)", response.body.len());
}

#[test]
fn application_groups_are_isolated_and_global_is_the_main_interpreter() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = TempDir::new("apache-groups");
    let app = r#"
import sys
COUNT = 0
def application(environ, start_response):
    global COUNT
    COUNT += 1
    sys.shared = getattr(sys, 'shared', 0) + 1
    import threading
    main = threading.main_thread() is not None
    body = '%s %d %d %s' % (environ['mod_wsgi.application_group'], COUNT, sys.shared,
                             type(sys.modules).__name__)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
"#;
    site.write("a.wsgi", app);
    site.write("b.wsgi", app);
    site.write("g.wsgi", "import sys\ndef application(e, s):\n    s('200 OK', [])\n    return [str(sys.flags.isolated).encode() + b' ' + repr(getattr(sys, 'shared', None)).encode()]\n");
    let dir = site.path().display();
    let apache = Apache::start(&ApacheOptions {
        mpm: Mpm::Prefork,
        ..ApacheOptions::ours(format!(
            "StartServers 1\nMinSpareServers 1\nMaxSpareServers 1\nMaxRequestWorkers 1\n\
             WSGIScriptAlias /a {dir}/a.wsgi application-group=alpha\n\
             WSGIScriptAlias /b {dir}/b.wsgi application-group=beta\n\
             WSGIScriptAlias /g {dir}/g.wsgi application-group=%{{GLOBAL}}\n\
             WSGIScriptAlias /r {dir}/a.wsgi"
        ))
    });
    // One child (prefork, one worker): every request meets the same Python.
    assert_eq!(apache.get("/a").text(), "alpha 1 1 dict");
    assert_eq!(apache.get("/a").text(), "alpha 2 2 dict");
    assert_eq!(apache.get("/b").text(), "beta 1 1 dict", "{}", apache.error_log());
    let resource = apache.get("/r").text();
    assert_eq!(resource, format!("localhost:{}|/r 1 1 dict", apache.port()));
    // The main interpreter saw none of the sub-interpreters' changes to sys.
    assert_eq!(apache.get("/g").text(), "0 None");
}

/// mod_wsgi checks a script's modification time on each request (with
/// WSGIScriptReloading On, the default) from Apache's own `r->finfo`, as we
/// do: a changed script is imported again, an unchanged one is not (its
/// module state survives, although Apache keeps times to the microsecond
/// and the file to the nanosecond), and with reloading off it is kept.
#[test]
fn a_changed_script_is_reloaded_unless_reloading_is_off() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = TempDir::new("apache-reload");
    let version = |v: &str| {
        format!(
            "COUNT = 0\ndef application(environ, start_response):\n    global COUNT\n    COUNT += 1\n    \
             start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'{v} %d' % COUNT]\n"
        )
    };
    let set_time = |name: &str, secs: u64| {
        let file = std::fs::File::options().write(true).open(site.path().join(name)).unwrap();
        file.set_modified(std::time::UNIX_EPOCH + Duration::new(secs, 123_456_789)).unwrap();
    };
    for name in ["live.wsgi", "frozen.wsgi"] {
        site.write(name, &version("v1"));
        set_time(name, 1_700_000_000);
    }
    let dir = site.path().display();
    let apache = Apache::start(&ApacheOptions {
        mpm: Mpm::Prefork,
        ..ApacheOptions::ours(format!(
            "StartServers 1\nMinSpareServers 1\nMaxSpareServers 1\nMaxRequestWorkers 1\n\
             WSGIScriptAlias /live {dir}/live.wsgi\n\
             WSGIScriptAlias /frozen {dir}/frozen.wsgi\n\
             <Location /frozen>\n  WSGIScriptReloading Off\n</Location>"
        ))
    });
    assert_eq!(apache.get("/live").text(), "v1 1", "{}", apache.error_log());
    assert_eq!(apache.get("/live").text(), "v1 2");
    assert_eq!(apache.get("/frozen").text(), "v1 1");
    for name in ["live.wsgi", "frozen.wsgi"] {
        site.write(name, &version("v2"));
        set_time(name, 1_700_000_100);
    }
    assert_eq!(apache.get("/live").text(), "v2 1", "{}", apache.error_log());
    assert_eq!(apache.get("/live").text(), "v2 2");
    assert_eq!(apache.get("/frozen").text(), "v1 2");
}

fn serve_under(mpm: Mpm) {
    let site = site_with(ENVIRON_APP);
    let apache = Apache::start(&ApacheOptions {
        mpm,
        ..ApacheOptions::ours(format!("WSGIScriptAlias /app {}/app.wsgi", site.path().display()))
    });
    let response = apache.get("/app/x");
    assert_eq!(response.status(), 200, "{}", apache.error_log());
    let text = response.text();
    let threaded = mpm != Mpm::Prefork;
    assert_eq!(tests::json_field(&text, "wsgi.multithread"), Some(if threaded { "true" } else { "false" }), "{text}");
    assert_eq!(tests::json_field(&text, "wsgi.multiprocess"), Some("true"), "{text}");
}

#[test]
fn serves_under_mpm_event() {
    tests::require!(tests::apache::APACHE_BINARY);
    serve_under(Mpm::Event);
}

#[test]
fn serves_under_mpm_worker() {
    tests::require!(tests::apache::APACHE_BINARY);
    serve_under(Mpm::Worker);
}

#[test]
fn serves_under_mpm_prefork() {
    tests::require!(tests::apache::APACHE_BINARY);
    serve_under(Mpm::Prefork);
}

#[test]
fn handler_mapping_needs_exec_cgi_unless_aliased() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = TempDir::new("apache-handler");
    site.write("open/app.wsgi", ENVIRON_APP);
    site.write("closed/app.wsgi", ENVIRON_APP);
    let dir = site.path().display();
    let apache = Apache::start(&ApacheOptions {
        modules: vec!["alias", "mime"],
        ..ApacheOptions::ours(format!(
            "Alias /open {dir}/open\nAlias /closed {dir}/closed\n\
             <Directory {dir}/open>\n  Options ExecCGI\n  AddHandler wsgi-script .wsgi\n</Directory>\n\
             <Directory {dir}/closed>\n  Options None\n  AddHandler wsgi-script .wsgi\n</Directory>"
        ))
    });
    let open = apache.get("/open/app.wsgi/x");
    assert_eq!(open.status(), 200, "{}", apache.error_log());
    assert_eq!(tests::json_field(&open.text(), "SCRIPT_NAME"), Some("/open/app.wsgi"));
    assert_eq!(apache.get("/closed/app.wsgi").status(), 403);
    assert!(apache.error_log().contains("Options ExecCGI is off in this directory"), "{}", apache.error_log());
    assert_eq!(apache.get("/open/missing.wsgi").status(), 404);
}

#[test]
fn bad_directive_is_reported_with_file_and_line_and_apache_refuses_to_start() {
    tests::require!(tests::apache::APACHE_BINARY);
    let run = TempDir::new("apache-bad");
    let conf = run.write(
        "httpd.conf",
        &format!(
            "ServerRoot {dir}\nListen 127.0.0.1:{port}\nPidFile {dir}/pid\nErrorLog {dir}/error.log\n\
             LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so\n\
             LoadModule wsgi_module {module}\n\
             WSGIDaemonProcess bad threads=zero\n",
            dir = run.path().display(),
            port = tests::free_port(),
            module = tests::apache::our_module().display()
        ),
    );
    let output = std::process::Command::new(tests::apache::APACHE_BINARY)
        .args(["-t", "-f"])
        .arg(&conf)
        .output()
        .expect("run apache2 -t");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("line 7"), "{stderr}");
    assert!(stderr.contains("threads"), "{stderr}");
}

#[test]
fn graceful_and_full_restarts_under_load_lose_no_request() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site_with(ENVIRON_APP);
    let apache =
        Apache::start(&ApacheOptions::ours(format!("WSGIScriptAlias /app {}/app.wsgi", site.path().display())));
    let address = apache.address();
    let load = tests::Load::start(address, "/app/load", 4);
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(700));
        apache.graceful();
    }
    std::thread::sleep(Duration::from_millis(1500));
    let report = load.finish();
    let failures = &report.failures;
    assert!(failures.is_empty(), "failed requests across graceful restarts: {failures:?}");
    assert!(report.bodies.len() > 20, "too few requests served: {}", report.bodies.len());

    // A full restart (SIGHUP) reloads the module; it must come back serving.
    apache.restart();
    let back = tests::wait_for(Duration::from_secs(10), || {
        tests::http_request(address, "GET", "/app/again", &[], b"").ok().filter(|r| r.status() == 200)
    });
    assert!(back.is_some(), "not serving after a restart:\n{}", apache.error_log());
    let log = apache.error_log();
    assert!(!log.contains("Segmentation fault") && !log.contains("exit signal"), "{log}");
}

#[test]
fn handler_script_serves_files_mapped_to_its_handler() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = TempDir::new("apache-handler-script");
    site.write(
        "handler.py",
        "def handle_request(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    \
         return [' '.join([environ['mod_wsgi.handler_script'], environ['mod_wsgi.request_handler'], environ['SCRIPT_FILENAME'], environ['PATH_INFO']]).encode()]\n",
    );
    site.write("h/thing.foo", "resource\n");
    let dir = site.path().display();
    let apache = Apache::start(&ApacheOptions {
        modules: vec!["alias", "mime"],
        ..ApacheOptions::ours(format!(
            "WSGIHandlerScript my-handler {dir}/handler.py\nAlias /h {dir}/h\n\
             <Directory {dir}/h>\n  AddHandler my-handler .foo\n</Directory>"
        ))
    });
    let response = apache.get("/h/thing.foo/extra");
    assert_eq!(response.status(), 200, "{}", apache.error_log());
    assert_eq!(response.text(), format!("{dir}/handler.py my-handler {dir}/h/thing.foo /extra"));
}

#[test]
fn dispatch_script_chooses_group_and_callable() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = TempDir::new("apache-dispatch");
    site.write(
        "app.wsgi",
        "def application(environ, start_response):\n    start_response('200 OK', [])\n    return [('main ' + environ['mod_wsgi.application_group']).encode()]\n\
         def alternative(environ, start_response):\n    start_response('200 OK', [])\n    return [('alt ' + environ['mod_wsgi.application_group']).encode()]\n",
    );
    site.write(
        "dispatch.py",
        "def application_group(environ):\n    return 'dispatched' if 'group' in environ['QUERY_STRING'] else None\n\
         def callable_object(environ):\n    if 'bad' in environ['QUERY_STRING']:\n        return 42\n    return 'alternative' if 'alt' in environ['QUERY_STRING'] else None\n",
    );
    let dir = site.path().display();
    let apache = Apache::start(&ApacheOptions::ours(format!(
        "WSGIScriptAlias /app {dir}/app.wsgi\nWSGIDispatchScript {dir}/dispatch.py"
    )));
    assert_eq!(apache.get("/app").text(), format!("main localhost:{}|/app", apache.port()), "{}", apache.error_log());
    assert_eq!(apache.get("/app?group").text(), "main dispatched");
    assert_eq!(apache.get("/app?group&alt").text(), "alt dispatched");
    assert_eq!(apache.get("/app?bad").status(), 500);
    assert!(apache.error_log().contains("TypeError: callable_object returned from"), "{}", apache.error_log());
    drop(apache);

    // The standalone server runs the same dispatch script, also choosing a
    // daemon group.
    site.write(
        "dispatch.py",
        "def process_group(environ):\n    return 'pool' if 'daemon' in environ['QUERY_STRING'] else None\n\
         def application_group(environ):\n    return 'dispatched' if 'group' in environ['QUERY_STRING'] else None\n\
         def callable_object(environ):\n    if 'bad' in environ['QUERY_STRING']:\n        return 42\n    return 'alternative' if 'alt' in environ['QUERY_STRING'] else None\n",
    );
    site.write(
        "app.wsgi",
        "import os\n\
         def application(environ, start_response):\n    start_response('200 OK', [])\n    return [('main ' + environ['mod_wsgi.application_group'] + ' ' + environ['mod_wsgi.process_group']).encode()]\n\
         def alternative(environ, start_response):\n    start_response('200 OK', [])\n    return [('alt ' + environ['mod_wsgi.application_group']).encode()]\n",
    );
    let file = site.write(
        "site.conf",
        &format!("WSGIDaemonProcess pool threads=2\nWSGIScriptAlias /app {dir}/app.wsgi\nWSGIDispatchScript {dir}/dispatch.py\n"),
    );
    let server = tests::Server::start(["--config".as_ref(), file.as_os_str()]);
    assert_eq!(server.get("/app?group").text(), "main dispatched ", "{}", server.stderr());
    assert_eq!(server.get("/app?group&alt").text(), "alt dispatched");
    assert_eq!(server.get("/app?group&daemon").text(), "main dispatched pool");
    assert_eq!(server.get("/app?bad").status(), 500);
    assert!(server.stderr().contains("TypeError: callable_object returned from"), "{}", server.stderr());
}

#[test]
fn serves_a_flask_application() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = TempDir::new("apache-flask");
    site.write(
        "flask_app.wsgi",
        r#"
from flask import Flask, request, jsonify, redirect
app = Flask(__name__)
@app.route('/hello/<name>')
def hello(name):
    return 'Hello %s, q=%s' % (name, request.args.get('q'))
@app.route('/json', methods=['POST'])
def json_echo():
    return jsonify(received=request.get_json(), form_len=len(request.data))
@app.route('/go')
def go():
    return redirect('/flask/hello/there')
application = app
"#,
    );
    let apache =
        Apache::start(&ApacheOptions::ours(format!("WSGIScriptAlias /flask {}/flask_app.wsgi", site.path().display())));
    let hello = apache.get("/flask/hello/world?q=1");
    assert_eq!(hello.status(), 200, "{}", apache.error_log());
    assert_eq!(hello.text(), "Hello world, q=1");
    let json = apache.request("POST", "/flask/json", &[("Content-Type", "application/json")], br#"{"a": [1, 2]}"#);
    assert_eq!(json.status(), 200);
    assert!(json.text().contains(r#""received":{"a":[1,2]}"#), "{}", json.text());
    let go = apache.get("/flask/go");
    assert_eq!(go.status(), 302);
    assert!(go.header("Location").is_some_and(|l| l.ends_with("/flask/hello/there")), "{:?}", go.header("Location"));
    assert_eq!(apache.get("/flask/missing").status(), 404);
}
