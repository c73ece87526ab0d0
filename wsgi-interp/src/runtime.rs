//! Python initialisation, interpreter groups and per-thread state.
//!
//! One [`PythonRuntime`] per process owns the embedded Python. Each
//! application group gets its own sub-interpreter, created on first use and
//! kept for the life of the process; `""` (`%{GLOBAL}`) is the main
//! interpreter. A thread enters an interpreter through its own thread state
//! for that interpreter, created on first use and destroyed when the thread
//! exits: the `PyGILState` API does not support sub-interpreters, so thread
//! states are managed here explicitly. Entering is `PyEval_RestoreThread`
//! with that state, which also works unchanged when each interpreter has its
//! own GIL (3.12+).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::CString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use pyo3_ffi as py;
use wsgi_config::interpreter_options::InterpreterLayers;
use wsgi_config::model::GlobalSettings;
use wsgi_config::values::HashSeed;

use crate::api::ModWsgiModule;
use crate::ffi::{self, Obj};
use crate::home::{self, HomeError, Installation, PythonHome};
use crate::objects::HelperTypes;
use crate::script::ScriptCache;
use crate::InterpError;

/// How to initialise Python: the process-wide mod_wsgi settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PythonConfig {
    /// `WSGIPythonHome` (or a daemon's `python-home=`): an installation or
    /// a virtual environment (see [`crate::home`]).
    pub home: Option<PathBuf>,
    /// The activated virtual environment (`VIRTUAL_ENV`), used when `home`
    /// is not given.
    pub virtual_env: Option<PathBuf>,
    /// `WSGIPythonPath` entries, added with `site.addsitedir` to every
    /// interpreter, ahead of the standard path.
    pub path: Vec<PathBuf>,
    /// `WSGIPythonOptimize`.
    pub optimize: u8,
    /// `WSGIPythonHashSeed`.
    pub hash_seed: Option<HashSeed>,
    /// `WSGIPythonWarnings`, each a `-W` option.
    pub warnings: Vec<String>,
    /// `WSGIDontWriteBytecode`.
    pub dont_write_bytecode: bool,
    /// `WSGIRestrictStdin`: reading `sys.stdin` raises.
    pub restrict_stdin: bool,
    /// `WSGIRestrictStdout`: writing `sys.stdout` raises (else it goes to
    /// the error log).
    pub restrict_stdout: bool,
    /// `WSGIRestrictSignal`: `signal.signal()` registrations are ignored
    /// (the host owns signals). mod_wsgi's default is On.
    pub restrict_signal: bool,
    /// `WSGISwitchInterval` (or `switch-interval=`): the GIL switch
    /// interval in seconds (`sys.setswitchinterval`).
    pub switch_interval: Option<f64>,
    /// `WSGIPythonEggs` (or `python-eggs=`): `PYTHON_EGG_CACHE`.
    pub eggs: Option<PathBuf>,
    /// `WSGIDestroyInterpreter` (default On): whether a stop runs Python's
    /// `atexit` handlers (the shutdown callbacks run either way).
    pub destroy_interpreter: bool,
    /// `WSGIPerInterpreterGIL` (Python 3.12 or later): application groups'
    /// sub-interpreters get a GIL of their own; the main interpreter keeps
    /// the shared one. `<WSGIInterpreterOptions>` may say otherwise per
    /// interpreter.
    pub per_interpreter_gil: bool,
    /// `WSGIApplicationGroupFallback %{GLOBAL}`: an application whose
    /// extension modules refuse its sub-interpreter runs in the main
    /// interpreter instead (with a warning).
    pub application_group_fallback: bool,
    /// The `<WSGIInterpreterOptions>` blocks: each interpreter layers the
    /// ones matching its process and application group over the settings
    /// above.
    pub interpreter_options: Vec<wsgi_config::model::InterpreterOptions>,
    /// What the `mod_wsgi` module tells applications about this process.
    pub process: ProcessFacts,
    /// The `apache` module's facts, under Apache (`None`: no such module).
    pub apache: Option<ApacheFacts>,
}

/// The process an interpreter runs in, as the `mod_wsgi` module reports
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessFacts {
    /// `mod_wsgi.process_group`: the daemon group, `""` in embedded mode.
    pub process_group: String,
    /// `mod_wsgi.maximum_processes`: the most processes serving requests.
    pub maximum_processes: u32,
    /// `mod_wsgi.threads_per_process`: request threads per process (0 in
    /// a daemon group without request threads).
    pub threads_per_process: u32,
    /// Whether `mod_wsgi.server_metrics()` reports the server's scoreboard
    /// (`WSGIServerMetrics`, or `server-metrics=` in a daemon group).
    pub server_metrics: bool,
}

impl Default for ProcessFacts {
    fn default() -> Self {
        ProcessFacts {
            process_group: String::new(),
            maximum_processes: 1,
            threads_per_process: 1,
            server_metrics: false,
        }
    }
}

/// The Apache a process runs under, for the `apache` module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApacheFacts {
    /// `apache.version`: Apache's (major, minor, patch).
    pub version: (i64, i64, i64),
    /// `apache.mpm_name`: `event`, `worker` or `prefork`.
    pub mpm_name: String,
    /// `apache.description`: the server banner.
    pub description: String,
    /// `apache.build_date`.
    pub build_date: String,
    /// `apache.maximum_processes`: Apache's child processes at most.
    pub maximum_processes: u32,
    /// `apache.threads_per_process`: threads per child.
    pub threads_per_process: u32,
}

impl PythonConfig {
    /// The configuration the process-wide settings of a model give, with
    /// the process's activated virtual environment (`VIRTUAL_ENV`, if set
    /// and not empty).
    pub fn from_settings(global: &GlobalSettings) -> PythonConfig {
        PythonConfig {
            home: global.python_home.clone(),
            virtual_env: std::env::var_os("VIRTUAL_ENV").filter(|v| !v.is_empty()).map(PathBuf::from),
            path: global.python_path.clone().unwrap_or_default(),
            optimize: global.python_optimize.unwrap_or(0),
            hash_seed: global.python_hash_seed,
            warnings: global.python_warnings.clone(),
            dont_write_bytecode: global.dont_write_bytecode.unwrap_or(false),
            restrict_stdin: global.restrict_stdin.unwrap_or(false),
            restrict_stdout: global.restrict_stdout.unwrap_or(false),
            restrict_signal: global.restrict_signal.unwrap_or(true),
            switch_interval: global.switch_interval,
            eggs: global.python_eggs.clone(),
            destroy_interpreter: global.destroy_interpreter.unwrap_or(true),
            per_interpreter_gil: global.per_interpreter_gil.unwrap_or(false),
            application_group_fallback: global.application_group_fallback.unwrap_or(false),
            interpreter_options: Vec::new(),
            process: ProcessFacts::default(),
            apache: None,
        }
    }

