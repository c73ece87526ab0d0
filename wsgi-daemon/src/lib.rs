//! Daemon mode for mod_wsgi-rs.
//!
//! What exists now:
//!
//! - [`protocol`]: the versioned, framed wire protocol that carries a request
//!   from a front end (the Apache module or the standalone server) to a
//!   daemon process over a UNIX socket, and the response back. Connections
//!   are reused across requests.
//!
//! Still to come: starting, supervising and recycling the processes of each
//! `WSGIDaemonProcess` group, and the daemon-side request loop that serves
//! this protocol. Nothing in this crate starts processes yet.

pub mod protocol;
