//! Python code that runs when a process stops: `atexit` handlers,
//! `subscribe_shutdown` callbacks and the `process_stopping` event, on
//! every planned stop, in both front ends, bounded by the shutdown timeout.
//! The application (tests/fixtures/api/shutdown.wsgi) leaves a marker file
//! per piece of code that ran, named by its process id. With
//! `WSGIDestroyInterpreter On` (the default) the interpreters are then
//! finalised, which its journal shows.

use std::collections::BTreeSet;
use std::time::Duration;

use tests::apache::{Apache, ApacheOptions};
use tests::{Server, TempDir};

/// The application in a fresh directory, with a markers directory the
/// servers' children (www-data under Apache) can write.
fn site() -> TempDir {
    use std::os::unix::fs::PermissionsExt;
    let site = TempDir::new("shutdown");
    let source = std::fs::read_to_string(tests::workspace_root().join("tests/fixtures/api/shutdown.wsgi")).unwrap();
    site.write("app.wsgi", &source);
    let markers = site.path().join("markers");
    std::fs::create_dir(&markers).unwrap();
    std::fs::set_permissions(&markers, std::fs::Permissions::from_mode(0o777)).unwrap();
    site
}

/// The markers left so far: `NAME.PID` -> contents.
fn markers(site: &TempDir) -> std::collections::BTreeMap<String, String> {
    let Ok(entries) = std::fs::read_dir(site.path().join("markers")) else { return Default::default() };
    entries
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read_to_string(e.path()).unwrap_or_default()))
        .collect()
}

/// The pids that served a request.
fn served(site: &TempDir) -> BTreeSet<String> {
    markers(site).keys().filter_map(|name| name.strip_prefix("served.").map(String::from)).collect()
}

/// Waits (at most 30 s) until every pid of `pids` has left the markers of
/// a stop (`stopping`, `shutdown` and, with `atexit`, `atexit`), and
/// returns the markers.
fn stopped(site: &TempDir, pids: &BTreeSet<String>, atexit: bool) -> std::collections::BTreeMap<String, String> {
    tests::wait_for(Duration::from_secs(30), || {
        let seen = markers(site);
        let all = pids.iter().all(|pid| {
            ["stopping", "shutdown"].iter().all(|m| seen.contains_key(&format!("{m}.{pid}")))
                && (!atexit || seen.contains_key(&format!("atexit.{pid}")))
        });
        all.then_some(seen)
    })
    .unwrap_or_else(|| markers(site))
}

fn assert_stopped(site: &TempDir, pids: &BTreeSet<String>, reason: &str, log: &str) {
    let seen = stopped(site, pids, true);
    assert!(!pids.is_empty());
    for pid in pids {
        assert_eq!(
            seen.get(&format!("shutdown.{pid}")).map(String::as_str),
            Some(&*format!("process_stopping {reason}")),
            "pid {pid}: {seen:#?}\n{log}"
        );
        assert_eq!(
            seen.get(&format!("stopping.{pid}")).map(String::as_str),
            Some(reason),
            "pid {pid}: {seen:#?}\n{log}"
        );
        assert!(seen.contains_key(&format!("atexit.{pid}")), "pid {pid}: no atexit handler ran: {seen:#?}\n{log}");
    }
}

/// Waits (at most 30 s) until every pid of `pids` has finalised Python:
/// its journal, written through a buffer nothing flushes, holds a line
/// per request it served.
fn assert_finalised(site: &TempDir, pids: &BTreeSet<String>, log: &str) {
    for pid in pids {
        let journal = site.path().join(format!("markers/journal.{pid}"));
        let flushed = tests::wait_for(Duration::from_secs(30), || {
            std::fs::read_to_string(&journal).ok().filter(|text| text.starts_with("served\n"))
        });
        assert!(flushed.is_some(), "pid {pid}: Python was not finalised (its journal is empty)\n{log}");
    }
    for crash in ["Fatal Python error", "Segmentation fault", "exit signal"] {
        assert!(!log.contains(crash), "{log}");
    }
}

/// Every pid of `pids` has stopped (its atexit handler ran) and left its
/// journal unflushed, as a process that does not finalise Python.
fn assert_not_finalised(site: &TempDir, pids: &BTreeSet<String>) {
    stopped(site, pids, false);
    // Finalisation comes right after the shutdown code, or never.
    std::thread::sleep(Duration::from_secs(1));
    for pid in pids {
        let journal = std::fs::read_to_string(site.path().join(format!("markers/journal.{pid}"))).unwrap_or_default();
        assert_eq!(journal, "", "pid {pid} finalised Python");
    }
}

