//! The FFI layer: the generated Apache/APR bindings and the small safe
//! wrappers the rest of the module uses. Every `unsafe` block of the crate
//! lives here (and in `module.rs`, which declares the module record).

#[allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code,
    missing_docs,
    unsafe_op_in_unsafe_fn,
    clippy::all
)]
mod bindings;

use std::ffi::{c_char, c_int, c_void, CStr};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

pub(crate) use bindings::*;

/// Runs `body`, turning a panic into `fallback`: no panic may unwind into
/// Apache's C frames.
pub(crate) fn guard<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// An APR pool, borrowed from Apache for as long as the call that gave it.
#[derive(Clone, Copy)]
pub(crate) struct Pool(*mut apr_pool_t);

// SAFETY: a pool is only used by the thread Apache gave it to; the parent
// keeps its configuration pool in a static between its own single-threaded
// calls.
unsafe impl Send for Pool {}

impl Pool {
    /// Wraps a pool pointer Apache passed in.
    ///
    /// # Safety
    /// `pool` must be a live pool for as long as the wrapper is used.
    pub(crate) unsafe fn from_raw(pool: *mut apr_pool_t) -> Pool {
        Pool(pool)
    }

    /// Moves `value` into memory owned by the pool: it is dropped when the
    /// pool is cleared or destroyed. Returns the pointer to hand to Apache.
    pub(crate) fn adopt<T>(self, value: T) -> *mut T {
        unsafe extern "C" fn drop_box<T>(data: *mut c_void) -> apr_status_t {
            // SAFETY: `data` is the pointer `Box::into_raw` produced in
            // `adopt`; APR runs each cleanup once.
            guard((), || drop(unsafe { Box::from_raw(data.cast::<T>()) }));
            APR_SUCCESS as apr_status_t
        }
        let raw = Box::into_raw(Box::new(value));
        // SAFETY: the pool is live (constructor contract); the cleanup frees
        // exactly this allocation, with the matching type.
        unsafe {
            apr_pool_cleanup_register(self.0, raw.cast(), Some(drop_box::<T>), Some(apr_pool_cleanup_null));
        }
        raw
    }

    /// Copies `bytes` into the pool as a NUL-terminated string (a NUL inside
    /// ends it early, as C would read it).
    pub(crate) fn c_string(self, bytes: &[u8]) -> *mut c_char {
        let bytes = bytes.split(|&b| b == 0).next().unwrap_or_default();
        // SAFETY: apr_pstrmemdup copies `len` bytes from a valid slice and
        // NUL-terminates the copy in the live pool.
        unsafe { apr_pstrmemdup(self.0, bytes.as_ptr().cast(), bytes.len()) }
    }

    /// Registers `cleanup` to run when the pool is cleared or destroyed.
    pub(crate) fn on_cleanup(self, cleanup: unsafe extern "C" fn(*mut c_void) -> apr_status_t) {
        // SAFETY: the pool is live; the cleanup takes no data.
        unsafe { apr_pool_cleanup_register(self.0, ptr::null(), Some(cleanup), Some(apr_pool_cleanup_null)) }
    }
}

/// The bytes of a C string, or `None` for NULL.
///
/// # Safety
/// `text` must be NULL or a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn bytes<'a>(text: *const c_char) -> Option<&'a [u8]> {
    if text.is_null() {
        None
    } else {
        // SAFETY: the caller guarantees a live NUL-terminated string.
        Some(unsafe { CStr::from_ptr(text) }.to_bytes())
    }
}

/// The module's slot of a configuration vector, for writing while Apache
/// reads configuration.
///
/// # Safety
/// As for [`module_config`], and nothing else may access the record.
pub(crate) unsafe fn module_config_mut<'a, T>(vector: *mut ap_conf_vector_t) -> Option<&'a mut T> {
    let index = usize::try_from(crate::module::module_index()).ok()?;
    // SAFETY: as in `module_config`; the caller has the only access.
    let slot = unsafe { *vector.cast::<*mut c_void>().add(index) };
    // SAFETY: the slot holds this module's `T` or NULL (caller contract).
    unsafe { slot.cast::<T>().as_mut() }
}

/// The module's slot of a configuration vector (`ap_get_module_config`).
///
/// # Safety
/// `vector` must be a configuration vector of the running configuration,
/// in which the module's slot holds a `T` created by this module.
pub(crate) unsafe fn module_config<'a, T>(vector: *mut ap_conf_vector_t) -> Option<&'a T> {
    let index = usize::try_from(crate::module::module_index()).ok()?;
    // SAFETY: a configuration vector is an array of one pointer per module,
    // indexed by module_index (the layout ap_get_module_config reads).
    let slot = unsafe { *vector.cast::<*mut c_void>().add(index) };
    // SAFETY: the slot holds this module's `T` or NULL (caller contract).
    unsafe { slot.cast::<T>().as_ref() }
}

/// The log levels of Apache's error log.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

