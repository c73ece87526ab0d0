//! The `mod_wsgi` module of every interpreter (its Python half is
//! `mod_wsgi.py`), the `apache` module under Apache, and the process-wide
//! request counters behind `process_metrics()` and `request_metrics()`.
//!
//! Every request is registered in `active_requests` and for
//! `request_data()`: two dict insertions and two deletions. The events
//! cost nothing until an application subscribes: the server checks the
//! length of `event_callbacks` before building any.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use pyo3_ffi as py;
use wsgi_core::{EnvValue, Environ};

use crate::ffi::{self, Obj, PythonError};
use crate::objects::{guarded, method};
use crate::runtime::{ApacheFacts, ProcessFacts};

const SOURCE: &str = include_str!("mod_wsgi.py");

/// Upper bounds of the time buckets of `request_metrics()`, as mod_wsgi's:
/// 5 ms doubling up to about 41 s, then the rest.
const BUCKETS: usize = 16;

/// The request counters of this process, across its interpreters.
#[derive(Default)]
struct Counters {
    request_count: u64,
    busy_seconds: f64,
    active: u64,
    /// Requests served per request thread (the environ's
    /// `mod_wsgi.thread_id`).
    per_thread: BTreeMap<i64, u64>,
    application_buckets: [u64; BUCKETS],
    application_seconds: f64,
}

/// When the first interpreter of this process was set up: the
/// `restart_time` of `process_metrics()`.
static PROCESS_START: std::sync::OnceLock<SystemTime> = std::sync::OnceLock::new();

static COUNTERS: Mutex<Counters> = Mutex::new(Counters {
    request_count: 0,
    busy_seconds: 0.0,
    active: 0,
    per_thread: BTreeMap::new(),
    application_buckets: [0; BUCKETS],
    application_seconds: 0.0,
});

/// Threads sent a `RequestTimeout` that may not have landed yet.
static INTERRUPTED: Mutex<Vec<u64>> = Mutex::new(Vec::new());
/// How many there are: checked per request without the lock.
static INTERRUPTED_COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The interrupted threads; the count follows the list when the guard
/// drops.
fn interrupted() -> InterruptedGuard {
    InterruptedGuard(INTERRUPTED.lock().unwrap_or_else(|e| e.into_inner()))
}

struct InterruptedGuard(std::sync::MutexGuard<'static, Vec<u64>>);

impl std::ops::Deref for InterruptedGuard {
    type Target = Vec<u64>;
    fn deref(&self) -> &Vec<u64> {
        &self.0
    }
}

impl std::ops::DerefMut for InterruptedGuard {
    fn deref_mut(&mut self) -> &mut Vec<u64> {
        &mut self.0
    }
}

impl Drop for InterruptedGuard {
    fn drop(&mut self) {
        INTERRUPTED_COUNT.store(self.0.len(), std::sync::atomic::Ordering::Relaxed);
    }
}

fn counters() -> std::sync::MutexGuard<'static, Counters> {
    COUNTERS.lock().unwrap_or_else(|e| e.into_inner())
}

fn bucket_of(seconds: f64) -> usize {
    let mut limit = 0.005;
    for bucket in 0..14 {
        if seconds <= limit {
            return bucket;
        }
        limit *= 2.0;
    }
    14
}

fn epoch_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// One worker slot of Apache's scoreboard, as `server_metrics()` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerScore {
    /// The slot's thread number.
    pub thread_num: i32,
    /// The generation of the process that last used it.
    pub generation: i32,
    /// mod_status's letter for its state (`_` ready, `W` writing, ...).
    pub status: char,
    /// Requests it served.
    pub access_count: u64,
    /// Bytes it served.
    pub bytes_served: u64,
    /// When its current or last request started (epoch seconds).
    pub start_time: f64,
    /// When its last request stopped.
    pub stop_time: f64,
    /// When it was last used.
    pub last_used: f64,
    /// The client of its current or last request.
    pub client: String,
    /// That request's line.
    pub request: String,
    /// That request's virtual host.
    pub vhost: String,
}

