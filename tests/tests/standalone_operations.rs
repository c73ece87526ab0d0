//! Running the standalone server the way operators run servers: a UNIX
//! socket, systemd's socket activation and readiness messages, a pid
//! file, the listen backlog, environ variables, process names, recycling
//! jitter, health checks while draining, and SIGHUP replacing every
//! process (re-reading `--config` first) under load without a failure.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tests::{child_pids, http_request, standalone_binary, wait_for, Load, Server, TempDir};

/// Reports the process, the environ variable `GREETING` and a counter of
/// this process's requests.
const APP: &str = r#"
import os
count = 0

def application(environ, start_response):
    global count
    count += 1
    body = 'pid=%d greeting=%s count=%d request=%s %s notify=%s remote=%s' % (
        os.getpid(), environ.get('GREETING', '-'), count, environ['REQUEST_METHOD'], environ['PATH_INFO'],
        os.environ.get('NOTIFY_SOCKET', '-'), environ['REMOTE_ADDR'])
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
"#;

fn site() -> TempDir {
    let dir = TempDir::new("operations");
    dir.write("app.wsgi", APP);
    dir
}

fn arg(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// `wsgi-standalone start-server ARGS` run by hand (for what
/// [`Server`] cannot wait on), its error log in `log`.
fn spawn(args: &[&str], env: &[(&str, &str)], log: &Path) -> Child {
    Command::new(standalone_binary())
        .arg("start-server")
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("create the log"))
        .spawn()
        .expect("spawn wsgi-standalone")
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
    wait_for(Duration::from_secs(30), || child.try_wait().expect("poll the server")).expect("the server stops")
}

fn curl_unix(socket: &Path, path: &str) -> Option<String> {
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "5", "--unix-socket", arg(socket), &format!("http://localhost{path}")])
        .output()
        .expect("curl runs");
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn a_unix_socket_serves_with_its_permissions_and_goes_when_the_server_stops() {
    let site = site();
    let socket = site.path().join("app.sock");
    let log = site.path().join("error.log");
    // A stale socket file from a server that died is replaced.
    drop(std::os::unix::net::UnixListener::bind(&socket).expect("a stale socket"));
    let mut server =
        spawn(&[arg(&site.path().join("app.wsgi")), "--uds", arg(&socket), "--uds-permissions", "660"], &[], &log);
    let body = wait_for(Duration::from_secs(20), || curl_unix(&socket, "/"));
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let body = body.unwrap_or_else(|| panic!("no answer on the socket:\n{}", log_text()));
    assert!(body.contains("greeting=-"), "{body}");
    let mode = std::fs::metadata(&socket).expect("the socket exists").permissions().mode() & 0o7777;
    assert_eq!(mode, 0o660);
    assert!(log_text().contains(&format!("serving on unix:{}", socket.display())), "{}", log_text());
    assert!(terminate(&mut server).success(), "{}", log_text());
    assert!(!socket.exists(), "the socket file stays after the server stopped");
}

/// Binds a TCP socket, puts it at descriptor 3 and runs the server with
/// `LISTEN_FDS=1` and its own pid as `LISTEN_PID`, as systemd does.
const ACTIVATE: &str = r#"
import os, socket, sys
listener = socket.socket()
listener.bind(('127.0.0.1', int(sys.argv[1])))
listener.listen(16)
if listener.fileno() != 3:
    os.dup2(listener.fileno(), 3)
os.set_inheritable(3, True)
os.environ['LISTEN_FDS'] = '1'
os.environ['LISTEN_PID'] = str(os.getpid())
os.execv(sys.argv[2], sys.argv[2:])
"#;