impl Level {
    fn apache(self) -> c_int {
        (match self {
            Level::Error => APLOG_ERR,
            Level::Warn => APLOG_WARNING,
            Level::Info => APLOG_INFO,
            Level::Debug => APLOG_DEBUG,
        }) as c_int
    }
}

/// The lines of a message as C strings: Apache escapes a newline inside
/// one log entry, so a traceback is logged line by line, as mod_wsgi does.
fn c_lines(message: &str) -> impl Iterator<Item = Vec<u8>> + '_ {
    message.trim_end_matches('\n').split('\n').map(|line| {
        let mut text: Vec<u8> = line.bytes().map(|b| if b == 0 { b'?' } else { b }).collect();
        text.push(0);
        text
    })
}

/// Writes `message` to a server's error log (the main server's for NULL).
pub(crate) fn log_server(server: *const server_rec, level: Level, message: &str) {
    for text in c_lines(message) {
        // SAFETY: the format is a literal "%s" consuming one NUL-terminated
        // string; `server` is NULL or a live server record.
        unsafe {
            ap_log_error_(
                c"mod_wsgi".as_ptr(),
                0,
                crate::module::module_index(),
                level.apache(),
                0,
                server,
                c"%s".as_ptr(),
                text.as_ptr().cast::<c_char>(),
            )
        }
    }
}

/// A configuration directive being processed (`cmd_parms`).
pub(crate) struct Command(*mut cmd_parms);

impl Command {
    /// # Safety
    /// `cmd` must be the live `cmd_parms` of the directive being processed.
    pub(crate) unsafe fn from_raw(cmd: *mut cmd_parms) -> Command {
        Command(cmd)
    }

    fn parms(&self) -> &cmd_parms {
        // SAFETY: live for the call (constructor contract).
        unsafe { &*self.0 }
    }

    /// The directive's name as registered.
    pub(crate) fn name(&self) -> String {
        // SAFETY: `cmd` points at our command table entry, whose name is a
        // static C string.
        let name = unsafe { bytes((*self.parms().cmd).name) };
        String::from_utf8_lossy(name.unwrap_or_default()).into_owned()
    }

    /// Apache's check that the directive stands where `forbidden` allows:
    /// `Err(message)` otherwise.
    pub(crate) fn check_context(&self, forbidden: u32) -> Result<(), *const c_char> {
        // SAFETY: the cmd_parms is live; Apache returns NULL or a pool
        // string.
        let error = unsafe { ap_check_cmd_context(self.0, forbidden) };
        if error.is_null() {
            Ok(())
        } else {
            Err(error)
        }
    }

    /// This module's record of the server being configured.
    pub(crate) fn server_config_mut<'c, T>(&self) -> Option<&'c mut T> {
        // SAFETY: the server being configured is live and its vector holds
        // our record; nothing else touches it while Apache reads
        // configuration (single-threaded).
        unsafe { module_config_mut((*self.parms().server).module_config) }
    }

    /// The configuration pool, for error messages.
    pub(crate) fn pool(&self) -> Pool {
        Pool(self.parms().pool)
    }
}

/// A request being served (`request_rec`), on the thread Apache gave it.
pub(crate) struct Request(*mut request_rec);

impl Request {
    /// # Safety
    /// `r` must be a live request record, used only on the calling thread
    /// and only while Apache's call into the module lasts.
    pub(crate) unsafe fn from_raw(r: *mut request_rec) -> Request {
        Request(r)
    }

    fn rec(&self) -> &request_rec {
        // SAFETY: live for the call (constructor contract).
        unsafe { &*self.0 }
    }

    fn rec_mut(&mut self) -> &mut request_rec {
        // SAFETY: live for the call, and Apache does not touch it while the
        // module runs (constructor contract).
        unsafe { &mut *self.0 }
    }

    /// The request's pool.
    pub(crate) fn pool(&self) -> Pool {
        Pool(self.rec().pool)
    }

    /// The decoded, normalised URL path (`r->uri`).
    pub(crate) fn uri(&self) -> &[u8] {
        // SAFETY: a NUL-terminated pool string of the request, or NULL.
        unsafe { bytes(self.rec().uri) }.unwrap_or_default()
    }

    /// The translated file name (`r->filename`).
    pub(crate) fn filename(&self) -> &[u8] {
        // SAFETY: as for `uri`.
        unsafe { bytes(self.rec().filename) }.unwrap_or_default()
    }

    /// Sets `r->filename`.
    pub(crate) fn set_filename(&mut self, name: &[u8]) {
        let copy = self.pool().c_string(name);
        self.rec_mut().filename = copy;
    }

    /// The handler name (`r->handler`).
    pub(crate) fn handler(&self) -> Option<&[u8]> {
        // SAFETY: as for `uri`.
        unsafe { bytes(self.rec().handler) }
    }

    /// Sets `r->handler` to a static name.
    pub(crate) fn set_handler(&mut self, handler: &'static CStr) {
        self.rec_mut().handler = handler.as_ptr();
    }

