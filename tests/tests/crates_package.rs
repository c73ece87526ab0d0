//! The library crates can be packaged for crates.io: `cargo package` of
//! wsgi-config, wsgi-core, wsgi-interp and wsgi-daemon together succeeds,
//! verification builds included (each packaged crate is built from its
//! `.crate` alone, the ones it depends on taken from the crates just
//! packaged), and each packaged manifest carries the metadata a registry
//! shows. Fails when a crate reads a file outside its directory, or a
//! path dependency loses its version.
//!
//! The verification builds share the workspace's target directory: from
//! nothing they take a little over a minute on two cores, a few seconds
//! once built.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tests::{target_dir, workspace_root};

/// The crates published for reuse, in dependency order.
const LIBRARY_CRATES: [&str; 4] = ["wsgi-config", "wsgi-core", "wsgi-interp", "wsgi-daemon"];

/// Runs `cargo package` for every library crate, offline when the local
/// registry cache can resolve the packaged crates' dependencies, online
/// otherwise.
fn cargo_package() -> Output {
    let run = |offline: bool| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = Command::new(cargo);
        command.current_dir(workspace_root()).args(["package", "--allow-dirty"]);
        if offline {
            command.arg("--offline");
        }
        for name in LIBRARY_CRATES {
            command.args(["--package", name]);
        }
        command.output().expect("cargo runs")
    };
    let output = run(true);
    if output.status.success() || !String::from_utf8_lossy(&output.stderr).contains("offline") {
        return output;
    }
    eprintln!("offline packaging failed, retrying online:\n{}", String::from_utf8_lossy(&output.stderr));
    run(false)
}

fn crate_file(name: &str) -> PathBuf {
    target_dir().join("package").join(format!("{name}-{}.crate", env!("CARGO_PKG_VERSION")))
}

/// The text of `file` (a path inside the crate) in the `.crate` at `path`.
fn packaged_file(path: &Path, name: &str, file: &str) -> String {
    let member = format!("{name}-{}/{file}", env!("CARGO_PKG_VERSION"));
    let output = Command::new("tar").arg("-xzOf").arg(path).arg(&member).output().expect("tar runs");
    assert!(output.status.success(), "{member} is not in {}: {output:?}", path.display());
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// The files in the `.crate` at `path`.
fn packaged_files(path: &Path) -> Vec<String> {
    let output = Command::new("tar").arg("-tzf").arg(path).output().expect("tar runs");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).expect("UTF-8").lines().map(str::to_string).collect()
}

#[test]
fn library_crates_package_and_verify() {
    for name in LIBRARY_CRATES {
        let _ = std::fs::remove_file(crate_file(name));
    }
    let output = cargo_package();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "cargo package failed:\n{stderr}");
    for name in LIBRARY_CRATES {
        assert!(stderr.contains(&format!("Verifying {name} v")), "{name} was verified:\n{stderr}");
        let path = crate_file(name);
        assert!(path.is_file(), "{} exists", path.display());

        let manifest = packaged_file(&path, name, "Cargo.toml");
        for key in ["description", "license", "repository", "readme", "keywords"] {
            assert!(
                manifest.lines().any(|line| line.starts_with(&format!("{key} = "))),
                "{name}'s packaged Cargo.toml has `{key}`:\n{manifest}"
            );
        }
        assert!(manifest.contains("license = \"Apache-2.0\""), "{manifest}");
        assert!(!manifest.contains("path = \"../"), "no path dependency leaves the crate:\n{manifest}");
        let readme = packaged_file(&path, name, "README.md");
        assert!(readme.starts_with(&format!("# {name}\n")), "{name}'s README is its own:\n{readme}");
    }
    let interp = packaged_files(&crate_file("wsgi-interp"));
    for file in ["src/mod_wsgi.py", "build.rs", "examples/call_app.rs"] {
        assert!(interp.iter().any(|f| f.ends_with(&format!("/{file}"))), "wsgi-interp's crate has {file}: {interp:?}");
    }
}

#[test]
fn front_ends_and_tools_are_not_published() {
    for name in ["wsgi-apache", "wsgi-standalone", "xtask", "tests"] {
        let manifest = std::fs::read_to_string(workspace_root().join(name).join("Cargo.toml")).expect("manifest");
        assert!(manifest.lines().any(|line| line == "publish = false"), "{name} has `publish = false`");
    }
    for name in LIBRARY_CRATES {
        let manifest = std::fs::read_to_string(workspace_root().join(name).join("Cargo.toml")).expect("manifest");
        assert!(!manifest.contains("publish ="), "{name} may be published");
    }
}
