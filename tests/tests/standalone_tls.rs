//! TLS in the standalone server: `Listen ... https` and virtual hosts with
//! `SSLEngine on` and their certificates, chosen by SNI; TLS 1.2 and 1.3
//! with curl and Python's `ssl`; `SSLProtocol` and `SSLCipherSuite`;
//! `wsgi.url_scheme` and `HTTPS` in the environ; the command line's
//! `--https-port` and `--https-only`; and the refusals.

use std::path::{Path, PathBuf};
use std::process::Command;

use tests::{free_port, standalone_binary, Server, TempDir};

const APP: &str = r#"
def application(environ, start_response):
    body = '%s %s %s' % (environ['wsgi.url_scheme'], environ.get('HTTPS', '-'), environ.get('SERVER_NAME'))
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
"#;

/// A site with the application and a self-signed certificate and key for
/// each of `names`.
fn site(names: &[&str]) -> TempDir {
    let site = TempDir::new("standalone-tls");
    site.write("app.wsgi", APP);
    for name in names {
        let status = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj"])
            .arg(format!("/CN={name}"))
            .arg("-addext")
            .arg(format!("subjectAltName=DNS:{name}"))
            .arg("-keyout")
            .arg(site.path().join(format!("{name}.key")))
            .arg("-out")
            .arg(site.path().join(format!("{name}.crt")))
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(status.success(), "openssl req for {name}");
    }
    site
}

fn file(site: &TempDir, name: &str) -> PathBuf {
    site.path().join(name)
}

