//! The scale-out recipes of docs/deploy.md, run: three standalone servers
//! behind HAProxy (health checks on `--health-path`, the client address
//! through the PROXY protocol) or nginx (retries, X-Forwarded-For) on
//! loopback, under wrk's load, while
//! the servers are restarted one by one (SIGTERM, then started again: a
//! rolling deploy) and then reloaded one by one (SIGHUP). The client must
//! see no failed request.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tests::{free_port, standalone_binary, wait_for, TempDir};

const APP: &str = r#"
import os

def application(environ, start_response):
    body = ('served by %d for %s\n' % (os.getpid(), environ['REMOTE_ADDR'])).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
"#;

/// docs/deploy.md's HAProxy configuration, on the ports of this test.
fn haproxy_config(front: u16, backends: &[u16], dir: &Path) -> String {
    let servers: String =
        backends.iter().enumerate().map(|(n, port)| format!("    server app{n} 127.0.0.1:{port}\n")).collect();
    format!(
        "global\n    maxconn 2048\n    pidfile {dir}/haproxy.pid\n    log stderr format raw local0\n\n\
         defaults\n    mode http\n    log global\n    option httplog\n    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n\
         \x20   retries 3\n    option redispatch 1\n    retry-on all-retryable-errors\n\n\
         frontend web\n    bind 127.0.0.1:{front}\n    default_backend app\n\n\
         backend app\n    balance roundrobin\n    option httpchk GET /healthz\n    http-check expect status 200\n\
         \x20   default-server check inter 200ms fall 1 rise 2 send-proxy-v2 check-send-proxy\n{servers}",
        dir = dir.display()
    )
}

/// docs/deploy.md's nginx configuration, on the ports of this test.
fn nginx_config(front: u16, backends: &[u16], dir: &Path) -> String {
    let servers: String =
        backends.iter().map(|port| format!("        server 127.0.0.1:{port} max_fails=0;\n")).collect();
    let dir = dir.display();
    format!(
        "user root;\nworker_processes 1;\npid {dir}/nginx.pid;\nerror_log stderr;\ndaemon off;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n    access_log off;\n\
         \x20   client_body_temp_path {dir}/body;\n    proxy_temp_path {dir}/proxy;\n\
         \x20   fastcgi_temp_path {dir}/fastcgi;\n    uwsgi_temp_path {dir}/uwsgi;\n    scgi_temp_path {dir}/scgi;\n\
         \x20   upstream app {{\n{servers}        keepalive 32;\n    }}\n\
         \x20   server {{\n        listen 127.0.0.1:{front};\n        location / {{\n\
         \x20           proxy_pass http://app;\n            proxy_http_version 1.1;\n\
         \x20           proxy_set_header Connection \"\";\n            proxy_set_header Host $host;\n\
         \x20           proxy_set_header X-Forwarded-For $remote_addr;\n\
         \x20           proxy_next_upstream error timeout;\n        }}\n    }}\n}}\n"
    )
}

/// The balancers of docs/deploy.md, and how each wants the instances.
#[derive(Clone, Copy, Debug)]
enum Balancer {
    /// Health checks on --health-path, the client through PROXY v2.
    Haproxy,
    /// Retries on refused connections, the client in X-Forwarded-For.
    Nginx,
}

impl Balancer {
    /// The instances' options for this balancer, as docs/deploy.md gives
    /// them.
    fn instance_args(self) -> &'static [&'static str] {
        match self {
            Balancer::Haproxy => &["--proxy-protocol", "--health-path", "/healthz", "--drain-delay", "2"],
            Balancer::Nginx => &["--trust-proxy-header", "X-Forwarded-For", "--trust-proxy", "127.0.0.1"],
        }
    }

    /// A request that says the instance serves, as the balancer sends it.
    fn probe(self) -> &'static [u8] {
        match self {
            Balancer::Haproxy => b"PROXY UNKNOWN\r\nGET /healthz HTTP/1.0\r\n\r\n",
            Balancer::Nginx => b"GET / HTTP/1.0\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n",
        }
    }

    /// Starts the balancer in the foreground in `dir`, its log in
    /// `dir/balancer.log`.
    fn start(self, front: u16, backends: &[u16], dir: &TempDir) -> Balancing {
        let log = std::fs::File::create(dir.path().join("balancer.log")).expect("create the log");
        let child = match self {
            Balancer::Haproxy => {
                let config = dir.write("haproxy.cfg", &haproxy_config(front, backends, dir.path()));
                Command::new("haproxy").args(["-db", "-f", config.to_str().expect("UTF-8")]).stderr(log).spawn()
            }
            Balancer::Nginx => {
                let config = dir.write("nginx.conf", &nginx_config(front, backends, dir.path()));
                Command::new("nginx").args(["-c", config.to_str().expect("UTF-8")]).stderr(log).spawn()
            }
        };
        Balancing(child.unwrap_or_else(|e| panic!("{self:?} runs (its Debian package): {e}")))
    }
}

/// One instance: `wsgi-standalone start-server` on `port`, as
/// docs/deploy.md starts it.
struct Instance {
    port: u16,
    child: Child,
}

