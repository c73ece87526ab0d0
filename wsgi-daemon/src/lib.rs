//! Daemon process groups for mod_wsgi-rs: starting and supervising the
//! processes of each `WSGIDaemonProcess`, and the framed wire protocol that
//! carries requests to them.
//!
//! Its contents arrive with the daemon-mode work item.
