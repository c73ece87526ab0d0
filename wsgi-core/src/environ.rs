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

/// Room for the keys of a typical request: CGI variables, a dozen
/// headers, the `mod_wsgi.*` and `wsgi.*` keys.
const TYPICAL_KEYS: usize = 64;

/// Most entries an environ's storage may have to be kept for reuse.
const RECYCLE_MAX: usize = 512;

std::thread_local! {
    /// The storage of the last environ dropped on this thread, emptied.
    static SPARE_ENTRIES: std::cell::Cell<Vec<(Cow<'static, str>, EnvValue)>> =
        const { std::cell::Cell::new(Vec::new()) };
}

impl Environ {
    /// An empty environ with room for a typical request. It takes over the
    /// storage of the last environ dropped on this thread, if any: at some
    /// 3.5 KiB that storage is beyond the small-object fast path of the
    /// system allocator, where allocating it anew each request cost more
    /// than the rest of building the environ's list.
    pub fn for_request() -> Environ {
        let mut entries = SPARE_ENTRIES.try_with(std::cell::Cell::take).unwrap_or_default();
        entries.reserve(TYPICAL_KEYS);
        Environ { entries }
    }

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

    /// Whether the request may carry a body: a `CONTENT_LENGTH` other than
    /// 0, or any `Transfer-Encoding`. A request without either has none
    /// (RFC 9112 section 6.3), so a front end need not read or relay one.
    pub fn announces_body(&self) -> bool {
        let length = self.get_str("CONTENT_LENGTH").map(str::trim).unwrap_or("");
        !(length.is_empty() || length == "0") || self.get("HTTP_TRANSFER_ENCODING").is_some()
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<EnvValue> {
        let index = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(index).1)
    }
}

impl Drop for Environ {
    fn drop(&mut self) {
        if self.entries.capacity() == 0 || self.entries.capacity() > RECYCLE_MAX {
            return;
        }
        let mut entries = std::mem::take(&mut self.entries);
        entries.clear();
        // At thread exit the slot may be gone: the storage is freed instead.
        let _ = SPARE_ENTRIES.try_with(|spare| spare.set(entries));
    }
}

/// The environ keys most requests carry, as `'static` strings: a key given
/// as one of these needs no allocation, and interpreters can cache the
/// matching Python string.
///
/// A key's position is its number in the daemon protocol: add new keys at
/// the end, and change that protocol's version when this list changes.
pub const COMMON_KEYS: [&str; 66] = [
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

/// Values many requests share, whatever the application: kept as
/// `'static` strings when built or decoded, like the common keys (and, like
/// them, numbered by position in the daemon protocol).
pub const COMMON_VALUES: [&str; 19] = [
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

/// The common keys, found by hash.
static KEY_SET: StaticSet<256> = StaticSet::new(&COMMON_KEYS);
/// The common values, found by hash.
static VALUE_SET: StaticSet<64> = StaticSet::new(&COMMON_VALUES);

/// The position of `name` in [`COMMON_KEYS`], if it is one.
pub fn common_key_index(name: &[u8]) -> Option<usize> {
    KEY_SET.find(name)
}

/// The `'static` form of a common environ key, if `name` is one.
pub fn common_key(name: &[u8]) -> Option<&'static str> {
    common_key_index(name).map(|i| COMMON_KEYS[i])
}

/// The position of `value` in [`COMMON_VALUES`], if it is one.
pub fn common_value_index(value: &[u8]) -> Option<usize> {
    VALUE_SET.find(value)
}

/// The `'static` form of a common environ value, if `value` is one.
pub fn common_value(value: &[u8]) -> Option<&'static str> {
    common_value_index(value).map(|i| COMMON_VALUES[i])
}

/// A fixed set of strings in an open-addressed hash table of `N` slots (a
/// power of two, at least twice the strings), built at compile time: a
/// lookup hashes the candidate once and compares it with one string, where
/// a binary search compared it with six or seven.
struct StaticSet<const N: usize> {
    items: &'static [&'static str],
    /// A string's position plus one; 0 marks an empty slot.
    slots: [u8; N],
}

impl<const N: usize> StaticSet<N> {
    const fn new(items: &'static [&'static str]) -> StaticSet<N> {
        assert!(N.is_power_of_two() && items.len() * 2 <= N && items.len() < u8::MAX as usize);
        let mut slots = [0u8; N];
        let mut i = 0;
        while i < items.len() {
            let mut slot = set_hash(items[i].as_bytes()) & (N - 1);
            while slots[slot] != 0 {
                slot = (slot + 1) & (N - 1);
            }
            slots[slot] = (i + 1) as u8;
            i += 1;
        }
        StaticSet { items, slots }
    }

    fn find(&self, candidate: &[u8]) -> Option<usize> {
        let mut slot = set_hash_words(candidate) & (N - 1);
        loop {
            let index = self.slots[slot].checked_sub(1)? as usize;
            if self.items[index].as_bytes() == candidate {
                return Some(index);
            }
            slot = (slot + 1) & (N - 1);
        }
    }
}