#[test]
fn systemd_passes_the_socket_and_hears_ready_and_stopping() {
    let site = site();
    let harness = site.write("activate.py", ACTIVATE);
    let notify_path = site.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).expect("bind the notify socket");
    notify.set_read_timeout(Some(Duration::from_secs(20))).expect("a read timeout");
    let port = tests::free_port();
    let log = site.path().join("error.log");
    let mut server = Command::new("/usr/bin/python3")
        .arg(&harness)
        .arg(port.to_string())
        .arg(standalone_binary())
        // --port is not where it listens: systemd's socket is.
        .args(["start-server", arg(&site.path().join("app.wsgi")), "--port", "1"])
        .env("NOTIFY_SOCKET", &notify_path)
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("create the log"))
        .spawn()
        .expect("run the harness");
    let mut message = [0u8; 256];
    let n = notify.recv(&mut message).expect("READY=1 arrives");
    let ready = String::from_utf8_lossy(&message[..n]).into_owned();
    assert_eq!(ready, format!("READY=1\nMAINPID={}", server.id()));
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let response = http_request(address, "GET", "/", &[], b"").expect("served on the passed socket");
    assert_eq!(response.status(), 200);
    // What the application sees of the environment: not systemd's.
    assert!(response.text().contains("notify=-"), "{}", response.text());
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(log_text.contains("serving on the 1 sockets systemd passed"), "{log_text}");
    Command::new("kill").args(["-TERM", &server.id().to_string()]).status().expect("kill runs");
    let n = notify.recv(&mut message).expect("STOPPING=1 arrives");
    assert_eq!(&message[..n], b"STOPPING=1");
    let status = wait_for(Duration::from_secs(30), || server.try_wait().expect("poll")).expect("the server stops");
    assert!(status.success());
}

#[test]
fn the_pid_file_names_the_top_process_until_it_stops() {
    let site = site();
    let pid_file = site.path().join("server.pid");
    let mut server = Server::start([arg(&site.path().join("app.wsgi")), "--pid-file", arg(&pid_file)]);
    let written = std::fs::read_to_string(&pid_file).expect("the pid file exists");
    assert_eq!(written.trim(), server.pid().to_string());
    server.terminate();
    assert!(server.wait_exit(Duration::from_secs(30)).is_some_and(|s| s.success()));
    assert!(!pid_file.exists(), "the pid file stays after the server stopped");
}

#[test]
fn backlog_setenv_and_process_name_take_effect() {
    let site = site();
    let server = Server::start([
        arg(&site.path().join("app.wsgi")),
        "--server-backlog",
        "73",
        "--setenv",
        "GREETING",
        "hello there",
        "--process-name",
        "shopfront",
    ]);
    assert!(server.get("/").text().contains("greeting=hello there"));
    // A listening socket's Send-Q is its backlog.
    let ss = Command::new("ss").args(["-ltnH", &format!("sport = :{}", server.port())]).output().expect("ss runs");
    let ss = String::from_utf8_lossy(&ss.stdout);
    let backlog: Vec<&str> = ss.split_whitespace().collect();
    assert_eq!(backlog.get(2).copied(), Some("73"), "{ss}");
    let names: Vec<String> = std::iter::once(server.pid())
        .chain(child_pids(server.pid()))
        .map(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string())
        .collect();
    assert!(names.len() >= 2 && names.iter().all(|n| n == "shopfront"), "{names:?}");
}

#[test]
fn jitter_adds_a_share_to_each_processes_maximum_requests() {
    let site = site();
    let server = Server::start([
        arg(&site.path().join("app.wsgi")),
        "--processes",
        "4",
        "--maximum-requests",
        "100",
        "--max-requests-jitter",
        "1000000000",
    ]);
    let maxima = wait_for(Duration::from_secs(20), || {
        let stderr = server.stderr();
        let maxima: Vec<u64> = stderr
            .lines()
            .filter_map(|line| line.split(" recycles after ").nth(1))
            .filter_map(|rest| rest.split(' ').next()?.parse().ok())
            .collect();
        (maxima.len() == 4).then_some(maxima)
    })
    .unwrap_or_else(|| panic!("four processes did not log their maximum:\n{}", server.stderr()));
    assert!(maxima.iter().all(|m| (100..=1_000_000_100).contains(m)), "{maxima:?}");
    assert!(maxima.iter().any(|m| *m != maxima[0]), "the same maximum for every process: {maxima:?}");
    let refused = Command::new(standalone_binary())
        .args(["start-server", arg(&site.path().join("app.wsgi")), "--max-requests-jitter", "5"])
        .output()
        .expect("run wsgi-standalone");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--max-requests-jitter needs --maximum-requests"));
}

