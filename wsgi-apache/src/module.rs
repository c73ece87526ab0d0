//! The module record Apache loads (`wsgi_module`), its command table, and
//! the `extern "C"` entry points Apache calls. Each entry point catches
//! panics and hands over to safe code at once.

use std::cell::UnsafeCell;
use std::ffi::{c_char, c_int, c_ulong, c_void, CStr};
use std::ptr;

use crate::config::{apply_directive, DirConfig, DirectiveSite, ServerConfig};
use crate::ffi::{self, guard, Command, Pool, Request, Server};

/// The module record. Apache writes into it (its index, its place in the
/// module list), hence the cell.
#[repr(transparent)]
pub struct ModuleRecord(UnsafeCell<ffi::module>);

// SAFETY: Apache reads and writes the record only while it loads
// configuration, single-threaded; request threads only read module_index,
// which no longer changes then.
unsafe impl Sync for ModuleRecord {}

/// The symbol `LoadModule wsgi_module` looks up.
#[allow(non_upper_case_globals)]
#[no_mangle]
pub static wsgi_module: ModuleRecord = ModuleRecord(UnsafeCell::new(ffi::module {
    version: ffi::MODULE_MAGIC_NUMBER_MAJOR as c_int,
    minor_version: ffi::MODULE_MAGIC_NUMBER_MINOR as c_int,
    module_index: -1,
    // mod_wsgi's name, so `<IfModule mod_wsgi.c>` keeps working.
    name: c"mod_wsgi.c".as_ptr(),
    dynamic_load_handle: ptr::null_mut(),
    next: ptr::null_mut(),
    magic: ffi::MODULE_MAGIC_COOKIE as c_ulong,
    rewrite_args: None,
    create_dir_config: Some(create_dir_config),
    merge_dir_config: Some(merge_dir_config),
    create_server_config: Some(create_server_config),
    merge_server_config: Some(merge_server_config),
    cmds: (&raw const COMMANDS.0).cast(),
    register_hooks: Some(register_hooks),
    flags: 0,
}));

/// The module's index in configuration vectors (-1 before Apache adds it).
pub(crate) fn module_index() -> c_int {
    // SAFETY: a plain read of a field Apache sets once while loading.
    unsafe { (*wsgi_module.0.get()).module_index }
}

/// A command table Apache can read from any thread.
#[repr(transparent)]
pub(crate) struct CommandTable<const N: usize>(pub(crate) [ffi::command_rec; N]);

// SAFETY: the table is immutable; its pointers are to static strings and
// functions.
unsafe impl<const N: usize> Sync for CommandTable<N> {}

/// One directive taking its raw argument text.
const fn command(name: &'static CStr, req_override: u32, usage: &'static CStr) -> ffi::command_rec {
    ffi::command_rec {
        name: name.as_ptr(),
        func: ffi::cmd_func { raw_args: Some(directive) },
        cmd_data: ptr::null_mut(),
        req_override: req_override as c_int,
        args_how: ffi::cmd_how_RAW_ARGS,
        errmsg: usage.as_ptr(),
    }
}

/// `<WSGIInterpreterOptions>`: a container whose lines the handler reads
/// itself.
const fn interpreter_options_container(name: &'static CStr) -> ffi::command_rec {
    ffi::command_rec {
        name: name.as_ptr(),
        func: ffi::cmd_func { raw_args: Some(interpreter_options) },
        cmd_data: ptr::null_mut(),
        req_override: ffi::RSRC_CONF as c_int,
        args_how: ffi::cmd_how_RAW_ARGS,
        errmsg: c"<WSGIInterpreterOptions [process-group=name] [application-group=name]>".as_ptr(),
    }
}

/// The table's terminator.
const END_OF_COMMANDS: ffi::command_rec = ffi::command_rec {
    name: ptr::null(),
    func: ffi::cmd_func { raw_args: None },
    cmd_data: ptr::null_mut(),
    req_override: 0,
    args_how: ffi::cmd_how_RAW_ARGS,
    errmsg: ptr::null(),
};

include!(concat!(env!("OUT_DIR"), "/commands.rs"));

unsafe extern "C" fn create_server_config(pool: *mut ffi::apr_pool_t, _server: *mut ffi::server_rec) -> *mut c_void {
    // SAFETY: Apache passes its live configuration pool.
    let pool = unsafe { Pool::from_raw(pool) };
    guard(ptr::null_mut(), || pool.adopt(ServerConfig::default()).cast())
}