    /// `r->path_info` (what follows the file name in the URL).
    pub(crate) fn path_info(&self) -> &[u8] {
        // SAFETY: as for `uri`.
        unsafe { bytes(self.rec().path_info) }.unwrap_or_default()
    }

    /// `r->finfo.mtime` (microseconds since the epoch) when Apache found
    /// the translated file and read its modification time.
    pub(crate) fn file_mtime_us(&self) -> Option<i64> {
        /// `APR_FINFO_MTIME` of apr_file_info.h (a macro bindgen leaves out).
        const APR_FINFO_MTIME: i32 = 0x0000_0010;
        let finfo = &self.rec().finfo;
        (finfo.filetype != 0 && finfo.valid & APR_FINFO_MTIME != 0).then_some(finfo.mtime)
    }

    /// Whether the translated file exists, and whether it is a directory.
    pub(crate) fn file_kind(&self) -> FileKind {
        match self.rec().finfo.filetype {
            0 => FileKind::Missing,
            kind if kind == apr_filetype_e_APR_DIR => FileKind::Directory,
            _ => FileKind::Other,
        }
    }

    /// `AcceptPathInfo Off` for this request.
    pub(crate) fn rejects_path_info(&self) -> bool {
        self.rec().used_path_info == AP_REQ_REJECT_PATH_INFO as c_int
    }

    /// Whether only the head of the response is sent (HEAD).
    pub(crate) fn header_only(&self) -> bool {
        self.rec().header_only != 0
    }

    /// `r->notes[key]`.
    pub(crate) fn note(&self, key: &CStr) -> Option<&[u8]> {
        // SAFETY: a live table of the request; the value is a pool string.
        unsafe { bytes(apr_table_get(self.rec().notes, key.as_ptr())) }
    }

    /// Sets `r->notes[key]`.
    pub(crate) fn set_note(&mut self, key: &'static CStr, value: &[u8]) {
        let value = self.pool().c_string(value);
        // SAFETY: `key` is static and `value` lives in the request pool, as
        // apr_table_setn requires.
        unsafe { apr_table_setn(self.rec().notes, key.as_ptr(), value) }
    }

    /// The options in effect for the directory (`ap_allow_options`).
    pub(crate) fn allows_exec_cgi(&self) -> bool {
        // SAFETY: a live request.
        let options = unsafe { ap_allow_options(self.0) };
        options & OPT_EXECCGI as c_int != 0
    }

    /// This module's per-server configuration for the request. The
    /// configuration outlives every request, hence the free lifetime.
    pub(crate) fn server_config<'c, T>(&self) -> Option<&'c T> {
        // SAFETY: the server's configuration vector, whose slot holds our
        // server configuration.
        unsafe { module_config((*self.rec().server).module_config) }
    }

    /// This module's per-directory configuration for the request (it lives
    /// in the configuration or the request pool, beyond the handler).
    pub(crate) fn dir_config<'c, T>(&self) -> Option<&'c T> {
        // SAFETY: the request's merged per-directory vector.
        unsafe { module_config(self.rec().per_dir_config) }
    }

    /// The host name of the matched server (`ServerName`).
    pub(crate) fn server_hostname(&self) -> &[u8] {
        // SAFETY: the server record and its host name live as long as the
        // configuration.
        unsafe { bytes((*self.rec().server).server_hostname) }.unwrap_or_default()
    }

    /// The port of the `Listen` address the connection arrived on, and its
    /// host (`""` for a wildcard listener).
    pub(crate) fn listener(&self) -> (String, u16) {
        // SAFETY: the connection and its local address are live for the
        // request; `port` is a plain field.
        let (port, ip) = unsafe {
            let conn = &*self.rec().connection;
            let local = &*conn.local_addr;
            (local.port, bytes(conn.local_ip))
        };
        (String::from_utf8_lossy(ip.unwrap_or_default()).into_owned(), port)
    }

    /// The client's host name, when Apache has looked it up
    /// (`HostnameLookups`).
    pub(crate) fn remote_host(&self) -> Option<&[u8]> {
        // Apache's REMOTE_HOST lookup type: the name only if known.
        const REMOTE_HOST: c_int = 0;
        // SAFETY: the connection and per-directory config are live; Apache
        // returns NULL or a connection-pool string.
        unsafe {
            bytes(ap_get_remote_host(
                self.rec().connection,
                self.rec().per_dir_config.cast(),
                REMOTE_HOST,
                ptr::null_mut(),
            ))
        }
    }

    /// The authenticated user (`r->user`).
    pub(crate) fn user(&self) -> Option<&[u8]> {
        // SAFETY: as for `uri`.
        unsafe { bytes(self.rec().user) }
    }

    /// Replaces the authenticated user's name.
    pub(crate) fn set_user(&self, name: &[u8]) {
        let name = self.pool().c_string(name);
        // SAFETY: a plain field write through the raw pointer; the string
        // lives in the request pool.
        unsafe { (*self.0).user = name }
    }