fn script(site: &TempDir) -> std::path::PathBuf {
    site.path().join("app.wsgi")
}

#[test]
fn standalone_sigterm_runs_shutdown_callbacks_and_atexit() {
    let site = site();
    let mut server = Server::start([script(&site).into_os_string()]);
    assert_eq!(server.get("/?thread").status(), 200);
    let pids = served(&site);
    server.terminate();
    let status = server.wait_exit(Duration::from_secs(30)).expect("the server did not stop");
    assert!(status.success(), "{status:?}\n{}", server.stderr());
    assert_stopped(&site, &pids, "", &server.stderr());
    // Python was finalised, after the (non-daemon) thread the request
    // started had finished.
    assert_finalised(&site, &pids, &server.stderr());
    let seen = markers(&site);
    assert!(pids.iter().all(|pid| seen.contains_key(&format!("thread.{pid}"))), "{seen:#?}");
}

/// A daemon thread of the application still runs in its sub-interpreter:
/// ending that interpreter would pull the thread's state from under it, so
/// Python is left as it is, and the log says why. The rest of the shutdown
/// code runs, and the process exits cleanly.
#[test]
fn standalone_leaves_python_alone_while_an_application_daemon_thread_runs() {
    let site = site();
    let mut server = Server::start([script(&site).into_os_string(), "--application-group".into(), "named".into()]);
    assert_eq!(server.get("/?daemon-thread").status(), 200);
    let pids = served(&site);
    server.terminate();
    let status = server.wait_exit(Duration::from_secs(30)).expect("the server did not stop");
    assert!(status.success(), "{status:?}\n{}", server.stderr());
    assert_stopped(&site, &pids, "", &server.stderr());
    assert_not_finalised(&site, &pids);
    assert!(
        server.stderr().contains("Python is not finalised: threads the application started still run"),
        "{}",
        server.stderr()
    );
}

#[test]
fn standalone_shutdown_timeout_bounds_a_hanging_callback() {
    let site = site();
    site.write("hang", "");
    let mut server = Server::start([script(&site).into_os_string(), "--shutdown-timeout".into(), "2".into()]);
    assert_eq!(server.get("/").status(), 200);
    let pids = served(&site);
    server.terminate();
    // The callback started, then hangs; the server ends all the same.
    assert!(server.wait_exit(Duration::from_secs(30)).is_some(), "the server did not stop");
    let seen = stopped(&site, &pids, false);
    assert!(pids.iter().all(|pid| seen.contains_key(&format!("shutdown.{pid}"))), "{seen:#?}");
    assert!(
        server.stderr().contains("shutdown callbacks still running after the shutdown timeout"),
        "{}",
        server.stderr()
    );
}

#[test]
fn standalone_daemon_recycle_by_maximum_requests_runs_them() {
    let site = site();
    let server = Server::start([
        script(&site).into_os_string(),
        "--daemon".into(),
        "--processes".into(),
        "1".into(),
        "--maximum-requests".into(),
        "2".into(),
    ]);
    assert_eq!(server.get("/").status(), 200);
    assert_eq!(server.get("/").status(), 200);
    let first = served(&site);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_stopped(&site, &first, "maximum_requests", &server.stderr());
    assert_finalised(&site, &first, &server.stderr());
}

fn apache_config(site: &TempDir, options: &str) -> String {
    format!(
        "WSGIDaemonProcess stopping processes=1 threads=2 {options}\n\
         WSGIScriptAlias / {} process-group=stopping application-group=%{{GLOBAL}}\n",
        script(site).display()
    )
}

#[test]
fn apache_stop_runs_them_in_daemon_processes() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let mut apache = Apache::start(&ApacheOptions::ours(apache_config(&site, "")));
    assert_eq!(apache.get("/").status(), 200);
    let pids = served(&site);
    apache.stop();
    assert_stopped(&site, &pids, "", &apache.error_log());
    assert_finalised(&site, &pids, &apache.error_log());
}