/// One process slot of Apache's scoreboard.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessScore {
    /// Its pid (0 for an unused slot).
    pub pid: i32,
    /// Its generation.
    pub generation: i32,
    /// Whether it is going down gracefully.
    pub quiescing: bool,
    /// Its worker slots.
    pub workers: Vec<WorkerScore>,
}

/// Apache's scoreboard: what `mod_wsgi.server_metrics()` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Scoreboard {
    /// `ServerLimit`.
    pub server_limit: i32,
    /// `ThreadLimit`.
    pub thread_limit: i32,
    /// The generation of the children that should be serving.
    pub running_generation: i32,
    /// When Apache last (re)started (epoch seconds).
    pub restart_time: f64,
    /// Every process slot.
    pub processes: Vec<ProcessScore>,
}

/// Reads Apache's scoreboard, `None` where there is none.
pub type ScoreboardReader = fn() -> Option<Scoreboard>;

static SCOREBOARD: std::sync::OnceLock<ScoreboardReader> = std::sync::OnceLock::new();

/// Gives `server_metrics()` the scoreboard: the Apache front end calls it
/// before any interpreter asks (once per process; later calls are
/// ignored).
pub fn read_scoreboard_with(reader: ScoreboardReader) {
    let _ = SCOREBOARD.set(reader);
}

/// The `mod_wsgi` module of one interpreter: the objects the server
/// touches per request and at shutdown.
pub(crate) struct ModWsgiModule {
    event_callbacks: Obj,
    active_requests: Obj,
    by_thread: Obj,
    request_started: Obj,
    request_finished: Obj,
    request_exception: Obj,
    process_stopping: Obj,
    /// The `RequestTimeout` exception class.
    request_timeout: Obj,
}

/// A request between [`ModWsgiModule::begin`] and [`ModWsgiModule::end`].
pub(crate) struct ActiveRequest {
    id: Obj,
    thread: Obj,
    data: Obj,
    thread_id: i64,
    started: Instant,
    started_epoch: f64,
    /// This thread's CPU times when the request started, taken only when
    /// the events are subscribed.
    cpu_started: Option<Obj>,
}

/// The input and output of one request, for `request_finished`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IoStats {
    pub(crate) input_reads: u64,
    pub(crate) input_length: u64,
    pub(crate) input_seconds: f64,
    pub(crate) output_writes: u64,
    pub(crate) output_length: u64,
    pub(crate) output_seconds: f64,
}

impl IoStats {
    /// Counts a read of `n` bytes that began at `started`.
    pub(crate) fn read(&mut self, n: usize, started: Instant) {
        self.input_reads += 1;
        self.input_length += n as u64;
        self.input_seconds += started.elapsed().as_secs_f64();
    }

    /// Counts a write of `n` bytes that began at `started`.
    pub(crate) fn wrote(&mut self, n: usize, started: Instant) {
        self.output_writes += 1;
        self.output_length += n as u64;
        self.output_seconds += started.elapsed().as_secs_f64();
    }
}

