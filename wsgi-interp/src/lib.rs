//! The only crate of mod_wsgi-rs that touches the Python C API: interpreter
//! initialisation, one sub-interpreter per application group, script loading
//! and the WSGI call itself.
//!
//! Its contents arrive with the interpreter work item.