    /// The configuration of a daemon process of `process`'s group: the
    /// process-wide settings, with the group's `python-home=`,
    /// `python-path=`, `switch-interval=` and `python-eggs=` in place of
    /// the directives'.
    pub fn for_daemon_process(global: &GlobalSettings, process: &wsgi_config::DaemonProcess) -> PythonConfig {
        let mut config = PythonConfig::from_settings(global);
        if let Some(home) = &process.python_home {
            config.home = Some(home.clone());
        }
        if let Some(path) = &process.python_path {
            config.path = path.clone();
        }
        if let Some(interval) = process.switch_interval {
            config.switch_interval = Some(interval);
        }
        if let Some(eggs) = &process.python_eggs {
            config.eggs = Some(eggs.clone());
        }
        config.process = ProcessFacts {
            process_group: process.name.clone(),
            maximum_processes: process.process_count(),
            threads_per_process: process.threads,
            server_metrics: process.server_metrics,
        };
        config
    }

    /// The home Python will run from (see [`crate::home`]): the configured
    /// one, else the activated virtual environment, else the installation
    /// this library was built against; an error if it is of another
    /// version than the linked libpython, or no installation at all.
    /// Reads files only, so front ends may call it before starting anything.
    pub fn python_home(&self) -> Result<PythonHome, HomeError> {
        home::choose_home(self.home.as_deref(), self.virtual_env.as_deref(), &Installation::built_against())
    }
}

/// Checks, before a server starts anything, the Python home of embedded
/// mode (unless `WSGIRestrictEmbedded On`) and of each daemon group in
/// `groups`, and logs the one each will use. `Err` (with the group named)
/// for a home of another Python version: the server refuses to start
/// rather than fail in every process it starts. Other problems (a home
/// that is missing, or no installation) are logged and left to fail where
/// Python starts, so that one broken daemon group does not stop the others.
/// Both front ends check here.
pub fn check_homes<'a>(
    global: &GlobalSettings,
    groups: impl IntoIterator<Item = &'a wsgi_config::DaemonProcess>,
    log: &dyn wsgi_core::ErrorLog,
) -> Result<(), String> {
    use wsgi_core::LogLevel;
    let mut homes = Vec::new();
    if global.restrict_embedded != Some(true) {
        homes.push((String::new(), PythonConfig::from_settings(global)));
    }
    for process in groups {
        homes.push((format!("daemon group '{}': ", process.name), PythonConfig::for_daemon_process(global, process)));
    }
    for (context, python) in homes {
        match python.python_home() {
            Ok(home) => log.log(LogLevel::Info, &format!("{context}Python home {home}")),
            Err(e @ HomeError::VersionMismatch { .. }) => return Err(format!("{context}{e}")),
            Err(e) => log.log(LogLevel::Error, &format!("{context}{e}")),
        }
    }
    Ok(())
}

/// An interpreter: the main one or an application group's sub-interpreter.
pub(crate) struct Interpreter {
    pub(crate) state: *mut py::PyInterpreterState,
    pub(crate) group: String,
    /// Whether a thread entering through this module holds this
    /// interpreter's GIL (a hint, see [`take_gil`]); the interpreters that
    /// share a GIL share the main interpreter's flag.
    gil_held: Arc<AtomicBool>,
    /// Per-interpreter objects; only touched with this interpreter's GIL.
    pub(crate) helpers: HelperTypes,
    /// Loaded scripts; only touched with this interpreter's GIL.
    pub(crate) scripts: Mutex<ScriptCache>,
    /// Interned environ keys; only touched with this interpreter's GIL.
    pub(crate) keys: Mutex<crate::call::KeyCache>,
    /// This interpreter's `mod_wsgi` module.
    pub(crate) api: ModWsgiModule,
}

// SAFETY: the raw interpreter pointer and the Python objects inside are only
// used by a thread that has entered this interpreter (holds its GIL), which
// serialises all access.
unsafe impl Send for Interpreter {}
// SAFETY: as above.
unsafe impl Sync for Interpreter {}

impl Interpreter {
    /// Whether this is the main interpreter (`%{GLOBAL}`).
    pub(crate) fn is_main(&self) -> bool {
        self.group.is_empty()
    }

    /// Locks the script cache. Must be called with the GIL held; the GIL is
    /// released while waiting, because the holder may need the GIL (an
    /// import runs Python) before it can let go.
    pub(crate) fn lock_scripts(&self) -> std::sync::MutexGuard<'_, ScriptCache> {
        if let Ok(guard) = self.scripts.try_lock() {
            return guard;
        }
        without_gil(|| self.scripts.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Enters this interpreter on the current thread (taking its GIL).
    pub(crate) fn enter(&self) -> Entered<'_> {
        ENTRY_DEPTH.with(|depth| {
            if depth.get() == 0 {
                enter_python_or_wait_for_exit();
            }
            depth.set(depth.get() + 1)
        });
        let tstate = thread_state_for(self.state);
        // SAFETY: `tstate` belongs to this thread and this interpreter and is
        // not current (no nested entry: Entered borrows the interpreter and
        // the runner never enters while inside).
        unsafe { take_gil(tstate, &self.gil_held) };
        let outer = ENTERED_GIL.with(|entered| entered.borrow_mut().replace(self.gil_held.clone()));
        Entered { gil_held: &self.gil_held, outer }
    }
}

/// Times a thread gives up the processor, while the GIL is held, before it
/// queues for the GIL.
const GIL_YIELDS: usize = 8;

/// Takes the GIL for `tstate` (`PyEval_RestoreThread`), first yielding the
/// processor a few times while another thread holds it. A thread that
/// queues for a held GIL sleeps on a condition variable, and the holder
/// wakes it on release: a futex wake and two context switches, often more
/// than the Python work of a request. Yielding lets the holder finish (on
/// a machine with few cores it often runs on this one), after which the
/// GIL is taken uncontended. Under Apache's threads this cut the voluntary
/// context switches per request from 2.8 to 1.7 and served some 7% more.
/// When the holder is in fact blocked in I/O (Python released the GIL
/// without our knowing), the cost is the few yields.
///
/// `held` says whether one of the threads entering Python through this
/// module holds that GIL (a hint: Python's own releases, around blocking
/// I/O, are not seen here).
///
/// # Safety
/// As for `PyEval_RestoreThread`: `tstate` is this thread's, not current.
unsafe fn take_gil(tstate: *mut py::PyThreadState, held: &AtomicBool) {
    for _ in 0..GIL_YIELDS {
        if !held.load(Ordering::Relaxed) {
            break;
        }
        std::thread::yield_now();
    }
    // SAFETY: as the caller promises.
    unsafe { py::PyEval_RestoreThread(tstate) };
    held.store(true, Ordering::Relaxed);
}

