//! Static files of the standalone server (`--url-alias`) beside Apache's
//! default handler serving the same files: validators, conditional
//! requests and byte ranges agree; and the memory cache of small files
//! follows every change on disk.

use std::time::Duration;

use tests::apache::{Apache, ApacheOptions};
use tests::{HttpResponse, Server, TempDir};

const APP: &str = "def application(environ, start_response):\n    \
                   start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'app']\n";

/// `len` bytes that differ from offset to offset, so a wrong range shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A request's extra headers.
type Headers<'a> = &'a [(&'a str, &'a str)];

/// What must agree between the two servers for one request.
fn summary(r: &HttpResponse) -> String {
    let header = |name| r.header(name).unwrap_or("-").to_string();
    let mut fields = vec![format!("status {}", r.status())];
    if matches!(r.status(), 200 | 206) {
        for name in ["Content-Length", "Content-Range", "ETag", "Last-Modified", "Accept-Ranges"] {
            fields.push(format!("{name}: {}", header(name)));
        }
        fields.push(format!(
            "{} body bytes, md5-free sum {}",
            r.body.len(),
            r.body.iter().map(|b| *b as u64).sum::<u64>()
        ));
    }
    fields.join(", ")
}

#[test]
fn static_files_answer_as_apaches_default_handler() {
    tests::require!(tests::apache::APACHE_BINARY);
    let dir = TempDir::new("static-files");
    let script = dir.write("app.wsgi", APP);
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    // One file the cache keeps, one it streams.
    std::fs::write(files.join("small.bin"), pattern(100 * 1024)).unwrap();
    std::fs::write(files.join("large.bin"), pattern(3 * 1024 * 1024 / 2)).unwrap();
    // Old enough for the cache to keep the small one.
    std::thread::sleep(Duration::from_millis(2100));

    let server = Server::start([script.as_os_str(), "--url-alias".as_ref(), "/files".as_ref(), files.as_os_str()]);
    let files_dir = files.display();
    let apache = Apache::start(&ApacheOptions {
        modules: vec!["alias"],
        ..ApacheOptions::ours(format!(
            "Alias /files {files_dir}\n<Directory {files_dir}>\n  Require all granted\n</Directory>\n"
        ))
    });

    for name in ["small.bin", "large.bin"] {
        let path = format!("/files/{name}");
        let first = apache.get(&path);
        assert_eq!(first.status(), 200, "{}", apache.error_log());
        let etag = first.header("ETag").expect("Apache sends an ETag").to_string();
        let last_modified = first.header("Last-Modified").expect("Apache sends Last-Modified").to_string();
        let cases: [(&str, &str, Headers); 11] = [
            ("whole", "GET", &[]),
            ("again, from memory", "GET", &[]),
            ("HEAD", "HEAD", &[]),
            ("first 100 bytes", "GET", &[("Range", "bytes=0-99")]),
            ("last 10 bytes", "GET", &[("Range", "bytes=-10")]),
            ("from 1000 on", "GET", &[("Range", "bytes=1000-")]),
            ("past the end", "GET", &[("Range", "bytes=99999999-")]),
            ("If-None-Match", "GET", &[("If-None-Match", &etag)]),
            ("If-Modified-Since", "GET", &[("If-Modified-Since", &last_modified)]),
            ("If-Range, another tag", "GET", &[("Range", "bytes=0-99"), ("If-Range", "\"other\"")]),
            ("If-Range, this tag", "GET", &[("Range", "bytes=0-99"), ("If-Range", &etag)]),
        ];
        for (case, method, headers) in &cases {
            let theirs = apache.request(method, &path, headers, b"");
            let ours = server.request(method, &path, headers, b"");
            assert_eq!(summary(&ours), summary(&theirs), "{name}, {case}\n{}", server.stderr());
            // Apache 2.4 drops the Content-Range RFC 9110 asks of a 416
            // (it sets it where its error page does not look); we send it.
            if ours.status() == 416 {
                let size = std::fs::metadata(files.join(name)).unwrap().len();
                assert_eq!(ours.header("Content-Range"), Some(format!("bytes */{size}").as_str()));
            }
        }
    }
}

#[test]
fn a_kept_static_file_is_read_again_once_it_changes() {
    let dir = TempDir::new("static-cache");
    let script = dir.write("app.wsgi", APP);
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let page = files.join("page.txt");
    std::fs::write(&page, "version one\n").unwrap();
    std::thread::sleep(Duration::from_millis(2100));
    let server = Server::start([script.as_os_str(), "--url-alias".as_ref(), "/files".as_ref(), files.as_os_str()]);

    for _ in 0..3 {
        assert_eq!(server.get("/files/page.txt").text(), "version one\n");
    }
    // Rewritten in place with the same size.
    std::fs::write(&page, "version two\n").unwrap();
    assert_eq!(server.get("/files/page.txt").text(), "version two\n");
    // Replaced by another file.
    std::fs::write(files.join("next.txt"), "version three, longer\n").unwrap();
    std::fs::rename(files.join("next.txt"), &page).unwrap();
    let r = server.get("/files/page.txt");
    assert_eq!((r.text().as_str(), r.header("Content-Length")), ("version three, longer\n", Some("22")));
    // Removed.
    std::fs::remove_file(&page).unwrap();
    assert_eq!(server.get("/files/page.txt").status(), 404);
}
