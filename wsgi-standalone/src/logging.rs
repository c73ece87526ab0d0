//! The error log (Apache's format, with pid and request id) and the access
//! log (Apache's combined format).

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::SystemTime;

use wsgi_core::{ErrorLog, LogLevel};

use crate::dates::{civil, DAYS, MONTHS};

/// Where log lines go.
pub struct LogSink {
    out: Mutex<Box<dyn Write + Send>>,
}

impl LogSink {
    /// Lines to standard error.
    pub fn stderr() -> LogSink {
        LogSink { out: Mutex::new(Box::new(std::io::stderr())) }
    }

    /// Lines to standard output.
    pub fn stdout() -> LogSink {
        LogSink { out: Mutex::new(Box::new(std::io::stdout())) }
    }

    /// Lines appended to a file.
    pub fn file(path: &std::path::Path) -> std::io::Result<LogSink> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(LogSink { out: Mutex::new(Box::new(file)) })
    }

    fn line(&self, text: &str) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

/// The server's error log, filtered by level.
pub struct ServerLog {
    sink: LogSink,
    level: LogLevel,
}

impl ServerLog {
    /// A log keeping messages at `level` or more severe.
    pub fn new(sink: LogSink, level: LogLevel) -> ServerLog {
        ServerLog { sink, level }
    }

    /// Logs a message not tied to a request.
    pub fn log(&self, level: LogLevel, message: &str) {
        self.write(level, None, message);
    }

    fn write(&self, level: LogLevel, request: Option<(&SocketAddr, &str)>, message: &str) {
        if level > self.level {
            return;
        }
        let stamp = apache_error_time(SystemTime::now());
        let level = match level {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
        };
        let pid = std::process::id();
        let context = match request {
            Some((peer, id)) => format!(" [client {peer}] [request {id}]"),
            None => String::new(),
        };
        let mut text = String::new();
        for line in message.lines() {
            text.push_str(&format!("[{stamp}] [wsgi:{level}] [pid {pid}]{context} {line}\n"));
        }
        self.sink.line(&text);
    }

    /// The log as seen by one request: lines carry its client and id.
    pub fn for_request<'a>(&'a self, peer: &'a SocketAddr, request_id: &'a str) -> RequestLog<'a> {
        RequestLog { log: self, peer, request_id }
    }
}

/// [`ServerLog`] with one request's context.
pub struct RequestLog<'a> {
    log: &'a ServerLog,
    peer: &'a SocketAddr,
    request_id: &'a str,
}

impl ErrorLog for RequestLog<'_> {
    fn log(&self, level: LogLevel, message: &str) {
        self.log.write(level, Some((self.peer, self.request_id)), message);
    }
}

/// What the access log records of one request.
pub struct AccessEntry<'a> {
    /// The client.
    pub peer: SocketAddr,
    /// `METHOD URI PROTOCOL`.
    pub request_line: &'a str,
    /// The status sent.
    pub status: u16,
    /// Body bytes sent.
    pub bytes: u64,
    /// The `Referer` header.
    pub referer: Option<&'a str>,
    /// The `User-Agent` header.
    pub user_agent: Option<&'a str>,
}

/// The access log, in Apache's combined format.
pub struct AccessLog {
    sink: LogSink,
}

impl AccessLog {
    /// An access log writing to `sink`.
    pub fn new(sink: LogSink) -> AccessLog {
        AccessLog { sink }
    }

    /// Records one request.
    pub fn record(&self, entry: &AccessEntry<'_>) {
        let bytes = if entry.bytes == 0 { "-".to_string() } else { entry.bytes.to_string() };
        let quote = |s: Option<&str>| s.unwrap_or("-").replace('\\', "\\\\").replace('"', "\\\"");
        self.sink.line(&format!(
            "{} - - [{}] \"{}\" {} {bytes} \"{}\" \"{}\"\n",
            entry.peer.ip(),
            apache_access_time(SystemTime::now()),
            entry.request_line.replace('"', "\\\""),
            entry.status,
            quote(entry.referer),
            quote(entry.user_agent),
        ));
    }
}

/// `Mon Nov 23 21:51:33.123456 2026`, as Apache's error log writes time.
fn apache_error_time(time: SystemTime) -> String {
    let (y, mo, d, h, mi, s, wd, us) = civil(time);
    format!("{} {} {d:02} {h:02}:{mi:02}:{s:02}.{us:06} {y}", DAYS[wd as usize], MONTHS[mo as usize - 1])
}

/// `23/Nov/2026:21:51:33 +0000`, as the combined log format writes time.
fn apache_access_time(time: SystemTime) -> String {
    let (y, mo, d, h, mi, s, _, _) = civil(time);
    format!("{d:02}/{}/{y}:{h:02}:{mi:02}:{s:02} +0000", MONTHS[mo as usize - 1])
}

/// The server's log as wsgi-core's log, for messages not tied to a
/// request (script preloading, daemon processes).
impl wsgi_core::ErrorLog for ServerLog {
    fn log(&self, level: LogLevel, message: &str) {
        ServerLog::log(self, level, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn times_are_formatted_as_apache_does() {
        // 2026-11-23 21:51:33.000123 UTC was a Monday.
        let t = UNIX_EPOCH + Duration::from_micros(1_795_470_693_000_123);
        assert_eq!(apache_error_time(t), "Mon Nov 23 21:51:33.000123 2026");
        assert_eq!(apache_access_time(t), "23/Nov/2026:21:51:33 +0000");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(apache_access_time(leap), "29/Feb/2000:00:00:00 +0000");
    }
}