/// The same with the application in a named group's sub-interpreter,
/// which is ended before Python is finalised.
#[test]
fn apache_stop_ends_a_named_groups_sub_interpreter() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let config = format!(
        "WSGIDaemonProcess stopping processes=1 threads=2\n\
         WSGIScriptAlias / {} process-group=stopping application-group=named\n",
        script(&site).display()
    );
    let mut apache = Apache::start(&ApacheOptions::ours(config));
    assert_eq!(apache.get("/?thread").status(), 200);
    let pids = served(&site);
    apache.stop();
    assert_stopped(&site, &pids, "", &apache.error_log());
    assert_finalised(&site, &pids, &apache.error_log());
    let seen = markers(&site);
    assert!(pids.iter().all(|pid| seen.contains_key(&format!("thread.{pid}"))), "{seen:#?}");
}

/// A changed script replaces its daemon process (WSGIScriptReloading On,
/// the default), a planned stop like the others: the old process runs its
/// shutdown code with the reason `script_reload`.
#[test]
fn apache_script_reload_runs_them() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let apache = Apache::start(&ApacheOptions::ours(apache_config(&site, "")));
    assert_eq!(apache.get("/").status(), 200);
    let pids = served(&site);
    let later = std::time::SystemTime::now() + Duration::from_secs(10);
    std::fs::File::options().append(true).open(script(&site)).unwrap().set_modified(later).unwrap();
    assert_eq!(apache.get("/").status(), 200);
    assert_stopped(&site, &pids, "script_reload", &apache.error_log());
    assert_finalised(&site, &pids, &apache.error_log());
}

#[test]
fn apache_graceful_runs_them_in_daemon_processes() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let apache = Apache::start(&ApacheOptions::ours(apache_config(&site, "")));
    assert_eq!(apache.get("/").status(), 200);
    let pids = served(&site);
    apache.graceful();
    assert_stopped(&site, &pids, "", &apache.error_log());
    assert_finalised(&site, &pids, &apache.error_log());
    // And the new generation serves.
    let answered = tests::wait_for(Duration::from_secs(20), || {
        let response = tests::http_request(apache.address(), "GET", "/", &[], b"").ok()?;
        (response.status() == 200 && !pids.contains(&response.text())).then_some(())
    });
    assert!(answered.is_some(), "{}", apache.error_log());
}

#[test]
fn apache_maximum_requests_recycle_runs_them() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let apache = Apache::start(&ApacheOptions::ours(apache_config(&site, "maximum-requests=2")));
    assert_eq!(apache.get("/").status(), 200);
    assert_eq!(apache.get("/").status(), 200);
    let pids = served(&site);
    assert_stopped(&site, &pids, "maximum_requests", &apache.error_log());
    assert_finalised(&site, &pids, &apache.error_log());
}

/// The daemon process replaces itself at its restart interval, as
/// mod_wsgi's does, with that reason.
#[test]
fn apache_restart_interval_runs_them() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let apache = Apache::start(&ApacheOptions::ours(apache_config(&site, "restart-interval=2")));
    assert_eq!(apache.get("/").status(), 200);
    let pids = served(&site);
    assert_stopped(&site, &pids, "restart_interval", &apache.error_log());
    assert_finalised(&site, &pids, &apache.error_log());
}

#[test]
fn apache_inactivity_timeout_runs_them() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let apache = Apache::start(&ApacheOptions::ours(apache_config(&site, "inactivity-timeout=1")));
    assert_eq!(apache.get("/").status(), 200);
    let pids = served(&site);
    assert_stopped(&site, &pids, "inactivity_timeout", &apache.error_log());
    assert_finalised(&site, &pids, &apache.error_log());
}

/// A request past `request-timeout` (1 s, scaled by 1 + ln 2 for two
/// threads) gets 504 and its process is replaced: the interpreter still
/// runs (the request spends CPU in Python, which hands the GIL over), so
/// its shutdown code runs.
#[test]
fn apache_request_timeout_replacement_runs_them() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let options = "request-timeout=1 graceful-timeout=1 shutdown-timeout=5";
    let apache = Apache::start(&ApacheOptions::ours(apache_config(&site, options)));
    let response = tests::http_request(apache.address(), "GET", "/?burn", &[], b"").expect("an answer");
    assert_eq!(response.status(), 504, "{}", apache.error_log());
    let pids = served(&site);
    assert_stopped(&site, &pids, "request_timeout", &apache.error_log());
    // The request still runs Python: finalising under it would crash.
    assert_not_finalised(&site, &pids);
    let finalising = tests::wait_for(Duration::from_secs(10), || {
        apache.error_log().contains("Python is not finalised: 1 thread(s) are still inside it").then_some(())
    });
    assert!(finalising.is_some(), "{}", apache.error_log());
}

