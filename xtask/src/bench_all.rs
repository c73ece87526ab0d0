//! `cargo xtask bench --all`: every server side by side in one table, with
//! the same application file, the same cases and two wrk loads: our
//! standalone server (embedded and `--daemon`), Apache with our module and
//! with Debian's mod_wsgi 4 (embedded and daemon mode), mod_wsgi-express
//! from PyPI (daemon and embedded mode), granian (with `--blocking-threads`
//! and with its defaults) and gunicorn (gthread).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::bench::{descendants, exchange, free_port, median, run_wrk, Case, Load, Over, Proc, Result};
use crate::bench_apache::{
    apache_version, mpm_settings, running_with, signal, Apache, TempDir, APACHE, MODULES_DIR, REFERENCE_MODULE,
};

/// The application every server runs: one WSGI script dispatching on
/// PATH_INFO to a Flask application, a Django project, and two plain WSGI
/// handlers. `%SITE%` is replaced by the directory it lives in (a module
/// name and `__file__` differ from server to server).
const APP: &str = r#"
import sys
from urllib.parse import parse_qs

SITE = '%SITE%'
# Flask and Django are Debian's (python3-flask, python3-django); the venvs
# of granian, gunicorn and mod_wsgi-express find them here, after their own.
if '/usr/lib/python3/dist-packages' not in sys.path:
    sys.path.append('/usr/lib/python3/dist-packages')

from flask import Flask, jsonify

flask_app = Flask('bench_flask', root_path=SITE)

@flask_app.route('/api/users/<int:user_id>/items/<name>')
def item(user_id, name):
    return jsonify(user_id=user_id, name=name, quantity=3, price=9.99, tags=['red', 'small'])

import types
import django
from django.conf import settings
from django.shortcuts import render
from django.urls import path

def django_view(request):
    items = [{'id': i, 'name': 'item %d' % i, 'price': i * 1.5} for i in range(20)]
    return render(request, 'page.html', {'title': 'Items', 'items': items})

# The URLconf as a module object: the script's own module name differs
# from server to server, and is not always importable.
urls = types.ModuleType('bench_urls')
urls.urlpatterns = [path('django', django_view)]

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=['*'],
    ROOT_URLCONF=urls,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    SECRET_KEY='bench-all-not-secret',
    TEMPLATES=[{
        'BACKEND': 'django.template.backends.django.DjangoTemplates',
        'DIRS': [SITE + '/templates'],
        'APP_DIRS': False,
        'OPTIONS': {'context_processors': []},
    }],
)
django.setup()

from django.core.wsgi import get_wsgi_application

django_app = get_wsgi_application()

HELLO = b'Hello world!'

def form(environ, start_response):
    length = int(environ.get('CONTENT_LENGTH') or 0)
    data = environ['wsgi.input'].read(length)
    fields = parse_qs(data.decode('ascii'))
    body = ('form ok: %d fields, %d bytes' % (len(fields), len(data))).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]

def application(environ, start_response):
    path = environ.get('PATH_INFO', '/')
    if path.startswith('/api/'):
        return flask_app(environ, start_response)
    if path == '/django':
        return django_app(environ, start_response)
    if path == '/form':
        return form(environ, start_response)
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(HELLO)))])
    return [HELLO]
"#;

/// The Django template: a loop over 20 items.
const TEMPLATE: &str = r#"<!DOCTYPE html>
<html><head><title>{{ title }}</title></head>
<body>
<h1>{{ title }}</h1>
<ul>
{% for item in items %}  <li id="item-{{ item.id }}">{{ item.name }}: {{ item.price|floatformat:2 }}</li>
{% endfor %}</ul>
</body></html>
"#;

const STATIC_SIZE: usize = 100 * 1024;

