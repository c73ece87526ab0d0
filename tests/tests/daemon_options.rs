//! `WSGIDaemonProcess` options acted on as mod_wsgi documents them, in
//! Apache and in the standalone server: the working directory a `user=`
//! gives, `threads=0` service processes, `socket-timeout` taken from the
//! server's `Timeout` when not given, `WSGIIgnoreActivity` against
//! `inactivity-timeout`, and `script-user`/`script-group`.

use std::time::Duration;

use tests::apache::{Apache, ApacheOptions};
use tests::{Server, TempDir};

const CWD: &str = "import os\n\
def application(environ, start_response):\n\
\x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
\x20   return [os.getcwd().encode()]\n";

fn home_config(site: &TempDir) -> String {
    let dir = site.path().display();
    format!(
        "WSGIDaemonProcess as-user user=daemon group=daemon threads=1\n\
         WSGIDaemonProcess as-user-at-tmp user=daemon group=daemon home=/tmp threads=1\n\
         WSGIDaemonProcess as-server threads=1\n\
         WSGIDaemonProcess as-server-user user=www-data group=www-data threads=1\n\
         WSGIScriptAlias /user {dir}/cwd.wsgi process-group=as-user application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /tmp {dir}/cwd.wsgi process-group=as-user-at-tmp application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /server {dir}/cwd.wsgi process-group=as-server application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /server-user {dir}/cwd.wsgi process-group=as-server-user application-group=%{{GLOBAL}}\n"
    )
}