unsafe extern "C" fn merge_server_config(
    pool: *mut ffi::apr_pool_t,
    base: *mut c_void,
    add: *mut c_void,
) -> *mut c_void {
    // SAFETY: Apache passes its live pool and two records this module
    // created in `create_server_config` or here.
    let (pool, base, add) =
        unsafe { (Pool::from_raw(pool), &*base.cast::<ServerConfig>(), &*add.cast::<ServerConfig>()) };
    guard(ptr::null_mut(), || pool.adopt(ServerConfig::merged(base, add)).cast())
}

unsafe extern "C" fn create_dir_config(pool: *mut ffi::apr_pool_t, _dir: *mut c_char) -> *mut c_void {
    // SAFETY: Apache passes its live configuration pool.
    let pool = unsafe { Pool::from_raw(pool) };
    guard(ptr::null_mut(), || pool.adopt(DirConfig::default()).cast())
}

unsafe extern "C" fn merge_dir_config(pool: *mut ffi::apr_pool_t, base: *mut c_void, add: *mut c_void) -> *mut c_void {
    // SAFETY: as for `merge_server_config`, with per-directory records.
    let (pool, base, add) = unsafe { (Pool::from_raw(pool), &*base.cast::<DirConfig>(), &*add.cast::<DirConfig>()) };
    guard(ptr::null_mut(), || pool.adopt(DirConfig::merged(base, add)).cast())
}

/// `<WSGIInterpreterOptions>`: the block and its lines, read by
/// `config::interpreter_options_block`. Returns NULL or an error message.
unsafe extern "C" fn interpreter_options(
    cmd: *mut ffi::cmd_parms,
    _mconfig: *mut c_void,
    args: *const c_char,
) -> *const c_char {
    // SAFETY: Apache passes the live cmd_parms of this directive.
    let command = unsafe { Command::from_raw(cmd) };
    guard(c"mod_wsgi: internal error while reading this directive".as_ptr(), || {
        if let Err(message) = command.check_context(ffi::GLOBAL_ONLY) {
            return message;
        }
        // SAFETY: RAW_ARGS passes the rest of the line as a C string.
        let args = unsafe { ffi::bytes(args) }.unwrap_or_default();
        let result = crate::config::interpreter_options_block(&command, &String::from_utf8_lossy(args));
        match result {
            Ok(()) => ptr::null(),
            Err(message) => command.pool().c_string(message.as_bytes()),
        }
    })
}

/// Every directive of the table: parsed by wsgi-config, stored by
/// `config::apply_directive`. Returns NULL or an error message.
unsafe extern "C" fn directive(cmd: *mut ffi::cmd_parms, mconfig: *mut c_void, args: *const c_char) -> *const c_char {
    // SAFETY: Apache passes the live cmd_parms of this directive.
    let command = unsafe { Command::from_raw(cmd) };
    let failed = c"mod_wsgi: internal error while reading this directive".as_ptr();
    guard(failed, || {
        let name = command.name();
        let Some(spec) = wsgi_config::directives::find(&name) else {
            return failed;
        };
        if spec.global_only {
            if let Err(message) = command.check_context(ffi::GLOBAL_ONLY) {
                return message;
            }
        }
        // SAFETY: RAW_ARGS passes the rest of the line as a C string.
        let args = unsafe { ffi::bytes(args) }.unwrap_or_default();
        let args = String::from_utf8_lossy(args);
        // SAFETY: `mconfig` is this module's per-directory record for the
        // scope; nothing else touches it while Apache reads configuration.
        let dir = unsafe { &mut *mconfig.cast::<DirConfig>() };
        let server = command.server_config_mut::<ServerConfig>();
        let Some(server) = server else {
            return failed;
        };
        match apply_directive(DirectiveSite { name: &name, args: &args, server, dir }) {
            Ok(()) => ptr::null(),
            Err(message) => command.pool().c_string(message.as_bytes()),
        }
    })
}