    /// The client's IP address text.
    pub(crate) fn client_ip(&self) -> &[u8] {
        // SAFETY: the connection lives as long as the request.
        unsafe { bytes(self.rec().useragent_ip) }.unwrap_or_default()
    }

    /// The CGI variables of the request, as Apache makes them for CGI
    /// scripts (`ap_add_common_vars` and `ap_add_cgi_vars` into
    /// `r->subprocess_env`), in table order.
    pub(crate) fn cgi_variables(&mut self, visit: impl FnMut(&[u8], &[u8])) {
        // SAFETY: both functions fill the live request's subprocess_env.
        unsafe {
            ap_add_common_vars(self.0);
            ap_add_cgi_vars(self.0);
        }
        // SAFETY: a live table of the request.
        unsafe { visit_table(self.rec().subprocess_env, visit) }
    }

    /// A variable of the request's environment (`SetEnv`, the CGI
    /// variables once made).
    pub(crate) fn env_var(&self, name: &CStr) -> Option<&[u8]> {
        // SAFETY: a live table; the value is a pool string.
        unsafe { bytes(apr_table_get(self.rec().subprocess_env, name.as_ptr())) }
    }

    /// The request headers (name, value) in arrival order.
    pub(crate) fn headers_in(&self, visit: impl FnMut(&[u8], &[u8])) {
        // SAFETY: a live table of the request.
        unsafe { visit_table(self.rec().headers_in, visit) }
    }

    /// Writes `message` to the error log with the request's context.
    pub(crate) fn log(&self, level: Level, message: &str) {
        log_request(self.0, level, message);
    }

    /// Prepares reading the body (`ap_setup_client_block`): `Err(status)`
    /// for a body the server refuses (411 for chunked when not allowed, 413
    /// over `LimitRequestBody`, 400 for a bad length).
    pub(crate) fn setup_body(&mut self, chunked_allowed: bool) -> Result<(), c_int> {
        let policy = if chunked_allowed { REQUEST_CHUNKED_DECHUNK } else { REQUEST_CHUNKED_ERROR };
        // SAFETY: a live request at the handler phase.
        let status = unsafe { ap_setup_client_block(self.0, policy as c_int) };
        if status == OK as c_int {
            // SAFETY: as above; sends 100 Continue when the client asked.
            unsafe { ap_should_client_block(self.0) };
            Ok(())
        } else {
            Err(status)
        }
    }

    /// Sets the response status and status line.
    pub(crate) fn set_status(&self, status: u16, line: &[u8]) {
        let line = self.pool().c_string(line);
        // SAFETY: plain field writes on the live request, through the raw
        // pointer (no reference to the record is held across them).
        unsafe {
            (*self.0).status = c_int::from(status);
            (*self.0).status_line = line;
        }
    }

    /// Adds a response header; `Content-Type` and `Content-Length` go where
    /// Apache's filters look for them.
    pub(crate) fn add_header(&self, name: &[u8], value: &[u8]) {
        let pool = self.pool();
        if name.eq_ignore_ascii_case(b"content-type") {
            let value = pool.c_string(value);
            // SAFETY: `value` lives in the request pool.
            unsafe { ap_set_content_type(self.0, value) };
            return;
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            if let Some(length) = std::str::from_utf8(value).ok().and_then(|v| v.trim().parse::<i64>().ok()) {
                // SAFETY: a live request.
                unsafe { ap_set_content_length(self.0, length) };
                return;
            }
        }
        let (name, value) = (pool.c_string(name), pool.c_string(value));
        // SAFETY: both strings live in the request pool.
        unsafe { apr_table_addn(self.rec().headers_out, name, value) }
    }

    /// Writes body bytes to the output filters.
    pub(crate) fn write(&self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let len = c_int::try_from(data.len()).map_err(|_| io::Error::other("chunk too large"))?;
        // SAFETY: `data` is valid for `len` bytes; Apache copies what it
        // keeps.
        let written = unsafe { ap_rwrite(data.as_ptr().cast(), len, self.0) };
        self.delivered(written >= 0)
    }

    /// Flushes the output filters to the client.
    pub(crate) fn flush(&self) -> io::Result<()> {
        // SAFETY: a live request.
        let status = unsafe { ap_rflush(self.0) };
        self.delivered(status >= 0)
    }