/// What `getent passwd daemon` says its home is.
fn daemon_home() -> String {
    let out = std::process::Command::new("getent").args(["passwd", "daemon"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().split(':').nth(5).unwrap().to_string()
}

#[test]
fn user_gives_the_working_directory_unless_home_is_given() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = TempDir::new("daemon-home");
    site.write("cwd.wsgi", CWD);
    let home = daemon_home();
    let apache = Apache::start(&ApacheOptions::ours(home_config(&site)));
    assert_eq!(apache.get("/user").text(), home, "{}", apache.error_log());
    assert_eq!(apache.get("/tmp").text(), "/tmp");
    assert_eq!(apache.get("/server").text(), "/");
    // The user Apache's children run as keeps the server's directory.
    assert_eq!(apache.get("/server-user").text(), "/");
    drop(apache);
    let file = site.write("site.conf", &home_config(&site));
    let server = Server::start(["--config".as_ref(), file.as_os_str()]);
    assert_eq!(server.get("/user").text(), home, "{}", server.stderr());
    assert_eq!(server.get("/tmp").text(), "/tmp");
    assert_eq!(server.get("/server").text(), "/");
}

const SERVICE: &str = "import os, threading, time\n\
marker = os.path.join(os.path.dirname(__file__), 'markers', 'service.%d' % os.getpid())\n\
def beat():\n\
\x20   for n in range(1000):\n\
\x20       with open(marker, 'w') as f:\n\
\x20           f.write(str(n))\n\
\x20       time.sleep(0.1)\n\
threading.Thread(target=beat, daemon=True).start()\n";

/// The service's directory (with a markers directory its process can
/// write) and the configuration of a threads=0 group that imports it.
fn service_site() -> (TempDir, String) {
    use std::os::unix::fs::PermissionsExt;
    let site = TempDir::new("daemon-service");
    site.write("service.py", SERVICE);
    let markers = site.path().join("markers");
    std::fs::create_dir(&markers).unwrap();
    std::fs::set_permissions(&markers, std::fs::Permissions::from_mode(0o777)).unwrap();
    let config = format!(
        "WSGIDaemonProcess service threads=0\n\
         WSGIImportScript {}/service.py process-group=service application-group=%{{GLOBAL}}\n",
        site.path().display()
    );
    (site, config)
}

/// Waits for the service to beat in its own process and checks that the
/// process has no request thread; `log` says what the server logged.
fn assert_service_runs_alone(site: &TempDir, log: &dyn Fn() -> String) {
    let markers = site.path().join("markers");
    // The service's thread keeps beating in its own process...
    let beating = tests::wait_for(Duration::from_secs(20), || {
        let entry = std::fs::read_dir(&markers).ok()?.flatten().next()?;
        let count: u32 = std::fs::read_to_string(entry.path()).ok()?.parse().ok()?;
        (count >= 5).then(|| entry.file_name().to_string_lossy().into_owned())
    });
    let name = beating.unwrap_or_else(|| panic!("the service never ran\n{}", log()));
    let pid = name.strip_prefix("service.").unwrap();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    assert!(comm.starts_with("(wsgi:service)"), "{comm:?}");
    // ...which has no request thread: only the main thread and the
    // service's own (Python's thread, and no worker or clock threads).
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().count();
    assert!(threads <= 2, "{threads} threads in a threads=0 process");
    assert!(log().contains("Starting process 'service' with threads=0."), "{}", log());
}

#[test]
fn threads_zero_runs_an_import_script_service_without_request_threads() {
    tests::require!(tests::apache::APACHE_BINARY);
    let (site, config) = service_site();
    let apache = Apache::start(&ApacheOptions::ours(config));
    assert_service_runs_alone(&site, &|| apache.error_log());
}

#[test]
fn threads_zero_runs_an_import_script_service_in_the_standalone_server() {
    let (site, config) = service_site();
    let file = site.path().join("site.conf");
    let server = Server::start_with(|port| {
        std::fs::write(&file, format!("Listen 127.0.0.1:{port}\n{config}")).unwrap();
        vec!["--config".into(), file.clone().into_os_string()]
    });
    assert_service_runs_alone(&site, &|| server.stderr());
}

const SLOW: &str = "import time\n\
def application(environ, start_response):\n\
\x20   time.sleep(4)\n\
\x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
\x20   return [b'late']\n";

#[test]
fn socket_timeout_defaults_to_the_server_timeout() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = TempDir::new("daemon-socket-timeout");
    site.write("slow.wsgi", SLOW);
    let dir = site.path().display();
    let config = format!(
        "Timeout 1\n\
         WSGIDaemonProcess slow threads=2\n\
         WSGIDaemonProcess patient threads=2 socket-timeout=30\n\
         WSGIScriptAlias /slow {dir}/slow.wsgi process-group=slow application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /patient {dir}/slow.wsgi process-group=patient application-group=%{{GLOBAL}}\n"
    );
    let apache = Apache::start(&ApacheOptions::ours(config));
    // Timeout 1 applies to the group without socket-timeout...
    assert_eq!(apache.get("/slow").status(), 504, "{}", apache.error_log());
    // ...not to the one with its own.
    let response = apache.get("/patient");
    assert_eq!((response.status(), response.text()), (200, "late".to_string()));
    drop(apache);
    // The standalone server's --socket-timeout is its Timeout.
    let file = site.write(
        "site.conf",
        &format!(
            "WSGIDaemonProcess slow threads=2\n\
             WSGIScriptAlias /slow {dir}/slow.wsgi process-group=slow application-group=%{{GLOBAL}}\n"
        ),
    );
    let server = Server::start(["--config".as_ref(), file.as_os_str(), "--socket-timeout".as_ref(), "1".as_ref()]);
    assert_eq!(server.get("/slow").status(), 504, "{}", server.stderr());
}

const PID: &str = "import os\n\
def application(environ, start_response):\n\
\x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
\x20   return [str(os.getpid()).encode()]\n";

fn activity_config(site: &TempDir) -> String {
    let dir = site.path().display();
    format!(
        "WSGIDaemonProcess idle threads=2 inactivity-timeout=2\n\
         WSGIScriptAlias /app {dir}/pid.wsgi process-group=idle application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /health {dir}/pid.wsgi process-group=idle application-group=%{{GLOBAL}}\n\
         <Location /health>\n\
         \x20   WSGIIgnoreActivity On\n\
         </Location>\n"
    )
}

