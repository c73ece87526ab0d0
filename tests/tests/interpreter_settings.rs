//! Settings that mod_wsgi applies to the interpreter and the daemon socket,
//! honoured by both front ends from the same configuration:
//! `WSGISwitchInterval` and `switch-interval=`, `WSGIPythonEggs` and
//! `python-eggs=`, and `listen-backlog=` (seen on the socket with `ss`).

use std::process::Command;

use tests::apache::{Apache, ApacheOptions};
use tests::{Server, TempDir};

const REPORT: &str = "import os, sys\n\
def application(environ, start_response):\n\
\x20   body = '%d %s' % (round(sys.getswitchinterval() * 1e6), os.environ.get('PYTHON_EGG_CACHE'))\n\
\x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
\x20   return [body.encode()]\n";

fn site() -> TempDir {
    let site = TempDir::new("interp-settings");
    site.write("report.wsgi", REPORT);
    std::fs::create_dir(site.path().join("sockets")).unwrap();
    site
}

fn config(site: &TempDir) -> String {
    let dir = site.path().display();
    format!(
        "WSGISocketPrefix {dir}/sockets/wsgi\n\
         WSGISwitchInterval 0.0125\n\
         WSGIPythonEggs {dir}/eggs-embedded\n\
         WSGIDaemonProcess tuned processes=1 threads=2 listen-backlog=37 switch-interval=0.0075 \
         python-eggs={dir}/eggs-daemon\n\
         WSGIScriptAlias /embedded {dir}/report.wsgi process-group=%{{GLOBAL}} application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /daemon {dir}/report.wsgi process-group=tuned application-group=%{{GLOBAL}}\n"
    )
}

/// The backlog (`ss`'s Send-Q) of the listening UNIX sockets under `dir`.
fn backlogs_under(dir: &std::path::Path) -> Vec<String> {
    let out = Command::new("ss").args(["-xlH"]).output().expect("run ss (iproute2)");
    let text = String::from_utf8_lossy(&out.stdout);
    let prefix = dir.display().to_string();
    text.lines()
        .filter(|line| line.contains(&prefix))
        .filter_map(|line| line.split_whitespace().nth(3).map(String::from))
        .collect()
}

fn expected(site: &TempDir) -> [String; 2] {
    let dir = site.path().display();
    [format!("12500 {dir}/eggs-embedded"), format!("7500 {dir}/eggs-daemon")]
}

#[test]
fn apache_applies_switch_interval_eggs_and_backlog() {
    tests::require!(tests::apache::APACHE_BINARY, "/bin/ss");
    let site = site();
    let apache = Apache::start(&ApacheOptions::ours(config(&site)));
    let [embedded, daemon] = expected(&site);
    assert_eq!(apache.get("/embedded").text(), embedded, "{}", apache.error_log());
    assert_eq!(apache.get("/daemon").text(), daemon, "{}", apache.error_log());
    assert_eq!(backlogs_under(&site.path().join("sockets")), ["37"]);
}

#[test]
fn standalone_applies_switch_interval_eggs_and_backlog() {
    tests::require!("/bin/ss");
    let site = site();
    let file = site.write("site.conf", &config(&site));
    let server = Server::start(["--config".as_ref(), file.as_os_str()]);
    let [embedded, daemon] = expected(&site);
    assert_eq!(server.get("/embedded").text(), embedded, "{}", server.stderr());
    assert_eq!(server.get("/daemon").text(), daemon, "{}", server.stderr());
    assert_eq!(backlogs_under(&site.path().join("sockets")), ["37"]);
}