/// An interpreter that makes no progress for `deadlock-timeout` gets its
/// process replaced; when it answers again within `shutdown-timeout`, the
/// shutdown code runs, with the reason `deadlock_timeout`.
#[test]
fn apache_deadlock_replacement_runs_them_once_the_interpreter_answers() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let apache = Apache::start(&ApacheOptions::ours(apache_config(&site, "deadlock-timeout=1 shutdown-timeout=10")));
    let address = apache.address();
    let stalled = std::thread::spawn(move || tests::http_request(address, "GET", "/?stall", &[], b""));
    let pids = tests::wait_for(Duration::from_secs(10), || Some(served(&site)).filter(|pids| !pids.is_empty()))
        .expect("the stalling request never started");
    assert_stopped(&site, &pids, "deadlock_timeout", &apache.error_log());
    assert!(apache.error_log().contains("appears to have deadlocked"), "{}", apache.error_log());
    let _ = stalled.join();
}

#[test]
fn apache_embedded_child_runs_them_on_stop() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let config = format!("WSGIScriptAlias / {} application-group=%{{GLOBAL}}\n", script(&site).display());
    let mut apache = Apache::start(&ApacheOptions::ours(config));
    assert_eq!(apache.get("/").status(), 200);
    let pids = served(&site);
    assert!(apache.stop(), "Apache did not stop by itself");
    assert_stopped(&site, &pids, "", &apache.error_log());
    assert_finalised(&site, &pids, &apache.error_log());
}

/// Under mpm_prefork the child that served exits from its signal handler,
/// idle (not inside Python): its shutdown code runs there.
#[test]
fn apache_prefork_embedded_child_runs_them_on_stop() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let config = format!("WSGIScriptAlias / {} application-group=%{{GLOBAL}}\n", script(&site).display());
    let mut apache = Apache::start(&ApacheOptions { mpm: tests::apache::Mpm::Prefork, ..ApacheOptions::ours(config) });
    assert_eq!(apache.get("/").status(), 200);
    let pids = served(&site);
    assert!(apache.stop(), "Apache did not stop by itself");
    assert_stopped(&site, &pids, "", &apache.error_log());
    assert_finalised(&site, &pids, &apache.error_log());
}

#[test]
fn destroy_interpreter_off_skips_atexit_but_not_shutdown_callbacks() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let config = format!("WSGIDestroyInterpreter Off\n{}", apache_config(&site, ""));
    let mut apache = Apache::start(&ApacheOptions::ours(config));
    assert_eq!(apache.get("/").status(), 200);
    let pids = served(&site);
    apache.stop();
    let seen = stopped(&site, &pids, false);
    for pid in &pids {
        assert!(seen.contains_key(&format!("shutdown.{pid}")), "{seen:#?}\n{}", apache.error_log());
        assert!(!seen.contains_key(&format!("atexit.{pid}")), "atexit ran with WSGIDestroyInterpreter Off: {seen:#?}");
    }
    assert_not_finalised(&site, &pids);
}

#[test]
fn a_hanging_shutdown_callback_does_not_keep_the_process_alive() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    site.write("hang", "");
    let apache = Apache::start(&ApacheOptions::ours(apache_config(&site, "maximum-requests=1 shutdown-timeout=2")));
    assert_eq!(apache.get("/").status(), 200);
    let pids = served(&site);
    let pid = pids.iter().next().unwrap().clone();
    // The callback started, then hangs; the process ends all the same.
    stopped(&site, &pids, false);
    let gone = tests::wait_for(Duration::from_secs(30), || {
        (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    });
    assert!(gone.is_some(), "daemon process {pid} still alive\n{}", apache.error_log());
    assert!(
        apache.error_log().contains("shutdown callbacks still running after the shutdown timeout"),
        "{}",
        apache.error_log()
    );
}

/// `cpu-time-limit=1`: past its CPU second the daemon process stops
/// gracefully (SIGXCPU, reason `cpu_time_limit`), running its shutdown
/// code, rather than being killed outright.
#[test]
fn cpu_time_limit_stops_the_process_gracefully() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let apache = Apache::start(&ApacheOptions::ours(apache_config(
        &site,
        "cpu-time-limit=1 graceful-timeout=1 shutdown-timeout=5",
    )));
    let address = apache.address();
    let _ = tests::http_request(address, "GET", "/?burn", &[], b"");
    let pids = served(&site);
    assert_stopped(&site, &pids, "cpu_time_limit", &apache.error_log());
}
