//! `cargo xtask test --python 3.13`: the workspace built and its whole
//! suite run against Debian 13's Python 3.13, Apache and mod_wsgi 5.x,
//! inside a Debian 13 root under `target/debian13/root`.
//!
//! The root is made with debootstrap the first time (and given the
//! packages it lacks after that). Each run enters it in a private mount
//! namespace (`unshare --mount`), with this workspace and the Rust
//! toolchain bound in at their own paths, so nothing stays mounted after
//! the run, and builds into its own target directory.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The Debian release whose Python is tested, and its Python.
const SUITE: &str = "trixie";
const PYTHON: &str = "python3.13";

/// What the build and the suite need inside the root: the host's
/// [`crate::SYSTEM_PACKAGES`] with Debian 13's libpython (wrk and
/// python3-venv included: the scale-out and wheel tests use them), plus
/// the toolchain's C side and what `debootstrap`'s minimal base lacks.
fn packages() -> Vec<&'static str> {
    let host = crate::SYSTEM_PACKAGES.iter().copied().filter(|p| *p != "libpython3.11");
    host.chain(["libpython3.13", "build-essential", "pkg-config", "ca-certificates", "apache2-utils"]).collect()
}

/// The root's directory.
fn root_dir(workspace: &Path) -> PathBuf {
    crate::target_dir(workspace).join("debian13").join("root")
}

/// Builds the workspace against Debian 13's Python inside its root, checks
/// it with clippy there (code branches on the Python version), and runs
/// every test, all of them even after a failure.
pub fn test(workspace: &Path) -> Result<(), String> {
    Root::ensure(workspace)?
        .run("cargo clippy --workspace --all-targets -- -D warnings && cargo test --workspace --no-fail-fast")
}

/// The Debian 13 root of a workspace, made and complete.
pub struct Root {
    workspace: PathBuf,
    dir: PathBuf,
}

impl Root {
    /// The root of `workspace`, made when missing and given the packages it
    /// lacks.
    pub fn ensure(workspace: &Path) -> Result<Root, String> {
        Ok(Root { workspace: workspace.to_path_buf(), dir: ensure_root(workspace)? })
    }

    /// Runs `script` (sh) in the workspace inside the root, building into
    /// the root's own target directory.
    pub fn run(&self, script: &str) -> Result<(), String> {
        crate::run(&mut self.command(script))
    }

    /// The command that runs `script` as [`Root::run`] does, to spawn (a
    /// server the bench measures: its process is the one `script` `exec`s).
    pub fn command(&self, script: &str) -> Command {
        let target = crate::target_dir(&self.workspace).join("debian13").join("target");
        let script = format!("cd {} && {script}", quoted(&self.workspace));
        inside(&self.workspace, &self.dir, &[("CARGO_TARGET_DIR", &target.display().to_string())], &script)
    }
}

/// The root, made or completed.
fn ensure_root(workspace: &Path) -> Result<PathBuf, String> {
    let root = root_dir(workspace);
    if !root.join("usr/bin").join(PYTHON).exists() {
        if crate::which("debootstrap").is_none() {
            crate::install_system_packages(&["debootstrap"])?;
        }
        std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        eprintln!("xtask: making a Debian 13 root in {} (debootstrap)", root.display());
        crate::run(Command::new("debootstrap").args([
            "--variant=minbase",
            &format!("--include={}", packages().join(",")),
            SUITE,
            &root.display().to_string(),
            "http://deb.debian.org/debian",
        ]))?;
    }
    // One query for them all: a line per package dpkg knows.
    let wanted = packages();
    let listed = Command::new("chroot")
        .arg(&root)
        .args(["dpkg-query", "-W", "-f=${Package} ${Status}\\n"])
        .args(&wanted)
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default();
    let installed = |package: &str| {
        listed.lines().any(|line| line.strip_prefix(package).is_some_and(|s| s == " install ok installed"))
    };
    let missing: Vec<&str> = wanted.into_iter().filter(|package| !installed(package)).collect();
    if !missing.is_empty() {
        eprintln!("xtask: installing into the Debian 13 root: {}", missing.join(" "));
        let install = format!(
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends {}",
            missing.join(" ")
        );
        crate::run(&mut inside(workspace, &root, &[], &install))?;
    }
    trust_what_the_host_trusts(workspace, &root)?;
    Ok(root)
}

