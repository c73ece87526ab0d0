//! Calling the named functions of access, auth and group scripts.

mod common;

use common::*;
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
    let call = HookCall { script: &path, application_group: "", function, reload_on_change: true };
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
    let call = HookCall { script: &broken, application_group: "", function: "allow_access", reload_on_change: true };
    assert_eq!(runner().call_hook(&call, environ("GET", "/"), &["127.0.0.1"], &log), Err(HookError::Load));
    assert!(log.text().contains("broken script"), "{}", log.text());
}