/// Requests `path` every 300 ms for `duration`, or until a second
/// process answers; the pids that answered.
fn poll(get: &dyn Fn(&str) -> String, path: &str, duration: Duration) -> std::collections::BTreeSet<String> {
    let start = std::time::Instant::now();
    let mut pids = std::collections::BTreeSet::new();
    while start.elapsed() < duration && pids.len() < 2 {
        pids.insert(get(path));
        std::thread::sleep(Duration::from_millis(300));
    }
    pids
}

/// Requests to /app keep the idle group's process (inactivity-timeout=2)
/// alive; requests to /health, under `WSGIIgnoreActivity On`, do not: the
/// process is replaced while health checks keep coming.
fn check_ignore_activity(get: &dyn Fn(&str) -> String, log: &dyn Fn() -> String) {
    let kept = poll(get, "/app", Duration::from_secs(5));
    assert_eq!(kept.len(), 1, "requests to /app are activity: {kept:?}\n{}", log());
    let checked = poll(get, "/health", Duration::from_secs(20));
    assert!(checked.len() > 1, "health checks kept the process alive: {checked:?}\n{}", log());
}

#[test]
fn ignore_activity_lets_an_idle_process_go_despite_health_checks() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = TempDir::new("daemon-ignore-activity");
    site.write("pid.wsgi", PID);
    let apache = Apache::start(&ApacheOptions::ours(activity_config(&site)));
    check_ignore_activity(&|path| apache.get(path).text(), &|| apache.error_log());
    drop(apache);
    let file = site.write("site.conf", &activity_config(&site));
    let server = Server::start(["--config".as_ref(), file.as_os_str()]);
    check_ignore_activity(&|path| server.get(path).text(), &|| server.stderr());
}

fn owner_config(dir: &std::path::Path, option: &str) -> String {
    format!(
        "WSGIDaemonProcess owned threads=1 {option}\n\
         WSGIScriptAlias /app {}/pid.wsgi process-group=owned application-group=%{{GLOBAL}}\n",
        dir.display()
    )
}

fn chown(path: &std::path::Path, owner: &str) {
    let status = std::process::Command::new("chown").arg(owner).arg(path).status().unwrap();
    assert!(status.success());
}

