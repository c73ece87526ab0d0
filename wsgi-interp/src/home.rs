//! Which Python installation the embedded interpreter runs from: its home.
//!
//! Left to itself, an embedded CPython finds its standard library by
//! looking for `python3` on `PATH` and searching upwards from there, so a
//! server started from a shell where pyenv's (or any other) `python3` comes
//! first silently runs Debian's libpython with that installation's standard
//! library and site-packages, or cannot start at all when its version
//! differs ("No module named 'encodings'"). Here the home is always chosen
//! explicitly, in this order:
//!
//! 1. the configured home: `WSGIPythonHome`, a daemon's `python-home=`,
//!    `--python-home`; a Python installation (`PREFIX` or
//!    `PREFIX:EXEC_PREFIX`, as CPython's `PYTHONHOME`) or a virtual
//!    environment (a directory with `pyvenv.cfg`);
//! 2. else the activated virtual environment, `VIRTUAL_ENV`, which must
//!    have a `pyvenv.cfg`;
//! 3. else the installation this library was built against (its
//!    `sys.base_prefix`, recorded by the build script from the interpreter
//!    pyo3-ffi linked).
//!
//! A home of another `X.Y` version than the linked libpython is refused
//! ([`HomeError::VersionMismatch`]). A virtual environment runs on the
//! built-against installation's standard library (the one that matches the
//! library exactly), with `sys.executable` set to the environment's
//! `bin/python`: CPython's `site` module then finds `pyvenv.cfg` next to it,
//! makes the environment `sys.prefix` and adds its site-packages (and the
//! system's, if `include-system-site-packages = true`), just as it does for
//! the environment's own interpreter.
//!
//! Everything here is plain file reading; nothing touches Python, so front
//! ends can check a home before they start anything.

use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A Python `major.minor` version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PythonVersion {
    /// The major version (3).
    pub major: u32,
    /// The minor version (11 for 3.11).
    pub minor: u32,
}

impl PythonVersion {
    /// The `X.Y` of a version text: `3.11`, `3.11.2`, `3.11.2.final.0`
    /// (virtualenv's `version_info`); `None` if it does not start with two
    /// numbers.
    pub fn parse(text: &str) -> Option<PythonVersion> {
        let mut parts = text.trim().split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.trim().parse().ok()?;
        Some(PythonVersion { major, minor })
    }

    /// The version of a `lib/` subdirectory name, `pythonX.Y`.
    fn from_lib_dir(name: &str) -> Option<PythonVersion> {
        let version = PythonVersion::parse(name.strip_prefix("python")?)?;
        (name == version.lib_dir()).then_some(version)
    }

    /// `pythonX.Y`, the standard library's directory under `PREFIX/lib`.
    fn lib_dir(self) -> String {
        format!("python{}.{}", self.major, self.minor)
    }
}

impl fmt::Display for PythonVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// A Python installation: its version and prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    /// Its `X.Y` version.
    pub version: PythonVersion,
    /// `sys.prefix`: where `lib/pythonX.Y` lives.
    pub prefix: PathBuf,
    /// `sys.exec_prefix`: where `lib/pythonX.Y/lib-dynload` lives.
    pub exec_prefix: PathBuf,
}

impl Installation {
    /// The installation this library was built against: the base
    /// installation of the interpreter pyo3-ffi linked (Debian's
    /// `/usr`, Python 3.11, here). The shared library's name carries the
    /// `X.Y` version, so the libpython loaded at run time is of this
    /// version too.
    pub fn built_against() -> Installation {
        let version = PythonVersion::parse(env!("WSGI_INTERP_PYTHON_VERSION"))
            .expect("the build script records the linked Python's X.Y version");
        Installation {
            version,
            prefix: PathBuf::from(env!("WSGI_INTERP_PYTHON_PREFIX")),
            exec_prefix: PathBuf::from(env!("WSGI_INTERP_PYTHON_EXEC_PREFIX")),
        }
    }

    /// Its interpreter, `PREFIX/bin/pythonX.Y`.
    pub fn executable(&self) -> PathBuf {
        self.prefix.join("bin").join(self.version.lib_dir())
    }

    /// The value of `PyConfig.home` that names it: `PREFIX`, or
    /// `PREFIX:EXEC_PREFIX` when they differ.
    pub fn home(&self) -> PathBuf {
        if self.prefix == self.exec_prefix {
            return self.prefix.clone();
        }
        let mut home = self.prefix.clone().into_os_string();
        home.push(":");
        home.push(&self.exec_prefix);
        PathBuf::from(home)
    }
}

