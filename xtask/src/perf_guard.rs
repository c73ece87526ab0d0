//! `cargo xtask perf-guard`: the instructions of fixed hot-path workloads,
//! counted by valgrind's callgrind, against a committed baseline.
//!
//! Wall-clock benchmarks on a shared, noisy machine move by tens of
//! percent from run to run; an instruction count moves by a few in a
//! hundred thousand. Each workload is an example program that repeats one
//! request `N` times. Running it for `N` and `2N` and taking the
//! difference over `N` cancels its set-up (Python's start-up, sockets), so
//! the figure is the cost of one request.

use std::path::Path;
use std::process::Command;

/// One workload: an example of a library crate that takes a repeat count.
struct Workload {
    /// The name in the baseline file and in the table.
    name: &'static str,
    package: &'static str,
    example: &'static str,
    /// What one repetition does.
    what: &'static str,
}

const WORKLOADS: [Workload; 3] = [
    Workload {
        name: "route_environ",
        package: "wsgi-core",
        example: "perf_route",
        what: "route a typical GET and build its environ",
    },
    Workload {
        name: "wsgi_call",
        package: "wsgi-interp",
        example: "perf_call",
        what: "one embedded WSGI call of hello world",
    },
    Workload {
        name: "daemon_exchange",
        package: "wsgi-daemon",
        example: "perf_exchange",
        what: "one daemon-protocol request exchange over a UNIX socket",
    },
];

/// Repetitions of the shorter run (the longer one makes twice as many).
const REPEATS: u64 = 4000;

/// Growth over the baseline that fails the guard.
const TOLERANCE: f64 = 0.05;

/// The committed baseline, relative to the workspace root.
const BASELINE: &str = "xtask/perf-baseline.txt";

/// Counts every workload and compares the counts with the baseline (or,
/// with `update`, writes them as the new baseline).
pub fn perf_guard(root: &Path, update: bool) -> Result<(), String> {
    if crate::which("valgrind").is_none() {
        crate::install_system_packages(&["valgrind"])?;
        crate::which("valgrind").ok_or("perf-guard needs valgrind (apt-get install valgrind)")?;
    }
    let mut build = vec!["build", "--release"];
    for workload in &WORKLOADS {
        build.extend(["--package", workload.package, "--example", workload.example]);
    }
    crate::cargo(root, &build, &[])?;

    let examples = crate::target_dir(root).join("release/examples");
    let mut counts = Vec::new();
    for workload in &WORKLOADS {
        let program = examples.join(workload.example);
        let once = instructions(&program, REPEATS)?;
        let twice = instructions(&program, 2 * REPEATS)?;
        let per_request = twice.checked_sub(once).ok_or_else(|| {
            format!(
                "{}: {twice} instructions for {} repetitions, fewer than {once} for {REPEATS}",
                workload.name,
                2 * REPEATS
            )
        })? / REPEATS;
        counts.push((workload.name, per_request));
    }

    let baseline_path = root.join(BASELINE);
    if update {
        std::fs::write(&baseline_path, format_baseline(&counts))
            .map_err(|e| format!("{}: {e}", baseline_path.display()))?;
        println!("perf-guard: wrote {BASELINE}");
        print_table(&counts, &[]);
        return Ok(());
    }
    let text = std::fs::read_to_string(&baseline_path).map_err(|e| format!("{}: {e}", baseline_path.display()))?;
    let baseline = parse_baseline(&text).map_err(|e| format!("{BASELINE}:{e}"))?;
    print_table(&counts, &baseline);
    let failures = compare(&counts, &baseline);
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "perf-guard: {}\n(if the growth is intended, run `cargo xtask perf-guard --update` and say why in the commit)",
            failures.join("; ")
        ))
    }
}

