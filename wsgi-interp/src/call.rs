//! The WSGI call (PEP 3333) driven from Rust: environ dict, the
//! application, its iterable, `close()`, and failures.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Read;
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;
use std::sync::Arc;

use pyo3_ffi as py;
use wsgi_core::response::WriteError;
use wsgi_core::{AppTarget, EnvValue, Environ, ErrorLog, LogLevel, ResponseWriter, RunOutcome, WsgiRunner};

use crate::api::ActiveRequest;
use crate::ffi::{self, Obj, PythonError};
use crate::objects::{HelperTypes, RequestCtx};
use crate::runtime::{without_gil, Interpreter, PythonRuntime};
use crate::script::LoadError;

/// Runs applications in this process's Python (embedded mode, and inside
/// daemon processes): the [`WsgiRunner`] of wsgi-interp.
pub struct EmbeddedRunner {
    runtime: Arc<PythonRuntime>,
    /// The (application group, script) pairs that run in the main
    /// interpreter instead (`WSGIApplicationGroupFallback`).
    fallen_back: std::sync::Mutex<std::collections::HashSet<(String, std::path::PathBuf)>>,
}

impl EmbeddedRunner {
    /// A runner over an initialised runtime.
    pub fn new(runtime: Arc<PythonRuntime>) -> EmbeddedRunner {
        EmbeddedRunner { runtime, fallen_back: Default::default() }
    }

    /// The runner of a daemon process: Python initialised from `config`
    /// (see [`crate::PythonConfig::for_daemon_process`]), then `preloads`
    /// (script, application group as configured, `%{GLOBAL}` for the main
    /// interpreter) imported, as mod_wsgi does when a daemon process starts.
    pub fn for_daemon_process(
        config: crate::PythonConfig,
        preloads: &[(std::path::PathBuf, String)],
        log: &dyn ErrorLog,
    ) -> Result<EmbeddedRunner, crate::InterpError> {
        let runner = EmbeddedRunner::new(PythonRuntime::initialize(config)?);
        runner.preload_all(preloads, log);
        Ok(runner)
    }

    /// Imports each (script, application group as configured) of
    /// `preloads`, `%{GLOBAL}` naming the main interpreter; failures are
    /// logged.
    pub fn preload_all(&self, preloads: &[(std::path::PathBuf, String)], log: &dyn ErrorLog) {
        for (script, group) in preloads {
            let group = if group == wsgi_config::directives::GLOBAL_GROUP { "" } else { group.as_str() };
            self.preload(script, group, log);
        }
    }

    /// The runtime the runner uses.
    pub(crate) fn runtime(&self) -> &Arc<PythonRuntime> {
        &self.runtime
    }

    /// Imports `script` into `application_group` ahead of any request
    /// (`WSGIImportScript`, and script aliases that name both groups).
    pub fn preload(&self, script: &std::path::Path, application_group: &str, log: &dyn ErrorLog) -> bool {
        let interp = match self.runtime.interpreter(application_group) {
            Ok(interp) => interp,
            Err(e) => {
                log.log(LogLevel::Error, &format!("mod_wsgi: cannot create interpreter '{application_group}': {e}"));
                return false;
            }
        };
        let _entered = interp.enter();
        let mut scripts = interp.lock_scripts();
        // SAFETY: we hold this interpreter's GIL.
        match unsafe { scripts.module(script, false) } {
            Ok(_) => true,
            Err(e) => {
                drop(scripts);
                match refused_module(&interp, &e, log) {
                    Some(module) => log.log(LogLevel::Error, &refusal_message(script, &interp.group, &module)),
                    None => report_load_error(&interp, script, "", e, log),
                }
                false
            }
        }
    }
}

/// What to do with the response once the GIL is released.
enum After {
    Finish,
    Fail,
    /// The request was interrupted by `RequestTimeout` (interrupt-timeout).
    TimedOut,
    /// The script (or its callable) did not load.
    NotLoaded,
    /// The script did not load because it imports an extension module that
    /// refuses this sub-interpreter; the request is untouched.
    Refused {
        module: String,
        environ: Environ,
    },
    ClientGone,
}

