//! Project automation in Rust rather than shell scripts (the rust-analyzer
//! `xtask` pattern). Run as `cargo xtask <command>`.

mod architecture;
mod bench;
mod bench_all;
mod bench_apache;
mod bench_groups;
mod bindings;
mod deb;
mod debian13;
mod directives;
mod fuzz;
mod memcheck;
mod perf_guard;
mod release;
mod stress;
mod wheel;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Debian packages the build and the tests need. `cargo xtask deps`
/// installs the missing ones when it runs as root; `test` and `bench` run
/// it first.
const SYSTEM_PACKAGES: &[&str] = &[
    // Debian's Python with its headers and libpython3.11, which wsgi-interp
    // embeds (and links against through pyo3-ffi).
    "python3",
    "python3-dev",
    "libpython3.11",
    // Real frameworks for the end-to-end tests (tests/tests/frameworks.rs
    // drives each in every mode against Debian's mod_wsgi): Django 3.2
    // with its admin, Flask, Pyramid, Bottle, Falcon, WebOb, and CherryPy's
    // WSGI application.
    "python3-flask",
    "python3-django",
    "python3-pyramid",
    "python3-bottle",
    "python3-falcon",
    "python3-webob",
    "python3-cherrypy3",
    // A C extension of single-phase initialisation (psycopg2's _psycopg,
    // mod_wsgi issue #915): what Python 3.12 and later refuse in a
    // sub-interpreter (tests/tests/subinterpreter_extensions.rs).
    "python3-psycopg2",
    // Real Apache for the module's end-to-end tests, and Debian's mod_wsgi
    // as the reference they compare against.
    "apache2",
    "libapache2-mod-wsgi-py3",
    // curl drives the auth tests (Basic and Digest); kill and ps come
    // from procps.
    "curl",
    "procps",
    // ss, to read daemon sockets' listen backlog; strace, to see
    // WSGIEnableSendfile's sendfile calls.
    "iproute2",
    "strace",
    // `cargo xtask deb` and its test (tests/tests/deb_package.rs): dpkg-deb
    // with dpkg-shlibdeps, strip and readelf.
    "dpkg-dev",
    "binutils",
    // The certificate of the HTTPS tests (mod_ssl comes with apache2).
    "openssl",
    // The benchmark's load generators (h2load for HTTP/2), and the venv
    // (with pip) for its peers, for the wheel's build tools (`cargo xtask
    // wheel`) and for the environment tests/tests/wheel.rs installs it in.
    "wrk",
    // The load balancers of the scale-out recipes (docs/deploy.md,
    // tests/tests/scale_out.rs).
    "haproxy",
    "nginx",
    "nghttp2-client",
    "python3-venv",
    // callgrind counts the instructions of `cargo xtask perf-guard`'s
    // workloads; memcheck runs `cargo xtask memcheck`.
    "valgrind",
    // mod_wsgi-express from PyPI, which `cargo xtask bench --all` installs
    // into a venv, builds against Apache's headers and apxs.
    "apache2-dev",
];

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  deps                  install the Debian packages the build, the tests and
                        the benches need that are missing (as root; without
                        root, list them)
  test [--no-install]   run deps (unless --no-install), check
                        ARCHITECTURE.md's 'Depends on:' sentences against
                        the Cargo.toml files, that docs/directives.md is
                        current and that every setting it calls honoured is
                        read by that front end's code, then run fmt --check, clippy
                        -D warnings, doc without warnings and every test of
                        the workspace, then perf-guard, then every fuzz
                        target for a few seconds (after its regression
                        inputs)
  test --python 3.13    build the workspace against Debian 13's Python 3.13,
                        run clippy -D warnings and every test there, with
                        Debian 13's Apache and mod_wsgi 5.x as the
                        reference, inside a Debian 13 root under
                        target/debian13 (made with debootstrap when
                        missing; as root)
  bench [--duration S] [--rounds N] [--connections N] [--threads N]
                        the standalone server against granian and gunicorn
                        (installed into target/bench-venv), and hyper alone
                        as the ceiling, side by side under the same wrk
                        load; prints a table, then HTTPS (wrk) and HTTP/2
                        over TLS (h2load) tables against granian with the
                        same certificate. --rounds N measures every server
                        N times in turn and shows each one's median
  bench --apache [--daemon [--processes N] [--threads N]] [--duration S]
        [--rounds N] [--connections N]
                        Apache httpd (mpm_event) with our mod_wsgi.so, with
                        Debian's mod_wsgi, and serving a static file of the
                        same body (the ceiling), side by side under the same
                        wrk load; prints a table with the ratios. Embedded
                        mode, or with --daemon both modules in daemon mode
                        with the same WSGIDaemonProcess processes= (default
                        2) and threads= (default 15), followed by the
                        standalone server's --daemon mode against its
                        embedded mode with those processes and threads
  bench --all [--duration S] [--rounds N] [--threads N]
                        one table of every server side by side: the
                        standalone server (embedded and --daemon), Apache
                        with our mod_wsgi.so and with Debian's mod_wsgi 4
                        (embedded and daemon mode), mod_wsgi-express from
                        PyPI (daemon and embedded mode), granian (with
                        --blocking-threads N and with its defaults) and
                        gunicorn (gthread), each with N Python threads
                        (default 5) in one process; cases hello world, a
                        Flask JSON API, a Django template, a 100 KB static
                        file and a 64 KB form POST, under wrk -t1 -c32 and
                        -t2 -c50; each row the median of --rounds rounds
                        taken in turn, with the ratio to the best peer
  bench --groups [--duration S] [--rounds N] [--connections N]
                        two application groups doing ~5 ms of Python per
                        request in one daemon process with 2 threads: on
                        3.11 (one GIL), and in the Debian 13 root on 3.13
                        with one GIL and with a GIL per group; prints
                        requests/s, the ratio to 3.13 with one GIL and the
                        memory one more group costs (default -c8)
  stress [--soak-requests N] [--stalled N] [--idle N] [--transfers N]
         [--transfer-mb N] [--read-kb-per-sec N] [--duration S] [--threads N]
         [--only soak,slowloris,idle,transfers]
         [--servers standalone,apache,granian,gunicorn]
                        the standalone server, the Apache module (embedded,
                        mpm_event), granian and gunicorn under hostile
                        loads, one table each: a soak of 2,000,000 requests
                        (memory growth after the first 100,000), 3,000
                        slowloris connections held while wrk runs (the
                        throughput against unloaded; the header time-out
                        must close each), 1,000 idle keep-alive connections
                        under load, 20 parallel 100 MB uploads and 20
                        parallel 100 MB downloads read at 1000 KB/s (peak
                        memory); wrk runs of --duration (default 10) s,
                        --threads (default 25) Python threads each;
                        --only runs the loads it names, --servers
                        against the servers it names
  memcheck              the tests of wsgi-core, wsgi-daemon and wsgi-interp,
                        then a short end-to-end run of the standalone
                        server (its serving process included), under
                        valgrind's memcheck (installed when missing); prints
                        the errors and definitely lost bytes of each run
  perf-guard [--update]  count the instructions per request of fixed hot-path
                        workloads (route and environ of a typical GET, one
                        embedded WSGI call of hello world, one daemon
                        protocol exchange) under valgrind's callgrind;
                        fails when one is more than 5% above
                        xtask/perf-baseline.txt; --update rewrites that
                        baseline (say why in the commit)
  release               build mod_wsgi.so and wsgi-standalone in release mode
                        and write them with SHA256SUMS to target/dist/
  deb                   build the module in release mode and package it as
                        target/debian/libapache2-mod-wsgi-rs_<version>_<arch>.deb
                        (dpkg-deb; installs mod_wsgi_rs.so and the
                        wsgi_rs.load/.conf that `a2enmod wsgi_rs` enables)
  wheel [--offline]     build the Python wheel into target/wheels/ with
                        maturin (pinned, installed once into
                        target/wheel-venv-X.Y): the wsgi-standalone command
                        and the Apache module in the mod_wsgi_rs package,
                        built against PYO3_PYTHON and tagged cpXY-cpXY;
                        --offline: no network (cargo --offline, no pip)
  fuzz [--seconds N] [--target NAME]
                        run every fuzz target of fuzz/ (cargo +nightly fuzz,
                        installing cargo-fuzz when missing), or NAME, for N
                        seconds each (default 60): first the crash inputs
                        of fuzz/regressions/<target>/, then from the seeds
                        of fuzz/corpus/<target>/ with a work corpus in
                        target/fuzz-corpus/; prints executions, coverage
                        and corpus size per target
  directives            write docs/directives.md from wsgi-config's directive
                        and support tables (test fails when it is stale)
  bindings              regenerate wsgi-apache's Apache/APR bindings from the
                        installed headers (needs bindgen-cli and libclang)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("deps") => match &args[1..] {
            [] => deps(),
            [other, ..] => Err(format!("deps: unknown option '{other}'\n\n{USAGE}")),
        },
        Some("bench") => bench_command(&args[1..]),
        Some("stress") => stress_command(&args[1..]),
        Some("memcheck") => match &args[1..] {
            [] => memcheck::memcheck(&workspace_root()),
            [other, ..] => Err(format!("memcheck: unknown option '{other}'\n\n{USAGE}")),
        },
        Some("perf-guard") => match &args[1..] {
            [] => perf_guard::perf_guard(&workspace_root(), false),
            [flag] if flag == "--update" => perf_guard::perf_guard(&workspace_root(), true),
            [other, ..] => Err(format!("perf-guard: unknown option '{other}'\n\n{USAGE}")),
        },
        Some("release") => match &args[1..] {
            [] => release::release(&workspace_root()),
            [other, ..] => Err(format!("release: unknown option '{other}'\n\n{USAGE}")),
        },
        Some("deb") => match &args[1..] {
            [] => deb::deb(&workspace_root()),
            [other, ..] => Err(format!("deb: unknown option '{other}'\n\n{USAGE}")),
        },
        Some("wheel") => wheel::wheel(&workspace_root(), &args[1..]),
        Some("bindings") => bindings::bindings(&workspace_root()),
        Some("directives") => directives::write(&workspace_root()),
        Some("fuzz") => fuzz_command(&args[1..]),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command '{other}'\n\n{USAGE}")),
        None => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn test(args: &[String]) -> Result<(), String> {
    let mut install = true;
    let mut words = args.iter();
    while let Some(arg) = words.next() {
        match arg.as_str() {
            "--no-install" => install = false,
            "--python" => {
                return match (words.next().map(String::as_str), words.next()) {
                    (Some("3.13"), None) => debian13::test(&workspace_root()),
                    (Some("3.11"), None) => Err("test: 3.11 is the default: run `cargo xtask test`".into()),
                    _ => Err(format!("test: --python takes 3.13 (Debian 13's), alone\n\n{USAGE}")),
                };
            }
            other => return Err(format!("test: unknown option '{other}'\n\n{USAGE}")),
        }
    }
    if install {
        deps()?;
    }
    let root = workspace_root();
    architecture::check(&root)?;
    directives::check(&root)?;
    cargo(&root, &["fmt", "--all", "--check"], &[])?;
    cargo(&root, &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"], &[])?;
    cargo(&root, &["doc", "--workspace", "--no-deps"], &[("RUSTDOCFLAGS", "-D warnings")])?;
    cargo(&root, &["test", "--workspace"], &[])?;
    perf_guard::perf_guard(&root, false)?;
    // The fuzz targets' smoke run.
    fuzz::fuzz(&root, FUZZ_SMOKE_SECONDS, None)
}

/// How long `test` runs each fuzz target.
const FUZZ_SMOKE_SECONDS: u64 = 5;

fn fuzz_command(args: &[String]) -> Result<(), String> {
    let (mut seconds, mut target) = (60, None);
    let mut words = args.iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            "--seconds" => {
                seconds = words
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or("fuzz: --seconds takes a whole number of seconds")?;
            }
            "--target" => target = Some(words.next().ok_or("fuzz: --target takes a target's name")?.as_str()),
            other => return Err(format!("fuzz: unknown option '{other}'\n\n{USAGE}")),
        }
    }
    fuzz::fuzz(&workspace_root(), seconds, target)
}

