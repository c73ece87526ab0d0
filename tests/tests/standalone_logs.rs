//! The standalone server's logs from an Apache configuration: `ErrorLog`,
//! `LogLevel`, `CustomLog` with `LogFormat` (named or in place), per
//! virtual host, `--access-log-format`, and SIGUSR1 reopening the files
//! after logrotate renamed them, also with serving processes that run as
//! another user.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tests::{standalone_binary, Server, TempDir};

const APP: &str = r#"
def application(environ, start_response):
    if environ['PATH_INFO'] == '/fail':
        raise RuntimeError('failing on purpose')
    body = b'hello'
    start_response('200 OK', [('Content-Type', 'text/plain'), ('X-Served-By', 'app')])
    return [body]
"#;

fn site() -> TempDir {
    let site = TempDir::new("standalone-logs");
    site.write("app.wsgi", APP);
    // Serving processes that run as www-data reach the script.
    let _ = Command::new("chmod").args(["-R", "a+rX"]).arg(site.path()).status();
    site
}

/// `start-server --config` with `body` after the `Listen` line.
fn start(site: &TempDir, body: &str, extra: &[&str]) -> Server {
    let file = site.path().join("site.conf");
    let extra: Vec<std::ffi::OsString> = extra.iter().map(Into::into).collect();
    Server::start_with(|port| {
        std::fs::write(&file, format!("Listen 127.0.0.1:{port}\n{body}\n")).unwrap();
        let mut args: Vec<std::ffi::OsString> = vec!["--config".into(), file.clone().into()];
        args.extend(extra.iter().cloned());
        args
    })
}

/// The lines of `path` once it has at least `count` of them (waiting up
/// to 10 s: the top process writes them a moment after the response).
fn lines(path: &Path, count: usize) -> Vec<String> {
    tests::wait_for(Duration::from_secs(10), || {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(String::from).collect();
        (lines.len() >= count).then_some(lines)
    })
    .unwrap_or_else(|| {
        panic!("{} did not get {count} lines:\n{}", path.display(), std::fs::read_to_string(path).unwrap_or_default())
    })
}

/// The text of `path` once it contains `needle` (lines reach the files
/// through the top process, a little after the response).
fn text_with(path: &Path, needle: &str) -> String {
    tests::wait_for(Duration::from_secs(10), || {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.contains(needle).then_some(text)
    })
    .unwrap_or_else(|| {
        panic!("no {needle:?} in {}:\n{}", path.display(), std::fs::read_to_string(path).unwrap_or_default())
    })
}

fn signal(server: &Server, name: &str) {
    let status = Command::new("kill").args([&format!("-{name}"), &server.pid().to_string()]).status().unwrap();
    assert!(status.success());
}

#[test]
fn custom_log_writes_the_fields_of_its_log_format() {
    let site = site();
    let dir = site.path().display();
    let server = start(
        &site,
        &format!(
            "LogFormat \"%h %l %u %t \\\"%r\\\" %>s %b %B %{{User-Agent}}i %{{X-Served-By}}o %v %p %P %U %q %H %m %D %T\" mine\n\
             CustomLog {dir}/access.log mine\n\
             ServerName logs.example\n\
             WSGIScriptAlias /app {dir}/app.wsgi"
        ),
        &[],
    );
    let response = server.request("GET", "/app/a%20b?x=1", &[("User-Agent", "tester/1.0")], b"");
    assert_eq!(response.status(), 200);
    let line = &lines(&site.path().join("access.log"), 1)[0];
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields[0], "127.0.0.1", "{line}");
    assert_eq!(&fields[1..3], ["-", "-"], "{line}");
    assert!(fields[3].starts_with('[') && fields[4].ends_with(']'), "{line}");
    let rest = line.split_once("] ").unwrap().1;
    let expected_start = format!(
        "\"GET /app/a%20b?x=1 HTTP/1.1\" 200 5 5 tester/1.0 app logs.example {} {} /app/a b ?x=1 HTTP/1.1 GET ",
        server.port(),
        tests::child_pids(server.pid())[0]
    );
    assert!(rest.starts_with(&expected_start), "{rest}\nexpected to start with\n{expected_start}");
    let numbers: Vec<&str> = rest[expected_start.len()..].split(' ').collect();
    assert!(numbers.len() == 2 && numbers.iter().all(|n| n.parse::<u64>().is_ok()), "{rest}");
}

