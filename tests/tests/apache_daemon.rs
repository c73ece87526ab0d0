//! Daemon mode under real Apache: WSGIDaemonProcess groups, their flags,
//! recycling without failed requests, crashes, users, timeouts, and a group
//! that cannot start.

use std::time::{Duration, Instant};

use tests::apache::{Apache, ApacheOptions};
use tests::{field, TempDir};

/// The shared process-describing app, with two more routes: `/process`
/// (the daemon process's cwd, umask, nice, limits, name) and `/deadlock` (a C
/// call that keeps the GIL).
fn app() -> String {
    tests::PROCESS_APP.replace(
        "    if path == '/echo':",
        r#"    if path == '/process':
        mask = os.umask(0)
        os.umask(mask)
        limits = open('/proc/self/limits').read()
        data = json.dumps({'cwd': os.getcwd(), 'umask': mask, 'nice': os.nice(0), 'lang': os.environ.get('LANG'),
                           'groups': sorted(os.getgroups()), 'data_limit': [l for l in limits.splitlines() if l.startswith('Max data size')][0].split()[3],
                           'cpu_limit': [l for l in limits.splitlines() if l.startswith('Max cpu time')][0].split()[3],
                           'comm': open('/proc/self/comm').read().strip()}, sort_keys=True)
        start_response('200 OK', [('Content-Type', 'application/json')])
        return [data.encode()]
    if path == '/deadlock':
        import ctypes
        ctypes.PyDLL(None).sleep(30)  # a C call that keeps the GIL
    if path == '/echo':"#,
    )
}

fn site() -> TempDir {
    let site = TempDir::new("apache-daemon");
    site.write("app.wsgi", &app());
    site
}

/// Pids of the processes named `(wsgi:NAME)`.
fn daemon_pids(name: &str) -> Vec<u32> {
    let wanted: String = format!("(wsgi:{name})").chars().take(15).collect();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        if std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == wanted) {
            pids.push(pid);
        }
    }
    pids
}

/// Apache with the daemon group `NAME OPTIONS` (`daemon`) serving the app.
fn start(site: &TempDir, daemon: &str) -> Apache {
    let dir = site.path().display();
    let name = daemon.split_whitespace().next().unwrap_or("grp");
    Apache::start(&ApacheOptions::ours(format!(
        "WSGIDaemonProcess {daemon}\nWSGIScriptAlias /app {dir}/app.wsgi process-group={name} application-group=%{{GLOBAL}}"
    )))
}

#[test]
fn flags_follow_the_processes_and_threads_table() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    for row in tests::DAEMON_FLAGS {
        let options = row.0;
        let apache = start(&site, &format!("flags {options}"));
        let response = apache.get("/app/flags");
        assert_eq!(response.status(), 200, "{options}: {}", apache.error_log());
        let text = response.text();
        assert_eq!(field(&text, "group"), "flags");
        tests::assert_daemon_flags(&text, row);
    }
}

#[test]
fn maximum_requests_recycles_without_failing_a_request() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let apache = start(&site, "maxreq processes=1 threads=4 maximum-requests=20");
    let first = apache.get("/app/first");
    let first_pid = field(&first.text(), "pid").to_string();
    let load = tests::Load::start(apache.address(), "/app/load", 4);
    std::thread::sleep(Duration::from_secs(4));
    let report = load.finish();
    let failures = &report.failures;
    assert!(failures.is_empty(), "failed requests during recycling: {failures:?}\n{}", apache.error_log());
    let served = report.bodies.len();
    assert!(served > 40, "only {served} requests served");
    let pids: std::collections::BTreeSet<&str> = report.bodies.iter().map(|b| field(b, "pid")).collect();
    assert!(pids.len() >= 2 && pids.iter().any(|p| *p != first_pid), "no recycle seen: {pids:?}");
}