impl ModWsgiModule {
    /// Creates the module in the current interpreter and registers it in
    /// `sys.modules` (ahead of any package of the same name), with the
    /// `apache` module when `apache` is given.
    ///
    /// # Safety
    /// The GIL of the interpreter is held.
    pub(crate) unsafe fn install(
        process: &ProcessFacts,
        apache: Option<&ApacheFacts>,
        application_group: &str,
        file_wrapper: &Obj,
    ) -> Result<ModWsgiModule, PythonError> {
        let restart_time = *PROCESS_START.get_or_init(SystemTime::now);
        // SAFETY: the GIL is held (caller); references are owned by Obj.
        unsafe {
            let module = new_module(c"mod_wsgi")?;
            let names = PyNames(py::PyModule_GetDict(module.as_ptr()));
            let (major, minor, micro) = wsgi_core::environ_build::MOD_WSGI_VERSION;
            names.set("version", version_tuple([major, minor, micro])?)?;
            let (major, minor, micro) = wsgi_core::environ_build::product_version();
            names.set("product_version", version_tuple([major, minor, micro])?)?;
            names.set("process_group", text(&process.process_group)?)?;
            names.set("application_group", text(application_group)?)?;
            names.set("maximum_processes", int(process.maximum_processes.into())?)?;
            names.set("threads_per_process", int(process.threads_per_process.into())?)?;
            names.set("FileWrapper", file_wrapper.clone())?;
            names.set("_restart_time", float(epoch_seconds(restart_time))?)?;
            names.set("_counters", function(&raw mut COUNTERS_DEF)?)?;
            names.set("_thread_cpu", function(&raw mut THREAD_CPU_DEF)?)?;
            names.set("_scoreboard", function(&raw mut SCOREBOARD_DEF)?)?;
            names.set("_server_metrics", owned(py::PyBool_FromLong(process.server_metrics.into()))?)?;
            let source = CString::new(SOURCE).expect("mod_wsgi.py has no NUL");
            ffi::run_source(&source, names.0)?;
            register(c"mod_wsgi", &module)?;
            if let Some(apache) = apache {
                install_apache(apache, process)?;
            }
            Ok(ModWsgiModule {
                event_callbacks: names.get(c"event_callbacks")?,
                active_requests: names.get(c"active_requests")?,
                by_thread: names.get(c"_by_thread")?,
                request_started: names.get(c"_request_started")?,
                request_finished: names.get(c"_request_finished")?,
                request_exception: names.get(c"_request_exception")?,
                process_stopping: names.get(c"_process_stopping")?,
                request_timeout: names.get(c"RequestTimeout")?,
            })
        }
    }

    /// Raises `RequestTimeout` in this interpreter's thread `thread` (its
    /// `pthread_self`), when it next runs Python; whether it has one.
    ///
    /// # Safety
    /// The GIL of the interpreter is held.
    pub(crate) unsafe fn interrupt(&self, thread: u64) -> bool {
        // SAFETY: the GIL is held (caller); the exception class is owned.
        let set =
            unsafe { py::PyThreadState_SetAsyncExc(thread as std::os::raw::c_long, self.request_timeout.as_ptr()) > 0 };
        if set {
            interrupted().push(thread);
        }
        set
    }

