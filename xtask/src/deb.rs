//! `cargo xtask deb`: the Apache module as a Debian package,
//! `target/debian/libapache2-mod-wsgi-rs_<version>_<arch>.deb`, built with
//! `dpkg-deb` from a tree staged under `target/debian/`.
//!
//! The package installs the module as `mod_wsgi_rs.so` with its own
//! `wsgi_rs.load`/`wsgi_rs.conf`, so that it never shares a file with
//! Debian's `libapache2-mod-wsgi-py3`; both define `wsgi_module`, hence the
//! `Conflicts`. Its maintainer scripts are those dh_apache2 writes for
//! Debian's mod_wsgi: the module is enabled on a fresh install (unless the
//! admin disabled it before), disabled on remove and forgotten on purge.

use std::path::Path;
use std::process::Command;

const PACKAGE: &str = "libapache2-mod-wsgi-rs";
/// The module's installed path: not Debian's `mod_wsgi.so`.
const MODULE_PATH: &str = "usr/lib/apache2/modules/mod_wsgi_rs.so";
const LOAD_PATH: &str = "etc/apache2/mods-available/wsgi_rs.load";
const CONF_PATH: &str = "etc/apache2/mods-available/wsgi_rs.conf";
const DEFAULT_MAINTAINER: &str = "mod_wsgi-rs maintainers <maintainers@mod-wsgi-rs.invalid>";

/// Debian's mod_wsgi packages (Python 3, and the old Python 2 one): they
/// also define `wsgi_module`, so only one of them may be installed.
const CONFLICTS: &str = "libapache2-mod-wsgi, libapache2-mod-wsgi-py3";

/// What dh_apache2 gives every module: the Apache module API it is built
/// for (the virtual package apache2-bin provides) and its minimum apache2-bin.
const APACHE_DEPENDS: &str = "apache2-api-20120211, apache2-bin (>= 2.4.16)";

const CONF: &str = "\
<IfModule wsgi_module>

    # mod_wsgi-rs: the directives below are allowed only at server level
    # (outside <VirtualHost>); each is shown commented out, with its
    # default. docs/directives.md in the source lists every directive and
    # what this module does with it.

    # WSGISocketPrefix: where daemon processes' sockets are made (the
    # directory must exist; Apache's runtime directory by default).

        #WSGISocketPrefix /var/run/apache2/wsgi

    # WSGIPythonHome: the Python installation or virtual environment the
    # embedded interpreters run from (by default the Python 3 this module
    # was built against, /usr).

        #WSGIPythonHome /usr

    # WSGIPythonPath: directories added to sys.path, ':'-separated.

        #WSGIPythonPath directory|directory-1:directory-2:...

    # WSGIPythonOptimize: Python's -O level (0, 1 or 2).

        #WSGIPythonOptimize 0

    # WSGIRestrictEmbedded: On refuses (500) any request not delegated to a
    # daemon process group.

        #WSGIRestrictEmbedded Off

    # WSGIRestrictStdin, WSGIRestrictStdout, WSGIRestrictSignal: keep
    # applications from reading stdin, writing stdout, installing signal
    # handlers.

        #WSGIRestrictStdin On
        #WSGIRestrictStdout On
        #WSGIRestrictSignal On

    # WSGIImportScript: a script loaded when a process starts, into the
    # named process group and application group.

        #WSGIImportScript /path/to/script.py process-group=name application-group=name

    # WSGILazyInitialization: On starts Python only in Apache's children and
    # daemon processes, never in Apache's parent.

        #WSGILazyInitialization On

</IfModule>
";