/// Releases the GIL (`PyEval_SaveThread`), returning the thread state.
///
/// # Safety
/// As for `PyEval_SaveThread`: this thread holds the GIL `held` tracks.
unsafe fn release_gil(held: &AtomicBool) -> *mut py::PyThreadState {
    held.store(false, Ordering::Relaxed);
    // SAFETY: as the caller promises.
    unsafe { py::PyEval_SaveThread() }
}

/// Proof that the current thread holds an interpreter's GIL; leaving
/// releases it.
pub(crate) struct Entered<'a> {
    gil_held: &'a AtomicBool,
    /// The entry this one is nested in (the main interpreter entered from
    /// a sub-interpreter's import), restored on leaving.
    outer: Option<Arc<AtomicBool>>,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        let outer = self.outer.take();
        ENTERED_GIL.with(|entered| *entered.borrow_mut() = outer);
        // SAFETY: we entered with take_gil on this thread.
        unsafe { release_gil(self.gil_held) };
        ENTRY_DEPTH.with(|depth| {
            depth.set(depth.get().saturating_sub(1));
            if depth.get() == 0 {
                THREADS_IN_PYTHON.fetch_sub(1, Ordering::SeqCst);
            }
        });
    }
}

/// How many threads are inside Python through [`Interpreter::enter`]: Python
/// may only be finalised when none is.
static THREADS_IN_PYTHON: AtomicUsize = AtomicUsize::new(0);

/// Set once Python is being finalised: no thread may enter it any more.
static FINALISING: AtomicBool = AtomicBool::new(false);

/// Counts this thread into [`THREADS_IN_PYTHON`]; once Python is being
/// finalised, parks the thread instead, for good (the process is exiting).
/// Both sides use sequentially consistent order, so that either the
/// finaliser sees this thread counted or this thread sees the flag.
fn enter_python_or_wait_for_exit() {
    THREADS_IN_PYTHON.fetch_add(1, Ordering::SeqCst);
    if FINALISING.load(Ordering::SeqCst) {
        THREADS_IN_PYTHON.fetch_sub(1, Ordering::SeqCst);
        loop {
            std::thread::park();
        }
    }
}

/// The thread states this module created, by address: request threads'
/// (see [`thread_state_for`]) and each sub-interpreter's first. The others
/// in a sub-interpreter belong to threads the application started.
static OUR_THREAD_STATES: Mutex<Vec<usize>> = Mutex::new(Vec::new());

fn count_as_ours(tstate: *mut py::PyThreadState) {
    OUR_THREAD_STATES.lock().unwrap_or_else(|e| e.into_inner()).push(tstate as usize);
}

fn forget_ours(tstate: *mut py::PyThreadState) {
    OUR_THREAD_STATES.lock().unwrap_or_else(|e| e.into_inner()).retain(|&ours| ours != tstate as usize);
}

fn is_ours(tstate: *mut py::PyThreadState) -> bool {
    OUR_THREAD_STATES.lock().unwrap_or_else(|e| e.into_inner()).contains(&(tstate as usize))
}