    /// Withdraws a `RequestTimeout` still pending for this thread, which
    /// was meant for a request that ended before it landed: called as a
    /// request starts and ends, so that it never reaches another one.
    ///
    /// # Safety
    /// The GIL of the interpreter is held.
    pub(crate) unsafe fn withdraw_interrupt(&self) {
        if INTERRUPTED_COUNT.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            return;
        }
        // SAFETY: the GIL is held (caller).
        let me = unsafe { py::PyThread_get_thread_ident() } as u64;
        let mut threads = interrupted();
        if let Some(at) = threads.iter().position(|t| *t == me) {
            threads.swap_remove(at);
            // SAFETY: as above; NULL clears the thread's pending exception.
            unsafe { py::PyThreadState_SetAsyncExc(me as std::os::raw::c_long, std::ptr::null_mut()) };
        }
    }

    /// Whether the exception now set is `RequestTimeout`.
    ///
    /// # Safety
    /// The GIL of the interpreter is held.
    pub(crate) unsafe fn timed_out(&self) -> bool {
        // SAFETY: the GIL is held (caller).
        unsafe { py::PyErr_ExceptionMatches(self.request_timeout.as_ptr()) != 0 }
    }

    /// Whether an application subscribed to the events.
    ///
    /// # Safety
    /// The GIL of the interpreter is held.
    pub(crate) unsafe fn has_subscribers(&self) -> bool {
        // SAFETY: the GIL is held (caller); the object is the module's list
        // (an application may rebind the name, not this object).
        unsafe {
            py::PyList_Check(self.event_callbacks.as_ptr()) != 0 && py::PyList_Size(self.event_callbacks.as_ptr()) > 0
        }
    }

    /// Registers a request of this thread: its `request_data()` dict, in
    /// `active_requests` under the environ's `mod_wsgi.request_id`.
    ///
    /// # Safety
    /// The GIL of the interpreter is held.
    pub(crate) unsafe fn begin(&self, environ: &Environ) -> Option<ActiveRequest> {
        let request_id = environ.get_str("mod_wsgi.request_id").unwrap_or_default().to_string();
        let thread_id = match environ.get("mod_wsgi.thread_id") {
            Some(EnvValue::Int(n)) => *n,
            _ => 0,
        };
        // SAFETY: the GIL is held (caller). A failure (out of memory)
        // leaves no exception set: the request runs unregistered.
        let request = unsafe {
            let made = (
                ffi::latin1_str(&request_id),
                Obj::from_owned(py::PyLong_FromUnsignedLong(py::PyThread_get_thread_ident())),
                Obj::from_owned(py::PyDict_New()),
            );
            let (Some(id), Some(thread), Some(data)) = made else {
                py::PyErr_Clear();
                return None;
            };
            py::PyDict_SetItem(self.active_requests.as_ptr(), id.as_ptr(), data.as_ptr());
            py::PyDict_SetItem(self.by_thread.as_ptr(), thread.as_ptr(), data.as_ptr());
            py::PyErr_Clear();
            ActiveRequest {
                id,
                thread,
                data,
                thread_id,
                started: Instant::now(),
                started_epoch: epoch_seconds(SystemTime::now()),
                cpu_started: None,
            }
        };
        counters().active += 1;
        Some(request)
    }

    /// Publishes `request_started`; returns the application to call (a
    /// callback may wrap it) and the `start_response` to give it (one that
    /// publishes `response_started`). Starts the request's CPU clock.
    ///
    /// # Safety
    /// The GIL of the interpreter is held.
    pub(crate) unsafe fn request_started(
        &self,
        app: &Obj,
        environ: &Obj,
        start_response: &Obj,
        request: &mut ActiveRequest,
    ) -> (Obj, Obj) {
        // SAFETY: the GIL is held (caller).
        unsafe {
            request.cpu_started = Obj::from_owned(thread_cpu_tuple());
            py::PyErr_Clear();
            let result = Obj::from_owned(py::PyObject_CallFunctionObjArgs(
                self.request_started.as_ptr(),
                app.as_ptr(),
                environ.as_ptr(),
                request.data.as_ptr(),
                start_response.as_ptr(),
                std::ptr::null_mut::<py::PyObject>(),
            ));
            let pair = result.filter(|r| py::PyTuple_Check(r.as_ptr()) != 0 && py::PyTuple_Size(r.as_ptr()) == 2);
            match pair {
                Some(pair) => (
                    Obj::from_borrowed(py::PyTuple_GetItem(pair.as_ptr(), 0)),
                    Obj::from_borrowed(py::PyTuple_GetItem(pair.as_ptr(), 1)),
                ),
                None => {
                    report_unraisable("request_started");
                    (app.clone(), start_response.clone())
                }
            }
        }
    }

    /// Publishes `request_exception` for the exception now set, then
    /// takes it (formatted) for the log.
    ///
    /// # Safety
    /// The GIL of the interpreter is held and an exception is set.
    pub(crate) unsafe fn request_exception(&self, request: &ActiveRequest) -> PythonError {
        // SAFETY: the GIL is held and an exception set (caller).
        unsafe {
            let (error, info) = ffi::take_exception_info();
            if let Some(info) = info {
                let result = py::PyObject_CallFunctionObjArgs(
                    self.request_exception.as_ptr(),
                    request.id.as_ptr(),
                    request.data.as_ptr(),
                    info.as_ptr(),
                    std::ptr::null_mut::<py::PyObject>(),
                );
                if Obj::from_owned(result).is_none() {
                    report_unraisable("request_exception");
                }
            }
            error
        }
    }

    /// Ends a request: publishes `request_finished` (when subscribed),
    /// unregisters it and counts it.
    ///
    /// # Safety
    /// The GIL of the interpreter is held.
    pub(crate) unsafe fn end(&self, request: ActiveRequest, io: IoStats) {
        // SAFETY: the GIL is held (caller).
        unsafe {
            if self.has_subscribers() {
                self.publish_finished(&request, io);
            }
            py::PyDict_DelItem(self.active_requests.as_ptr(), request.id.as_ptr());
            py::PyDict_DelItem(self.by_thread.as_ptr(), request.thread.as_ptr());
            py::PyErr_Clear();
        }
        let seconds = request.started.elapsed().as_secs_f64();
        let mut counters = counters();
        counters.active = counters.active.saturating_sub(1);
        counters.request_count += 1;
        counters.busy_seconds += seconds;
        counters.application_seconds += seconds;
        counters.application_buckets[bucket_of(seconds)] += 1;
        *counters.per_thread.entry(request.thread_id).or_default() += 1;
    }

    unsafe fn publish_finished(&self, request: &ActiveRequest, io: IoStats) {
        // SAFETY: the GIL is held (caller); tuple items are new references
        // that PyTuple_SetItem steals.
        unsafe {
            let Some(stats) = Obj::from_owned(py::PyTuple_New(6)) else {
                py::PyErr_Clear();
                return;
            };
            let items = [
                py::PyLong_FromUnsignedLongLong(io.input_reads),
                py::PyLong_FromUnsignedLongLong(io.input_length),
                py::PyFloat_FromDouble(io.input_seconds),
                py::PyLong_FromUnsignedLongLong(io.output_writes),
                py::PyLong_FromUnsignedLongLong(io.output_length),
                py::PyFloat_FromDouble(io.output_seconds),
            ];
            for (i, item) in items.into_iter().enumerate() {
                py::PyTuple_SetItem(stats.as_ptr(), i as py::Py_ssize_t, item);
            }
            let Some(started) = Obj::from_owned(py::PyFloat_FromDouble(request.started_epoch)) else {
                py::PyErr_Clear();
                return;
            };
            let cpu = request.cpu_started.as_ref().map_or(py::Py_None(), Obj::as_ptr);
            let result = py::PyObject_CallFunctionObjArgs(
                self.request_finished.as_ptr(),
                request.id.as_ptr(),
                request.data.as_ptr(),
                started.as_ptr(),
                stats.as_ptr(),
                cpu,
                std::ptr::null_mut::<py::PyObject>(),
            );
            if Obj::from_owned(result).is_none() {
                report_unraisable("request_finished");
            }
        }
    }

    /// Publishes `process_stopping` to the event callbacks, then to the
    /// shutdown callbacks, with `reason` as `shutdown_reason`.
    ///
    /// # Safety
    /// The GIL of the interpreter is held.
    pub(crate) unsafe fn process_stopping(&self, reason: &str) {
        // SAFETY: the GIL is held (caller).
        unsafe {
            let Some(reason) = ffi::latin1_str(reason) else {
                py::PyErr_Clear();
                return;
            };
            let result = py::PyObject_CallFunctionObjArgs(
                self.process_stopping.as_ptr(),
                reason.as_ptr(),
                std::ptr::null_mut::<py::PyObject>(),
            );
            if Obj::from_owned(result).is_none() {
                report_unraisable("process_stopping");
            }
        }
    }
}

