//! `cargo xtask bench --groups`: two application groups doing CPU-bound
//! work in one daemon process with two threads, on Python 3.11 (the
//! default build, one GIL), and on Debian 13's Python 3.13 with one GIL
//! and with a GIL per group (`WSGIPerInterpreterGIL On`), side by side
//! under the same wrk load, with the memory one more group costs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::bench::{free_port, median, print_rounds, run_wrk, Case, Load, Over, Result};
use crate::debian13::Root;

/// About 5 ms of pure Python per request on this machine's 3.11.
const APP: &str = r#"
def application(environ, start_response):
    total = 0
    for i in range(100000):
        total += i * i
    body = ('%s %d' % (environ['mod_wsgi.application_group'], total % 97)).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
"#;

/// wrk sends every other request to each group.
const ALTERNATE_LUA: &str = r#"
local n = 0
request = function()
  n = n + 1
  if n % 2 == 0 then
    return wrk.format(nil, "/a/")
  end
  return wrk.format(nil, "/b/")
end
"#;

/// One way to run the two groups.
struct Variant {
    name: &'static str,
    /// Debian 13's build, in its root (else the host's 3.11 build).
    debian13: bool,
    own_gil: bool,
}

const VARIANTS: [Variant; 3] = [
    Variant { name: "3.11, one GIL", debian13: false, own_gil: false },
    Variant { name: "3.13, one GIL", debian13: true, own_gil: false },
    Variant { name: "3.13, a GIL per group", debian13: true, own_gil: true },
];

pub fn bench(root: &Path, load: &Load) -> std::result::Result<(), String> {
    crate::cargo(root, &["build", "--release", "--package", "wsgi-standalone"], &[])?;
    let debian13 = crate::debian13::Root::ensure(root)?;
    debian13.run("cargo build --release --package wsgi-standalone")?;
    let dir = crate::target_dir(root).join("bench-groups");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("app.py"), APP).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("alternate.lua"), ALTERNATE_LUA).map_err(|e| e.to_string())?;
    let case = Case {
        name: "two groups, ~5 ms of Python each request",
        path: "/",
        script: Some("alternate.lua"),
        over: Over::Http,
    };
    println!(
        "wrk -t{} -c{} -d{}s on loopback; one daemon process, 2 threads, groups a and b; {} cores",
        load.wrk_threads,
        load.connections,
        load.duration_secs,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    print_rounds(load);
    let mut runs: Vec<Vec<Result>> = VARIANTS.iter().map(|_| Vec::new()).collect();
    let mut group_cost: Vec<Vec<i64>> = VARIANTS.iter().map(|_| Vec::new()).collect();
    for _round in 0..load.rounds.max(1) {
        for (index, variant) in VARIANTS.iter().enumerate() {
            match run_variant(root, &debian13, &dir, variant, &case, load) {
                Ok((result, cost)) => {
                    runs[index].push(result);
                    group_cost[index].push(cost);
                }
                Err(e) => eprintln!("{}: {e}", variant.name),
            }
        }
    }
    let results: Vec<(&Variant, Result, i64)> = VARIANTS
        .iter()
        .zip(runs)
        .zip(group_cost)
        .filter_map(|((variant, runs), mut costs)| {
            costs.sort_unstable();
            let cost = costs.get(costs.len() / 2).copied().unwrap_or(0);
            Some((variant, median(runs)?, cost))
        })
        .collect();
    let base = results.iter().find(|(v, _, _)| v.debian13 && !v.own_gil).map(|(_, r, _)| r.requests_per_sec);
    println!();
    println!(
        "| Python, GIL | requests/s | p50 ms | p99 ms | peak RSS MiB | one more group MiB | vs 3.13 one GIL | errors |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    for (variant, r, cost) in &results {
        let ratio = base.map_or("-".to_string(), |b| format!("{:.2}x", r.requests_per_sec / b));
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.1} | {:.1} | {ratio} | {} |",
            variant.name,
            r.requests_per_sec,
            r.p50_ms,
            r.p99_ms,
            r.peak_rss_kib as f64 / 1024.0,
            *cost as f64 / 1024.0,
            if r.errors.is_empty() { "-" } else { &r.errors },
        );
    }
    Ok(())
}

/// The server's command for `variant`: the standalone server with one
/// daemon process of two threads, serving groups `a` and `b`.
fn server(
    root: &Path,
    debian13: &Root,
    dir: &Path,
    variant: &Variant,
    port: u16,
) -> std::result::Result<Command, String> {
    let app = dir.join("app.py");
    let config = format!(
        "WSGIPerInterpreterGIL {gil}\n\
         WSGIDaemonProcess groups processes=1 threads=2\n\
         WSGIScriptAlias /a {app} process-group=groups application-group=a\n\
         WSGIScriptAlias /b {app} process-group=groups application-group=b\n",
        gil = if variant.own_gil { "On" } else { "Off" },
        app = app.display()
    );
    let file = dir.join(format!("groups-{port}.conf"));
    std::fs::write(&file, config).map_err(|e| e.to_string())?;
    let args = format!("start-server --config {} --port {port} --log-level warn", file.display());
    if variant.debian13 {
        let binary = crate::target_dir(root).join("debian13/target/release/wsgi-standalone");
        Ok(debian13.command(&format!("exec {} {args}", binary.display())))
    } else {
        let mut command = Command::new(crate::target_dir(root).join("release/wsgi-standalone"));
        command.args(args.split(' '));
        Ok(command)
    }
}

/// One measured run of `variant`, and what loading the second group added
/// to the resident set of the server's processes, in KiB.
fn run_variant(
    root: &Path,
    debian13: &Root,
    dir: &Path,
    variant: &Variant,
    case: &Case,
    load: &Load,
) -> std::result::Result<(Result, i64), String> {
    let port = free_port().map_err(|e| e.to_string())?;
    let mut child = server(root, debian13, dir, variant, port)?
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the server: {e}"))?;
    let measured = (|| {
        let get = |path: &str| get(port, path);
        // The daemon process starts after the port opens.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !get("/a/").starts_with("a ") {
            if Instant::now() > deadline {
                return Err("group a never answered".to_string());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let one = crate::bench::tree_rss_kib(child.id()).0;
        if !get("/b/").starts_with("b ") {
            return Err("group b did not answer".into());
        }
        let two = crate::bench::tree_rss_kib(child.id()).0;
        let warm_up = Load { duration_secs: 1, ..*load };
        let _ = run_wrk(port, case, &warm_up, dir, child.id());
        Ok((run_wrk(port, case, load, dir, child.id())?, two as i64 - one as i64))
    })();
    crate::bench::stop(&mut child);
    measured
}

/// The body of `GET path` on 127.0.0.1:`port` (empty on any failure).
fn get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return String::new() };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default()
}
