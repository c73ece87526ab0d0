//! Chaos under load, as tests of fixed durations: daemon processes killed
//! with SIGKILL every 2 s for 60 s (under Apache and under the standalone
//! server), `apachectl graceful` every 2 s for 60 s, a daemon process
//! stopped with SIGSTOP, and an error log whose file is removed and whose
//! disk fills up.
//!
//! Each test prints one `chaos:` line with what it measured (requests,
//! failures by status, hangs, how long a replacement took to serve), so
//! the numbers can be quoted. They run in parallel: the short ones on
//! cargo's test threads, the two kill scenarios and the graceful one,
//! which take a minute each, in one test of three threads.
//!
//! `CHAOS_SCENARIOS=standalone` (a comma-separated list of words) runs
//! only the minute-long scenarios whose name holds one of them, to
//! measure one without the others' load: `CHAOS_SCENARIOS=kill-9
//! cargo test -p tests --test chaos a_minute -- --nocapture`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tests::apache::{Apache, ApacheOptions};
use tests::{HttpConnection, Server, TempDir};

/// How long the kill and graceful tests run.
const RUN: Duration = Duration::from_secs(60);
/// How often they strike.
const EVERY: Duration = Duration::from_secs(2);
/// Concurrent clients of the load.
const CLIENTS: usize = 8;
/// A response that takes longer than this is a hang.
const HANG: Duration = Duration::from_secs(15);

/// The app: `/sleep?S` sleeps, `/hold?S` too, having created
/// `held/PID` in the site, `/log` writes to `wsgi.errors` and prints (to
/// the error log), anything else describes its process (`pid`) as JSON.
fn site(prefix: &str) -> TempDir {
    use std::os::unix::fs::PermissionsExt;
    let site = TempDir::new(prefix);
    let held = site.path().join("held");
    std::fs::create_dir(&held).unwrap();
    // The daemon processes run as Apache's child user.
    std::fs::set_permissions(&held, std::fs::Permissions::from_mode(0o777)).unwrap();
    site.write(
        "app.wsgi",
        &tests::PROCESS_APP.replace(
            "    if path == '/echo':",
            &format!(
                "    if path == '/log':\n        environ['wsgi.errors'].write('chaos: a line for the error log ' * 4 + '\\n')\n        print('chaos: printed', flush=True)\n\
                 \x20   if path == '/hold':\n        open('{}/%d' % os.getpid(), 'w').close()\n        time.sleep(float(environ['QUERY_STRING']))\n\
                 \x20   if path == '/echo':",
                held.display()
            ),
        ),
    );
    site
}

/// The daemon processes that have run `/hold`.
fn held(site: &TempDir) -> Vec<u32> {
    std::fs::read_dir(site.path().join("held"))
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_string_lossy().parse().ok())
        .collect()
}

/// What one request came to.
enum Outcome {
    /// A complete response: its status and body.
    Status(u16, String),
    /// The connection failed (refused, reset, closed before a response).
    Error(String),
    /// No response within [`HANG`].
    Hang,
}

/// `GET path` on a new connection, with a read limit of `limit`.
fn get(address: SocketAddr, path: &str, limit: Duration) -> Outcome {
    let mut connection = match HttpConnection::try_open(address) {
        Ok(connection) => connection,
        Err(e) => return Outcome::Error(format!("connect: {e}")),
    };
    let _ = connection.stream().set_read_timeout(Some(limit));
    let head = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n", address.port());
    if let Err(e) = connection.send(head.as_bytes()) {
        return Outcome::Error(format!("send: {e}"));
    }
    match connection.read_response(false) {
        Ok(response) => Outcome::Status(response.status(), response.text()),
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => Outcome::Hang,
        Err(e) => Outcome::Error(e.to_string()),
    }
}

/// What the clients of a [`Load`] saw.
#[derive(Default)]
struct Tally {
    requests: u64,
    /// Statuses other than 200, counted.
    statuses: BTreeMap<u16, u64>,
    /// Connection errors (not timeouts).
    errors: Vec<String>,
    hangs: u64,
    /// When each daemon process (by pid) first answered 200.
    first_served: HashMap<u32, Instant>,
}

impl Tally {
    fn failed(&self) -> u64 {
        self.statuses.values().sum::<u64>() + self.errors.len() as u64 + self.hangs
    }