impl EmbeddedRunner {
    /// Runs the request in the interpreter of `group`.
    fn run_in(
        &self,
        group: &str,
        target: &AppTarget,
        environ: Environ,
        body: &mut dyn Read,
        response: &mut ResponseWriter<'_>,
        log: &dyn ErrorLog,
    ) -> After {
        match self.runtime.interpreter(group) {
            Ok(interp) => {
                let _entered = interp.enter();
                // SAFETY: we hold the interpreter's GIL for the whole call;
                // every Python object made inside is dropped before leaving.
                unsafe { run_app(&interp, target, environ, body, response, log) }
            }
            Err(e) => {
                log.log(
                    LogLevel::Error,
                    &format!("mod_wsgi: cannot create interpreter for application group '{group}': {e}"),
                );
                After::Fail
            }
        }
    }

    /// Runs the request in its application group's interpreter, or in the
    /// main one where `WSGIApplicationGroupFallback` moved the script.
    fn run_with_fallback(
        &self,
        target: &AppTarget,
        mut environ: Environ,
        body: &mut dyn Read,
        response: &mut ResponseWriter<'_>,
        log: &dyn ErrorLog,
    ) -> After {
        let fallback = self.runtime.config().application_group_fallback;
        let key = || (target.application_group.clone(), target.script.clone());
        let moved = fallback && self.fallen_back.lock().unwrap_or_else(|e| e.into_inner()).contains(&key());
        let group = if moved { "" } else { target.application_group.as_str() };
        if moved {
            environ.set_str("mod_wsgi.application_group", "");
        }
        match self.run_in(group, target, environ, body, response, log) {
            After::Refused { module, mut environ } if fallback => {
                log.log(
                    LogLevel::Warn,
                    &format!(
                        "mod_wsgi: '{}' imports the extension module '{module}', which does not support \
                         sub-interpreters: it runs in the main interpreter (%{{GLOBAL}}) instead of application \
                         group '{}', as WSGIApplicationGroupFallback says",
                        target.script.display(),
                        target.application_group
                    ),
                );
                self.fallen_back.lock().unwrap_or_else(|e| e.into_inner()).insert(key());
                environ.set_str("mod_wsgi.application_group", "");
                self.run_in("", target, environ, body, response, log)
            }
            After::Refused { module, .. } => {
                log.log(LogLevel::Error, &refusal_message(&target.script, &target.application_group, &module));
                After::NotLoaded
            }
            after => after,
        }
    }
}

impl WsgiRunner for EmbeddedRunner {
    fn run(
        &self,
        target: &AppTarget,
        environ: Environ,
        body: &mut dyn Read,
        response: &mut ResponseWriter<'_>,
        log: &dyn ErrorLog,
    ) -> RunOutcome {
        match self.run_with_fallback(target, environ, body, response, log) {
            After::Finish => match response.finish() {
                Ok(summary) => {
                    if summary.is_short(response.discards_body()) {
                        log.log(
                            LogLevel::Warn,
                            &format!(
                                "mod_wsgi: response from '{}' truncated: {} of {} bytes of Content-Length sent",
                                target.script.display(),
                                summary.body_bytes,
                                summary.declared_length.unwrap_or(0)
                            ),
                        );
                    }
                    RunOutcome::Completed
                }
                Err(WriteError::NotStarted) => {
                    log.log(
                        LogLevel::Error,
                        &format!(
                            "mod_wsgi: application in '{}' returned without calling start_response()",
                            target.script.display()
                        ),
                    );
                    let _ = response.fail();
                    RunOutcome::Failed
                }
                Err(WriteError::Client(_)) => RunOutcome::ClientGone,
                Err(WriteError::Complete) => RunOutcome::Completed,
            },
            After::Fail => {
                let _ = response.fail();
                RunOutcome::Failed
            }
            // Unwound in time: 504, as mod_wsgi answers, and the process
            // serves on.
            After::TimedOut if !response.head_sent() => match response.respond_error(504) {
                Ok(()) => RunOutcome::Completed,
                Err(_) => RunOutcome::ClientGone,
            },
            After::TimedOut => {
                let _ = response.fail();
                RunOutcome::Failed
            }
            After::NotLoaded | After::Refused { .. } => {
                let _ = response.fail();
                RunOutcome::NotLoaded
            }
            After::ClientGone => RunOutcome::ClientGone,
        }
    }