/// Where the chosen home came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HomeSource {
    /// `WSGIPythonHome`, a daemon's `python-home=`, or `--python-home`.
    Configured,
    /// The activated virtual environment, `VIRTUAL_ENV`.
    VirtualEnv,
    /// Nothing given: the installation the server was built against.
    BuiltAgainst,
}

impl fmt::Display for HomeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HomeSource::Configured => "configured",
            HomeSource::VirtualEnv => "the activated virtual environment, VIRTUAL_ENV",
            HomeSource::BuiltAgainst => "the installation this server was built against",
        })
    }
}

/// The home chosen: what the embedded Python is initialised with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonHome {
    /// Where it came from.
    pub source: HomeSource,
    /// `PyConfig.home`: the installation whose standard library is used
    /// (`PREFIX` or `PREFIX:EXEC_PREFIX`).
    pub home: PathBuf,
    /// `PyConfig.executable` (and program name): `sys.executable`.
    pub executable: PathBuf,
    /// `PyConfig.base_executable`: `sys._base_executable`, the
    /// installation's own interpreter.
    pub base_executable: PathBuf,
    /// The virtual environment whose interpreter `executable` is, if any.
    pub virtual_env: Option<PathBuf>,
}

impl fmt::Display for PythonHome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.virtual_env {
            Some(venv) => write!(f, "virtual environment {} on {}", venv.display(), self.home.display())?,
            None => write!(f, "{}", self.home.display())?,
        }
        write!(f, " ({}; sys.executable {})", self.source, self.executable.display())
    }
}

/// What mod_wsgi-rs reads of a virtual environment's `pyvenv.cfg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyvenvCfg {
    /// `home`: the directory of the interpreter it was made with.
    pub home: Option<PathBuf>,
    /// `version` (venv, uv) or else `version_info` (virtualenv).
    pub version: Option<PythonVersion>,
    /// `include-system-site-packages` (true when absent, as `site` reads it).
    pub include_system_site_packages: bool,
}

impl PyvenvCfg {
    /// Parses the text of a `pyvenv.cfg` as CPython's `site` module does:
    /// `key = value` lines, keys case-insensitive, other lines ignored.
    pub fn parse(text: &str) -> PyvenvCfg {
        let mut cfg = PyvenvCfg { home: None, version: None, include_system_site_packages: true };
        let mut version_info = None;
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else { continue };
            let value = value.trim();
            match key.trim().to_ascii_lowercase().as_str() {
                "home" => cfg.home = Some(PathBuf::from(value)),
                "version" => cfg.version = PythonVersion::parse(value),
                "version_info" => version_info = PythonVersion::parse(value),
                "include-system-site-packages" => cfg.include_system_site_packages = value.eq_ignore_ascii_case("true"),
                _ => {}
            }
        }
        cfg.version = cfg.version.or(version_info);
        cfg
    }
}

/// The directory a [`HomeError`] is about, and how it came to be chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Where it came from.
    pub source: HomeSource,
    /// The directory (as configured, for a configured home).
    pub path: PathBuf,
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match self.source {
            HomeSource::Configured => write!(f, "python home {path}"),
            HomeSource::VirtualEnv => write!(f, "virtual environment {path} (VIRTUAL_ENV)"),
            HomeSource::BuiltAgainst => write!(f, "the Python installation this server was built against, {path},"),
        }
    }
}

/// An I/O error shared between clones of the error that holds it.
#[derive(Debug, Clone)]
pub struct SharedIoError(Arc<io::Error>);

impl SharedIoError {
    /// The kind of the underlying error.
    pub fn kind(&self) -> io::ErrorKind {
        self.0.kind()
    }
}

impl From<io::Error> for SharedIoError {
    fn from(error: io::Error) -> SharedIoError {
        SharedIoError(Arc::new(error))
    }
}

impl PartialEq for SharedIoError {
    fn eq(&self, other: &SharedIoError) -> bool {
        self.0.kind() == other.0.kind() && self.0.to_string() == other.0.to_string()
    }
}

impl Eq for SharedIoError {}

