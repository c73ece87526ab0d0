//! `cargo xtask fuzz`: the fuzz targets of `fuzz/` (cargo-fuzz, libFuzzer,
//! nightly), each for a while, with a table of what they did; and the short
//! smoke run of `cargo xtask test`.
//!
//! Each target starts from its committed seeds (`fuzz/corpus/<target>/`,
//! read only) and a work corpus under `target/fuzz-corpus/<target>/`, so
//! the seeds stay as committed; crashes go to
//! `target/fuzz-artifacts/<target>/`, libFuzzer's output to
//! `target/fuzz-logs/<target>.log`. Before it runs, each target replays
//! the inputs of the crashes found so far (`fuzz/regressions/<target>/`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What one target's run did, from libFuzzer's last lines.
struct Outcome {
    target: String,
    seconds: u64,
    executions: Option<u64>,
    cov: Option<u64>,
    ft: Option<u64>,
    corpus: Option<u64>,
    ok: bool,
    log: PathBuf,
}

/// Runs every target (or `only`) for `seconds` each.
pub fn fuzz(root: &Path, seconds: u64, only: Option<&str>) -> Result<(), String> {
    let targets = targets(root)?;
    let selected: Vec<&String> = match only {
        Some(name) => match targets.iter().find(|t| t.as_str() == name) {
            Some(target) => vec![target],
            None => return Err(format!("fuzz: no target '{name}' (targets: {})", targets.join(", "))),
        },
        None => targets.iter().collect(),
    };
    ensure_cargo_fuzz()?;
    let mut build = cargo_fuzz(root);
    build.arg("build");
    if let Some(name) = only {
        build.arg(name);
    }
    super::run(&mut build)?;
    let mut outcomes = Vec::new();
    for target in selected {
        replay_regressions(root, target)?;
        outcomes.push(run_target(root, target, seconds)?);
    }
    print_table(&outcomes);
    let failed: Vec<&str> = outcomes.iter().filter(|o| !o.ok).map(|o| o.target.as_str()).collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "fuzz: {} failed (crashes in target/fuzz-artifacts/, logs in target/fuzz-logs/)",
            failed.join(", ")
        ))
    }
}

/// The targets: the files of `fuzz/fuzz_targets/`.
fn targets(root: &Path) -> Result<Vec<String>, String> {
    let dir = root.join("fuzz/fuzz_targets");
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("fuzz: {}: {e}", dir.display()))?;
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.strip_suffix(".rs").map(String::from))
        .collect();
    names.sort();
    Ok(names)
}

/// `cargo +nightly fuzz` in the repository, outside this cargo's
/// environment (the nested cargo must be rustup's nightly one).
fn cargo_fuzz(root: &Path) -> Command {
    let mut command = Command::new("cargo");
    command.current_dir(root).args(["+nightly", "fuzz"]).env_remove("CARGO").env_remove("RUSTUP_TOOLCHAIN");
    command
}

/// Installs cargo-fuzz when `cargo fuzz` is missing.
fn ensure_cargo_fuzz() -> Result<(), String> {
    let present = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .env_remove("CARGO")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if present {
        return Ok(());
    }
    eprintln!("xtask: cargo fuzz is missing: cargo install cargo-fuzz --locked");
    super::run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]).env_remove("CARGO"))
}

/// Runs the crash inputs committed for `target`: each must now pass.
fn replay_regressions(root: &Path, target: &str) -> Result<(), String> {
    let dir = root.join("fuzz/regressions").join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(()) };
    let mut files: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).filter(|p| p.is_file()).collect();
    if files.is_empty() {
        return Ok(());
    }
    files.sort();
    eprintln!("xtask: fuzz {target}: replaying {} regression input(s)", files.len());
    let mut command = cargo_fuzz(root);
    command.args(["run", target]).args(&files);
    super::run(&mut command).map_err(|e| format!("fuzz {target}: a regression input fails again: {e}"))
}

