//! The Apache httpd 2.4 front end: a module that Apache loads as
//! `mod_wsgi.so` in place of mod_wsgi, registering every directive of
//! [`wsgi_config`] in Apache's command table.
//!
//! Its contents arrive with the Apache-module work item.