impl fmt::Display for SharedIoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SharedIoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// Why no usable home could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HomeError {
    /// The home is an installation or virtual environment of another
    /// `X.Y` version than the libpython this server embeds.
    #[error("{subject} is Python {found}, but this server embeds Python {embedded}")]
    VersionMismatch {
        /// The home.
        subject: Subject,
        /// Its version.
        found: PythonVersion,
        /// The linked libpython's version.
        embedded: PythonVersion,
    },
    /// The home, or its `pyvenv.cfg`, could not be read.
    #[error("{subject} cannot be used: {}: {error}", path.display())]
    Unreadable {
        /// The home.
        subject: Subject,
        /// What could not be read.
        path: PathBuf,
        /// Why.
        #[source]
        error: SharedIoError,
    },
    /// The home has neither a standard library of any version nor a
    /// `pyvenv.cfg`.
    #[error("{subject} is not a Python installation or virtual environment: it has no {} and no pyvenv.cfg", landmark.display())]
    NotAnInstallation {
        /// The home.
        subject: Subject,
        /// The standard library's landmark looked for.
        landmark: PathBuf,
    },
    /// `VIRTUAL_ENV` names a directory without `pyvenv.cfg`.
    #[error("VIRTUAL_ENV names {}, which is not a virtual environment: it has no pyvenv.cfg", subject.path.display())]
    NotAVirtualEnv {
        /// The directory.
        subject: Subject,
    },
    /// A virtual environment whose version can be told neither from its
    /// `pyvenv.cfg` nor from its `lib/pythonX.Y`.
    #[error("{subject}: cannot tell its Python version (no version in pyvenv.cfg, no lib/pythonX.Y)")]
    UnknownVersion {
        /// The virtual environment.
        subject: Subject,
    },
}

/// Chooses the home (see the module documentation): `configured`
/// (`WSGIPythonHome`, `python-home=`) if given, else `virtual_env` (the
/// value of `VIRTUAL_ENV`) if given, else `built`. Empty paths count as
/// not given.
pub fn choose_home(
    configured: Option<&Path>,
    virtual_env: Option<&Path>,
    built: &Installation,
) -> Result<PythonHome, HomeError> {
    fn given(path: Option<&Path>) -> Option<&Path> {
        path.filter(|p| !p.as_os_str().is_empty())
    }
    if let Some(home) = given(configured) {
        return configured_home(home, built);
    }
    if let Some(venv) = given(virtual_env) {
        let subject = Subject { source: HomeSource::VirtualEnv, path: venv.to_path_buf() };
        return match read_pyvenv_cfg(venv, &subject)? {
            Some(cfg) => virtual_env_home(venv, &cfg, subject, built),
            None => Err(HomeError::NotAVirtualEnv { subject }),
        };
    }
    let subject = Subject { source: HomeSource::BuiltAgainst, path: built.prefix.clone() };
    if !has_stdlib(&built.prefix, built.version) {
        return Err(HomeError::NotAnInstallation { subject, landmark: stdlib_landmark(&built.prefix, built.version) });
    }
    let executable = built.executable();
    Ok(PythonHome {
        source: HomeSource::BuiltAgainst,
        home: built.home(),
        base_executable: executable.clone(),
        executable,
        virtual_env: None,
    })
}

/// A configured home: a virtual environment if it has `pyvenv.cfg`, else an
/// installation (`PREFIX` or `PREFIX:EXEC_PREFIX`) with a standard library
/// of the linked version.
fn configured_home(home: &Path, built: &Installation) -> Result<PythonHome, HomeError> {
    let subject = Subject { source: HomeSource::Configured, path: home.to_path_buf() };
    // As PYTHONHOME: `PREFIX:EXEC_PREFIX` names two directories.
    let text = home.as_os_str().as_bytes();
    let split = text.iter().position(|&b| b == b':');
    let prefix = match split {
        Some(at) => PathBuf::from(std::ffi::OsStr::from_bytes(&text[..at])),
        None => home.to_path_buf(),
    };
    if split.is_none() {
        if let Some(cfg) = read_pyvenv_cfg(home, &subject)? {
            return virtual_env_home(home, &cfg, subject, built);
        }
    }
    if !has_stdlib(&prefix, built.version) {
        if let Err(error) = std::fs::metadata(&prefix) {
            return Err(HomeError::Unreadable { subject, path: prefix, error: error.into() });
        }
        return match stdlib_versions(&prefix).into_iter().max() {
            Some(found) => Err(HomeError::VersionMismatch { subject, found, embedded: built.version }),
            None => Err(HomeError::NotAnInstallation { subject, landmark: stdlib_landmark(&prefix, built.version) }),
        };
    }
    let bin = prefix.join("bin");
    let candidates = [bin.join(built.version.lib_dir()), bin.join(format!("python{}", built.version.major))];
    let executable = candidates.iter().find(|p| p.is_file()).unwrap_or(&candidates[0]).clone();
    Ok(PythonHome {
        source: HomeSource::Configured,
        home: home.to_path_buf(),
        base_executable: executable.clone(),
        executable,
        virtual_env: None,
    })
}