    /// The result of handing output to the filters: `Ok` when they took it
    /// (`taken`) and the client is still connected.
    fn delivered(&self, taken: bool) -> io::Result<()> {
        if taken && !self.connection_aborted() {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::ConnectionAborted, "client connection closed"))
        }
    }

    /// Ends the response now: passes the end of stream through the request's
    /// output filters (which then frame it as they would have: a
    /// Content-Length they can compute is still set) and flushes the
    /// connection's filters, so the response reaches the client before
    /// Apache looks for the connection's next request. Apache's core output
    /// filter holds a response under 4 KiB until then otherwise, and the
    /// check for a pipelined request, made before that write, always finds
    /// nothing: every keep-alive request then goes back to the listener
    /// thread and wakes a worker, where a static file is answered at once.
    /// Only for a main request: a subrequest's end is not its connection's.
    pub(crate) fn end_response(&self) -> io::Result<()> {
        let r = self.rec();
        if !r.main.is_null() || r.eos_sent != 0 {
            return Ok(());
        }
        // SAFETY: a live main request, its connection's filters, bucket
        // allocator and pool.
        unsafe {
            let conn = &*r.connection;
            let brigade = apr_brigade_create(r.pool, conn.bucket_alloc);
            let status = pass_buckets(r.output_filters, brigade, &[apr_bucket_eos_create(conn.bucket_alloc)]);
            if status == APR_SUCCESS as apr_status_t && !self.connection_aborted() {
                let _ = pass_buckets(conn.output_filters, brigade, &[apr_bucket_flush_create(conn.bucket_alloc)]);
            }
        }
        // Only a client that left is an error here, as when Apache ends
        // the stream itself.
        self.delivered(true)
    }

    /// Sends `len` bytes of the open file `fd` from `offset` as a file
    /// bucket (sendfile where the filters allow), then flushes.
    pub(crate) fn send_file(&self, fd: c_int, offset: u64, len: u64) -> io::Result<u64> {
        let pool = self.rec().pool;
        // SAFETY: a live request, its connection's bucket allocator and
        // pool. The APR file wraps `fd` without owning it (the Python file
        // object keeps it open until after this call returns and the data
        // has been passed on: the brigade is flushed before returning).
        unsafe {
            let conn = &*self.rec().connection;
            let mut file: *mut apr_file_t = ptr::null_mut();
            let mut os_fd = fd;
            if apr_os_file_put(&mut file, &mut os_fd, 0, pool) != APR_SUCCESS as apr_status_t {
                return Err(io::Error::other("cannot wrap the file for Apache"));
            }
            let brigade = apr_brigade_create(pool, conn.bucket_alloc);
            let offset = i64::try_from(offset).map_err(|_| io::Error::other("file offset too large"))?;
            let bucket = apr_bucket_file_create(file, offset, len as apr_size_t, pool, conn.bucket_alloc);
            let flush = apr_bucket_flush_create(conn.bucket_alloc);
            let status = pass_buckets(self.rec().output_filters, brigade, &[bucket, flush]);
            self.delivered(status == APR_SUCCESS as apr_status_t)?;
        }
        Ok(len)
    }

    /// Makes Apache close the client connection after this response (it
    /// was cut short).
    pub(crate) fn close_connection(&self) {
        // SAFETY: a plain field write on the live connection record.
        unsafe { (*self.rec().connection).keepalive = ap_conn_keepalive_e_AP_CONN_CLOSE }
    }

    /// Whether the client connection is known to be gone.
    pub(crate) fn connection_aborted(&self) -> bool {
        // SAFETY: the connection lives as long as the request.
        unsafe { (*self.rec().connection).aborted != 0 }
    }

    /// When the request arrived, in microseconds since the epoch.
    pub(crate) fn request_time_us(&self) -> u64 {
        u64::try_from(self.rec().request_time).unwrap_or(0)
    }

    /// Apache's id for the request in its logs, if it made one.
    pub(crate) fn log_id(&self) -> Option<&[u8]> {
        // SAFETY: as for `uri`.
        unsafe { bytes(self.rec().log_id) }
    }

    /// The server port as Apache reports it (`ap_get_server_port`).
    pub(crate) fn server_port(&self) -> u16 {
        // SAFETY: a live request.
        unsafe { ap_get_server_port(self.0) }
    }

    /// Apache's id for the request's connection in its logs, if one was
    /// made (mod_ssl's connection-level logging makes one).
    pub(crate) fn connection_log_id(&self) -> Option<&[u8]> {
        // SAFETY: the connection and its pool strings live as long as the
        // request.
        unsafe { bytes((*self.rec().connection).log_id) }
    }

    /// `ssl_is_https(r->connection)`: whether the connection uses TLS;
    /// `None` when no module registered the optional function.
    pub(crate) fn ssl_is_https(&self) -> Option<bool> {
        let function = optional_fn(c"ssl_is_https")?;
        // SAFETY: functions registered under this name have the type
        // mod_ssl.h declares (APR_DECLARE_OPTIONAL_FN(int, ssl_is_https,
        // (conn_rec *))); the registry stores them type-erased.
        let function = unsafe { std::mem::transmute::<OptionalFn, SslIsHttps>(function) };
        // SAFETY: a live connection of the request, on its own thread.
        Some(unsafe { function(self.rec().connection) } != 0)
    }

    /// `ssl_var_lookup(r->pool, r->server, r->connection, r, name)`: the
    /// value of a TLS variable (a NUL ends `name`); `None` when no module
    /// registered the optional function or it answers NULL.
    pub(crate) fn ssl_var_lookup(&self, name: &[u8]) -> Option<Vec<u8>> {
        let function = optional_fn(c"ssl_var_lookup")?;
        // SAFETY: as for `ssl_is_https`, with mod_ssl.h's type
        // (char *(apr_pool_t *, server_rec *, conn_rec *, request_rec *,
        // char *)).
        let function = unsafe { std::mem::transmute::<OptionalFn, SslVarLookup>(function) };
        let mut name: Vec<u8> = name.split(|&b| b == 0).next().unwrap_or_default().to_vec();
        name.push(0);
        let rec = self.rec();
        // SAFETY: the request, its pool, server and connection are live and
        // used on the request's thread; `name` is NUL-terminated and outlives
        // the call; the answer is NULL or a string in the request's pool,
        // copied before returning.
        unsafe {
            let value = function(rec.pool, rec.server, rec.connection, self.0, name.as_mut_ptr().cast());
            bytes(value).map(<[u8]>::to_vec)
        }
    }

    /// A reader of the request body through Apache's input filters (after
    /// [`Request::setup_body`]).
    pub(crate) fn body_reader(&self) -> BodyReader<'_> {
        BodyReader { request: self.0, _request: std::marker::PhantomData }
    }
}

