//! Calling the named functions of access, auth and group scripts.

mod common;

use common::*;
use wsgi_core::app::SslLookup;
use wsgi_interp::{HookCall, HookError, HookValue};

const AUTH_SCRIPT: &str = r#"
def check_password(environ, user, password):
    environ['wsgi.errors'].write('checking %s\n' % user)
    if user == 'alice':
        return password == 'secret'
    if user == 'bob':
        return 'robert'
    if user == 'error':
        raise ValueError('no such backend')
    if user == 'weird':
        return 42
    return None

def groups_for_user(environ, user):
    assert 'wsgi.input' not in environ and 'wsgi.errors' in environ
    return {'alice': ['Admins', b'staff'], 'bob': (), 'carol': [1]}.get(user)
"#;

fn call(scripts: &Scripts, function: &str, args: &[&str], log: &Log) -> Result<HookValue, HookError> {
    let path = scripts.write("auth.wsgi", AUTH_SCRIPT);
    let call = HookCall { script: &path, application_group: "", function, reload_on_change: true, ssl: None };
    runner().call_hook(&call, environ("GET", "/"), args, log)
}

#[test]
fn return_values_are_converted() {
    let scripts = Scripts::new("hooks");
    let log = Log::default();
    assert_eq!(call(&scripts, "check_password", &["alice", "secret"], &log), Ok(HookValue::Bool(true)));
    assert_eq!(call(&scripts, "check_password", &["alice", "wrong"], &log), Ok(HookValue::Bool(false)));
    assert_eq!(call(&scripts, "check_password", &["bob", "x"], &log), Ok(HookValue::Text("robert".into())));
    assert_eq!(call(&scripts, "check_password", &["nobody", "x"], &log), Ok(HookValue::None));
    assert_eq!(call(&scripts, "check_password", &["weird", "x"], &log), Ok(HookValue::Other("int".into())));
    assert_eq!(
        call(&scripts, "groups_for_user", &["alice"], &log),
        Ok(HookValue::Items(vec![b"Admins".to_vec(), b"staff".to_vec()]))
    );
    assert_eq!(call(&scripts, "groups_for_user", &["bob"], &log), Ok(HookValue::Items(vec![])));
    assert_eq!(call(&scripts, "groups_for_user", &["carol"], &log), Ok(HookValue::Other("list".into())));
    assert!(log.text().contains("checking alice"), "{}", log.text());
}

#[test]
fn exceptions_and_missing_functions_are_errors() {
    let scripts = Scripts::new("hooks-errors");
    let log = Log::default();
    assert_eq!(call(&scripts, "check_password", &["error", "x"], &log), Err(HookError::Raised));
    assert!(log.text().contains("ValueError: no such backend"), "{}", log.text());
    assert_eq!(call(&scripts, "get_realm_hash", &["alice", "realm"], &log), Err(HookError::Missing));
    let broken = scripts.write("broken.wsgi", "raise ImportError('broken script')\n");
    let call = HookCall {
        script: &broken,
        application_group: "",
        function: "allow_access",
        reload_on_change: true,
        ssl: None,
    };
    assert_eq!(runner().call_hook(&call, environ("GET", "/"), &["127.0.0.1"], &log), Err(HookError::Load));
    assert!(log.text().contains("broken script"), "{}", log.text());
}

/// A TLS connection as a front end would describe it.
struct FakeTls {
    https: bool,
}

impl SslLookup for FakeTls {
    fn is_https(&self) -> bool {
        self.https
    }

    fn var_lookup(&self, name: &[u8]) -> Option<Vec<u8>> {
        match name {
            b"SSL_PROTOCOL" if self.https => Some(b"TLSv1.3".to_vec()),
            b"SSL_CLIENT_S_DN_CN" if self.https => Some(b"Jos\xe9".to_vec()),
            b"SSL_UNSET" => None,
            _ => Some(Vec::new()),
        }
    }
}

/// Records what the `mod_ssl.*` callables answer, and keeps them for a
/// later call.
const SSL_SCRIPT: &str = r#"
KEPT = []
def call(function, *args):
    try:
        value = function(*args)
        return '%s %r' % (type(value).__name__, value)
    except Exception as e:
        return 'raised %s: %s' % (type(e).__name__, e)