    fn probe(&self) {
        // Entering the main interpreter takes the GIL; a thread that never
        // releases it keeps this waiting.
        let _entered = self.runtime.main_interpreter().enter();
    }

    fn stop(&self, reason: &str, timeout: std::time::Duration) {
        self.runtime.stop(reason, timeout);
    }

    fn interrupt(&self, thread: u64, application_group: &str) -> bool {
        let Ok(interp) = self.runtime.interpreter(application_group) else { return false };
        let _entered = interp.enter();
        // SAFETY: we hold the interpreter's GIL.
        unsafe { interp.api.interrupt(thread) }
    }
}

pub(crate) fn report_load_error(
    interp: &Interpreter,
    script: &std::path::Path,
    callable: &str,
    error: LoadError,
    log: &dyn ErrorLog,
) {
    let script = script.display();
    let message = match error {
        LoadError::Unreadable(why) => format!("mod_wsgi: Target WSGI script '{script}' cannot be loaded: {why}"),
        LoadError::NoCallable => {
            format!("mod_wsgi: Target WSGI script '{script}' does not contain WSGI application '{callable}'.")
        }
        LoadError::Import(e) => {
            let mut message = format!(
                "mod_wsgi: Failed to exec Python script file '{script}'.\n\
                 mod_wsgi: Exception occurred processing WSGI script '{script}'.\n{}",
                e.traceback
            );
            if e.is_import_error && !interp.is_main() {
                message.push_str(&format!(
                    "\nmod_wsgi: The import failed in the sub-interpreter of application group '{}'. \
                     Some extension modules only work in the main interpreter: try WSGIApplicationGroup %{{GLOBAL}}.",
                    interp.group
                ));
            }
            message
        }
    };
    log.log(LogLevel::Error, &message);
}

/// The extension module `interp`, a sub-interpreter, refused to load,
/// when that is why the script did not load; its traceback then goes to
/// the debug level, as the one line that names the module says enough.
fn refused_module(interp: &Interpreter, error: &LoadError, log: &dyn ErrorLog) -> Option<String> {
    let LoadError::Import(e) = error else { return None };
    let module = refused_extension(&e.traceback).filter(|_| !interp.is_main())?;
    log.log(LogLevel::Debug, &e.traceback);
    Some(module.to_string())
}

/// The extension module a sub-interpreter refused, from the traceback of
/// the `ImportError` CPython raises (3.12 and later) for a module that does
/// not declare support for such interpreters.
fn refused_extension(traceback: &str) -> Option<&str> {
    const REFUSED: &str = " does not support loading in subinterpreters";
    let line = traceback.lines().rev().find(|line| line.contains(REFUSED))?;
    let before = &line[..line.find(REFUSED)?];
    before.rsplit("module ").next().filter(|name| !name.is_empty() && !name.contains(' '))
}

/// The one line that says an application cannot load in its application
/// group, and what to do about it.
fn refusal_message(script: &std::path::Path, group: &str, module: &str) -> String {
    format!(
        "mod_wsgi: '{}' cannot load in application group '{group}': the extension module '{module}' does not \
         support sub-interpreters; run it in the main interpreter with WSGIApplicationGroup %{{GLOBAL}}, or \
         set WSGIApplicationGroupFallback %{{GLOBAL}}",
        script.display()
    )
}

fn report_exception(target: &AppTarget, error: &PythonError, log: &dyn ErrorLog) {
    log.log(
        LogLevel::Error,
        &format!(
            "mod_wsgi: Exception occurred processing WSGI script '{}'.\n{}",
            target.script.display(),
            error.traceback
        ),
    );
}