#[test]
fn a_killed_daemon_is_replaced_quickly_and_only_its_requests_fail() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let apache = start(&site, "killed processes=1 threads=4");
    assert_eq!(apache.get("/app/x").status(), 200);
    let victims = daemon_pids("killed");
    assert_eq!(victims.len(), 1, "{victims:?}");
    let load = tests::Load::start(apache.address(), "/app/load", 4);
    std::thread::sleep(Duration::from_millis(500));
    let killed_at = Instant::now();
    let _ = std::process::Command::new("kill").args(["-9", &victims[0].to_string()]).status();
    // A new process serves within a second.
    let replaced = tests::wait_for(Duration::from_secs(1), || {
        tests::http_request(apache.address(), "GET", "/app/after", &[], b"")
            .ok()
            .filter(|r| r.status() == 200 && field(&r.text(), "pid") != victims[0].to_string())
    });
    assert!(replaced.is_some(), "not replaced within 1 s:\n{}", apache.error_log());
    assert!(killed_at.elapsed() < Duration::from_secs(2));
    std::thread::sleep(Duration::from_millis(500));
    // Requests in flight on the killed process may fail, with 502 or 503
    // (never a hang: the client's read timeout would show as an error).
    for failure in load.finish().failures {
        assert!(failure == "status 502" || failure == "status 503", "unexpected failure: {failure}");
    }
}

#[test]
fn user_option_runs_the_application_as_that_user() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let apache = start(&site, "asuser user=nobody group=nogroup");
    let response = apache.get("/app/who");
    assert_eq!(response.status(), 200, "{}", apache.error_log());
    assert_eq!(field(&response.text(), "uid"), "65534");
}

#[test]
fn request_timeout_answers_504_and_replaces_the_process() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let apache = start(&site, "reqtime processes=1 threads=2 request-timeout=1");
    let before = field(&apache.get("/app/x").text(), "pid").to_string();
    let response = apache.get("/app/sleep?5");
    assert_eq!(response.status(), 504, "{}", apache.error_log());
    // The process is replaced: its successor serves once ready.
    let replaced = tests::wait_for(Duration::from_secs(10), || {
        tests::http_request(apache.address(), "GET", "/app/x", &[], b"")
            .ok()
            .filter(|r| r.status() == 200 && field(&r.text(), "pid") != before)
    });
    assert!(replaced.is_some(), "not replaced:\n{}", apache.error_log());
}

#[test]
fn queue_timeout_answers_504() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let apache = start(&site, "queuetime processes=1 threads=1 queue-timeout=1");
    let address = apache.address();
    let busy = std::thread::spawn(move || tests::http_request(address, "GET", "/app/sleep?3", &[], b""));
    std::thread::sleep(Duration::from_millis(300));
    let queued = apache.get("/app/x");
    assert_eq!(queued.status(), 504, "{}", apache.error_log());
    assert_eq!(busy.join().unwrap().unwrap().status(), 200);
}

#[test]
fn a_group_that_cannot_start_logs_why_and_answers_503() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let apache = start(&site, "broken python-home=/nonexistent/python connect-timeout=2");
    let response = apache.get("/app/x");
    assert_eq!(response.status(), 503);
    let log = apache.error_log();
    assert!(log.contains("cannot start"), "{log}");
    assert!(log.contains("Unable to connect to WSGI daemon process 'broken'"), "{log}");
}

#[test]
fn bodies_stream_both_ways_and_graceful_restarts_lose_nothing() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let apache = start(&site, "graceful processes=2 threads=4");
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 241) as u8).collect();
    let echoed = apache.request("POST", "/app/echo", &[], &body);
    assert_eq!(echoed.status(), 200);
    assert!(echoed.body == body, "echo differs ({} bytes)", echoed.body.len());

    let load = tests::Load::start(apache.address(), "/app/load", 4);
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(800));
        apache.graceful();
    }
    std::thread::sleep(Duration::from_millis(1500));
    let report = load.finish();
    let failures = &report.failures;
    assert!(failures.is_empty(), "failed across graceful restarts: {failures:?}\n{}", apache.error_log());
    let pids: std::collections::BTreeSet<&str> = report.bodies.iter().map(|b| field(b, "pid")).collect();
    assert!(pids.len() > 2, "daemon processes were not restarted: {pids:?}");
}

