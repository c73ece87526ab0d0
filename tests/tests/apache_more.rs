//! More of our mod_wsgi.so under real Apache httpd 2.4: wsgi.file_wrapper,
//! Apache's output filters, WSGIRestrictEmbedded, the parent's memory across
//! graceful restarts, streaming, close() on a client that goes away, daemon
//! restart-interval and inactivity-timeout, and directive contexts in
//! `apache2 -t`.

use std::time::Duration;

use tests::apache::{Apache, ApacheOptions};
use tests::{HttpConnection, TempDir};

/// One application for every test, selected by PATH_INFO.
const APP: &str = r#"
import os, time

DATA = os.path.join(os.path.dirname(__file__), 'data.bin')
MARKERS = os.path.join(os.path.dirname(__file__), 'markers')

class Slow:
    def __init__(self, name, count, pause, size):
        self.name, self.count, self.pause, self.size = name, count, pause, size
        self.sent = 0
    def __iter__(self):
        for i in range(self.count):
            if i:
                time.sleep(self.pause)
            self.sent = i + 1
            yield (b'chunk-%d\n' % i).ljust(self.size, b'.')
    def close(self):
        with open(os.path.join(MARKERS, self.name), 'w') as f:
            f.write('closed after %d of %d chunks' % (self.sent, self.count))

def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/whole':
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return environ['wsgi.file_wrapper'](open(DATA, 'rb'))
    if path == '/seek':
        f = open(DATA, 'rb')
        f.seek(1000)
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return environ['wsgi.file_wrapper'](f)
    if path == '/short':
        start_response('200 OK', [('Content-Type', 'application/octet-stream'), ('Content-Length', '1000000')])
        return environ['wsgi.file_wrapper'](open(DATA, 'rb'))
    if path == '/text':
        body = b''.join(b'line %06d of a compressible text body\n' % i for i in range(2700))[:100 * 1024]
        start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
        return [body]
    if path == '/stream':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return iter(Slow('stream', 5, 0.5, 8))
    if path == '/endless':
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return Slow(environ['QUERY_STRING'], 300, 0.05, 16384)
    body = ('pid=%d group=%s' % (os.getpid(), environ['mod_wsgi.process_group'])).encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
"#;

/// A site with the application, a 3 MB data file and a directory the
/// application (running as www-data) may write markers into.
fn site() -> TempDir {
    use std::os::unix::fs::PermissionsExt;
    let site = TempDir::new("apache-more");
    site.write("app.wsgi", APP);
    std::fs::write(site.path().join("data.bin"), data()).expect("write data.bin");
    let markers = site.path().join("markers");
    std::fs::create_dir(&markers).expect("create markers");
    std::fs::set_permissions(&markers, std::fs::Permissions::from_mode(0o777)).expect("chmod markers");
    site
}