/// The hook order mod_wsgi uses for URL interception: after mod_alias,
/// before mod_userdir and mod_vhost_alias.
struct HookOrder([*const c_char; 3]);
// SAFETY: immutable arrays of static strings.
unsafe impl Sync for HookOrder {}
static AFTER_ALIAS: HookOrder = HookOrder([c"mod_alias.c".as_ptr(), ptr::null(), ptr::null()]);
static BEFORE_USERDIR: HookOrder = HookOrder([c"mod_userdir.c".as_ptr(), c"mod_vhost_alias.c".as_ptr(), ptr::null()]);

unsafe extern "C" fn register_hooks(pool: *mut ffi::apr_pool_t) {
    guard((), || {
        let middle = ffi::APR_HOOK_MIDDLE as c_int;
        // SAFETY: registering static functions and static order lists.
        unsafe {
            ffi::ap_hook_check_config(Some(check_config), ptr::null(), ptr::null(), middle);
            ffi::ap_hook_post_config(Some(post_config), ptr::null(), ptr::null(), middle);
            ffi::ap_hook_child_init(Some(child_init), ptr::null(), ptr::null(), middle);
            ffi::ap_hook_translate_name(
                Some(translate_name),
                AFTER_ALIAS.0.as_ptr(),
                BEFORE_USERDIR.0.as_ptr(),
                middle,
            );
            ffi::ap_hook_handler(Some(handler), ptr::null(), ptr::null(), middle);
            ffi::ap_hook_access_checker(Some(access_checker), ptr::null(), ptr::null(), middle);
            ffi::ap_register_auth_provider(
                pool,
                ffi::AUTHN_PROVIDER_GROUP.as_ptr().cast(),
                c"wsgi".as_ptr(),
                ffi::AUTHN_PROVIDER_VERSION.as_ptr().cast(),
                (&raw const AUTHN_PROVIDER).cast(),
                ffi::AP_AUTH_INTERNAL_PER_CONF as c_int,
            );
            ffi::ap_register_auth_provider(
                pool,
                ffi::AUTHZ_PROVIDER_GROUP.as_ptr().cast(),
                c"wsgi-group".as_ptr(),
                ffi::AUTHZ_PROVIDER_VERSION.as_ptr().cast(),
                (&raw const AUTHZ_PROVIDER).cast(),
                ffi::AP_AUTH_INTERNAL_PER_CONF as c_int,
            );
        }
    })
}

/// The authn provider `wsgi` (WSGIAuthUserScript).
static AUTHN_PROVIDER: ffi::authn_provider =
    ffi::authn_provider { check_password: Some(check_password), get_realm_hash: Some(get_realm_hash) };

/// The authz provider `wsgi-group` (WSGIAuthGroupScript).
static AUTHZ_PROVIDER: ffi::authz_provider =
    ffi::authz_provider { check_authorization: Some(check_authorization), parse_require_line: None };

fn authn_status(result: wsgi_core::access::Authn, request: &Request, rethash: *mut *mut c_char) -> ffi::authn_status {
    use wsgi_core::access::Authn;
    match result {
        // The name a script gave is already the request's user.
        Authn::Granted | Authn::GrantedAs(_) => ffi::authn_status_AUTH_GRANTED,
        Authn::Denied => ffi::authn_status_AUTH_DENIED,
        Authn::UserNotFound => ffi::authn_status_AUTH_USER_NOT_FOUND,
        Authn::GeneralError => ffi::authn_status_AUTH_GENERAL_ERROR,
        Authn::RealmHash(hash) => {
            if rethash.is_null() {
                return ffi::authn_status_AUTH_GENERAL_ERROR;
            }
            // SAFETY: Apache passes a valid out-pointer; the hash lives in
            // the request pool.
            unsafe { *rethash = request.pool().c_string(&hash) };
            ffi::authn_status_AUTH_USER_FOUND
        }
    }
}

unsafe extern "C" fn check_password(
    r: *mut ffi::request_rec,
    user: *const c_char,
    password: *const c_char,
) -> ffi::authn_status {
    // SAFETY: Apache passes the live request and NUL-terminated strings.
    let (mut request, user, password) = unsafe { (Request::from_raw(r), ffi::bytes(user), ffi::bytes(password)) };
    guard(ffi::authn_status_AUTH_GENERAL_ERROR, || {
        let user = String::from_utf8_lossy(user.unwrap_or_default());
        let password = String::from_utf8_lossy(password.unwrap_or_default());
        let result = crate::auth::check_password(&mut request, &user, &password);
        authn_status(result, &request, ptr::null_mut())
    })
}

