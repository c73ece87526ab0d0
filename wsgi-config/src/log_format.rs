//! mod_log_config's format language (`LogFormat`, `CustomLog`), parsed
//! into the fields a server fills in per request.
//!
//! Every directive a format may hold is either understood or refused with
//! its name, so that a log line never silently lacks what was asked for.

use std::fmt;

/// One piece of a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogField {
    /// Text as written (with `\n`, `\t`, `\"` and `\\` unescaped).
    Literal(String),
    /// `%a`, `%h`: the client's IP address (no hostname lookups).
    ClientIp,
    /// `%A`: the server's IP address the request came in on.
    LocalIp,
    /// `%b`: response body bytes, `-` for none.
    BodyBytesClf,
    /// `%B`: response body bytes.
    BodyBytes,
    /// `%O` (mod_logio): bytes sent, the response head as this server
    /// writes it and the body (without TLS or chunk framing).
    BytesSent,
    /// `%D`: the time taken, in microseconds.
    Micros,
    /// `%T`, `%{s|ms|us}T`: the time taken, in the unit given.
    Duration(TimeUnit),
    /// `%H`: the request protocol.
    Protocol,
    /// `%{NAME}i`: a request header.
    RequestHeader(String),
    /// `%k`: keep-alive requests handled on this connection before this one.
    KeepAlives,
    /// `%l`: the remote logname (always `-`: no identd).
    RemoteLogname,
    /// `%m`: the request method.
    Method,
    /// `%{NAME}o`: a response header.
    ResponseHeader(String),
    /// `%p`, `%{canonical}p`, `%{local}p`: the server's port;
    /// `%{remote}p`: the client's.
    Port(PortKind),
    /// `%P`, `%{pid}P`: the serving process's id.
    Pid,
    /// `%q`: the query string, with its `?`, or nothing.
    Query,
    /// `%r`: the request line.
    RequestLine,
    /// `%s`, `%>s`: the status.
    Status,
    /// `%t`: the time the request was received, in Apache's format.
    Time,
    /// `%{sec}t`, `%{msec}t`, `%{usec}t`: the time since the epoch.
    EpochTime(TimeUnit),
    /// `%u`: the authenticated user, `-` for none.
    RemoteUser,
    /// `%U`: the URL path, without the query string.
    UrlPath,
    /// `%v`: the `ServerName` of the server that answered.
    ServerName,
    /// `%V`: the host name the request asked for.
    RequestedHost,
    /// `%X`: `+` when the connection may be kept alive, `-` when closed.
    ConnectionStatus,
}

/// A unit of time in a format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    /// Seconds.
    Seconds,
    /// Milliseconds.
    Millis,
    /// Microseconds.
    Micros,
}

/// Which port `%p` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortKind {
    /// The server's port.
    Server,
    /// The client's port.
    Client,
}

/// A parsed format: the fields of a line, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFormat {
    /// The pieces.
    pub fields: Vec<LogField>,
}

/// Why a format cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("log format {format:?}: {problem}")]
pub struct LogFormatError {
    /// The format as written.
    pub format: String,
    /// What is wrong with it.
    pub problem: String,
}

/// The formats Debian's apache2.conf names, which configurations written
/// for it use without defining them.
pub const PREDEFINED: &[(&str, &str)] = &[
    ("vhost_combined", "%v:%p %h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\""),
    ("combined", "%h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\""),
    ("common", "%h %l %u %t \"%r\" %>s %O"),
    ("referer", "%{Referer}i -> %U"),
    ("agent", "%{User-agent}i"),
];

impl LogFormat {
    /// Parses a format string as mod_log_config reads it.
    pub fn parse(format: &str) -> Result<LogFormat, LogFormatError> {
        let error = |problem: String| LogFormatError { format: format.to_string(), problem };
        let mut fields = Vec::new();
        let mut literal = String::new();
        let mut chars = format.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => literal.push('\n'),
                    Some('t') => literal.push('\t'),
                    Some(other) => literal.push(other),
                    None => literal.push('\\'),
                },
                '%' => {
                    if chars.peek() == Some(&'%') {
                        chars.next();
                        literal.push('%');
                        continue;
                    }
                    // Modifiers: `<` and `>` (original or final request:
                    // one and the same here).
                    while matches!(chars.peek(), Some('<' | '>')) {
                        chars.next();
                    }
                    if chars.peek().is_some_and(|c| c.is_ascii_digit() || *c == '!') {
                        return Err(error("status conditions (%400,501{...}i) are not supported".into()));
                    }
                    let argument = if chars.peek() == Some(&'{') {
                        chars.next();
                        let mut argument = String::new();
                        loop {
                            match chars.next() {
                                Some('}') => break,
                                Some(c) => argument.push(c),
                                None => return Err(error("a `{` is not closed".into())),
                            }
                        }
                        Some(argument)
                    } else {
                        None
                    };
                    let Some(letter) = chars.next() else {
                        return Err(error("the format ends with `%`".into()));
                    };
                    if !literal.is_empty() {
                        fields.push(LogField::Literal(std::mem::take(&mut literal)));
                    }
                    fields.push(field(letter, argument).map_err(error)?);
                }
                other => literal.push(other),
            }
        }
        if !literal.is_empty() {
            fields.push(LogField::Literal(literal));
        }
        Ok(LogFormat { fields })
    }

    /// The request headers the format logs (lower-cased).
    pub fn request_headers(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().filter_map(|f| match f {
            LogField::RequestHeader(name) => Some(name.as_str()),
            _ => None,
        })
    }
}

