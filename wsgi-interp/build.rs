//! Records the Python installation pyo3-ffi links against, for the home
//! rule in `src/home.rs`: its `X.Y` version, `sys.base_prefix`,
//! `sys.base_exec_prefix` and interpreter, asked of the very interpreter
//! pyo3-ffi's build resolved (`PYO3_PYTHON`, see `.cargo/config.toml`), so
//! that the home the embedded Python falls back to is the installation the
//! binary was built against, never whatever `python3` comes first on `PATH`
//! when the server starts.

use std::process::Command;

/// Prints the base installation's prefix, exec prefix and `X.Y` version,
/// one per line. The base ones: were `PYO3_PYTHON` a virtual environment's
/// interpreter, the library would still be its base installation's.
const PROBE: &str = "import sys\n\
                     print(sys.base_prefix)\n\
                     print(sys.base_exec_prefix)\n\
                     print('%d.%d' % sys.version_info[:2])\n";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    // `Py_3_12` and the like, for the code that differs by version: the
    // version pyo3-ffi builds against, never a guess.
    pyo3_build_config::use_pyo3_cfgs();
    let config = pyo3_build_config::get();
    let version = config.version();
    let Some(executable) = config.executable() else {
        panic!(
            "pyo3-ffi resolved no Python interpreter (cross-compiling, or PYO3_CONFIG_FILE without `executable`): \
             wsgi-interp needs it to learn the installation it links against; set PYO3_PYTHON"
        );
    };
    let output = Command::new(executable)
        .args(["-I", "-c", PROBE])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {executable} to find its installation: {e}"));
    assert!(
        output.status.success(),
        "{executable} failed to report its installation: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("the installation's paths are UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    let [prefix, exec_prefix, reported] = lines[..] else {
        panic!("unexpected answer from {executable}: {text:?}");
    };
    let linked = format!("{}.{}", version.major, version.minor);
    assert_eq!(reported, linked, "{executable} is Python {reported}, but pyo3-ffi links Python {linked}");
    println!("cargo:rustc-env=WSGI_INTERP_PYTHON_VERSION={linked}");
    println!("cargo:rustc-env=WSGI_INTERP_PYTHON_PREFIX={prefix}");
    println!("cargo:rustc-env=WSGI_INTERP_PYTHON_EXEC_PREFIX={exec_prefix}");
}