/// Interned `str` objects for the environ keys and values that are
/// `&'static str` in the Rust environ (the keys but the `HTTP_*` ones of
/// uncommon fields, and constant values), found by the address of their
/// text: no hashing or comparing of the text itself. Other strings are
/// built per request.
#[derive(Default)]
pub(crate) struct KeyCache {
    /// A direct-mapped table in front of `keys`, indexed by bits of the
    /// address: a request's ~60 lookups mostly end in one probe here
    /// (empty, and skipped, in a cache made for one request).
    recent: Vec<Option<((usize, usize), Obj)>>,
    /// Every constant seen, for what `recent` lost to a collision.
    keys: HashMap<(usize, usize), Obj, BuildHasherDefault<FnvHasher>>,
}

/// Slots of [`KeyCache::recent`]: a power of two, several times the
/// constants a site's requests use.
const RECENT_SLOTS: usize = 512;

impl KeyCache {
    /// A cache that an interpreter keeps across requests.
    pub(crate) fn shared() -> KeyCache {
        KeyCache { recent: std::iter::repeat_with(|| None).take(RECENT_SLOTS).collect(), keys: HashMap::default() }
    }

    /// The `str` object for an environ key.
    ///
    /// # Safety
    /// The GIL of the interpreter owning the cache is held.
    // The Cow itself is the point: only a borrowed key has a 'static address.
    #[allow(clippy::ptr_arg)]
    unsafe fn get(&mut self, key: &Cow<'static, str>) -> Option<Obj> {
        let Cow::Borrowed(text) = key else {
            // SAFETY: the GIL is held (caller).
            return unsafe { ffi::latin1_str(key) };
        };
        let identity = (text.as_ptr() as usize, text.len());
        // Constants are at least byte-aligned and packed: the low bits
        // differ most between them.
        let slot = self.recent.get_mut((identity.0 ^ (identity.0 >> 9)) % RECENT_SLOTS);
        if let Some(Some((seen, obj))) = slot.as_deref() {
            if *seen == identity {
                return Some(obj.clone());
            }
        }
        let obj = match self.keys.get(&identity) {
            Some(obj) => obj.clone(),
            None => {
                // SAFETY: the GIL is held; InternInPlace may replace the
                // reference.
                let obj = unsafe {
                    let mut ptr = ffi::latin1_str(text)?.into_ptr();
                    py::PyUnicode_InternInPlace(&mut ptr);
                    Obj::from_owned(ptr)?
                };
                self.keys.insert(identity, obj.clone());
                obj
            }
        };
        if let Some(slot) = slot {
            *slot = Some((identity, obj.clone()));
        }
        Some(obj)
    }
}

// SAFETY: only used by a thread holding the owning interpreter's GIL.
unsafe impl Send for KeyCache {}

/// FNV-1a: a fast hash for short keys we produce ourselves.
#[derive(Default)]
pub(crate) struct FnvHasher(u64);

impl Hasher for FnvHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut hash = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = hash;
    }

    // Addresses (the key cache's keys) are mixed whole rather than byte by
    // byte: one multiply instead of eight.
    fn write_usize(&mut self, n: usize) {
        let mixed = (self.0 ^ n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = mixed ^ (mixed >> 29);
    }
}