thread_local! {
    /// How deeply this thread is inside interpreters entered through
    /// [`Interpreter::enter`], from before it takes the GIL to after it
    /// gives it back (see [`PythonRuntime::this_thread_is_in_python`]).
    static ENTRY_DEPTH: Cell<u32> = const { Cell::new(0) };
    /// The hint of the GIL this thread entered through [`Interpreter::enter`],
    /// for [`without_gil`], which Python callbacks call without knowing the
    /// interpreter.
    static ENTERED_GIL: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Runs `f` with the GIL released, re-taking it afterwards, also when `f`
/// panics (so that unwinding finds the GIL held, as the code around expects).
pub(crate) fn without_gil<T>(f: impl FnOnce() -> T) -> T {
    struct Retake(*mut py::PyThreadState, Arc<AtomicBool>);
    impl Drop for Retake {
        fn drop(&mut self) {
            // SAFETY: `self.0` is this thread's state, released below.
            unsafe { take_gil(self.0, &self.1) };
        }
    }
    // Outside an entry made here (a thread Python itself started), the
    // hint is one nobody reads.
    let held = ENTERED_GIL.with(|entered| entered.borrow().clone()).unwrap_or_default();
    // SAFETY: called only while holding the GIL (inside an `Entered` scope
    // or a Python callback); the guard restores the same thread state.
    let _retake = Retake(unsafe { release_gil(&held) }, held);
    f()
}

/// This thread's states, one per interpreter it has entered, and whether
/// we created (and so may delete) each.
struct ThreadStates {
    states: Vec<(*mut py::PyInterpreterState, *mut py::PyThreadState, bool)>,
}

/// Set when the process is about to exit: thread states are then left
/// alone (taking the GIL to clean up could wait forever on a thread that
/// holds it).
static EXITING: AtomicBool = AtomicBool::new(false);

impl Drop for ThreadStates {
    fn drop(&mut self) {
        for (_, tstate, owned) in self.states.drain(..) {
            // SAFETY: the state belongs to this (exiting) thread and is not
            // current; we make it current, clear and delete it. Skipped when
            // Python is gone or the process is exiting.
            unsafe {
                if !owned || EXITING.load(Ordering::Relaxed) || py::Py_IsInitialized() == 0 {
                    continue;
                }
                forget_ours(tstate);
                py::PyEval_RestoreThread(tstate);
                py::PyThreadState_Clear(tstate);
                py::PyThreadState_DeleteCurrent();
            }
        }
    }
}

thread_local! {
    static THREAD_STATES: RefCell<ThreadStates> = const { RefCell::new(ThreadStates { states: Vec::new() }) };
}

/// This thread's state for `interp`, created on first use.
///
/// The main interpreter's state is made first on every thread (or, on the
/// thread that initialised Python, the existing one is used), because the
/// first state a thread gets is the one the `PyGILState` API hands to code
/// that uses it: ctypes and sqlite3 callbacks, Cython's `with gil`, pybind11.
/// Were it a sub-interpreter's, such code would deadlock or run in the wrong
/// interpreter.
fn thread_state_for(interp: *mut py::PyInterpreterState) -> *mut py::PyThreadState {
    THREAD_STATES.with(|cell| {
        let mut states = cell.borrow_mut();
        if let Some((_, tstate, _)) = states.states.iter().find(|(i, _, _)| *i == interp) {
            return *tstate;
        }
        // SAFETY: these calls need no GIL: they read thread-specific storage
        // and create detached thread states.
        unsafe {
            let main = py::PyInterpreterState_Main();
            if !states.states.iter().any(|(i, _, _)| *i == main) {
                let registered = py::PyGILState_GetThisThreadState();
                if !registered.is_null() && py::PyThreadState_GetInterpreter(registered) == main {
                    states.states.push((main, registered, false));
                } else {
                    states.states.push((main, py::PyThreadState_New(main), true));
                }
            }
            if let Some((_, tstate, _)) = states.states.iter().find(|(i, _, _)| *i == interp) {
                return *tstate;
            }
            let tstate = py::PyThreadState_New(interp);
            states.states.push((interp, tstate, true));
            count_as_ours(tstate);
            tstate
        }
    })
}

/// The embedded Python of this process.
pub struct PythonRuntime {
    config: PythonConfig,
    main: Arc<Interpreter>,
    groups: Mutex<HashMap<String, Arc<Interpreter>>>,
}

static RUNTIME: OnceLock<Arc<PythonRuntime>> = OnceLock::new();

impl PythonRuntime {
    /// Initialises Python once for this process; later calls return the
    /// same runtime if `config` is equal, an error otherwise.
    ///
    /// Python installs no signal handlers: the host owns signals.
    pub fn initialize(config: PythonConfig) -> Result<Arc<PythonRuntime>, InterpError> {
        static INIT: Mutex<()> = Mutex::new(());
        let _serial = INIT.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(runtime) = RUNTIME.get() {
            if runtime.config == config {
                return Ok(runtime.clone());
            }
            return Err(InterpError::AlreadyInitialized);
        }
        let runtime = Arc::new(Self::start(config)?);
        let _ = RUNTIME.set(runtime.clone());
        Ok(runtime)
    }

    fn start(config: PythonConfig) -> Result<PythonRuntime, InterpError> {
        // SAFETY: Python is not initialised yet (guarded by INIT/RUNTIME);
        // the PyConfig is initialised before use and cleared after.
        let main_tstate = unsafe {
            let mut pyconfig: py::PyConfig = std::mem::zeroed();
            py::PyConfig_InitPythonConfig(&mut pyconfig);
            pyconfig.install_signal_handlers = 0;
            pyconfig.parse_argv = 0;
            pyconfig.optimization_level = i32::from(config.optimize);
            pyconfig.write_bytecode = i32::from(!config.dont_write_bytecode);
            match config.hash_seed {
                Some(HashSeed::Fixed(seed)) => {
                    pyconfig.use_hash_seed = 1;
                    pyconfig.hash_seed = seed.into();
                }
                Some(HashSeed::Random) | None => pyconfig.use_hash_seed = 0,
            }
            let result = configure(&mut pyconfig, &config);
            if let Err(e) = result {
                py::PyConfig_Clear(&mut pyconfig);
                return Err(e);
            }
            let status = py::Py_InitializeFromConfig(&pyconfig);
            py::PyConfig_Clear(&mut pyconfig);
            if py::PyStatus_Exception(status) != 0 {
                return Err(InterpError::Init(status_message(&status)));
            }
            py::PyThreadState_Get()
        };
        // SAFETY: the main thread state is current on this thread.
        let state = unsafe { py::PyThreadState_GetInterpreter(main_tstate) };
        let layers = InterpreterLayers::resolve(&config.interpreter_options, &config.process.process_group, "");
        let main = Self::prepare(state, String::new(), &config, &layers, Arc::default());
        // The initial thread state stays alive for good (this thread keeps
        // using it, as its PyGILState state): CPython 3.11 reuses an
        // interpreter's preallocated initial state, and aborts, once all of
        // its thread states are gone.
        // SAFETY: release the GIL the initialising thread holds.
        unsafe { py::PyEval_SaveThread() };
        Ok(PythonRuntime { config, main: Arc::new(main?), groups: Mutex::new(HashMap::new()) })
    }

    /// Sets up an interpreter whose GIL the current thread holds, with
    /// `layers`, its `<WSGIInterpreterOptions>`; `gil_held` is the hint of
    /// that GIL (see [`take_gil`]).
    fn prepare(
        state: *mut py::PyInterpreterState,
        group: String,
        config: &PythonConfig,
        layers: &InterpreterLayers,
        gil_held: Arc<AtomicBool>,
    ) -> Result<Interpreter, InterpError> {
        // SAFETY: the GIL of `state` is held by the caller.
        let helpers = unsafe { HelperTypes::create() }.map_err(|e| InterpError::Python(e.traceback))?;
        let setup = CString::new(setup_source(config, layers)).map_err(|e| InterpError::Init(e.to_string()))?;
        // SAFETY: as above; the dict is owned by an Obj.
        unsafe {
            let globals = Obj::from_owned(py::PyDict_New()).ok_or_else(|| InterpError::Init("PyDict_New".into()))?;
            let builtins = py::PyEval_GetBuiltins();
            py::PyDict_SetItemString(globals.as_ptr(), c"__builtins__".as_ptr(), builtins);
            let import_in_main = if config.application_group_fallback && !group.is_empty() {
                Obj::from_owned(py::PyCFunction_NewEx(
                    &raw mut IMPORT_IN_MAIN_DEF,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                ))
                .ok_or_else(|| InterpError::Python(ffi::take_exception().traceback))?
            } else {
                Obj::from_borrowed(py::Py_None())
            };
            py::PyDict_SetItemString(globals.as_ptr(), c"_import_in_main".as_ptr(), import_in_main.as_ptr());
            ffi::run_source(&setup, globals.as_ptr()).map_err(|e| InterpError::Python(e.traceback))?;
        }
        // SAFETY: as above.
        let api =
            unsafe { ModWsgiModule::install(&config.process, config.apache.as_ref(), &group, &helpers.file_wrapper) }
                .map_err(|e| InterpError::Python(e.traceback))?;
        Ok(Interpreter {
            state,
            group,
            gil_held,
            api,
            helpers,
            scripts: Mutex::new(ScriptCache::default()),
            keys: Mutex::new(crate::call::KeyCache::shared()),
        })
    }

    /// The configuration Python was started with.
    pub(crate) fn config(&self) -> &PythonConfig {
        &self.config
    }

    /// The main interpreter.
    pub(crate) fn main_interpreter(&self) -> &Interpreter {
        &self.main
    }

    /// The interpreter of an (expanded) application group: `""` is the main
    /// interpreter; any other name gets a sub-interpreter on first use.
    pub(crate) fn interpreter(&self, group: &str) -> Result<Arc<Interpreter>, InterpError> {
        if group.is_empty() {
            return Ok(self.main.clone());
        }
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(interp) = groups.get(group) {
            return Ok(interp.clone());
        }
        let interp = Arc::new(self.create_sub_interpreter(group)?);
        groups.insert(group.to_string(), interp.clone());
        Ok(interp)
    }

    fn create_sub_interpreter(&self, group: &str) -> Result<Interpreter, InterpError> {
        let layers =
            InterpreterLayers::resolve(&self.config.interpreter_options, &self.config.process.process_group, group);
        let own_gil = layers.per_interpreter_gil.unwrap_or(self.config.per_interpreter_gil);
        let main_entered = self.main.enter();
        // SAFETY: we hold the main interpreter's GIL; the new interpreter's
        // state is current afterwards, with its GIL held (and, when it has
        // its own, the main one released).
        let tstate = unsafe { new_interpreter(own_gil) };
        let tstate = match tstate {
            Ok(tstate) => {
                count_as_ours(tstate);
                tstate
            }
            Err(why) => {
                drop(main_entered);
                return Err(InterpError::Init(format!(
                    "could not create a sub-interpreter for group '{group}': {why}"
                )));
            }
        };
        // SAFETY: `tstate` is current on this thread.
        let state = unsafe { py::PyThreadState_GetInterpreter(tstate) };
        let gil_held = if own_gil { Arc::default() } else { self.main.gil_held.clone() };
        let prepared = Self::prepare(state, group.to_string(), &self.config, &layers, gil_held);
        if prepared.is_err() {
            // SAFETY: `tstate` is current and its interpreter's GIL held; no
            // thread state is current (and no GIL held) afterwards.
            unsafe { py::Py_EndInterpreter(tstate) };
            forget_ours(tstate);
            std::mem::forget(main_entered);
            return prepared;
        }
        // Releasing saves the new interpreter's initial state, which is
        // current now; like the main one it is kept as an anchor and never
        // used again (threads get their own states), and the main state of
        // this thread stays detached.
        drop(main_entered);
        prepared
    }

    /// Runs Python `source` in a fresh namespace of the interpreter of
    /// `group` and returns `str(result)` if the source binds `result`
    /// (else an empty string). For start-up checks, diagnostics and
    /// measurements; applications are run with [`crate::EmbeddedRunner`].
    pub fn evaluate(&self, group: &str, source: &str) -> Result<String, InterpError> {
        let source = CString::new(source).map_err(|e| InterpError::Python(e.to_string()))?;
        let interp = self.interpreter(group)?;
        let _entered = interp.enter();
        // SAFETY: we hold the interpreter's GIL; references are owned by Obj
        // and dropped before leaving.
        unsafe {
            let globals = Obj::from_owned(py::PyDict_New()).ok_or_else(|| InterpError::Python("PyDict_New".into()))?;
            py::PyDict_SetItemString(globals.as_ptr(), c"__builtins__".as_ptr(), py::PyEval_GetBuiltins());
            ffi::run_source(&source, globals.as_ptr()).map_err(|e| InterpError::Python(e.traceback))?;
            let result = py::PyDict_GetItemString(globals.as_ptr(), c"result".as_ptr());
            if result.is_null() {
                return Ok(String::new());
            }
            // A strong reference: str() runs code that could drop the last other.
            let result = Obj::from_borrowed(result);
            let text = Obj::from_owned(py::PyObject_Str(result.as_ptr()))
                .ok_or_else(|| InterpError::Python(ffi::take_exception().traceback))?;
            Ok(ffi::str_value(text.as_ptr()).unwrap_or_default())
        }
    }

    /// Runs the applications' shutdown code, once per process, for a
    /// planned stop, right before the process exits: in every interpreter
    /// (application groups first, the main one last), the
    /// `process_stopping` event to the event and shutdown callbacks of the
    /// `mod_wsgi` module (`reason` is its `shutdown_reason`). Then, unless
    /// `WSGIDestroyInterpreter Off`, Python's `atexit` handlers, and the
    /// interpreters are destroyed as mod_wsgi destroys them: threads the
    /// application started are waited for (all but daemon threads), every
    /// sub-interpreter is ended and Python is finalised, unless that could
    /// crash the exiting process instead (see `finalize`). From then on no
    /// thread can enter Python.
    ///
    /// Bounded by `timeout` (unless zero): a callback that hangs, or an
    /// interpreter whose lock is never released, makes the process exit
    /// when it runs out, as mod_wsgi's shutdown-timeout does.
    pub fn stop(&self, reason: &str, timeout: std::time::Duration) {
        static STOPPED: AtomicBool = AtomicBool::new(false);
        if STOPPED.swap(true, Ordering::SeqCst) {
            return;
        }
        let (done, finished) = std::sync::mpsc::channel::<()>();
        if !timeout.is_zero() {
            let _ = std::thread::Builder::new().name("wsgi-shutdown-timeout".into()).spawn(move || {
                if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(timeout) {
                    eprintln!(
                        "mod_wsgi (pid={}): shutdown callbacks still running after the shutdown timeout of {timeout:?}; exiting.",
                        std::process::id()
                    );
                    // SAFETY: ends the process at once, as the timeout asks.
                    unsafe { libc::_exit(1) };
                }
            });
        }
        let mut interpreters: Vec<Arc<Interpreter>> = {
            let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
            groups.values().cloned().collect()
        };
        interpreters.push(self.main.clone());
        for interp in &interpreters {
            let _entered = interp.enter();
            // SAFETY: we hold this interpreter's GIL.
            unsafe {
                interp.api.process_stopping(reason);
                if self.config.destroy_interpreter {
                    run_atexit_handlers();
                }
            }
        }
        EXITING.store(true, Ordering::Relaxed);
        if self.config.destroy_interpreter {
            interpreters.pop();
            self.finalize(&interpreters);
        }
        let _ = done.send(());
    }

    /// Ends the sub-interpreters `subs` and finalises Python, for good.
    ///
    /// Skipped, with the reason in the log, when that could crash the
    /// process instead: a thread is still inside Python (a request that
    /// outlived the graceful timeout), a sub-interpreter has a GIL of its
    /// own, or a thread the application started in a sub-interpreter is
    /// still running once the non-daemon ones have ended (ending the
    /// interpreter would pull its state from under it). Daemon threads of
    /// the main interpreter do not prevent it: Python ends them as it does
    /// in any program that exits.
    fn finalize(&self, subs: &[Arc<Interpreter>]) {
        FINALISING.store(true, Ordering::SeqCst);
        let pid = std::process::id();
        if let Some(reason) = self.finalising_would_crash(subs) {
            eprintln!("mod_wsgi (pid={pid}): Python is not finalised: {reason}.");
            return;
        }
        let main_tstate = thread_state_for(self.main.state);
        let sub_tstates: Vec<_> = subs.iter().map(|sub| thread_state_for(sub.state)).collect();
        // SAFETY: no other thread is inside Python, nor can enter it (checked
        // and flagged above); all the interpreters share the main GIL, which
        // this thread takes with its own main state and holds throughout.
        // Each state swapped in is this thread's for its interpreter.
        unsafe {
            py::PyEval_RestoreThread(main_tstate);
            let still_running = wait_for_application_threads_in(subs, &sub_tstates);
            py::PyThreadState_Swap(main_tstate);
            if !still_running.is_empty() {
                eprintln!(
                    "mod_wsgi (pid={pid}): Python is not finalised: threads the application started still run in application group {}.",
                    still_running.join(", ")
                );
                py::PyEval_SaveThread();
                return;
            }
            for (sub, &tstate) in subs.iter().zip(&sub_tstates) {
                py::PyThreadState_Swap(tstate);
                delete_thread_states_but(sub.state, tstate);
                py::Py_EndInterpreter(tstate);
                py::PyThreadState_Swap(main_tstate);
            }
            if py::Py_FinalizeEx() != 0 {
                eprintln!("mod_wsgi (pid={pid}): finalising Python could not flush its standard streams.");
            }
        }
    }

    /// Why ending the interpreters now could crash the process, if it
    /// could, before any GIL is taken: a thread still inside Python, or a
    /// sub-interpreter with a GIL of its own.
    fn finalising_would_crash(&self, subs: &[Arc<Interpreter>]) -> Option<String> {
        let busy = THREADS_IN_PYTHON.load(Ordering::SeqCst);
        if busy > 0 {
            return Some(format!("{busy} thread(s) are still inside it"));
        }
        let own = subs.iter().find(|sub| !Arc::ptr_eq(&sub.gil_held, &self.main.gil_held))?;
        Some(format!("application group '{}' has a GIL of its own", own.group))
    }

    /// Whether this thread is inside Python entered through this runtime,
    /// from before it takes an interpreter's lock to after it gives it
    /// back. One thread-local read: a signal handler may ask, and must not
    /// run Python when the answer is yes (it interrupted Python).
    pub fn this_thread_is_in_python() -> bool {
        ENTRY_DEPTH.try_with(|depth| depth.get() > 0).unwrap_or(true)
    }

    /// Tells the runtime the process is about to exit: threads that end from
    /// now on leave their Python thread states alone rather than take the
    /// GIL to clean them up (which could wait forever).
    pub fn prepare_for_exit() {
        EXITING.store(true, Ordering::Relaxed);
    }

    /// The names of the application groups created so far (not the main one).
    pub fn groups(&self) -> Vec<String> {
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        groups.keys().cloned().collect()
    }
}

/// `atexit._run_exitfuncs()` in the current interpreter: runs its
/// handlers (last registered first) and forgets them, so that none runs
/// twice. A failing handler is reported by the `atexit` module itself.
///
/// # Safety
/// The GIL of the interpreter is held.
unsafe fn run_atexit_handlers() {
    // SAFETY: the GIL is held (caller); the module is owned by Obj.
    unsafe {
        match Obj::from_owned(py::PyImport_ImportModule(c"atexit".as_ptr())) {
            Some(atexit) => call_at_stop(&atexit, c"_run_exitfuncs", "running atexit handlers"),
            None => report_stop_failure("running atexit handlers"),
        }
    }
}

/// `threading._shutdown()` in the current interpreter, if it imported
/// `threading`: waits for the threads the application started, all but
/// daemon threads, as Python does before it finalises.
///
/// # Safety
/// The GIL of the interpreter is held, its state current.
unsafe fn wait_for_application_threads() {
    // SAFETY: the GIL is held (caller); the module is borrowed from
    // sys.modules and held by Obj while it is called.
    unsafe {
        let threading = py::PyDict_GetItemString(py::PyImport_GetModuleDict(), c"threading".as_ptr());
        if !threading.is_null() {
            call_at_stop(&Obj::from_borrowed(threading), c"_shutdown", "waiting for the application's threads");
        }
    }
}

/// Waits for the application's threads in each of `subs`, through its
/// state of `tstates`, and names the groups where some still run (not
/// counting our own parked request threads), with how many.
///
/// # Safety
/// The shared GIL is held; each state of `tstates` is this thread's for
/// the interpreter of `subs` at the same index. The thread state current
/// on return may be any of `tstates` (the caller swaps its own back).
unsafe fn wait_for_application_threads_in(
    subs: &[Arc<Interpreter>],
    tstates: &[*mut py::PyThreadState],
) -> Vec<String> {
    let mut still_running = Vec::new();
    for (sub, &tstate) in subs.iter().zip(tstates) {
        // SAFETY: as the caller promises; no thread state of the
        // interpreter is created or deleted while they are counted, the
        // GIL being held throughout.
        unsafe {
            py::PyThreadState_Swap(tstate);
            wait_for_application_threads();
            let theirs = thread_states(sub.state).filter(|&other| other != tstate && !is_ours(other)).count();
            if theirs > 0 {
                still_running.push(format!("'{}' ({theirs})", sub.group));
            }
        }
    }
    still_running
}

/// Calls `module.name()` with no arguments during a stop; a failure is
/// logged as `what` failing, with its traceback.
///
/// # Safety
/// The GIL of the module's interpreter is held, its state current.
unsafe fn call_at_stop(module: &Obj, name: &std::ffi::CStr, what: &str) {
    // SAFETY: the GIL is held (caller); the result is owned by Obj.
    let called = unsafe { Obj::from_owned(py::PyObject_CallMethod(module.as_ptr(), name.as_ptr(), std::ptr::null())) };
    if called.is_none() {
        // SAFETY: the GIL is held (caller).
        unsafe { report_stop_failure(what) };
    }
}

/// Logs the pending Python exception as `what` failing, with its
/// traceback.
///
/// # Safety
/// The GIL is held.
unsafe fn report_stop_failure(what: &str) {
    // SAFETY: the GIL is held (caller).
    let error = unsafe { ffi::take_exception() };
    eprintln!("mod_wsgi (pid={}): {what} failed:\n{}", std::process::id(), error.traceback);
}

/// The thread states of `interp`.
///
/// # Safety
/// The GIL of `interp` is held, and no thread state of it is created or
/// deleted while the iterator is used.
unsafe fn thread_states(interp: *mut py::PyInterpreterState) -> impl Iterator<Item = *mut py::PyThreadState> {
    // SAFETY: as the caller promises.
    let head = unsafe { py::PyInterpreterState_ThreadHead(interp) };
    std::iter::successors((!head.is_null()).then_some(head), |&tstate| {
        // SAFETY: `tstate` is a live state of `interp` (as above).
        let next = unsafe { py::PyThreadState_Next(tstate) };
        (!next.is_null()).then_some(next)
    })
}

/// Clears and deletes every thread state of `interp` but `keep`, the
/// current one: `Py_EndInterpreter` requires it to be the last.
///
/// # Safety
/// The GIL of `interp` is held with `keep` current, and the threads of the
/// other states will never run Python again.
unsafe fn delete_thread_states_but(interp: *mut py::PyInterpreterState, keep: *mut py::PyThreadState) {
    // SAFETY: as the caller promises; the states are collected before any
    // is deleted. Each is made current while cleared, so that what its
    // clearing runs sees it, and deleted once no longer current.
    unsafe {
        let others: Vec<_> = thread_states(interp).filter(|&tstate| tstate != keep).collect();
        for tstate in others {
            py::PyThreadState_Swap(tstate);
            py::PyThreadState_Clear(tstate);
            py::PyThreadState_Swap(keep);
            py::PyThreadState_Delete(tstate);
            forget_ours(tstate);
        }
    }
}

/// Fills the parts of PyConfig that need allocated strings.
///
/// The home is always set (see [`crate::home`]), together with the
/// executable and program name: CPython's own search (`python3` on `PATH`,
/// then upwards from it) is never reached, and `PYTHONHOME` in the
/// environment is ignored (CPython reads it only when no home is set).
/// `PYTHONPATH` and the other `PYTHON*` variables are still honoured, as
/// mod_wsgi's `Py_Initialize` honours them.
///
/// # Safety
/// `pyconfig` was initialised by `PyConfig_InitPythonConfig`.
unsafe fn configure(pyconfig: &mut py::PyConfig, config: &PythonConfig) -> Result<(), InterpError> {
    let bad = |what: &str| InterpError::Init(format!("{what} contains a NUL character"));
    let chosen = config.python_home()?;
    let paths = [
        (&chosen.home, "python home"),
        (&chosen.executable, "python executable"),
        (&chosen.base_executable, "python base executable"),
    ];
    let [home, executable, base_executable] =
        paths.map(|(path, what)| CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| bad(what)));
    let (home, executable, base_executable) = (home?, executable?, base_executable?);
    // SAFETY: pointers point into `pyconfig`, the strings are NUL-terminated.
    unsafe {
        let fields: [(*mut *mut libc::wchar_t, &CString); 4] = [
            (std::ptr::addr_of_mut!(pyconfig.home), &home),
            (std::ptr::addr_of_mut!(pyconfig.program_name), &executable),
            (std::ptr::addr_of_mut!(pyconfig.executable), &executable),
            (std::ptr::addr_of_mut!(pyconfig.base_executable), &base_executable),
        ];
        for (field, value) in fields {
            let status = py::PyConfig_SetBytesString(pyconfig, field, value.as_ptr());
            if py::PyStatus_Exception(status) != 0 {
                return Err(InterpError::Init(status_message(&status)));
            }
        }
        for warning in &config.warnings {
            let text = CString::new(warning.as_str()).map_err(|_| bad("warning option"))?;
            let wide = py::Py_DecodeLocale(text.as_ptr(), std::ptr::null_mut());
            if wide.is_null() {
                return Err(InterpError::Init(format!("cannot decode warning option {warning:?}")));
            }
            let status = py::PyWideStringList_Append(&mut pyconfig.warnoptions, wide);
            py::PyMem_RawFree(wide.cast());
            if py::PyStatus_Exception(status) != 0 {
                return Err(InterpError::Init(status_message(&status)));
            }
        }
    }
    Ok(())
}

