//! Calling a named function of a script other than the WSGI application:
//! the access, authentication and group scripts (`allow_access`,
//! `check_password`, `get_realm_hash`, `groups_for_user`) and the dispatch
//! script's functions.

use std::path::Path;

use pyo3_ffi as py;
use wsgi_core::app::SslLookup;
use wsgi_core::group::{DispatchAnswer, DispatchScript};
use wsgi_core::{Environ, ErrorLog, LogLevel, ResponseSink, ResponseWriter};

use crate::call::{environ_dict, report_load_error, EmbeddedRunner};
use crate::ffi::{self, Obj};
use crate::objects::{HelperTypes, RequestCtx};
use crate::script::LoadError;

/// A script function to call.
#[derive(Clone, Copy)]
pub struct HookCall<'a> {
    /// The script file.
    pub script: &'a Path,
    /// The application group to run it in (`""`: the main interpreter).
    pub application_group: &'a str,
    /// The function's name.
    pub function: &'a str,
    /// Reload the script when it changes on disk.
    pub reload_on_change: bool,
    /// The connection's TLS facts: when given, the environ gets
    /// `mod_ssl.is_https` and `mod_ssl.var_lookup`, as mod_wsgi gives them
    /// to access, authentication and group scripts. Called only during the
    /// call; afterwards the two raise `RuntimeError`.
    pub ssl: Option<&'a dyn SslLookup>,
}

impl std::fmt::Debug for HookCall<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookCall")
            .field("script", &self.script)
            .field("application_group", &self.application_group)
            .field("function", &self.function)
            .field("reload_on_change", &self.reload_on_change)
            .field("ssl", &self.ssl.is_some())
            .finish()
    }
}

/// What the function returned, converted to Rust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookValue {
    /// `None`.
    None,
    /// `True` or `False`.
    Bool(bool),
    /// A `str`.
    Text(String),
    /// A `bytes`.
    Bytes(Vec<u8>),
    /// Any other iterable whose items are all `str` (as Latin-1 bytes) or
    /// `bytes`.
    Items(Vec<Vec<u8>>),
    /// Anything else: its type's name.
    Other(String),
}

/// Why no value came back. Each is logged before it is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    /// The script could not be loaded.
    #[error("the script could not be loaded")]
    Load,
    /// The script has no such function.
    #[error("the script does not provide the function")]
    Missing,
    /// The function raised an exception.
    #[error("the function raised an exception")]
    Raised,
}

/// The functions of a `WSGIDispatchScript`, run in this process's Python
/// for [`wsgi_core::group::run_dispatch_script`], failures logged to `log`.
/// `runner` and `log` are borrowed for a request (the Apache module) or
/// shared for the server's life (`Arc`s, the standalone server).
pub struct ScriptDispatcher<R, L> {
    runner: R,
    log: L,
}

impl<R, L> ScriptDispatcher<R, L>
where
    R: std::ops::Deref<Target = EmbeddedRunner>,
    L: std::ops::Deref,
    L::Target: ErrorLog + Sized,
{
    /// Dispatch functions run by `runner`, logging to `log`.
    pub fn new(runner: R, log: L) -> ScriptDispatcher<R, L> {
        ScriptDispatcher { runner, log }
    }
}

impl<R, L> DispatchScript for ScriptDispatcher<R, L>
where
    R: std::ops::Deref<Target = EmbeddedRunner>,
    L: std::ops::Deref,
    L::Target: ErrorLog + Sized,
{
    fn call(
        &self,
        script: &Path,
        application_group: &str,
        function: &str,
        reload_on_change: bool,
        environ: Environ,
    ) -> DispatchAnswer {
        // mod_wsgi leaves `mod_ssl.*` out of the dispatch environ.
        let call = HookCall { script, application_group, function, reload_on_change, ssl: None };
        let log: &dyn ErrorLog = &*self.log;
        match self.runner.call_hook(&call, environ, &[], log) {
            Ok(HookValue::None) | Err(HookError::Missing) => DispatchAnswer::Unchanged,
            Err(HookError::Load) => DispatchAnswer::NotLoaded,
            Err(HookError::Raised) => DispatchAnswer::Failed,
            Ok(HookValue::Text(text)) => DispatchAnswer::Name(text),
            Ok(HookValue::Bytes(bytes)) => DispatchAnswer::Name(bytes.iter().map(|&b| char::from(b)).collect()),
            Ok(other) => {
                self.log.log(
                    LogLevel::Error,
                    &format!(
                        "mod_wsgi (pid={}): TypeError: {function} returned from '{}' must be a string, not {other:?}.",
                        std::process::id(),
                        script.display()
                    ),
                );
                DispatchAnswer::Failed
            }
        }
    }
}