#[test]
fn error_log_level_and_sigusr1_reopen_after_a_rename() {
    let site = site();
    let dir = site.path().display();
    let server = start(
        &site,
        &format!(
            "ErrorLog {dir}/error.log\nLogLevel warn\nCustomLog {dir}/access.log common\n\
             WSGIScriptAlias /app {dir}/app.wsgi"
        ),
        &[],
    );
    assert_eq!(server.get("/app/fail").status(), 500);
    let errors = text_with(&site.path().join("error.log"), "RuntimeError: failing on purpose");
    // LogLevel warn: no info lines, such as the one about serving.
    assert!(!errors.contains("serving on"), "{errors}");
    assert!(!server.stderr().contains("failing on purpose"), "the traceback went to standard error too");
    lines(&site.path().join("access.log"), 1);
    // logrotate: rename, then SIGUSR1.
    for name in ["error.log", "access.log"] {
        std::fs::rename(site.path().join(name), site.path().join(format!("{name}.1"))).unwrap();
    }
    signal(&server, "USR1");
    // Lines go to the renamed files until the server has reopened.
    let reopened = tests::wait_for(Duration::from_secs(10), || {
        assert_eq!(server.get("/app/fail").status(), 500);
        std::thread::sleep(Duration::from_millis(100));
        let read = |name: &str| std::fs::read_to_string(site.path().join(name)).unwrap_or_default();
        let (access, errors) = (read("access.log"), read("error.log"));
        (access.contains("/app/fail") && errors.contains("failing on purpose")).then_some((access, errors))
    });
    let (access, errors) = reopened.expect("no lines in new log files after SIGUSR1");
    assert!(access.contains("\"GET /app/fail HTTP/1.1\" 500 "), "{access}");
    assert!(errors.contains("failing on purpose"), "{errors}");
    assert!(lines(&site.path().join("access.log.1"), 1).join("\n").contains("GET /app/fail"));
}

#[test]
fn virtual_hosts_log_to_their_own_files_and_inherit_the_main_ones() {
    let site = site();
    let dir = site.path().display();
    let server = start(
        &site,
        &format!(
            "CustomLog {dir}/main.log \"main %v %U\"\n\
             <VirtualHost 127.0.0.1:*>\nServerName own.example\n\
             CustomLog {dir}/own.log \"own %v %U\"\nErrorLog {dir}/own-error.log\n\
             WSGIScriptAlias /app {dir}/app.wsgi\n</VirtualHost>\n\
             <VirtualHost 127.0.0.1:*>\nServerName plain.example\nWSGIScriptAlias /app {dir}/app.wsgi\n</VirtualHost>"
        ),
        &[],
    );
    assert_eq!(server.request("GET", "/app/one", &[("Host", "own.example")], b"").status(), 200);
    assert_eq!(server.request("GET", "/app/fail", &[("Host", "own.example")], b"").status(), 500);
    assert_eq!(server.request("GET", "/app/two", &[("Host", "plain.example")], b"").status(), 200);
    assert_eq!(lines(&site.path().join("own.log"), 2), ["own own.example /app/one", "own own.example /app/fail"]);
    assert_eq!(lines(&site.path().join("main.log"), 1), ["main plain.example /app/two"]);
    let own_errors = lines(&site.path().join("own-error.log"), 1).join("\n");
    assert!(own_errors.contains("failing on purpose"), "{own_errors}");
    assert!(!server.stderr().contains("failing on purpose"), "{}", server.stderr());
}

