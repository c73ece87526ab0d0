//! The configuration reader: text to model, with `Include` trees held in
//! memory.
//!
//! Input: the main file's text, then any number of included files, each
//! after a line `#@file NAME` (a comment to Apache). The files live under
//! the server root `/fuzz` (`/fuzz/NAME`; the main file is
//! `/fuzz/httpd.conf`), read through `wsgi_config::tree::MemoryFiles`.
//!
//! Invariants: reading is deterministic; every error names a file that
//! was read or named, and a line within it (only a file that could not be
//! read has none); a model that loads renders as text (`Config::to_text`)
//! that loads back to an equal model (source locations aside), and renders
//! to the same text again.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use wsgi_config::tree::{MemoryFiles, ReadOptions};
use wsgi_config::{load_str, load_str_from, ConfigErrors};

const ROOT: &str = "/fuzz";
const MAIN: &str = "/fuzz/httpd.conf";
const MARKER: &[u8] = b"\n#@file ";

/// Splits the input into the main text and the included files.
fn files(data: &[u8]) -> (String, MemoryFiles, Vec<(String, usize)>) {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(at) = rest.windows(MARKER.len()).position(|w| w == MARKER) {
        parts.push(&rest[..at]);
        rest = &rest[at + MARKER.len()..];
    }
    parts.push(rest);
    let main = String::from_utf8_lossy(parts[0]).into_owned();
    let mut memory = MemoryFiles::default();
    memory.insert(MAIN, main.clone());
    let mut lines = vec![(MAIN.to_string(), main.lines().count())];
    for part in &parts[1..] {
        let (name, contents) = match part.iter().position(|&b| b == b'\n') {
            Some(end) => (&part[..end], &part[end + 1..]),
            None => (*part, &b""[..]),
        };
        let name = String::from_utf8_lossy(name).trim().to_string();
        let path = if name.starts_with('/') { name } else { format!("{ROOT}/{name}") };
        lines.push((path.clone(), contents.split(|&b| b == b'\n').count()));
        memory.insert(path, contents.to_vec());
    }
    (main, memory, lines)
}

fn check_errors(errors: &ConfigErrors, lines: &[(String, usize)]) {
    for error in &errors.0 {
        let file = error.file.to_string_lossy();
        match error.line {
            Some(line) => {
                let known = lines.iter().filter(|(path, _)| Path::new(path) == &*error.file).map(|(_, n)| *n).max();
                let Some(count) = known else { panic!("error in a file that was never read: {error}") };
                assert!(line >= 1 && line <= count.max(1), "{error}: line {line} of a {count}-line file");
            }
            None => assert!(
                error.message.starts_with("could not open") || error.message.contains("not valid UTF-8"),
                "an error without a line: {error} ({file})"
            ),
        }
        assert!(!error.message.is_empty());
    }
}

fuzz_target!(|data: &[u8]| {
    let (main, memory, lines) = files(data);
    for options in [ReadOptions::standalone(ROOT).reference(), ReadOptions::standalone(ROOT)] {
        let first = load_str_from(&memory, &main, Path::new(MAIN), &options);
        let second = load_str_from(&memory, &main, Path::new(MAIN), &options);
        assert_eq!(first, second, "reading is not deterministic");
        let config = match first {
            Ok(config) => config,
            Err(errors) => {
                assert!(!errors.0.is_empty(), "an error result without errors");
                check_errors(&errors, &lines);
                continue;
            }
        };
        let rendered = config.to_text();
        let reread = match load_str(&rendered, Path::new("rendered.conf"), &options) {
            Ok(reread) => reread,
            Err(e) => panic!("the rendered model does not load:\n{rendered}\n{e}"),
        };
        assert_eq!(config.without_locations(), reread.without_locations(), "rendered:\n{rendered}");
        assert_eq!(reread.to_text(), rendered, "rendering is not stable");
    }
});