/// The instructions callgrind counts for one run of `program` with
/// `repeats`, Python's hash seed fixed.
fn instructions(program: &Path, repeats: u64) -> Result<u64, String> {
    let output = Command::new("valgrind")
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(program)
        .arg(repeats.to_string())
        .env("PYTHONHASHSEED", "0")
        .output()
        .map_err(|e| format!("cannot run valgrind: {e}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("{} {repeats} under callgrind failed ({}):\n{stderr}", program.display(), output.status));
    }
    collected(&stderr).ok_or_else(|| format!("no instruction count in callgrind's output:\n{stderr}"))
}

/// The total of callgrind's `==PID== Collected : N` line.
fn collected(stderr: &str) -> Option<u64> {
    stderr.lines().find_map(|line| line.split_once("Collected :").and_then(|(_, n)| n.trim().parse().ok()))
}

/// The baseline's text: a comment, then `name instructions` per line.
fn format_baseline(counts: &[(&str, u64)]) -> String {
    let mut text = String::from(
        "# Instructions per request of perf-guard's workloads (cargo xtask perf-guard).\n\
         # Update deliberately, with `cargo xtask perf-guard --update`, and say why in the commit.\n",
    );
    for (name, count) in counts {
        text.push_str(&format!("{name} {count}\n"));
    }
    text
}

/// Reads `name instructions` lines, skipping blanks and `#` comments; an
/// error is `line: why`.
fn parse_baseline(text: &str) -> Result<Vec<(String, u64)>, String> {
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parsed = match line.split_whitespace().collect::<Vec<_>>()[..] {
            [name, count] => count.parse().ok().map(|count| (name.to_string(), count)),
            _ => None,
        };
        entries.push(parsed.ok_or_else(|| format!("{}: expected `name instructions`, found `{line}`", index + 1))?);
    }
    Ok(entries)
}

/// What fails the guard: a workload more than [`TOLERANCE`] above its
/// baseline, or one the baseline does not have.
fn compare(counts: &[(&str, u64)], baseline: &[(String, u64)]) -> Vec<String> {
    counts
        .iter()
        .filter_map(|(name, count)| match baseline.iter().find(|(known, _)| known == name) {
            None => Some(format!("{name} has no baseline")),
            Some((_, base)) if *count as f64 > *base as f64 * (1.0 + TOLERANCE) => Some(format!(
                "{name} grew from {base} to {count} instructions per request (+{:.1}%, more than {:.0}%)",
                growth(*count, *base) * 100.0,
                TOLERANCE * 100.0
            )),
            Some(_) => None,
        })
        .collect()
}

fn growth(count: u64, base: u64) -> f64 {
    count as f64 / base as f64 - 1.0
}

fn print_table(counts: &[(&str, u64)], baseline: &[(String, u64)]) {
    println!("| workload | what one repetition does | instructions | baseline | change |");
    println!("|---|---|---:|---:|---:|");
    for (workload, (name, count)) in WORKLOADS.iter().zip(counts) {
        let base = baseline.iter().find(|(known, _)| known == name).map(|(_, base)| *base);
        let (base_text, change) = match base {
            Some(base) => (base.to_string(), format!("{:+.2}%", growth(*count, base) * 100.0)),
            None => ("-".to_string(), "-".to_string()),
        };
        println!("| {name} | {} | {count} | {base_text} | {change} |", workload.what);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_is_read_from_callgrinds_summary() {
        let stderr = "==123== Callgrind, a call-graph generating cache profiler\n==123== Events    : Ir\n\
                      ==123== Collected : 43899913\n==123== \n==123== I   refs:      43,899,913\n";
        assert_eq!(collected(stderr), Some(43_899_913));
        assert_eq!(collected("==1== ERROR SUMMARY\n"), None);
    }

    #[test]
    fn the_baseline_round_trips_and_rejects_malformed_lines() {
        let counts = [("route_environ", 43361), ("wsgi_call", 67503)];
        let parsed = parse_baseline(&format_baseline(&counts)).unwrap();
        assert_eq!(parsed, vec![("route_environ".to_string(), 43361), ("wsgi_call".to_string(), 67503)]);
        assert_eq!(
            parse_baseline("# c\n\nroute_environ x\n").unwrap_err(),
            "3: expected `name instructions`, found `route_environ x`"
        );
        assert!(parse_baseline("a 1 2\n").is_err());
    }

    #[test]
    fn growth_beyond_five_percent_fails_and_anything_below_passes() {
        let baseline = vec![("a".to_string(), 100_000), ("b".to_string(), 100_000)];
        assert!(compare(&[("a", 105_000), ("b", 60_000)], &baseline).is_empty());
        let failures = compare(&[("a", 105_001), ("b", 100_000), ("c", 1)], &baseline);
        assert_eq!(failures.len(), 2, "{failures:?}");
        assert!(failures[0].starts_with("a grew from 100000 to 105001"), "{}", failures[0]);
        assert_eq!(failures[1], "c has no baseline");
    }
}