#[test]
fn serving_processes_as_another_user_write_through_the_top_process() {
    let site = site();
    let dir = site.path().display();
    // Only root may write in the log directory, as in /var/log.
    let logs = TempDir::new("standalone-logs-root-only");
    let logs_dir = logs.path().display();
    let server = start(
        &site,
        &format!(
            "User www-data\nErrorLog {logs_dir}/error.log\nCustomLog {logs_dir}/access.log combined\n\
             WSGIScriptAlias /app {dir}/app.wsgi"
        ),
        &["--processes", "2"],
    );
    let _ = Command::new("chmod").args(["700"]).arg(logs.path()).status();
    assert_eq!(server.get("/app/fail").status(), 500);
    assert!(lines(&logs.path().join("error.log"), 1).join("\n").contains("failing on purpose"));
    std::fs::rename(logs.path().join("access.log"), logs.path().join("access.log.1")).ok();
    signal(&server, "USR1");
    // Lines go to the renamed file until the top process has reopened.
    let reopened = tests::wait_for(Duration::from_secs(10), || {
        assert_eq!(server.get("/app/x").status(), 200);
        std::thread::sleep(Duration::from_millis(100));
        std::fs::read_to_string(logs.path().join("access.log")).ok().filter(|text| !text.is_empty())
    });
    let text = reopened.expect("no line in a new access.log after SIGUSR1");
    assert!(text.contains("\"GET /app/x HTTP/1.1\" 200"), "{text}");
}

#[test]
fn access_log_format_flag_takes_a_nickname_or_a_format() {
    let site = site();
    let script = site.path().join("app.wsgi");
    let log = site.path().join("flag.log");
    let server = Server::start([
        script.as_os_str(),
        "--access-log".as_ref(),
        log.as_os_str(),
        "--access-log-format".as_ref(),
        "%m %U %>s".as_ref(),
    ]);
    assert_eq!(server.get("/x").status(), 200);
    assert_eq!(lines(&log, 1), ["GET /x 200"]);
    drop(server);
    let log = site.path().join("common.log");
    let server = Server::start([
        script.as_os_str(),
        "--access-log".as_ref(),
        log.as_os_str(),
        "--access-log-format".as_ref(),
        "common".as_ref(),
    ]);
    assert_eq!(server.get("/y").status(), 200);
    let line = &lines(&log, 1)[0];
    assert!(line.starts_with("127.0.0.1 - - [") && line.contains("\"GET /y HTTP/1.1\" 200 "), "{line}");
}

#[test]
fn log_settings_it_cannot_honour_are_refused_with_file_and_line() {
    let site = site();
    let text = "ErrorLog syslog:local7\n\
                CustomLog \"|/usr/bin/rotatelogs /tmp/x 86400\" common\n\
                CustomLog /tmp/x.log common \"expr=%{REQUEST_STATUS} >= 400\"\n\
                LogFormat \"%h %{%Y}t\" broken\n\
                LogLevel loud\n";
    let file = site.write("bad.conf", text);
    let out = Command::new(standalone_binary()).arg("check-config").arg(&file).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (line, needle) in [(1, "syslog"), (2, "piped logs"), (3, "expr="), (4, "strftime"), (5, "loud")] {
        let prefix = format!("{}:{line}: ", file.display());
        assert!(
            stderr.lines().any(|l| l.starts_with(&prefix) && l.contains(needle)),
            "no {prefix}...{needle} in:\n{stderr}"
        );
    }
}

#[test]
fn an_env_condition_reads_the_variables_set_env_gives() {
    let site = site();
    let dir = site.path().display();
    let server = start(
        &site,
        &format!(
            "CustomLog {dir}/access.log \"%U\" env=!dontlog\nCustomLog {dir}/quiet.log \"%U\" env=dontlog\n\
             WSGIScriptAlias /app {dir}/app.wsgi\n<Location /app/quiet>\nSetEnv dontlog 1\n</Location>"
        ),
        &[],
    );
    for path in ["/app/quiet", "/app/loud"] {
        assert_eq!(server.get(path).status(), 200);
    }
    assert_eq!(lines(&site.path().join("access.log"), 1), ["/app/loud"]);
    assert_eq!(lines(&site.path().join("quiet.log"), 1), ["/app/quiet"]);
}