/// The 3 MB file the application serves.
fn data() -> Vec<u8> {
    (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

/// Apache with `WSGIScriptAlias /app` to the site's application and `extra`.
fn start(site: &TempDir, extra: &str) -> Apache {
    start_with(site, extra, Vec::new())
}

fn start_with(site: &TempDir, extra: &str, modules: Vec<&'static str>) -> Apache {
    let dir = site.path().display();
    Apache::start(&ApacheOptions {
        modules,
        ..ApacheOptions::ours(format!("{extra}\nWSGIScriptAlias /app {dir}/app.wsgi"))
    })
}

/// Apache with `extra`, the application at `/app` and, in daemon group
/// `group` (`WSGIDaemonProcess group options`), at `/daemon`.
fn start_with_daemon(site: &TempDir, extra: &str, group: &str, options: &str) -> Apache {
    let dir = site.path().display();
    start(
        site,
        &format!("{extra}\nWSGIDaemonProcess {group} {options}\nWSGIScriptAlias /daemon {dir}/app.wsgi process-group={group}"),
    )
}

/// The `pid=` the application answered with.
fn pid_of(apache: &Apache, path: &str) -> String {
    let response = apache.get(path);
    assert_eq!(response.status(), 200, "GET {path}: {}\n{}", response.text(), apache.error_log());
    let text = response.text();
    text.split_whitespace()
        .find_map(|word| word.strip_prefix("pid="))
        .unwrap_or_else(|| panic!("no pid in {text:?}"))
        .to_string()
}

#[test]
fn file_wrapper_serves_whole_files_from_the_position_and_up_to_content_length() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let apache = start(&site, "");
    let data = data();

    let whole = apache.get("/app/whole");
    assert_eq!(whole.status(), 200, "{}", apache.error_log());
    assert_eq!(whole.body.len(), data.len(), "whole file length");
    assert!(whole.body == data, "the whole file differs from data.bin");

    let seek = apache.get("/app/seek");
    assert_eq!(seek.status(), 200, "{}", apache.error_log());
    assert_eq!(seek.body.len(), data.len() - 1000, "file from byte 1000: length");
    assert!(seek.body == data[1000..], "the file from byte 1000 differs");

    let short = apache.get("/app/short");
    assert_eq!(short.status(), 200, "{}", apache.error_log());
    assert_eq!(short.header("Content-Length"), Some("1000000"));
    assert_eq!(short.body.len(), 1_000_000, "truncated to Content-Length");
    assert!(short.body == data[..1_000_000], "the truncated file differs");
}

#[test]
fn responses_pass_through_apaches_output_filters() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let apache = start_with(&site, "AddOutputFilterByType DEFLATE text/plain", vec!["filter", "deflate"]);
    let plain = apache.get("/app/text");
    assert_eq!(plain.status(), 200, "{}", apache.error_log());
    assert_eq!(plain.body.len(), 100 * 1024);
    assert_eq!(plain.header("Content-Encoding"), None);

    let gzipped = apache.request("GET", "/app/text", &[("Accept-Encoding", "gzip")], b"");
    assert_eq!(gzipped.status(), 200, "{}", apache.error_log());
    assert_eq!(gzipped.header("Content-Encoding"), Some("gzip"), "{:?}", gzipped.head.headers);
    assert!(gzipped.body.len() < 100 * 1024, "not compressed: {} bytes", gzipped.body.len());
    assert!(gzipped.body.starts_with(&[0x1f, 0x8b]), "no gzip magic: {:?}", &gzipped.body[..gzipped.body.len().min(8)]);
}

#[test]
fn restrict_embedded_refuses_embedded_mode_but_serves_daemon_mode() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let apache = start_with_daemon(&site, "WSGIRestrictEmbedded On", "restricted", "processes=1 threads=2");
    let embedded = apache.get("/app/x");
    assert_eq!(embedded.status(), 500, "{}", embedded.text());
    let log = apache.error_log();
    assert!(log.contains("Embedded mode of mod_wsgi disabled by runtime configuration"), "{log}");

    let daemon = apache.get("/daemon/x");
    assert_eq!(daemon.status(), 200, "{}\n{}", daemon.text(), apache.error_log());
    assert!(daemon.text().contains("group=restricted"), "{}", daemon.text());
}

/// The resident set size of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS line");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("VmRSS value")
}

#[test]
fn the_parent_does_not_grow_across_graceful_restarts() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let apache = start_with_daemon(&site, "", "grown", "processes=1 threads=2");
    assert_eq!(apache.get("/app/x").status(), 200, "{}", apache.error_log());
    assert_eq!(apache.get("/daemon/x").status(), 200, "{}", apache.error_log());
    let before = rss_kib(apache.pid());
    let mut sizes = vec![before];
    let resumed = || apache.error_log().matches("resuming normal operations").count();
    for round in 1..=5 {
        let count = resumed();
        apache.graceful();
        let restarted = tests::wait_for(Duration::from_secs(20), || (resumed() > count).then_some(()));
        assert!(restarted.is_some(), "graceful restart {round} did not complete:\n{}", apache.error_log());
        for path in ["/app/x", "/daemon/x"] {
            let serving = tests::wait_for(Duration::from_secs(20), || {
                tests::http_request(apache.address(), "GET", path, &[], b"").ok().filter(|r| r.status() == 200)
            });
            assert!(serving.is_some(), "{path} not served after restart {round}:\n{}", apache.error_log());
        }
        sizes.push(rss_kib(apache.pid()));
    }
    let after = *sizes.last().unwrap();
    eprintln!("parent VmRSS (KiB) at start and after each graceful restart: {sizes:?}");
    assert!(after < before + 10 * 1024, "the parent grew from {before} KiB to {after} KiB: {sizes:?}");
}