/// Prints the exception now set (a failure of our own Python half, not of
/// a callback, whose failures it reports itself) to `sys.stderr`.
unsafe fn report_unraisable(event: &str) {
    // SAFETY: the GIL is held (caller).
    unsafe {
        let error = ffi::take_exception();
        let message = format!("mod_wsgi: publishing {event} failed:\n{}\n", error.traceback);
        eprint!("{message}");
    }
}

/// The `apache` module: the facts of the Apache the process runs under.
unsafe fn install_apache(apache: &ApacheFacts, process: &ProcessFacts) -> Result<(), PythonError> {
    // SAFETY: the GIL is held (caller).
    unsafe {
        let module = new_module(c"apache")?;
        let names = PyNames(py::PyModule_GetDict(module.as_ptr()));
        let (major, minor, patch) = apache.version;
        names.set("version", version_tuple([major, minor, patch])?)?;
        names.set("mpm_name", text(&apache.mpm_name)?)?;
        names.set("description", text(&apache.description)?)?;
        names.set("build_date", text(&apache.build_date)?)?;
        names.set("maximum_processes", int(apache.maximum_processes.into())?)?;
        names.set("threads_per_process", int(apache.threads_per_process.into())?)?;
        let _ = process;
        register(c"apache", &module)
    }
}