fn bench_command(args: &[String]) -> Result<(), String> {
    let mut load = bench::Load { duration_secs: 10, rounds: 1, connections: 50, wrk_threads: 2, python_threads: 5 };
    let (mut apache, mut daemon, mut groups, mut all) = (false, false, false, false);
    let (mut processes, mut threads) = (None, None);
    let mut words = args.iter();
    while let Some(word) = words.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            words.next().and_then(|v| v.parse().ok()).ok_or_else(|| format!("bench: {name} takes a whole number"))
        };
        match word.as_str() {
            "--duration" => load.duration_secs = value("--duration")?,
            "--rounds" => load.rounds = value("--rounds")?.clamp(1, 99) as u32,
            "--connections" => load.connections = value("--connections")? as u32,
            "--threads" => threads = Some(value("--threads")? as u32),
            "--processes" => processes = Some(value("--processes")? as u32),
            "--apache" => apache = true,
            "--daemon" => daemon = true,
            "--groups" => groups = true,
            "--all" => all = true,
            other => return Err(format!("bench: unknown option '{other}'\n\n{USAGE}")),
        }
    }
    if daemon && !apache {
        return Err(format!("bench: --daemon needs --apache\n\n{USAGE}"));
    }
    if processes.is_some() && !daemon {
        return Err(format!("bench: --processes needs --apache --daemon\n\n{USAGE}"));
    }
    if apache && !daemon && threads.is_some() {
        return Err(format!("bench: --threads with --apache needs --daemon\n\n{USAGE}"));
    }
    if processes == Some(0) || threads == Some(0) {
        return Err("bench: --processes and --threads must be at least 1".to_string());
    }
    if groups && (apache || threads.is_some() || processes.is_some()) {
        return Err(format!("bench: --groups takes only --duration, --rounds and --connections\n\n{USAGE}"));
    }
    if all && (apache || groups || processes.is_some() || load.connections != 50) {
        return Err(format!("bench: --all takes only --duration, --rounds and --threads\n\n{USAGE}"));
    }
    deps()?;
    if all {
        return bench_all::bench(&workspace_root(), load.duration_secs, load.rounds, threads.unwrap_or(5));
    }
    if groups {
        let load = bench::Load { connections: if load.connections == 50 { 8 } else { load.connections }, ..load };
        return bench_groups::bench(&workspace_root(), &load);
    }
    if apache {
        let mode = if daemon {
            bench_apache::Mode::Daemon { processes: processes.unwrap_or(2), threads: threads.unwrap_or(15) }
        } else {
            bench_apache::Mode::Embedded
        };
        bench_apache::bench(&workspace_root(), &load, mode)
    } else {
        load.python_threads = threads.unwrap_or(load.python_threads);
        bench::bench(&workspace_root(), &load)
    }
}

