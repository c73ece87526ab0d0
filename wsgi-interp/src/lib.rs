//! The only crate of mod_wsgi-rs that touches the Python C API.
//!
//! - [`PythonRuntime`]: initialises the embedded Python once per process
//!   from the mod_wsgi settings ([`PythonConfig`]), and keeps one
//!   sub-interpreter per application group (`""`, i.e. `%{GLOBAL}`, is the
//!   main interpreter), each created on first use.
//! - [`home`]: which installation Python runs from, always chosen
//!   explicitly (configured home, else the activated virtual environment,
//!   else the installation built against; never one found on `PATH`), and
//!   refused when its version is not the linked libpython's.
//! - [`EmbeddedRunner`]: wsgi-core's [`wsgi_core::WsgiRunner`]: loads the
//!   script (as module `_mod_wsgi_<md5 of path>`, reloaded when its mtime
//!   changes), builds the environ dict, calls the application, streams
//!   `wsgi.input`, sends the iterable (a `wsgi.file_wrapper` around a real
//!   file takes the zero-copy path), and always calls `close()`; and calls
//!   the named functions of access, auth and dispatch scripts
//!   ([`EmbeddedRunner::call_hook`]; given the front end's
//!   [`wsgi_core::app::SslLookup`], their environ gets mod_wsgi's
//!   `mod_ssl.is_https` and `mod_ssl.var_lookup`).
//!
//! Thread states are kept per (thread, interpreter) and entered with
//! `PyEval_RestoreThread`, never through the `PyGILState` API, which does not
//! support sub-interpreters; the GIL is released while waiting for request
//! body input and while writing output. The request objects
//! (`start_response`, `wsgi.input`, `wsgi.errors`, `wsgi.file_wrapper`, and
//! the `mod_wsgi.Auth` object behind `mod_ssl.*`) are heap types created in
//! each interpreter, detached from their request when it ends.

mod api;
pub mod auth;
pub use api::{read_scoreboard_with, ProcessScore, Scoreboard, ScoreboardReader, WorkerScore};
mod call;
mod ffi;
pub mod home;
mod hooks;
mod objects;
mod runtime;
mod script;

pub use call::EmbeddedRunner;
pub use home::{HomeError, PythonHome};
pub use hooks::{HookCall, HookError, HookValue, ScriptDispatcher};
pub use runtime::{check_homes, ApacheFacts, ProcessFacts, PythonConfig, PythonRuntime};
pub use script::module_name;

/// The product's part of the server banner and `SERVER_SOFTWARE`, naming
/// the Python this library embeds: `mod_wsgi-rs/0.1.0 Python/3.11`.
pub fn software_component() -> String {
    wsgi_core::environ_build::software_component(&home::Installation::built_against().version.to_string())
}

/// Why the embedded Python could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpError {
    /// Python failed to initialise.
    #[error("Python initialisation failed: {0}")]
    Init(String),
    /// Python was already initialised in this process with other settings.
    #[error("Python is already initialised in this process with different settings")]
    AlreadyInitialized,
    /// Python code raised (the formatted traceback).
    #[error("{0}")]
    Python(String),
    /// No usable Python home: of another version, or not an installation.
    #[error(transparent)]
    Home(#[from] HomeError),
}

/// What the Python this library is built against can do, for the
/// directives that need a newer one (front ends pass it to wsgi-config's
/// checks): a GIL per interpreter from 3.12. Free threading is not
/// offered: this library does not run on a free-threaded build.
pub const PYTHON_FEATURES: wsgi_config::support::PythonFeatures =
    wsgi_config::support::PythonFeatures { own_gil: cfg!(Py_3_12), free_threading: false };
