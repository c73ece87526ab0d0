//! Access control in the standalone server, against real Apache: one
//! configuration with protected locations (AuthUserFile in each htpasswd
//! hash format, WSGIAuthUserScript for Basic and Digest, Require
//! wsgi-group, WSGIAccessScript, Require ip, <RequireAny>, <RequireAll>,
//! Require method, AuthMerging) is served by Apache with our module and by
//! `start-server --config`, and every request gets the same status, the
//! same challenge scheme and the same REMOTE_USER and AUTH_TYPE.

use std::process::Command;

use tests::apache::{curl, Apache, ApacheOptions};
use tests::{HttpResponse, Server, TempDir};

/// Answers with who the request was authenticated as.
const APP: &str = r#"
def application(environ, start_response):
    body = '%s %s' % (environ.get('REMOTE_USER', '-'), environ.get('AUTH_TYPE', '-'))
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
"#;

/// mod_wsgi's four script functions.
const AUTH_SCRIPT: &str = r#"
import hashlib
USERS = {'alice': 'secret', 'bob': 'builder'}

def check_password(environ, user, password):
    if user not in USERS:
        return None
    return USERS[user] == password

def get_realm_hash(environ, user, realm):
    if user not in USERS:
        return None
    return hashlib.md5(('%s:%s:%s' % (user, realm, USERS[user])).encode()).hexdigest()

def groups_for_user(environ, user):
    return ['admins'] if user == 'alice' else ['staff']

def allow_access(environ, host):
    return environ.get('HTTP_X_ALLOW') == 'yes'
"#;

/// The protected locations; `{dir}` is the site's directory.
const LOCATIONS: &str = r#"
WSGIScriptAlias /app {dir}/app.wsgi
<Location /app/file>
    AuthType Basic
    AuthName "File Area"
    AuthUserFile {dir}/htpasswd
    Require valid-user
</Location>
<Location /app/script>
    AuthType Basic
    AuthName "Script Area"
    AuthBasicProvider wsgi
    WSGIAuthUserScript {dir}/auth.wsgi
    Require valid-user
</Location>
<Location /app/digest>
    AuthType Digest
    AuthName "Digest Area"
    AuthDigestProvider wsgi
    WSGIAuthUserScript {dir}/auth.wsgi
    Require valid-user
</Location>
<Location /app/digestfile>
    AuthType Digest
    AuthName "Digest File"
    AuthUserFile {dir}/htdigest
    Require valid-user
</Location>
<Location /app/group>
    AuthType Basic
    AuthName "Group Area"
    AuthBasicProvider wsgi
    WSGIAuthUserScript {dir}/auth.wsgi
    WSGIAuthGroupScript {dir}/auth.wsgi
    Require wsgi-group admins
</Location>
<Location /app/hosts>
    WSGIAccessScript {dir}/auth.wsgi
</Location>
<Location /app/intranet>
    Require ip 10.0.0.0/8
</Location>
<Location /app/any>
    AuthType Basic
    AuthName "Any Area"
    AuthUserFile {dir}/htpasswd
    <RequireAny>
        Require ip 127.0.0.1
        Require valid-user
    </RequireAny>
</Location>
<Location /app/all>
    AuthType Basic
    AuthName "All Area"
    AuthUserFile {dir}/htpasswd
    <RequireAll>
        Require valid-user
        Require not user bob
    </RequireAll>
</Location>
<Location /app/all/merged>
    AuthMerging And
    Require user alice
</Location>
<Location /app/method>
    Require method GET HEAD
</Location>
"#;

const MODULES: &[&str] = &["auth_basic", "auth_digest", "authn_core", "authn_file", "authz_user", "authz_host"];

fn site() -> TempDir {
    let site = TempDir::new("standalone-access");
    site.write("app.wsgi", APP);
    site.write("auth.wsgi", AUTH_SCRIPT);
    let file = site.path().join("htpasswd");
    // One user per hash format: bcrypt, APR1-MD5, SHA-1.
    for (flag, user, password) in [("-B", "alice", "secret"), ("-m", "bob", "builder"), ("-s", "carol", "sea")] {
        let mut command = Command::new("htpasswd");
        command.args(["-b", flag]);
        if flag == "-B" {
            command.args(["-C", "5"]);
        }
        if !file.exists() {
            command.arg("-c");
        }
        let status = command.arg(&file).args([user, password]).status().expect("htpasswd runs");
        assert!(status.success(), "htpasswd {flag} {user}");
    }
    // htdigest's format: user:realm:MD5(user:realm:password).
    let ha1 = Command::new("sh")
        .args(["-c", "printf '%s' 'bob:Digest File:builder' | md5sum"])
        .output()
        .expect("md5sum runs");
    let ha1 = String::from_utf8_lossy(&ha1.stdout).split_whitespace().next().unwrap_or_default().to_string();
    site.write("htdigest", &format!("bob:Digest File:{ha1}\n"));
    let _ = Command::new("chmod").args(["-R", "a+rX"]).arg(site.path()).status();
    site
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A request of the comparison: name, method, path, extra headers.
type Case = (&'static str, &'static str, &'static str, Vec<(&'static str, String)>);

