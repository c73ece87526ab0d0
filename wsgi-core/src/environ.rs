//! The WSGI environ as a Rust structure.

use std::borrow::Cow;

/// One environ value. CGI variables are strings; the `wsgi.*` and
/// `mod_wsgi.*` keys also hold booleans, integers and tuples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// A `str` (Latin-1 text, as PEP 3333 requires). Borrowed when it is a
    /// constant: no allocation, and an interpreter may keep the matching
    /// Python string.
    Str(Cow<'static, str>),
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
    pub fn set_str(&mut self, key: impl Into<Cow<'static, str>>, value: impl Into<Cow<'static, str>>) {
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

/// The environ keys most requests carry, as `'static` strings: a key given
/// as one of these needs no allocation, and interpreters can cache the
/// matching Python string.
const COMMON_KEYS: [&str; 66] = [
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
    "mod_wsgi.script_name",
    "mod_wsgi.path_info",
    "mod_wsgi.process_group",
    "mod_wsgi.application_group",
    "mod_wsgi.callable_object",
    "mod_wsgi.request_handler",
    "mod_wsgi.handler_script",
    "mod_wsgi.script_reloading",
    "mod_wsgi.listener_host",
    "mod_wsgi.listener_port",
    "mod_wsgi.enable_sendfile",
    "mod_wsgi.ignore_activity",
    "mod_wsgi.request_start",
    "mod_wsgi.request_id",
    "mod_wsgi.queue_start",
    "mod_wsgi.daemon_start",
    "mod_wsgi.script_start",
    "mod_wsgi.version",
    "mod_wsgi.total_requests",
    "mod_wsgi.thread_id",
    "mod_wsgi.thread_requests",
    "mod_wsgi.mount_point",
    "apache.version",
    "wsgi.version",
    "wsgi.multithread",
    "wsgi.multiprocess",
    "wsgi.run_once",
    "wsgi.url_scheme",
    "wsgi.input_terminated",
    "HTTP_X_FORWARDED_FOR",
];

/// [`COMMON_KEYS`] sorted, for binary search.
fn sorted_keys() -> &'static [&'static str] {
    static SORTED: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    SORTED.get_or_init(|| {
        let mut keys = COMMON_KEYS.to_vec();
        keys.sort_unstable();
        keys
    })
}

/// The `'static` form of a common environ key, if `name` is one.
pub fn common_key(name: &[u8]) -> Option<&'static str> {
    let keys = sorted_keys();
    keys.binary_search_by(|key| key.as_bytes().cmp(name)).ok().map(|i| keys[i])
}

/// Values many requests share, whatever the application (sorted, for the
/// binary search): kept as `'static` strings when built or decoded, like
/// the common keys.
const COMMON_VALUES: [&str; 19] = [
    "",
    "0",
    "1",
    "127.0.0.1",
    "CGI/1.1",
    "DELETE",
    "GET",
    "HEAD",
    "HTTP/1.0",
    "HTTP/1.1",
    "OPTIONS",
    "PATCH",
    "POST",
    "PUT",
    "application",
    "http",
    "https",
    "on",
    "wsgi-script",
];

/// The `'static` form of a common environ value, if `value` is one.
pub fn common_value(value: &[u8]) -> Option<&'static str> {
    COMMON_VALUES.binary_search_by(|common| common.as_bytes().cmp(value)).ok().map(|i| COMMON_VALUES[i])
}

/// An environ string value for the Latin-1 bytes `value`: a `'static`
/// string for the common ones (no allocation), an owned one otherwise.
pub fn environ_value(value: &[u8]) -> Cow<'static, str> {
    match common_value(value) {
        Some(common) => Cow::Borrowed(common),
        None => Cow::Owned(crate::route::latin1(value)),
    }
}

/// An environ string value for `text`: a `'static` string for the common
/// ones (no allocation), a copy otherwise.
pub fn environ_text(text: &str) -> Cow<'static, str> {
    match common_value(text.as_bytes()) {
        Some(common) => Cow::Borrowed(common),
        None => Cow::Owned(text.to_string()),
    }
}

/// An environ key for the Latin-1 bytes `name`: a `'static` string for the
/// common keys (no allocation), an owned one otherwise.
pub fn environ_key(name: &[u8]) -> Cow<'static, str> {
    match common_key(name) {
        Some(key) => Cow::Borrowed(key),
        None => Cow::Owned(crate::route::latin1(name)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn common_values_are_sorted_and_found() {
        assert!(super::COMMON_VALUES.windows(2).all(|w| w[0] < w[1]), "binary search needs them sorted");
        for value in super::COMMON_VALUES {
            assert_eq!(super::common_value(value.as_bytes()), Some(value));
        }
        assert_eq!(super::common_value(b"/hello"), None);
    }

    use super::*;

    #[test]
    fn common_keys_are_static_and_others_owned() {
        assert!(matches!(environ_key(b"REQUEST_METHOD"), Cow::Borrowed("REQUEST_METHOD")));
        assert!(matches!(environ_key(b"HTTP_HOST"), Cow::Borrowed("HTTP_HOST")));
        assert!(matches!(environ_key(b"wsgi.url_scheme"), Cow::Borrowed("wsgi.url_scheme")));
        assert_eq!(common_key(b"mod_wsgi.request_id"), Some("mod_wsgi.request_id"));
        assert_eq!(common_key(b"HTTP_X_OTHER"), None);
        let custom = environ_key(b"HTTP_X_CUSTOM\xe9");
        assert!(matches!(&custom, Cow::Owned(_)));
        assert_eq!(custom, "HTTP_X_CUSTOM\u{e9}");
    }
}