impl Instance {
    fn start(script: &Path, port: u16, balancer: Balancer, log: &Path) -> Instance {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("open the log");
        let child = Command::new(standalone_binary())
            .args(["start-server", script.to_str().expect("UTF-8"), "--port", &port.to_string()])
            .args(["--processes", "2", "--threads", "4"])
            .args(balancer.instance_args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn wsgi-standalone");
        let instance = Instance { port, child };
        assert!(instance.wait_serving(balancer), "instance on {port} never served");
        instance
    }

    /// Whether the instance answers the balancer's probe within 20 s.
    fn wait_serving(&self, balancer: Balancer) -> bool {
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        wait_for(Duration::from_secs(20), || {
            let mut connection = tests::HttpConnection::try_open(address).ok()?;
            connection.send(balancer.probe()).ok()?;
            (connection.read_response(false).ok()?.status() == 200).then_some(())
        })
        .is_some()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill").args([&format!("-{name}"), &self.child.id().to_string()]).status();
        assert!(status.expect("kill runs").success());
    }

    fn stop(mut self) {
        self.signal("TERM");
        let exited = wait_for(Duration::from_secs(30), || self.child.try_wait().expect("poll the instance"));
        assert!(exited.is_some_and(|s| s.success()), "instance on {} did not stop cleanly", self.port);
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A balancer in the foreground, stopped on drop (SIGTERM: nginx's
/// master stops its workers then, where SIGKILL would leave them).
struct Balancing(Child);

impl Drop for Balancing {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        if wait_for(Duration::from_secs(10), || self.0.try_wait().ok().flatten()).is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// What wrk counted.
#[derive(Debug)]
struct WrkCount {
    requests: u64,
    failed: u64,
    summary: String,
}

/// Runs wrk against `port` for `seconds` on another thread, while `act`
/// runs here.
fn under_load(port: u16, seconds: u64, act: impl FnOnce()) -> WrkCount {
    let wrk = std::thread::spawn(move || {
        Command::new("wrk")
            .args(["-t2", "-c16", "--timeout", "10s", &format!("-d{seconds}s"), &format!("http://127.0.0.1:{port}/")])
            .output()
            .expect("wrk runs (Debian package wrk)")
    });
    std::thread::sleep(Duration::from_secs(1));
    act();
    let output = wrk.join().expect("the wrk thread");
    let summary = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "wrk failed: {summary}{}", String::from_utf8_lossy(&output.stderr));
    let number_after = |label: &str| -> u64 {
        summary
            .split(label)
            .nth(1)
            .and_then(|rest| rest.trim_start().split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let requests = summary
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("wrk's request count");
    let failed = ["connect ", "read ", "write ", "timeout ", "Non-2xx or 3xx responses:"]
        .iter()
        .map(|label| number_after(label))
        .sum();
    WrkCount { requests, failed, summary }
}

/// Three instances behind `balancer` under wrk's load: restarted one by
/// one, then reloaded one by one; panics unless no request failed.
fn rolling_restart_and_reload(balancer: Balancer) {
    // One recipe at a time: each loads the machine as much as it can.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = TempDir::new("scale-out");
    let script = dir.write("app.wsgi", APP);
    let log = dir.path().join("instances.log");
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut instances: Vec<Option<Instance>> =
        ports.iter().map(|&port| Some(Instance::start(&script, port, balancer, &log))).collect();
    let front = free_port();
    let balancing = balancer.start(front, &ports, &dir);
    let through = wait_for(Duration::from_secs(20), || {
        let response =
            tests::http_request(std::net::SocketAddr::from(([127, 0, 0, 1], front)), "GET", "/", &[], b"").ok()?;
        (response.status() == 200).then(|| response.text())
    })
    .unwrap_or_else(|| panic!("{balancer:?} does not serve: {}", read(&dir.path().join("balancer.log"))));
    // The client's address came through the PROXY protocol, or the
    // trusted X-Forwarded-For.
    assert!(through.ends_with("for 127.0.0.1\n"), "{through}");

    let rolling = under_load(front, 22, || {
        for slot in instances.iter_mut() {
            let instance = slot.take().expect("running");
            let port = instance.port;
            instance.stop();
            *slot = Some(Instance::start(&script, port, balancer, &log));
            // HAProxy takes it back after two good checks.
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let reloads = under_load(front, 12, || {
        for instance in instances.iter().flatten() {
            instance.signal("HUP");
            std::thread::sleep(Duration::from_secs(3));
        }
    });
    eprintln!("{balancer:?}: rolling restart: {} requests, {} failed", rolling.requests, rolling.failed);
    eprintln!("{balancer:?}: SIGHUP reloads: {} requests, {} failed", reloads.requests, reloads.failed);
    let logs = format!(
        "{}\n--- {balancer:?}, unusual requests ---\n{}",
        read(&log),
        unusual_lines(&read(&dir.path().join("balancer.log")))
    );
    assert_eq!(rolling.failed, 0, "{}\n{logs}", rolling.summary);
    assert_eq!(reloads.failed, 0, "{}\n{logs}", reloads.summary);
    assert!(rolling.requests > 1000 && reloads.requests > 1000, "{rolling:?} {reloads:?}");
    drop(balancing);
    for instance in instances.into_iter().flatten() {
        instance.stop();
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// HAProxy's lines of slow or retried requests (timers TR/Tw/Tc/Tr/Ta
/// beyond a second, or a termination state), or nginx's error lines.
fn unusual_lines(log: &str) -> String {
    let unusual: Vec<&str> = log
        .lines()
        .filter(|line| {
            let slow = line.split_whitespace().any(|field| {
                let numbers: Vec<i64> =
                    field.split('/').filter_map(|n| n.trim_start_matches('+').parse().ok()).collect();
                numbers.len() == 5 && numbers.iter().any(|n| !(0..1000).contains(n))
            });
            slow || !line.contains(" ---- ")
        })
        .take(40)
        .collect();
    unusual.join("\n")
}

#[test]
fn rolling_restarts_and_reloads_behind_haproxy_fail_no_request() {
    rolling_restart_and_reload(Balancer::Haproxy);
}

#[test]
fn rolling_restarts_and_reloads_behind_nginx_fail_no_request() {
    rolling_restart_and_reload(Balancer::Nginx);
}
