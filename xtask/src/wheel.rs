//! `cargo xtask wheel`: the Python wheel, `target/wheels/mod_wsgi_rs-*.whl`.
//!
//! maturin (`bindings = "bin"`) packs the `wsgi-standalone` binary as the
//! wheel's script and the `mod_wsgi_rs` package of `packaging/wheel/python`
//! with the Apache module in it, as mod_wsgi's own package ships its
//! module. Both are built in the `wheel` profile (release without debug
//! information, stripped; target/wheel/) against the Python cargo builds
//! with (`PYO3_PYTHON`, Debian's /usr/bin/python3 here), and the wheel is
//! tagged for that Python: `cpXY-cpXY-linux_<arch>`. Not manylinux: the
//! binaries link the system's libpython, which manylinux forbids, so the
//! wheel is for machines with that Python (maturin's `--compatibility
//! linux`).
//!
//! maturin and wheel come from PyPI, pinned, into a build environment made
//! once (`target/wheel-venv-X.Y`). After that, and with the crates fetched
//! (`cargo fetch`), `--offline` builds without the network: cargo runs
//! `--locked --offline`, pip is not run. The wheel's timestamps are those
//! of the last commit (`SOURCE_DATE_EPOCH`), so it is rebuilt byte for byte
//! from the same binaries.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The build tools, pinned.
const BUILD_REQUIREMENTS: [&str; 2] = ["maturin==1.16.0", "wheel==0.45.1"];

/// The distribution and its package.
const PACKAGE: &str = "mod_wsgi_rs";

pub fn wheel(root: &Path, args: &[String]) -> Result<(), String> {
    let mut offline = false;
    for arg in args {
        match arg.as_str() {
            "--offline" => offline = true,
            other => return Err(format!("wheel: unknown option '{other}'")),
        }
    }
    let started = std::time::Instant::now();
    let python = PathBuf::from(std::env::var_os("PYO3_PYTHON").unwrap_or_else(|| "/usr/bin/python3".into()));
    let (major, minor) = python_version(&python)?;
    let target = crate::target_dir(root);
    let venv = build_venv(&target, &python, (major, minor), offline)?;

    // The Apache module, in the profile maturin builds the binary in.
    let mut cargo_args = vec!["build", "--profile", "wheel", "--locked", "--package", "wsgi-apache"];
    if offline {
        cargo_args.push("--offline");
    }
    let signature = format!("cpython-{major}.{minor}-64bit");
    crate::cargo(root, &cargo_args, &pyo3_env(&python, &signature))?;

    // The package, staged under target/ with the module and its facts.
    let stage = target.join("wheel-build");
    if stage.exists() {
        std::fs::remove_dir_all(&stage).map_err(|e| format!("{}: {e}", stage.display()))?;
    }
    copy_tree(&root.join("packaging/wheel"), &stage)?;
    // The copy's manifest-path, absolute: the stage is under the target
    // directory, which need not be the workspace's target/ (the Debian 13
    // root builds into target/debian13/target).
    let pyproject = stage.join("pyproject.toml");
    let text = std::fs::read_to_string(&pyproject).map_err(|e| format!("{}: {e}", pyproject.display()))?;
    let manifest = root.join("wsgi-standalone/Cargo.toml");
    let text = text.replace(
        "manifest-path = \"../../wsgi-standalone/Cargo.toml\"",
        &format!("manifest-path = \"{}\"", manifest.display()),
    );
    std::fs::write(&pyproject, text).map_err(|e| format!("{}: {e}", pyproject.display()))?;
    let package = stage.join("python").join(PACKAGE);
    let module_name = format!("{PACKAGE}-py{major}{minor}.so");
    let server = package.join("server");
    std::fs::create_dir_all(&server).map_err(|e| format!("{}: {e}", server.display()))?;
    let built_module = target.join("wheel").join("libmod_wsgi.so");
    std::fs::copy(&built_module, server.join(&module_name))
        .map_err(|e| format!("cannot copy {}: {e}", built_module.display()))?;
    let facts = format!(
        "\"\"\"Written by `cargo xtask wheel`: the Python the package was built for.\"\"\"\n\n\
         PYTHON_VERSION = ({major}, {minor})\nMODULE_NAME = \"{module_name}\"\n"
    );
    write(&package.join("_built.py"), &facts)?;

    // Earlier wheels of this Python, so that the one left is this build's.
    let wheels = target.join("wheels");
    let tag = format!("cp{major}{minor}-cp{major}{minor}");
    if let Ok(entries) = std::fs::read_dir(&wheels) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!("{PACKAGE}-")) && name.contains(&format!("-{tag}-")) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let out = target.join("wheel-out");
    // maturin's wheel, then its unpacked and packed forms (see `finish`).
    if out.exists() {
        std::fs::remove_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    }

    let mut maturin = Command::new(venv.join("bin/maturin"));
    maturin
        .current_dir(&stage)
        .args(["build", "--profile", "wheel", "--locked", "--compatibility", "linux", "--interpreter"])
        .arg(&python)
        .arg("--out")
        .arg(&out);
    if offline {
        maturin.arg("--offline");
    }
    if let Some(epoch) = commit_time(root) {
        maturin.env("SOURCE_DATE_EPOCH", epoch);
    }
    maturin.envs(pyo3_env(&python, &signature));
    eprintln!("xtask: maturin build (in {})", stage.display());
    crate::run(&mut maturin)?;
    let built = single_wheel(&out)?;

    let wheel = finish(root, &venv, &built, &format!("cp{major}{minor}"), &wheels)?;
    let size = std::fs::metadata(&wheel).map_err(|e| format!("{}: {e}", wheel.display()))?.len();
    println!("wrote {} ({size} bytes) in {:.0} s", wheel.display(), started.elapsed().as_secs_f64());
    println!(
        "\n`pip install {}` into a virtual environment of Python {major}.{minor} gives `wsgi-standalone` \
         (`module-config` prints the lines that load the module into Apache).",
        wheel.display()
    );
    Ok(())
}

