//! Routing and environ building: `wsgi_core::pipeline::Site::dispatch`
//! (server selection, `Alias`, `WSGIScriptAlias(Match)` routing, merged
//! settings, body policy, group names, environ) from an arbitrary
//! configuration and an arbitrary request head.
//!
//! Input: configuration text (as the standalone server reads it), a line
//! `----`, then the request head: `METHOD TARGET PROTOCOL [https]` and
//! header lines `Name: value`. The head is held to what an HTTP layer
//! hands on: a target of visible ASCII, header values as Latin-1 text
//! without CR, LF or NUL. Routing needs the scripts to exist: the target
//! makes a tree of them (`app.wsgi`, `site.wsgi`, `scripts/hello.wsgi`,
//! `static/file.txt`, ...) in a temporary directory, which the
//! configuration names as `${WSGI_FUZZ_ROOT}`.
//!
//! Invariants, for a request that runs an application: the environ's keys
//! are unique; it has PEP 3333's keys with the types PEP 3333 requires
//! (the CGI variables and every other undotted key native strings,
//! `wsgi.version` `(1, 0)`, `wsgi.url_scheme` `http` or `https`, the
//! `wsgi.multi*` and `wsgi.run_once` flags booleans); every string is
//! Latin-1 text (PEP 3333's native strings); `SCRIPT_NAME` is empty or
//! starts with `/` and does not end with one, `PATH_INFO` is empty or
//! starts with `/`; `SERVER_PORT` and any `CONTENT_LENGTH` are digits; every
//! `HTTP_*` key is `HTTP_[A-Z0-9_]+`; the process group names a daemon
//! process group of the configuration or is empty (embedded).

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use wsgi_config::tree::{MemoryFiles, ReadOptions};
use wsgi_core::environ_build::{RequestStats, Versions};
use wsgi_core::pipeline::{Dispatch, Site, SiteOptions};
use wsgi_core::{EnvValue, ErrorLog, LogLevel, RequestHead, Scheme, WsgiFlags};

struct NoLog;

impl ErrorLog for NoLog {
    fn log(&self, _: LogLevel, _: &str) {}
}

/// Makes the scripts and files the seeds' configurations name.
fn fixtures() {
    static ROOT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("wsgi-fuzz-route-{}", std::process::id()));
        for dir in ["scripts", "static", "dir/sub"] {
            std::fs::create_dir_all(root.join(dir)).expect("fixture directory");
        }
        for file in
            ["app.wsgi", "site.wsgi", "scripts/hello.wsgi", "scripts/admin.wsgi", "static/file.txt", "dir/sub/x.py"]
        {
            std::fs::write(root.join(file), "").expect("fixture file");
        }
        std::env::set_var("WSGI_FUZZ_ROOT", &root);
    });
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn head(text: &[u8]) -> Option<RequestHead> {
    let mut lines = text.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let request_line = String::from_utf8_lossy(lines.next()?).into_owned();
    let mut words = request_line.split(' ');
    let method: String = words.next()?.chars().filter(|c| c.is_ascii_graphic()).collect();
    let raw_uri: String = words.next().unwrap_or("/").chars().filter(|c| c.is_ascii_graphic()).collect();
    let protocol: String = words.next().unwrap_or("HTTP/1.1").chars().filter(|c| c.is_ascii_graphic()).collect();
    let scheme = if words.next() == Some("https") { Scheme::Https } else { Scheme::Http };
    let headers = lines
        .filter_map(|line| {
            let at = line.iter().position(|&b| b == b':')?;
            let name: String = latin1(&line[..at]).chars().filter(|c| c.is_ascii_graphic()).collect();
            let value: String =
                latin1(&line[at + 1..]).trim_matches([' ', '\t']).chars().filter(|&c| c != '\0').collect();
            (!name.is_empty()).then_some((name, value))
        })
        .take(64)
        .collect();
    Some(RequestHead {
        method: if method.is_empty() { "GET".into() } else { method },
        raw_uri,
        protocol,
        headers,
        peer: "192.0.2.7:40000".parse().unwrap(),
        local: "127.0.0.1:8000".parse().unwrap(),
        scheme,
    })
}

