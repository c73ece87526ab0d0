//! `cargo xtask release`: the release build of the Apache module and the
//! standalone server, laid out in `target/dist/` with their checksums.

use std::path::Path;
use std::process::Command;

/// What goes into `target/dist/`: (built file under target/release, name in dist).
const ARTIFACTS: [(&str, &str); 2] = [("libmod_wsgi.so", "mod_wsgi.so"), ("wsgi-standalone", "wsgi-standalone")];

pub fn release(root: &Path) -> Result<(), String> {
    crate::cargo(root, &["build", "--release", "--package", "wsgi-apache", "--package", "wsgi-standalone"], &[])?;
    let target = crate::target_dir(root);
    let dist = target.join("dist");
    // A fresh directory: nothing left over from an earlier release.
    if dist.exists() {
        std::fs::remove_dir_all(&dist).map_err(|e| format!("{}: {e}", dist.display()))?;
    }
    std::fs::create_dir_all(&dist).map_err(|e| format!("{}: {e}", dist.display()))?;
    for (built, name) in ARTIFACTS {
        let from = target.join("release").join(built);
        let to = dist.join(name);
        // fs::copy keeps the permission bits (the executable stays executable).
        std::fs::copy(&from, &to).map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))?;
    }
    let names: Vec<&str> = ARTIFACTS.iter().map(|(_, name)| *name).collect();
    let output = Command::new("sha256sum")
        .current_dir(&dist)
        .args(&names)
        .output()
        .map_err(|e| format!("cannot run sha256sum: {e}"))?;
    if !output.status.success() {
        return Err(format!("sha256sum failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    let sums = dist.join("SHA256SUMS");
    std::fs::write(&sums, &output.stdout).map_err(|e| format!("{}: {e}", sums.display()))?;
    for name in names.iter().copied().chain(["SHA256SUMS"]) {
        let path = dist.join(name);
        let size = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?.len();
        println!("wrote {} ({size} bytes)", path.display());
    }
    print!("{}", String::from_utf8_lossy(&output.stdout));
    println!(
        "\n`{} module-config` prints the lines that load the module into Apache.",
        dist.join("wsgi-standalone").display()
    );
    Ok(())
}