    fn statuses_text(&self) -> String {
        let statuses: Vec<String> = self.statuses.iter().map(|(status, n)| format!("{status}: {n}")).collect();
        if statuses.is_empty() {
            "none".into()
        } else {
            statuses.join(", ")
        }
    }
}

/// [`CLIENTS`] clients sending GETs in a loop, each on a new connection;
/// client `i` asks for `paths[i % paths.len()]`.
struct Load {
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
    clients: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(address: SocketAddr, paths: &[&str]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Mutex::new(Tally::default()));
        let clients = (0..CLIENTS)
            .map(|i| {
                let (stop, tally, path) = (stop.clone(), tally.clone(), paths[i % paths.len()].to_string());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let outcome = get(address, &path, HANG);
                        let mut tally = tally.lock().unwrap();
                        tally.requests += 1;
                        match outcome {
                            Outcome::Status(200, body) => {
                                if let Some(pid) = tests::json_field(&body, "pid").and_then(|p| p.parse().ok()) {
                                    tally.first_served.entry(pid).or_insert_with(Instant::now);
                                }
                            }
                            Outcome::Status(status, _) => *tally.statuses.entry(status).or_default() += 1,
                            Outcome::Error(e) => tally.errors.push(e),
                            Outcome::Hang => tally.hangs += 1,
                        }
                    }
                })
            })
            .collect();
        Load { stop, tally, clients }
    }

    /// The daemon processes that have answered so far.
    fn served(&self) -> HashSet<u32> {
        self.tally.lock().unwrap().first_served.keys().copied().collect()
    }

    fn finish(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            client.join().expect("a load client panicked");
        }
        Arc::try_unwrap(self.tally).ok().expect("the clients are done").into_inner().unwrap()
    }
}

/// Whether process `pid` exists and is not a zombie.
fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
}

/// The parent of process `pid`.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// Pids of the live (not zombie) processes named `(wsgi:GROUP)` that
/// descend from `top` (the server's top process).
fn daemon_pids(group: &str, top: u32) -> Vec<u32> {
    let wanted: String = format!("(wsgi:{group})").chars().take(15).collect();
    let descends = |pid: u32| {
        let mut current = pid;
        for _ in 0..8 {
            match parent_of(current) {
                Some(parent) if parent == top => return true,
                Some(parent) if parent > 1 => current = parent,
                _ => return false,
            }
        }
        false
    };
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        if std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == wanted)
            && is_alive(pid)
            && descends(pid)
        {
            pids.push(pid);
        }
    }
    pids
}

fn signal(pid: u32, signal: &str) {
    let _ = std::process::Command::new("kill").args([signal, &pid.to_string()]).status();
}

/// A small pseudo-random sequence (xorshift), seeded from the clock.
struct Random(u64);