fuzz_target!(|data: &[u8]| {
    fixtures();
    let Some(at) = data.windows(6).position(|w| w == b"\n----\n") else { return };
    let (config_text, head_text) = (&data[..at], &data[at + 6..]);
    let Ok(config_text) = std::str::from_utf8(config_text) else { return };
    let Some(head) = head(head_text) else { return };
    let options = ReadOptions::standalone("/fuzz");
    let Ok(config) = wsgi_config::load_str_from(&MemoryFiles::default(), config_text, Path::new("site.conf"), &options)
    else {
        return;
    };
    let daemon_groups: Vec<String> = config.daemon_processes.iter().map(|d| d.process.name.clone()).collect();
    let site = Site::new(
        config,
        SiteOptions {
            server_software: "Apache".into(),
            flags: WsgiFlags::embedded(false, true),
            versions: Versions { mod_wsgi: (4, 9, 4), apache: None },
            default_document_root: "/var/www/html".into(),
        },
    );
    let stats = RequestStats {
        request_id: "fuzz",
        request_start_us: 1,
        script_start_us: 2,
        thread_id: 1,
        thread_requests: 0,
        total_requests: 0,
    };
    let request = match site.dispatch(&head, None, stats, None, &NoLog) {
        Dispatch::App(request) => request,
        Dispatch::Error(status) | Dispatch::Refused(status, _) | Dispatch::Denied(status, _) => {
            assert!((400..=599).contains(&status), "refused with {status}");
            return;
        }
        Dispatch::Redirect(status, _) => {
            assert!((300..=399).contains(&status) || status == 410, "redirect with {status}");
            return;
        }
        Dispatch::File(..) => return,
    };
    let environ = &request.environ;
    assert!(
        request.process_group.is_empty() || daemon_groups.contains(&request.process_group),
        "process group {:?} is not a daemon group",
        request.process_group
    );

    let mut keys: Vec<&str> = environ.entries.iter().map(|(k, _)| k.as_ref()).collect();
    keys.sort_unstable();
    let before = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), before, "duplicate keys");

    let text = |key: &str| match environ.get(key) {
        Some(EnvValue::Str(s)) => s.to_string(),
        other => panic!("{key} is {other:?}, not a string"),
    };
    for key in
        ["REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL"]
    {
        text(key);
    }
    assert_eq!(environ.get("wsgi.version"), Some(&EnvValue::Tuple(vec![1, 0])));
    assert!(matches!(text("wsgi.url_scheme").as_str(), "http" | "https"));
    for key in ["wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once"] {
        assert!(matches!(environ.get(key), Some(EnvValue::Bool(_))), "{key} is not a boolean");
    }
    for (key, value) in &environ.entries {
        assert!(!key.is_empty() && key.chars().all(|c| c <= '\u{ff}'), "key {key:?}");
        if !key.contains('.') {
            assert!(matches!(value, EnvValue::Str(_)), "{key} is {value:?}, not a string");
        }
        if let EnvValue::Str(s) = value {
            assert!(s.chars().all(|c| c <= '\u{ff}'), "{key} = {s:?} is not Latin-1 text");
        }
        if let Some(name) = key.strip_prefix("HTTP_") {
            assert!(
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
                "header key {key:?}"
            );
        }
    }
    let script_name = text("SCRIPT_NAME");
    assert!(
        script_name.is_empty() || (script_name.starts_with('/') && !script_name.ends_with('/')),
        "SCRIPT_NAME {script_name:?}"
    );
    let path_info = text("PATH_INFO");
    assert!(path_info.is_empty() || path_info.starts_with('/'), "PATH_INFO {path_info:?}");
    let port = text("SERVER_PORT");
    assert!(!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()), "SERVER_PORT {port:?}");
    if environ.get("CONTENT_LENGTH").is_some() {
        let length = text("CONTENT_LENGTH");
        assert!(length.bytes().all(|b| b.is_ascii_digit()), "CONTENT_LENGTH {length:?}");
    }
});