fn stress_command(args: &[String]) -> Result<(), String> {
    let mut settings = stress::Settings {
        soak_requests: 2_000_000,
        stalled: 3000,
        idle: 1000,
        transfers: 20,
        transfer_bytes: 100_000_000,
        read_rate: 1_000_000,
        duration_secs: 10,
        threads: 25,
        only: Vec::new(),
        servers: Vec::new(),
    };
    let mut words = args.iter();
    while let Some(word) = words.next() {
        let value = |name: &str, value: Option<&String>| -> Result<u64, String> {
            value
                .and_then(|v| v.parse().ok())
                .filter(|v| *v > 0)
                .ok_or_else(|| format!("stress: {name} takes a whole number above 0"))
        };
        let (known, chosen): (&[&str], &mut Vec<String>) = match word.as_str() {
            "--only" => (&stress::LOADS, &mut settings.only),
            "--servers" => (&stress::SERVERS, &mut settings.servers),
            _ => (&[], &mut Vec::new()),
        };
        if !known.is_empty() {
            let names = words.next().ok_or_else(|| format!("stress: {word} takes names"))?;
            for name in names.split(',') {
                if !known.contains(&name) {
                    return Err(format!("stress: {word}: no '{name}' (the names: {})", known.join(", ")));
                }
                chosen.push(name.to_string());
            }
            continue;
        }
        let given = value(word, words.next());
        match word.as_str() {
            "--soak-requests" => settings.soak_requests = given?,
            "--stalled" => settings.stalled = given? as usize,
            "--idle" => settings.idle = given? as usize,
            "--transfers" => settings.transfers = given? as usize,
            "--transfer-mb" => settings.transfer_bytes = given? * 1_000_000,
            "--read-kb-per-sec" => settings.read_rate = given? * 1000,
            "--duration" => settings.duration_secs = given?,
            "--threads" => settings.threads = given? as u32,
            other => return Err(format!("stress: unknown option '{other}'\n\n{USAGE}")),
        }
    }
    deps()?;
    stress::stress(&workspace_root(), &settings)
}

/// `cargo xtask deps`: the missing [`SYSTEM_PACKAGES`], installed.
fn deps() -> Result<(), String> {
    install_system_packages(SYSTEM_PACKAGES)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Cargo's target directory: `CARGO_TARGET_DIR`, or `target/` in the workspace.
fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(|dir| root.join(dir)).unwrap_or_else(|| root.join("target"))
}

fn cargo(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    eprintln!("xtask: cargo {}", args.join(" "));
    let mut command = Command::new(cargo);
    command.current_dir(root).args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    run(&mut command)
}

fn run(command: &mut Command) -> Result<(), String> {
    let status = command.status().map_err(|e| format!("could not run {command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed with {status}"))
    }
}

/// Installs the packages dpkg does not list as installed. Without root (or
/// without apt) it only reports what is missing: the tests that need a
/// package will then say so themselves.
fn install_system_packages(packages: &[&str]) -> Result<(), String> {
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !dpkg_installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() || which("apt-get").is_none() {
        eprintln!("xtask: missing system packages (install them as root): {}", missing.join(" "));
        return Ok(());
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

fn dpkg_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0").unwrap_or(false)
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|dir| dir.join(program)).find(|candidate| candidate.is_file())
    })
}