/// `script-user=www-data`: a script root owns is refused with 403 and the
/// reason logged; owned by www-data, with its directory, it runs; a
/// group-writable one is refused again. `script-group=` likewise.
#[test]
fn script_user_and_group_refuse_scripts_of_other_owners() {
    tests::require!(tests::apache::APACHE_BINARY);
    use std::os::unix::fs::PermissionsExt;
    let site = TempDir::new("daemon-script-owner");
    let code = site.path().join("code");
    std::fs::create_dir(&code).unwrap();
    std::fs::set_permissions(&code, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = code.join("pid.wsgi");
    std::fs::write(&script, PID).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();

    for option in ["script-user=www-data", "script-group=www-data"] {
        chown(&code, "root:root");
        chown(&script, "root:root");
        let apache = Apache::start(&ApacheOptions::ours(owner_config(&code, option)));
        assert_eq!(apache.get("/app").status(), 403, "{option}\n{}", apache.error_log());
        let expected = if option.starts_with("script-user") {
            "Owner of WSGI script file does not match required user for daemon process, user=root"
        } else {
            "Group of WSGI script file does not match required group 'www-data'"
        };
        assert!(apache.error_log().contains(expected), "{option}\n{}", apache.error_log());
        chown(&code, "www-data:www-data");
        chown(&script, "www-data:www-data");
        assert_eq!(apache.get("/app").status(), 200, "{option}\n{}", apache.error_log());
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(apache.get("/app").status(), 403, "{option}\n{}", apache.error_log());
        assert!(apache.error_log().contains("WSGI script file is writable to world"));
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    }

    // The standalone server relays through the same check.
    chown(&code, "root:root");
    chown(&script, "root:root");
    let file = site.write("site.conf", &owner_config(&code, "script-user=www-data"));
    let server = Server::start(["--config".as_ref(), file.as_os_str()]);
    assert_eq!(server.get("/app").status(), 403, "{}", server.stderr());
    assert!(server.stderr().contains("does not match required user"), "{}", server.stderr());
}

const SLEEPER: &str = "import time\n\
def application(environ, start_response):\n\
\x20   time.sleep(float(environ['QUERY_STRING']))\n\
\x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
\x20   return [b'done']\n";

/// `request-timeout=2` with `threads=10` fires at 2 * (1 + ln 10), some
/// 6.6 s, as mod_wsgi 6 documents: a 3.5 s request completes, a 20 s one
/// gets 504.
#[test]
fn request_timeout_scales_with_the_thread_count() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = TempDir::new("daemon-request-timeout");
    site.write("sleep.wsgi", SLEEPER);
    let config = format!(
        "WSGIDaemonProcess scaled threads=10 request-timeout=2\n\
         WSGIScriptAlias /sleep {}/sleep.wsgi process-group=scaled application-group=%{{GLOBAL}}\n",
        site.path().display()
    );
    let apache = Apache::start(&ApacheOptions::ours(config.clone()));
    assert_eq!(apache.get("/sleep?3.5").status(), 200, "{}", apache.error_log());
    assert_eq!(apache.get("/sleep?20").status(), 504, "{}", apache.error_log());
    drop(apache);
    // The same group in the standalone server.
    let file = site.path().join("site.conf");
    let server = Server::start_with(|port| {
        std::fs::write(&file, format!("Listen 127.0.0.1:{port}\n{config}")).unwrap();
        vec!["--config".into(), file.clone().into_os_string()]
    });
    assert_eq!(server.get("/sleep?3.5").status(), 200, "{}", server.stderr());
    assert_eq!(server.get("/sleep?20").status(), 504, "{}", server.stderr());
}

/// The owner of the one socket under `dir`.
fn socket_owner(dir: &std::path::Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    let sockets: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(sockets.len(), 1, "{sockets:?}");
    std::fs::metadata(&sockets[0]).unwrap().uid()
}

/// `socket-user=daemon` gives the group's socket to that user (uid 1 on
/// Debian) in both front ends; without it Apache gives it to its
/// children's user.
#[test]
fn socket_user_owns_the_group_socket() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = TempDir::new("daemon-socket-user");
    let sockets = site.path().join("sockets");
    std::fs::create_dir(&sockets).unwrap();
    let config = |option: &str| {
        format!("WSGISocketPrefix {}/wsgi\nWSGIDaemonProcess owned threads=1 {option}\n", sockets.display())
    };
    let apache = Apache::start(&ApacheOptions::ours(config("socket-user=daemon")));
    let owner = tests::wait_for(Duration::from_secs(10), || std::fs::read_dir(&sockets).ok()?.next().map(|_| ()));
    assert!(owner.is_some(), "{}", apache.error_log());
    assert_eq!(socket_owner(&sockets), 1);
    drop(apache);
    let apache = Apache::start(&ApacheOptions::ours(config("")));
    tests::wait_for(Duration::from_secs(10), || std::fs::read_dir(&sockets).ok()?.next().map(|_| ()));
    assert_eq!(socket_owner(&sockets), 33, "www-data, Apache's User");
    drop(apache);
    let file = site.write("site.conf", &config("socket-user=daemon"));
    let server = Server::start(["--config".as_ref(), file.as_os_str()]);
    tests::wait_for(Duration::from_secs(10), || std::fs::read_dir(&sockets).ok()?.next().map(|_| ()));
    assert_eq!(socket_owner(&sockets), 1, "{}", server.stderr());
}

