//! The WSGI protocol core of mod_wsgi-rs: environ building, `start_response`
//! rules, request-body policy, routing of script aliases, application and
//! process group naming, and the traits where front ends and interpreters
//! meet.
//!
//! Pure Rust: this crate never links Python. Its contents arrive with the
//! protocol-core work item; nothing here is a placeholder for behaviour.