/// Runs `target` for `seconds`, its output in its log.
fn run_target(root: &Path, target: &str, seconds: u64) -> Result<Outcome, String> {
    let target_dir = super::target_dir(root);
    let corpus = target_dir.join("fuzz-corpus").join(target);
    let artifacts = target_dir.join("fuzz-artifacts").join(target);
    let logs = target_dir.join("fuzz-logs");
    for dir in [&corpus, &artifacts, &logs] {
        std::fs::create_dir_all(dir).map_err(|e| format!("fuzz: {}: {e}", dir.display()))?;
    }
    let log = logs.join(format!("{target}.log"));
    let out = File::create(&log).map_err(|e| format!("fuzz: {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| format!("fuzz: {}: {e}", log.display()))?;
    eprintln!("xtask: fuzz {target} for {seconds} s (log: {})", log.display());
    let mut command = cargo_fuzz(root);
    command
        .args(["run", target])
        .arg(&corpus)
        .arg(root.join("fuzz/corpus").join(target))
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg("-timeout=30")
        .arg("-print_final_stats=1")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .stdout(out)
        .stderr(err);
    let status = command.status().map_err(|e| format!("could not run {command:?}: {e}"))?;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let mut outcome = parse_output(&text);
    outcome.target = target.to_string();
    outcome.seconds = seconds;
    outcome.ok = status.success();
    outcome.log = log;
    if !outcome.ok {
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        eprintln!("{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
    }
    Ok(outcome)
}

/// The numbers of libFuzzer's final `#N DONE cov: X ft: Y corp: Z/...`
/// line (or its last status line) and of `-print_final_stats`.
fn parse_output(text: &str) -> Outcome {
    let mut outcome = Outcome {
        target: String::new(),
        seconds: 0,
        executions: None,
        cov: None,
        ft: None,
        corpus: None,
        ok: false,
        log: PathBuf::new(),
    };
    let mut status_lines = text.lines().rev().filter(|line| line.starts_with('#') && line.contains(" cov: "));
    if let Some(line) = status_lines.next() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let after = |key: &str| {
            words
                .iter()
                .position(|w| *w == key)
                .and_then(|i| words.get(i + 1))
                .and_then(|value| value.split('/').next().and_then(|n| n.parse().ok()))
        };
        outcome.executions = words.first().and_then(|w| w.trim_start_matches('#').parse().ok());
        outcome.cov = after("cov:");
        outcome.ft = after("ft:");
        outcome.corpus = after("corp:");
    }
    if let Some(line) = text.lines().find(|line| line.starts_with("stat::number_of_executed_units:")) {
        outcome.executions = line.rsplit(' ').next().and_then(|n| n.trim().parse().ok()).or(outcome.executions);
    }
    outcome
}

fn print_table(outcomes: &[Outcome]) {
    let show = |n: Option<u64>| n.map_or_else(|| "?".to_string(), |n| n.to_string());
    println!(
        "\n{:<20} {:>8} {:>14} {:>8} {:>8} {:>8}  result",
        "target", "seconds", "executions", "cov", "ft", "corpus"
    );
    for o in outcomes {
        println!(
            "{:<20} {:>8} {:>14} {:>8} {:>8} {:>8}  {}",
            o.target,
            o.seconds,
            show(o.executions),
            show(o.cov),
            show(o.ft),
            show(o.corpus),
            if o.ok { "ok".to_string() } else { format!("FAILED (see {})", o.log.display()) }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzers_final_lines() {
        let text = "#1024\tpulse  cov: 10 ft: 11 corp: 3/40b exec/s: 0 rss: 30Mb\n\
                    #52011\tDONE   cov: 893 ft: 1511 corp: 180/18Kb lim: 4096 exec/s: 3405 rss: 143Mb\n\
                    Done 52011 runs in 16 second(s)\n\
                    stat::number_of_executed_units: 52013\n";
        let outcome = parse_output(text);
        assert_eq!(
            (outcome.executions, outcome.cov, outcome.ft, outcome.corpus),
            (Some(52013), Some(893), Some(1511), Some(180))
        );
    }
}