/// A sink for hooks, which produce no response.
struct NoResponse;

impl ResponseSink for NoResponse {
    fn send_head(&mut self, _: u16, _: &str, _: &[(String, String)]) -> std::io::Result<()> {
        Ok(())
    }

    fn send_body(&mut self, _: &[u8]) -> std::io::Result<()> {
        Ok(())
    }
}

impl EmbeddedRunner {
    /// Calls `call.function(environ, *args)` in the script; `environ` gets
    /// `wsgi.errors` added, and with [`HookCall::ssl`] the `mod_ssl.*`
    /// callables. A load failure, a missing function and an
    /// exception are logged (with the traceback) and returned as errors.
    pub fn call_hook(
        &self,
        call: &HookCall<'_>,
        environ: Environ,
        args: &[&str],
        log: &dyn ErrorLog,
    ) -> Result<HookValue, HookError> {
        let interp = match self.runtime().interpreter(call.application_group) {
            Ok(interp) => interp,
            Err(e) => {
                log.log(
                    LogLevel::Error,
                    &format!("mod_wsgi: cannot create interpreter '{}': {e}", call.application_group),
                );
                return Err(HookError::Load);
            }
        };
        let _entered = interp.enter();
        // SAFETY: we hold the interpreter's GIL for the whole call; the
        // context lives on this frame and its objects are detached before
        // it ends.
        unsafe {
            let function = {
                let mut scripts = interp.lock_scripts();
                scripts.callable(call.script, call.function, call.reload_on_change, None)
            };
            let function = match function {
                Ok(function) => function,
                Err(LoadError::NoCallable) => return Err(HookError::Missing),
                Err(e) => {
                    report_load_error(&interp, call.script, call.function, e, log);
                    return Err(HookError::Load);
                }
            };
            let mut no_body = std::io::empty();
            let mut sink = NoResponse;
            let mut writer = ResponseWriter::new(&mut sink, true);
            let mut ctx = RequestCtx::new(&mut no_body, &mut writer, log);
            if let Some(ssl) = call.ssl {
                ctx.set_ssl(ssl);
            }
            let ctx_ptr: *mut RequestCtx = &mut ctx;
            let helpers = &interp.helpers;
            let (Some(input), Some(errors)) =
                (HelperTypes::instance(&helpers.input, ctx_ptr), HelperTypes::instance(&helpers.errors, ctx_ptr))
            else {
                log_exception(call, log);
                return Err(HookError::Raised);
            };
            let auth = match call.ssl {
                Some(_) => HelperTypes::instance(&helpers.auth, ctx_ptr),
                None => None,
            };
            let result = match environ_dict(&interp, environ, &input, &errors, &helpers.file_wrapper) {
                Some(dict) => {
                    // The hooks' environ has neither input nor file wrapper.
                    py::PyDict_DelItemString(dict.as_ptr(), c"wsgi.input".as_ptr());
                    py::PyDict_DelItemString(dict.as_ptr(), c"wsgi.file_wrapper".as_ptr());
                    if call.ssl.is_some() && !add_ssl_callables(&dict, auth.as_ref()) {
                        None
                    } else {
                        call_function(&function, &dict, args)
                    }
                }
                None => None,
            };
            (*ctx_ptr).flush_errors();
            HelperTypes::detach(&input);
            HelperTypes::detach(&errors);
            if let Some(auth) = &auth {
                HelperTypes::detach(auth);
            }
            match result {
                Some(value) => Ok(convert(&value)),
                None => {
                    log_exception(call, log);
                    Err(HookError::Raised)
                }
            }
        }
    }
}

/// Adds `mod_ssl.is_https` and `mod_ssl.var_lookup`, the bound methods of
/// `auth` (a `mod_wsgi.Auth`), at the end of the environ, as mod_wsgi does.
/// `false` with a Python exception set when that fails.
///
/// # Safety
/// The GIL is held.
unsafe fn add_ssl_callables(environ: &Obj, auth: Option<&Obj>) -> bool {
    let Some(auth) = auth else { return false };
    // SAFETY: the GIL is held (caller); each bound method is owned until the
    // dict holds its own reference.
    unsafe {
        for (key, method) in [(c"mod_ssl.is_https", c"ssl_is_https"), (c"mod_ssl.var_lookup", c"ssl_var_lookup")] {
            let Some(bound) = Obj::from_owned(py::PyObject_GetAttrString(auth.as_ptr(), method.as_ptr())) else {
                return false;
            };
            if py::PyDict_SetItemString(environ.as_ptr(), key.as_ptr(), bound.as_ptr()) != 0 {
                return false;
            }
        }
        true
    }
}