/// A new sub-interpreter, made current on this thread.
///
/// From 3.12 it imports only the extension modules that declare support
/// for sub-interpreters: the others (single-phase initialisation, or
/// marked unsupported) raise `ImportError` there, which the runner reports
/// with the fix (see `call::refused_extension`), where they would otherwise
/// load half-working or crash. Threads, daemon threads and `exec` (so
/// `subprocess`) stay allowed, as before 3.12; `fork` too, unless the
/// interpreter has a GIL of its own (`own_gil`), which PEP 684 also gives
/// its own allocator. On 3.11, `Py_NewInterpreter`: every module loads.
///
/// # Safety
/// The calling thread holds the main interpreter's GIL, its state current.
unsafe fn new_interpreter(own_gil: bool) -> Result<*mut py::PyThreadState, String> {
    #[cfg(Py_3_12)]
    {
        let config = py::PyInterpreterConfig {
            use_main_obmalloc: i32::from(!own_gil),
            allow_fork: i32::from(!own_gil),
            allow_exec: 1,
            allow_threads: 1,
            allow_daemon_threads: 1,
            check_multi_interp_extensions: 1,
            gil: if own_gil { py::PyInterpreterConfig_OWN_GIL } else { py::PyInterpreterConfig_SHARED_GIL },
        };
        let mut tstate = std::ptr::null_mut();
        // SAFETY: as the caller promises; `config` outlives the call.
        let status = unsafe { py::Py_NewInterpreterFromConfig(&mut tstate, &config) };
        // SAFETY: `status` was just returned.
        if unsafe { py::PyStatus_Exception(status) } != 0 || tstate.is_null() {
            return Err(status_message(&status));
        }
        Ok(tstate)
    }
    #[cfg(not(Py_3_12))]
    {
        let _ = own_gil;
        // SAFETY: as the caller promises.
        let tstate = unsafe { py::Py_NewInterpreter() };
        if tstate.is_null() {
            return Err("Py_NewInterpreter failed".into());
        }
        Ok(tstate)
    }
}