/// The cases, in table order (see [`expect`] for what each must answer).
const CASES: [Case; 5] = [
    Case { name: "hello world (12 B)", path: "/hello", script: None, over: Over::Http },
    Case { name: "Flask JSON API", path: "/api/users/42/items/widget", script: None, over: Over::Http },
    Case { name: "Django template (20 items)", path: "/django", script: None, over: Over::Http },
    Case { name: "static file (100 KB)", path: "/static/file.bin", script: None, over: Over::Http },
    Case { name: "64 KB form POST", path: "/form", script: Some("form.lua"), over: Over::Http },
];
const STATIC_CASE: usize = 3;
const FORM_CASE: usize = 4;

/// The two wrk loads: (threads, connections).
const LOADS: [(u32, u32); 2] = [(1, 32), (2, 50)];

/// The 64 KB urlencoded body of the form case: 64 fields of 1 KB each.
fn form_body() -> String {
    let mut body: String = (0..64).map(|i| format!("f{i:02}={}&", "v".repeat(1019))).collect();
    body.truncate(64 * 1024);
    body
}

fn static_body() -> Vec<u8> {
    (0..STATIC_SIZE).map(|i| b'a' + (i % 26) as u8).collect()
}

/// Sends the request of case `index` and checks the answer: 200 with the
/// expected body.
fn expect(port: u16, index: usize) -> std::result::Result<(), String> {
    let case = &CASES[index];
    let request = if index == FORM_CASE {
        let body = form_body();
        format!(
            "POST {} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\n\r\n{body}",
            case.path,
            body.len()
        )
    } else {
        format!("GET {} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", case.path)
    };
    let (status, body) = exchange(port, request.as_bytes(), Duration::from_secs(30))?;
    let text = String::from_utf8_lossy(&body);
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let ok = status == 200
        && match index {
            0 => body == b"Hello world!",
            1 => compact.contains("\"user_id\":42") && compact.contains("\"name\":\"widget\""),
            2 => text.matches("<li id=\"item-").count() == 20 && text.contains("item 19: 28.50"),
            STATIC_CASE => body == static_body(),
            _ => text == "form ok: 64 fields, 65536 bytes",
        };
    if ok {
        Ok(())
    } else {
        let mut shown: String = text.chars().take(120).collect();
        if text.chars().count() > 120 {
            shown.push_str("...");
        }
        Err(format!("{} {} answered {status} '{shown}' ({} bytes)", request_method(index), case.path, body.len()))
    }
}

fn request_method(index: usize) -> &'static str {
    if index == FORM_CASE {
        "POST"
    } else {
        "GET"
    }
}

/// One server set-up (a row of the table for every case and load).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Standalone { daemon: bool },
    ApacheModule { ours: bool, daemon: bool },
    Express { embedded: bool },
    Granian { blocking_threads: bool },
    Gunicorn,
}

impl Kind {
    const ALL: [Kind; 11] = [
        Kind::Standalone { daemon: false },
        Kind::Standalone { daemon: true },
        Kind::ApacheModule { ours: true, daemon: false },
        Kind::ApacheModule { ours: true, daemon: true },
        Kind::ApacheModule { ours: false, daemon: false },
        Kind::ApacheModule { ours: false, daemon: true },
        Kind::Express { embedded: false },
        Kind::Express { embedded: true },
        Kind::Granian { blocking_threads: true },
        Kind::Granian { blocking_threads: false },
        Kind::Gunicorn,
    ];

    fn name(self, threads: u32) -> String {
        match self {
            Kind::Standalone { daemon: false } => "ours: standalone embedded".into(),
            Kind::Standalone { daemon: true } => "ours: standalone --daemon".into(),
            Kind::ApacheModule { ours: true, daemon: false } => "ours: Apache + mod_wsgi-rs embedded".into(),
            Kind::ApacheModule { ours: true, daemon: true } => "ours: Apache + mod_wsgi-rs daemon".into(),
            Kind::ApacheModule { ours: false, daemon: false } => "Apache + mod_wsgi 4 (Debian) embedded".into(),
            Kind::ApacheModule { ours: false, daemon: true } => "Apache + mod_wsgi 4 (Debian) daemon".into(),
            Kind::Express { embedded: false } => "mod_wsgi-express daemon".into(),
            Kind::Express { embedded: true } => "mod_wsgi-express --embedded-mode".into(),
            Kind::Granian { blocking_threads: true } => format!("granian --blocking-threads {threads}"),
            Kind::Granian { blocking_threads: false } => "granian (defaults)".into(),
            Kind::Gunicorn => "gunicorn gthread".into(),
        }
    }

