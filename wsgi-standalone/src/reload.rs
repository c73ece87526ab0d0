//! `--reload-on-changes`: a serving process watches the files behind its
//! loaded modules and asks its supervisor for a replacement when one
//! changes.

use std::time::Duration;

use wsgi_core::LogLevel;
use wsgi_interp::PythonRuntime;

use crate::http;

/// Python that sets `result` to `FILE=MTIME` lines, one per loaded module
/// with a file, in the interpreter it runs in.
const MODULE_STAMPS: &str = include_str!("reload/module_stamps.py");

/// The modification time of the file behind every module loaded in every
/// interpreter.
pub(crate) fn module_stamps(runtime: &PythonRuntime) -> std::collections::HashMap<String, f64> {
    let mut stamps = std::collections::HashMap::new();
    for group in std::iter::once(String::new()).chain(runtime.groups()) {
        for line in runtime.evaluate(&group, MODULE_STAMPS).unwrap_or_default().lines() {
            if let Some((file, mtime)) = line.rsplit_once('=') {
                stamps.insert(file.to_string(), mtime.parse::<f64>().unwrap_or(0.0));
            }
        }
    }
    stamps
}

/// `--reload-on-changes`: once a second, compares the modification times
/// of the files behind every loaded module with the last look; on a
/// change, asks the supervisor for a fresh process.
pub(crate) fn watch_modules(
    runtime: &PythonRuntime,
    mut known: std::collections::HashMap<String, f64>,
    shared: &http::Shared,
) {
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = module_stamps(runtime);
        // A module seen before whose file changed, or one imported since
        // whose file is newer than this process.
        let changed = now.iter().any(|(file, mtime)| match known.get(file) {
            Some(before) => before != mtime,
            None => *mtime > started,
        });
        if changed {
            shared.log.log(LogLevel::Info, "a loaded module changed on disk; replacing this process");
            let _ = shared.supervisor.request();
            return;
        }
        known = now;
    }
}