/// A function of APR's optional-function registry, type-erased
/// (`apr_opt_fn_t *`).
type OptionalFn = unsafe extern "C" fn();

/// mod_ssl's `ssl_is_https`.
type SslIsHttps = unsafe extern "C" fn(*mut conn_rec) -> c_int;

/// mod_ssl's `ssl_var_lookup`.
type SslVarLookup =
    unsafe extern "C" fn(*mut apr_pool_t, *mut server_rec, *mut conn_rec, *mut request_rec, *mut c_char) -> *mut c_char;

extern "C" {
    /// APR-util's optional-function registry (`apr_optional.h`, what
    /// `APR_RETRIEVE_OPTIONAL_FN` expands to): the function registered
    /// under `name`, or NULL. Not in the generated bindings.
    fn apr_dynamic_fn_retrieve(name: *const c_char) -> Option<OptionalFn>;
}

/// The optional function registered under `name`, looked up on every use:
/// a restart may load its module at another address, or not at all, and
/// this library outlives every configuration generation. (Apache 2.4.49
/// and later register `ssl_is_https` and `ssl_var_lookup` in the core,
/// answering "no TLS" without mod_ssl.)
fn optional_fn(name: &CStr) -> Option<OptionalFn> {
    // SAFETY: a NUL-terminated name; the registry is only written while
    // Apache reads its configuration, single-threaded.
    unsafe { apr_dynamic_fn_retrieve(name.as_ptr()) }
}

/// A request's TLS facts from mod_ssl, as wsgi-core's
/// [`wsgi_core::app::SslLookup`]: "no TLS" when no module provides them.
pub(crate) struct RequestSsl<'r> {
    request: &'r Request,
}

impl<'r> RequestSsl<'r> {
    /// The TLS facts of `request`, valid while it is.
    pub(crate) fn new(request: &'r Request) -> RequestSsl<'r> {
        RequestSsl { request }
    }
}

impl wsgi_core::app::SslLookup for RequestSsl<'_> {
    fn is_https(&self) -> bool {
        self.request.ssl_is_https().unwrap_or(false)
    }

    fn var_lookup(&self, name: &[u8]) -> Option<Vec<u8>> {
        self.request.ssl_var_lookup(name)
    }
}

/// The request body, read through Apache's input filters.
pub(crate) struct BodyReader<'r> {
    request: *mut request_rec,
    _request: std::marker::PhantomData<&'r Request>,
}

impl io::Read for BodyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // Apache's read size is a signed long; keep it within bounds.
        let want = buf.len().min(1 << 30);
        // SAFETY: the request outlives the reader (lifetime), and is used on
        // its own thread; `buf` is valid for `want` writable bytes. The
        // response side touches other fields only, never at the same time.
        let n = unsafe { ap_get_client_block(self.request, buf.as_mut_ptr().cast(), want) };
        usize::try_from(n).map_err(|_| io::Error::new(io::ErrorKind::ConnectionAborted, "error reading request body"))
    }
}

/// `wsgi.errors` and tracebacks: the error log with a request's context.
pub(crate) struct RequestLog<'r> {
    request: *const request_rec,
    _request: std::marker::PhantomData<&'r Request>,
}

impl<'r> RequestLog<'r> {
    /// A log for `request`, valid while it is.
    pub(crate) fn new(request: &'r Request) -> RequestLog<'r> {
        RequestLog { request: request.0, _request: std::marker::PhantomData }
    }
}

// SAFETY: ap_log_rerror only reads the request record and writes to the
// error log under Apache's own locking; the record outlives the log.
unsafe impl Sync for RequestLog<'_> {}

impl wsgi_core::ErrorLog for RequestLog<'_> {
    fn log(&self, level: wsgi_core::LogLevel, message: &str) {
        log_request(self.request, Level::from(level), message);
    }
}

