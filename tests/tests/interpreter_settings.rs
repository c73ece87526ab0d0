//! Settings that mod_wsgi applies to the interpreter and the daemon socket,
//! honoured by both front ends from the same configuration:
//! `WSGISwitchInterval` and `switch-interval=`, `WSGIPythonEggs` and
//! `python-eggs=`, and `listen-backlog=`, `send-buffer-size=` and
//! `receive-buffer-size=` (seen on the socket with `ss`).

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
         python-eggs={dir}/eggs-daemon send-buffer-size=65536 receive-buffer-size=32768\n\
         WSGIScriptAlias /embedded {dir}/report.wsgi process-group=%{{GLOBAL}} application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /daemon {dir}/report.wsgi process-group=tuned application-group=%{{GLOBAL}}\n"
    )
}

/// The backlog (`ss`'s Send-Q) and the buffer sizes (`rb`, `tb`: twice
/// what was asked, as the kernel keeps them) of the listening UNIX sockets
/// under `dir`.
fn sockets_under(dir: &std::path::Path) -> Vec<String> {
    let out = Command::new("ss").args(["-xlmH"]).output().expect("run ss (iproute2)");
    let text = String::from_utf8_lossy(&out.stdout);
    let prefix = dir.display().to_string();
    text.lines()
        .filter(|line| line.contains(&prefix))
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let memory = words.iter().find(|w| w.starts_with("skmem:")).copied().unwrap_or_default();
            let buffer =
                |key: &str| memory.split([',', '(', ')']).find_map(|part| part.strip_prefix(key)).unwrap_or("?");
            format!("backlog {} rb {} tb {}", words[3], buffer("rb"), buffer("tb"))
        })
        .collect()
}

const SOCKET: &str = "backlog 37 rb 65536 tb 131072";

fn expected(site: &TempDir) -> [String; 2] {
    let dir = site.path().display();
    [format!("12500 {dir}/eggs-embedded"), format!("7500 {dir}/eggs-daemon")]
}

#[test]
fn apache_applies_interpreter_and_socket_settings() {
    tests::require!(tests::apache::APACHE_BINARY, "/bin/ss");
    let site = site();
    let apache = Apache::start(&ApacheOptions::ours(config(&site)));
    let [embedded, daemon] = expected(&site);
    assert_eq!(apache.get("/embedded").text(), embedded, "{}", apache.error_log());
    assert_eq!(apache.get("/daemon").text(), daemon, "{}", apache.error_log());
    assert_eq!(sockets_under(&site.path().join("sockets")), [SOCKET]);
}

#[test]
fn standalone_applies_interpreter_and_socket_settings() {
    tests::require!("/bin/ss");
    let site = site();
    let file = site.write("site.conf", &config(&site));
    let server = Server::start(["--config".as_ref(), file.as_os_str()]);
    let [embedded, daemon] = expected(&site);
    assert_eq!(server.get("/embedded").text(), embedded, "{}", server.stderr());
    assert_eq!(server.get("/daemon").text(), daemon, "{}", server.stderr());
    assert_eq!(sockets_under(&site.path().join("sockets")), [SOCKET]);
}

const LAYERS: &str = "import os, sys\n\
def application(environ, start_response):\n\
\x20   here = os.path.dirname(__file__)\n\
\x20   paths = [os.path.relpath(p, here) for p in sys.path if p.startswith(here + '/')]\n\
\x20   try:\n\
\x20       sys.stdout.write('')\n\
\x20       stdout = 'open'\n\
\x20   except OSError:\n\
\x20       stdout = 'restricted'\n\
\x20   body = '%s %s %d' % (','.join(paths), stdout, round(sys.getswitchinterval() * 1e6))\n\
\x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
\x20   return [body.encode()]\n";

fn layers_config(site: &TempDir) -> String {
    let dir = site.path().display();
    format!(
        "WSGIPythonPath {dir}/base\n\
         WSGIRestrictStdout On\n\
         WSGIDaemonProcess pool threads=1\n\
         <WSGIInterpreterOptions>\n\
         \x20   WSGIPythonPath {dir}/everywhere\n\
         </WSGIInterpreterOptions>\n\
         <WSGIInterpreterOptions application-group=app1>\n\
         \x20   WSGIPythonPath {dir}/app1\n\
         \x20   WSGIRestrictStdout Off\n\
         </WSGIInterpreterOptions>\n\
         <WSGIInterpreterOptions process-group=pool>\n\
         \x20   WSGISwitchInterval 0.0025\n\
         </WSGIInterpreterOptions>\n\
         WSGIScriptAlias /app1 {dir}/layers.wsgi application-group=app1\n\
         WSGIScriptAlias /other {dir}/layers.wsgi application-group=other\n\
         WSGIScriptAlias /pool {dir}/layers.wsgi process-group=pool application-group=app1\n"
    )
}

/// `<WSGIInterpreterOptions>` blocks layer over the process-wide settings
/// for the interpreters they select: paths accumulate (the most specific
/// in front), the most specific scalar wins; in both front ends.
#[test]
fn interpreter_options_layer_per_interpreter() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = TempDir::new("interp-layers");
    site.write("layers.wsgi", LAYERS);
    for dir in ["base", "everywhere", "app1"] {
        std::fs::create_dir(site.path().join(dir)).unwrap();
    }
    let expected = [
        ("/app1", "app1,everywhere,base open 5000"),
        ("/other", "everywhere,base restricted 5000"),
        ("/pool", "app1,everywhere,base open 2500"),
    ];
    let apache = Apache::start(&ApacheOptions::ours(layers_config(&site)));
    for (path, answer) in expected {
        assert_eq!(apache.get(path).text(), answer, "{path}\n{}", apache.error_log());
    }
    drop(apache);
    let file = site.write("site.conf", &layers_config(&site));
    let server = Server::start(["--config".as_ref(), file.as_os_str()]);
    for (path, answer) in expected {
        assert_eq!(server.get(path).text(), answer, "{path}\n{}", server.stderr());
    }
}
