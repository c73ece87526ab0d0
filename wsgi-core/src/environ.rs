//! The WSGI environ as a Rust structure.

use std::borrow::Cow;

/// One environ value. CGI variables are strings; the `wsgi.*` and
/// `mod_wsgi.*` keys also hold booleans, integers and tuples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// A `str` (Latin-1 text, as PEP 3333 requires).
    Str(String),
    /// A `bool`.
    Bool(bool),
    /// An `int`.
    Int(i64),
    /// A tuple of ints, e.g. `wsgi.version`.
    Tuple(Vec<i64>),
}

/// The environ of one request, in insertion order. The interpreter adds the
/// objects (`wsgi.input`, `wsgi.errors`, `wsgi.file_wrapper`) itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environ {
    /// Key/value pairs; keys are unique.
    pub entries: Vec<(Cow<'static, str>, EnvValue)>,
}

impl Environ {
    /// Sets `key` to `value`, replacing an earlier value.
    pub fn set(&mut self, key: impl Into<Cow<'static, str>>, value: EnvValue) {
        let key = key.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// Sets a string value.
    pub fn set_str(&mut self, key: impl Into<Cow<'static, str>>, value: impl Into<String>) {
        self.set(key, EnvValue::Str(value.into()));
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&EnvValue> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The value of `key` if it is a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(EnvValue::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<EnvValue> {
        let index = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(index).1)
    }
}

/// The CGI variable names most requests carry, as `'static` strings: an
/// environ key given as one of these needs no allocation, and interpreters
/// can cache the matching Python string.
const COMMON_KEYS: [&str; 36] = [
    "GATEWAY_INTERFACE",
    "SERVER_PROTOCOL",
    "REQUEST_METHOD",
    "QUERY_STRING",
    "REQUEST_URI",
    "SCRIPT_NAME",
    "PATH_INFO",
    "PATH_TRANSLATED",
    "SERVER_SIGNATURE",
    "SERVER_SOFTWARE",
    "SERVER_NAME",
    "SERVER_ADDR",
    "SERVER_PORT",
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "REMOTE_HOST",
    "REMOTE_USER",
    "AUTH_TYPE",
    "DOCUMENT_ROOT",
    "REQUEST_SCHEME",
    "CONTEXT_PREFIX",
    "CONTEXT_DOCUMENT_ROOT",
    "SERVER_ADMIN",
    "SCRIPT_FILENAME",
    "CONTENT_TYPE",
    "CONTENT_LENGTH",
    "HTTPS",
    "HTTP_HOST",
    "HTTP_USER_AGENT",
    "HTTP_ACCEPT",
    "HTTP_ACCEPT_ENCODING",
    "HTTP_ACCEPT_LANGUAGE",
    "HTTP_CONNECTION",
    "HTTP_COOKIE",
    "HTTP_REFERER",
    "HTTP_CACHE_CONTROL",
];

/// An environ key for the Latin-1 bytes `name`: a `'static` string for the
/// common CGI names (no allocation), an owned one otherwise.
pub fn environ_key(name: &[u8]) -> Cow<'static, str> {
    match COMMON_KEYS.iter().find(|key| key.as_bytes() == name) {
        Some(key) => Cow::Borrowed(key),
        None => Cow::Owned(crate::route::latin1(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_keys_are_static_and_others_owned() {
        assert!(matches!(environ_key(b"REQUEST_METHOD"), Cow::Borrowed("REQUEST_METHOD")));
        assert!(matches!(environ_key(b"HTTP_HOST"), Cow::Borrowed("HTTP_HOST")));
        let custom = environ_key(b"HTTP_X_CUSTOM\xe9");
        assert!(matches!(&custom, Cow::Owned(_)));
        assert_eq!(custom, "HTTP_X_CUSTOM\u{e9}");
    }
}
