//! The error log (Apache's format, with pid and request id) and the access
//! logs (mod_log_config's formats).

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use wsgi_config::log_format::{LogField, LogFormat, PortKind, TimeUnit};
use wsgi_config::model::EnvCondition;
use wsgi_core::{ErrorLog, LogLevel, RequestHead};

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

    /// Lines written to `file` (a log file, or the pipe to one).
    pub fn from_file(file: std::fs::File) -> LogSink {
        LogSink { out: Mutex::new(Box::new(file)) }
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

/// What the access log knows of one request once its response is sent.
pub struct AccessRecord<'a> {
    /// The request.
    pub head: &'a RequestHead,
    /// The status sent.
    pub status: u16,
    /// The response's header fields.
    pub response_headers: &'a http::HeaderMap,
    /// Body bytes sent.
    pub body_bytes: u64,
    /// Bytes of the response head, as written.
    pub head_bytes: u64,
    /// When the request was received.
    pub received: SystemTime,
    /// How long it took, until its response was sent.
    pub elapsed: Duration,
    /// Requests the connection carried before this one.
    pub keepalives: u64,
    /// Whether the connection stays open after it.
    pub kept_alive: bool,
    /// The `ServerName` of the server that answered.
    pub server_name: &'a str,
    /// The authenticated user.
    pub remote_user: Option<&'a str>,
    /// The request's environment variables (for `env=` conditions).
    pub env: &'a [(String, String)],
}

/// One `CustomLog`: a format written to a sink, when its condition holds.
pub struct AccessLog {
    sink: Arc<LogSink>,
    format: LogFormat,
    condition: Option<EnvCondition>,
}

impl AccessLog {
    /// An access log writing `format` lines to `sink`.
    pub fn new(sink: Arc<LogSink>, format: LogFormat, condition: Option<EnvCondition>) -> AccessLog {
        AccessLog { sink, format, condition }
    }

    /// Records one request (unless its condition says not to).
    pub fn record(&self, record: &AccessRecord<'_>) {
        if let Some(condition) = &self.condition {
            let set = record.env.iter().any(|(name, _)| name.eq_ignore_ascii_case(&condition.name));
            if set == condition.negated {
                return;
            }
        }
        let mut line = String::with_capacity(160);
        for field in &self.format.fields {
            render(field, record, &mut line);
        }
        line.push('\n');
        self.sink.line(&line);
    }
}

/// Appends the text of `field` for `record`, as mod_log_config writes it.
fn render(field: &LogField, r: &AccessRecord<'_>, out: &mut String) {
    use std::fmt::Write as _;
    let head = r.head;
    let (path, query) = head.raw_uri.split_once('?').map_or((head.raw_uri.as_str(), None), |(p, q)| (p, Some(q)));
    let dash_or = |out: &mut String, value: Option<&str>| match value {
        Some(value) if !value.is_empty() => escape_into(value, out),
        _ => out.push('-'),
    };
    let unit = |d: Duration, unit: &TimeUnit| match unit {
        TimeUnit::Seconds => d.as_secs() as u128,
        TimeUnit::Millis => d.as_millis(),
        TimeUnit::Micros => d.as_micros(),
    };
    let _ = match field {
        LogField::Literal(text) => {
            out.push_str(text);
            Ok(())
        }
        LogField::ClientIp => write!(out, "{}", head.peer.ip()),
        LogField::LocalIp => write!(out, "{}", head.local.ip()),
        LogField::BodyBytesClf if r.body_bytes == 0 => {
            out.push('-');
            Ok(())
        }
        LogField::BodyBytesClf | LogField::BodyBytes => write!(out, "{}", r.body_bytes),
        LogField::BytesSent => write!(out, "{}", r.body_bytes + r.head_bytes),
        LogField::Micros => write!(out, "{}", r.elapsed.as_micros()),
        LogField::Duration(u) => write!(out, "{}", unit(r.elapsed, u)),
        LogField::Protocol => {
            escape_into(&head.protocol, out);
            Ok(())
        }
        LogField::RequestHeader(name) => {
            dash_or(out, head.header(name));
            Ok(())
        }
        LogField::KeepAlives => write!(out, "{}", r.keepalives),
        LogField::RemoteLogname => {
            out.push('-');
            Ok(())
        }
        LogField::Method => {
            escape_into(&head.method, out);
            Ok(())
        }
        LogField::ResponseHeader(name) => {
            let value = r.response_headers.get(name.as_str()).map(|v| wsgi_core::route::latin1(v.as_bytes()));
            dash_or(out, value.as_deref());
            Ok(())
        }
        LogField::Port(PortKind::Server) => write!(out, "{}", head.local.port()),
        LogField::Port(PortKind::Client) => write!(out, "{}", head.peer.port()),
        LogField::Pid => write!(out, "{}", std::process::id()),
        LogField::Query => {
            if let Some(query) = query {
                out.push('?');
                escape_into(query, out);
            }
            Ok(())
        }
        LogField::RequestLine => {
            escape_into(&format!("{} {} {}", head.method, head.raw_uri, head.protocol), out);
            Ok(())
        }
        LogField::Status => write!(out, "{}", r.status),
        LogField::Time => write!(out, "[{}]", apache_access_time(r.received)),
        LogField::EpochTime(u) => {
            write!(out, "{}", unit(r.received.duration_since(std::time::UNIX_EPOCH).unwrap_or_default(), u))
        }
        LogField::RemoteUser => {
            dash_or(out, r.remote_user);
            Ok(())
        }
        LogField::UrlPath => {
            // Apache's r->uri: decoded, with dot segments removed.
            let decoded = wsgi_core::route::normalize_path(path).map(|p| wsgi_core::route::latin1(&p));
            escape_into(decoded.as_deref().unwrap_or(path), out);
            Ok(())
        }
        LogField::ServerName => {
            escape_into(r.server_name, out);
            Ok(())
        }
        LogField::RequestedHost => {
            let host = head.header("host").map(|h| wsgi_core::environ_build::parse_host_header(h).0);
            escape_into(host.as_deref().filter(|h| !h.is_empty()).unwrap_or(r.server_name), out);
            Ok(())
        }
        LogField::ConnectionStatus => {
            out.push(if r.kept_alive { '+' } else { '-' });
            Ok(())
        }
    };
}