/// What maturin sets for pyo3 when it builds the binary, set for the
/// module's build too: pyo3-ffi's build script reruns when either
/// changes, and every crate above it with it.
fn pyo3_env<'a>(python: &'a Path, signature: &'a str) -> [(&'static str, &'a str); 2] {
    [("PYO3_PYTHON", python.to_str().unwrap_or("/usr/bin/python3")), ("PYO3_ENVIRONMENT_SIGNATURE", signature)]
}

/// maturin's wheel made final: tagged `TAG-TAG-PLATFORM`, as the binary
/// embeds this Python's libpython (maturin tags it so when it finds
/// pyo3-ffi among the binary's dependencies, and a plain binary `py3-none`:
/// set here whatever maturin decides), and with the
/// entry points of packaging/wheel/entry_points.txt (maturin refuses
/// scripts next to a binary). `wheel unpack` and `wheel pack`, which
/// writes the RECORD. Returns the wheel written into `wheels`.
fn finish(root: &Path, venv: &Path, built: &Path, tag: &str, wheels: &Path) -> Result<PathBuf, String> {
    let python = venv.join("bin/python");
    let unpacked = built.with_extension("unpacked");
    crate::run(Command::new(&python).args(["-m", "wheel", "unpack", "--dest"]).arg(&unpacked).arg(built))?;
    let [dir] = list(&unpacked)?.try_into().map_err(|dirs| format!("wheel unpack made {dirs:?}"))?;
    let dist_info = list(&dir)?
        .into_iter()
        .find(|p| p.extension().is_some_and(|x| x == "dist-info"))
        .ok_or_else(|| format!("no .dist-info in {}", dir.display()))?;
    let wheel_file = dist_info.join("WHEEL");
    let metadata = std::fs::read_to_string(&wheel_file).map_err(|e| format!("{}: {e}", wheel_file.display()))?;
    let mut tagged = String::new();
    for line in metadata.lines() {
        match line.strip_prefix("Tag: ") {
            Some(maturins) => {
                let platform =
                    maturins.splitn(3, '-').nth(2).ok_or_else(|| format!("a tag without a platform: {line}"))?;
                tagged.push_str(&format!("Tag: {tag}-{tag}-{platform}\n"));
            }
            None => tagged.push_str(&format!("{line}\n")),
        }
    }
    write(&wheel_file, &tagged)?;
    let entry_points = root.join("packaging/wheel/entry_points.txt");
    std::fs::copy(&entry_points, dist_info.join("entry_points.txt"))
        .map_err(|e| format!("cannot copy {}: {e}", entry_points.display()))?;
    std::fs::create_dir_all(wheels).map_err(|e| format!("{}: {e}", wheels.display()))?;
    let packed = built.with_extension("packed");
    std::fs::create_dir_all(&packed).map_err(|e| format!("{}: {e}", packed.display()))?;
    let mut pack = Command::new(&python);
    pack.args(["-m", "wheel", "pack", "--dest-dir"]).arg(&packed).arg(&dir);
    if let Some(epoch) = commit_time(root) {
        pack.env("SOURCE_DATE_EPOCH", epoch);
    }
    crate::run(&mut pack)?;
    let made = single_wheel(&packed)?;
    let wheel = wheels.join(made.file_name().ok_or("a wheel without a name")?);
    std::fs::rename(&made, &wheel).map_err(|e| format!("cannot move {}: {e}", made.display()))?;
    Ok(wheel)
}

