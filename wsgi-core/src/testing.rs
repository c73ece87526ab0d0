//! Test doubles for the seams (feature `testing`): what a test of a front
//! end, an interpreter or the daemon relay needs in place of a client.

use std::io;
use std::path::Path;

use wsgi_config::tree::ReadOptions;

use crate::app::{ErrorLog, LogLevel};
use crate::environ_build::{RequestStats, Versions, WsgiFlags, MOD_WSGI_VERSION};
use crate::pipeline::{AppRequest, Dispatch, Site, SiteOptions};
use crate::request::{RequestHead, Scheme};
use crate::response::ResponseSink;

/// The head of a typical browser GET for `uri`: ten headers as Firefox
/// sends them, a cookie and a referer, between two documentation
/// addresses. The benchmarks and `cargo xtask perf-guard` measure the hot
/// path with it.
pub fn typical_get(uri: &str) -> RequestHead {
    let headers = [
        ("Host", "www.example.com"),
        ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
        ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ("Accept-Language", "en-US,en;q=0.5"),
        ("Accept-Encoding", "gzip, deflate, br"),
        ("Connection", "keep-alive"),
        ("Cookie", "session=0123456789abcdef; theme=dark"),
        ("Upgrade-Insecure-Requests", "1"),
        ("Cache-Control", "max-age=0"),
        ("Referer", "https://www.example.com/blog/"),
    ];
    RequestHead {
        method: "GET".into(),
        raw_uri: uri.into(),
        protocol: "HTTP/1.1".into(),
        headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
        peer: "192.0.2.10:51234".parse().expect("a socket address"),
        local: "192.0.2.1:80".parse().expect("a socket address"),
        scheme: Scheme::Http,
    }
}

/// A [`ResponseSink`] that records everything it is given, in memory. With
/// `fail_after`, a body write that would take it past that many bytes
/// fails as a client that went away does.
#[derive(Debug, Default, Clone)]
pub struct RecordingSink {
    /// The status of the last head.
    pub status: u16,
    /// The reason phrase of the last head.
    pub reason: String,
    /// The headers of the last head.
    pub headers: Vec<(String, String)>,
    /// Every body byte, files included.
    pub body: Vec<u8>,
    /// How many heads were sent (one for a well-formed response).
    pub heads: usize,
    /// How many `send_file` calls there were.
    pub files_sent: usize,
    /// How many flushes there were.
    pub flushes: usize,
    /// Whether `finish` was called.
    pub finished: bool,
    /// Fail body writes beyond this many bytes.
    pub fail_after: Option<usize>,
}

impl RecordingSink {
    /// A sink that fails once more than `limit` body bytes were written.
    pub fn failing_after(limit: usize) -> RecordingSink {
        RecordingSink { fail_after: Some(limit), ..RecordingSink::default() }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl ResponseSink for RecordingSink {
    fn send_head(&mut self, status: u16, reason: &str, headers: &[(String, String)]) -> io::Result<()> {
        self.heads += 1;
        self.status = status;
        self.reason = reason.to_string();
        self.headers = headers.to_vec();
        Ok(())
    }

    fn send_body(&mut self, chunk: &[u8]) -> io::Result<()> {
        if self.fail_after.is_some_and(|limit| self.body.len() + chunk.len() > limit) {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "client went away"));
        }
        self.body.extend_from_slice(chunk);
        Ok(())
    }

    fn send_file(&mut self, file: &std::fs::File, offset: u64, len: u64) -> io::Result<u64> {
        use std::os::unix::fs::FileExt;
        self.files_sent += 1;
        let mut buf = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
        let n = file.read_at(&mut buf, offset)?;
        self.body.extend_from_slice(&buf[..n]);
        Ok(n as u64)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flushes += 1;
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.finished = true;
        Ok(())
    }
}

/// A [`ResponseSink`] that keeps only the status and a count of body
/// bytes, so that a workload repeated many times costs the same on every
/// repetition; nothing it does blocks.
#[derive(Debug, Default, Clone)]
pub struct CountingSink {
    /// The status of the last head.
    pub status: u16,
    /// Body bytes written, over every response.
    pub body_bytes: usize,
}

impl ResponseSink for CountingSink {
    fn send_head(&mut self, status: u16, _reason: &str, _headers: &[(String, String)]) -> io::Result<()> {
        self.status = status;
        Ok(())
    }

    fn send_body(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.body_bytes += chunk.len();
        Ok(())
    }

    /// Only a counter changes: an interpreter may keep its lock.
    fn may_block(&self, _len: usize) -> bool {
        false
    }
}

/// An [`ErrorLog`] writing each message to standard error with its level.
#[derive(Debug, Default, Clone, Copy)]
pub struct StderrLog;

impl ErrorLog for StderrLog {
    fn log(&self, level: LogLevel, message: &str) {
        eprintln!("[{level:?}] {message}");
    }
}

/// A [`Site`] of one line of configuration, `WSGIScriptAlias mount
/// "script"`, run embedded with threads, its document root the script's
/// directory. Panics if the line does not read.
pub fn script_site(mount: &str, script: &Path) -> Site {
    let text = format!("WSGIScriptAlias {mount} \"{}\"\n", script.display());
    let config = wsgi_config::load_str(&text, Path::new("testing.conf"), &ReadOptions::standalone("/"))
        .expect("a WSGIScriptAlias line reads");
    let document_root = script.parent().unwrap_or(Path::new("/")).display().to_string();
    Site::new(
        config,
        SiteOptions {
            server_software: "mod_wsgi-rs".into(),
            flags: WsgiFlags::embedded(false, true),
            versions: Versions { mod_wsgi: MOD_WSGI_VERSION, apache: None },
            default_document_root: document_root,
        },
    )
}

/// Request statistics with fixed times and counts: environs built with
/// them are the same on every call.
pub fn fixed_stats() -> RequestStats<'static> {
    RequestStats {
        request_id: "testing",
        request_start_us: 1_700_000_000_000_000,
        script_start_us: 1_700_000_000_000_000,
        thread_id: 1,
        thread_requests: 0,
        total_requests: 0,
    }
}

/// What `site` runs for [`typical_get`] of `uri` (with [`fixed_stats`]).
/// Panics when it runs no application.
pub fn typical_app_request(site: &Site, uri: &str) -> AppRequest {
    match site.dispatch(&typical_get(uri), None, fixed_stats(), None, &StderrLog) {
        Dispatch::App(app) => *app,
        other => panic!("the typical GET of {uri} runs no application: {other:?}"),
    }
}