impl Random {
    fn new() -> Random {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        Random(nanos as u64 | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// The daemon processes that answer a round of requests that take every
/// thread of the group (`threads` in all): a process takes no more
/// requests than it has threads, so every ready one answers some.
fn serving_round(address: SocketAddr, threads: usize) -> HashSet<u32> {
    let round: Vec<_> =
        (0..threads).map(|_| std::thread::spawn(move || get(address, "/app/sleep?0.3", HANG))).collect();
    let mut served = HashSet::new();
    for request in round {
        if let Ok(Outcome::Status(200, body)) = request.join() {
            if let Some(pid) = tests::json_field(&body, "pid").and_then(|p| p.parse().ok()) {
                served.insert(pid);
            }
        }
    }
    served
}

/// Waits until `group` has its `processes` daemon processes and a round
/// of requests taking all its `threads` succeeds.
///
/// Not until every process has served: front ends keep their connections
/// to daemon processes for reuse, so a process that was ready later than
/// the others may get none of a round's requests.
fn warm_up(address: SocketAddr, group: &str, top: u32, processes: usize, threads: usize) {
    let done = tests::wait_for(Duration::from_secs(30), || {
        let served = serving_round(address, threads);
        (daemon_pids(group, top).len() == processes && !served.is_empty()).then_some(())
    });
    assert!(done.is_some(), "the group '{group}' did not start its {processes} daemon processes");
}

/// How long a killed daemon process's replacement may take to serve: far
/// above what it takes (about a second), for a loaded machine.
const REPLACEMENT_BOUND: Duration = Duration::from_secs(8);

/// One SIGKILL.
struct Kill {
    at: Instant,
    /// The daemon processes alive just before.
    before: Vec<u32>,
}

/// SIGKILL to a random serving daemon process of `group` every 2 s for
/// 60 s, under load; `threads` is the group's threads per process.
fn kill_nine_under_load(
    label: &str,
    address: SocketAddr,
    top: u32,
    group: &str,
    threads: u64,
    log: &dyn Fn() -> String,
) {
    warm_up(address, group, top, 3, 3 * threads as usize);
    let load = Load::start(address, &["/app/load"]);
    let began = Instant::now();
    let mut random = Random::new();
    let mut kills = Vec::new();
    let mut next = began + EVERY;
    while next < began + RUN {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next += EVERY;
        // A process that has served (not one still starting).
        let served = load.served();
        let before = daemon_pids(group, top);
        let candidates: Vec<u32> = before.iter().copied().filter(|pid| served.contains(pid)).collect();
        if candidates.is_empty() {
            continue;
        }
        let victim = candidates[random.below(candidates.len())];
        let at = Instant::now();
        signal(victim, "-KILL");
        kills.push(Kill { at, before });
    }
    std::thread::sleep((began + RUN).saturating_duration_since(Instant::now()));
    // The last kill's replacement gets the time every replacement has (the
    // bound below) to serve before the load ends: a process that no kill
    // saw alive.
    let seen_before: HashSet<u32> = kills.iter().flat_map(|kill| kill.before.iter().copied()).collect();
    tests::wait_for(REPLACEMENT_BOUND, || load.served().iter().any(|pid| !seen_before.contains(pid)).then_some(()));
    let tally = load.finish();

    // Each kill's replacement: the first process, not alive before it,
    // that served after it (and was no earlier kill's replacement).
    let mut taken = HashSet::new();
    let mut replacements = Vec::new();
    let mut unreplaced = 0;
    for kill in &kills {
        let replacement = tally
            .first_served
            .iter()
            .filter(|(pid, at)| **at > kill.at && !kill.before.contains(pid) && !taken.contains(*pid))
            .min_by_key(|(_, at)| **at);
        match replacement {
            Some((pid, at)) => {
                taken.insert(*pid);
                replacements.push(at.duration_since(kill.at));
            }
            None => unreplaced += 1,
        }
    }
    replacements.sort();
    let median = replacements.get(replacements.len() / 2).copied().unwrap_or_default();
    let max = replacements.last().copied().unwrap_or_default();
    eprintln!(
        "chaos: {label} kill-9: {} kills, {} requests, {} failed ({}), {} connection errors, {} hangs, \
         replacement median {}, max {}{}",
        kills.len(),
        tally.requests,
        tally.failed(),
        tally.statuses_text(),
        tally.errors.len(),
        tally.hangs,
        seconds(median),
        seconds(max),
        if unreplaced > 0 { format!(", {unreplaced} not seen replaced") } else { String::new() },
    );
    assert!(kills.len() >= 25, "too few kills: {}", kills.len());
    assert_eq!(tally.hangs, 0, "hanging requests\n{}", log());
    assert!(tally.errors.is_empty(), "connection errors: {:?}\n{}", tally.errors, log());
    let unexpected: Vec<&u16> = tally.statuses.keys().filter(|status| !matches!(status, 502 | 503)).collect();
    assert!(unexpected.is_empty(), "statuses other than 502/503: {}\n{}", tally.statuses_text(), log());
    // Only requests in flight on a killed process fail: at most one per
    // thread of each.
    assert!(tally.failed() <= kills.len() as u64 * threads, "{} failed for {} kills", tally.failed(), kills.len());
    assert_eq!(unreplaced, 0, "kills without a replacement that served\n{}", log());
    assert!(max < REPLACEMENT_BOUND, "a replacement took {}\n{}", seconds(max), log());
    // And the group serves on.
    assert!(matches!(get(address, "/app/x", HANG), Outcome::Status(200, _)), "{}", log());
}

/// The three minute-long scenarios, at once: cargo runs as many tests at a
/// time as the machine has CPUs (two on the CI machine), which would run
/// them one after the other. Each runs to its end; the failures of all
/// are reported together.
#[test]
fn a_minute_of_kills_and_graceful_restarts_under_load() {
    let scenarios: [(&str, fn()); 3] = [
        ("apache kill-9", apache_kill_nine_every_two_seconds_fails_only_requests_in_flight),
        ("standalone kill-9", standalone_kill_nine_every_two_seconds_fails_only_requests_in_flight),
        ("apache graceful", apache_graceful_every_two_seconds_fails_no_request),
    ];
    let wanted = std::env::var("CHAOS_SCENARIOS").unwrap_or_default();
    let wanted: Vec<&str> = wanted.split(',').map(str::trim).filter(|word| !word.is_empty()).collect();
    let chosen: Vec<_> = scenarios
        .iter()
        .filter(|(name, _)| wanted.is_empty() || wanted.iter().any(|word| name.contains(word)))
        .collect();
    assert!(!chosen.is_empty(), "CHAOS_SCENARIOS={} names none of the scenarios", wanted.join(","));
    let failures: Vec<String> = std::thread::scope(|scope| {
        let running: Vec<_> = chosen.iter().map(|&&(name, run)| (name, scope.spawn(run))).collect();
        running
            .into_iter()
            .filter_map(|(name, scenario)| {
                let panic = scenario.join().err()?;
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Some(format!("{name}: {message}"))
            })
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn apache_kill_nine_every_two_seconds_fails_only_requests_in_flight() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site("chaos-apache-kill");
    let dir = site.path().display();
    let apache = Apache::start(&ApacheOptions::ours(format!(
        "WSGIDaemonProcess chaoskill processes=3 threads=4\n\
         WSGIScriptAlias /app {dir}/app.wsgi process-group=chaoskill application-group=%{{GLOBAL}}"
    )));
    kill_nine_under_load("apache", apache.address(), apache.pid(), "chaoskill", 4, &|| apache.error_log());
}

/// The standalone server with one daemon group (`NAME OPTIONS`) from a
/// configuration file, and extra arguments.
fn standalone(site: &TempDir, daemon: &str, extra: &[&str]) -> Server {
    let name = daemon.split_whitespace().next().unwrap_or("grp");
    let config = site.write(
        "chaos.conf",
        &format!(
            "WSGIDaemonProcess {daemon}\nWSGIScriptAlias /app {}/app.wsgi process-group={name} application-group=%{{GLOBAL}}\n",
            site.path().display()
        ),
    );
    let mut args = vec!["--config".as_ref(), config.as_os_str()];
    args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
    Server::start(args)
}

fn standalone_kill_nine_every_two_seconds_fails_only_requests_in_flight() {
    let site = site("chaos-standalone-kill");
    let mut server = standalone(&site, "chaosksa processes=3 threads=4", &[]);
    kill_nine_under_load("standalone", server.address(), server.pid(), "chaosksa", 4, &|| server.stderr());
    stop(&mut server);
}

/// Stops the server as an operator would (SIGTERM), and its processes
/// with it.
fn stop(server: &mut Server) {
    server.terminate();
    assert!(server.wait_exit(Duration::from_secs(30)).is_some(), "the server did not stop\n{}", server.stderr());
}

fn apache_graceful_every_two_seconds_fails_no_request() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site("chaos-apache-graceful");
    let dir = site.path().display();
    let apache = Apache::start(&ApacheOptions::ours(format!(
        "WSGIDaemonProcess chaosgrace processes=2 threads=4\n\
         WSGIScriptAlias /app {dir}/app.wsgi process-group=chaosgrace application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /embedded {dir}/app.wsgi application-group=%{{GLOBAL}}"
    )));
    warm_up(apache.address(), "chaosgrace", apache.pid(), 2, 8);
    let load = Load::start(apache.address(), &["/app/load", "/embedded/load"]);
    let began = Instant::now();
    let mut gracefuls = 0;
    let mut next = began + EVERY;
    while next < began + RUN {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next += EVERY;
        apache.graceful();
        gracefuls += 1;
    }
    std::thread::sleep((began + RUN).saturating_duration_since(Instant::now()));
    let tally = load.finish();
    // Every generation but the last is retired: as many daemon processes
    // as configured are left.
    let settled = tests::wait_for(Duration::from_secs(30), || {
        let pids = daemon_pids("chaosgrace", apache.pid());
        (pids.len() == 2).then_some(pids)
    });
    let left = daemon_pids("chaosgrace", apache.pid());
    eprintln!(
        "chaos: apache graceful: {gracefuls} gracefuls, {} requests, {} failed ({}), {} connection errors, {} hangs, \
         {} daemon processes served, {} left",
        tally.requests,
        tally.failed(),
        tally.statuses_text(),
        tally.errors.len(),
        tally.hangs,
        tally.first_served.len(),
        left.len(),
    );
    assert_eq!(tally.failed(), 0, "{} {:?}\n{}", tally.statuses_text(), tally.errors, apache.error_log());
    assert!(settled.is_some(), "daemon processes of earlier generations left: {left:?}\n{}", apache.error_log());
    assert!(tally.first_served.len() > 2, "the daemon processes were not restarted");
}

/// Continues a stopped process when dropped (it may be gone already).
struct Continue(u32);

impl Drop for Continue {
    fn drop(&mut self) {
        signal(self.0, "-CONT");
    }
}

/// A daemon process stopped with SIGSTOP while it runs requests (group of
/// 2 processes of 2 threads, `request-timeout=4`): its clients get 504,
/// the other process's 200, and it is killed and replaced.
fn stopped_process(label: &str, site: &TempDir, address: SocketAddr, top: u32, group: &str, log: &dyn Fn() -> String) {
    warm_up(address, group, top, 2, 4);
    let before: HashSet<u32> = daemon_pids(group, top).into_iter().collect();
    // One request for every thread of the group; the victim is a process
    // that runs some.
    let in_flight: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let started = Instant::now();
                (get(address, "/app/hold?3", Duration::from_secs(40)), started.elapsed())
            })
        })
        .collect();
    let victim = tests::wait_for(Duration::from_secs(2), || held(site).first().copied())
        .unwrap_or_else(|| panic!("no request reached a daemon process\n{}", log()));
    std::thread::sleep(Duration::from_millis(300));
    let stopped_at = Instant::now();
    signal(victim, "-STOP");
    let _continue = Continue(victim);
    // The other process serves meanwhile.
    let mut others = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let outcome = get(address, "/app/x", Duration::from_secs(40));
        others.push((outcome, started.elapsed()));
    }
    let gone = tests::wait_for(Duration::from_secs(30), || (!daemon_pids(group, top).contains(&victim)).then_some(()));
    let detected = stopped_at.elapsed();
    assert!(gone.is_some(), "the stopped process {victim} was not replaced\n{}", log());
    let replaced = tests::wait_for(Duration::from_secs(15), || {
        serving_round(address, 8).iter().any(|pid| !before.contains(pid)).then_some(())
    });
    let replaced_after = stopped_at.elapsed();
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let mut waited = Duration::ZERO;
    for request in in_flight {
        let (outcome, took) = request.join().unwrap();
        let key = match outcome {
            Outcome::Status(status, _) => status.to_string(),
            Outcome::Error(e) => format!("error {e}"),
            Outcome::Hang => "hang".into(),
        };
        if key == "504" {
            waited = waited.max(took);
        }
        *statuses.entry(key).or_default() += 1;
    }
    let others_text: Vec<String> = others
        .iter()
        .map(|(outcome, took)| match outcome {
            Outcome::Status(status, _) => format!("{status} in {}", seconds(*took)),
            Outcome::Error(e) => format!("error {e}"),
            Outcome::Hang => "hang".into(),
        })
        .collect();
    eprintln!(
        "chaos: {label} SIGSTOP: in-flight requests {statuses:?} (504 after at most {}), killed after {}, \
         a replacement served after {}; requests meanwhile: {}",
        seconds(waited),
        seconds(detected),
        seconds(replaced_after),
        others_text.join(", ")
    );
    assert!(replaced.is_some(), "no replacement served\n{}", log());
    assert!(statuses.keys().all(|k| k == "200" || k == "504"), "in-flight requests: {statuses:?}\n{}", log());
    assert!(statuses.contains_key("504"), "no request was in flight on the stopped process: {statuses:?}");
    assert!(others.iter().all(|(o, _)| matches!(o, Outcome::Status(200, _))), "meanwhile: {others_text:?}\n{}", log());
    assert!(log().contains("has not responded for"), "{}", log());
}

