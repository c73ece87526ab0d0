//! mod_ssl under real Apache: the `mod_ssl.is_https` and
//! `mod_ssl.var_lookup` callables mod_wsgi puts in the environ of access,
//! authentication and group scripts, and the application's environ over
//! HTTPS, each compared with Debian's mod_wsgi on the same configuration;
//! and the standalone server's answers to the same, compared with mod_ssl's
//! under Apache, including `SSLOptions +StdEnvVars +ExportCertData`.
//!
//! mod_wsgi 4.x gives the two callables to the auth scripts only (its code
//! adding them to the WSGI application's environ is compiled out), and
//! always: Apache 2.4's core registers the `ssl_is_https` and
//! `ssl_var_lookup` optional functions itself, answering "no TLS" when no
//! TLS module is loaded.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use tests::apache::{environ_differences, Apache, ApacheOptions, WsgiModule, MAY_DIFFER};
use tests::{free_port, TempDir};

/// The application: its environ, one `key<TAB>value` line per key (objects
/// by the methods they offer).
const APP: &str = r#"
def application(environ, start_response):
    lines = []
    for key in sorted(environ):
        value = environ[key]
        if value is None or isinstance(value, (str, int, bool, tuple)):
            text = repr(value)
        else:
            text = ' '.join(sorted(m for m in ('read', 'readline', 'readlines', 'write', 'writelines', 'flush', '__iter__', '__call__') if hasattr(value, m)))
        lines.append('%s\t%s' % (key, text))
    start_response('200 OK', [('Content-Type', 'text/plain; charset=utf-8')])
    return [('\n'.join(lines) + '\n').encode('utf-8')]
"#;

/// Access, authentication and group functions that record what the two
/// callables answer (in `results/<query string>-<hook>`), including those
/// of an earlier request, called after it ended. `/secure` is allowed only
/// over HTTPS.
const HOOKS: &str = r#"
import os
RESULTS = os.path.join(os.path.dirname(__file__), 'results')
KEPT = {}

def call(function, *args):
    try:
        value = function(*args)
        return '%s %r' % (type(value).__name__, value)
    except Exception as e:
        return 'raised %s: %s' % (type(e).__name__, e)

