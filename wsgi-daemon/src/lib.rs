//! Daemon mode for mod_wsgi-rs: `WSGIDaemonProcess` groups, shared by both
//! front ends.
//!
//! - [`protocol`]: the versioned, framed wire protocol that carries a request
//!   from a front end (the Apache module or the standalone server) to a
//!   daemon process over a UNIX socket, and the response back.
//! - [`client`]: the front end's side: relays a request to a group's socket
//!   over connections kept for reuse, and the response back to a
//!   [`wsgi_core::ResponseSink`].
//! - [`runner`]: a [`wsgi_core::WsgiRunner`] that relays each request to
//!   the daemon group its environ names (for a front end without Python).
//! - [`worker`]: the daemon process's side: serves the protocol on the
//!   group's listening socket with a fixed number of request threads and
//!   any [`wsgi_core::WsgiRunner`].
//! - [`process`]: what a daemon process does after `fork` (user, umask,
//!   home, limits, name), then serves.
//! - [`manager`]: what keeps a group's processes running (daemon
//!   processes, or the standalone server's serving processes), restarts
//!   the dead and replaces the recycled without a gap.
//! - [`control`]: the pipe from a daemon process to its manager.
//! - [`sys`]: the operating-system calls (the crate's `unsafe`, but the
//!   fork of [`manager::ForkStarter`]).
//!
//! The crate never touches Python: the front end hands the daemon process
//! a closure that makes its interpreter.

pub mod client;
pub mod control;
pub mod manager;
pub mod process;
pub mod protocol;
pub mod runner;
pub mod script_owner;
pub mod sys;
pub mod worker;