/// A virtual environment of the linked version runs on the built-against
/// installation, with its own interpreter as `sys.executable` (see the
/// module documentation).
fn virtual_env_home(
    venv: &Path,
    cfg: &PyvenvCfg,
    subject: Subject,
    built: &Installation,
) -> Result<PythonHome, HomeError> {
    let found = match cfg.version {
        Some(version) => version,
        None => {
            let mut versions = lib_versions(venv);
            versions.sort();
            match (versions.contains(&built.version), versions.last()) {
                (true, _) => built.version,
                (false, Some(&other)) => other,
                (false, None) => return Err(HomeError::UnknownVersion { subject }),
            }
        }
    };
    if found != built.version {
        return Err(HomeError::VersionMismatch { subject, found, embedded: built.version });
    }
    Ok(PythonHome {
        source: subject.source,
        home: built.home(),
        executable: venv.join("bin").join("python"),
        base_executable: built.executable(),
        virtual_env: Some(venv.to_path_buf()),
    })
}

/// The `pyvenv.cfg` of `dir`, `None` if it has none.
fn read_pyvenv_cfg(dir: &Path, subject: &Subject) -> Result<Option<PyvenvCfg>, HomeError> {
    let path = dir.join("pyvenv.cfg");
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(PyvenvCfg::parse(&String::from_utf8_lossy(&bytes)))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(HomeError::Unreadable { subject: subject.clone(), path, error: e.into() }),
    }
}

/// `PREFIX/lib/pythonX.Y/os.py`: how CPython recognises a standard library.
fn stdlib_landmark(prefix: &Path, version: PythonVersion) -> PathBuf {
    prefix.join("lib").join(version.lib_dir()).join("os.py")
}

/// Whether `prefix` holds a standard library of `version`: CPython's
/// landmarks, `lib/pythonX.Y/os.py` (or `.pyc`) or `lib/pythonXY.zip`.
fn has_stdlib(prefix: &Path, version: PythonVersion) -> bool {
    let lib = prefix.join("lib");
    let dir = lib.join(version.lib_dir());
    dir.join("os.py").is_file()
        || dir.join("os.pyc").is_file()
        || lib.join(format!("python{}{}.zip", version.major, version.minor)).is_file()
}

/// The versions of the standard libraries under `prefix/lib`.
fn stdlib_versions(prefix: &Path) -> Vec<PythonVersion> {
    lib_versions(prefix).into_iter().filter(|&v| has_stdlib(prefix, v)).collect()
}