/// Builds the environ dict, adding the per-request objects.
pub(crate) unsafe fn environ_dict(
    interp: &Interpreter,
    environ: Environ,
    input: &Obj,
    errors: &Obj,
    file_wrapper: &Obj,
) -> Option<Obj> {
    // SAFETY: the GIL is held (caller); every new reference is owned by an
    // Obj; the key cache lock is never held across a GIL release.
    unsafe {
        let dict = Obj::from_owned(ffi::_PyDict_NewPresized(environ.entries.len() as py::Py_ssize_t + 3))?;
        // Building values may run Python code (a collection's finalizers) that
        // releases the GIL; a thread then must not wait for this lock while
        // holding the GIL, so a busy cache is simply bypassed.
        let mut local = KeyCache::default();
        let mut cached = interp.keys.try_lock().ok();
        let keys = match cached.as_deref_mut() {
            Some(keys) => keys,
            None => &mut local,
        };
        for (key, value) in &environ.entries {
            let key = keys.get(key)?;
            let value = match value {
                // A constant value's str is kept, as a key's is.
                EnvValue::Str(s) => keys.get(s)?,
                EnvValue::Bool(b) => Obj::from_owned(py::PyBool_FromLong(i64::from(*b) as _))?,
                EnvValue::Int(n) => Obj::from_owned(py::PyLong_FromLongLong(*n))?,
                EnvValue::Tuple(items) => {
                    let tuple = Obj::from_owned(py::PyTuple_New(items.len() as py::Py_ssize_t))?;
                    for (i, n) in items.iter().enumerate() {
                        // PyTuple_SetItem steals the new reference.
                        py::PyTuple_SetItem(tuple.as_ptr(), i as py::Py_ssize_t, py::PyLong_FromLongLong(*n));
                    }
                    tuple
                }
            };
            if py::PyDict_SetItem(dict.as_ptr(), key.as_ptr(), value.as_ptr()) != 0 {
                return None;
            }
        }
        // Cached like the other constant keys (PyDict_SetItemString would
        // build and intern each per request).
        for (key, value) in [("wsgi.input", input), ("wsgi.errors", errors), ("wsgi.file_wrapper", file_wrapper)] {
            let key = keys.get(&Cow::Borrowed(key))?;
            if py::PyDict_SetItem(dict.as_ptr(), key.as_ptr(), value.as_ptr()) != 0 {
                return None;
            }
        }
        Some(dict)
    }
}

/// Runs the application and produces the body; returns what to do once the
/// GIL is released.
///
/// # Safety
/// The GIL of `interp` is held by this thread.
unsafe fn run_app(
    interp: &Interpreter,
    target: &AppTarget,
    environ: Environ,
    body: &mut dyn Read,
    response: &mut ResponseWriter<'_>,
    log: &dyn ErrorLog,
) -> After {
    // SAFETY: the GIL is held (caller). The context lives on this stack
    // frame and every object pointing at it is detached before returning.
    unsafe {
        interp.api.withdraw_interrupt();
        // Registered before the script loads: code run at import sees the
        // request, as under mod_wsgi.
        let mut request = interp.api.begin(&environ);
        let app = {
            let mut scripts = interp.lock_scripts();
            scripts.callable(&target.script, &target.callable, target.reload_on_change, target.script_mtime_us)
        };
        let app = match app {
            Ok(app) => app,
            Err(e) => {
                // A refusal is reported by the caller, which may instead
                // run the script in the main interpreter.
                let refused = refused_module(interp, &e, log);
                if refused.is_none() {
                    report_load_error(interp, &target.script, &target.callable, e, log);
                }
                if let Some(request) = request {
                    interp.api.end(request, Default::default());
                }
                return match refused {
                    Some(module) => After::Refused { module, environ },
                    None => After::NotLoaded,
                };
            }
        };
        let mut ctx = RequestCtx::new(body, response, log);
        let ctx_ptr: *mut RequestCtx = &mut ctx;
        let helpers = &interp.helpers;
        let objects = (
            HelperTypes::instance(&helpers.start_response, ctx_ptr),
            HelperTypes::instance(&helpers.input, ctx_ptr),
            HelperTypes::instance(&helpers.errors, ctx_ptr),
        );
        let (Some(start_response), Some(input), Some(errors)) = objects else {
            report_exception(target, &ffi::take_exception(), log);
            if let Some(request) = request {
                interp.api.end(request, (*ctx_ptr).io);
            }
            return After::Fail;
        };
        let after = match environ_dict(interp, environ, &input, &errors, &helpers.file_wrapper) {
            Some(dict) => {
                let (app, given_start_response) = match request.as_mut() {
                    Some(active) if interp.api.has_subscribers() => {
                        interp.api.request_started(&app, &dict, &start_response, active)
                    }
                    _ => (app, start_response.clone()),
                };
                let call =
                    AppCall { interp, target, request: request.as_ref(), ctx: ctx_ptr, log, timed_out: false.into() };
                match call.call_and_iterate(&app, &dict, &given_start_response) {
                    After::Fail if call.timed_out.get() => After::TimedOut,
                    after => after,
                }
            }
            None => {
                AppCall { interp, target, request: request.as_ref(), ctx: ctx_ptr, log, timed_out: false.into() }
                    .report_exception();
                After::Fail
            }
        };
        (*ctx_ptr).flush_errors();
        interp.api.withdraw_interrupt();
        if let Some(request) = request {
            interp.api.end(request, (*ctx_ptr).io);
        }
        for obj in [&start_response, &input, &errors] {
            HelperTypes::detach(obj);
        }
        // An application that caught the write error still lost its client.
        if (*ctx_ptr).client_gone && matches!(after, After::Finish) {
            return After::ClientGone;
        }
        after
    }
}