#[test]
fn a_streamed_response_reaches_the_client_chunk_by_chunk() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let apache = start(&site, "");
    let mut connection = HttpConnection::open(apache.address());
    let request = format!("GET /app/stream HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n", apache.port());
    connection.send(request.as_bytes()).unwrap();
    let head = connection.read_head().unwrap();
    assert_eq!(head.status, 200);
    assert!(head.is_chunked(), "{:?}", head.headers);
    let first = connection.read_chunk().unwrap().expect("a first chunk");
    assert_eq!(first, b"chunk-0\n");
    let early = String::from_utf8_lossy(connection.raw_received()).into_owned();
    let early_chunks = (0..5).filter(|i| early.contains(&format!("chunk-{i}\n"))).count();
    assert!(early_chunks < 5, "all chunks had arrived with the first one: {early:?}");
    let mut chunks = vec![first];
    while let Some(chunk) = connection.read_chunk().unwrap() {
        chunks.push(chunk);
    }
    let body: Vec<u8> = chunks.concat();
    let expected: Vec<u8> = (0..5).flat_map(|i| format!("chunk-{i}\n").into_bytes()).collect();
    assert_eq!(String::from_utf8_lossy(&body), String::from_utf8_lossy(&expected));
}

#[test]
fn close_is_called_when_the_client_goes_away() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let apache = start(&site, "");
    let mut connection = HttpConnection::open(apache.address());
    let request = format!("GET /app/endless?gone HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", apache.port());
    connection.send(request.as_bytes()).unwrap();
    let head = connection.read_head().unwrap();
    assert_eq!(head.status, 200);
    let first = connection.read_chunk().unwrap().expect("a first chunk");
    assert!(first.starts_with(b"chunk-0"));
    let _ = connection.stream().shutdown(std::net::Shutdown::Both);
    drop(connection);

    let marker = site.path().join("markers").join("gone");
    // Read once written: the file exists a moment before its text.
    let closed =
        tests::wait_for(Duration::from_secs(5), || std::fs::read_to_string(&marker).ok().filter(|t| !t.is_empty()));
    let text = closed.unwrap_or_else(|| panic!("close() was not called within 5 s:\n{}", apache.error_log()));
    eprintln!("marker: {text}");
    assert!(text.starts_with("closed after") && !text.contains("300 of 300"), "{text}");
}

#[test]
fn restart_interval_replaces_the_daemon_process_while_requests_succeed() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let apache = start_with_daemon(&site, "", "interval", "processes=1 threads=2 restart-interval=2");
    let first = pid_of(&apache, "/daemon/x");
    let mut seen = vec![first.clone()];
    let replaced = tests::wait_for(Duration::from_secs(10), || {
        let pid = pid_of(&apache, "/daemon/x");
        if seen.last() != Some(&pid) {
            seen.push(pid.clone());
        }
        std::thread::sleep(Duration::from_millis(100));
        (pid != first).then_some(pid)
    });
    assert!(replaced.is_some(), "still {first} after 10 s: {seen:?}\n{}", apache.error_log());
}

#[test]
fn inactivity_timeout_replaces_an_idle_daemon_process() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let apache = start_with_daemon(&site, "", "idle", "processes=1 threads=2 inactivity-timeout=1");
    let before = pid_of(&apache, "/daemon/x");
    std::thread::sleep(Duration::from_secs(3));
    let after = pid_of(&apache, "/daemon/x");
    assert_ne!(before, after, "the idle process was not replaced:\n{}", apache.error_log());
}

/// `apache2 -t -f CONF` with the harness-like preamble and `body`; returns
/// (success, stderr and stdout), and the line number `body` starts on.
fn config_test(run: &TempDir, body: &str) -> (bool, String, usize) {
    let preamble = format!(
        "ServerRoot {dir}\nListen 127.0.0.1:{port}\nPidFile {dir}/pid\nErrorLog {dir}/error.log\n\
         DefaultRuntimeDir {dir}\nServerName localhost\n\
         LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so\n\
         LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so\n\
         LoadModule wsgi_module {module}\n",
        dir = run.path().display(),
        port = tests::free_port(),
        module = tests::apache::our_module().display()
    );
    let first_line = preamble.lines().count() + 1;
    let conf = run.write("httpd.conf", &format!("{preamble}{body}"));
    let output = std::process::Command::new(tests::apache::APACHE_BINARY)
        .args(["-t", "-f"])
        .arg(&conf)
        .output()
        .expect("run apache2 -t");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stderr), String::from_utf8_lossy(&output.stdout));
    (output.status.success(), text, first_line)
}

