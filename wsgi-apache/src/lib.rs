//! mod_wsgi-rs for Apache httpd 2.4: the `mod_wsgi.so` module.
//!
//! A thin front end: directives are parsed by wsgi-config (every one of
//! them registered in Apache's command table), requests are routed and
//! their environ built with wsgi-core, and applications run in wsgi-interp's
//! interpreters on Apache's own threads (embedded mode). All `unsafe` code
//! is in `ffi` (bindings and wrappers) and `module` (the module record and
//! its `extern "C"` entry points, each of which catches panics).

mod auth;
mod config;
mod daemon;
mod embedded;
mod ffi;
mod module;

pub use module::{wsgi_module, ModuleRecord};