unsafe extern "C" fn get_realm_hash(
    r: *mut ffi::request_rec,
    user: *const c_char,
    realm: *const c_char,
    rethash: *mut *mut c_char,
) -> ffi::authn_status {
    // SAFETY: Apache passes the live request and NUL-terminated strings.
    let (mut request, user, realm) = unsafe { (Request::from_raw(r), ffi::bytes(user), ffi::bytes(realm)) };
    guard(ffi::authn_status_AUTH_GENERAL_ERROR, || {
        let user = String::from_utf8_lossy(user.unwrap_or_default());
        let realm = String::from_utf8_lossy(realm.unwrap_or_default());
        let result = crate::auth::get_realm_hash(&mut request, &user, &realm);
        authn_status(result, &request, rethash)
    })
}

unsafe extern "C" fn check_authorization(
    r: *mut ffi::request_rec,
    require_line: *const c_char,
    _parsed: *const c_void,
) -> ffi::authz_status {
    // SAFETY: Apache passes the live request and the Require line.
    let (mut request, line) = unsafe { (Request::from_raw(r), ffi::bytes(require_line)) };
    guard(ffi::authz_status_AUTHZ_GENERAL_ERROR, || {
        let line = String::from_utf8_lossy(line.unwrap_or_default());
        use wsgi_core::access::Authz;
        match crate::auth::check_groups(&mut request, &line) {
            Authz::Granted => ffi::authz_status_AUTHZ_GRANTED,
            Authz::Denied => ffi::authz_status_AUTHZ_DENIED,
            Authz::DeniedNoUser => ffi::authz_status_AUTHZ_DENIED_NO_USER,
            Authz::Neutral => ffi::authz_status_AUTHZ_NEUTRAL,
            Authz::GeneralError => ffi::authz_status_AUTHZ_GENERAL_ERROR,
        }
    })
}

unsafe extern "C" fn access_checker(r: *mut ffi::request_rec) -> c_int {
    // SAFETY: Apache passes the live request on its own thread.
    let mut request = unsafe { Request::from_raw(r) };
    guard(ffi::HTTP_INTERNAL_SERVER_ERROR as c_int, || crate::auth::access_checker(&mut request))
}

unsafe extern "C" fn post_config(
    pconf: *mut ffi::apr_pool_t,
    _plog: *mut ffi::apr_pool_t,
    _ptemp: *mut ffi::apr_pool_t,
    server: *mut ffi::server_rec,
) -> c_int {
    // SAFETY: Apache passes its live configuration pool and main server.
    let (pool, server) = unsafe { (Pool::from_raw(pconf), Server::from_raw(server)) };
    guard(ffi::HTTP_INTERNAL_SERVER_ERROR as c_int, || crate::embedded::post_config(pool, server))
}

unsafe extern "C" fn check_config(
    _pconf: *mut ffi::apr_pool_t,
    _plog: *mut ffi::apr_pool_t,
    _ptemp: *mut ffi::apr_pool_t,
    server: *mut ffi::server_rec,
) -> c_int {
    // SAFETY: Apache passes the main server of the configuration it read.
    let server = unsafe { Server::from_raw(server) };
    guard(ffi::HTTP_INTERNAL_SERVER_ERROR as c_int, || crate::embedded::check_config(server))
}

unsafe extern "C" fn child_init(pchild: *mut ffi::apr_pool_t, server: *mut ffi::server_rec) {
    // SAFETY: Apache passes the child's live pool and the main server.
    let (pool, server) = unsafe { (Pool::from_raw(pchild), Server::from_raw(server)) };
    guard((), || crate::embedded::child_init(pool, server))
}

unsafe extern "C" fn translate_name(r: *mut ffi::request_rec) -> c_int {
    // SAFETY: Apache passes the live request on its own thread.
    let mut request = unsafe { Request::from_raw(r) };
    guard(ffi::HTTP_INTERNAL_SERVER_ERROR as c_int, || crate::embedded::translate_name(&mut request))
}

unsafe extern "C" fn handler(r: *mut ffi::request_rec) -> c_int {
    // SAFETY: Apache passes the live request on its own thread.
    let mut request = unsafe { Request::from_raw(r) };
    guard(ffi::HTTP_INTERNAL_SERVER_ERROR as c_int, || crate::embedded::handler(&mut request))
}
