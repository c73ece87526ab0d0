//! The Python wheel of `cargo xtask wheel`, built once per test process,
//! and virtual environments with it installed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::workspace_root;

/// Debian's Python, which the wheel is built for.
pub const PYTHON: &str = "/usr/bin/python3";

/// The wheel, built once per test process by `cargo xtask wheel`.
pub fn built() -> &'static Path {
    static WHEEL: OnceLock<PathBuf> = OnceLock::new();
    WHEEL.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let output = Command::new(cargo)
            .current_dir(workspace_root())
            .args(["run", "--quiet", "--package", "xtask", "--", "wheel"])
            .output()
            .expect("cargo runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "cargo xtask wheel failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let wheel = stdout
            .lines()
            .find_map(|line| line.strip_prefix("wrote ")?.split(" (").next())
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("cargo xtask wheel named no wheel:\n{stdout}"));
        assert!(wheel.is_file(), "{}", wheel.display());
        wheel
    })
}

/// Makes a virtual environment of Debian's Python at `path` (with the
/// system's packages visible when `system_site_packages`, as Debian's
/// Django is) and installs the wheel into it with pip, from no index.
pub fn install(path: &Path, system_site_packages: bool) {
    let mut venv = Command::new(PYTHON);
    venv.args(["-m", "venv"]);
    if system_site_packages {
        venv.arg("--system-site-packages");
    }
    run(venv.arg(path));
    run(Command::new(path.join("bin/pip"))
        .args(["install", "--no-index", "--disable-pip-version-check", "--quiet"])
        .arg(built()));
}

/// Runs `command`, panicking with its output unless it succeeds.
pub fn run(command: &mut Command) -> std::process::Output {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed with {}:\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