/// A module's namespace dict (borrowed from the module).
struct PyNames(*mut py::PyObject);

impl PyNames {
    unsafe fn set(&self, name: &str, value: Obj) -> Result<(), PythonError> {
        let name = CString::new(name).expect("names have no NUL");
        // SAFETY: the GIL is held (callers); the dict is the module's.
        unsafe {
            if py::PyDict_SetItemString(self.0, name.as_ptr(), value.as_ptr()) != 0 {
                return Err(ffi::take_exception());
            }
        }
        Ok(())
    }

    unsafe fn get(&self, name: &std::ffi::CStr) -> Result<Obj, PythonError> {
        // SAFETY: the GIL is held (callers); a borrowed item gets its own
        // reference.
        unsafe {
            let item = py::PyDict_GetItemString(self.0, name.as_ptr());
            if item.is_null() {
                ffi::raise(py::PyExc_SystemError, &format!("mod_wsgi module lacks {}", name.to_string_lossy()));
                return Err(ffi::take_exception());
            }
            Ok(Obj::from_borrowed(item))
        }
    }
}

unsafe fn new_module(name: &std::ffi::CStr) -> Result<Obj, PythonError> {
    // SAFETY: the GIL is held (callers).
    unsafe {
        let module = Obj::from_owned(py::PyModule_New(name.as_ptr())).ok_or_else(|| ffi::take_exception())?;
        let dict = py::PyModule_GetDict(module.as_ptr());
        py::PyDict_SetItemString(dict, c"__builtins__".as_ptr(), py::PyEval_GetBuiltins());
        Ok(module)
    }
}

unsafe fn register(name: &std::ffi::CStr, module: &Obj) -> Result<(), PythonError> {
    // SAFETY: the GIL is held (callers).
    unsafe {
        if py::PyDict_SetItemString(py::PyImport_GetModuleDict(), name.as_ptr(), module.as_ptr()) != 0 {
            return Err(ffi::take_exception());
        }
    }
    Ok(())
}

unsafe fn owned(ptr: *mut py::PyObject) -> Result<Obj, PythonError> {
    // SAFETY: the GIL is held (callers); `ptr` is a new reference or NULL.
    unsafe { Obj::from_owned(ptr).ok_or_else(|| ffi::take_exception()) }
}

unsafe fn text(value: &str) -> Result<Obj, PythonError> {
    // SAFETY: the GIL is held (callers).
    unsafe { ffi::utf8_str(value).ok_or_else(|| ffi::take_exception()) }
}

unsafe fn int(value: i64) -> Result<Obj, PythonError> {
    // SAFETY: the GIL is held (callers).
    unsafe { owned(py::PyLong_FromLongLong(value)) }
}

