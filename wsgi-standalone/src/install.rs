//! Where this program and its Apache module are installed, and the
//! commands about the module: `module-config`, `module-location` and
//! `install-module`, as mod_wsgi-express has them.
//!
//! Two layouts are known. Built from source, the module lies next to the
//! executable (`cargo xtask release`'s target/dist/, Cargo's
//! target/release/). Installed from the wheel (`pip install
//! mod_wsgi_rs-*.whl`, built by `cargo xtask wheel`), the executable is
//! `PREFIX/bin/wsgi-standalone` and the module is inside the Python
//! package, `PREFIX/lib/pythonX.Y/site-packages/mod_wsgi_rs/server/`, as
//! mod_wsgi's own package ships its module. When `PREFIX` is a virtual
//! environment (it has `pyvenv.cfg`), this program runs with that
//! environment, as its `bin/python` would: `start-server` uses it as the
//! activated virtual environment, and `module-config` names it as
//! `WSGIPythonHome`, so that Apache's Python sees its packages too. An
//! environment of another Python version than the one embedded stops both
//! with a message naming the two versions.

use std::path::{Path, PathBuf};

use wsgi_interp::home::{self, Installation, PythonVersion};
use wsgi_interp::HomeError;

/// The Python package the wheel installs.
const PACKAGE: &str = "mod_wsgi_rs";

/// The module's file name in the Python package and where `install-module`
/// copies it: `mod_wsgi_rs-pyXY.so`, apart from Debian's `mod_wsgi.so` and
/// mod_wsgi-express's `mod_wsgi-pyXY.SOABI.so`.
pub(crate) fn module_file_name(version: PythonVersion) -> String {
    format!("{PACKAGE}-py{}{}.so", version.major, version.minor)
}

/// Apache's modules directory when `apxs` cannot say (Debian's).
const DEFAULT_MODULES_DIRECTORY: &str = "/usr/lib/apache2/modules";

/// This executable, with symbolic links resolved.
fn this_executable() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))
}

/// The virtual environment an executable is installed in: `PREFIX` when it
/// is `PREFIX/bin/NAME` and `PREFIX/pyvenv.cfg` exists.
pub(crate) fn venv_of(executable: &Path) -> Option<PathBuf> {
    let bin = executable.parent()?;
    if bin.file_name()? != "bin" {
        return None;
    }
    let prefix = bin.parent()?;
    prefix.join("pyvenv.cfg").is_file().then(|| prefix.to_path_buf())
}

/// The virtual environment this program is installed in, if any, checked
/// to be of the Python version it embeds.
pub(crate) fn installed_venv() -> Result<Option<PathBuf>, String> {
    let Some(venv) = venv_of(&this_executable()?) else { return Ok(None) };
    check_venv(&venv, &Installation::built_against())?;
    Ok(Some(venv))
}

/// `Err` with the message that names both versions when `venv` is of
/// another Python than `built`.
fn check_venv(venv: &Path, built: &Installation) -> Result<(), String> {
    match home::choose_home(Some(venv), None, built) {
        Ok(_) => Ok(()),
        Err(HomeError::VersionMismatch { found, embedded, .. }) => Err(version_mismatch(venv, found, embedded)),
        Err(error) => Err(format!("the virtual environment this program is installed in: {error}")),
    }
}

/// The message of a program installed in a virtual environment of
/// another Python version than the one it embeds.
pub(crate) fn version_mismatch(venv: &Path, found: PythonVersion, embedded: PythonVersion) -> String {
    format!(
        "this wsgi-standalone was built for Python {embedded}, but {}, the virtual environment it is \
         installed in, is Python {found}: install the mod_wsgi_rs wheel built for Python {found} \
         (`cargo xtask wheel` run with that Python)",
        venv.display()
    )
}

/// Before `start-server`: a program installed in a virtual environment
/// runs with it, as the environment's own `bin/python` does, whichever
/// other environment is activated. Sets `VIRTUAL_ENV` (which the serving
/// and daemon processes inherit) unless `--python-home` names a home,
/// which wins anyway. Called while the process has one thread.
pub(crate) fn adopt_installed_venv(python_home_given: bool) -> Result<(), String> {
    if python_home_given {
        return Ok(());
    }
    if let Some(venv) = installed_venv()? {
        std::env::set_var("VIRTUAL_ENV", venv);
    }
    Ok(())
}

