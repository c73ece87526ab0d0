//! Configuration errors, each tied to a file and line.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a directive or section stands: a file and a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    /// The file the text came from (or a pseudo-name such as `<string>`).
    pub file: Arc<Path>,
    /// 1-based line number where the directive starts.
    pub line: usize,
}

impl Location {
    /// A location in `file` at `line`.
    pub fn new(file: impl Into<PathBuf>, line: usize) -> Self {
        Location { file: Arc::from(file.into().as_path()), line }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One problem in a configuration, printed as `FILE:LINE: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", self.place())]
pub struct ConfigError {
    /// The file the problem is in.
    pub file: Arc<Path>,
    /// The line, when the problem belongs to one (not, say, an unreadable file).
    pub line: Option<usize>,
    /// What is wrong, naming the directive where there is one.
    pub message: String,
}

impl ConfigError {
    /// An error at a directive's location.
    pub fn at(location: &Location, message: impl Into<String>) -> Self {
        ConfigError { file: location.file.clone(), line: Some(location.line), message: message.into() }
    }

    /// An error about a whole file.
    pub fn in_file(file: &Path, message: impl Into<String>) -> Self {
        ConfigError { file: Arc::from(file), line: None, message: message.into() }
    }

    fn place(&self) -> String {
        match self.line {
            Some(line) => format!("{}:{line}", self.file.display()),
            None => self.file.display().to_string(),
        }
    }
}

/// Every error found in a configuration; a configuration with any error is
/// never loaded in part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    fn render(&self) -> String {
        self.0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        ConfigErrors(vec![error])
    }
}