unsafe fn float(value: f64) -> Result<Obj, PythonError> {
    // SAFETY: the GIL is held (callers).
    unsafe { owned(py::PyFloat_FromDouble(value)) }
}

unsafe fn version_tuple(parts: [i64; 3]) -> Result<Obj, PythonError> {
    // SAFETY: the GIL is held (callers); SetItem steals the new references.
    unsafe {
        let tuple = owned(py::PyTuple_New(3))?;
        for (i, part) in parts.into_iter().enumerate() {
            py::PyTuple_SetItem(tuple.as_ptr(), i as py::Py_ssize_t, py::PyLong_FromLongLong(part));
        }
        Ok(tuple)
    }
}

unsafe fn function(def: *mut py::PyMethodDef) -> Result<Obj, PythonError> {
    // SAFETY: the GIL is held (callers); `def` is a static that outlives
    // every interpreter.
    unsafe { owned(py::PyCFunction_NewEx(def, std::ptr::null_mut(), std::ptr::null_mut())) }
}

static mut COUNTERS_DEF: py::PyMethodDef = method(c"_counters", counters_function, py::METH_NOARGS);
static mut THREAD_CPU_DEF: py::PyMethodDef = method(c"_thread_cpu", thread_cpu_function, py::METH_NOARGS);
static mut SCOREBOARD_DEF: py::PyMethodDef = method(c"_scoreboard", scoreboard_function, py::METH_NOARGS);

/// `_scoreboard()`: `(server_limit, thread_limit, running_generation,
/// restart_time, [(pid, generation, quiescing, [worker tuple])])`, or None.
unsafe extern "C" fn scoreboard_function(_: *mut py::PyObject, _: *mut py::PyObject) -> *mut py::PyObject {
    guarded(|| {
        let board = SCOREBOARD.get().and_then(|read| read());
        // SAFETY: called by Python with the GIL held.
        unsafe {
            match board {
                Some(board) => scoreboard_tuple(&board),
                None => {
                    let none = py::Py_None();
                    py::Py_IncRef(none);
                    none
                }
            }
        }
    })
}

/// A tuple of `items` (new references, stolen; a NULL among them fails the
/// whole).
unsafe fn tuple_of(items: Vec<*mut py::PyObject>) -> *mut py::PyObject {
    // SAFETY: the GIL is held (caller); SetItem steals each reference.
    unsafe {
        if items.iter().any(|item| item.is_null()) {
            for item in items {
                py::Py_XDECREF(item);
            }
            return std::ptr::null_mut();
        }
        let tuple = py::PyTuple_New(items.len() as py::Py_ssize_t);
        if tuple.is_null() {
            for item in items {
                py::Py_DecRef(item);
            }
            return tuple;
        }
        for (i, item) in items.into_iter().enumerate() {
            py::PyTuple_SetItem(tuple, i as py::Py_ssize_t, item);
        }
        tuple
    }
}

/// # Safety
/// The GIL is held.
unsafe fn scoreboard_tuple(board: &Scoreboard) -> *mut py::PyObject {
    // SAFETY: the GIL is held (caller); every object made is a new
    // reference handed to tuple_of.
    unsafe {
        let text = |t: &str| ffi::latin1_str(t).map_or(std::ptr::null_mut(), Obj::into_ptr);
        let processes: Vec<*mut py::PyObject> = board
            .processes
            .iter()
            .map(|process| {
                let workers: Vec<*mut py::PyObject> = process
                    .workers
                    .iter()
                    .map(|w| {
                        tuple_of(vec![
                            py::PyLong_FromLong(w.thread_num.into()),
                            py::PyLong_FromLong(w.generation.into()),
                            text(&w.status.to_string()),
                            py::PyLong_FromUnsignedLongLong(w.access_count),
                            py::PyLong_FromUnsignedLongLong(w.bytes_served),
                            py::PyFloat_FromDouble(w.start_time),
                            py::PyFloat_FromDouble(w.stop_time),
                            py::PyFloat_FromDouble(w.last_used),
                            text(&w.client),
                            text(&w.request),
                            text(&w.vhost),
                        ])
                    })
                    .collect();
                tuple_of(vec![
                    py::PyLong_FromLong(process.pid.into()),
                    py::PyLong_FromLong(process.generation.into()),
                    py::PyBool_FromLong(process.quiescing.into()),
                    tuple_of(workers),
                ])
            })
            .collect();
        tuple_of(vec![
            py::PyLong_FromLong(board.server_limit.into()),
            py::PyLong_FromLong(board.thread_limit.into()),
            py::PyLong_FromLong(board.running_generation.into()),
            py::PyFloat_FromDouble(board.restart_time),
            tuple_of(processes),
        ])
    }
}