#[test]
fn chunked_and_empty_bodies_reach_the_daemon_as_sent() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let dir = site.path().display();
    let apache = Apache::start(&ApacheOptions::ours(format!(
        "WSGIDaemonProcess chunks processes=1 threads=2\nWSGIChunkedRequest On\n\
         WSGIScriptAlias /app {dir}/app.wsgi process-group=chunks application-group=%{{GLOBAL}}"
    )));
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 233) as u8).collect();
    let pieces: [&[u8]; 3] = [b"first ", &data, b" last"];
    let echoed = apache.request("POST", "/app/echo", &[("Transfer-Encoding", "chunked")], &tests::chunked(&pieces));
    assert_eq!(echoed.status(), 200, "{}", apache.error_log());
    assert!(echoed.body == pieces.concat(), "chunked echo differs ({} bytes)", echoed.body.len());
    // No body: nothing is relayed, and the application reads nothing.
    assert!(apache.request("POST", "/app/echo", &[("Content-Length", "0")], b"").body.is_empty());
    assert!(apache.get("/app/echo").body.is_empty());
    // The connection those used is still in step for a body after them.
    let echoed = apache.request("POST", "/app/echo", &[], b"after");
    assert_eq!(echoed.body, b"after");
}

#[test]
fn stopping_apache_leaves_no_daemon_process_or_socket() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let mut apache = start(&site, "stopping processes=2 threads=2");
    assert_eq!(apache.get("/app/x").status(), 200);
    let daemons = daemon_pids("stopping");
    assert_eq!(daemons.len(), 2);
    let run_dir = apache.run_dir().to_path_buf();
    let sockets = || -> Vec<String> {
        std::fs::read_dir(&run_dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".sock"))
            .collect()
    };
    assert_eq!(sockets().len(), 1, "the group's socket: {:?}", sockets());
    assert!(apache.stop(), "Apache did not stop");
    let gone = tests::wait_for(Duration::from_secs(10), || {
        daemons.iter().all(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    });
    assert!(gone.is_some(), "daemon processes left behind: {daemons:?}");
    let cleaned = tests::wait_for(Duration::from_secs(5), || sockets().is_empty().then_some(()));
    assert!(cleaned.is_some(), "stale sockets: {:?}", sockets());
}

#[test]
fn a_touched_script_restarts_the_daemon_processes() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let apache = start(&site, "touched processes=1 threads=2");
    let before = field(&apache.get("/app/x").text(), "pid").to_string();
    let script = std::fs::File::options().write(true).open(site.path().join("app.wsgi")).unwrap();
    script.set_modified(std::time::SystemTime::now() + Duration::from_secs(5)).unwrap();
    let replaced = tests::wait_for(Duration::from_secs(10), || {
        let response = apache.get("/app/x");
        assert_eq!(response.status(), 200, "{}", apache.error_log());
        (field(&response.text(), "pid") != before).then_some(())
    });
    assert!(replaced.is_some(), "the daemon process was not replaced:\n{}", apache.error_log());
    assert!(apache.error_log().contains("changed; the daemon process will be replaced"));
}