def probe(environ, hook):
    lines = ['keys\t%r' % [k for k in environ if k.startswith('mod_ssl.')]]
    is_https = environ.get('mod_ssl.is_https')
    var_lookup = environ.get('mod_ssl.var_lookup')
    if is_https is not None:
        lines.append('is_https\t%s %s' % (type(is_https).__name__, is_https.__name__))
        lines.append('is_https()\t%s' % call(is_https))
        lines.append('is_https(1)\t%s' % call(is_https, 1))
    if var_lookup is not None:
        lines.append('var_lookup\t%s %s' % (type(var_lookup).__name__, var_lookup.__name__))
        for name in ('HTTPS', 'SSL_PROTOCOL', 'SSL_CIPHER', 'SSL_CIPHER_USEKEYSIZE', 'SSL_SERVER_S_DN_CN',
                     'SSL_CLIENT_VERIFY', 'SSL_TLS_SNI', 'SSL_NO_SUCH_THING', 'SERVER_NAME', b'SSL_PROTOCOL',
                     '', 'caf\xe9', 'SSL_\u20ac', 42, None):
            lines.append('var_lookup(%r)\t%s' % (name, call(var_lookup, name)))
        lines.append('var_lookup()\t%s' % call(var_lookup))
        lines.append('var_lookup(a, b)\t%s' % call(var_lookup, 'a', 'b'))
    stale = KEPT.get(hook)
    if stale:
        lines.append('stale is_https()\t%s' % call(stale[0]))
        lines.append('stale var_lookup()\t%s' % call(stale[1], 'SSL_PROTOCOL'))
    if is_https is not None and var_lookup is not None:
        KEPT[hook] = (is_https, var_lookup)
    with open(os.path.join(RESULTS, '%s-%s' % (environ.get('QUERY_STRING') or 'none', hook)), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return is_https

def allow_access(environ, host):
    is_https = probe(environ, 'access')
    if environ['REQUEST_URI'].startswith('/secure'):
        return bool(is_https is not None and is_https())
    return True

def check_password(environ, user, password):
    probe(environ, 'authn')
    return user == 'alice' and password == 'secret'

def groups_for_user(environ, user):
    probe(environ, 'authz')
    return ['staff']
"#;

/// A site: the application, the hooks, a self-signed certificate and a
/// directory the hooks (running as www-data) write their results to.
fn site() -> TempDir {
    let site = TempDir::new("apache-ssl");
    site.write("app.wsgi", APP);
    site.write("hooks.wsgi", HOOKS);
    let results = site.path().join("results");
    std::fs::create_dir(&results).expect("create results");
    std::fs::set_permissions(&results, std::fs::Permissions::from_mode(0o777)).expect("chmod results");
    let status = Command::new("openssl")
        .current_dir(site.path())
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .args(["-keyout", "key.pem", "-out", "cert.pem", "-days", "2", "-subj", "/CN=localhost"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl could not make a certificate");
    site
}

/// The site and both servers, ours and Debian's mod_wsgi, with mod_ssl
/// when `ssl`; `None` when the machine lacks Apache or mod_wsgi.
fn servers(ssl: bool) -> Option<(TempDir, Server, Server)> {
    if !available() {
        return None;
    }
    let site = site();
    let ours = Server::start("ours", WsgiModule::Ours, &site, ssl);
    let reference = Server::start("mod_wsgi", WsgiModule::Reference, &site, ssl);
    Some((site, ours, reference))
}

/// Whether the test can run: Apache, Debian's mod_wsgi, mod_ssl, openssl
/// and curl are all there (see [`tests::require!`]).
fn available() -> bool {
    tests::system_has(&[
        tests::apache::APACHE_BINARY,
        tests::apache::REFERENCE_MODULE,
        "/usr/lib/apache2/modules/mod_ssl.so",
        "/usr/bin/openssl",
        "/usr/bin/curl",
    ])
}

/// One child process (so an earlier request's objects are found again),
/// the hooks on `/guarded`, `/secure` and `/login`, the application on
/// everything; with `ssl_port`, a TLS virtual host on it, and mod_ssl's
/// variables in the environ under `/stdenv`.
fn config(site: &TempDir, ssl_port: Option<u16>) -> String {
    let dir = site.path().display();
    let mut text = String::from(
        "StartServers 1\nServerLimit 1\nThreadsPerChild 8\nMaxRequestWorkers 8\n\
         MinSpareThreads 1\nMaxSpareThreads 8\n",
    );
    if let Some(port) = ssl_port {
        text.push_str(&format!(
            "Listen 127.0.0.1:{port}\n\
             <VirtualHost 127.0.0.1:{port}>\n  SSLEngine on\n\
               SSLCertificateFile {dir}/cert.pem\n  SSLCertificateKeyFile {dir}/key.pem\n</VirtualHost>\n\
             <Location /stdenv>\n  SSLOptions +StdEnvVars +ExportCertData\n</Location>\n"
        ));
    }
    text.push_str(&format!(
        "WSGITrustedProxyHeaders X-Forwarded-Proto\n\
         WSGIScriptAlias / {dir}/app.wsgi\n\
         <Location /guarded>\n  WSGIAccessScript {dir}/hooks.wsgi\n</Location>\n\
         <Location /secure>\n  WSGIAccessScript {dir}/hooks.wsgi\n</Location>\n\
         <Location /login>\n  AuthType Basic\n  AuthName \"ssl test\"\n  AuthBasicProvider wsgi\n\
           WSGIAuthUserScript {dir}/hooks.wsgi\n  WSGIAuthGroupScript {dir}/hooks.wsgi\n\
           Require wsgi-group staff\n</Location>\n"
    ));
    text
}

/// A server (Apache with ours or Debian's mod_wsgi, or the standalone
/// server) and its TLS port, if any.
struct Server {
    name: &'static str,
    front_end: FrontEnd,
    ssl_port: Option<u16>,
}

enum FrontEnd {
    Apache(Apache),
    Standalone(tests::Server),
}

impl Server {
    fn start(name: &'static str, module: WsgiModule, site: &TempDir, ssl: bool) -> Server {
        let ssl_port = ssl.then(free_port);
        let mut modules = vec!["authn_core", "authz_user", "auth_basic"];
        if ssl {
            modules.push("ssl");
        }
        let apache = Apache::start(&ApacheOptions { module, modules, ..ApacheOptions::ours(config(site, ssl_port)) });
        Server { name, front_end: FrontEnd::Apache(apache), ssl_port }
    }

    /// The standalone server on the same configuration, in one process.
    fn start_standalone(site: &TempDir) -> Server {
        let ssl_port = free_port();
        let file = site.path().join("standalone.conf");
        let standalone = tests::Server::start_with(|port| {
            let text = format!("Listen 127.0.0.1:{port}\n{}", config(site, Some(ssl_port)));
            std::fs::write(&file, text).expect("write the configuration");
            vec!["--config".into(), file.clone().into(), "--processes".into(), "1".into()]
        });
        Server { name: "standalone", front_end: FrontEnd::Standalone(standalone), ssl_port: Some(ssl_port) }
    }

    fn port(&self) -> u16 {
        match &self.front_end {
            FrontEnd::Apache(apache) => apache.port(),
            FrontEnd::Standalone(server) => server.port(),
        }
    }

    fn error_log(&self) -> String {
        match &self.front_end {
            FrontEnd::Apache(apache) => apache.error_log(),
            FrontEnd::Standalone(server) => server.stderr(),
        }
    }

    /// `curl` over HTTPS (certificate not checked) or HTTP: status and body.
    fn curl(&self, https: bool, path: &str, args: &[&str]) -> (u16, String) {
        let url = match (https, self.ssl_port) {
            (true, Some(port)) => format!("https://127.0.0.1:{port}{path}"),
            (true, None) => panic!("{}: no TLS port", self.name),
            (false, _) => format!("http://127.0.0.1:{}{path}", self.port()),
        };
        let args: Vec<&str> = std::iter::once("-k").chain(args.iter().copied()).collect();
        tests::apache::curl(&url, &args)
    }

    /// The application's environ for `GET path`, with the server's ports
    /// replaced by `PORT` and `SSLPORT`.
    fn environ(&self, https: bool, path: &str) -> BTreeMap<String, String> {
        self.environ_with(https, path, &[])
    }

    /// As [`Server::environ`], with more curl arguments.
    fn environ_with(&self, https: bool, path: &str, args: &[&str]) -> BTreeMap<String, String> {
        let (status, body) = self.curl(https, path, args);
        assert_eq!(status, 200, "{} {path}: {body}\n{}", self.name, self.error_log());
        let mut body = body;
        if let Some(port) = self.ssl_port {
            body = body.replace(&port.to_string(), "SSLPORT");
        }
        body = body.replace(&self.port().to_string(), "PORT");
        body.lines()
            .filter_map(|line| line.split_once('\t'))
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }
}

/// What the hook `hook` recorded for the request tagged `token`.
fn result(site: &TempDir, token: &str, hook: &str) -> String {
    let path = site.path().join("results").join(format!("{token}-{hook}"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| format!("<no result: {e}>"))
}

/// The lines of `text` that differ from `reference`'s. What callables kept
/// from an earlier request answer is left to the callers' own assertions:
/// mod_wsgi 5.0.2 (Debian 13) at times loads an unchanged hook script again
/// between requests (its log says so), which drops what the module kept.
fn differences(what: &str, ours: &str, reference: &str) -> Vec<String> {
    let ours: Vec<&str> = ours.lines().filter(|l| !l.starts_with("stale ")).collect();
    let theirs: Vec<&str> = reference.lines().filter(|l| !l.starts_with("stale ")).collect();
    let mut out = Vec::new();
    for index in 0..ours.len().max(theirs.len()) {
        let (a, b) = (ours.get(index), theirs.get(index));
        if a != b {
            out.push(format!("{what}: ours {a:?}, mod_wsgi {b:?}"));
        }
    }
    out
}

/// Runs the access and auth requests on one server; returns the results
/// (`hook -> recorded text`) tagged with `prefix`.
fn run_hooks(server: &Server, site: &TempDir, https: bool, prefix: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    // Twice each, so the second request also calls the first one's
    // callables after it ended.
    for round in 1..=2 {
        let token = format!("{prefix}-{round}");
        let (status, body) = server.curl(https, &format!("/guarded/x?{token}"), &[]);
        assert_eq!(status, 200, "{} /guarded: {body}\n{}", server.name, server.error_log());
        let (status, body) = server.curl(https, &format!("/login/x?{token}"), &["-u", "alice:secret"]);
        assert_eq!(status, 200, "{} /login: {body}\n{}", server.name, server.error_log());
        for hook in ["access", "authn", "authz"] {
            out.insert(format!("{hook} {round}"), result(site, &token, hook));
        }
    }
    out
}

#[test]
fn auth_hooks_get_mod_ssl_callables_like_mod_wsgi() {
    let Some((site, ours, reference)) = servers(true) else { return };

    let mut problems = Vec::new();
    for https in [true, false] {
        let scheme = if https { "https" } else { "http" };
        let a = run_hooks(&ours, &site, https, &format!("ours-{scheme}"));
        let b = run_hooks(&reference, &site, https, &format!("ref-{scheme}"));
        for (key, text) in &a {
            problems.extend(differences(&format!("{scheme} {key}"), text, &b[key]));
        }
        // What mod_ssl answers, as the scripts saw it in our module.
        let access = &a["access 2"];
        assert!(access.contains("keys\t['mod_ssl.is_https', 'mod_ssl.var_lookup']"), "{access}");
        assert!(access.contains("stale is_https()\traised RuntimeError"), "{access}");
        assert!(access.contains("stale var_lookup()\traised RuntimeError"), "{access}");
        if https {
            assert!(access.contains("is_https()\tint 1"), "{access}");
            assert!(access.contains("var_lookup('SSL_PROTOCOL')\tstr 'TLSv1."), "{access}");
            assert!(access.contains("var_lookup('HTTPS')\tstr 'on'"), "{access}");
        } else {
            assert!(access.contains("is_https()\tint 0"), "{access}");
        }
        // The access script lets /secure through over HTTPS only.
        let expected = if https { 200 } else { 403 };
        for server in [&ours, &reference] {
            let (status, _) = server.curl(https, &format!("/secure/x?{}-secure-{scheme}", server.name), &[]);
            assert_eq!(status, expected, "{} /secure over {scheme}\n{}", server.name, server.error_log());
        }
    }
    assert!(problems.is_empty(), "differences from mod_wsgi:\n{}", problems.join("\n"));
}

#[test]
fn application_environ_over_https_matches_mod_wsgi() {
    let Some((_site, ours, reference)) = servers(true) else { return };
    let mut problems = Vec::new();
    for (https, path) in [(true, "/env/a?x=1"), (false, "/env/a?x=1")] {
        let a = ours.environ(https, path);
        let b = reference.environ(https, path);
        assert!(b.len() > 20, "mod_wsgi's environ did not parse: {b:?}");
        if https {
            assert_eq!(a.get("wsgi.url_scheme").map(String::as_str), Some("'https'"), "{a:?}");
        }
        problems.extend(environ_differences(&format!("https={https}"), &a, &b, MAY_DIFFER));
    }
    assert!(problems.is_empty(), "environ differences from mod_wsgi:\n{}", problems.join("\n"));
}

#[test]
fn auth_hooks_without_mod_ssl_match_mod_wsgi() {
    let Some((site, ours, reference)) = servers(false) else { return };
    let a = run_hooks(&ours, &site, false, "ours-plain");
    let b = run_hooks(&reference, &site, false, "ref-plain");
    let mut problems = Vec::new();
    for (key, text) in &a {
        problems.extend(differences(key, text, &b[key]));
    }
    assert!(problems.is_empty(), "differences from mod_wsgi:\n{}", problems.join("\n"));
    let access = &a["access 2"];
    assert!(access.contains("is_https()\tint 0"), "{access}");
    assert!(access.contains("var_lookup('SSL_PROTOCOL')\tNoneType None"), "{access}");
}

/// A trusted `X-Forwarded-Proto` decides `wsgi.url_scheme` over TLS too, as
/// mod_wsgi does since it stopped letting mod_ssl's view of the last hop
/// override the proxy's; Debian's 4.9.4 still says `https` for a TLS
/// connection whatever the header (a difference the README lists). Over
/// plain HTTP, and without the header, both agree.
#[test]
fn a_trusted_scheme_header_decides_the_url_scheme_over_tls_too() {
    let Some((_site, ours, reference)) = servers(true) else { return };
    let scheme = |server: &Server, https: bool, proto: Option<&str>| {
        let header = proto.map(|p| format!("X-Forwarded-Proto: {p}"));
        let args: Vec<&str> = header.iter().flat_map(|h| ["-H", h.as_str()]).collect();
        server.environ_with(https, "/env/scheme", &args).get("wsgi.url_scheme").cloned().unwrap_or_default()
    };
    for (https, proto, expected) in [
        (true, None, "'https'"),
        (false, None, "'http'"),
        (false, Some("https"), "'https'"),
        (true, Some("https"), "'https'"),
    ] {
        assert_eq!(scheme(&ours, https, proto), expected, "ours, https={https}, X-Forwarded-Proto {proto:?}");
        assert_eq!(scheme(&reference, https, proto), expected, "mod_wsgi, https={https}, X-Forwarded-Proto {proto:?}");
    }
    assert_eq!(scheme(&ours, true, Some("http")), "'http'", "ours: the trusted proxy's scheme");
    assert_eq!(scheme(&reference, true, Some("http")), "'https'", "mod_wsgi 4.9.4: the TLS connection's");
}

/// The standalone server answers access and authentication scripts as
/// mod_ssl does under Apache, over HTTPS and plain HTTP, and puts mod_ssl's
/// variables in the application's environ where `SSLOptions` asks.
#[test]
fn the_standalone_server_gives_the_tls_variables_mod_ssl_gives() {
    if !available() {
        return;
    }
    let site = site();
    let apache = Server::start("ours", WsgiModule::Ours, &site, true);
    let standalone = Server::start_standalone(&site);

    let mut problems = Vec::new();
    for https in [true, false] {
        let scheme = if https { "https" } else { "http" };
        let a = run_hooks(&standalone, &site, https, &format!("standalone-{scheme}"));
        let b = run_hooks(&apache, &site, https, &format!("apache-{scheme}"));
        // A callable kept past its request refuses to answer.
        for hook in ["access 2", "authn 2", "authz 2"] {
            assert!(a[hook].contains("stale var_lookup()\traised RuntimeError"), "{hook}: {}", a[hook]);
        }
        for (key, text) in &a {
            problems.extend(differences(&format!("{scheme} {key}"), text, &b[key]));
        }
    }
    // mod_ssl also answers the request's own variables (SERVER_NAME, ...),
    // which the standalone server's lookup leaves empty.
    problems.retain(|line| !line.contains("var_lookup('SERVER_NAME')"));
    assert!(problems.is_empty(), "differences from mod_ssl:\n{}", problems.join("\n"));

    let tls_keys = |environ: BTreeMap<String, String>| -> BTreeMap<String, String> {
        environ.into_iter().filter(|(key, _)| key.starts_with("SSL_") || key == "HTTPS").collect()
    };
    let ours = tls_keys(standalone.environ(true, "/stdenv/x"));
    let theirs = tls_keys(apache.environ(true, "/stdenv/x"));
    assert!(ours.contains_key("SSL_SERVER_CERT") && ours.contains_key("SSL_CIPHER"), "{ours:?}");
    // What names the TLS library, the session id rustls keeps to itself,
    // SSL_SECURE_RENEG over TLS 1.3 (which has no renegotiation: OpenSSL
    // 3.0 says true, 3.5 false), and the standalone server's HTTPS=1 (as
    // mod_wsgi-express users expect; mod_wsgi under Apache turns it into
    // wsgi.url_scheme only).
    const OWN: &[&str] =
        &["SSL_VERSION_INTERFACE", "SSL_VERSION_LIBRARY", "SSL_SESSION_ID", "SSL_SECURE_RENEG", "HTTPS"];
    let mut differing = Vec::new();
    for key in ours.keys().chain(theirs.keys()) {
        if !OWN.contains(&key.as_str())
            && ours.get(key) != theirs.get(key)
            && !differing.iter().any(|d: &String| d.starts_with(&format!("{key}:")))
        {
            differing.push(format!("{key}: standalone {:?}, mod_ssl {:?}", ours.get(key), theirs.get(key)));
        }
    }
    assert!(differing.is_empty(), "environ differences from mod_ssl:\n{}", differing.join("\n"));
    // Elsewhere the application sees no TLS variables, as under Apache.
    let ssl_only = |environ: BTreeMap<String, String>| -> Vec<String> {
        environ.into_keys().filter(|key| key.starts_with("SSL_")).collect()
    };
    assert_eq!(ssl_only(standalone.environ(true, "/env/x")), Vec::<String>::new());
    assert_eq!(ssl_only(apache.environ(true, "/env/x")), Vec::<String>::new());
    // A client that names the server (SNI) finds its name in SSL_TLS_SNI,
    // with or without SSLOptions, as mod_ssl sets it.
    for server in [&standalone, &apache] {
        let port = server.ssl_port.expect("a TLS port");
        let resolve = format!("localhost:{port}:127.0.0.1");
        for path in ["/stdenv/x", "/env/x"] {
            let url = format!("https://localhost:{port}{path}");
            let (status, body) = tests::apache::curl(&url, &["-k", "--resolve", &resolve]);
            assert_eq!(status, 200, "{} {path}: {body}", server.name);
            assert!(body.contains("SSL_TLS_SNI\t'localhost'"), "{} {path}: {body}", server.name);
        }
    }
}
