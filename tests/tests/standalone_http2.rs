//! HTTP/2 in the standalone server, through curl: over TLS by ALPN and in
//! clear with prior knowledge (h2c), with `--http2` or `Protocols` in a
//! configuration. The same application and environ as over HTTP/1.1:
//! GET, POST with a body, a streamed response, a 10 MB upload and a
//! `wsgi.file_wrapper` download.

use std::path::Path;
use std::process::Command;

use tests::{free_port, Server, TempDir};

const APP: &str = r#"
import hashlib, os
HERE = os.path.dirname(__file__)

def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/upload':
        data = environ['wsgi.input'].read()
        body = ('%d %s' % (len(data), hashlib.md5(data).hexdigest())).encode()
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [body]
    if path == '/stream':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return (('chunk %d\n' % i).encode() for i in range(50))
    if path == '/file':
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return environ['wsgi.file_wrapper'](open(os.path.join(HERE, 'blob.bin'), 'rb'), 65536)
    body = '%s %s %s %s' % (environ['SERVER_PROTOCOL'], environ['REQUEST_URI'], environ.get('HTTP_HOST'),
                            environ['wsgi.url_scheme'])
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
"#;

fn site() -> TempDir {
    let site = TempDir::new("standalone-http2");
    site.write("app.wsgi", APP);
    // 3 MB of varied bytes for the file_wrapper download.
    let blob: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(site.path().join("blob.bin"), blob).unwrap();
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=h2.test"])
        .args(["-addext", "subjectAltName=DNS:h2.test", "-keyout"])
        .arg(site.path().join("h2.key"))
        .arg("-out")
        .arg(site.path().join("h2.crt"))
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success());
    site
}

/// curl with `args` at `url`: (HTTP version, status, body bytes).
fn curl(url: &str, args: &[&str]) -> (String, u16, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "60", "-o", "-", "-w", "\n%{http_version} %{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl runs");
    let text = out.stdout;
    let split = text.iter().rposition(|&b| b == b'\n').unwrap_or(0);
    let tail = String::from_utf8_lossy(&text[split + 1..]).to_string();
    let (version, code) = tail.split_once(' ').unwrap_or(("", "0"));
    (version.to_string(), code.parse().unwrap_or(0), text[..split].to_vec())
}

fn md5_of(path: &Path) -> String {
    let out = Command::new("md5sum").arg(path).output().expect("md5sum runs");
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_string()
}

/// Every kind of exchange at `base` over HTTP/2 with `args`.
fn exchanges(site: &TempDir, base: &str, args: &[&str], scheme: &str) {
    let (version, status, body) = curl(&format!("{base}/hello?x=1"), args);
    assert_eq!((version.as_str(), status), ("2", 200));
    let text = String::from_utf8_lossy(&body).to_string();
    assert!(text.starts_with("HTTP/2.0 /hello?x=1 "), "{text}");
    assert!(text.ends_with(&format!(" {scheme}")), "{text}");
    // POST with a body.
    let post: Vec<&str> = args.iter().copied().chain(["--data-binary", "posted body"]).collect();
    let (version, status, body) = curl(&format!("{base}/upload"), &post);
    assert_eq!((version.as_str(), status), ("2", 200));
    assert_eq!(String::from_utf8_lossy(&body), format!("11 {}", md5_text("posted body")));
    // A streamed response.
    let (_, status, body) = curl(&format!("{base}/stream"), args);
    let expected: String = (0..50).map(|i| format!("chunk {i}\n")).collect();
    assert_eq!((status, String::from_utf8_lossy(&body).to_string()), (200, expected));
    // A 10 MB upload.
    let upload = site.path().join("upload.bin");
    let data: Vec<u8> = (0..10 * 1024 * 1024u32).map(|i| (i.wrapping_mul(40_503) >> 7) as u8).collect();
    std::fs::write(&upload, &data).unwrap();
    let from_file = format!("@{}", upload.display());
    let up: Vec<&str> = args.iter().copied().chain(["--data-binary", from_file.as_str()]).collect();
    let (version, status, body) = curl(&format!("{base}/upload"), &up);
    assert_eq!((version.as_str(), status), ("2", 200));
    assert_eq!(String::from_utf8_lossy(&body), format!("{} {}", data.len(), md5_of(&upload)));
    // A file_wrapper download, byte for byte.
    let (version, status, body) = curl(&format!("{base}/file"), args);
    assert_eq!((version.as_str(), status), ("2", 200));
    let downloaded = site.path().join("downloaded.bin");
    std::fs::write(&downloaded, body).unwrap();
    assert_eq!(md5_of(&downloaded), md5_of(&site.path().join("blob.bin")));
}

fn md5_text(text: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(format!("printf '%s' '{text}' | md5sum")).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_string()
}

#[test]
fn h2c_with_prior_knowledge_and_h2_over_tls_serve_as_http_1_1_does() {
    tests::require!("/usr/bin/openssl", "/usr/bin/curl", "/usr/bin/md5sum");
    let site = site();
    let https_port = free_port();
    let server = Server::start([
        site.path().join("app.wsgi").into_os_string(),
        "--http2".into(),
        "--https-port".into(),
        https_port.to_string().into(),
        "--ssl-certificate-file".into(),
        site.path().join("h2.crt").into_os_string(),
        "--ssl-certificate-key-file".into(),
        site.path().join("h2.key").into_os_string(),
    ]);
    exchanges(&site, &format!("http://127.0.0.1:{}", server.port()), &["--http2-prior-knowledge"], "http");
    let ca = site.path().join("h2.crt").display().to_string();
    let resolve = format!("h2.test:{https_port}:127.0.0.1");
    exchanges(
        &site,
        &format!("https://h2.test:{https_port}"),
        &["--http2", "--cacert", &ca, "--resolve", &resolve],
        "https",
    );
    // HTTP/1.1 clients are still served on both.
    let (version, status, _) = curl(&format!("http://127.0.0.1:{}/hello", server.port()), &["--http1.1"]);
    assert_eq!((version.as_str(), status), ("1.1", 200));
}

#[test]
fn protocols_in_a_configuration_turn_h2c_on_and_without_it_h2c_is_not_spoken() {
    tests::require!("/usr/bin/curl");
    let site = site();
    let dir = site.path().display();
    let conf = site.path().join("site.conf");
    let server = Server::start_with(|port| {
        std::fs::write(
            &conf,
            format!("Listen 127.0.0.1:{port}\nProtocols h2c http/1.1\nWSGIScriptAlias / {dir}/app.wsgi\n"),
        )
        .unwrap();
        vec!["--config".into(), conf.clone().into()]
    });
    let (version, status, _) = curl(&format!("http://127.0.0.1:{}/hello", server.port()), &["--http2-prior-knowledge"]);
    assert_eq!((version.as_str(), status), ("2", 200));
    drop(server);
    let plain = Server::start([site.path().join("app.wsgi")]);
    let (_, status, _) = curl(&format!("http://127.0.0.1:{}/hello", plain.port()), &["--http2-prior-knowledge"]);
    assert_ne!(status, 200, "h2c answered without --http2 or Protocols");
}
