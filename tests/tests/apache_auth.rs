//! The access and auth providers in real Apache, driven with curl:
//! WSGIAccessScript, WSGIAuthUserScript (Basic and Digest, as authn
//! provider `wsgi`) and WSGIAuthGroupScript (`Require wsgi-group`).

use tests::apache::{Apache, ApacheOptions};
use tests::TempDir;

const APP: &str = r#"
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [('user=%s' % environ.get('REMOTE_USER')).encode()]
"#;

const AUTH: &str = r#"
import hashlib
USERS = {'alice': 'secret', 'carol': 'pw'}
def check_password(environ, user, password):
    assert 'wsgi.input' not in environ and 'HTTP_AUTHORIZATION' not in environ
    if user == 'bob':
        return 'robert' if password == 'builder' else False
    if user == 'broken':
        raise RuntimeError('auth backend down')
    if user not in USERS:
        return None
    return USERS[user] == password
def get_realm_hash(environ, user, realm):
    if user not in USERS:
        return None
    return hashlib.md5(('%s:%s:%s' % (user, realm, USERS[user])).encode()).hexdigest()
def groups_for_user(environ, user):
    return {'alice': ['Admins', 'staff'], 'carol': ['staff']}.get(user, [])
"#;

const ACCESS: &str = r#"
def allow_access(environ, host):
    if environ['REQUEST_URI'].startswith('/guarded/deny'):
        return False
    if environ['REQUEST_URI'].startswith('/guarded/odd'):
        return 1
    return host == '127.0.0.1'
"#;

/// `curl` status code and body for a path of `apache`, with extra arguments.
fn curl(apache: &Apache, path: &str, args: &[&str]) -> (u16, String) {
    tests::apache::curl(&format!("http://127.0.0.1:{}{path}", apache.port()), args)
}

fn start(site: &TempDir) -> Apache {
    let dir = site.path().display();
    Apache::start(&ApacheOptions {
        modules: vec!["authn_core", "authz_user", "auth_basic", "auth_digest"],
        ..ApacheOptions::ours(format!(
            "WSGIScriptAlias /basic {dir}/app.wsgi\n\
             WSGIScriptAlias /digest {dir}/app.wsgi\n\
             WSGIScriptAlias /group {dir}/app.wsgi\n\
             WSGIScriptAlias /guarded {dir}/app.wsgi\n\
             <Location /basic>\n  AuthType Basic\n  AuthName \"wsgi test\"\n  AuthBasicProvider wsgi\n\
               WSGIAuthUserScript {dir}/auth.wsgi\n  Require valid-user\n</Location>\n\
             <Location /digest>\n  AuthType Digest\n  AuthName \"digest realm\"\n  AuthDigestProvider wsgi\n\
               WSGIAuthUserScript {dir}/auth.wsgi\n  Require valid-user\n</Location>\n\
             <Location /group>\n  AuthType Basic\n  AuthName \"wsgi test\"\n  AuthBasicProvider wsgi\n\
               WSGIAuthUserScript {dir}/auth.wsgi\n  WSGIAuthGroupScript {dir}/auth.wsgi\n\
               Require wsgi-group admins\n</Location>\n\
             <Location /guarded>\n  WSGIAccessScript {dir}/access.wsgi\n</Location>\n"
        ))
    })
}

fn site() -> TempDir {
    let site = TempDir::new("apache-auth");
    site.write("app.wsgi", APP);
    site.write("auth.wsgi", AUTH);
    site.write("access.wsgi", ACCESS);
    site
}

#[test]
fn basic_auth_through_check_password() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let apache = start(&site);
    assert_eq!(curl(&apache, "/basic/", &["-u", "alice:secret"]), (200, "user=alice".into()), "{}", apache.error_log());
    assert_eq!(curl(&apache, "/basic/", &["-u", "alice:wrong"]).0, 401);
    assert_eq!(curl(&apache, "/basic/", &["-u", "nobody:x"]).0, 401);
    assert_eq!(curl(&apache, "/basic/", &[]).0, 401);
    // A returned name replaces the user's.
    assert_eq!(curl(&apache, "/basic/", &["-u", "bob:builder"]), (200, "user=robert".into()));
    // An exception is a server error, with the traceback in the log.
    assert_eq!(curl(&apache, "/basic/", &["-u", "broken:x"]).0, 500);
    let log = apache.error_log();
    assert!(log.contains("RuntimeError: auth backend down"), "{log}");
}

#[test]
fn digest_auth_through_get_realm_hash() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let apache = start(&site);
    assert_eq!(
        curl(&apache, "/digest/", &["--digest", "-u", "carol:pw"]),
        (200, "user=carol".into()),
        "{}",
        apache.error_log()
    );
    assert_eq!(curl(&apache, "/digest/", &["--digest", "-u", "carol:bad"]).0, 401);
    assert_eq!(curl(&apache, "/digest/", &["--digest", "-u", "nobody:pw"]).0, 401);
}

#[test]
fn group_authorization_through_groups_for_user() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let apache = start(&site);
    // Group names compare case-insensitively (Admins vs admins).
    assert_eq!(curl(&apache, "/group/", &["-u", "alice:secret"]), (200, "user=alice".into()), "{}", apache.error_log());
    assert_eq!(curl(&apache, "/group/", &["-u", "carol:pw"]).0, 401);
    assert!(apache.error_log().contains("User is not a member of designated groups"), "{}", apache.error_log());
}

#[test]
fn access_script_allows_denies_and_rejects_odd_answers() {
    tests::require!(tests::apache::APACHE_BINARY);
    let site = site();
    let apache = start(&site);
    assert_eq!(curl(&apache, "/guarded/ok", &[]), (200, "user=None".into()), "{}", apache.error_log());
    assert_eq!(curl(&apache, "/guarded/deny", &[]).0, 403);
    assert_eq!(curl(&apache, "/guarded/odd", &[]).0, 403);
    let log = apache.error_log();
    assert!(log.contains("Client denied by server configuration"), "{log}");
    assert!(log.contains("must a boolean or None"), "{log}");
}
