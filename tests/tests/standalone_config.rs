//! `start-server --config` honours Apache's core connection settings, or
//! refuses what it cannot honour: directives of other modules that would
//! change who may see what, refused with `file:line`; decorative ones in
//! one start-up warning; request limits, keep-alive, half-closed
//! connections and raw bytes in the target as real Apache answers them,
//! request for request.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tests::apache::{Apache, ApacheOptions};
use tests::{standalone_binary, Server, TempDir};

/// Answers with the PATH_INFO and REQUEST_URI it was given, ASCII-escaped.
const ECHO_APP: &str = r#"
def application(environ, start_response):
    body = ascii((environ['PATH_INFO'], environ['REQUEST_URI'])).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
"#;

fn site() -> TempDir {
    let site = TempDir::new("standalone-config");
    site.write("app.wsgi", ECHO_APP);
    site
}

/// `start-server --config FILE` on a free port with `body` after the
/// `Listen` line.
fn start(site: &TempDir, body: &str, extra_args: &[&str]) -> Server {
    let file = site.path().join("site.conf");
    let extra: Vec<std::ffi::OsString> = extra_args.iter().map(Into::into).collect();
    Server::start_with(|port| {
        std::fs::write(&file, format!("Listen 127.0.0.1:{port}\n{body}\n")).unwrap();
        let mut args: Vec<std::ffi::OsString> = vec!["--config".into(), file.clone().into()];
        args.extend(extra.iter().cloned());
        args
    })
}

/// Sends `request` on a new connection (then shuts the write side when
/// `half_close`) and returns everything received until the server closes
/// it or 10 s pass.
fn exchange(address: SocketAddr, request: &[u8], half_close: bool) -> Vec<u8> {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(request).expect("send");
    if half_close {
        stream.shutdown(std::net::Shutdown::Write).expect("shut the write side");
    }
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received);
    received
}

/// The status of the first response in `bytes` (0 when there is none).
fn status(bytes: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(bytes);
    text.strip_prefix("HTTP/1.1 ").and_then(|rest| rest.get(..3)).and_then(|code| code.parse().ok()).unwrap_or(0)
}

/// The body of the single response in `bytes`.
fn body(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default()
}