/// `curl` over HTTPS to `name:port`, resolved to 127.0.0.1, trusting
/// `ca`: (exit code, body).
fn curl_https(name: &str, port: u16, ca: &Path, path: &str, extra: &[&str]) -> (i32, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "20", "--cacert"])
        .arg(ca)
        .arg("--resolve")
        .arg(format!("{name}:{port}:127.0.0.1"))
        .args(extra)
        .arg(format!("https://{name}:{port}{path}"))
        .output()
        .expect("curl runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Python's `ssl` at exactly `version` (`TLSv1_2`, `TLSv1_3`): the
/// negotiated version and cipher, or the error.
fn python_tls(port: u16, name: &str, ca: &Path, version: &str) -> String {
    let script = format!(
        "import socket, ssl\n\
         c = ssl.create_default_context(cafile={ca:?})\n\
         c.minimum_version = c.maximum_version = ssl.TLSVersion.{version}\n\
         try:\n\
         \x20   with socket.create_connection(('127.0.0.1', {port})) as raw:\n\
         \x20       with c.wrap_socket(raw, server_hostname={name:?}) as s:\n\
         \x20           print(s.version(), s.cipher()[0])\n\
         except ssl.SSLError as e:\n\
         \x20   print('refused', e.reason)\n",
        ca = ca.display().to_string()
    );
    let out = Command::new("/usr/bin/python3").arg("-c").arg(script).output().expect("python3 runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `start-server --config` with `body` after `Listen` lines for a plain
/// port (the one the harness waits on) and `https_port`.
fn start(site: &TempDir, https_port: u16, body: &str) -> Server {
    let conf = site.path().join("site.conf");
    Server::start_with(|port| {
        let text = format!("Listen 127.0.0.1:{port}\nListen 127.0.0.1:{https_port} https\n{body}\n");
        std::fs::write(&conf, text.replace("HTTPS_PORT", &https_port.to_string())).unwrap();
        vec!["--config".into(), conf.clone().into()]
    })
}

#[test]
fn sni_picks_each_virtual_host_s_certificate_and_the_environ_says_https() {
    tests::require!("/usr/bin/openssl", "/usr/bin/curl");
    let site = site(&["a.test", "b.test"]);
    let dir = site.path().display();
    let https_port = free_port();
    let server = start(
        &site,
        https_port,
        &format!(
            "WSGIScriptAlias / {dir}/app.wsgi\n\
             <VirtualHost 127.0.0.1:HTTPS_PORT>\nServerName a.test\nSSLEngine on\n\
             SSLCertificateFile {dir}/a.test.crt\nSSLCertificateKeyFile {dir}/a.test.key\n</VirtualHost>\n\
             <VirtualHost 127.0.0.1:HTTPS_PORT>\nServerName b.test\nSSLEngine on\n\
             SSLCertificateFile {dir}/b.test.crt\nSSLCertificateKeyFile {dir}/b.test.key\n</VirtualHost>"
        ),
    );
    assert_eq!(curl_https("a.test", https_port, &file(&site, "a.test.crt"), "/x", &[]), (0, "https 1 a.test".into()));
    assert_eq!(curl_https("b.test", https_port, &file(&site, "b.test.crt"), "/x", &[]), (0, "https 1 b.test".into()));
    // b.test's certificate is not a.test's: trusting only a.test's fails.
    let (code, _) = curl_https("b.test", https_port, &file(&site, "a.test.crt"), "/x", &[]);
    assert_eq!(code, 60, "curl verified b.test with a.test's certificate");
    // Both versions, with curl and with Python.
    for (flags, version) in
        [(["--tlsv1.2", "--tls-max", "1.2"], "TLSv1_2"), (["--tlsv1.3", "--tls-max", "1.3"], "TLSv1_3")]
    {
        let (code, body) = curl_https("a.test", https_port, &file(&site, "a.test.crt"), "/", &flags);
        assert_eq!((code, body.as_str()), (0, "https 1 a.test"), "{flags:?}");
        let python = python_tls(https_port, "a.test", &file(&site, "a.test.crt"), version);
        assert!(python.starts_with(&version.replace('_', ".")), "{version}: {python}");
    }
    // The plain port stays plain.
    assert_eq!(server.get("/y").text(), "http - 127.0.0.1");
}

#[test]
fn ssl_protocol_and_cipher_suite_limit_what_is_offered() {
    tests::require!("/usr/bin/openssl", "/usr/bin/curl");
    let site = site(&["c.test"]);
    let dir = site.path().display();
    let https_port = free_port();
    let _server = start(
        &site,
        https_port,
        &format!(
            "WSGIScriptAlias / {dir}/app.wsgi\n\
             <VirtualHost 127.0.0.1:HTTPS_PORT>\nServerName c.test\nSSLEngine on\n\
             SSLCertificateFile {dir}/c.test.crt\nSSLCertificateKeyFile {dir}/c.test.key\n\
             SSLProtocol -all +TLSv1.2\nSSLCipherSuite ECDHE-RSA-AES128-GCM-SHA256\nSSLHonorCipherOrder on\n\
             </VirtualHost>"
        ),
    );
    let ca = file(&site, "c.test.crt");
    assert_eq!(python_tls(https_port, "c.test", &ca, "TLSv1_2"), "TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256");
    assert!(python_tls(https_port, "c.test", &ca, "TLSv1_3").starts_with("refused"));
}

#[test]
fn https_port_flags_serve_a_script_over_tls_and_https_only_redirects() {
    tests::require!("/usr/bin/openssl", "/usr/bin/curl");
    let site = site(&["localhost"]);
    let https_port = free_port();
    let args = |only: bool| {
        let mut args: Vec<std::ffi::OsString> = vec![
            site.path().join("app.wsgi").into(),
            "--https-port".into(),
            https_port.to_string().into(),
            "--ssl-certificate-file".into(),
            file(&site, "localhost.crt").into(),
            "--ssl-certificate-key-file".into(),
            file(&site, "localhost.key").into(),
        ];
        if only {
            args.push("--https-only".into());
        }
        args
    };
    let server = Server::start(args(false));
    let (code, body) = curl_https("localhost", https_port, &file(&site, "localhost.crt"), "/z", &[]);
    assert_eq!((code, body.as_str()), (0, "https 1 localhost"));
    assert_eq!(server.get("/z").status(), 200);
    drop(server);
    let server = Server::start(args(true));
    let redirect = server.get("/z?q=1");
    assert_eq!(redirect.status(), 301);
    assert_eq!(redirect.header("location"), Some(format!("https://127.0.0.1:{https_port}/z?q=1").as_str()));
}

#[test]
fn tls_settings_it_cannot_honour_are_refused() {
    let site = TempDir::new("standalone-tls-refused");
    let text = "SSLVerifyClient require\nSSLProtocol all +TLSv1.1\nSSLCipherSuite DHE-RSA-AES128-GCM-SHA256\n\
                SSLCipherSuite TLSv1.3 TLS_AES_128_CCM_SHA256\n";
    let conf = site.write("bad.conf", text);
    let out = Command::new(standalone_binary()).arg("check-config").arg(&conf).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (line, needle) in [
        (1, "SSLVerifyClient is not supported by the standalone server"),
        (2, "TLSv1.1 is not offered"),
        (3, "DHE-RSA-AES128-GCM-SHA256 is not offered"),
        (4, "TLS_AES_128_CCM_SHA256 is not offered"),
    ] {
        let prefix = format!("{}:{line}: ", conf.display());
        assert!(
            stderr.lines().any(|l| l.starts_with(&prefix) && l.contains(needle)),
            "no {prefix}...{needle}:\n{stderr}"
        );
    }
    // A certificate that cannot be read stops the server before it serves.
    let https_port = free_port();
    let conf = site.write(
        "missing.conf",
        &format!(
            "Listen 127.0.0.1:{https_port} https\n<VirtualHost 127.0.0.1:{https_port}>\nSSLEngine on\n\
             SSLCertificateFile /nonexistent/site.crt\n</VirtualHost>\n"
        ),
    );
    let out = Command::new(standalone_binary()).args(["start-server", "--config"]).arg(&conf).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/site.crt"));
    // So does an https Listen that no server serves with TLS.
    let conf = site.write("nossl.conf", &format!("Listen 127.0.0.1:{https_port} https\n"));
    let out = Command::new(standalone_binary()).args(["start-server", "--config"]).arg(&conf).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("no server on this address has SSLEngine on"));
}