const STACK: &str = "import ctypes\n\
libc = ctypes.CDLL(None)\n\
libc.pthread_self.restype = ctypes.c_ulong\n\
libc.pthread_getattr_np.argtypes = [ctypes.c_ulong, ctypes.c_void_p]\n\
def application(environ, start_response):\n\
\x20   attr = ctypes.create_string_buffer(256)\n\
\x20   libc.pthread_getattr_np(libc.pthread_self(), attr)\n\
\x20   size = ctypes.c_size_t()\n\
\x20   libc.pthread_attr_getstacksize(attr, ctypes.byref(size))\n\
\x20   libc.pthread_attr_destroy(attr)\n\
\x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
\x20   return [str(size.value).encode()]\n";

/// `stack-size=` is the stack of the request threads, as the application's
/// own thread sees it (`pthread_getattr_np` through ctypes).
#[test]
fn stack_size_is_the_request_threads_stack() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = TempDir::new("daemon-stack-size");
    site.write("stack.wsgi", STACK);
    let config = format!(
        "WSGIDaemonProcess big threads=2 stack-size=4194304\n\
         WSGIDaemonProcess default threads=2\n\
         WSGIScriptAlias /big {dir}/stack.wsgi process-group=big application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /default {dir}/stack.wsgi process-group=default application-group=%{{GLOBAL}}\n",
        dir = site.path().display()
    );
    let apache = Apache::start(&ApacheOptions::ours(config.clone()));
    assert_eq!(apache.get("/big").text(), "4194304", "{}", apache.error_log());
    assert_ne!(apache.get("/default").text(), "4194304");
    drop(apache);
    let file = site.write("site.conf", &config);
    let server = Server::start(["--config".as_ref(), file.as_os_str()]);
    assert_eq!(server.get("/big").text(), "4194304", "{}", server.stderr());
}

const BIG_HEADER: &str = "def application(environ, start_response):\n\
\x20   start_response('200 OK', [('Content-Type', 'text/plain'), ('X-Big', 'b' * 40000)])\n\
\x20   return [b'big']\n";

/// A 40000-byte response header line overflows mod_wsgi's 32 KiB header
/// buffer (500, logged); `header-buffer-size=65536` lets it through. The
/// same with Debian's mod_wsgi.
#[test]
fn header_buffer_size_bounds_response_header_lines() {
    tests::require!(tests::apache::APACHE_BINARY, tests::apache::REFERENCE_MODULE);
    let site = TempDir::new("daemon-header-buffer");
    site.write("big.wsgi", BIG_HEADER);
    let dir = site.path().display();
    let config = format!(
        "WSGIDaemonProcess small threads=1\n\
         WSGIDaemonProcess large threads=1 header-buffer-size=65536\n\
         WSGIScriptAlias /small {dir}/big.wsgi process-group=small application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /large {dir}/big.wsgi process-group=large application-group=%{{GLOBAL}}\n"
    );
    for module in [tests::apache::WsgiModule::Ours, tests::apache::WsgiModule::Reference] {
        let apache = Apache::start(&ApacheOptions { module, ..ApacheOptions::ours(config.clone()) });
        assert_eq!(apache.get("/small").status(), 500, "{module:?}\n{}", apache.error_log());
        assert!(apache.error_log().contains("Truncated or oversized response headers"), "{}", apache.error_log());
        let large = apache.get("/large");
        assert_eq!((large.status(), large.header("X-Big").map(str::len)), (200, Some(40000)), "{module:?}");
    }
    // The standalone server relays through the same client.
    let file = site.write("site.conf", &config);
    let server = Server::start(["--config".as_ref(), file.as_os_str()]);
    assert_eq!(server.get("/small").status(), 500, "{}", server.stderr());
    assert!(server.stderr().contains("Truncated or oversized response headers"), "{}", server.stderr());
    let large = server.get("/large");
    assert_eq!((large.status(), large.header("X-Big").map(str::len)), (200, Some(40000)), "{}", server.stderr());
}

/// SLEEPER, which first leaves a marker that the request has started.
const MARKED_SLEEPER: &str = "import os, time\n\
def application(environ, start_response):\n\
\x20   open(os.path.join(os.path.dirname(__file__), 'markers', 'started'), 'w').close()\n\
\x20   time.sleep(float(environ['QUERY_STRING']))\n\
\x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
\x20   return [b'done']\n";