#[test]
fn groups_are_scoped_to_their_virtual_host_and_to_wsgi_restrict_process() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    site.write("preload.py", "import builtins\nbuiltins.PRELOADED = True\n");
    site.write(
        "check.wsgi",
        "import builtins\ndef application(environ, start_response):\n    start_response('200 OK', [])\n    return [str(getattr(builtins, 'PRELOADED', False)).encode()]\n",
    );
    let dir = site.path().display();
    let apache = Apache::start(&ApacheOptions::ours(format!(
        "WSGIDaemonProcess shared processes=1 threads=2\n\
         WSGIImportScript {dir}/preload.py process-group=shared application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /check {dir}/check.wsgi process-group=shared application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /restricted {dir}/app.wsgi process-group=shared\n\
         <Location /restricted>\n  WSGIRestrictProcess other\n</Location>\n\
         <VirtualHost 127.0.0.1:${{PORT}}>\n  ServerName private.example\n\
           WSGIDaemonProcess private processes=1 threads=2\n\
           WSGIScriptAlias /mine {dir}/app.wsgi process-group=private\n</VirtualHost>\n\
         <VirtualHost 127.0.0.1:${{PORT}}>\n  ServerName other.example\n\
           WSGIScriptAlias /theirs {dir}/app.wsgi process-group=private\n</VirtualHost>"
    )));
    // WSGIImportScript ran in the group's processes before any request.
    let check = apache.request("GET", "/check", &[("Host", "private.example")], b"");
    assert_eq!(check.text(), "True", "{}", apache.error_log());
    // Its own virtual host may use the group; another may not.
    let mine = apache.request("GET", "/mine/x", &[("Host", "private.example")], b"");
    assert_eq!(mine.status(), 200, "{}", apache.error_log());
    assert_eq!(field(&mine.text(), "group"), "private");
    let theirs = apache.request("GET", "/theirs/x", &[("Host", "other.example")], b"");
    assert_eq!(theirs.status(), 500);
    assert!(apache.error_log().contains("cannot be accessed by this WSGI application"), "{}", apache.error_log());
    // WSGIRestrictProcess refuses a group it does not list.
    let restricted = apache.request("GET", "/restricted/x", &[("Host", "private.example")], b"");
    assert_eq!(restricted.status(), 500);
    assert!(apache.error_log().contains("WSGIRestrictProcess"));
}

#[test]
fn the_socket_is_only_for_apaches_child_user() {
    tests::require!(tests::apache::APACHE_BINARY);
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let site = site();
    let apache = start(&site, "private processes=1 threads=1 user=nobody");
    assert_eq!(apache.get("/app/x").status(), 200);
    let socket = std::fs::read_dir(apache.run_dir())
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(".sock"))
        .expect("the group's socket");
    let meta = socket.metadata().unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let www_data = std::process::Command::new("id").args(["-u", "www-data"]).output().unwrap();
    assert_eq!(meta.uid().to_string(), String::from_utf8_lossy(&www_data.stdout).trim());
}

#[test]
fn process_options_shape_the_daemon_processes() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let home = TempDir::new("daemon-home");
    let apache = start(
        &site,
        &format!(
            "shaped processes=1 threads=2 user=nobody group=nogroup supplementary-groups=www-data umask=0027 \
             home={} lang=C.UTF-8 cpu-priority=5 memory-limit=2000000000 cpu-time-limit=3600 \
             display-name=%{{GROUP}}",
            home.path().display()
        ),
    );
    let response = apache.get("/app/process");
    assert_eq!(response.status(), 200, "{}", apache.error_log());
    let text = response.text();
    assert_eq!(field(&text, "cwd"), home.path().display().to_string());
    assert_eq!(field(&text, "umask"), (0o027).to_string());
    assert_eq!(field(&text, "nice"), "5");
    assert_eq!(field(&text, "lang"), "C.UTF-8");
    assert_eq!(field(&text, "data_limit"), "2000000000");
    assert_eq!(field(&text, "cpu_limit"), "3600");
    assert_eq!(field(&text, "comm"), "(wsgi:shaped)");
    let www_data = std::process::Command::new("id").args(["-g", "www-data"]).output().unwrap();
    let gid = String::from_utf8_lossy(&www_data.stdout).trim().to_string();
    assert!(text.contains(&gid), "supplementary group {gid} missing: {text}");
}

#[test]
fn deadlock_timeout_restarts_a_process_whose_interpreter_is_stuck() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let apache = start(&site, "stuck processes=1 threads=2 deadlock-timeout=2");
    let before = field(&apache.get("/app/x").text(), "pid").to_string();
    let address = apache.address();
    // The stuck request fails when its process is ended (never a hang).
    let stuck = std::thread::spawn(move || tests::http_request(address, "GET", "/app/deadlock", &[], b""));
    let replaced = tests::wait_for(Duration::from_secs(15), || {
        tests::http_request(apache.address(), "GET", "/app/x", &[], b"")
            .ok()
            .filter(|r| r.status() == 200 && field(&r.text(), "pid") != before)
    });
    assert!(replaced.is_some(), "not replaced:\n{}", apache.error_log());
    assert!(apache.error_log().contains("appears to have deadlocked"), "{}", apache.error_log());
    let stuck = stuck.join().unwrap();
    assert!(stuck.is_err() || stuck.is_ok_and(|r| r.status() == 502), "the stuck request");
}

