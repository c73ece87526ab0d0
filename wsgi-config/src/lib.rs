//! Apache-style configuration text to a typed model of mod_wsgi's directives.
//!
//! Three layers, each usable alone:
//! - [`lexer`]: Apache's lexical rules (logical lines, argument words);
//! - [`tree`]: files to a tree of directives and containers (includes,
//!   conditionals, variables);
//! - the directive model, which gives every mod_wsgi directive a typed value
//!   and merges them by scope.
//!
//! This crate is pure Rust; it never links Python.

#![forbid(unsafe_code)]

pub mod authz;
pub mod error;
pub mod interpreter_options;
pub mod lexer;
pub mod log_format;
pub mod tree;

pub use error::{ConfigError, ConfigErrors, Location};
pub mod daemon;
pub mod directives;
pub mod dump;
pub mod model;
pub mod support;
pub mod tls;
pub mod values;

pub use daemon::DaemonProcess;
pub use model::{Config, ConnectionSettings, DirSettings, Server};

use std::path::Path;

/// Reads the configuration file at `path` (following includes) into a model.
///
/// Returns every error found, in file and line order; a configuration with
/// any error yields no model.
pub fn load_file(path: &Path, options: &tree::ReadOptions) -> Result<Config, ConfigErrors> {
    build(tree::read_file_lenient(path, options), options)
}

/// Reads configuration text into a model; `name` is used in messages.
pub fn load_str(text: &str, name: &Path, options: &tree::ReadOptions) -> Result<Config, ConfigErrors> {
    build(tree::read_str_lenient(text, name, options), options)
}

/// Reads configuration text into a model, with the files it includes from
/// `files` (files held in memory: [`tree::MemoryFiles`]).
pub fn load_str_from(
    files: &dyn tree::FileSource,
    text: &str,
    name: &Path,
    options: &tree::ReadOptions,
) -> Result<Config, ConfigErrors> {
    build(tree::read_str_lenient_from(files, text, name, options), options)
}

/// Reads the configuration file at `path` into a model, with it and the
/// files it includes from `files`.
pub fn load_file_from(
    files: &dyn tree::FileSource,
    path: &Path,
    options: &tree::ReadOptions,
) -> Result<Config, ConfigErrors> {
    build(tree::read_file_lenient_from(files, path, options), options)
}

/// Builds the model even from a tree with errors, so that one run reports
/// the structural errors and the directive errors together.
fn build(
    (nodes, mut errors): (Vec<tree::Node>, Vec<ConfigError>),
    options: &tree::ReadOptions,
) -> Result<Config, ConfigErrors> {
    match Config::from_tree(&nodes, options.server_root.clone(), options.front_end, options.python) {
        Ok(config) if errors.is_empty() => Ok(config),
        Ok(_) => Err(ConfigErrors(errors)),
        Err(more) => {
            errors.extend(more);
            // Stable: errors on one line keep the order they were found in.
            errors.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
            Err(ConfigErrors(errors))
        }
    }
}