fn field(letter: char, argument: Option<String>) -> Result<LogField, String> {
    let unit = |argument: &Option<String>, default| match argument.as_deref() {
        None => Ok(default),
        Some("s" | "sec") => Ok(TimeUnit::Seconds),
        Some("ms" | "msec") => Ok(TimeUnit::Millis),
        Some("us" | "usec") => Ok(TimeUnit::Micros),
        Some(other) => Err(format!("%{{{other}}}{letter} is not supported")),
    };
    let named = |argument: Option<String>, make: fn(String) -> LogField| match argument {
        Some(name) if !name.is_empty() => Ok(make(name.to_ascii_lowercase())),
        _ => Err(format!("%{letter} needs a name: %{{Name}}{letter}")),
    };
    let plain = |field: LogField| match &argument {
        None => Ok(field),
        Some(other) => Err(format!("%{{{other}}}{letter} is not supported")),
    };
    match letter {
        'a' | 'h' => match argument.as_deref() {
            None | Some("c") => Ok(LogField::ClientIp),
            Some(other) => Err(format!("%{{{other}}}{letter} is not supported")),
        },
        'A' => plain(LogField::LocalIp),
        'b' => plain(LogField::BodyBytesClf),
        'B' => plain(LogField::BodyBytes),
        'O' => plain(LogField::BytesSent),
        'D' => plain(LogField::Micros),
        'T' => unit(&argument, TimeUnit::Seconds).map(LogField::Duration),
        'H' => plain(LogField::Protocol),
        'i' => named(argument, LogField::RequestHeader),
        'k' => plain(LogField::KeepAlives),
        'l' => plain(LogField::RemoteLogname),
        'm' => plain(LogField::Method),
        'o' => named(argument, LogField::ResponseHeader),
        'p' => match argument.as_deref() {
            None | Some("canonical" | "local") => Ok(LogField::Port(PortKind::Server)),
            Some("remote") => Ok(LogField::Port(PortKind::Client)),
            Some(other) => Err(format!("%{{{other}}}p is not supported")),
        },
        'P' => match argument.as_deref() {
            None | Some("pid") => Ok(LogField::Pid),
            Some(other) => Err(format!("%{{{other}}}P is not supported")),
        },
        'q' => plain(LogField::Query),
        'r' => plain(LogField::RequestLine),
        's' => plain(LogField::Status),
        't' => match argument.as_deref() {
            None => Ok(LogField::Time),
            Some("sec") => Ok(LogField::EpochTime(TimeUnit::Seconds)),
            Some("msec") => Ok(LogField::EpochTime(TimeUnit::Millis)),
            Some("usec") => Ok(LogField::EpochTime(TimeUnit::Micros)),
            Some(other) => Err(format!("%{{{other}}}t (a strftime format) is not supported")),
        },
        'u' => plain(LogField::RemoteUser),
        'U' => plain(LogField::UrlPath),
        'v' => plain(LogField::ServerName),
        'V' => plain(LogField::RequestedHost),
        'X' => plain(LogField::ConnectionStatus),
        other => Err(format!("%{other} is not supported")),
    }
}

impl fmt::Display for TimeUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeUnit::Seconds => "s",
            TimeUnit::Millis => "ms",
            TimeUnit::Micros => "us",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_predefined_formats_parse() {
        for (name, format) in PREDEFINED {
            assert!(LogFormat::parse(format).is_ok(), "{name}");
        }
    }

    #[test]
    fn fields_literals_and_escapes() {
        let parsed = LogFormat::parse("%h [%t] \"%r\" %>s %{X-Id}i\\t%{ms}T %%").unwrap();
        assert_eq!(
            parsed.fields,
            vec![
                LogField::ClientIp,
                LogField::Literal(" [".into()),
                LogField::Time,
                LogField::Literal("] \"".into()),
                LogField::RequestLine,
                LogField::Literal("\" ".into()),
                LogField::Status,
                LogField::Literal(" ".into()),
                LogField::RequestHeader("x-id".into()),
                LogField::Literal("\t".into()),
                LogField::Duration(TimeUnit::Millis),
                LogField::Literal(" %".into()),
            ]
        );
        assert_eq!(parsed.request_headers().collect::<Vec<_>>(), ["x-id"]);
    }

    #[test]
    fn what_is_not_understood_is_refused_by_name() {
        for (format, needle) in [
            ("%Z", "%Z is not supported"),
            ("%{%Y}t", "strftime"),
            ("%400{Referer}i", "status conditions"),
            ("%{X", "not closed"),
            ("%i", "needs a name"),
            ("abc %", "ends with"),
        ] {
            let err = LogFormat::parse(format).unwrap_err().to_string();
            assert!(err.contains(needle), "{format}: {err}");
        }
    }
}