/// The Apache module: `explicit` if given, else next to this executable
/// (`mod_wsgi.so`, `libmod_wsgi.so`), else in the Python package installed
/// with it. Absolute, symbolic links resolved.
pub(crate) fn find_module(explicit: Option<&Path>) -> Result<PathBuf, String> {
    let found = match explicit {
        Some(path) => path.to_path_buf(),
        None => {
            let exe = this_executable()?;
            let candidates = module_candidates(&exe, Installation::built_against().version);
            candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
                let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
                format!(
                    "no Apache module found (looked for {}); build it with `cargo xtask release` \
                     or `cargo xtask wheel`, or give --module PATH",
                    looked.join(", ")
                )
            })?
        }
    };
    let module = std::fs::canonicalize(&found).map_err(|e| format!("{}: {e}", found.display()))?;
    if !module.is_file() {
        return Err(format!("{}: not a file", module.display()));
    }
    Ok(module)
}

/// Where the module may be, in order, for the executable `exe`.
fn module_candidates(exe: &Path, version: PythonVersion) -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(dir) = exe.parent() {
        candidates.push(dir.join("mod_wsgi.so"));
        candidates.push(dir.join("libmod_wsgi.so"));
        if let Some(prefix) = dir.parent().filter(|_| dir.file_name().is_some_and(|n| n == "bin")) {
            let lib = prefix.join("lib").join(format!("python{version}"));
            for packages in ["site-packages", "dist-packages"] {
                candidates.push(lib.join(packages).join(PACKAGE).join("server").join(module_file_name(version)));
            }
        }
    }
    candidates
}

/// The home Apache's Python is to run from: the virtual environment this
/// program is installed in, else the installation it was built against.
fn python_home() -> Result<PathBuf, String> {
    Ok(match installed_venv()? {
        Some(venv) => venv,
        None => Installation::built_against().home(),
    })
}

/// `module-config`: the `LoadModule` and `WSGIPythonHome` lines.
pub(crate) fn module_config(module: Option<PathBuf>) -> Result<(), String> {
    // The environment's version first: with another, no module is right.
    let home = python_home()?;
    let module = find_module(module.as_deref())?;
    print!("{}", config_lines(&module, &home));
    Ok(())
}

/// `module-location`: the module's absolute path.
pub(crate) fn module_location() -> Result<(), String> {
    println!("{}", find_module(None)?.display());
    Ok(())
}

/// `install-module`: copies the module into Apache's modules directory as
/// [`module_file_name`] and prints the lines that load that copy.
pub(crate) fn install_module(modules_directory: Option<PathBuf>) -> Result<(), String> {
    let home = python_home()?;
    let module = find_module(None)?;
    let directory = match modules_directory {
        Some(dir) => dir,
        None => apache_modules_directory(),
    };
    let target = directory.join(module_file_name(Installation::built_against().version));
    copy_module(&module, &target)?;
    let target = std::fs::canonicalize(&target).map_err(|e| format!("{}: {e}", target.display()))?;
    print!("{}", config_lines(&target, &home));
    Ok(())
}

/// `apxs -q LIBEXECDIR` when apxs answers, else Debian's directory.
fn apache_modules_directory() -> PathBuf {
    for apxs in ["apxs", "apxs2"] {
        let Ok(output) = std::process::Command::new(apxs).args(["-q", "LIBEXECDIR"]).output() else { continue };
        let answer = String::from_utf8_lossy(&output.stdout).trim().to_string();
        if output.status.success() && !answer.is_empty() {
            return PathBuf::from(answer);
        }
    }
    PathBuf::from(DEFAULT_MODULES_DIRECTORY)
}

/// Copies `from` to `to` through a temporary file in the same directory
/// and a rename: an Apache that has the old copy mapped keeps its pages.
fn copy_module(from: &Path, to: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let directory = to.parent().ok_or_else(|| format!("{}: no directory", to.display()))?;
    if !directory.is_dir() {
        return Err(format!("{}: not a directory (give --modules-directory DIR)", directory.display()));
    }
    let name = to.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let partial = directory.join(format!(".{name}.{}.partial", std::process::id()));
    let copied = std::fs::copy(from, &partial)
        .and_then(|_| std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o644)))
        .and_then(|()| std::fs::rename(&partial, to));
    copied.map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        format!("cannot install {} as {}: {e}", from.display(), to.display())
    })
}

