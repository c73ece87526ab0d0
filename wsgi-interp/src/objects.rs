//! The Python objects a request needs: `start_response` (with its `write`),
//! `wsgi.input`, `wsgi.errors` and `wsgi.file_wrapper`; and for access and
//! auth scripts, the object whose bound methods are `mod_ssl.is_https` and
//! `mod_ssl.var_lookup`.
//!
//! They are heap types created in every interpreter (never shared through
//! Rust statics, which would tie them to one interpreter). Each instance
//! points at the [`RequestCtx`] of the request it belongs to; the pointer is
//! cleared when the request ends, so an object an application keeps beyond
//! its request raises instead of touching freed memory.

use std::io::Read;
use std::os::raw::{c_char, c_int, c_void};
use std::ptr;
use std::time::Instant;

use pyo3_ffi as py;
use wsgi_core::app::SslLookup;
use wsgi_core::body::{InputBuffer, ReadFn, READ_CHUNK};
use wsgi_core::response::{StartResponseError, WriteError};
use wsgi_core::{ErrorLog, LogLevel, ResponseWriter};

use crate::api::IoStats;
use crate::ffi::{self, Obj, PythonError};
use crate::runtime::without_gil;

/// The state one request's objects share. Lives on the runner's stack for
/// the duration of the call; the objects point at it.
pub(crate) struct RequestCtx {
    body: *mut (dyn Read + 'static),
    writer: *mut ResponseWriter<'static>,
    log: *const (dyn ErrorLog + 'static),
    /// The front end's TLS facts, for `mod_ssl.*` (auth scripts only).
    ssl: Option<*const (dyn SslLookup + 'static)>,
    /// Body bytes read from the client but not yet handed to Python.
    input: InputBuffer,
    /// A partial line written to `wsgi.errors`.
    error_line: String,
    /// Set when writing to the client failed.
    pub(crate) client_gone: bool,
    /// The thread running the request: the only one allowed to use the
    /// context (another Python thread could otherwise reach the request's
    /// body and writer concurrently, or after they are gone).
    thread: std::thread::ThreadId,
    /// Reads and writes so far, for `request_finished`.
    pub(crate) io: IoStats,
}

impl RequestCtx {
    /// A context over the request's parts. The caller must keep them alive
    /// and unmoved until every object pointing here is detached.
    pub(crate) fn new(body: &mut dyn Read, writer: &mut ResponseWriter<'_>, log: &dyn ErrorLog) -> RequestCtx {
        let body: *mut (dyn Read + '_) = body;
        let writer: *mut ResponseWriter<'_> = writer;
        let log: *const (dyn ErrorLog + '_) = log;
        RequestCtx {
            // SAFETY: erasing the lifetime is sound: `RequestCtx` is only
            // reachable through objects that `detach` disconnects before
            // the borrowed parts go out of scope (see `call::run_app`).
            body: unsafe { std::mem::transmute::<*mut (dyn Read + '_), *mut (dyn Read + 'static)>(body) },
            writer: writer.cast(),
            // SAFETY: as for `body`.
            log: unsafe { std::mem::transmute::<*const (dyn ErrorLog + '_), *const (dyn ErrorLog + 'static)>(log) },
            ssl: None,
            input: InputBuffer::new(),
            error_line: String::new(),
            client_gone: false,
            thread: std::thread::current().id(),
            io: IoStats::default(),
        }
    }

    /// Gives the context's objects the front end's TLS facts. The caller
    /// keeps `ssl` alive and unmoved until every object is detached, as for
    /// the parts given to [`RequestCtx::new`].
    pub(crate) fn set_ssl(&mut self, ssl: &dyn SslLookup) {
        let ssl: *const (dyn SslLookup + '_) = ssl;
        // SAFETY: erasing the lifetime is sound: as in `new`, the pointer is only
        // reached through objects detached before `ssl` goes away.
        let ssl = unsafe { std::mem::transmute::<*const (dyn SslLookup + '_), *const (dyn SslLookup + 'static)>(ssl) };
        self.ssl = Some(ssl);
    }

    fn ssl(&self) -> Option<&dyn SslLookup> {
        // SAFETY: valid while the context is attached (see `set_ssl`).
        self.ssl.map(|ssl| unsafe { &*ssl })
    }

    fn writer(&mut self) -> &mut ResponseWriter<'static> {
        // SAFETY: valid while the context is attached (see `new`).
        unsafe { &mut *self.writer }
    }

    fn log(&self) -> &dyn ErrorLog {
        // SAFETY: valid while the context is attached (see `new`).
        unsafe { &*self.log }
    }

    /// Buffered body bytes not yet consumed.
    fn buffered(&self) -> &[u8] {
        self.input.buffered()
    }

    /// Runs `f` on the body buffer with the function that reads the body:
    /// without the GIL, counted in the request's I/O statistics.
    fn with_body<T>(&mut self, f: impl FnOnce(&mut InputBuffer, &mut ReadFn<'_>) -> T) -> T {
        let body = self.body;
        let io = &mut self.io;
        let mut read = |dst: &mut [u8]| {
            let started = Instant::now();
            let n = without_gil(|| loop {
                // SAFETY: `body` is valid while attached; the GIL is
                // released only around the blocking read, which touches no
                // Python object, and `dst` is memory no Python code can
                // reach (the buffer's, or the caller's new, unshared bytes
                // object).
                match unsafe { (*body).read(dst) } {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    other => break other,
                }
            })?;
            io.read(n, started);
            Ok(n)
        };
        f(&mut self.input, &mut read)
    }

    /// `read(size)` from the buffer, reading more body as needed.
    fn read(&mut self, limit: usize) -> std::io::Result<Vec<u8>> {
        self.with_body(|input, read| input.read(limit, read))
    }

    /// One line of at most `limit` bytes (with its newline), or less at EOF.
    fn read_line(&mut self, limit: usize) -> std::io::Result<Vec<u8>> {
        self.with_body(|input, read| input.read_line(limit, read))
    }

    /// Reads body straight into `dst` (nothing may be buffered), without
    /// the GIL. `Ok(0)` at EOF.
    fn read_direct(&mut self, dst: &mut [u8]) -> std::io::Result<usize> {
        self.with_body(|input, read| input.read_direct(dst, read))
    }

    /// The response writer (valid while attached).
    pub(crate) fn writer_ptr(&self) -> *mut ResponseWriter<'static> {
        self.writer
    }

    /// Writes `data` to the response without the GIL.
    pub(crate) fn write_body(&mut self, data: &[u8]) -> Result<(), WriteError> {
        let writer = self.writer;
        let started = Instant::now();
        // SAFETY: `writer` is valid while attached; `data` belongs to a bytes
        // object the caller holds a reference to, and bytes are immutable.
        // The GIL is released only around writes that may block.
        let result = unsafe {
            if (*writer).may_block(data.len()) {
                without_gil(|| (*writer).write(data))
            } else {
                (*writer).write(data)
            }
        };
        self.io.wrote(data.len(), started);
        if matches!(result, Err(WriteError::Client(_))) {
            self.client_gone = true;
        }
        result
    }

    /// Pushes what was written to the client, without the GIL if that may
    /// block.
    pub(crate) fn flush(&mut self) -> Result<(), WriteError> {
        let writer = self.writer;
        // SAFETY: `writer` is valid while attached.
        let result = unsafe {
            if (*writer).may_block(0) {
                without_gil(|| (*writer).flush())
            } else {
                (*writer).flush()
            }
        };
        if matches!(result, Err(WriteError::Client(_))) {
            self.client_gone = true;
        }
        result
    }

    /// Writes `data` and pushes it to the client: the `write()` callable
    /// and the items of an iterable whose items may be far apart in time.
    /// An empty chunk sends a pending head but pushes nothing, as mod_wsgi
    /// passes nothing down Apache's filters for it: a flush would commit
    /// the response to chunked framing before its length is known.
    pub(crate) fn write_and_flush(&mut self, data: &[u8]) -> Result<(), WriteError> {
        self.write_body(data)?;
        if data.is_empty() {
            return Ok(());
        }
        self.flush()
    }

    fn log_error_text(&mut self, text: &str) {
        self.error_line.push_str(text);
        while let Some(newline) = self.error_line.find('\n') {
            let line: String = self.error_line.drain(..=newline).collect();
            self.log().log(LogLevel::Error, line.trim_end_matches('\n'));
        }
    }

    pub(crate) fn flush_errors(&mut self) {
        if !self.error_line.is_empty() {
            let line = std::mem::take(&mut self.error_line);
            self.log().log(LogLevel::Error, &line);
        }
    }
}

/// The layout of every helper object: a Python object header, then a
/// pointer to the request context (NULL once detached), then one optional
/// owned reference (the file-like object of a file wrapper).
#[repr(C)]
struct HelperObject {
    ob_base: py::PyObject,
    ctx: *mut RequestCtx,
    filelike: *mut py::PyObject,
    block_size: py::Py_ssize_t,
}

/// The helper types of one interpreter.
pub(crate) struct HelperTypes {
    pub(crate) start_response: Obj,
    pub(crate) input: Obj,
    pub(crate) errors: Obj,
    pub(crate) file_wrapper: Obj,
    /// `mod_wsgi.Auth`: its bound methods are the auth scripts'
    /// `mod_ssl.is_https` and `mod_ssl.var_lookup`.
    pub(crate) auth: Obj,
}

impl HelperTypes {
    /// Creates the types in the interpreter whose GIL is held.
    ///
    /// # Safety
    /// The GIL of the target interpreter is held.
    pub(crate) unsafe fn create() -> Result<HelperTypes, PythonError> {
        // SAFETY: the GIL is held; the specs and their slot arrays are
        // 'static, as PyType_FromSpec requires for names and docs.
        unsafe {
            Ok(HelperTypes {
                start_response: new_type(&raw mut START_RESPONSE_SPEC)?,
                input: new_type(&raw mut INPUT_SPEC)?,
                errors: new_type(&raw mut ERRORS_SPEC)?,
                file_wrapper: new_type(&raw mut FILE_WRAPPER_SPEC)?,
                auth: new_type(&raw mut AUTH_SPEC)?,
            })
        }
    }

    /// A new instance of `kind` attached to `ctx`.
    ///
    /// # Safety
    /// The GIL is held; `kind` is one of this interpreter's helper types.
    pub(crate) unsafe fn instance(kind: &Obj, ctx: *mut RequestCtx) -> Option<Obj> {
        // SAFETY: `kind` is a heap type whose basicsize covers HelperObject.
        unsafe {
            let obj = Obj::from_owned(py::PyType_GenericAlloc(kind.as_ptr().cast(), 0))?;
            let helper = obj.as_ptr().cast::<HelperObject>();
            (*helper).ctx = ctx;
            (*helper).filelike = ptr::null_mut();
            (*helper).block_size = 8192;
            Some(obj)
        }
    }

    /// Disconnects an instance from its request.
    ///
    /// # Safety
    /// The GIL is held; `obj` is a helper instance.
    pub(crate) unsafe fn detach(obj: &Obj) {
        // SAFETY: `obj` is a HelperObject (see `instance`).
        unsafe { (*obj.as_ptr().cast::<HelperObject>()).ctx = ptr::null_mut() }
    }

    /// If `obj` is a file wrapper around a real file, its descriptor and the
    /// file object's position (`tell()`, which accounts for Python's own
    /// buffering, unlike the descriptor's offset).
    ///
    /// # Safety
    /// The GIL is held.
    pub(crate) unsafe fn wrapped_file(&self, obj: *mut py::PyObject) -> Option<(c_int, u64)> {
        // SAFETY: the type check guarantees the HelperObject layout.
        unsafe {
            if py::Py_TYPE(obj).cast::<py::PyObject>() != self.file_wrapper.as_ptr() {
                return None;
            }
            let filelike = (*obj.cast::<HelperObject>()).filelike;
            if filelike.is_null() {
                return None;
            }
            let fileno = Obj::from_owned(py::PyObject_CallMethod(filelike, c"fileno".as_ptr(), ptr::null()));
            let Some(fileno) = fileno else {
                py::PyErr_Clear();
                return None;
            };
            let fd = py::PyLong_AsLong(fileno.as_ptr());
            if fd == -1 && !py::PyErr_Occurred().is_null() {
                py::PyErr_Clear();
                return None;
            }
            let Some(position) = Obj::from_owned(py::PyObject_CallMethod(filelike, c"tell".as_ptr(), ptr::null()))
            else {
                py::PyErr_Clear();
                return None;
            };
            let offset = py::PyLong_AsLongLong(position.as_ptr());
            if offset < 0 {
                py::PyErr_Clear();
                return None;
            }
            Some((c_int::try_from(fd).ok()?, offset as u64))
        }
    }
}

/// Creates a heap type from a spec.
unsafe fn new_type(spec: *mut py::PyType_Spec) -> Result<Obj, PythonError> {
    // SAFETY: `spec` is a valid 'static spec; the GIL is held.
    unsafe { Obj::from_owned(py::PyType_FromSpec(spec)).ok_or_else(|| ffi::take_exception()) }
}

/// The attached context of a helper object, or a Python exception.
unsafe fn ctx_of<'a>(slf: *mut py::PyObject) -> Option<&'a mut RequestCtx> {
    // SAFETY: forwarded (same contract).
    unsafe { attached_ctx(slf, "the request this object belongs to has finished") }
}

/// The attached context of a helper object, or a Python exception:
/// RuntimeError(`finished`) once detached.
unsafe fn attached_ctx<'a>(slf: *mut py::PyObject, finished: &str) -> Option<&'a mut RequestCtx> {
    // SAFETY: `slf` is a HelperObject; a non-NULL ctx is valid while
    // attached, and only the request's own thread gets to use it.
    unsafe {
        let ctx = (*slf.cast::<HelperObject>()).ctx;
        if ctx.is_null() {
            ffi::raise(py::PyExc_RuntimeError, finished);
            return None;
        }
        if (*ctx).thread != std::thread::current().id() {
            ffi::raise(
                py::PyExc_RuntimeError,
                "this request object can only be used from the thread that runs the request",
            );
            return None;
        }
        Some(&mut *ctx)
    }
}

/// Wraps a callback body so that a Rust panic never crosses into C.
pub(crate) fn guarded(f: impl FnOnce() -> *mut py::PyObject) -> *mut py::PyObject {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(_) => {
            // SAFETY: callbacks run with the GIL held.
            unsafe { ffi::raise(py::PyExc_SystemError, "internal error in mod_wsgi-rs (a Rust panic was caught)") };
            ptr::null_mut()
        }
    }
}

fn none() -> *mut py::PyObject {
    // SAFETY: Py_None is immortal-or-refcounted; we return a new reference.
    unsafe {
        let none = py::Py_None();
        py::Py_IncRef(none);
        none
    }
}

/// The optional size argument of read/readline/readlines: a missing
/// argument or None means "no limit" (-1).
unsafe fn size_arg(args: *mut py::PyObject) -> Option<isize> {
    // SAFETY: `args` is the argument tuple of a METH_VARARGS call.
    unsafe {
        let count = py::PyTuple_Size(args);
        if count > 1 {
            ffi::raise(py::PyExc_TypeError, "expected at most one argument");
            return None;
        }
        if count == 0 {
            return Some(-1);
        }
        let arg = py::PyTuple_GetItem(args, 0);
        if arg == py::Py_None() {
            return Some(-1);
        }
        let size = py::PyLong_AsSsize_t(arg);
        if size == -1 && !py::PyErr_Occurred().is_null() {
            return None;
        }
        Some(size)
    }
}

/// Raises OSError for a failed body read. When the request itself was at
/// fault (malformed or too large), the response to a request that then fails
/// carries that status rather than 500.
fn body_error_in(ctx: &mut RequestCtx, e: &std::io::Error) -> *mut py::PyObject {
    if let Some(status) = wsgi_core::body::body_error_status(e) {
        ctx.writer().set_failure_status(status);
    }
    body_error(e)
}

fn body_error(e: &std::io::Error) -> *mut py::PyObject {
    // SAFETY: called from callbacks with the GIL held.
    unsafe { ffi::raise(py::PyExc_OSError, &format!("request body could not be read: {e}")) };
    ptr::null_mut()
}

// --- start_response --------------------------------------------------------

unsafe extern "C" fn start_response_call(
    slf: *mut py::PyObject,
    args: *mut py::PyObject,
    kwargs: *mut py::PyObject,
) -> *mut py::PyObject {
    // SAFETY: called by Python with the GIL held and valid arguments.
    guarded(|| unsafe { start_response(slf, args, kwargs) })
}

unsafe fn start_response(
    slf: *mut py::PyObject,
    args: *mut py::PyObject,
    kwargs: *mut py::PyObject,
) -> *mut py::PyObject {
    // SAFETY: the GIL is held; borrowed references from the tuple are used
    // while the tuple lives.
    unsafe {
        let Some(ctx) = ctx_of(slf) else { return ptr::null_mut() };
        let count = py::PyTuple_Size(args);
        let mut exc_info = if count == 3 { py::PyTuple_GetItem(args, 2) } else { ptr::null_mut() };
        if !kwargs.is_null() {
            let from_kw = py::PyDict_GetItemString(kwargs, c"exc_info".as_ptr());
            if !from_kw.is_null() {
                exc_info = from_kw;
            }
            if py::PyDict_Size(kwargs) > i32::from(!from_kw.is_null()) as isize {
                ffi::raise(py::PyExc_TypeError, "start_response() takes only status, headers and exc_info");
                return ptr::null_mut();
            }
        }
        if !(2..=3).contains(&count) {
            ffi::raise(py::PyExc_TypeError, "start_response() takes 2 or 3 arguments (status, headers, exc_info)");
            return ptr::null_mut();
        }
        if !kwargs.is_null() && count == 3 && !py::PyDict_GetItemString(kwargs, c"exc_info".as_ptr()).is_null() {
            ffi::raise(py::PyExc_TypeError, "start_response() got exc_info both by position and by keyword");
            return ptr::null_mut();
        }
        let with_exc_info = !exc_info.is_null() && exc_info != py::Py_None();
        if with_exc_info && !is_exc_info(exc_info) {
            ffi::raise(py::PyExc_TypeError, "exc_info must be the (type, value, traceback) tuple of sys.exc_info()");
            return ptr::null_mut();
        }
        let Some(status) = ffi::latin1_value(py::PyTuple_GetItem(args, 0)) else {
            ffi::raise(py::PyExc_TypeError, "status must be a str encodable as Latin-1");
            return ptr::null_mut();
        };
        let headers_obj = py::PyTuple_GetItem(args, 1);
        if py::PyList_Check(headers_obj) == 0 {
            ffi::raise(py::PyExc_TypeError, "response headers must be a list");
            return ptr::null_mut();
        }
        let mut headers = Vec::with_capacity(py::PyList_Size(headers_obj) as usize);
        for i in 0..py::PyList_Size(headers_obj) {
            let item = py::PyList_GetItem(headers_obj, i);
            if py::PyTuple_Check(item) == 0 || py::PyTuple_Size(item) != 2 {
                ffi::raise(py::PyExc_TypeError, "each response header must be a (name, value) tuple");
                return ptr::null_mut();
            }
            let name = ffi::latin1_value(py::PyTuple_GetItem(item, 0));
            let value = ffi::latin1_value(py::PyTuple_GetItem(item, 1));
            let (Some(name), Some(value)) = (name, value) else {
                ffi::raise(py::PyExc_TypeError, "response header names and values must be str encodable as Latin-1");
                return ptr::null_mut();
            };
            headers.push((name, value));
        }
        match ctx.writer().start_response(&status, headers, with_exc_info) {
            Ok(()) => write_callable(slf),
            Err(StartResponseError::HeadersSent) => {
                // PEP 3333: re-raise the exception the application passed
                // (already checked to be a real exception triple).
                let value = py::PyTuple_GetItem(exc_info, 1);
                let tb = py::PyTuple_GetItem(exc_info, 2);
                if tb != py::Py_None() {
                    py::PyException_SetTraceback(value, tb);
                }
                py::PyErr_SetObject(py::PyTuple_GetItem(exc_info, 0), value);
                ptr::null_mut()
            }
            Err(e @ StartResponseError::AlreadyCalled) => {
                ffi::raise(py::PyExc_RuntimeError, &e.to_string());
                ptr::null_mut()
            }
            Err(e) => {
                ffi::raise(py::PyExc_ValueError, &e.to_string());
                ptr::null_mut()
            }
        }
    }
}

/// `start_response`'s return value: a `write` callable bound to the same
/// request. Built directly rather than by attribute lookup, which would
/// make a name string and search the type on every request.
unsafe fn write_callable(slf: *mut py::PyObject) -> *mut py::PyObject {
    // SAFETY: WRITE_DEF is 'static; `slf` is kept alive by the new function.
    unsafe { py::PyCFunction_NewEx(&raw mut WRITE_DEF, slf, ptr::null_mut()) }
}

static mut WRITE_DEF: py::PyMethodDef = method(c"write", write_method, py::METH_O);

/// Whether `obj` is an exception triple as `sys.exc_info()` returns it: an
/// exception class, an instance of it, and a traceback (or None). Anything
/// else would corrupt memory when raised.
unsafe fn is_exc_info(obj: *mut py::PyObject) -> bool {
    // SAFETY: the GIL is held; the items are borrowed from the tuple.
    unsafe {
        if py::PyTuple_Check(obj) == 0 || py::PyTuple_Size(obj) != 3 {
            return false;
        }
        let (kind, value, tb) = (py::PyTuple_GetItem(obj, 0), py::PyTuple_GetItem(obj, 1), py::PyTuple_GetItem(obj, 2));
        py::PyExceptionClass_Check(kind) != 0
            && py::PyExceptionInstance_Check(value) != 0
            && py::PyObject_IsInstance(value, kind) == 1
            && (tb == py::Py_None() || py::PyTraceBack_Check(tb) != 0)
    }
}

unsafe extern "C" fn write_method(slf: *mut py::PyObject, data: *mut py::PyObject) -> *mut py::PyObject {
    // SAFETY: called by Python with the GIL held.
    guarded(|| unsafe {
        let Some(ctx) = ctx_of(slf) else { return ptr::null_mut() };
        let Some(bytes) = ffi::bytes_data(data) else {
            ffi::raise(py::PyExc_TypeError, "write() takes bytes");
            return ptr::null_mut();
        };
        match ctx.write_and_flush(bytes) {
            Ok(()) | Err(WriteError::Complete) => none(),
            Err(WriteError::NotStarted) => {
                ffi::raise(py::PyExc_RuntimeError, "write() called before start_response()");
                ptr::null_mut()
            }
            Err(WriteError::Client(e)) => {
                ffi::raise(py::PyExc_OSError, &format!("failed to write response data: {e}"));
                ptr::null_mut()
            }
        }
    })
}

// --- wsgi.input ------------------------------------------------------------

unsafe extern "C" fn input_read(slf: *mut py::PyObject, args: *mut py::PyObject) -> *mut py::PyObject {
    // SAFETY: called by Python with the GIL held.
    guarded(|| unsafe {
        let Some(size) = size_arg(args) else { return ptr::null_mut() };
        let Some(ctx) = ctx_of(slf) else { return ptr::null_mut() };
        let limit = if size < 0 { usize::MAX } else { size as usize };
        if (READ_CHUNK..=DIRECT_READ_LIMIT).contains(&limit) && ctx.buffered().is_empty() {
            return read_into_new_bytes(ctx, limit);
        }
        match ctx.read(limit) {
            Ok(data) => ffi::new_bytes(&data).map_or(ptr::null_mut(), Obj::into_ptr),
            Err(e) => body_error_in(ctx, &e),
        }
    })
}

/// Largest `read(size)` that reads straight into the bytes object it
/// returns (beyond, a body smaller than the size asked for would make a
/// needlessly large allocation).
const DIRECT_READ_LIMIT: usize = 64 * 1024 * 1024;

/// `read(size)` with nothing buffered: the body goes straight into a new
/// bytes object, with no intermediate copy (a large upload is in memory
/// once, not three times).
///
/// # Safety
/// The GIL is held; `ctx` is attached.
unsafe fn read_into_new_bytes(ctx: &mut RequestCtx, size: usize) -> *mut py::PyObject {
    // SAFETY: the GIL is held; a bytes object made from NULL has `size`
    // uninitialised bytes that only this function sees until it returns it,
    // filled (or copies a filled prefix of it).
    unsafe {
        let Some(bytes) = Obj::from_owned(py::PyBytes_FromStringAndSize(ptr::null(), size as py::Py_ssize_t)) else {
            return ptr::null_mut();
        };
        let data = py::PyBytes_AsString(bytes.as_ptr()).cast::<u8>();
        let mut filled = 0;
        while filled < size {
            let dst = std::slice::from_raw_parts_mut(data.add(filled), size - filled);
            match ctx.read_direct(dst) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) => return body_error_in(ctx, &e),
            }
        }
        if filled == size {
            return bytes.into_ptr();
        }
        ffi::new_bytes(std::slice::from_raw_parts(data, filled)).map_or(ptr::null_mut(), Obj::into_ptr)
    }
}

unsafe extern "C" fn input_readline(slf: *mut py::PyObject, args: *mut py::PyObject) -> *mut py::PyObject {
    // SAFETY: called by Python with the GIL held.
    guarded(|| unsafe {
        let Some(size) = size_arg(args) else { return ptr::null_mut() };
        let Some(ctx) = ctx_of(slf) else { return ptr::null_mut() };
        let limit = if size < 0 { usize::MAX } else { size as usize };
        match ctx.read_line(limit) {
            Ok(line) => ffi::new_bytes(&line).map_or(ptr::null_mut(), Obj::into_ptr),
            Err(e) => body_error_in(ctx, &e),
        }
    })
}

unsafe extern "C" fn input_readlines(slf: *mut py::PyObject, args: *mut py::PyObject) -> *mut py::PyObject {
    // SAFETY: called by Python with the GIL held.
    guarded(|| unsafe {
        let Some(hint) = size_arg(args) else { return ptr::null_mut() };
        let Some(ctx) = ctx_of(slf) else { return ptr::null_mut() };
        let Some(list) = Obj::from_owned(py::PyList_New(0)) else { return ptr::null_mut() };
        let mut total = 0usize;
        loop {
            let line = match ctx.read_line(usize::MAX) {
                Ok(line) => line,
                Err(e) => return body_error_in(ctx, &e),
            };
            if line.is_empty() {
                break;
            }
            total += line.len();
            let Some(item) = ffi::new_bytes(&line) else { return ptr::null_mut() };
            if py::PyList_Append(list.as_ptr(), item.as_ptr()) != 0 {
                return ptr::null_mut();
            }
            if hint > 0 && total >= hint as usize {
                break;
            }
        }
        list.into_ptr()
    })
}

unsafe extern "C" fn input_iter(slf: *mut py::PyObject) -> *mut py::PyObject {
    // SAFETY: returns a new reference to self.
    unsafe { py::Py_IncRef(slf) };
    slf
}

unsafe extern "C" fn input_next(slf: *mut py::PyObject) -> *mut py::PyObject {
    // SAFETY: called by Python with the GIL held; NULL without an exception
    // set ends the iteration.
    guarded(|| unsafe {
        let Some(ctx) = ctx_of(slf) else { return ptr::null_mut() };
        match ctx.read_line(usize::MAX) {
            Ok(line) if line.is_empty() => ptr::null_mut(),
            Ok(line) => ffi::new_bytes(&line).map_or(ptr::null_mut(), Obj::into_ptr),
            Err(e) => body_error_in(ctx, &e),
        }
    })
}

// --- wsgi.errors -----------------------------------------------------------

unsafe fn log_text(slf: *mut py::PyObject, text: &str) {
    // SAFETY: `slf` is a HelperObject; the GIL is held.
    unsafe {
        let ctx = (*slf.cast::<HelperObject>()).ctx;
        if ctx.is_null() || (*ctx).thread != std::thread::current().id() {
            // After the request, or from another thread: mod_wsgi sends
            // such output to the main log.
            eprint!("{text}");
        } else {
            (*ctx).log_error_text(text);
        }
    }
}

unsafe extern "C" fn errors_write(slf: *mut py::PyObject, text: *mut py::PyObject) -> *mut py::PyObject {
    // SAFETY: called by Python with the GIL held.
    guarded(|| unsafe {
        let Some(s) = ffi::str_value(text) else {
            ffi::raise(py::PyExc_TypeError, "wsgi.errors.write() takes a str");
            return ptr::null_mut();
        };
        log_text(slf, &s);
        none()
    })
}

unsafe extern "C" fn errors_writelines(slf: *mut py::PyObject, lines: *mut py::PyObject) -> *mut py::PyObject {
    // SAFETY: called by Python with the GIL held.
    guarded(|| unsafe {
        let Some(iter) = Obj::from_owned(py::PyObject_GetIter(lines)) else { return ptr::null_mut() };
        while let Some(item) = Obj::from_owned(py::PyIter_Next(iter.as_ptr())) {
            let Some(s) = ffi::str_value(item.as_ptr()) else {
                ffi::raise(py::PyExc_TypeError, "wsgi.errors.writelines() takes str items");
                return ptr::null_mut();
            };
            log_text(slf, &s);
        }
        if !py::PyErr_Occurred().is_null() {
            return ptr::null_mut();
        }
        none()
    })
}

unsafe extern "C" fn errors_flush(slf: *mut py::PyObject, _: *mut py::PyObject) -> *mut py::PyObject {
    // SAFETY: called by Python with the GIL held.
    guarded(|| unsafe {
        let ctx = (*slf.cast::<HelperObject>()).ctx;
        if !ctx.is_null() && (*ctx).thread == std::thread::current().id() {
            (*ctx).flush_errors();
        }
        none()
    })
}

unsafe extern "C" fn errors_unreadable(_: *mut py::PyObject, _: *mut py::PyObject) -> *mut py::PyObject {
    // SAFETY: called by Python with the GIL held.
    unsafe { ffi::raise(py::PyExc_OSError, "log object is not readable") };
    ptr::null_mut()
}

unsafe extern "C" fn errors_iter(_: *mut py::PyObject) -> *mut py::PyObject {
    // SAFETY: called by Python with the GIL held.
    unsafe { ffi::raise(py::PyExc_OSError, "log object is not readable") };
    ptr::null_mut()
}

// --- wsgi.file_wrapper -----------------------------------------------------

unsafe extern "C" fn file_wrapper_new(
    kind: *mut py::PyTypeObject,
    args: *mut py::PyObject,
    _kwargs: *mut py::PyObject,
) -> *mut py::PyObject {
    // SAFETY: called by Python with the GIL held.
    guarded(|| unsafe {
        let count = py::PyTuple_Size(args);
        if !(1..=2).contains(&count) {
            ffi::raise(py::PyExc_TypeError, "file_wrapper(filelike, block_size=8192)");
            return ptr::null_mut();
        }
        let filelike = py::PyTuple_GetItem(args, 0);
        let mut block_size = 8192;
        if count == 2 {
            block_size = py::PyLong_AsSsize_t(py::PyTuple_GetItem(args, 1));
            if block_size == -1 && !py::PyErr_Occurred().is_null() {
                return ptr::null_mut();
            }
            if block_size <= 0 {
                ffi::raise(py::PyExc_ValueError, "block_size must be positive");
                return ptr::null_mut();
            }
        }
        let Some(obj) = Obj::from_owned(py::PyType_GenericAlloc(kind, 0)) else { return ptr::null_mut() };
        let helper = obj.as_ptr().cast::<HelperObject>();
        py::Py_IncRef(filelike);
        (*helper).filelike = filelike;
        (*helper).ctx = ptr::null_mut();
        (*helper).block_size = block_size;
        obj.into_ptr()
    })
}

unsafe extern "C" fn file_wrapper_next(slf: *mut py::PyObject) -> *mut py::PyObject {
    // SAFETY: called by Python with the GIL held.
    guarded(|| unsafe {
        let helper = slf.cast::<HelperObject>();
        if (*helper).filelike.is_null() {
            return ptr::null_mut();
        }
        let Some(size) = Obj::from_owned(py::PyLong_FromSsize_t((*helper).block_size)) else {
            return ptr::null_mut();
        };
        let Some(name) = ffi::utf8_str("read") else { return ptr::null_mut() };
        let data = py::PyObject_CallMethodObjArgs(
            (*helper).filelike,
            name.as_ptr(),
            size.as_ptr(),
            ptr::null_mut::<py::PyObject>(),
        );
        let Some(data) = Obj::from_owned(data) else { return ptr::null_mut() };
        match py::PyObject_Length(data.as_ptr()) {
            // -1: no length (an exception is set, which propagates).
            0 | -1 => ptr::null_mut(),
            _ => data.into_ptr(),
        }
    })
}

unsafe extern "C" fn file_wrapper_close(slf: *mut py::PyObject, _: *mut py::PyObject) -> *mut py::PyObject {
    // SAFETY: called by Python with the GIL held.
    guarded(|| unsafe {
        let filelike = (*slf.cast::<HelperObject>()).filelike;
        if !filelike.is_null() && py::PyObject_HasAttrString(filelike, c"close".as_ptr()) != 0 {
            return py::PyObject_CallMethod(filelike, c"close".as_ptr(), ptr::null());
        }
        none()
    })
}

unsafe extern "C" fn helper_dealloc(slf: *mut py::PyObject) {
    // SAFETY: Python calls this once when the refcount drops to zero; heap
    // type instances own a reference to their type.
    unsafe {
        let helper = slf.cast::<HelperObject>();
        py::Py_XDECREF((*helper).filelike);
        let kind = py::Py_TYPE(slf);
        if let Some(free) = (*kind).tp_free {
            free(slf.cast::<c_void>());
        }
        py::Py_DecRef(kind.cast());
    }
}

// --- mod_ssl.is_https / mod_ssl.var_lookup ---------------------------------
//
// Bound methods of a `mod_wsgi.Auth` object, as in mod_wsgi: each checks
// that its request is still running before its arguments, and raises what
// mod_wsgi raises.

/// What mod_wsgi raises when a script calls them after its request.
const AUTH_EXPIRED: &str = "request object has expired";

/// The front end's TLS facts behind an attached `mod_wsgi.Auth` object, or
/// a Python exception.
unsafe fn ssl_of<'a>(slf: *mut py::PyObject) -> Option<Option<&'a dyn SslLookup>> {
    // SAFETY: `slf` is a HelperObject (caller); see `attached_ctx`.
    unsafe { attached_ctx(slf, AUTH_EXPIRED).map(|ctx| ctx.ssl()) }
}

/// Raises TypeError unless `args` holds `expected` arguments, worded as
/// `PyArg_ParseTuple` words it for mod_wsgi's methods.
unsafe fn check_arg_count(args: *mut py::PyObject, name: &str, expected: isize) -> bool {
    // SAFETY: `args` is the argument tuple of a METH_VARARGS call.
    let given = unsafe { py::PyTuple_Size(args) };
    if given == expected {
        return true;
    }
    let noun = if expected == 1 { "argument" } else { "arguments" };
    // SAFETY: called from callbacks with the GIL held.
    unsafe { ffi::raise(py::PyExc_TypeError, &format!("{name}() takes exactly {expected} {noun} ({given} given)")) };
    false
}

/// `mod_ssl.is_https()`: 1 or 0 (an int, as mod_wsgi returns).
unsafe extern "C" fn auth_ssl_is_https(slf: *mut py::PyObject, args: *mut py::PyObject) -> *mut py::PyObject {
    // SAFETY: called by Python with the GIL held.
    guarded(|| unsafe {
        let Some(ssl) = ssl_of(slf) else { return ptr::null_mut() };
        if !check_arg_count(args, "ssl_is_https", 0) {
            return ptr::null_mut();
        }
        let https = ssl.is_some_and(|ssl| ssl.is_https());
        py::PyLong_FromLong(std::os::raw::c_long::from(https))
    })
}

/// `mod_ssl.var_lookup(name)`: `name` a `str` of Latin-1 characters or
/// `bytes`; the value as a `str` decoded from Latin-1, or None.
unsafe extern "C" fn auth_ssl_var_lookup(slf: *mut py::PyObject, args: *mut py::PyObject) -> *mut py::PyObject {
    // SAFETY: called by Python with the GIL held; every new reference is
    // owned by an Obj.
    guarded(|| unsafe {
        let Some(ssl) = ssl_of(slf) else { return ptr::null_mut() };
        if !check_arg_count(args, "ssl_var_lookup", 1) {
            return ptr::null_mut();
        }
        let item = py::PyTuple_GetItem(args, 0);
        let encoded;
        let name_obj = if py::PyUnicode_Check(item) != 0 {
            let Some(latin1) = Obj::from_owned(py::PyUnicode_AsLatin1String(item)) else {
                py::PyErr_Clear();
                ffi::raise(
                    py::PyExc_TypeError,
                    "byte string value expected, value containing non 'latin-1' characters found",
                );
                return ptr::null_mut();
            };
            encoded = latin1;
            encoded.as_ptr()
        } else {
            item
        };
        let Some(name) = ffi::bytes_data(name_obj) else {
            let kind = std::ffi::CStr::from_ptr((*py::Py_TYPE(item)).tp_name).to_string_lossy();
            let kind: String = kind.chars().take(200).collect();
            ffi::raise(py::PyExc_TypeError, &format!("byte string value expected, value of type {kind} found"));
            return ptr::null_mut();
        };
        // A NUL ends the name, as it would in C.
        let name = name.split(|&b| b == 0).next().unwrap_or_default();
        match ssl.and_then(|ssl| ssl.var_lookup(name)) {
            Some(value) => {
                py::PyUnicode_DecodeLatin1(value.as_ptr().cast(), value.len() as py::Py_ssize_t, ptr::null())
            }
            None => none(),
        }
    })
}

// --- type specs ------------------------------------------------------------

pub(crate) const fn method(name: &'static std::ffi::CStr, meth: py::PyCFunction, flags: c_int) -> py::PyMethodDef {
    py::PyMethodDef {
        ml_name: name.as_ptr(),
        ml_meth: py::PyMethodDefPointer { PyCFunction: meth },
        ml_flags: flags,
        ml_doc: ptr::null(),
    }
}

const fn slot(slot: c_int, pfunc: *mut c_void) -> py::PyType_Slot {
    py::PyType_Slot { slot, pfunc }
}

const END_SLOT: py::PyType_Slot = py::PyType_Slot { slot: 0, pfunc: ptr::null_mut() };

/// A spec for a helper type. All are immutable (an application cannot
/// patch `__new__` into making half-built objects); only the file wrapper
/// may be instantiated from Python.
const fn spec(name: &'static std::ffi::CStr, slots: *mut py::PyType_Slot, instantiable: bool) -> py::PyType_Spec {
    let mut flags = py::Py_TPFLAGS_DEFAULT | py::Py_TPFLAGS_IMMUTABLETYPE;
    if !instantiable {
        flags |= py::Py_TPFLAGS_DISALLOW_INSTANTIATION;
    }
    py::PyType_Spec {
        name: name.as_ptr() as *const c_char,
        basicsize: std::mem::size_of::<HelperObject>() as c_int,
        itemsize: 0,
        flags: flags as _,
        slots,
    }
}

static mut START_RESPONSE_METHODS: [py::PyMethodDef; 2] =
    [method(c"write", write_method, py::METH_O), py::PyMethodDef::zeroed()];

static mut START_RESPONSE_SLOTS: [py::PyType_Slot; 4] = [
    slot(py::Py_tp_call, start_response_call as *mut c_void),
    slot(py::Py_tp_methods, (&raw mut START_RESPONSE_METHODS).cast()),
    slot(py::Py_tp_dealloc, helper_dealloc as *mut c_void),
    END_SLOT,
];

static mut START_RESPONSE_SPEC: py::PyType_Spec =
    spec(c"mod_wsgi.StartResponse", (&raw mut START_RESPONSE_SLOTS).cast(), false);

static mut INPUT_METHODS: [py::PyMethodDef; 4] = [
    method(c"read", input_read, py::METH_VARARGS),
    method(c"readline", input_readline, py::METH_VARARGS),
    method(c"readlines", input_readlines, py::METH_VARARGS),
    py::PyMethodDef::zeroed(),
];

static mut INPUT_SLOTS: [py::PyType_Slot; 5] = [
    slot(py::Py_tp_methods, (&raw mut INPUT_METHODS).cast()),
    slot(py::Py_tp_iter, input_iter as *mut c_void),
    slot(py::Py_tp_iternext, input_next as *mut c_void),
    slot(py::Py_tp_dealloc, helper_dealloc as *mut c_void),
    END_SLOT,
];

static mut INPUT_SPEC: py::PyType_Spec = spec(c"mod_wsgi.Input", (&raw mut INPUT_SLOTS).cast(), false);

static mut ERRORS_METHODS: [py::PyMethodDef; 7] = [
    method(c"write", errors_write, py::METH_O),
    method(c"writelines", errors_writelines, py::METH_O),
    method(c"flush", errors_flush, py::METH_NOARGS),
    method(c"read", errors_unreadable, py::METH_VARARGS),
    method(c"readline", errors_unreadable, py::METH_VARARGS),
    method(c"readlines", errors_unreadable, py::METH_VARARGS),
    py::PyMethodDef::zeroed(),
];

static mut ERRORS_SLOTS: [py::PyType_Slot; 4] = [
    slot(py::Py_tp_methods, (&raw mut ERRORS_METHODS).cast()),
    slot(py::Py_tp_iter, errors_iter as *mut c_void),
    slot(py::Py_tp_dealloc, helper_dealloc as *mut c_void),
    END_SLOT,
];

static mut ERRORS_SPEC: py::PyType_Spec = spec(c"mod_wsgi.Log", (&raw mut ERRORS_SLOTS).cast(), false);

static mut FILE_WRAPPER_METHODS: [py::PyMethodDef; 2] =
    [method(c"close", file_wrapper_close, py::METH_NOARGS), py::PyMethodDef::zeroed()];

static mut FILE_WRAPPER_SLOTS: [py::PyType_Slot; 6] = [
    slot(py::Py_tp_new, file_wrapper_new as *mut c_void),
    slot(py::Py_tp_methods, (&raw mut FILE_WRAPPER_METHODS).cast()),
    slot(py::Py_tp_iter, input_iter as *mut c_void),
    slot(py::Py_tp_iternext, file_wrapper_next as *mut c_void),
    slot(py::Py_tp_dealloc, helper_dealloc as *mut c_void),
    END_SLOT,
];

static mut FILE_WRAPPER_SPEC: py::PyType_Spec =
    spec(c"mod_wsgi.FileWrapper", (&raw mut FILE_WRAPPER_SLOTS).cast(), true);

static mut AUTH_METHODS: [py::PyMethodDef; 3] = [
    method(c"ssl_is_https", auth_ssl_is_https, py::METH_VARARGS),
    method(c"ssl_var_lookup", auth_ssl_var_lookup, py::METH_VARARGS),
    py::PyMethodDef::zeroed(),
];

static mut AUTH_SLOTS: [py::PyType_Slot; 3] = [
    slot(py::Py_tp_methods, (&raw mut AUTH_METHODS).cast()),
    slot(py::Py_tp_dealloc, helper_dealloc as *mut c_void),
    END_SLOT,
];

static mut AUTH_SPEC: py::PyType_Spec = spec(c"mod_wsgi.Auth", (&raw mut AUTH_SLOTS).cast(), false);