/// Calls `function(environ, *args)` with the arguments as `str`.
///
/// # Safety
/// The GIL is held.
unsafe fn call_function(function: &Obj, environ: &Obj, args: &[&str]) -> Option<Obj> {
    // SAFETY: the GIL is held (caller); PyTuple_SetItem steals each new
    // reference, including on failure.
    unsafe {
        let tuple = Obj::from_owned(py::PyTuple_New(1 + args.len() as py::Py_ssize_t))?;
        py::PyTuple_SetItem(tuple.as_ptr(), 0, environ.clone().into_ptr());
        for (index, arg) in args.iter().enumerate() {
            let value = ffi::utf8_str(arg)?;
            py::PyTuple_SetItem(tuple.as_ptr(), 1 + index as py::Py_ssize_t, value.into_ptr());
        }
        Obj::from_owned(py::PyObject_Call(function.as_ptr(), tuple.as_ptr(), std::ptr::null_mut()))
    }
}

/// Converts a return value.
///
/// # Safety
/// The GIL is held.
unsafe fn convert(value: &Obj) -> HookValue {
    // SAFETY: the GIL is held (caller); every new reference is owned.
    unsafe {
        let ptr = value.as_ptr();
        if ptr == py::Py_None() {
            return HookValue::None;
        }
        if py::PyBool_Check(ptr) != 0 {
            return HookValue::Bool(ptr == py::Py_True());
        }
        if let Some(text) = ffi::str_value(ptr) {
            return HookValue::Text(text);
        }
        if let Some(bytes) = bytes_value(ptr) {
            return HookValue::Bytes(bytes);
        }
        if let Some(iter) = Obj::from_owned(py::PyObject_GetIter(ptr)) {
            let mut items = Vec::new();
            loop {
                let Some(item) = Obj::from_owned(py::PyIter_Next(iter.as_ptr())) else {
                    if !py::PyErr_Occurred().is_null() {
                        py::PyErr_Clear();
                        return HookValue::Other(type_name(ptr));
                    }
                    return HookValue::Items(items);
                };
                if let Some(text) = ffi::latin1_value(item.as_ptr()) {
                    items.push(wsgi_core::route::latin1_bytes(&text));
                } else if let Some(bytes) = bytes_value(item.as_ptr()) {
                    items.push(bytes);
                } else {
                    py::PyErr_Clear();
                    return HookValue::Other(type_name(ptr));
                }
            }
        }
        py::PyErr_Clear();
        HookValue::Other(type_name(ptr))
    }
}

/// The contents of a `bytes` object.
///
/// # Safety
/// The GIL is held and `obj` is valid.
unsafe fn bytes_value(obj: *mut py::PyObject) -> Option<Vec<u8>> {
    // SAFETY: type-checked before reading the buffer.
    unsafe {
        if py::PyBytes_Check(obj) == 0 {
            return None;
        }
        let data = py::PyBytes_AsString(obj);
        let len = py::PyBytes_Size(obj);
        Some(std::slice::from_raw_parts(data.cast::<u8>(), len as usize).to_vec())
    }
}

/// The name of an object's type.
///
/// # Safety
/// The GIL is held and `obj` is valid.
unsafe fn type_name(obj: *mut py::PyObject) -> String {
    // SAFETY: every object has a type with a NUL-terminated tp_name.
    unsafe {
        let kind = py::Py_TYPE(obj);
        std::ffi::CStr::from_ptr((*kind).tp_name).to_string_lossy().into_owned()
    }
}

/// Logs the pending exception with its traceback.
///
/// # Safety
/// The GIL is held.
unsafe fn log_exception(call: &HookCall<'_>, log: &dyn ErrorLog) {
    // SAFETY: the GIL is held (caller).
    let error = unsafe { ffi::take_exception() };
    log.log(
        LogLevel::Error,
        &format!(
            "mod_wsgi: Exception occurred processing WSGI script '{}'.\n{}",
            call.script.display(),
            error.traceback
        ),
    );
}