/// How many responses one connection gives to requests sent one after
/// another, each once the previous answer arrived, before the server
/// closes it (at most `at_most` requests).
fn responses_on_one_connection(address: SocketAddr, at_most: usize) -> usize {
    let mut connection = tests::HttpConnection::open(address);
    let mut answered = 0;
    for _ in 0..at_most {
        if connection.send(b"GET /app/k HTTP/1.1\r\nHost: localhost\r\n\r\n").is_err() {
            break;
        }
        match connection.read_response(false) {
            Ok(response) => {
                answered += 1;
                if response.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    answered
}

fn get(path: &[u8], headers: &[(&str, String)]) -> Vec<u8> {
    let mut request = b"GET ".to_vec();
    request.extend_from_slice(path);
    request.extend_from_slice(b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    request
}

/// The requests of the differential test, named, with the limits of
/// [`LIMITS`] in mind (`Host` and `Connection` are two fields of 5).
fn limit_requests() -> Vec<(&'static str, Vec<u8>)> {
    let line_of = |len: usize| {
        // GET SP /app/ + padding SP HTTP/1.1
        let path = format!("/app/{}", "a".repeat(len - "GET  HTTP/1.1".len() - "/app/".len()));
        get(path.as_bytes(), &[])
    };
    let field_of = |len: usize| get(b"/app/f", &[("X-Big", "b".repeat(len - "X-Big: ".len()))]);
    let fields = |n: usize| {
        let headers: Vec<(&str, String)> = (0..n).map(|_| ("X-Field", "v".to_string())).collect();
        get(b"/app/n", &headers)
    };
    vec![
        // Apache takes one byte more than its limits say.
        ("a request line at the limit", line_of(200)),
        ("a request line one byte over the limit", line_of(201)),
        ("a request line two bytes over the limit", line_of(202)),
        ("a header field at the limit", field_of(100)),
        ("a header field one byte over the limit", field_of(101)),
        ("a header field two bytes over the limit", field_of(102)),
        ("as many fields as the limit", fields(3)),
        ("one field over the limit", fields(4)),
        ("many fields over the limit", fields(40)),
        ("raw UTF-8 bytes in the path", get(b"/app/caf\xc3\xa9", &[])),
        ("percent-encoded UTF-8 in the path", get(b"/app/caf%C3%A9", &[])),
    ]
}

const LIMITS: &str = "LimitRequestLine 200\nLimitRequestFieldSize 100\nLimitRequestFields 5\nMaxKeepAliveRequests 2";

#[test]
fn limits_keep_alive_half_close_and_raw_bytes_answer_as_apache_does() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let dir = site.path().display();
    let config = format!("{LIMITS}\nWSGIScriptAlias /app {dir}/app.wsgi");
    let apache = Apache::start(&ApacheOptions::ours(config.clone()));
    let standalone = start(&site, &config, &[]);
    for (name, request) in limit_requests() {
        let from_apache = exchange(apache.address(), &request, false);
        let from_standalone = exchange(standalone.address(), &request, false);
        assert_eq!(
            status(&from_standalone),
            status(&from_apache),
            "{name}: Apache answered\n{}\nthe standalone server\n{}",
            String::from_utf8_lossy(&from_apache),
            String::from_utf8_lossy(&from_standalone)
        );
        if status(&from_apache) == 200 {
            assert_eq!(body(&from_standalone), body(&from_apache), "{name}");
        }
    }
    // Raw bytes are Latin-1 in the environ, as PEP 3333 says.
    let raw = exchange(standalone.address(), &get(b"/app/caf\xc3\xa9", &[]), false);
    assert!(body(&raw).contains("/caf\\xc3\\xa9"), "{}", String::from_utf8_lossy(&raw));
    // A complete request from a client that then shuts its write side is
    // answered.
    let half = b"GET /app/half HTTP/1.1\r\nHost: localhost\r\n\r\n";
    assert_eq!(status(&exchange(apache.address(), half, true)), 200);
    assert_eq!(status(&exchange(standalone.address(), half, true)), 200, "{}", standalone.stderr());
    // MaxKeepAliveRequests 2, counted as Apache counts it.
    let kept = responses_on_one_connection(apache.address(), 10);
    assert_eq!(responses_on_one_connection(standalone.address(), 10), kept);
    assert!(kept > 1 && kept < 10, "{kept}");
}

#[test]
fn apache_default_limits_and_their_flags() {
    let site = site();
    let dir = site.path().display();
    let server = start(&site, &format!("WSGIScriptAlias /app {dir}/app.wsgi"), &[]);
    let field = |len: usize| get(b"/app/f", &[("X-Big", "b".repeat(len - "X-Big: ".len()))]);
    assert_eq!(status(&exchange(server.address(), &field(8191), false)), 200);
    assert_eq!(status(&exchange(server.address(), &field(8192), false)), 400);
    assert_eq!(status(&exchange(server.address(), &field(100 * 1024), false)), 400);
    let line = |len: usize| get(format!("/app/{}", "a".repeat(len - "GET  HTTP/1.1".len() - 5)).as_bytes(), &[]);
    assert_eq!(status(&exchange(server.address(), &line(8191), false)), 200);
    assert_eq!(status(&exchange(server.address(), &line(8192), false)), 414);
    let fields = |n: usize| get(b"/app/n", &(0..n).map(|_| ("X-Field", "v".to_string())).collect::<Vec<_>>());
    assert_eq!(status(&exchange(server.address(), &fields(98), false)), 200);
    assert_eq!(status(&exchange(server.address(), &fields(99), false)), 400);
    drop(server);
    // The flags replace the file's values.
    let server = start(
        &site,
        &format!("LimitRequestLine 9000\nWSGIScriptAlias /app {dir}/app.wsgi"),
        &["--limit-request-line", "100", "--limit-request-field-size", "50", "--limit-request-fields", "3"],
    );
    assert_eq!(status(&exchange(server.address(), &line(101), false)), 200);
    assert_eq!(status(&exchange(server.address(), &line(102), false)), 414);
    assert_eq!(status(&exchange(server.address(), &field(52), false)), 400);
    assert_eq!(status(&exchange(server.address(), &fields(1), false)), 200);
    assert_eq!(status(&exchange(server.address(), &fields(2), false)), 400);
}

#[test]
fn max_keep_alive_requests_is_apaches_in_a_file_unlimited_from_the_command_line_and_a_flag() {
    let site = site();
    let dir = site.path().display();
    let alias = format!("WSGIScriptAlias /app {dir}/app.wsgi");
    // A file without MaxKeepAliveRequests has Apache's 100: 101 responses.
    let server = start(&site, &alias, &[]);
    assert_eq!(responses_on_one_connection(server.address(), 150), 101);
    drop(server);
    // The flag replaces the file's value.
    let server = start(&site, &format!("MaxKeepAliveRequests 50\n{alias}"), &["--max-keep-alive-requests", "3"]);
    assert_eq!(responses_on_one_connection(server.address(), 150), 4);
    drop(server);
    // From the command line, no limit, as mod_wsgi-express under mpm_event.
    let script = site.path().join("app.wsgi");
    let server = Server::start([script.as_os_str()]);
    assert_eq!(responses_on_one_connection(server.address(), 300), 300);
    drop(server);
    let server = Server::start([script.as_os_str(), "--max-keep-alive-requests".as_ref(), "2".as_ref()]);
    assert_eq!(responses_on_one_connection(server.address(), 300), 3);
}

#[test]
fn keep_alive_off_closes_after_each_response_and_timeout_bounds_a_slow_body() {
    let site = site();
    let dir = site.path().display();
    let server = start(&site, &format!("KeepAlive Off\nTimeout 1\nWSGIScriptAlias /app {dir}/app.wsgi"), &[]);
    assert_eq!(responses_on_one_connection(server.address(), 10), 1);
    // A body that never comes: answered once Timeout expires, not left
    // hanging for the default 60 s.
    let mut stream = TcpStream::connect(server.address()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream.write_all(b"POST /app/slow HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nabc").unwrap();
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received);
    assert_eq!(status(&received), 408, "{}", String::from_utf8_lossy(&received));
}

/// Lines the standalone server must refuse, each with the name its error
/// must give.
const REFUSED: &[(&str, &str)] = &[
    ("AuthGroupFile /etc/groups", "AuthGroupFile"),
    ("AuthLDAPURL ldap://example/", "AuthLDAPURL"),
    ("Satisfy Any", "Satisfy"),
    ("Order deny,allow", "Order"),
    ("SSLVerifyClient require", "SSLVerifyClient"),
    ("SSLRequire %{SSL_CIPHER_USEKEYSIZE} >= 128", "SSLRequire"),
    ("RewriteEngine on", "RewriteEngine"),
    ("RewriteRule ^/old /new [R]", "RewriteRule"),
    ("ProxyPass /api http://127.0.0.1:9/", "ProxyPass"),
    ("Header set X-Frame-Options DENY", "Header"),
    ("ProxyPassReverse /api http://127.0.0.1:9/", "ProxyPassReverse"),
    ("SetHandler wsgi-script", "SetHandler"),
    ("AddHandler wsgi-script .wsgi", "AddHandler"),
    ("RemoteIPHeader X-Forwarded-For", "RemoteIPHeader"),
    ("<Limit POST>\n</Limit>", "<Limit>"),
    ("<If \"%{HTTPS} != 'on'\">\n</If>", "<If>"),
];

#[test]
fn start_server_refuses_what_would_change_access_or_serving_naming_file_and_line() {
    let site = site();
    let dir = site.path().display();
    let mut text = format!("Listen 127.0.0.1:{}\nWSGIScriptAlias /app {dir}/app.wsgi\n", tests::free_port());
    let mut places = Vec::new();
    for (line, name) in REFUSED {
        // Inside a <Location>, where most of them are written.
        text.push_str("<Location /app>\n");
        places.push((text.lines().count() + 1, *name));
        text.push_str(line);
        text.push_str("\n</Location>\n");
    }
    let file = site.write("refused.conf", &text);
    for command in [&["start-server", "--config"][..], &["check-config"][..]] {
        let out = Command::new(standalone_binary()).args(command).arg(&file).output().unwrap();
        assert!(!out.status.success(), "{command:?} accepted:\n{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        for (line, name) in &places {
            let expected = format!("{}:{line}: {name} is not supported by the standalone server", file.display());
            assert!(stderr.contains(&expected), "{command:?}: no `{expected}` in:\n{stderr}");
        }
        assert!(!stderr.contains("serving on"), "{stderr}");
    }
}

#[test]
fn decorative_directives_are_named_in_one_start_up_warning() {
    let site = site();
    let dir = site.path().display();
    let server = start(
        &site,
        &format!(
            "ExpiresActive On\nWSGIScriptAlias /app {dir}/app.wsgi\n<Location /app>\nAddOutputFilterByType DEFLATE text/html\n</Location>"
        ),
        &[],
    );
    assert_eq!(server.get("/app/x").status(), 200);
    let stderr = server.stderr();
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("no effect in the standalone server")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    let conf = Path::new(&site.path()).join("site.conf");
    assert!(warnings[0].contains(&format!("ExpiresActive ({}:2)", conf.display())), "{}", warnings[0]);
    assert!(warnings[0].contains(&format!("AddOutputFilterByType ({}:5)", conf.display())), "{}", warnings[0]);
}

/// Answers with the ids it runs as and the process group it runs in.
const IDS_APP: &str = r#"
import os
def application(environ, start_response):
    body = '%d %d %s %s' % (os.getuid(), os.getgid(), sorted(os.getgroups()), environ['mod_wsgi.process_group'] or '-')
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
"#;

/// `id -u NAME`, `id -g NAME` and `id -G NAME`.
fn ids_of(user: &str) -> (String, String, Vec<u32>) {
    let id = |flag: &str| {
        let out = Command::new("id").args([flag, user]).output().expect("the id command runs");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let mut groups: Vec<u32> = id("-G").split_whitespace().filter_map(|g| g.parse().ok()).collect();
    groups.sort_unstable();
    (id("-u"), id("-g"), groups)
}

#[test]
fn started_as_root_with_user_the_application_runs_as_that_user() {
    if !running_as_root() {
        panic!("this test needs root, as the suite runs");
    }
    let site = site();
    site.write("ids.wsgi", IDS_APP);
    let dir = site.path().display();
    let (uid, gid, groups) = ids_of("www-data");
    let expected_groups = format!("{groups:?}");
    // From the file, embedded and in a daemon group without user=.
    let server = start(
        &site,
        &format!(
            "User www-data\nGroup www-data\nWSGIDaemonProcess ids threads=1\n\
             WSGIScriptAlias /embedded {dir}/ids.wsgi\n\
             WSGIScriptAlias /daemon {dir}/ids.wsgi process-group=ids application-group=%{{GLOBAL}}"
        ),
        &[],
    );
    let embedded = server.get("/embedded").text();
    assert_eq!(embedded, format!("{uid} {gid} {expected_groups} -"), "{}", server.stderr());
    let daemon = server.get("/daemon").text();
    assert_eq!(daemon, format!("{uid} {gid} {expected_groups} ids"), "{}", server.stderr());
    assert!(!server.stderr().contains("started as root with no user"), "{}", server.stderr());
    // Processes that changed user still die with the process that started
    // them (the kernel drops the parent-death signal on a user change).
    let mut family = Vec::new();
    let mut generation = vec![server.pid()];
    while !generation.is_empty() {
        generation = generation.iter().flat_map(|pid| tests::child_pids(*pid)).collect();
        family.extend(&generation);
    }
    assert!(family.len() >= 3, "serving process, manager and daemon process expected: {family:?}");
    Command::new("kill").args(["-9", &server.pid().to_string()]).status().unwrap();
    let gone = tests::wait_for(Duration::from_secs(10), || {
        family.iter().all(|pid| !Path::new(&format!("/proc/{pid}/status")).exists() || is_zombie(*pid)).then_some(())
    });
    assert!(gone.is_some(), "processes outlived the top process: {family:?}");
    drop(server);
    // From --user, over the file's User.
    let server = start(&site, &format!("User root\nWSGIScriptAlias /embedded {dir}/ids.wsgi"), &["--user", "www-data"]);
    assert_eq!(server.get("/embedded").text(), format!("{uid} {gid} {expected_groups} -"));
    drop(server);
    // No user: served as root, and said once at start-up.
    let server = start(&site, &format!("WSGIScriptAlias /embedded {dir}/ids.wsgi"), &[]);
    assert!(server.get("/embedded").text().starts_with("0 0 "));
    let warnings = server.stderr().matches("give --user").count();
    assert_eq!(warnings, 1, "{}", server.stderr());
}

#[test]
fn an_unknown_user_stops_the_server_before_it_serves() {
    let site = site();
    let out = Command::new(standalone_binary())
        .args(["start-server", "--user", "no-such-user-here", "--port", &tests::free_port().to_string()])
        .arg(site.path().join("app.wsgi"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no such user 'no-such-user-here'"), "{stderr}");
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Answers with mod_env's variables as the environ carries them.
const ENV_APP: &str = r#"
def application(environ, start_response):
    keys = ('APP_MODE', 'EMPTY', 'WSGI_TEST_PASSED', 'NOT_PASSED')
    body = ascii([(k, environ.get(k)) for k in keys]).encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
"#;

#[test]
fn set_env_pass_env_and_unset_env_reach_the_environ_as_under_apache() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    site.write("env.wsgi", ENV_APP);
    let dir = site.path().display();
    let config = format!(
        "SetEnv APP_MODE production\nSetEnv EMPTY\nPassEnv WSGI_TEST_PASSED NOT_PASSED\n\
         WSGIScriptAlias /app {dir}/env.wsgi\n\
         <Location /app/sub>\nSetEnv APP_MODE staging\nUnsetEnv EMPTY\n</Location>"
    );
    let passed = std::ffi::OsString::from("from the environment");
    let apache = Apache::start(&ApacheOptions {
        modules: vec!["env"],
        env: vec![("WSGI_TEST_PASSED", passed.clone())],
        ..ApacheOptions::ours(config.clone())
    });
    let file = site.path().join("env.conf");
    let standalone = Server::start_with_env(&[("WSGI_TEST_PASSED", &passed)], |port| {
        std::fs::write(&file, format!("Listen 127.0.0.1:{port}\n{config}\n")).unwrap();
        vec!["--config".into(), file.clone().into()]
    });
    for path in ["/app/x", "/app/sub/y"] {
        let expected = apache.get(path).text();
        assert!(expected.contains("from the environment"), "{expected}");
        assert_eq!(standalone.get(path).text(), expected, "{path}");
    }
    assert!(standalone.get("/app/sub/y").text().contains("('APP_MODE', 'staging')"));
}

#[test]
fn redirects_answer_as_mod_alias_does() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let dir = site.path().display();
    let config = format!(
        "Redirect /old /app/new\nRedirect permanent /moved http://elsewhere.example/there\n\
         RedirectMatch 303 ^/items/([0-9]+)$ /app/item/$1\nRedirect gone /retired\n\
         RedirectTemp /temp /app/temporary\nRedirectPermanent /perm /app/permanent\n\
         WSGIScriptAlias /app {dir}/app.wsgi"
    );
    let apache = Apache::start(&ApacheOptions { modules: vec!["alias"], ..ApacheOptions::ours(config.clone()) });
    let standalone = start(&site, &config, &[]);
    for path in
        ["/old/page?x=1", "/old", "/moved/a", "/items/42", "/items/x", "/retired/y", "/temp", "/perm/z", "/app/z"]
    {
        let seen = |response: tests::HttpResponse, port: u16| {
            let location = response.header("location").map(|l| l.replace(&port.to_string(), "PORT"));
            (response.status(), location)
        };
        let expected = seen(apache.get(path), apache.port());
        assert_eq!(seen(standalone.get(path), standalone.port()), expected, "{path}");
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| s.contains("State:\tZ"))
}

/// `WSGIMapHEADToGET` in the standalone server, which has no content
/// filters: `On` hands a HEAD to the application as GET (and sends no
/// body), `Auto` and `Off` leave it HEAD, as mod_wsgi does where no filter
/// would see the body.
#[test]
fn map_head_to_get_follows_its_setting() {
    let site = TempDir::new("standalone-head");
    site.write(
        "app.wsgi",
        "def application(environ, start_response):\n    \
         start_response('200 OK', [('Content-Type', 'text/plain'), ('X-Method', environ['REQUEST_METHOD'])])\n    \
         return [b'x' * 4000]\n",
    );
    let dir = site.path().display();
    let config = format!(
        "WSGIScriptAlias /plain {dir}/app.wsgi\nWSGIScriptAlias /on {dir}/app.wsgi\n\
         WSGIScriptAlias /auto {dir}/app.wsgi\nWSGIScriptAlias /off {dir}/app.wsgi\n\
         <Location /on>\n  WSGIMapHEADToGET On\n</Location>\n\
         <Location /auto>\n  WSGIMapHEADToGET Auto\n</Location>\n\
         <Location /off>\n  WSGIMapHEADToGET Off\n</Location>"
    );
    let server = start(&site, &config, &[]);
    for (path, method) in [("/plain", "HEAD"), ("/on", "GET"), ("/auto", "HEAD"), ("/off", "HEAD")] {
        let response = server.request("HEAD", path, &[], b"");
        assert_eq!(
            (response.status(), response.header("X-Method"), response.body.len()),
            (200, Some(method), 0),
            "HEAD {path}\n{}",
            server.stderr()
        );
        assert_eq!(server.get(path).header("X-Method"), Some("GET"), "GET {path}");
    }
}
