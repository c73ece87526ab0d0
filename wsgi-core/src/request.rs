//! What a front end knows about a request before its body.

use std::net::SocketAddr;

/// The URL scheme the request arrived with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// The port a URL of this scheme implies.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// The request line, headers and connection facts of one request, as the
/// front end received them. Header names and values are kept as received
/// (values as Latin-1 text, the way CGI and WSGI see them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target exactly as sent: path and query, still %-encoded.
    pub raw_uri: String,
    /// The protocol, e.g. `HTTP/1.1`.
    pub protocol: String,
    /// Header fields in arrival order; a name may repeat.
    pub headers: Vec<(String, String)>,
    /// The client's address.
    pub peer: SocketAddr,
    /// The local address the connection arrived on.
    pub local: SocketAddr,
    /// `http` or `https`.
    pub scheme: Scheme,
}

impl RequestHead {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The path part of the request target (before `?`), still %-encoded.
    pub fn raw_path(&self) -> &str {
        self.raw_uri.split_once('?').map_or(&self.raw_uri, |(path, _)| path)
    }

    /// The query string (after `?`), or `""`.
    pub fn query(&self) -> &str {
        self.raw_uri.split_once('?').map_or("", |(_, query)| query)
    }
}

#[cfg(test)]
impl RequestHead {
    /// A request for unit tests: `method uri HTTP/1.1` with `headers`.
    pub(crate) fn for_test(method: &str, uri: &str, headers: &[(&str, &str)], peer: &str, local: &str) -> RequestHead {
        RequestHead {
            method: method.into(),
            raw_uri: uri.into(),
            protocol: "HTTP/1.1".into(),
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            peer: peer.parse().expect("test peer address"),
            local: local.parse().expect("test local address"),
            scheme: Scheme::Http,
        }
    }
}