/// The requests.
fn requests() -> Vec<Case> {
    let auth = |user: &str, password: &str| vec![("Authorization", basic(user, password))];
    vec![
        ("file, no credentials", "GET", "/app/file", vec![]),
        ("file, bcrypt", "GET", "/app/file", auth("alice", "secret")),
        ("file, APR1-MD5", "GET", "/app/file", auth("bob", "builder")),
        ("file, SHA-1", "GET", "/app/file", auth("carol", "sea")),
        ("file, wrong password", "GET", "/app/file", auth("alice", "wrong")),
        ("file, unknown user", "GET", "/app/file", auth("mallory", "x")),
        ("file, not Basic", "GET", "/app/file", vec![("Authorization", "Bearer abc".into())]),
        ("script, no credentials", "GET", "/app/script", vec![]),
        ("script, good", "GET", "/app/script", auth("alice", "secret")),
        ("script, wrong password", "GET", "/app/script", auth("alice", "nope")),
        ("script, unknown user", "GET", "/app/script", auth("mallory", "x")),
        ("group, member", "GET", "/app/group", auth("alice", "secret")),
        ("group, not a member", "GET", "/app/group", auth("bob", "builder")),
        ("group, no credentials", "GET", "/app/group", vec![]),
        ("access script allows", "GET", "/app/hosts", vec![("X-Allow", "yes".into())]),
        ("access script denies", "GET", "/app/hosts", vec![]),
        ("ip 10.0.0.0/8 from loopback", "GET", "/app/intranet", vec![]),
        ("any: ip grants", "GET", "/app/any", vec![]),
        ("all, alice", "GET", "/app/all", auth("alice", "secret")),
        ("all, bob", "GET", "/app/all", auth("bob", "builder")),
        ("all, no credentials", "GET", "/app/all", vec![]),
        ("merged And, alice", "GET", "/app/all/merged", auth("alice", "secret")),
        ("merged And, carol", "GET", "/app/all/merged", auth("carol", "sea")),
        ("method GET", "GET", "/app/method", vec![]),
        ("method POST", "POST", "/app/method", vec![]),
        ("method HEAD counts as GET", "HEAD", "/app/method", vec![]),
        ("unprotected", "GET", "/app/open", vec![]),
    ]
}

fn challenge_scheme(response: &HttpResponse) -> String {
    response.header("www-authenticate").and_then(|v| v.split_whitespace().next()).unwrap_or("-").to_string()
}

#[test]
fn protected_locations_answer_as_apache_does_request_for_request() {
    tests::require!(tests::apache::APACHE_BINARY, "/usr/bin/htpasswd", "/usr/bin/curl");
    let site = site();
    let config = LOCATIONS.replace("{dir}", &site.path().display().to_string());
    let apache = Apache::start(&ApacheOptions { modules: MODULES.to_vec(), ..ApacheOptions::ours(config.clone()) });
    let file = site.path().join("site.conf");
    let standalone = Server::start_with(|port| {
        std::fs::write(&file, format!("Listen 127.0.0.1:{port}\n{config}\n")).unwrap();
        vec!["--config".into(), file.clone().into()]
    });
    let mut differences = Vec::new();
    for (name, method, path, headers) in requests() {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let body: &[u8] = if method == "POST" { b"x" } else { b"" };
        let expected = apache.request(method, path, &headers, body);
        let got = standalone.request(method, path, &headers, body);
        let seen = |r: &HttpResponse| {
            let text = if r.status() == 200 { r.text() } else { String::new() };
            (r.status(), challenge_scheme(r), text)
        };
        if seen(&got) != seen(&expected) {
            differences.push(format!("{name}: Apache {:?}, standalone {:?}", seen(&expected), seen(&got)));
        }
    }
    // Digest, as curl speaks it, both ways.
    for (path, credentials, name) in [
        ("/app/digest", "alice:secret", "digest, good"),
        ("/app/digest", "alice:wrong", "digest, wrong password"),
        ("/app/digestfile", "bob:builder", "digest from htdigest, good"),
        ("/app/digestfile", "bob:wrong", "digest from htdigest, wrong password"),
    ] {
        let args = ["--digest", "-u", credentials];
        let expected = curl(&format!("http://127.0.0.1:{}{path}", apache.port()), &args);
        let got = curl(&format!("http://127.0.0.1:{}{path}", standalone.port()), &args);
        if got != expected {
            differences.push(format!("{name}: Apache {expected:?}, standalone {got:?}"));
        }
    }
    assert!(differences.is_empty(), "{}\n--- standalone stderr\n{}", differences.join("\n"), standalone.stderr());
    // And the answers are the ones a user expects, not merely the same.
    let ok = standalone.request("GET", "/app/file", &[("Authorization", &basic("alice", "secret"))], b"");
    assert_eq!((ok.status(), ok.text()), (200, "alice Basic".to_string()));
    let refused = standalone.get("/app/file");
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.header("www-authenticate"), Some("Basic realm=\"File Area\""));
    let digest =
        curl(&format!("http://127.0.0.1:{}/app/digest", standalone.port()), &["--digest", "-u", "bob:builder"]);
    assert_eq!(digest, (200, "bob Digest".to_string()));
    assert_eq!(standalone.get("/app/intranet").status(), 403);
}