/// The entries of `dir`.
fn list(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(entries.flatten().map(|e| e.path()).collect())
}

/// The `X.Y` of `python`.
fn python_version(python: &Path) -> Result<(u32, u32), String> {
    let output = Command::new(python)
        .args(["-c", "import sys; print(*sys.version_info[:2])"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut words = text.split_whitespace().map(|w| w.parse::<u32>());
    match (output.status.success(), words.next(), words.next()) {
        (true, Some(Ok(major)), Some(Ok(minor))) => Ok((major, minor)),
        _ => Err(format!("{} did not tell its version: {}", python.display(), String::from_utf8_lossy(&output.stderr))),
    }
}

/// The build environment with the pinned tools, made when missing.
fn build_venv(target: &Path, python: &Path, (major, minor): (u32, u32), offline: bool) -> Result<PathBuf, String> {
    let venv = target.join(format!("wheel-venv-{major}.{minor}"));
    let stamp = venv.join("requirements.txt");
    let wanted = BUILD_REQUIREMENTS.join("\n") + "\n";
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(venv);
    }
    if offline {
        return Err(format!(
            "wheel --offline: the build environment {} is missing or out of date; run `cargo xtask wheel` \
             once with the network",
            venv.display()
        ));
    }
    eprintln!("xtask: making {} with {}", venv.display(), BUILD_REQUIREMENTS.join(" "));
    if venv.exists() {
        std::fs::remove_dir_all(&venv).map_err(|e| format!("{}: {e}", venv.display()))?;
    }
    crate::run(Command::new(python).args(["-m", "venv"]).arg(&venv))?;
    crate::run(
        Command::new(venv.join("bin/python"))
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
            .args(BUILD_REQUIREMENTS),
    )?;
    write(&stamp, &wanted)?;
    Ok(venv)
}

/// The one `.whl` in `dir`.
fn single_wheel(dir: &Path) -> Result<PathBuf, String> {
    let wheels: Vec<PathBuf> = list(dir)?.into_iter().filter(|p| p.extension().is_some_and(|x| x == "whl")).collect();
    match wheels.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(format!("expected one wheel in {}, found {wheels:?}", dir.display())),
    }
}

/// The last commit's time (seconds since the epoch), if this is a git
/// checkout.
fn commit_time(root: &Path) -> Option<String> {
    let output = Command::new("git").current_dir(root).args(["log", "-1", "--format=%ct"]).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    (output.status.success() && !text.is_empty()).then_some(text)
}

/// `from`'s files and directories, copied under `to`.
fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for entry in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let entry = entry.map_err(|e| format!("{}: {e}", from.display()))?;
        let name = entry.file_name();
        if name == "__pycache__" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_tree(&path, &to.join(&name))?;
        } else {
            std::fs::copy(&path, to.join(&name)).map_err(|e| format!("cannot copy {}: {e}", path.display()))?;
        }
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}