/// The host's own certificate authorities (`/usr/local/share/ca-certificates`,
/// such as a network's egress proxy's) and its `/etc/pip.conf`, copied
/// into the root, so that pip there (the wheel's build venv) reaches PyPI
/// as it does on the host.
fn trust_what_the_host_trusts(workspace: &Path, root: &Path) -> Result<(), String> {
    let local = Path::new("/usr/local/share/ca-certificates");
    let certificates: Vec<PathBuf> = std::fs::read_dir(local)
        .map(|entries| {
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "crt")).collect()
        })
        .unwrap_or_default();
    let mut changed = false;
    for certificate in &certificates {
        let copy = root.join(certificate.strip_prefix("/").expect("an absolute path"));
        if std::fs::read(&copy).ok() != std::fs::read(certificate).ok() {
            std::fs::create_dir_all(copy.parent().expect("a directory"))
                .map_err(|e| format!("{}: {e}", copy.display()))?;
            std::fs::copy(certificate, &copy).map_err(|e| format!("{}: {e}", copy.display()))?;
            changed = true;
        }
    }
    if changed {
        crate::run(&mut inside(workspace, root, &[], "update-ca-certificates >/dev/null"))?;
    }
    let pip_conf = Path::new("/etc/pip.conf");
    if pip_conf.is_file() {
        let copy = root.join("etc/pip.conf");
        std::fs::copy(pip_conf, &copy).map_err(|e| format!("{}: {e}", copy.display()))?;
    }
    Ok(())
}

/// The command that runs `script` with `sh` inside `root`, in a private
/// mount namespace with `/proc`, `/sys`, `/dev`, the workspace and the Rust
/// toolchain bound in.
fn inside(workspace: &Path, root: &Path, env: &[(&str, &str)], script: &str) -> Command {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".to_string());
    let cargo_home = std::env::var("CARGO_HOME").unwrap_or_else(|_| format!("{home}/.cargo"));
    let rustup_home = std::env::var("RUSTUP_HOME").unwrap_or_else(|_| format!("{home}/.rustup"));
    let r = quoted(root);
    let mut setup = vec![
        "set -e".to_string(),
        format!("mount -t proc proc {r}/proc"),
        format!("mount --rbind /sys {r}/sys"),
        format!("mount --rbind /dev {r}/dev"),
        format!("mount -t tmpfs tmpfs {r}/tmp"),
        format!("cp /etc/resolv.conf {r}/etc/resolv.conf"),
    ];
    for dir in [workspace.display().to_string(), cargo_home.clone(), rustup_home.clone()] {
        let d = quoted(Path::new(&dir));
        setup.push(format!("mkdir -p {r}{d} && mount --bind {d} {r}{d}"));
    }
    let mut variables = vec![
        format!("HOME={}", quoted(Path::new(&home))),
        format!("CARGO_HOME={}", quoted(Path::new(&cargo_home))),
        format!("RUSTUP_HOME={}", quoted(Path::new(&rustup_home))),
        format!("PATH={}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", cargo_home),
        "LANG=C.UTF-8".to_string(),
    ];
    for name in ["CI", "RUST_BACKTRACE"] {
        if let Ok(value) = std::env::var(name) {
            variables.push(format!("{name}={}", quoted(Path::new(&value))));
        }
    }
    variables.extend(env.iter().map(|(k, v)| format!("{k}={}", quoted(Path::new(v)))));
    setup.push(format!(
        "exec chroot {r} /usr/bin/env -i {} /bin/sh -c {}",
        variables.join(" "),
        quoted(Path::new(script))
    ));
    let mut command = Command::new("unshare");
    command.args(["--mount", "--propagation", "private", "sh", "-c", &setup.join("\n")]);
    command
}

/// `text` quoted for `sh`.
fn quoted(text: &Path) -> String {
    format!("'{}'", text.display().to_string().replace('\'', "'\\''"))
}