/// One application call: what its steps need to report failures and
/// reach the request.
struct AppCall<'a> {
    interp: &'a Interpreter,
    target: &'a AppTarget,
    request: Option<&'a ActiveRequest>,
    /// A raw pointer: Python callbacks reach the same context while the
    /// application runs, so no `&mut` to it may be held across a call into
    /// Python; references are made only for the moment of each write.
    ctx: *mut RequestCtx,
    log: &'a dyn ErrorLog,
    /// Set when a failure was `RequestTimeout` (interrupt-timeout).
    timed_out: std::cell::Cell<bool>,
}

impl AppCall<'_> {
    /// Logs the exception now set, after publishing `request_exception`
    /// when the events are subscribed.
    ///
    /// # Safety
    /// The GIL is held and an exception is set.
    unsafe fn report_exception(&self) {
        // SAFETY: as the caller promises.
        if unsafe { self.interp.api.timed_out() } {
            self.timed_out.set(true);
        }
        // SAFETY: as the caller promises.
        let error = unsafe {
            match self.request {
                Some(request) if self.interp.api.has_subscribers() => self.interp.api.request_exception(request),
                _ => ffi::take_exception(),
            }
        };
        report_exception(self.target, &error, self.log);
    }

    /// Calls the application, sends its iterable, and always calls
    /// `close()`.
    ///
    /// # Safety
    /// The GIL is held.
    unsafe fn call_and_iterate(&self, app: &Obj, environ: &Obj, start_response: &Obj) -> After {
        // SAFETY: the GIL is held (caller).
        unsafe {
            let result = py::PyObject_CallFunctionObjArgs(
                app.as_ptr(),
                environ.as_ptr(),
                start_response.as_ptr(),
                std::ptr::null_mut::<py::PyObject>(),
            );
            let Some(result) = Obj::from_owned(result) else {
                self.report_exception();
                return After::Fail;
            };
            let mut after = self.send_iterable(&result);
            // Lists and tuples, the common case, have no close(); asking them
            // would raise and discard an AttributeError on every request.
            let plain = py::PyList_CheckExact(result.as_ptr()) != 0 || py::PyTuple_CheckExact(result.as_ptr()) != 0;
            if !plain && py::PyObject_HasAttrString(result.as_ptr(), c"close".as_ptr()) != 0 {
                let closed = py::PyObject_CallMethod(result.as_ptr(), c"close".as_ptr(), std::ptr::null());
                if Obj::from_owned(closed).is_none() {
                    self.report_exception();
                    if matches!(after, After::Finish) {
                        after = After::Fail;
                    }
                }
            }
            after
        }
    }

    /// Sends the application's iterable.
    ///
    /// # Safety
    /// The GIL is held.
    unsafe fn send_iterable(&self, result: &Obj) -> After {
        let (ctx, target, log) = (self.ctx, self.target, self.log);
        // SAFETY: the GIL is held (caller).
        unsafe {
            if let Some((fd, offset)) = self.interp.helpers.wrapped_file(result.as_ptr()) {
                if let Some(after) = send_wrapped_file(fd, offset, ctx) {
                    return after;
                }
            }
            // Items of a list or tuple are all there: send them as one piece.
            // Those of any other iterable may be far apart in time, so each is
            // pushed to the client as soon as it is produced.
            let flush_each =
                py::PyList_CheckExact(result.as_ptr()) == 0 && py::PyTuple_CheckExact(result.as_ptr()) == 0;
            let Some(iter) = Obj::from_owned(py::PyObject_GetIter(result.as_ptr())) else {
                self.report_exception();
                return After::Fail;
            };
            loop {
                let Some(item) = Obj::from_owned(py::PyIter_Next(iter.as_ptr())) else {
                    if !py::PyErr_Occurred().is_null() {
                        self.report_exception();
                        return After::Fail;
                    }
                    return After::Finish;
                };
                let Some(data) = ffi::bytes_data(item.as_ptr()) else {
                    let kind = (*py::Py_TYPE(item.as_ptr())).tp_name;
                    let kind = std::ffi::CStr::from_ptr(kind).to_string_lossy();
                    log.log(
                        LogLevel::Error,
                        &format!(
                            "mod_wsgi: Exception occurred processing WSGI script '{}'.\nTypeError: sequence of byte string values expected, value of type {kind} found",
                            target.script.display()
                        ),
                    );
                    return After::Fail;
                };
                let written = if flush_each { (*ctx).write_and_flush(data) } else { (*ctx).write_body(data) };
                match written {
                    Ok(()) => {}
                    Err(WriteError::Client(_)) => return After::ClientGone,
                    Err(WriteError::Complete) => return After::Finish,
                    Err(WriteError::NotStarted) => {
                        log.log(
                            LogLevel::Error,
                            &format!(
                                "mod_wsgi: application in '{}' produced body data before calling start_response()",
                                target.script.display()
                            ),
                        );
                        return After::Fail;
                    }
                }
            }
        }
    }
}

