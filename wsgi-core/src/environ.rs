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