#[test]
fn apache_a_stopped_daemon_process_is_replaced_and_its_clients_get_504() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site("chaos-apache-stop");
    let dir = site.path().display();
    let apache = Apache::start(&ApacheOptions::ours(format!(
        "WSGIDaemonProcess chaosstop processes=2 threads=2 request-timeout=4\n\
         WSGIScriptAlias /app {dir}/app.wsgi process-group=chaosstop application-group=%{{GLOBAL}}"
    )));
    stopped_process("apache", &site, apache.address(), apache.pid(), "chaosstop", &|| apache.error_log());
}

#[test]
fn standalone_a_stopped_daemon_process_is_replaced_and_its_clients_get_504() {
    let site = site("chaos-standalone-stop");
    let mut server = standalone(&site, "chaosssa processes=2 threads=2 request-timeout=4", &[]);
    stopped_process("standalone", &site, server.address(), server.pid(), "chaosssa", &|| server.stderr());
    stop(&mut server);
}

/// The live children of `top`: with no daemon group, the standalone
/// server's serving processes.
fn children_of(top: u32) -> HashSet<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|&pid| parent_of(pid) == Some(top) && is_alive(pid))
        .collect()
}

/// A serving process of the standalone server (embedded mode, not a
/// daemon process) stopped with SIGSTOP falls silent to its supervisor,
/// which kills it once `--request-timeout` plus two heartbeats have passed
/// and starts another; the server keeps answering meanwhile.
#[test]
fn standalone_a_stopped_serving_process_is_replaced() {
    let site = site("chaos-standalone-serving-stop");
    let config = site.write("serving.conf", &format!("WSGIScriptAlias /app {}/app.wsgi\n", site.path().display()));
    let mut server = Server::start([
        "--config".as_ref(),
        config.as_os_str(),
        "--processes".as_ref(),
        "2".as_ref(),
        "--request-timeout".as_ref(),
        "2".as_ref(),
    ]);
    let (address, top) = (server.address(), server.pid());
    // Both have served, so both are ready: the watch is for ready processes.
    let mut served = HashSet::new();
    let serving = tests::wait_for(Duration::from_secs(30), || {
        if let Outcome::Status(200, body) = get(address, "/app/x", HANG) {
            served.extend(tests::json_field(&body, "pid").and_then(|pid| pid.parse::<u32>().ok()));
        }
        let children = children_of(top);
        (children.len() == 2 && children.is_subset(&served)).then_some(children)
    })
    .unwrap_or_else(|| panic!("the server's 2 serving processes did not both serve\n{}", server.stderr()));
    let victim = *serving.iter().min().unwrap();
    let stopped_at = Instant::now();
    signal(victim, "-STOP");
    let _continue = Continue(victim);
    let replaced = tests::wait_for(Duration::from_secs(30), || {
        let children = children_of(top);
        (!children.contains(&victim) && children.len() == 2).then_some(())
    });
    let replaced_after = stopped_at.elapsed();
    let statuses: Vec<Outcome> = (0..20).map(|_| get(address, "/app/x", HANG)).collect();
    let served = statuses.iter().filter(|outcome| matches!(outcome, Outcome::Status(200, _))).count();
    eprintln!("chaos: standalone serving process SIGSTOP: killed and replaced after {}", seconds(replaced_after));
    assert!(replaced.is_some(), "the stopped serving process {victim} was not replaced\n{}", server.stderr());
    assert_eq!(served, 20, "after the replacement\n{}", server.stderr());
    assert!(server.stderr().contains("has not responded for"), "{}", server.stderr());
    stop(&mut server);
}