static mut IMPORT_IN_MAIN_DEF: py::PyMethodDef = crate::objects::method(c"_import_in_main", import_in_main, py::METH_O);

/// `_import_in_main(name)`, for `WSGIApplicationGroupFallback`: imports
/// module `name` in the main interpreter, ignoring any failure there. A
/// sub-interpreter calls it before it loads an extension module itself:
/// CPython (3.12 and later) keeps the first initialisation of a
/// single-phase module for the whole process, and one a sub-interpreter
/// refused would leave the main interpreter a broken copy; imported there
/// first, the module works there and the sub-interpreter refuses it
/// cleanly.
unsafe extern "C" fn import_in_main(_: *mut py::PyObject, name: *mut py::PyObject) -> *mut py::PyObject {
    crate::objects::guarded(|| {
        let mut size: py::Py_ssize_t = 0;
        // SAFETY: called by Python with the GIL held; `name` is borrowed.
        let text = unsafe { py::PyUnicode_AsUTF8AndSize(name, &mut size) };
        if text.is_null() {
            return std::ptr::null_mut();
        }
        // SAFETY: UTF-8 of `size` bytes, alive while `name` is.
        let name = unsafe { std::slice::from_raw_parts(text.cast::<u8>(), size as usize) };
        let name = CString::new(name).unwrap_or_default();
        if let Some(runtime) = RUNTIME.get() {
            without_gil(|| {
                let _entered = runtime.main.enter();
                // SAFETY: we hold the main interpreter's GIL; the result is
                // owned and dropped, a failure cleared.
                unsafe {
                    match Obj::from_owned(py::PyImport_ImportModule(name.as_ptr())) {
                        Some(_module) => {}
                        None => py::PyErr_Clear(),
                    }
                }
            });
        }
        // SAFETY: the GIL is held again; a new reference to None.
        unsafe { Obj::from_borrowed(py::Py_None()).into_ptr() }
    })
}