/// The logs of one server (the main server or a virtual host).
pub struct ServerLogs {
    /// Its error log.
    pub error: Arc<ServerLog>,
    /// Its access logs.
    pub access: Vec<AccessLog>,
    /// Its `ServerName` (`%v`).
    pub server_name: String,
}

/// The logs of every server of a configuration: the main server's first,
/// then each virtual host's (its own, or the main server's it inherits).
pub struct SiteLogs {
    servers: Vec<Arc<ServerLogs>>,
}

impl SiteLogs {
    /// The logs of the main server, then of each virtual host.
    pub fn new(servers: Vec<Arc<ServerLogs>>) -> SiteLogs {
        SiteLogs { servers }
    }

    /// The main server's logs.
    pub fn main(&self) -> &Arc<ServerLogs> {
        &self.servers[0]
    }

    /// The logs of the server that answers `head`.
    pub fn for_request(&self, config: &wsgi_config::Config, head: &RequestHead) -> &Arc<ServerLogs> {
        if self.servers.len() == 1 {
            return self.main();
        }
        let server = config.select_server(head.local, head.header("host"));
        self.servers.get(config.server_index(server)).unwrap_or_else(|| self.main())
    }
}

/// The `LogLevel` words' level for this server's lines, which are all
/// mod_wsgi's: a `wsgi:` level if given, else the general one.
pub fn level_of(words: &[String]) -> Option<LogLevel> {
    let module = words.iter().find_map(|w| {
        let (module, level) = w.split_once(':')?;
        matches!(module, "wsgi" | "wsgi_module" | "mod_wsgi.c").then_some(level)
    });
    let general = words.iter().find(|w| !w.contains(':')).map(String::as_str);
    let word = module.or(general)?.to_ascii_lowercase();
    Some(match word.as_str() {
        "emerg" | "alert" | "crit" | "error" => LogLevel::Error,
        "warn" => LogLevel::Warn,
        "notice" | "info" => LogLevel::Info,
        _ => LogLevel::Debug,
    })
}

/// Text as Apache's `ap_escape_logitem` writes it: `"` and `\` escaped,
/// control and non-ASCII bytes (Latin-1 characters here) as `\xhh`.
fn escape_into(text: &str, out: &mut String) {
    use std::fmt::Write as _;
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            _ => {
                let _ = write!(out, "\\x{:02x}", u32::from(c) & 0xff);
            }
        }
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