/// A small tmpfs, unmounted (lazily, whatever still holds it) on drop.
struct Tmpfs {
    dir: TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` on a new directory; `None` (skipped, or a
    /// failure under CI) where mounting is not permitted.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = TempDir::new("chaos-tmpfs");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "tmpfs"])
            .arg(dir.path())
            .status();
        if status.is_ok_and(|s| s.success()) {
            return Some(Tmpfs { dir });
        }
        assert!(std::env::var_os("CI").is_none(), "cannot mount a tmpfs (the tests run as root)");
        eprintln!("skipped: cannot mount a tmpfs");
        None
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

#[test]
fn standalone_serves_on_when_its_error_log_is_removed_and_its_disk_full() {
    let site = site("chaos-standalone-disk");
    let Some(disk) = Tmpfs::mount("2m") else { return };
    let log_path = disk.path().join("error.log");
    let log_arg = log_path.to_string_lossy().into_owned();
    let mut server =
        standalone(&site, "chaosdisk processes=1 threads=4", &["--error-log", &log_arg, "--processes", "2"]);
    let ok = |path: &str| matches!(get(server.address(), path, HANG), Outcome::Status(200, _));
    assert!((0..5).all(|_| ok("/app/log")));
    let logged = tests::wait_for(Duration::from_secs(5), || {
        std::fs::read_to_string(&log_path).unwrap_or_default().contains("a line for the error log").then_some(())
    });
    assert!(logged.is_some(), "nothing logged: {}", server.stderr());
    // The file goes, and the disk fills up.
    std::fs::remove_file(&log_path).unwrap();
    let filler = disk.path().join("filler");
    let full = std::fs::write(&filler, vec![0u8; 4 << 20]).is_err();
    assert!(full, "the tmpfs did not fill up");
    let mut served = 0;
    let mut failed = Vec::new();
    for n in 0..300 {
        let path = if n % 3 == 2 { "/app/x" } else { "/app/log" };
        match get(server.address(), path, HANG) {
            Outcome::Status(200, _) => served += 1,
            Outcome::Status(status, _) => failed.push(format!("status {status}")),
            Outcome::Error(e) => failed.push(e),
            Outcome::Hang => failed.push("hang".into()),
        }
    }
    // Reported once, on the server's own standard error.
    let reported = tests::wait_for(Duration::from_secs(5), || {
        server.stderr().contains("cannot write to log file").then(|| server.stderr())
    })
    .unwrap_or_else(|| server.stderr());
    let reports = reported.matches("cannot write to log file").count();
    // Space again: the log (the removed file, still open) is written
    // again, and that is said once too.
    std::fs::remove_file(&filler).unwrap();
    assert!((0..20).all(|_| ok("/app/log")));
    let recovered = tests::wait_for(Duration::from_secs(5), || {
        server.stderr().contains("is written again").then(|| server.stderr())
    });
    eprintln!(
        "chaos: standalone disk full: {served} of 300 requests served while the error log could not be written, \
         {reports} report(s) of the failure, {}",
        if recovered.is_some() { "recovery reported" } else { "recovery not reported" }
    );
    assert!(failed.is_empty(), "failed while the disk was full: {failed:?}\n{}", server.stderr());
    assert_eq!(reports, 1, "the failure is reported once:\n{reported}");
    assert!(recovered.is_some(), "{}", server.stderr());
    assert_eq!(server.stderr().matches("is written again").count(), 1, "{}", server.stderr());
    // The server stops cleanly before the tmpfs goes.
    stop(&mut server);
}

#[test]
fn apache_serves_on_when_its_error_log_is_removed_and_its_disk_full() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site("chaos-apache-disk");
    let Some(disk) = Tmpfs::mount("2m") else { return };
    let log_path = disk.path().join("error.log");
    let dir = site.path().display();
    let apache = Apache::start(&ApacheOptions {
        error_log: Some(log_path.clone()),
        ..ApacheOptions::ours(format!(
            "WSGIDaemonProcess chaosdisk processes=1 threads=4\n\
             WSGIScriptAlias /app {dir}/app.wsgi process-group=chaosdisk application-group=%{{GLOBAL}}\n\
             WSGIScriptAlias /embedded {dir}/app.wsgi application-group=%{{GLOBAL}}"
        ))
    });
    let ok = |path: &str| matches!(get(apache.address(), path, HANG), Outcome::Status(200, _));
    assert!(ok("/app/log") && ok("/embedded/log"), "{}", apache.error_log());
    // The file goes, and the disk fills up.
    std::fs::remove_file(&log_path).unwrap();
    let filler = disk.path().join("filler");
    assert!(std::fs::write(&filler, vec![0u8; 4 << 20]).is_err(), "the tmpfs did not fill up");
    let paths = ["/app/log", "/embedded/log", "/app/x"];
    let mut failed = Vec::new();
    for n in 0..300 {
        match get(apache.address(), paths[n % paths.len()], HANG) {
            Outcome::Status(200, _) => {}
            Outcome::Status(status, _) => failed.push(format!("{} status {status}", paths[n % paths.len()])),
            Outcome::Error(e) => failed.push(e),
            Outcome::Hang => failed.push("hang".into()),
        }
    }
    std::fs::remove_file(&filler).unwrap();
    let after = (0..30).filter(|n| ok(paths[n % paths.len()])).count();
    eprintln!(
        "chaos: apache disk full: {} of 300 requests served while the error log could not be written \
         (daemon and embedded mode, wsgi.errors and print()), {after} of 30 once it could again",
        300 - failed.len()
    );
    assert!(failed.is_empty(), "failed while the disk was full: {failed:?}");
    assert_eq!(after, 30);
}