/// The zero-copy path for `wsgi.file_wrapper` around a real file: from the
/// file's current offset, bounded by Content-Length. `None` when the
/// descriptor is not a regular file (then the wrapper is iterated).
unsafe fn send_wrapped_file(fd: i32, offset: u64, ctx: *mut RequestCtx) -> Option<After> {
    // SAFETY: `fd` is open (the file object holds it for the duration); the
    // File is never dropped, so the descriptor stays the application's.
    let file = ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
    let metadata = file.metadata().ok()?;
    if !metadata.is_file() {
        return None;
    }
    // SAFETY: no Python code runs while this reference lives.
    let result = unsafe { (*ctx).send_file(&file, offset) };
    Some(match result {
        Ok(_) => After::Finish,
        Err(WriteError::Client(_)) => After::ClientGone,
        Err(WriteError::Complete) => After::Finish,
        Err(WriteError::NotStarted) => After::Fail,
    })
}

impl RequestCtx {
    fn send_file(&mut self, file: &std::fs::File, offset: u64) -> Result<u64, WriteError> {
        let writer = self.writer_ptr();
        let started = std::time::Instant::now();
        // SAFETY: the writer is valid while the context is attached; no
        // Python object is touched without the GIL.
        let sent = without_gil(|| unsafe { (*writer).send_file(file, offset, None) });
        if let Ok(n) = sent {
            self.io.wrote(n as usize, started);
        }
        sent
    }
}

#[cfg(test)]
mod refusal_tests {
    use super::refused_extension;

    #[test]
    fn the_refused_module_is_read_from_cpythons_import_error() {
        let traceback = "Traceback (most recent call last):\n  File \"/app.wsgi\", line 1, in <module>\n    \
                         import psycopg2\nImportError: module _psycopg does not support loading in subinterpreters";
        assert_eq!(refused_extension(traceback), Some("_psycopg"));
        assert_eq!(refused_extension("ImportError: No module named 'x'"), None);
    }
}