    fn ours(self) -> bool {
        matches!(self, Kind::Standalone { .. } | Kind::ApacheModule { ours: true, .. })
    }

    /// Why this server has no row for `case`, if it has none.
    fn not_applicable(self, case: usize) -> Option<&'static str> {
        (case == STATIC_CASE && self == Kind::Gunicorn).then_some("n/a: gunicorn serves no static files")
    }
}

/// Everything the servers are started from.
struct Env {
    /// The application, its template, the static file and the wrk script,
    /// world-readable (Apache's and mod_wsgi-express's children run as
    /// www-data).
    site: TempDir,
    standalone: PathBuf,
    our_module: PathBuf,
    /// The venv with granian and gunicorn, or why it could not be made.
    venv: std::result::Result<PathBuf, String>,
    /// mod_wsgi-express, or why it could not be installed.
    express: std::result::Result<PathBuf, String>,
    threads: u32,
}

impl Env {
    /// Why `kind` cannot run at all, if it cannot.
    fn unavailable(&self, kind: Kind) -> Option<String> {
        match kind {
            Kind::Express { .. } => self.express.as_ref().err().map(|e| format!("not installed: {e}")),
            Kind::Granian { .. } | Kind::Gunicorn => self.venv.as_ref().err().map(|e| format!("not installed: {e}")),
            Kind::ApacheModule { ours: false, .. } => (!Path::new(REFERENCE_MODULE).exists())
                .then(|| format!("not installed: {REFERENCE_MODULE} (libapache2-mod-wsgi-py3)")),
            _ => None,
        }
    }
}

/// A running server, stopped on drop.
enum Running {
    Apache(Apache),
    /// A process in a process group of its own, with a directory for its
    /// output (and mod_wsgi-express's server root), whose path names every
    /// process of it that keeps its command line.
    Child {
        child: Child,
        run_dir: TempDir,
        port: u16,
    },
}

impl Running {
    fn port(&self) -> u16 {
        match self {
            Running::Apache(apache) => apache.port(),
            Running::Child { port, .. } => *port,
        }
    }

    fn pid(&self) -> u32 {
        match self {
            Running::Apache(apache) => apache.pid(),
            Running::Child { child, .. } => child.id(),
        }
    }

    fn exited(&mut self) -> Option<String> {
        match self {
            Running::Apache(_) => None,
            Running::Child { child, .. } => child.try_wait().ok().flatten().map(|s| format!("exited with {s}")),
        }
    }

    /// The last lines the server logged (for a failure's reason).
    fn logs(&self) -> String {
        let text = match self {
            Running::Apache(apache) => apache.logs(),
            Running::Child { run_dir, .. } => {
                let mut text = std::fs::read_to_string(run_dir.0.join("output.log")).unwrap_or_default();
                text.push_str(&std::fs::read_to_string(run_dir.0.join("error_log")).unwrap_or_default());
                text
            }
        };
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with("---")).collect();
        lines[lines.len().saturating_sub(3)..].join(" / ")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Running::Child { child, run_dir, .. } = self {
            stop_tree(child, &run_dir.0.display().to_string());
        }
    }
}