/// The multiplier of [`set_hash`]: 2^64 divided by the golden ratio.
const SET_HASH_K: u64 = 0x9e37_79b9_7f4a_7c15;

/// A hash of `bytes` eight at a time (one multiply a word), its best-mixed
/// bits at the bottom. This is the compile-time form, a byte at a time;
/// lookups use [`set_hash_words`], which gives the same hash.
const fn set_hash(bytes: &[u8]) -> usize {
    const K: u64 = SET_HASH_K;
    let mut hash = bytes.len() as u64;
    let mut word = 0u64;
    let mut i = 0;
    while i < bytes.len() {
        word |= (bytes[i] as u64) << ((i % 8) * 8);
        i += 1;
        if i % 8 == 0 || i == bytes.len() {
            hash = (hash.rotate_left(5) ^ word).wrapping_mul(K);
            word = 0;
        }
    }
    (hash >> 32) as usize
}

/// [`set_hash`], loading whole words: what a lookup computes.
fn set_hash_words(bytes: &[u8]) -> usize {
    let mut hash = bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let word = u64::from_le_bytes(word.try_into().unwrap_or_default());
        hash = (hash.rotate_left(5) ^ word).wrapping_mul(SET_HASH_K);
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        let mut word = [0u8; 8];
        word[..tail.len()].copy_from_slice(tail);
        hash = (hash.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(SET_HASH_K);
    }
    (hash >> 32) as usize
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
    use super::*;

    #[test]
    fn the_lookup_hash_is_the_compile_time_hash() {
        let long: String = (0u8..200).map(|b| char::from(b' ' + b % 90)).collect();
        for len in 0..long.len() {
            let bytes = &long.as_bytes()[..len];
            assert_eq!(set_hash_words(bytes), set_hash(bytes), "length {len}");
        }
        for key in COMMON_KEYS.iter().chain(COMMON_VALUES.iter()) {
            assert_eq!(set_hash_words(key.as_bytes()), set_hash(key.as_bytes()), "{key}");
        }
    }

    #[test]
    fn a_request_environ_starts_empty_in_the_storage_of_the_last_one_dropped() {
        let mut first = Environ::for_request();
        first.set_str("PATH_INFO", String::from("/owned"));
        first.set("wsgi.version", EnvValue::Tuple(vec![1, 0]));
        let storage = first.entries.as_ptr();
        assert!(first.entries.capacity() >= TYPICAL_KEYS);
        drop(first);
        let second = Environ::for_request();
        assert!(second.entries.is_empty());
        assert_eq!(second.entries.as_ptr(), storage);
        // Taken: the next one gets storage of its own.
        let third = Environ::for_request();
        assert_ne!(third.entries.as_ptr(), storage);
        assert!(third.entries.capacity() >= TYPICAL_KEYS);
    }

    #[test]
    fn every_common_key_and_value_is_found_at_its_position_and_nothing_else() {
        for (i, key) in COMMON_KEYS.iter().enumerate() {
            assert_eq!(common_key_index(key.as_bytes()), Some(i), "{key}");
            assert_eq!(common_key(key.as_bytes()), Some(*key));
        }
        for (i, value) in COMMON_VALUES.iter().enumerate() {
            assert_eq!(common_value_index(value.as_bytes()), Some(i), "{value:?}");
        }
        // Near misses: prefixes, one byte more, another case, the other
        // table's strings.
        for key in COMMON_KEYS {
            let bytes = key.as_bytes();
            assert_eq!(common_key(&bytes[..bytes.len() - 1]), None);
            assert_eq!(common_key(format!("{key}_").as_bytes()), None);
            assert_eq!(common_key(key.to_ascii_lowercase().as_bytes()).is_some(), key.to_ascii_lowercase() == *key);
            assert_eq!(common_value(bytes), None);
        }
        for value in ["/hello", "get", "HTTP/2", "127.0.0.2", "GETS", "x"] {
            assert_eq!(common_value(value.as_bytes()), None, "{value}");
        }
        let unique: std::collections::HashSet<_> = COMMON_KEYS.iter().chain(&COMMON_VALUES).collect();
        assert_eq!(unique.len(), COMMON_KEYS.len() + COMMON_VALUES.len(), "no string twice");
    }

    #[test]
    fn a_body_is_announced_by_a_length_other_than_zero_or_a_transfer_encoding() {
        let with = |pairs: &[(&'static str, &'static str)]| {
            let mut environ = Environ::default();
            environ.set_str("REQUEST_METHOD", "POST");
            for (key, value) in pairs {
                environ.set_str(*key, *value);
            }
            environ.announces_body()
        };
        assert!(!with(&[]));
        assert!(!with(&[("CONTENT_LENGTH", "0")]));
        assert!(!with(&[("CONTENT_LENGTH", "")]));
        assert!(with(&[("CONTENT_LENGTH", "12")]));
        assert!(with(&[("CONTENT_LENGTH", " 00")]), "anything but a plain 0 counts");
        assert!(with(&[("HTTP_TRANSFER_ENCODING", "chunked")]));
        assert!(with(&[("CONTENT_LENGTH", "0"), ("HTTP_TRANSFER_ENCODING", "chunked")]));
    }

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