impl From<wsgi_core::LogLevel> for Level {
    fn from(level: wsgi_core::LogLevel) -> Level {
        match level {
            wsgi_core::LogLevel::Error => Level::Error,
            wsgi_core::LogLevel::Warn => Level::Warn,
            wsgi_core::LogLevel::Info => Level::Info,
            wsgi_core::LogLevel::Debug => Level::Debug,
        }
    }
}

/// A server record of the running configuration.
#[derive(Clone, Copy)]
pub(crate) struct Server(*mut server_rec);

// SAFETY: server records are read-only once configuration is loaded, and
// live as long as it; logging through them is thread-safe.
unsafe impl Send for Server {}
// SAFETY: as above.
unsafe impl Sync for Server {}

/// The server's error log as wsgi-core's log, for messages not tied to a
/// request (preloading, daemon processes).
impl wsgi_core::ErrorLog for Server {
    fn log(&self, level: wsgi_core::LogLevel, message: &str) {
        log_server(self.0, Level::from(level), message);
    }
}

impl Server {
    /// # Safety
    /// `server` must be a server record of the running configuration.
    pub(crate) unsafe fn from_raw(server: *mut server_rec) -> Server {
        Server(server)
    }

    /// This module's configuration for the server.
    pub(crate) fn config<T>(&self) -> Option<&T> {
        // SAFETY: the server's configuration vector holds our record.
        unsafe { module_config((*self.0).module_config) }
    }

    /// Writes `message` to the server's error log.
    pub(crate) fn log(&self, level: Level, message: &str) {
        log_server(self.0, level, message);
    }

    /// The next server record (virtual hosts follow the main server).
    pub(crate) fn next(&self) -> Option<Server> {
        // SAFETY: a live server record; `next` is NULL or another one.
        let next = unsafe { (*self.0).next };
        (!next.is_null()).then_some(Server(next))
    }

    /// The server's `ServerName` host.
    pub(crate) fn hostname(&self) -> String {
        // SAFETY: a live server record with a NUL-terminated host name or NULL.
        let name = unsafe { bytes((*self.0).server_hostname) };
        String::from_utf8_lossy(name.unwrap_or_default()).into_owned()
    }

    /// Whether it is a `<VirtualHost>`.
    pub(crate) fn is_virtual(&self) -> bool {
        // SAFETY: a plain field of a live record.
        unsafe { (*self.0).is_virtual != 0 }
    }
}

/// Whether Apache is in its first, trial reading of the configuration at
/// startup (nothing should be started then).
pub(crate) fn in_trial_configuration() -> bool {
    // SAFETY: a query without side effects.
    unsafe { ap_state_query(AP_SQ_MAIN_STATE as c_int) == AP_SQ_MS_CREATE_PRE_CONFIG as c_int }
}

/// The user and group Apache's children run as (`User`, `Group`).
pub(crate) fn child_identity() -> (Option<String>, Option<String>, u32, u32) {
    // SAFETY: ap_unixd_config is set while the configuration is read and
    // only read afterwards; its names are NULL or static strings.
    unsafe {
        let config = &raw const ap_unixd_config;
        let text = |p: *const c_char| bytes(p).map(|b| String::from_utf8_lossy(b).into_owned());
        (text((*config).user_name), text((*config).group_name), (*config).user_id, (*config).group_id)
    }
}

/// A path under Apache's runtime directory (`DefaultRuntimeDir`).
pub(crate) fn runtime_dir_relative(pool: Pool, name: &str) -> std::path::PathBuf {
    let name = std::ffi::CString::new(name).unwrap_or_default();
    // SAFETY: a live pool and a NUL-terminated name; Apache returns a pool
    // string or NULL.
    let path = unsafe { bytes(ap_runtime_dir_relative(pool.0, name.as_ptr())) };
    std::path::PathBuf::from(std::ffi::OsStr::from_bytes(path.unwrap_or_default()))
}

/// A path relative to `ServerRoot` (absolute paths unchanged).
pub(crate) fn server_root_relative(pool: Pool, path: &std::path::Path) -> std::path::PathBuf {
    let Ok(name) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return path.to_path_buf();
    };
    // SAFETY: as for `runtime_dir_relative`.
    let path = unsafe { bytes(ap_server_root_relative(pool.0, name.as_ptr())) };
    std::path::PathBuf::from(std::ffi::OsStr::from_bytes(path.unwrap_or_default()))
}

/// A process Apache's parent should know is ours, so its child reaping
/// tells us when it dies.
struct OtherChild {
    process: apr_proc_t,
    group: String,
    died: fn(&str, i32),
}

unsafe extern "C" fn other_child_event(reason: c_int, data: *mut c_void, _status: c_int) {
    guard((), || {
        // SAFETY: `data` is the pool-owned OtherChild registered below.
        let child = unsafe { &*data.cast::<OtherChild>() };
        let reason = reason as u32;
        if reason == APR_OC_REASON_DEATH || reason == APR_OC_REASON_LOST {
            // SAFETY: unregistering the registration this call is about.
            unsafe { apr_proc_other_child_unregister(data) };
            (child.died)(&child.group, child.process.pid);
        }
    })
}