#[test]
fn the_health_path_answers_503_while_the_server_drains_and_serves_on() {
    let site = site();
    let mut server = Server::start([
        arg(&site.path().join("app.wsgi")),
        "--health-path",
        "/healthz",
        "--drain-delay",
        "600",
        "--processes",
        "2",
    ]);
    let health = server.get("/healthz");
    assert_eq!((health.status(), health.text()), (200, "OK\n".to_string()));
    // No Host, as HAProxy's checks send it: still answered.
    let bare = http_request(server.address(), "GET", "/healthz", &[], b"").expect("answered");
    assert_eq!(bare.status(), 200);
    server.terminate();
    let draining = wait_for(Duration::from_secs(20), || (server.get("/healthz").status() == 503).then_some(()));
    assert!(draining.is_some(), "the health path never answered 503: {}", server.stderr());
    // Everything else is still served until the delay is over, which a
    // second SIGTERM ends.
    assert_eq!(server.get("/").status(), 200);
    server.terminate();
    assert!(server.wait_exit(Duration::from_secs(30)).is_some_and(|s| s.success()), "{}", server.stderr());
}

/// The processes that run the application under the top process `pid`:
/// its serving processes and the daemon processes of its groups' managers
/// (which SIGHUP keeps).
fn serving(pid: u32) -> Vec<u32> {
    let manager = |pid: &u32| {
        std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.windows(14).any(|w| w == b"daemon-manager"))
    };
    let (managers, mut serving): (Vec<u32>, Vec<u32>) = child_pids(pid).into_iter().partition(manager);
    serving.extend(managers.into_iter().flat_map(child_pids));
    serving.sort_unstable();
    serving
}

/// Waits until `count` processes serve under `pid`, none of them one of
/// `old`; returns them.
fn replaced(pid: u32, count: usize, old: &[u32]) -> Option<Vec<u32>> {
    wait_for(Duration::from_secs(60), || {
        let now = serving(pid);
        (now.len() == count && now.iter().all(|p| !old.contains(p))).then_some(now)
    })
}

fn hangup(server: &Server) {
    Command::new("kill").args(["-HUP", &server.pid().to_string()]).status().expect("kill runs");
}

/// The pids that answer, as the application reports them.
fn answering_pids(report: &tests::LoadReport) -> std::collections::BTreeSet<String> {
    report.bodies.iter().filter_map(|b| b.split_whitespace().next().map(String::from)).collect()
}

#[test]
fn sighup_replaces_every_serving_and_daemon_process_under_load_without_a_failure() {
    let site = site();
    let script = site.path().join("app.wsgi");
    for mode in [&["--processes", "3"][..], &["--daemon", "--processes", "2", "--threads", "2"][..]] {
        let mut args = vec![arg(&script)];
        args.extend_from_slice(mode);
        let server = Server::start(&args);
        // With --daemon: one serving process and two daemon processes.
        let count = 3;
        let before = replaced(server.pid(), count, &[]).expect("every process starts");
        let load = Load::start(server.address(), "/", 8);
        std::thread::sleep(Duration::from_millis(500));
        hangup(&server);
        // Every process of before is gone, and as many serve again.
        let replaced = replaced(server.pid(), count, &before);
        std::thread::sleep(Duration::from_millis(500));
        let report = load.finish();
        eprintln!("{mode:?}: {} requests through SIGHUP, {} failed", report.bodies.len(), report.failures.len());
        assert!(replaced.is_some(), "{mode:?}: not every process was replaced: {before:?}\n{}", server.stderr());
        assert!(
            report.failures.is_empty(),
            "{mode:?}: {} failed: {:?}",
            report.failures.len(),
            &report.failures[..5.min(report.failures.len())]
        );
        assert!(answering_pids(&report).len() > if mode[0] == "--daemon" { 2 } else { 3 }, "{mode:?}");
        assert!(server.stderr().contains("SIGHUP: replacing every serving and daemon process"), "{}", server.stderr());
    }
}