/// The two lines, as mod_wsgi-express prints them.
fn config_lines(module: &Path, home: &Path) -> String {
    format!(
        "LoadModule wsgi_module {}\nWSGIPythonHome {}\n",
        always_quoted(&module.display().to_string()),
        always_quoted(&home.display().to_string())
    )
}

/// A word double-quoted for Apache's configuration syntax, as
/// mod_wsgi-express writes paths.
fn always_quoted(word: &str) -> String {
    format!("\"{}\"", word.replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    const V311: PythonVersion = PythonVersion { major: 3, minor: 11 };

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wsgi-standalone-install-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        dir
    }

    #[test]
    fn the_module_is_looked_for_next_to_the_executable_then_in_the_package() {
        let candidates = module_candidates(Path::new("/srv/venv/bin/wsgi-standalone"), V311);
        let expected: Vec<PathBuf> = [
            "/srv/venv/bin/mod_wsgi.so",
            "/srv/venv/bin/libmod_wsgi.so",
            "/srv/venv/lib/python3.11/site-packages/mod_wsgi_rs/server/mod_wsgi_rs-py311.so",
            "/srv/venv/lib/python3.11/dist-packages/mod_wsgi_rs/server/mod_wsgi_rs-py311.so",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(candidates, expected);
        // Outside a bin/ directory (Cargo's target/release/) only next to it.
        assert_eq!(module_candidates(Path::new("/w/target/release/wsgi-standalone"), V311).len(), 2);
    }

    #[test]
    fn a_virtual_environment_is_the_prefix_of_bin_with_pyvenv_cfg() {
        let dir = scratch("venv");
        let exe = dir.join("bin/wsgi-standalone");
        assert_eq!(venv_of(&exe), None, "no pyvenv.cfg yet");
        std::fs::write(dir.join("pyvenv.cfg"), "version = 3.11.2\n").unwrap();
        assert_eq!(venv_of(&exe), Some(dir.clone()));
        assert_eq!(venv_of(&dir.join("wsgi-standalone")), None, "not in bin/");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_virtual_environment_of_another_version_is_refused_naming_both() {
        let dir = scratch("venv-other");
        let built = Installation::built_against();
        // A version other than the one built against (3.11 or 3.13).
        let other = if built.version.minor == 13 { 11 } else { 13 };
        std::fs::write(dir.join("pyvenv.cfg"), format!("home = /opt/py/bin\nversion = 3.{other}.5\n")).unwrap();
        let error = check_venv(&dir, &built).unwrap_err();
        let found = PythonVersion { major: 3, minor: other };
        assert_eq!(error, version_mismatch(&dir, found, built.version));
        assert!(error.starts_with(&format!("this wsgi-standalone was built for Python {}", built.version)));
        assert!(error
            .contains(&format!("{}, the virtual environment it is installed in, is Python 3.{other}", dir.display())));

        std::fs::write(dir.join("pyvenv.cfg"), format!("version = {}.1\n", built.version)).unwrap();
        assert_eq!(check_venv(&dir, &built), Ok(()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn install_module_copies_through_a_rename_and_refuses_a_missing_directory() {
        let dir = scratch("modules");
        let from = dir.join("bin/libmod_wsgi.so");
        std::fs::write(&from, "module").unwrap();
        let to = dir.join("mod_wsgi_rs-py311.so");
        std::fs::write(&to, "old").unwrap();
        copy_module(&from, &to).unwrap();
        assert_eq!(std::fs::read_to_string(&to).unwrap(), "module");
        let names: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert!(!names.iter().any(|n| n.ends_with(".partial")), "{names:?}");
        let error = copy_module(&from, &dir.join("missing/mod.so")).unwrap_err();
        assert!(error.contains("not a directory"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn config_lines_quote_both_paths() {
        assert_eq!(
            config_lines(Path::new("/m/mod \"x\".so"), Path::new("/srv/venv")),
            "LoadModule wsgi_module \"/m/mod \\\"x\\\".so\"\nWSGIPythonHome \"/srv/venv\"\n"
        );
    }
}