#[test]
fn access_control_holds_with_several_serving_processes_and_in_the_access_log() {
    tests::require!("/usr/bin/htpasswd", "/usr/bin/curl");
    let site = site();
    let dir = site.path().display().to_string();
    let config = format!("CustomLog {dir}/access.log \"%u %>s %U\"\n{}", LOCATIONS.replace("{dir}", &dir));
    let file = site.path().join("site.conf");
    let standalone = Server::start_with(|port| {
        std::fs::write(&file, format!("Listen 127.0.0.1:{port}\n{config}\n")).unwrap();
        vec!["--config".into(), file.clone().into(), "--processes".into(), "2".into()]
    });
    // A nonce made by one serving process is taken by the other.
    for _ in 0..6 {
        let digest =
            curl(&format!("http://127.0.0.1:{}/app/digest", standalone.port()), &["--digest", "-u", "alice:secret"]);
        assert_eq!(digest, (200, "alice Digest".to_string()), "{}", standalone.stderr());
    }
    assert_eq!(standalone.request("GET", "/app/file", &[("Authorization", &basic("carol", "sea"))], b"").status(), 200);
    assert_eq!(standalone.get("/app/file").status(), 401);
    let log = tests::wait_for(std::time::Duration::from_secs(10), || {
        let text = std::fs::read_to_string(site.path().join("access.log")).unwrap_or_default();
        text.contains("- 401 /app/file").then_some(text)
    })
    .expect("the access log records the requests");
    assert!(log.contains("carol 200 /app/file"), "{log}");
    assert!(log.contains("alice 200 /app/digest"), "{log}");
}

#[test]
fn providers_and_containers_it_cannot_evaluate_are_refused() {
    let site = site();
    let text = "<Location /x>\nRequire ldap-group cn=admins\n</Location>\n\
                <Location /y>\nAuthType Form\n</Location>\n\
                <Location /z>\nAuthBasicProvider dbm\n</Location>\n\
                <Location /w>\n<RequireAll>\nRequire not ip 10.1.1.1\n</RequireAll>\n</Location>\n\
                <Location /v>\nAuthGroupFile /etc/groups\n</Location>\n\
                <Location /u>\nRequire valid-user\nRequire not ip 10.6.6.6\n</Location>\n\
                <Location /t>\nRequire not env badbot\n</Location>\n\
                <Location /s>\nSSLOptions +StdEnvVars +FakeBasicAuth\n</Location>\n";
    let file = site.write("bad.conf", text);
    let out = Command::new(tests::standalone_binary()).arg("check-config").arg(&file).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (line, needle) in [
        (2, "provider ldap-group"),
        (5, "Form"),
        (8, "file or wsgi"),
        (11, "contains only negative authorization directives"),
        (16, "AuthGroupFile is not supported by the standalone server"),
        (18, "negative Require directive has no effect in <RequireAny>"),
        (23, "provider env"),
        (26, "SSLOptions: option FakeBasicAuth is refused"),
    ] {
        let prefix = format!("{}:{line}: ", file.display());
        assert!(
            stderr.lines().any(|l| l.starts_with(&prefix) && l.contains(needle)),
            "no {prefix}...{needle}:\n{stderr}"
        );
    }
}