/// The daemon process of group `name` among the descendants of `root`.
fn daemon_pid_under(root: u32, name: &str) -> Option<u32> {
    let comm = |pid: &u32| std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let mut pending = vec![root];
    while let Some(pid) = pending.pop() {
        if comm(&pid).starts_with(&format!("(wsgi:{name})")) {
            return Some(pid);
        }
        pending.extend(tests::child_pids(pid));
    }
    None
}

/// A request of 4 s in flight, then `signal` to its daemon process
/// (graceful-timeout=1, eviction-timeout=30), under Apache or the
/// standalone server: the status it gets, and the server's log.
fn in_flight_status_after(signal: &str, standalone: bool) -> (u16, String) {
    use std::os::unix::fs::PermissionsExt;
    let site = TempDir::new("daemon-eviction");
    site.write("sleep.wsgi", MARKED_SLEEPER);
    let markers = site.path().join("markers");
    std::fs::create_dir(&markers).unwrap();
    std::fs::set_permissions(&markers, std::fs::Permissions::from_mode(0o777)).unwrap();
    let config = format!(
        "WSGIDaemonProcess evicted processes=1 threads=2 graceful-timeout=1 eviction-timeout=30\n\
         WSGIScriptAlias /sleep {}/sleep.wsgi process-group=evicted application-group=%{{GLOBAL}}\n",
        site.path().display()
    );
    let (apache, server);
    let (address, root, log): (std::net::SocketAddr, u32, Box<dyn Fn() -> String>) = if standalone {
        let file = site.write("site.conf", &config);
        server = Server::start(["--config".as_ref(), file.as_os_str()]);
        (server.address(), server.pid(), Box::new(|| server.stderr()))
    } else {
        apache = Apache::start(&ApacheOptions::ours(config));
        (apache.address(), apache.pid(), Box::new(|| apache.error_log()))
    };
    let warm = tests::http_request(address, "GET", "/sleep?0", &[], b"").map(|r| r.status());
    assert_eq!(warm, Ok(200), "{}", log());
    let pid = tests::wait_for(Duration::from_secs(10), || daemon_pid_under(root, "evicted"))
        .unwrap_or_else(|| panic!("no daemon process of 'evicted'\n{}", log()));
    let started = markers.join("started");
    std::fs::remove_file(&started).unwrap();
    let request =
        std::thread::spawn(move || tests::http_request(address, "GET", "/sleep?4", &[], b"").map(|r| r.status()));
    // Signalled once the request runs in the daemon process.
    assert!(tests::wait_for(Duration::from_secs(10), || started.exists().then_some(())).is_some());
    let status = std::process::Command::new("kill").arg(signal).arg(pid.to_string()).status().unwrap();
    assert!(status.success());
    (request.join().unwrap().unwrap_or(0), format!("daemon pid {pid}\n{}", log()))
}

/// SIGUSR1 evicts a daemon process with `eviction-timeout`, long enough
/// for the request in flight; SIGTERM stops it with `graceful-timeout`,
/// which cuts that request off; in both front ends.
#[test]
fn eviction_timeout_applies_to_sigusr1() {
    tests::require!(tests::apache::APACHE_BINARY);
    for standalone in [false, true] {
        let (status, log) = in_flight_status_after("-USR1", standalone);
        assert_eq!(status, 200, "standalone: {standalone}\n{log}");
        let (status, log) = in_flight_status_after("-TERM", standalone);
        assert_ne!(status, 200, "standalone: {standalone}\n{log}");
    }
}

const LOOPER: &str = "import os, time\n\
def application(environ, start_response):\n\
\x20   if environ['QUERY_STRING'] == 'loop':\n\
\x20       for _ in range(600):\n\
\x20           time.sleep(0.05)\n\
\x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
\x20   return [str(os.getpid()).encode()]\n";