const POSTINST: &str = "\
#!/bin/sh
set -e
# As dh_apache2 writes it for Debian's mod_wsgi: enable the module on a
# fresh install; apache2_invoke leaves it disabled when the admin disabled it.
if [ \"$1\" = \"configure\" ] && [ -e /usr/share/apache2/apache2-maintscript-helper ] ; then
\t. /usr/share/apache2/apache2-maintscript-helper
\tapache2_invoke enmod wsgi_rs || exit 1
fi
exit 0
";

const PRERM: &str = "\
#!/bin/sh
set -e
if [ \"$1\" = \"remove\" ] || [ \"$1\" = \"deconfigure\" ] ; then
\tif [ -e /usr/share/apache2/apache2-maintscript-helper ] ; then
\t\t. /usr/share/apache2/apache2-maintscript-helper
\t\tapache2_invoke dismod wsgi_rs || exit 1
\tfi
fi
exit 0
";

const POSTRM: &str = "\
#!/bin/sh
set -e
if [ \"$1\" = \"purge\" ] ; then
\tif [ -e /usr/share/apache2/apache2-maintscript-helper ] ; then
\t\t. /usr/share/apache2/apache2-maintscript-helper
\t\tapache2_invoke dismod wsgi_rs || exit 1
\tfi
fi
exit 0
";

pub fn deb(root: &Path) -> Result<(), String> {
    for program in ["dpkg-deb", "dpkg-shlibdeps", "strip", "readelf", "gzip"] {
        if crate::which(program).is_none() {
            return Err(format!("deb: {program} is missing (dpkg-dev and binutils provide it)"));
        }
    }
    crate::cargo(root, &["build", "--release", "--package", "wsgi-apache"], &[])?;
    let target = crate::target_dir(root);
    let built = target.join("release").join("libmod_wsgi.so");
    let version = env!("CARGO_PKG_VERSION");
    let arch = output(Command::new("dpkg").arg("--print-architecture"))?.trim().to_string();

    // target/debian/build/debian/<package>: the layout debhelper uses, which
    // dpkg-shlibdeps (run from target/debian/build) expects.
    let out_dir = target.join("debian");
    let build = out_dir.join("build");
    let stage = build.join("debian").join(PACKAGE);
    if build.exists() {
        std::fs::remove_dir_all(&build).map_err(|e| format!("{}: {e}", build.display()))?;
    }
    let module = stage.join(MODULE_PATH);
    make_dir(module.parent().expect("the module path has a directory"))?;
    // Debian ships modules stripped (dh_strip), 0644.
    run(Command::new("strip").args(["--strip-unneeded", "-o"]).arg(&module).arg(&built))?;
    set_mode(&module, 0o644)?;

    let load = format!("LoadModule wsgi_module /{MODULE_PATH}\n");
    write(&stage.join(LOAD_PATH), &load, 0o644)?;
    write(&stage.join(CONF_PATH), CONF, 0o644)?;
    let maintainer = maintainer();
    let doc = stage.join("usr/share/doc").join(PACKAGE);
    write(&doc.join("copyright"), &copyright(), 0o644)?;
    let changelog = doc.join("changelog");
    write(&changelog, &changelog_text(root, version, &maintainer), 0o644)?;
    run(Command::new("gzip").args(["-9nf"]).arg(&changelog))?;

    let depends = depends(&build, &module)?;
    let debian = stage.join("DEBIAN");
    make_dir(&debian)?;
    set_mode(&stage, 0o755)?;
    set_mode(&debian, 0o755)?;
    write(&debian.join("postinst"), POSTINST, 0o755)?;
    write(&debian.join("prerm"), PRERM, 0o755)?;
    write(&debian.join("postrm"), POSTRM, 0o755)?;
    write(&debian.join("conffiles"), &format!("/{LOAD_PATH}\n/{CONF_PATH}\n"), 0o644)?;
    // md5sums of everything but the conffiles (dpkg keeps theirs itself).
    let listed = [
        MODULE_PATH.to_string(),
        format!("usr/share/doc/{PACKAGE}/copyright"),
        format!("usr/share/doc/{PACKAGE}/changelog.gz"),
    ];
    let sums = output(Command::new("md5sum").current_dir(&stage).args(&listed))?;
    write(&debian.join("md5sums"), &sums, 0o644)?;

    let installed_size = settle(&stage)?;
    let control = format!(
        "Package: {PACKAGE}\n\
         Version: {version}\n\
         Architecture: {arch}\n\
         Maintainer: {maintainer}\n\
         Installed-Size: {installed_size}\n\
         Depends: {depends}\n\
         Conflicts: {CONFLICTS}\n\
         Replaces: libapache2-mod-wsgi-py3\n\
         Provides: httpd-wsgi3\n\
         Section: httpd\n\
         Priority: optional\n\
         Description: Python 3 WSGI adapter module for Apache, written in Rust\n \
         mod_wsgi-rs is a reimplementation of mod_wsgi in Rust: an Apache httpd\n \
         2.4 module that hosts Python WSGI (PEP 3333) applications, in Apache's\n \
         own processes or in daemon process groups. A configuration written for\n \
         mod_wsgi (WSGIScriptAlias, WSGIDaemonProcess, WSGIApplicationGroup, ...)\n \
         runs unchanged.\n \
         .\n \
         The module is wsgi_module, as Debian's mod_wsgi is, and is enabled with\n \
         \"a2enmod wsgi_rs\" (done on a fresh install, as Debian does for mod_wsgi).\n"
    );
    write(&debian.join("control"), &control, 0o644)?;

    let deb = out_dir.join(format!("{PACKAGE}_{version}_{arch}.deb"));
    run(Command::new("dpkg-deb").args(["--root-owner-group", "--build"]).arg(&stage).arg(&deb))?;
    let size = std::fs::metadata(&deb).map_err(|e| format!("{}: {e}", deb.display()))?.len();
    println!("wrote {} ({size} bytes)", deb.display());
    println!("Depends: {depends}");
    println!("install: apt install {} && a2enmod wsgi_rs && apachectl graceful", deb.display());
    Ok(())
}

/// The package's Depends: the Apache module API, then what the module links
/// (dpkg-shlibdeps: libc6, libgcc-s1 with the versions their symbols need),
/// with the libpython it links pinned to at least the version it was built
/// against. libpythonX.Y keeps its ABI across X.Y's patch releases (and the
/// package name changes with X.Y), so `>=` lets security updates in, where
/// `=` would block every one of them; and the bound is the build's own
/// version because that is the one the module was built and tested with.
fn depends(build: &Path, module: &Path) -> Result<String, String> {
    let needed = output(Command::new("readelf").arg("-d").arg(module))?;
    let libpython: Vec<&str> = needed
        .lines()
        .filter(|line| line.contains("(NEEDED)"))
        .filter_map(|line| line.split('[').nth(1)?.strip_suffix(']'))
        .filter(|name| name.starts_with("libpython"))
        .collect();
    let [libpython] = libpython[..] else {
        return Err(format!("deb: the module links {} libpython libraries: {libpython:?}", libpython.len()));
    };
    let ldd = output(Command::new("ldd").arg(module))?;
    let path = ldd
        .lines()
        .find_map(|line| line.trim().strip_prefix(libpython)?.trim().strip_prefix("=> ")?.split(" (").next())
        .ok_or_else(|| format!("deb: ldd does not resolve {libpython}:\n{ldd}"))?;
    // dpkg knows the file by its /usr path: ldd may answer through the
    // merged-/usr symlink /lib, so resolve the directory (not the file,
    // which may be a link dpkg knows by its own name).
    let path = Path::new(path);
    let path = match (path.parent().map(std::fs::canonicalize), path.file_name()) {
        (Some(Ok(dir)), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    };
    // `dpkg -S` answers `libpython3.11:amd64: /usr/lib/...`.
    let owner = output(Command::new("dpkg").arg("-S").arg(&path))?;
    let python_package = owner
        .lines()
        .next()
        .and_then(|line| line.split(':').next())
        .filter(|name| !name.is_empty())
        .ok_or_else(|| format!("deb: dpkg -S {}: {owner}", path.display()))?
        .to_string();
    let python_version = output(Command::new("dpkg-query").args(["-W", "-f=${Version}", &python_package]))?;

    std::fs::write(
        build.join("debian/control"),
        format!("Source: {PACKAGE}\n\nPackage: {PACKAGE}\nArchitecture: any\n"),
    )
    .map_err(|e| format!("{}: {e}", build.display()))?;
    let relative = module.strip_prefix(build).expect("the module is staged under the build directory");
    let shlibs = output(Command::new("dpkg-shlibdeps").current_dir(build).arg("-O").arg(relative))?;
    let found = shlibs
        .lines()
        .find_map(|line| line.strip_prefix("shlibs:Depends="))
        .ok_or_else(|| format!("deb: dpkg-shlibdeps printed no Depends: {shlibs}"))?;
    let mut depends = vec![APACHE_DEPENDS.to_string()];
    let mut saw_python = false;
    for entry in found.split(',').map(str::trim) {
        if entry.split_whitespace().next() == Some(python_package.as_str()) {
            saw_python = true;
        } else {
            depends.push(entry.to_string());
        }
    }
    if !saw_python {
        return Err(format!("deb: dpkg-shlibdeps did not name {python_package}: {found}"));
    }
    depends.push(format!("{python_package} (>= {})", python_version.trim()));
    Ok(depends.join(", "))
}

/// `DEBFULLNAME <DEBEMAIL>` when both are set (as dch reads them), else ours.
fn maintainer() -> String {
    match (std::env::var("DEBFULLNAME"), std::env::var("DEBEMAIL")) {
        (Ok(name), Ok(email)) if !name.is_empty() && !email.is_empty() => format!("{name} <{email}>"),
        _ => DEFAULT_MAINTAINER.to_string(),
    }
}

fn copyright() -> String {
    format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: mod_wsgi-rs\n\
         \n\
         Files: *\n\
         Copyright: the mod_wsgi-rs authors\n\
         License: {license}\n\
         \n\
         License: {license}\n \
         On Debian systems the full text of the Apache License 2.0 is in\n \
         /usr/share/common-licenses/Apache-2.0.\n",
        license = env!("CARGO_PKG_LICENSE"),
    )
}

/// One entry in Debian's changelog format, dated by the last commit (so
/// that rebuilding the same commit writes the same file).
fn changelog_text(root: &Path, version: &str, maintainer: &str) -> String {
    let date = Command::new("git")
        .current_dir(root)
        .args(["log", "-1", "--format=%aD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|date| !date.is_empty())
        .or_else(|| output(Command::new("date").arg("-R")).ok().map(|date| date.trim().to_string()))
        .unwrap_or_default();
    format!(
        "{PACKAGE} ({version}) unstable; urgency=medium\n\n  \
         * Built by cargo xtask deb from the mod_wsgi-rs workspace.\n\n \
         -- {maintainer}  {date}\n"
    )
}

/// Sets every staged directory outside DEBIAN to 0755 (whatever the umask)
/// and returns the Installed-Size as dpkg-gencontrol counts it: each
/// file's size in KiB rounded up, plus one per directory.
fn settle(stage: &Path) -> Result<u64, String> {
    fn walk(dir: &Path, total: &mut u64) -> Result<(), String> {
        for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
            let meta = entry.metadata().map_err(|e| format!("{}: {e}", entry.path().display()))?;
            if meta.is_dir() {
                set_mode(&entry.path(), 0o755)?;
                *total += 1;
                walk(&entry.path(), total)?;
            } else {
                *total += meta.len().div_ceil(1024);
            }
        }
        Ok(())
    }
    let mut total = 0;
    for top in ["etc", "usr"] {
        set_mode(&stage.join(top), 0o755)?;
        total += 1;
        walk(&stage.join(top), &mut total)?;
    }
    Ok(total)
}

fn make_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))
}

/// Writes `text` to `path` (making its directories, 0755) with `mode`.
fn write(path: &Path, text: &str, mode: u32) -> Result<(), String> {
    make_dir(path.parent().expect("a staged file has a directory"))?;
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    set_mode(path, mode)
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn run(command: &mut Command) -> Result<(), String> {
    output(command).map(drop)
}

/// Runs `command` and returns its standard output; an error with its
/// standard error when it fails.
fn output(command: &mut Command) -> Result<String, String> {
    let out = command.output().map_err(|e| format!("could not run {command:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{command:?} failed with {}: {}", out.status, String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
