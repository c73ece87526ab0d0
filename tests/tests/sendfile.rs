//! `WSGIEnableSendfile`: with On, a `wsgi.file_wrapper` response leaves
//! with `sendfile(2)`, in Apache's embedded children and in daemon
//! processes; with Off (the default) the file's bytes are copied. Seen
//! with strace attached to the serving processes.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tests::apache::{Apache, ApacheOptions};
use tests::TempDir;

const FILE_SIZE: usize = 300_000;

const APP: &str = "import os\n\
def application(environ, start_response):\n\
\x20   path = os.path.join(os.path.dirname(__file__), 'payload.bin')\n\
\x20   start_response('200 OK', [('Content-Type', 'application/octet-stream')])\n\
\x20   return environ['wsgi.file_wrapper'](open(path, 'rb'))\n";

fn site() -> TempDir {
    let site = TempDir::new("sendfile");
    site.write("app.wsgi", APP);
    std::fs::write(site.path().join("payload.bin"), vec![b'x'; FILE_SIZE]).unwrap();
    site
}

/// strace following every process of `pids`, writing to `log`.
struct Trace {
    child: Child,
    log: std::path::PathBuf,
}

impl Trace {
    fn attach(pids: &[u32], log: std::path::PathBuf) -> Trace {
        let mut command = Command::new("strace");
        command.args(["-f", "-e", "trace=sendfile", "-o"]).arg(&log);
        for pid in pids {
            command.args(["-p", &pid.to_string()]);
        }
        let child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("run strace");
        // Attached once every thread shows in /proc as traced.
        let traced = |pid: &u32| {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .map(|s| s.lines().any(|l| l.starts_with("TracerPid:") && !l.ends_with("\t0")))
                .unwrap_or(true)
        };
        tests::wait_for(Duration::from_secs(10), || pids.iter().all(traced).then_some(()));
        Trace { child, log }
    }

    /// Stops tracing; the sendfile calls seen.
    fn sendfile_calls(mut self) -> usize {
        std::thread::sleep(Duration::from_millis(200));
        let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
        std::fs::read_to_string(&self.log).unwrap_or_default().lines().filter(|l| l.contains("sendfile(")).count()
    }
}

impl Drop for Trace {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends GET `path` while `pids` are traced; the sendfile calls made.
fn sendfile_calls_for(apache: &Apache, pids: &[u32], path: &str, site: &TempDir) -> usize {
    let trace = Trace::attach(pids, site.path().join(format!("strace{}", path.replace('/', "-"))));
    let response = apache.get(path);
    assert_eq!(response.status(), 200, "{}", apache.error_log());
    assert_eq!(response.body.len(), FILE_SIZE);
    trace.sendfile_calls()
}

fn config(site: &TempDir, daemon: bool) -> String {
    let dir = site.path().display();
    let group = if daemon { "process-group=files" } else { "process-group=%{GLOBAL}" };
    let mut config = String::new();
    if daemon {
        config.push_str("WSGIDaemonProcess files processes=1 threads=2\n");
    }
    config.push_str(&format!(
        "WSGIScriptAlias /on {dir}/app.wsgi {group} application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /off {dir}/app.wsgi {group} application-group=%{{GLOBAL}}\n\
         <Location /on>\n\
         \x20   WSGIEnableSendfile On\n\
         </Location>\n"
    ));
    config
}

/// The pids of the processes that serve: Apache's children, or the
/// daemon processes (`(wsgi:files)`).
fn serving_pids(apache: &Apache, daemon: bool) -> Vec<u32> {
    let children = tests::child_pids(apache.pid());
    let comm = |pid: &u32| std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if !daemon {
        return children.into_iter().filter(|pid| !comm(pid).starts_with("(wsgi:")).collect();
    }
    // Daemon processes are children of the group's manager.
    let mut daemons = Vec::new();
    for pid in children {
        daemons.extend(tests::child_pids(pid).into_iter().filter(|p| comm(p).starts_with("(wsgi:files)")));
    }
    daemons
}

fn check(daemon: bool) {
    tests::require!(tests::apache::APACHE_BINARY, "/usr/bin/strace");
    let site = site();
    let apache = Apache::start(&ApacheOptions::ours(config(&site, daemon)));
    // Load the script first, so the traced requests only send.
    assert_eq!(apache.get("/off").status(), 200, "{}", apache.error_log());
    let pids = serving_pids(&apache, daemon);
    assert!(!pids.is_empty());
    assert!(sendfile_calls_for(&apache, &pids, "/on", &site) > 0, "no sendfile with WSGIEnableSendfile On");
    assert_eq!(sendfile_calls_for(&apache, &pids, "/off", &site), 0, "sendfile with WSGIEnableSendfile Off");
}

#[test]
fn embedded_mode_sends_files_with_sendfile_only_when_enabled() {
    check(false);
}

#[test]
fn daemon_mode_sends_files_with_sendfile_only_when_enabled() {
    check(true);
}