/// `_counters()`: `(request_count, busy_seconds, active, ((thread_id,
/// requests), ...), (application time buckets), application_seconds)`.
unsafe extern "C" fn counters_function(_: *mut py::PyObject, _: *mut py::PyObject) -> *mut py::PyObject {
    guarded(|| {
        let (count, busy, active, threads, buckets, application) = {
            let c = counters();
            let threads: Vec<(i64, u64)> = c.per_thread.iter().map(|(k, v)| (*k, *v)).collect();
            (c.request_count, c.busy_seconds, c.active, threads, c.application_buckets, c.application_seconds)
        };
        // SAFETY: called by Python with the GIL held; tuple_of steals the
        // new references and fails as a whole on any NULL.
        unsafe {
            let pairs: Vec<*mut py::PyObject> = threads
                .into_iter()
                .map(|(thread, n)| tuple_of(vec![py::PyLong_FromLongLong(thread), py::PyLong_FromUnsignedLongLong(n)]))
                .collect();
            let buckets: Vec<*mut py::PyObject> =
                buckets.into_iter().map(|n| py::PyLong_FromUnsignedLongLong(n)).collect();
            tuple_of(vec![
                py::PyLong_FromUnsignedLongLong(count),
                py::PyFloat_FromDouble(busy),
                py::PyLong_FromUnsignedLongLong(active),
                tuple_of(pairs),
                tuple_of(buckets),
                py::PyFloat_FromDouble(application),
            ])
        }
    })
}

/// `_thread_cpu()`: this thread's `(user, system)` CPU seconds, or None.
unsafe extern "C" fn thread_cpu_function(_: *mut py::PyObject, _: *mut py::PyObject) -> *mut py::PyObject {
    // SAFETY: called by Python with the GIL held.
    guarded(|| unsafe { thread_cpu_tuple() })
}

/// # Safety
/// The GIL is held.
unsafe fn thread_cpu_tuple() -> *mut py::PyObject {
    // SAFETY: getrusage fills the zeroed struct; the GIL is held (caller)
    // for the Python objects.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_THREAD, &mut usage) != 0 {
            let none = py::Py_None();
            py::Py_IncRef(none);
            return none;
        }
        let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        let tuple = py::PyTuple_New(2);
        if !tuple.is_null() {
            py::PyTuple_SetItem(tuple, 0, py::PyFloat_FromDouble(seconds(usage.ru_utime)));
            py::PyTuple_SetItem(tuple, 1, py::PyFloat_FromDouble(seconds(usage.ru_stime)));
        }
        tuple
    }
}

#[cfg(test)]
mod tests {
    use super::bucket_of;

    #[test]
    fn buckets_double_from_five_milliseconds() {
        assert_eq!(bucket_of(0.001), 0);
        assert_eq!(bucket_of(0.005), 0);
        assert_eq!(bucket_of(0.006), 1);
        assert_eq!(bucket_of(0.5), 7);
        assert_eq!(bucket_of(40.0), 13);
        assert_eq!(bucket_of(100.0), 14);
    }
}