fn status_message(status: &py::PyStatus) -> String {
    if status.err_msg.is_null() {
        return "Python initialisation failed".into();
    }
    // SAFETY: err_msg is a static NUL-terminated C string when set.
    unsafe { std::ffi::CStr::from_ptr(status.err_msg) }.to_string_lossy().into_owned()
}

/// The Python run in every interpreter as it is created: the path
/// additions and the stdin/stdout/signal restrictions, with `layers` (the
/// `<WSGIInterpreterOptions>` blocks matching the interpreter) over the
/// process-wide settings.
fn setup_source(config: &PythonConfig, layers: &InterpreterLayers) -> String {
    // The base layer, then each block's, least specific first: each is
    // hoisted to the front of sys.path in turn.
    let path_layers: Vec<String> = std::iter::once(&config.path)
        .chain(&layers.python_path)
        .map(|paths| {
            let quoted: Vec<String> = paths.iter().map(|p| format!("{:?}", p.display().to_string())).collect();
            format!("[{}]", quoted.join(", "))
        })
        .collect();
    let flag = |on: bool| if on { "True" } else { "False" };
    let switch_interval = layers.switch_interval.or(config.switch_interval);
    format!(
        r#"
import sys, site
sys.argv = ['mod_wsgi']
if _import_in_main is not None:
    import importlib.machinery as _machinery

    class _MainInterpreterFirst:
        """WSGIApplicationGroupFallback: every extension module is imported
        in the main interpreter before this one loads it."""

        @staticmethod
        def find_spec(name, path=None, target=None):
            spec = _machinery.PathFinder.find_spec(name, path)
            if spec is not None and isinstance(spec.loader, _machinery.ExtensionFileLoader):
                _import_in_main(name)
            return None

    sys.meta_path.insert(0, _MainInterpreterFirst)
    del _MainInterpreterFirst
for _layer in [{path_layers}]:
    _before = list(sys.path)
    for _dir in _layer:
        site.addsitedir(_dir)
    _added = [p for p in sys.path if p not in _before]
    sys.path[:] = _added + [p for p in sys.path if p not in _added]
del _layer, _before, _added
_switch_interval, _eggs = {switch_interval}, {eggs}
if _switch_interval is not None:
    sys.setswitchinterval(_switch_interval)
if _eggs is not None:
    import os
    os.environ['PYTHON_EGG_CACHE'] = _eggs
del _switch_interval, _eggs

class _Restricted:
    def __init__(self, name):
        self._name = name
    def _refuse(self, *args, **kwargs):
        raise OSError("sys.%s access restricted by mod_wsgi" % self._name)
    read = readline = readlines = write = writelines = flush = _refuse
    def __iter__(self):
        self._refuse()

class _ErrorLogStream:
    """sys.stderr as mod_wsgi's log object behaves: what the error log
    cannot take (its disk full) is lost, never raised into the code that
    wrote it (an application's print() would otherwise fail its request)."""
    def __init__(self, stream):
        self._stream = stream
    def write(self, text):
        try:
            return self._stream.write(text)
        except OSError:
            return len(text)
    def writelines(self, lines):
        for line in lines:
            self.write(line)
    def flush(self):
        try:
            self._stream.flush()
        except OSError:
            pass
    def __getattr__(self, name):
        return getattr(self._stream, name)

if sys.stderr is not None and not isinstance(sys.stderr, _ErrorLogStream):
    sys.stderr = _ErrorLogStream(sys.stderr)

if {restrict_stdin}:
    sys.stdin = _Restricted('stdin')
if {restrict_stdout}:
    sys.stdout = _Restricted('stdout')
elif sys.stdout is not None and sys.stderr is not None:
    # As in mod_wsgi, print() goes to the error log.
    sys.stdout = sys.stderr

if {restrict_signal}:
    import signal as _signal
    def _ignored_signal(signum, handler, _getsignal=_signal.getsignal):
        sys.stderr.write("mod_wsgi: Callback registration for signal %d ignored.\n" % signum)
        return _getsignal(signum)
    _signal.signal = _ignored_signal
"#,
        path_layers = path_layers.join(", "),
        switch_interval = switch_interval.map_or("None".to_string(), |s| format!("{s:?}")),
        eggs = config.eggs.as_ref().map_or("None".to_string(), |p| format!("{:?}", p.display().to_string())),
        restrict_stdin = flag(layers.restrict_stdin.unwrap_or(config.restrict_stdin)),
        restrict_stdout = flag(layers.restrict_stdout.unwrap_or(config.restrict_stdout)),
        restrict_signal = flag(layers.restrict_signal.unwrap_or(config.restrict_signal)),
    )
}