/// Registers `pid` with Apache's parent as one of ours: `died(group, pid)`
/// runs when it exits (until `pool` is cleared, at the next reload).
pub(crate) fn register_other_child(pool: Pool, pid: i32, group: &str, died: fn(&str, i32)) {
    let child = pool.adopt(OtherChild {
        process: apr_proc_t { pid, in_: ptr::null_mut(), out: ptr::null_mut(), err: ptr::null_mut() },
        group: group.to_string(),
        died,
    });
    // SAFETY: the record lives in `pool` as long as the registration,
    // which APR removes when the pool is cleared.
    unsafe {
        apr_proc_other_child_register(
            &raw mut (*child).process,
            Some(other_child_event),
            child.cast(),
            ptr::null_mut(),
            pool.0,
        )
    }
}

/// What `r->finfo` says about the translated file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Missing,
    Directory,
    Other,
}

/// Writes `message` to the error log with a request's context.
pub(crate) fn log_request(r: *const request_rec, level: Level, message: &str) {
    for text in c_lines(message) {
        // SAFETY: the format is a literal "%s" consuming one NUL-terminated
        // string; `r` is a live request (callers hold it for the request).
        unsafe {
            ap_log_rerror_(
                c"mod_wsgi".as_ptr(),
                0,
                crate::module::module_index(),
                level.apache(),
                0,
                r,
                c"%s".as_ptr(),
                text.as_ptr().cast::<c_char>(),
            )
        }
    }
}

/// Visits the entries of an APR table in order, without copying them.
///
/// # Safety
/// `table` must be a live table.
unsafe fn visit_table(table: *const apr_table_t, mut visit: impl FnMut(&[u8], &[u8])) {
    // SAFETY: apr_table_elts returns the table's array header.
    let header = unsafe { &*apr_table_elts(table) };
    let count = usize::try_from(header.nelts).unwrap_or(0);
    let entries = header.elts.cast::<apr_table_entry_t>();
    for index in 0..count {
        // SAFETY: `elts` holds `nelts` table entries.
        let entry = unsafe { &*entries.add(index) };
        // SAFETY: keys and values are pool strings (a NULL key is a
        // deleted entry).
        let (Some(key), value) = (unsafe { bytes(entry.key) }, unsafe { bytes(entry.val) }) else {
            continue;
        };
        visit(key, value.unwrap_or_default());
    }
}

/// Passes `buckets`, in order, down `filter` in `brigade`, and empties the
/// brigade again for reuse.
///
/// # Safety
/// `filter` and `brigade` must be live, and every bucket new (on no ring)
/// and made from the brigade's bucket allocator.
unsafe fn pass_buckets(
    filter: *mut ap_filter_t,
    brigade: *mut apr_bucket_brigade,
    buckets: &[*mut apr_bucket],
) -> apr_status_t {
    // SAFETY: as the caller promises.
    unsafe {
        for &bucket in buckets {
            brigade_insert_tail(brigade, bucket);
        }
        let status = ap_pass_brigade(filter, brigade);
        apr_brigade_cleanup(brigade.cast());
        status
    }
}

/// `APR_BRIGADE_INSERT_TAIL`: links `bucket` at the end of the brigade's
/// ring.
///
/// # Safety
/// Both must be live, and `bucket` not on any ring.
unsafe fn brigade_insert_tail(brigade: *mut apr_bucket_brigade, bucket: *mut apr_bucket) {
    // SAFETY: the brigade's list head is a sentinel element whose address,
    // offset back by the link's position in apr_bucket, acts as a bucket
    // (APR_RING_SENTINEL); linking follows APR_RING_INSERT_TAIL.
    unsafe {
        let link_offset = std::mem::offset_of!(apr_bucket, link);
        let sentinel = (&raw mut (*brigade).list).cast::<u8>().sub(link_offset).cast::<apr_bucket>();
        let last = (*brigade).list.prev;
        (*bucket).link.next = sentinel;
        (*bucket).link.prev = last;
        (*last).link.next = bucket;
        (*brigade).list.prev = bucket;
    }
}

/// `ap_mpm_query`: the MPM's answer to `query`, if it knows it.
pub(crate) fn mpm_query(query: u32) -> Option<c_int> {
    let mut result: c_int = 0;
    // SAFETY: `result` is a valid out-pointer.
    let status = unsafe { ap_mpm_query(query as c_int, &mut result) };
    (status == APR_SUCCESS as apr_status_t).then_some(result)
}

/// Adds `component` to the server's version banner.
pub(crate) fn add_version_component(pool: Pool, component: &CStr) {
    // SAFETY: a live configuration pool and a static string.
    unsafe { ap_add_version_component(pool.0, component.as_ptr()) }
}