#[test]
fn sighup_rereads_the_configuration_and_keeps_serving_when_it_no_longer_reads() {
    let site = site();
    let config = |greeting: &str| {
        format!("WSGIScriptAlias / {}\nSetEnv GREETING \"{greeting}\"\n", site.path().join("app.wsgi").display())
    };
    let file: PathBuf = site.write("site.conf", &config("first"));
    let server = Server::start(["--config", arg(&file), "--processes", "2"]);
    let first = replaced(server.pid(), 2, &[]).expect("both processes start");
    assert!(server.get("/").text().contains("greeting=first"));
    site.write("site.conf", &config("second"));
    hangup(&server);
    assert!(replaced(server.pid(), 2, &first).is_some(), "{}", server.stderr());
    for _ in 0..6 {
        let text = server.get("/").text();
        assert!(text.contains("greeting=second"), "{text}\n{}", server.stderr());
    }
    // A file that no longer reads keeps what runs, and says why.
    site.write("site.conf", &format!("{}WSGINoSuchDirective On\n", config("third")));
    let before = serving(server.pid());
    hangup(&server);
    let logged = wait_for(Duration::from_secs(10), || server.stderr().contains("no longer reads").then_some(()));
    assert!(logged.is_some(), "{}", server.stderr());
    assert!(server.stderr().contains("site.conf:3:"), "{}", server.stderr());
    assert_eq!(serving(server.pid()), before);
    let text = server.get("/").text();
    assert!(text.contains("greeting=second"), "{text}\n{}", server.stderr());
    // A change only a restart applies (a new log file) is refused too.
    let log_file = site.path().join("access.log");
    site.write("site.conf", &format!("{}CustomLog {} common\n", config("fourth"), log_file.display()));
    hangup(&server);
    let refused = wait_for(Duration::from_secs(10), || server.stderr().contains("which takes a restart").then_some(()));
    assert!(refused.is_some(), "{}", server.stderr());
    assert!(server.stderr().contains("ErrorLog/CustomLog changed"), "{}", server.stderr());
    assert_eq!(serving(server.pid()), before);
    assert!(server.get("/").text().contains("greeting=second"));
}

/// `GET /` after `preamble` on a new connection; the response, or what
/// went wrong.
fn get_after(server: &Server, preamble: &[u8]) -> std::io::Result<tests::HttpResponse> {
    let mut connection = server.connect();
    let mut bytes = preamble.to_vec();
    bytes.extend_from_slice(b"GET / HTTP/1.1\r\nHost: proxied.example\r\nConnection: close\r\n\r\n");
    connection.send(&bytes)?;
    connection.read_response(false)
}

fn proxy_v2(client: [u8; 4], port: u16) -> Vec<u8> {
    let mut bytes = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    bytes.extend([0x21, 0x11, 0, 12]);
    bytes.extend(client);
    bytes.extend([127, 0, 0, 1]);
    bytes.extend(port.to_be_bytes());
    bytes.extend(80u16.to_be_bytes());
    bytes
}

#[test]
fn the_proxy_protocol_gives_the_client_address_from_allowed_proxies_only() {
    let site = site();
    let script = site.path().join("app.wsgi");
    let server = Server::start([arg(&script), "--proxy-protocol"]);
    let v1 = get_after(&server, b"PROXY TCP4 203.0.113.9 127.0.0.1 5555 80\r\n").expect("an answer");
    assert!(v1.text().ends_with("remote=203.0.113.9"), "{}", v1.text());
    // Nothing of the request was taken with the header.
    assert!(v1.text().contains("request=GET / "), "{}", v1.text());
    let v2 = get_after(&server, &proxy_v2([198, 51, 100, 23], 4444)).expect("an answer");
    assert!(v2.text().ends_with("remote=198.51.100.23"), "{}", v2.text());
    let local = get_after(&server, b"PROXY UNKNOWN\r\n").expect("an answer");
    assert!(local.text().ends_with("remote=127.0.0.1"), "{}", local.text());
    assert!(local.text().contains("request=GET / "), "{}", local.text());
    assert!(v2.text().contains("request=GET / "), "{}", v2.text());
    // No header, or a broken one: closed unanswered; the server serves on.
    for bad in [&b""[..], b"PROXY TCP4 1.2.3.4 5.6.7.8 01 80\r\n"] {
        let answer = get_after(&server, bad);
        assert!(answer.is_err(), "{:?}", answer.map(|r| r.text()));
    }
    assert!(get_after(&server, b"PROXY TCP4 192.0.2.1 127.0.0.1 1 80\r\n")
        .expect("served on")
        .text()
        .ends_with("remote=192.0.2.1"));
    // A proxy not allowed is not believed.
    let strict = Server::start([arg(&script), "--proxy-protocol", "--proxy-allow-from", "10.0.0.0/8"]);
    assert!(get_after(&strict, b"PROXY TCP4 203.0.113.9 127.0.0.1 5555 80\r\n").is_err());
    assert!(strict.stderr().contains("not a proxy of --proxy-allow-from"), "{}", strict.stderr());
}

