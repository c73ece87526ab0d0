//! The WSGI protocol core of mod_wsgi-rs, written once for every front end
//! (the Apache module, the standalone server, daemon processes and test
//! harnesses) and every interpreter.
//!
//! - [`request`]: what a front end supplies about a request ([`RequestHead`]);
//!   the body is any [`std::io::Read`].
//! - [`response`]: the [`ResponseSink`] a front end implements, and the
//!   [`ResponseWriter`] that enforces PEP 3333's and mod_wsgi's response
//!   rules on top of it.
//! - [`app`]: what an interpreter supplies ([`WsgiRunner`]) and what it is
//!   given ([`AppTarget`], [`ErrorLog`]).
//! - [`environ`]: the environ as a Rust structure, built as mod_wsgi builds it.
//! - [`route`]: `WSGIScriptAlias`/`WSGIScriptAliasMatch` resolution.
//! - [`group`]: application and process group naming (`%{GLOBAL}`, ...).
//! - [`body`]: the request-body policy (413, 411, 501, 400).
//!
//! Pure Rust: this crate never links Python.

#![forbid(unsafe_code)]

pub mod access;
pub mod app;
pub mod body;
pub mod environ;
pub mod environ_build;
pub mod group;
pub mod pipeline;
pub mod proxy_protocol;
pub mod request;
pub mod response;
pub mod route;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use app::{AppTarget, ErrorLog, LogLevel, RunOutcome, WsgiRunner};
pub use environ::{EnvValue, Environ};
pub use environ_build::{build_environ, EnvironInputs, WsgiFlags};
pub use request::{RequestHead, Scheme};
pub use response::{ResponseSink, ResponseWriter, StartResponseError};