#[test]
fn daemon_mode_works_under_prefork_across_graceful_and_full_restarts() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let dir = site.path().display();
    let mut apache = Apache::start(&ApacheOptions {
        mpm: tests::apache::Mpm::Prefork,
        ..ApacheOptions::ours(format!(
            "WSGIDaemonProcess pre processes=1 threads=2\n\
             WSGIScriptAlias /app {dir}/app.wsgi process-group=pre application-group=%{{GLOBAL}}"
        ))
    });
    let first = apache.get("/app/x");
    assert_eq!(first.status(), 200, "{}", apache.error_log());
    assert_eq!(field(&first.text(), "group"), "pre");
    // Prefork signals its whole process group on restarts: the daemon
    // processes, in a group of their own, are restarted by us only.
    for restart in [Apache::graceful as fn(&Apache), Apache::restart] {
        restart(&apache);
        let back = tests::wait_for(Duration::from_secs(15), || {
            tests::http_request(apache.address(), "GET", "/app/x", &[], b"").ok().filter(|r| r.status() == 200)
        });
        assert!(back.is_some(), "not serving after a restart:\n{}", apache.error_log());
    }
    let daemons = daemon_pids("pre");
    assert!(apache.stop(), "Apache did not stop");
    let gone = tests::wait_for(Duration::from_secs(10), || {
        daemons.iter().all(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    });
    assert!(gone.is_some(), "daemon processes left behind: {daemons:?}");
}

#[test]
fn startup_timeout_replaces_a_process_whose_script_never_loaded() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = TempDir::new("apache-startup");
    let flag = site.path().join("broken");
    std::fs::write(&flag, "").unwrap();
    site.write(
        "app.wsgi",
        &format!(
            "import os\nif os.path.exists({flag:?}):\n    raise ImportError('not ready yet')\n\
             def application(environ, start_response):\n    start_response('200 OK', [])\n    return [str(os.getpid()).encode()]\n"
        ),
    );
    let dir = site.path().display();
    let apache = Apache::start(&ApacheOptions::ours(format!(
        "WSGIDaemonProcess slow processes=1 threads=2 startup-timeout=1\n\
         WSGIScriptAlias /app {dir}/app.wsgi process-group=slow application-group=%{{GLOBAL}}"
    )));
    assert_eq!(apache.get("/app").status(), 500);
    let replaced = tests::wait_for(Duration::from_secs(10), || {
        let _ = apache.get("/app");
        apache.error_log().contains("has not loaded within the startup timeout").then_some(())
    });
    assert!(replaced.is_some(), "{}", apache.error_log());
    std::fs::remove_file(&flag).unwrap();
    let served = tests::wait_for(Duration::from_secs(10), || (apache.get("/app").status() == 200).then_some(()));
    assert!(served.is_some(), "{}", apache.error_log());
}

#[test]
fn a_relayed_response_that_breaks_after_an_empty_first_chunk_keeps_its_status() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = TempDir::new("apache-daemon-broken");
    site.write(
        "app.wsgi",
        "def application(environ, start_response):\n\
         \x20   start_response('302 Found', [('Location', '/elsewhere')])\n\
         \x20   yield b''\n\
         \x20   raise ValueError('broken after the head')\n",
    );
    let apache = start(&site, "broken processes=1 threads=2");
    let mut connection = tests::HttpConnection::open(apache.address());
    connection.send(b"GET /app HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let head = connection.read_head().unwrap_or_else(|e| panic!("no head ({e})\n{}", apache.error_log()));
    // The daemon's head went out before the failure: Apache sends it, not
    // a default 200 of its own, and the broken response ends the
    // connection.
    assert_eq!(head.status, 302, "{}", apache.error_log());
    assert_eq!(head.header("location"), Some("/elsewhere"));
    let rest = connection.read_some(1 << 16);
    assert!(rest.is_err() || rest.is_ok_and(|bytes| !bytes.ends_with(b"0\r\n\r\n")), "the body looked complete");
}