#[test]
fn trusted_proxy_headers_give_the_client_address_from_trusted_proxies_only() {
    let site = site();
    let script = site.path().join("app.wsgi");
    let forwarded = [("X-Forwarded-For", "203.0.113.50")];
    let trusting =
        Server::start([arg(&script), "--trust-proxy-header", "X-Forwarded-For", "--trust-proxy", "127.0.0.1"]);
    let text = trusting.request("GET", "/", &forwarded, b"").text();
    assert!(text.ends_with("remote=203.0.113.50"), "{text}");
    let elsewhere =
        Server::start([arg(&script), "--trust-proxy-header", "X-Forwarded-For", "--trust-proxy", "10.1.2.3"]);
    let text = elsewhere.request("GET", "/", &forwarded, b"").text();
    assert!(text.ends_with("remote=127.0.0.1"), "{text}");
}

/// The `ExecStart` of a unit file, its continuation lines joined, as words.
fn exec_start(unit: &str) -> Vec<String> {
    let joined = unit.replace("\\\n", " ");
    let line = joined.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("an ExecStart line");
    line.split_whitespace().map(String::from).collect()
}

#[test]
fn the_shipped_systemd_units_serve_through_socket_activation() {
    let root = tests::workspace_root().join("examples/systemd");
    let service = std::fs::read_to_string(root.join("mysite.service")).expect("the shipped service");
    let socket = std::fs::read_to_string(root.join("mysite.socket")).expect("the shipped socket");
    assert!(socket.contains("ListenStream=127.0.0.1:8001") && service.contains("Type=notify"));
    assert!(service.contains("ExecReload=/bin/kill -HUP $MAINPID"));
    // The service's command, run as systemd would run it: the socket's
    // port on a free one, the paths in a temporary site.
    let site = site();
    std::fs::create_dir(site.path().join("mysite")).expect("the package");
    site.write("mysite/__init__.py", "");
    site.write("mysite/wsgi.py", APP);
    let logs = TempDir::new("unit-logs");
    let harness = site.write("activate.py", ACTIVATE);
    let notify_path = site.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).expect("bind the notify socket");
    notify.set_read_timeout(Some(Duration::from_secs(20))).expect("a read timeout");
    let words: Vec<String> = exec_start(&service)
        .into_iter()
        .map(|word| match word.as_str() {
            "/usr/local/bin/wsgi-standalone" => standalone_binary().display().to_string(),
            "/srv/mysite" => site.path().display().to_string(),
            _ => word.replace("/var/log/mysite", &logs.path().display().to_string()),
        })
        .collect();
    let port = tests::free_port();
    let mut server = Command::new("/usr/bin/python3")
        .arg(&harness)
        .arg(port.to_string())
        .args(&words)
        .env("NOTIFY_SOCKET", &notify_path)
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(site.path().join("stderr")).expect("create stderr"))
        .spawn()
        .expect("run the harness");
    let mut message = [0u8; 256];
    let ready = notify.recv(&mut message).map(|n| String::from_utf8_lossy(&message[..n]).into_owned());
    let error_log = || std::fs::read_to_string(logs.path().join("error.log")).unwrap_or_default();
    assert!(ready.as_deref().is_ok_and(|r| r.starts_with("READY=1")), "{ready:?}\n{}", error_log());
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let response = wait_for(Duration::from_secs(20), || http_request(address, "GET", "/", &[], b"").ok());
    assert!(response.is_some_and(|r| r.status() == 200 && r.text().contains("greeting=-")), "{}", error_log());
    assert_eq!(http_request(address, "GET", "/healthz", &[], b"").expect("health").status(), 200);
    // ExecReload, then systemctl stop.
    Command::new("kill").args(["-HUP", &server.id().to_string()]).status().expect("kill runs");
    let reloaded = wait_for(Duration::from_secs(20), || error_log().contains("SIGHUP: replacing").then_some(()));
    assert!(reloaded.is_some(), "{}", error_log());
    assert!(error_log().contains("www-data") || !error_log().contains("started as root with no user"));
    Command::new("kill").args(["-TERM", &server.id().to_string()]).status().expect("kill runs");
    let stopped = wait_for(Duration::from_secs(40), || server.try_wait().expect("poll"));
    assert!(stopped.is_some_and(|s| s.success()), "{}", error_log());
    let access = std::fs::read_to_string(logs.path().join("access.log")).unwrap_or_default();
    assert!(access.contains("\"GET / HTTP/1.1\" 200"), "{access}");
}