/// The versions named by the `pythonX.Y` directories under `dir/lib`.
fn lib_versions(dir: &Path) -> Vec<PythonVersion> {
    let Ok(entries) = std::fs::read_dir(dir.join("lib")) else { return Vec::new() };
    entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().and_then(PythonVersion::from_lib_dir))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V311: PythonVersion = PythonVersion { major: 3, minor: 11 };

    /// A fresh directory, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("wsgi-interp-home-{name}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn file(&self, name: &str, text: &str) -> &Scratch {
            let path = self.0.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
            self
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// An installation of 3.11 in a scratch directory.
    fn installation() -> (Scratch, Installation) {
        let dir = Scratch::new("base");
        dir.file("lib/python3.11/os.py", "");
        let built = Installation { version: V311, prefix: dir.path().into(), exec_prefix: dir.path().into() };
        (dir, built)
    }

    #[test]
    fn versions_parse_from_every_spelling() {
        assert_eq!(PythonVersion::parse("3.11"), Some(V311));
        assert_eq!(PythonVersion::parse(" 3.11.2 "), Some(V311));
        assert_eq!(PythonVersion::parse("3.11.2.final.0"), Some(V311));
        assert_eq!(PythonVersion::parse("3"), None);
        assert_eq!(PythonVersion::parse("three.eleven"), None);
        assert_eq!(PythonVersion::from_lib_dir("python3.9"), Some(PythonVersion { major: 3, minor: 9 }));
        assert_eq!(PythonVersion::from_lib_dir("python3.11.bak"), None);
        assert_eq!(PythonVersion::from_lib_dir("python3"), None);
        assert_eq!(V311.to_string(), "3.11");
    }

    #[test]
    fn pyvenv_cfg_is_read_as_site_reads_it() {
        let venv = PyvenvCfg::parse(
            "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n\
             executable = /usr/bin/python3.11\ncommand = /usr/bin/python3 -m venv /srv/venv\n",
        );
        assert_eq!(venv.home.as_deref(), Some(Path::new("/usr/bin")));
        assert_eq!(venv.version, Some(V311));
        assert!(!venv.include_system_site_packages);

        let virtualenv =
            PyvenvCfg::parse("Home=/opt/py/bin\nimplementation = CPython\nversion_info = 3.9.18.final.0\n");
        assert_eq!(virtualenv.version, Some(PythonVersion { major: 3, minor: 9 }));
        assert!(virtualenv.include_system_site_packages, "absent means true, as in site.py");

        let both = PyvenvCfg::parse("version_info = 3.12.1\nversion = 3.11.7\nINCLUDE-system-site-packages = True\n");
        assert_eq!(both.version, Some(V311), "`version` wins over `version_info`");
        assert!(both.include_system_site_packages);

        let junk = PyvenvCfg::parse("no equals sign\n[section]\nversion = x.y\n");
        assert_eq!(junk.version, None);
    }

    #[test]
    fn without_configuration_the_built_against_installation_is_used() {
        let (_dir, built) = installation();
        let home = choose_home(None, None, &built).unwrap();
        assert_eq!(home.source, HomeSource::BuiltAgainst);
        assert_eq!(home.home, built.prefix);
        assert_eq!(home.executable, built.prefix.join("bin/python3.11"));
        assert_eq!(home.base_executable, home.executable);
        assert_eq!(home.virtual_env, None);
        // Empty values count as not given.
        assert_eq!(choose_home(Some(Path::new("")), Some(Path::new("")), &built).unwrap(), home);
    }

    #[test]
    fn a_separate_exec_prefix_is_named_as_pythonhome_names_it() {
        let (dir, mut built) = installation();
        built.exec_prefix = dir.path().join("arch");
        let home = choose_home(None, None, &built).unwrap();
        assert_eq!(home.home, PathBuf::from(format!("{}:{}/arch", dir.path().display(), dir.path().display())));
    }

    #[test]
    fn a_built_against_installation_without_its_library_is_reported() {
        let dir = Scratch::new("empty");
        let built = Installation { version: V311, prefix: dir.path().into(), exec_prefix: dir.path().into() };
        let error = choose_home(None, None, &built).unwrap_err();
        assert!(matches!(error, HomeError::NotAnInstallation { .. }), "{error:?}");
        assert!(error.to_string().contains("built against"), "{error}");
        assert!(error.to_string().contains("lib/python3.11/os.py"), "{error}");
    }

    #[test]
    fn a_configured_installation_of_the_linked_version_is_used_as_given() {
        let (_base, built) = installation();
        let other = Scratch::new("other");
        other.file("lib/python3.11/os.py", "").file("bin/python3", "");
        let home = choose_home(Some(other.path()), None, &built).unwrap();
        assert_eq!(home.source, HomeSource::Configured);
        assert_eq!(home.home, other.path());
        assert_eq!(home.executable, other.path().join("bin/python3"), "the existing interpreter");
        assert_eq!(home.virtual_env, None);

        // PREFIX:EXEC_PREFIX is passed on whole; the prefix is checked.
        let both = PathBuf::from(format!("{}:/somewhere/else", other.path().display()));
        assert_eq!(choose_home(Some(&both), None, &built).unwrap().home, both);
    }

    #[test]
    fn a_configured_home_wins_over_an_activated_virtual_environment() {
        let (_base, built) = installation();
        let venv = Scratch::new("venv");
        venv.file("pyvenv.cfg", "version = 3.9.2\n");
        let home = choose_home(Some(&built.prefix), Some(venv.path()), &built).unwrap();
        assert_eq!((home.source, home.virtual_env), (HomeSource::Configured, None));
    }

    #[test]
    fn a_configured_installation_of_another_version_is_refused_naming_both() {
        let (_base, built) = installation();
        let old = Scratch::new("py39");
        old.file("lib/python3.9/os.py", "").file("lib/python3.8/not-a-library", "");
        let error = choose_home(Some(old.path()), None, &built).unwrap_err();
        assert_eq!(
            error,
            HomeError::VersionMismatch {
                subject: Subject { source: HomeSource::Configured, path: old.path().into() },
                found: PythonVersion { major: 3, minor: 9 },
                embedded: V311,
            }
        );
        assert_eq!(
            error.to_string(),
            format!("python home {} is Python 3.9, but this server embeds Python 3.11", old.path().display())
        );
    }

    #[test]
    fn a_configured_directory_that_is_no_installation_is_refused() {
        let (_base, built) = installation();
        let empty = Scratch::new("nothing");
        let error = choose_home(Some(empty.path()), None, &built).unwrap_err();
        assert!(matches!(error, HomeError::NotAnInstallation { .. }), "{error:?}");

        let missing = empty.path().join("missing");
        let error = choose_home(Some(&missing), None, &built).unwrap_err();
        match &error {
            HomeError::Unreadable { error: io, .. } => assert_eq!(io.kind(), io::ErrorKind::NotFound),
            other => panic!("{other:?}"),
        }
        assert!(std::error::Error::source(&error).is_some(), "the I/O error is kept as the source");
    }

    #[test]
    fn a_virtual_environment_runs_on_the_built_against_installation() {
        let (_base, built) = installation();
        let venv = Scratch::new("venv");
        venv.file("pyvenv.cfg", "home = /elsewhere/bin\nversion = 3.11.7\n");
        for (configured, activated, source) in
            [(Some(venv.path()), None, HomeSource::Configured), (None, Some(venv.path()), HomeSource::VirtualEnv)]
        {
            let home = choose_home(configured, activated, &built).unwrap();
            assert_eq!(home.source, source);
            assert_eq!(home.home, built.prefix, "the standard library that matches the linked library");
            assert_eq!(home.executable, venv.path().join("bin/python"), "site.py finds pyvenv.cfg from it");
            assert_eq!(home.base_executable, built.executable());
            assert_eq!(home.virtual_env.as_deref(), Some(venv.path()));
        }
    }

    #[test]
    fn a_virtual_environment_of_another_version_is_refused_naming_both() {
        let (_base, built) = installation();
        let venv = Scratch::new("venv39");
        venv.file("pyvenv.cfg", "home = /opt/py39/bin\nversion = 3.9.2\n");
        let error = choose_home(None, Some(venv.path()), &built).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "virtual environment {} (VIRTUAL_ENV) is Python 3.9, but this server embeds Python 3.11",
                venv.path().display()
            )
        );
        let error = choose_home(Some(venv.path()), None, &built).unwrap_err();
        assert!(error.to_string().starts_with(&format!("python home {} is Python 3.9", venv.path().display())));
    }

    #[test]
    fn a_virtual_environment_without_a_version_line_is_told_by_its_lib_directory() {
        let (_base, built) = installation();
        let venv = Scratch::new("venv-nover");
        venv.file("pyvenv.cfg", "home = /usr/bin\n").file("lib/python3.12/site-packages/x.py", "");
        let error = choose_home(None, Some(venv.path()), &built).unwrap_err();
        assert!(matches!(error, HomeError::VersionMismatch { found: PythonVersion { minor: 12, .. }, .. }));
        venv.file("lib/python3.11/site-packages/x.py", "");
        assert!(choose_home(None, Some(venv.path()), &built).is_ok());

        let bare = Scratch::new("venv-bare");
        bare.file("pyvenv.cfg", "home = /usr/bin\n");
        let error = choose_home(None, Some(bare.path()), &built).unwrap_err();
        assert!(matches!(error, HomeError::UnknownVersion { .. }), "{error:?}");
    }

    #[test]
    fn an_activated_directory_without_pyvenv_cfg_is_refused() {
        let (_base, built) = installation();
        let dir = Scratch::new("not-venv");
        let error = choose_home(None, Some(dir.path()), &built).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "VIRTUAL_ENV names {}, which is not a virtual environment: it has no pyvenv.cfg",
                dir.path().display()
            )
        );
    }

    #[test]
    fn the_built_against_installation_is_the_linked_one() {
        let built = Installation::built_against();
        assert!(built.prefix.is_absolute(), "{built:?}");
        assert!(has_stdlib(&built.prefix, built.version), "{built:?}");
    }
}