#[test]
fn config_test_accepts_directives_in_their_contexts_and_refuses_python_home_in_a_virtual_host() {
    tests::require!(tests::apache::APACHE_BINARY);
    let run = TempDir::new("apache-contexts");
    let site = site();
    let dir = site.path().display();
    let good = format!(
        "WSGIDaemonProcess ctx processes=1 threads=2\n\
         <VirtualHost 127.0.0.1:80>\n\
         \x20 ServerName ctx.example\n\
         \x20 WSGIScriptAlias /ctx {dir}/app.wsgi\n\
         \x20 <Location /ctx>\n\
         \x20   WSGIProcessGroup ctx\n\
         \x20 </Location>\n\
         </VirtualHost>\n\
         <Directory {dir}>\n\
         \x20 WSGIApplicationGroup %{{GLOBAL}}\n\
         \x20 WSGIPassAuthorization On\n\
         </Directory>\n"
    );
    let (ok, text, _) = config_test(&run, &good);
    assert!(ok, "{text}");
    assert!(text.contains("Syntax OK"), "{text}");

    let bad = "WSGIDaemonProcess ctx processes=1 threads=2\n\
               <VirtualHost 127.0.0.1:80>\n\
               \x20 ServerName ctx.example\n\
               \x20 WSGIPythonHome /x\n\
               </VirtualHost>\n";
    let (ok, text, first_line) = config_test(&run, bad);
    assert!(!ok, "WSGIPythonHome in a VirtualHost was accepted: {text}");
    eprintln!("apache2 -t: {text}");
    let line = first_line + 3;
    assert!(text.contains(&format!("line {line}")), "no 'line {line}' in: {text}");
    assert!(text.contains("WSGIPythonHome"), "{text}");
}

/// Our module ends a response itself (end of stream, then a flush of the
/// connection) so that it is written before Apache looks for the next
/// request on the connection. The output filters must still frame it as
/// they would have: a Content-Length Apache computes for a short body the
/// application gave none for, the application's own for the others, and
/// pipelined requests answered in order on one connection. In embedded and
/// daemon mode.
#[test]
fn pipelined_requests_on_one_connection_keep_their_framing() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let apache = start_with_daemon(&site, "", "framing", "processes=1 threads=2");
    let requests = [("GET", "/x"), ("GET", "/text"), ("HEAD", "/text"), ("GET", "/y")];
    for prefix in ["/app", "/daemon"] {
        // The daemon process is up before the pipelined burst.
        assert_eq!(apache.get(&format!("{prefix}/x")).status(), 200, "{}", apache.error_log());
        let mut connection = HttpConnection::open(apache.address());
        let host = format!("127.0.0.1:{}", apache.port());
        let pipelined: String = requests
            .iter()
            .map(|(method, path)| format!("{method} {prefix}{path} HTTP/1.1\r\nHost: {host}\r\n\r\n"))
            .collect();
        connection.send(pipelined.as_bytes()).unwrap();
        for (method, path) in requests {
            let response = connection.read_response(method == "HEAD").unwrap();
            let what = format!("{method} {prefix}{path}");
            assert_eq!(response.status(), 200, "{what}: {}", apache.error_log());
            assert!(!response.head.is_chunked(), "{what}: {:?}", response.head.headers);
            let length: usize = response
                .header("Content-Length")
                .unwrap_or_else(|| panic!("{what}: no Content-Length in {:?}", response.head.headers))
                .parse()
                .unwrap();
            if path == "/text" {
                assert_eq!(length, 100 * 1024, "{what}");
            }
            if method == "HEAD" {
                assert!(response.body.is_empty(), "{what}");
                continue;
            }
            assert_eq!(response.body.len(), length, "{what}");
            if path != "/text" {
                assert!(response.text().starts_with("pid="), "{what}: {}", response.text());
            }
        }
    }
}