def allow_access(environ, host):
    keys = [k for k in environ if k.startswith('mod_ssl.')]
    if not keys:
        return 'no keys'
    is_https, var_lookup = environ['mod_ssl.is_https'], environ['mod_ssl.var_lookup']
    out = [repr(keys), call(is_https), call(is_https, 1),
           call(var_lookup, 'SSL_PROTOCOL'), call(var_lookup, b'SSL_PROTOCOL'), call(var_lookup, 'SSL_CLIENT_S_DN_CN'),
           call(var_lookup, 'SSL_UNSET'), call(var_lookup, 'OTHER'), call(var_lookup, 'SSL_\u20ac'),
           call(var_lookup, 42), call(var_lookup), type(is_https).__name__, type(is_https.__self__).__name__]
    if KEPT:
        out += [call(KEPT[0]), call(KEPT[1], 'SSL_PROTOCOL')]
    KEPT[:] = [is_https, var_lookup]
    return '\n'.join(out)
"#;

fn ssl_call(scripts: &Scripts, ssl: Option<&dyn SslLookup>, log: &Log) -> String {
    let path = scripts.write("ssl.wsgi", SSL_SCRIPT);
    let call =
        HookCall { script: &path, application_group: "ssl", function: "allow_access", reload_on_change: false, ssl };
    match runner().call_hook(&call, environ("GET", "/"), &["127.0.0.1"], log) {
        Ok(HookValue::Text(text)) => text,
        other => panic!("{other:?}\n{}", log.text()),
    }
}

#[test]
fn mod_ssl_callables_answer_as_mod_wsgi_and_expire_with_the_call() {
    let scripts = Scripts::new("hooks-ssl");
    let log = Log::default();
    let tls = FakeTls { https: true };
    let first = ssl_call(&scripts, Some(&tls), &log);
    let expected = [
        "['mod_ssl.is_https', 'mod_ssl.var_lookup']",
        "int 1",
        "raised TypeError: ssl_is_https() takes exactly 0 arguments (1 given)",
        "str 'TLSv1.3'",
        "str 'TLSv1.3'",
        "str 'José'",
        "NoneType None",
        "str ''",
        "raised TypeError: byte string value expected, value containing non 'latin-1' characters found",
        "raised TypeError: byte string value expected, value of type int found",
        "raised TypeError: ssl_var_lookup() takes exactly 1 argument (0 given)",
        "builtin_function_or_method",
        "Auth",
    ];
    assert_eq!(first.lines().collect::<Vec<_>>(), expected, "{first}");
    // The previous call's callables raise once it has returned.
    let plain = FakeTls { https: false };
    let second = ssl_call(&scripts, Some(&plain), &log);
    let lines: Vec<&str> = second.lines().collect();
    assert_eq!(lines[1], "int 0", "{second}");
    assert_eq!(lines[3], "str ''", "{second}");
    assert_eq!(
        &lines[expected.len()..],
        ["raised RuntimeError: request object has expired", "raised RuntimeError: request object has expired"],
        "{second}"
    );
    // Without the front end's lookup, there are no such keys.
    assert_eq!(ssl_call(&scripts, None, &log), "no keys");
}

#[test]
fn mod_ssl_callables_refuse_other_threads() {
    let scripts = Scripts::new("hooks-ssl-thread");
    let path = scripts.write(
        "thread.wsgi",
        r#"
import threading
def allow_access(environ, host):
    out = []
    def other():
        try:
            out.append(repr(environ['mod_ssl.var_lookup']('SSL_PROTOCOL')))
        except RuntimeError as e:
            out.append('RuntimeError')
    t = threading.Thread(target=other)
    t.start()
    t.join()
    return out[0] + ' ' + environ['mod_ssl.var_lookup']('SSL_PROTOCOL')
"#,
    );
    let log = Log::default();
    let tls = FakeTls { https: true };
    let call = HookCall {
        script: &path,
        application_group: "",
        function: "allow_access",
        reload_on_change: false,
        ssl: Some(&tls),
    };
    assert_eq!(
        runner().call_hook(&call, environ("GET", "/"), &["127.0.0.1"], &log),
        Ok(HookValue::Text("RuntimeError TLSv1.3".into())),
        "{}",
        log.text()
    );
}