/// `interrupt-timeout=`: a request past its request timeout gets
/// `mod_wsgi.RequestTimeout` raised in its thread; it unwinds, is answered
/// 504, and the process serves on (the same pid answers next), in both
/// front ends.
#[test]
fn interrupt_timeout_unwinds_the_request_and_keeps_the_process() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = TempDir::new("daemon-interrupt");
    site.write("loop.wsgi", LOOPER);
    let config = format!(
        "WSGIDaemonProcess patient processes=1 threads=1 request-timeout=1 interrupt-timeout=10\n\
         WSGIScriptAlias /app {}/loop.wsgi process-group=patient application-group=%{{GLOBAL}}\n",
        site.path().display()
    );
    let check = |get: &dyn Fn(&str) -> (u16, String), log: &dyn Fn() -> String| {
        let (status, before) = get("/app");
        assert_eq!(status, 200, "{}", log());
        assert_eq!(get("/app?loop").0, 504, "{}", log());
        assert_eq!(get("/app").1, before, "the process was replaced\n{}", log());
        assert!(log().contains("RequestTimeout"), "{}", log());
    };
    let apache = Apache::start(&ApacheOptions::ours(config.clone()));
    check(
        &|path| {
            let r = apache.get(path);
            (r.status(), r.text())
        },
        &|| apache.error_log(),
    );
    drop(apache);
    let file = site.write("site.conf", &config);
    let server = Server::start(["--config".as_ref(), file.as_os_str()]);
    check(
        &|path| {
            let r = server.get(path);
            (r.status(), r.text())
        },
        &|| server.stderr(),
    );
}

const BIG_BODY: &str = "def application(environ, start_response):\n\
\x20   start_response('200 OK', [('Content-Type', 'application/octet-stream')])\n\
\x20   for _ in range(64):\n\
\x20       yield b'x' * (1 << 20)\n";

/// GET `path`, then 4 s without reading: how many body bytes arrive.
fn bytes_after_a_stall(address: std::net::SocketAddr, path: &str) -> usize {
    let mut connection = tests::HttpConnection::open(address);
    connection.send(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes()).unwrap();
    std::thread::sleep(Duration::from_secs(4));
    match connection.read_response(false) {
        Ok(response) => response.body.len(),
        Err(_) => connection.raw_received().len().min(64 << 20),
    }
}

fn stall_config(site: &TempDir) -> String {
    let dir = site.path().display();
    format!(
        "WSGIDaemonProcess quick threads=1 response-socket-timeout=1 socket-timeout=30\n\
         WSGIDaemonProcess patient threads=1 socket-timeout=30\n\
         WSGIScriptAlias /quick {dir}/big.wsgi process-group=quick application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /patient {dir}/big.wsgi process-group=patient application-group=%{{GLOBAL}}\n"
    )
}

/// `response-socket-timeout=1`: a client that stops reading a large
/// response for 4 s loses it (cut after 1 s); with the group's 30 s
/// socket timeout the whole body arrives after the pause.
#[test]
fn response_socket_timeout_bounds_writes_to_a_stalled_client() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = TempDir::new("daemon-response-timeout");
    site.write("big.wsgi", BIG_BODY);
    let full = 64 << 20;
    let apache = Apache::start(&ApacheOptions::ours(format!("Timeout 30\n{}", stall_config(&site))));
    assert!(bytes_after_a_stall(apache.address(), "/quick") < full, "{}", apache.error_log());
    assert_eq!(bytes_after_a_stall(apache.address(), "/patient"), full, "{}", apache.error_log());
    drop(apache);
    let file = site.write("site.conf", &stall_config(&site));
    let server = Server::start(["--config".as_ref(), file.as_os_str(), "--socket-timeout".as_ref(), "30".as_ref()]);
    assert!(bytes_after_a_stall(server.address(), "/quick") < full, "{}", server.stderr());
    assert_eq!(bytes_after_a_stall(server.address(), "/patient"), full, "{}", server.stderr());
}