/// SIGTERM and up to 15 s; then SIGKILL to the process group. Every
/// process of the tree as it was before (mod_wsgi's daemon processes
/// rename themselves, and may leave the group) and every process whose
/// command line names `marker` gets up to 10 s more before it is killed.
fn stop_tree(child: &mut Child, marker: &str) {
    let pid = child.id();
    let tree: Vec<Proc> = descendants(pid);
    if child.try_wait().ok().flatten().is_none() {
        signal("-TERM", &pid.to_string());
        let deadline = Instant::now() + Duration::from_secs(15);
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    signal("-KILL", &format!("-{pid}"));
    let _ = child.kill();
    let _ = child.wait();
    let left = || -> Vec<u32> {
        let mut left: Vec<u32> = tree.iter().filter(|p| p.running()).map(|p| p.pid).collect();
        left.extend(running_with(marker).into_iter().filter(|p| !left.contains(p)).collect::<Vec<_>>());
        left
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !left().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    for pid in left() {
        eprintln!("xtask: process {pid} of {marker} still running 10 s after its server stopped: killed");
        signal("-KILL", &pid.to_string());
    }
}

/// The prefix of the run directories of this bench's child servers.
fn run_dir_prefix() -> String {
    format!("bench-all-run-{}-", std::process::id())
}

/// Starts `kind` for `connections` wrk connections (Apache's threads per
/// child) and waits until it answers GET /hello with 200.
fn start(kind: Kind, env: &Env, connections: u32) -> std::result::Result<Running, String> {
    let site = env.site.0.display().to_string();
    let threads = env.threads.to_string();
    let mut running = match kind {
        Kind::ApacheModule { ours, daemon } => {
            let module = if ours { env.our_module.display().to_string() } else { REFERENCE_MODULE.to_string() };
            let mut config = mpm_settings(2, connections.max(25));
            // The same text for both modules: the static files through
            // mod_alias (which translates before mod_wsgi does), the
            // application in the main interpreter, as mod_wsgi-express
            // and every other server run it.
            config.push_str(&format!(
                "LoadModule alias_module {MODULES_DIR}/mod_alias.so\n\
                 Alias /static {site}/static\n\
                 LoadModule wsgi_module {module}\n"
            ));
            if daemon {
                config.push_str(&format!(
                    "WSGISocketPrefix %RUN%/wsgi\n\
                     WSGIDaemonProcess bench processes=1 threads={threads}\n\
                     WSGIScriptAlias / {site}/app.py process-group=bench application-group=%{{GLOBAL}}\n"
                ));
            } else {
                config.push_str(&format!(
                    "WSGIApplicationGroup %{{GLOBAL}}\n\
                     WSGIScriptAlias / {site}/app.py\n"
                ));
            }
            Running::Apache(Apache::start_with(&env.site.0, &config)?)
        }
        _ => {
            let port = free_port().map_err(|e| e.to_string())?;
            let run_dir = TempDir::new("bench-all-run")?;
            let mut command = command(kind, env, port, &run_dir.0)?;
            let output = std::fs::File::create(run_dir.0.join("output.log")).map_err(|e| e.to_string())?;
            let error = output.try_clone().map_err(|e| e.to_string())?;
            let child = command
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(output)
                .stderr(error)
                .spawn()
                .map_err(|e| format!("cannot start {:?}: {e}", command.get_program()))?;
            Running::Child { child, run_dir, port }
        }
    };
    // Until the first 200: daemon processes start after the port opens.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(exit) = running.exited() {
            return Err(format!("{exit}: {}", running.logs()));
        }
        let answer =
            exchange(running.port(), b"GET /hello HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", Duration::from_secs(30));
        match answer {
            Ok((200, _)) => return Ok(running),
            _ if Instant::now() > deadline => {
                let said = match answer {
                    Ok((status, _)) => format!("answered {status}"),
                    Err(e) => e,
                };
                return Err(format!("GET /hello: {said} 60 s after start: {}", running.logs()));
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The command line of a server that is not Apache started by us.
fn command(kind: Kind, env: &Env, port: u16, run_dir: &Path) -> std::result::Result<Command, String> {
    let site = &env.site.0;
    let (threads, port) = (env.threads.to_string(), port.to_string());
    let static_dir = site.join("static");
    let mut c;
    match kind {
        Kind::Standalone { daemon } => {
            c = Command::new(&env.standalone);
            c.arg("start-server").arg(site.join("app.py")).args(["--port", &port, "--threads", &threads]);
            c.args(["--log-level", "warn", "--url-alias", "/static"]).arg(&static_dir);
            if daemon {
                c.args(["--daemon", "--processes", "1"]);
            }
        }
        Kind::Express { embedded } => {
            c = Command::new(env.express.as_ref()?);
            c.arg("start-server").arg(site.join("app.py"));
            c.args(["--port", &port, "--host", "127.0.0.1", "--user", "www-data", "--group", "www-data"]);
            c.args(["--threads", &threads, "--processes", "1", "--log-level", "warn"]);
            c.arg("--server-root").arg(run_dir).args(["--url-alias", "/static"]).arg(&static_dir);
            if embedded {
                c.arg("--embedded-mode");
            }
        }
        Kind::Granian { blocking_threads } => {
            c = Command::new(env.venv.as_ref()?.join("granian"));
            c.current_dir(site).args(["--interface", "wsgi", "--host", "127.0.0.1", "--port", &port]);
            c.args(["--workers", "1", "--no-ws"]);
            if blocking_threads {
                c.args(["--blocking-threads", &threads]);
            }
            c.args(["--static-path-route", "/static", "--static-path-mount"]).arg(&static_dir);
            c.arg("app:application");
        }
        Kind::Gunicorn => {
            c = Command::new(env.venv.as_ref()?.join("gunicorn"));
            c.current_dir(site).args(["--worker-class", "gthread", "--workers", "1", "--threads", &threads]);
            c.args(["--bind", &format!("127.0.0.1:{port}"), "--log-level", "warning", "app:application"]);
        }
        Kind::ApacheModule { .. } => unreachable!("Apache is started by Apache::start_with"),
    }
    Ok(c)
}

/// Starts `kind` once and checks every case; the reason each case fails,
/// if it does (every case fails alike when the server does not start).
fn check_server(kind: Kind, env: &Env) -> Vec<Option<String>> {
    match start(kind, env, LOADS[1].1) {
        Err(e) => vec![Some(one_line(&format!("does not start: {e}"))); CASES.len()],
        Ok(running) => (0..CASES.len())
            .map(|i| {
                if kind.not_applicable(i).is_some() {
                    return None;
                }
                expect(running.port(), i).err().map(|e| one_line(&format!("{e}: {}", running.logs())))
            })
            .collect(),
    }
}

/// `text` on one line, short enough for a table cell, without `|`.
fn one_line(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "/");
    if flat.chars().count() > 300 {
        let mut short: String = flat.chars().take(300).collect();
        short.push_str("...");
        short
    } else {
        flat
    }
}

/// Starts `kind`, warms it up with the case's load for a second (every
/// thread imports what it needs), measures and stops it.
fn measure(kind: Kind, env: &Env, case: &Case, load: &Load) -> std::result::Result<Result, String> {
    let running = start(kind, env, load.connections)?;
    let warm_up = Load { duration_secs: 1, ..*load };
    let _ = run_wrk(running.port(), case, &warm_up, &env.site.0, running.pid());
    run_wrk(running.port(), case, load, &env.site.0, running.pid()).map_err(|e| one_line(&e))
}

/// Installs mod_wsgi (mod_wsgi-express) from PyPI into a venv of Debian's
/// Python under target/ if missing; it builds against apache2-dev.
fn ensure_express(root: &Path) -> std::result::Result<PathBuf, String> {
    let venv = crate::target_dir(root).join("bench-express-venv");
    let express = venv.join("bin/mod_wsgi-express");
    if express.exists() {
        return Ok(express);
    }
    crate::run(Command::new("/usr/bin/python3").args(["-m", "venv"]).arg(&venv))?;
    crate::run(Command::new(venv.join("bin/pip")).args(["install", "--quiet", "mod_wsgi"]))
        .map_err(|e| format!("pip install mod_wsgi (needs apache2-dev): {e}"))?;
    Ok(express)
}

/// The version of `package` in the Python of `python`, or `?`.
fn python_package_version(python: &Path, package: &str) -> String {
    Command::new(python)
        .args(["-c", &format!("from importlib.metadata import version; print(version('{package}'))")])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_else(|| "?".to_string())
}

fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_else(|_| "?".to_string())
}

/// One table cell group: the runs of a server for a case and a load.
#[derive(Default)]
struct Cell {
    runs: Vec<Result>,
    failures: Vec<String>,
}

pub fn bench(root: &Path, duration_secs: u64, rounds: u32, threads: u32) -> std::result::Result<(), String> {
    if !Path::new(APACHE).exists() {
        return Err(format!("{APACHE} is missing (install apache2)"));
    }
    crate::cargo(root, &["build", "--release", "--package", "wsgi-standalone"], &[])?;
    crate::cargo(root, &["build", "--release", "--package", "wsgi-apache", "--lib"], &[])?;
    let target = crate::target_dir(root);
    let venv = crate::bench::ensure_venv(root);
    let express = ensure_express(root);
    if let Err(e) = &venv {
        eprintln!("xtask: granian and gunicorn: {e}");
    }
    if let Err(e) = &express {
        eprintln!("xtask: mod_wsgi-express: {e}");
    }

    let site = TempDir::new("bench-all-site")?;
    site.write("app.py", APP.replace("%SITE%", &site.0.display().to_string()).as_bytes())?;
    site.sub_dir("templates")?;
    site.write("templates/page.html", TEMPLATE.as_bytes())?;
    site.sub_dir("static")?;
    site.write("static/file.bin", &static_body())?;
    let lua = format!(
        "wrk.method = \"POST\"\nwrk.body = \"{}\"\nwrk.headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"\n",
        form_body()
    );
    site.write("form.lua", lua.as_bytes())?;
    let env = Env {
        site,
        standalone: target.join("release/wsgi-standalone"),
        our_module: target.join("release/libmod_wsgi.so"),
        venv,
        express,
        threads,
    };

    // The header: the machine, the date, the loads and the versions.
    let python3 = Path::new("/usr/bin/python3");
    let venv_python = env.venv.as_ref().map(|bin| bin.join("python")).unwrap_or_default();
    let express_python = env.express.as_ref().map(|e| e.with_file_name("python")).unwrap_or_default();
    let installed = |r: &std::result::Result<PathBuf, String>, python: &Path, package: &str| match r {
        Ok(_) => python_package_version(python, package),
        Err(_) => "not installed".to_string(),
    };
    println!(
        "machine: {} cores, Linux {}; date: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        command_output("uname", &["-r"]),
        command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
    );
    println!(
        "versions: Apache {} (mpm_event); mod_wsgi (Debian) {}; mod_wsgi-express {}; granian {}; gunicorn {}; \
         Python {}; Flask {}; Django {}; mod_wsgi-rs {}",
        apache_version(),
        command_output("dpkg-query", &["-W", "-f=${Version}", "libapache2-mod-wsgi-py3"]),
        installed(&env.express, &express_python, "mod_wsgi"),
        installed(&env.venv, &venv_python, "granian"),
        installed(&env.venv, &venv_python, "gunicorn"),
        command_output("/usr/bin/python3", &["-c", "import platform; print(platform.python_version())"]),
        python_package_version(python3, "flask"),
        python_package_version(python3, "django"),
        command_output("git", &["-C", &root.display().to_string(), "describe", "--always", "--dirty"]),
    );
    println!(
        "wrk loads: {} on loopback, -d{duration_secs}s each after a 1 s warm-up, every server started afresh \
         for each run; each row: the median (by requests/s) of {rounds} round(s) taken in turn with the other servers",
        LOADS.map(|(t, c)| format!("-t{t} -c{c}")).join(" and ")
    );
    println!(
        "servers: 1 process, {threads} Python threads each (Apache embedded mode: Python runs on mpm_event's \
         threads, 2 children x max(connections, 25)); every server runs the same app.py, main interpreter; \
         vs best peer: requests/s over the best non-ours server of that case and load"
    );

    // Every server once: does it answer every case?
    let kinds = Kind::ALL;
    let checks: Vec<Vec<Option<String>>> = kinds
        .iter()
        .map(|&kind| match env.unavailable(kind) {
            Some(reason) => vec![Some(one_line(&reason)); CASES.len()],
            None => {
                let check = check_server(kind, &env);
                for (case, failure) in CASES.iter().zip(&check) {
                    if let Some(failure) = failure {
                        eprintln!("xtask: {} / {}: {failure}", kind.name(threads), case.name);
                    }
                }
                check
            }
        })
        .collect();

    println!();
    println!("| load | case | server | requests/s | p50 ms | p99 ms | vs best peer | errors |");
    println!("|---|---|---|---:|---:|---:|---:|---|");
    for (wrk_threads, connections) in LOADS {
        let load = Load { duration_secs, rounds, connections, wrk_threads, python_threads: threads };
        let load_name = format!("-t{wrk_threads} -c{connections}");
        for (index, case) in CASES.iter().enumerate() {
            let mut cells: Vec<Cell> = kinds.iter().map(|_| Cell::default()).collect();
            // Round after round through the servers, so that a slow spell
            // of the machine falls on all of them rather than on one.
            for _round in 0..rounds.max(1) {
                for (i, &kind) in kinds.iter().enumerate() {
                    if checks[i][index].is_some() || kind.not_applicable(index).is_some() {
                        continue;
                    }
                    match measure(kind, &env, case, &load) {
                        Ok(result) => cells[i].runs.push(result),
                        Err(e) => {
                            eprintln!("xtask: {load_name} / {} / {}: {e}", case.name, kind.name(threads));
                            cells[i].failures.push(e);
                        }
                    }
                }
            }
            let medians: Vec<(Option<Result>, Vec<String>)> =
                cells.into_iter().map(|cell| (median(cell.runs), cell.failures)).collect();
            let best_peer = kinds
                .iter()
                .zip(&medians)
                .filter(|(kind, _)| !kind.ours())
                .filter_map(|(_, (r, _))| r.as_ref().map(|r| r.requests_per_sec))
                .fold(None, |best: Option<f64>, r| Some(best.map_or(r, |b| b.max(r))));
            for (i, &kind) in kinds.iter().enumerate() {
                let name = kind.name(threads);
                let (result, failures) = &medians[i];
                let cells = match (&checks[i][index], kind.not_applicable(index), result) {
                    (Some(reason), _, _) => {
                        ["-".into(), "-".into(), "-".into(), "-".into(), format!("failed: {reason}")]
                    }
                    (None, Some(reason), _) => ["-".into(), "-".into(), "-".into(), "-".into(), reason.to_string()],
                    (None, None, None) => {
                        ["-".into(), "-".into(), "-".into(), "-".into(), format!("failed: {}", failures.join("; "))]
                    }
                    (None, None, Some(r)) => {
                        let ms = |v: f64| if v.is_nan() { "-".to_string() } else { format!("{v:.2}") };
                        let mut errors: Vec<String> = Vec::new();
                        if !r.errors.is_empty() {
                            errors.push(r.errors.clone());
                        }
                        errors.extend(failures.iter().map(|f| format!("failed: {f}")));
                        [
                            format!("{:.0}", r.requests_per_sec),
                            ms(r.p50_ms),
                            ms(r.p99_ms),
                            best_peer.map_or("-".to_string(), |b| format!("{:.2}x", r.requests_per_sec / b)),
                            if errors.is_empty() { "-".to_string() } else { one_line(&errors.join("; ")) },
                        ]
                    }
                };
                let [rate, p50, p99, ratio, errors] = cells;
                println!("| {load_name} | {} | {name} | {rate} | {p50} | {p99} | {ratio} | {errors} |", case.name);
            }
            let _ = std::io::stdout().flush();
        }
    }

    // Every server has been stopped and waited for: check that none of
    // their processes outlived them.
    let mut left = running_with(&run_dir_prefix());
    left.extend(running_with(&crate::bench_apache::run_dir_prefix()));
    if !left.is_empty() {
        return Err(format!("processes of this bench still running: {left:?}"));
    }
    println!();
    println!("after the bench: no server process of it left running");
    Ok(())
}
