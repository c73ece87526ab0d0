//! Real frameworks from Debian's packages, driven as a user drives them, in
//! each of our five modes and in Debian's mod_wsgi 4.9.4 serving the same
//! application: every response must agree with mod_wsgi's, and show what
//! the framework documents.
//!
//! Two deployments, each served once by each server:
//!
//! - a Django 3.2 project (fixtures under `tests/fixtures/frameworks/django`,
//!   migrated, with a superuser and its static files collected at test
//!   time): the admin's login flow (the anonymous redirect, a wrong and
//!   the right password with the CSRF token and cookie, the session
//!   cookie), the site administration, the users' change list, the add
//!   form, logout and the redirect after it; a form POST without and with
//!   its CSRF token; `APPEND_SLASH`'s redirects; multipart uploads (one
//!   held in memory, one written to a temporary file); a
//!   `StreamingHttpResponse` whose first chunk is empty; a `FileResponse`
//!   (through `wsgi.file_wrapper`), also to HEAD; the stock 404 and 500
//!   pages with DEBUG off, the 500's traceback in the server's log; a
//!   non-ASCII URL; the admin's static files through `Alias /static/`, and
//!   their revalidation.
//! - one script mounting Flask, Pyramid, Bottle, Falcon, WebOb and
//!   CherryPy's WSGI application under their own prefixes (fixtures under
//!   `tests/fixtures/frameworks/mounts`): for each, a plain page, a route
//!   with a non-ASCII parameter and a query, a redirect and the page it
//!   leads to, a JSON POST, a cookie set and read back, a streamed
//!   (generator) response, the 404 page, and an exception (the framework's
//!   500 page, or the server's when the framework lets it through), its
//!   traceback in the server's log.
//!
//! Our embedded modes and the standalone server are compared with mod_wsgi
//! embedded in the main interpreter, our daemon modes with mod_wsgi in a
//! daemon group, as tests/tests/response_matrix.rs does: each with the
//! reference that runs the application the same way (in the serving
//! process, or in a daemon process behind it). What is compared of each
//! response is in [`shape`] and [`Framing::agrees`].

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use md5::{Digest, Md5};
use tests::modes::{Deployment, Host, Mode};
use tests::{HttpResponse, TempDir};

/// Debian's Python, whose dist-packages hold the frameworks (`python3` on
/// the PATH may be another one).
const PYTHON: &str = "/usr/bin/python3";

/// The Python modules of the Debian packages this file needs
/// (python3-django, -flask, -pyramid, -bottle, -falcon, -webob,
/// -cherrypy3; `cargo xtask test` installs them).
const FRAMEWORK_MODULES: [&str; 7] = ["django", "flask", "pyramid", "bottle", "falcon", "webob", "cherrypy"];

const DJANGO_WSGI: &str = include_str!("../fixtures/frameworks/django/django.wsgi");
const DJANGO_SETTINGS: &str = include_str!("../fixtures/frameworks/django/proj/settings.py");
const DJANGO_URLS: &str = include_str!("../fixtures/frameworks/django/proj/urls.py");
const DJANGO_VIEWS: &str = include_str!("../fixtures/frameworks/django/proj/views.py");

/// The small frameworks' files: the dispatching script, then one module
/// per framework.
const MOUNT_FILES: [(&str, &str); 7] = [
    ("dispatch.wsgi", include_str!("../fixtures/frameworks/mounts/dispatch.wsgi")),
    ("fw_flask.py", include_str!("../fixtures/frameworks/mounts/fw_flask.py")),
    ("fw_pyramid.py", include_str!("../fixtures/frameworks/mounts/fw_pyramid.py")),
    ("fw_bottle.py", include_str!("../fixtures/frameworks/mounts/fw_bottle.py")),
    ("fw_falcon.py", include_str!("../fixtures/frameworks/mounts/fw_falcon.py")),
    ("fw_webob.py", include_str!("../fixtures/frameworks/mounts/fw_webob.py")),
    ("fw_cherrypy.py", include_str!("../fixtures/frameworks/mounts/fw_cherrypy.py")),
];

/// The prefixes dispatch.wsgi mounts the small frameworks at (without the
/// slash), each also the name in its cookie, messages and exception.
const MOUNTED: [&str; 6] = ["flask", "pyramid", "bottle", "falcon", "webob", "cherrypy"];

/// The Django superuser the admin flow logs in as.
const ADMIN_USER: &str = "admin";
const ADMIN_EMAIL: &str = "admin@example.com";
const ADMIN_PASSWORD: &str = "Frameworks-test-pw-1";

/// Fails when a framework's Debian package is not installed (Apache and
/// Python themselves are asked for by [`tests::require!`]).
fn require_frameworks() {
    let output = Command::new(PYTHON)
        .args(["-c", &format!("import {}", FRAMEWORK_MODULES.join(", "))])
        .output()
        .expect("run Debian's python3");
    assert!(
        output.status.success(),
        "the frameworks' Debian packages are missing (cargo xtask test installs them):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Deterministic bytes of every value (an LCG's high bits).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 56) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------
// What is compared of a response.

/// Cookies whose values are random (tokens, session keys): only their
/// names and attributes are compared.
const RANDOM_COOKIES: [&str; 2] = ["csrftoken", "sessionid"];

/// `Set-Cookie` without what varies from one server (or second) to the
/// next: the value of a random cookie, and the `expires` date.
fn cookie_shape(value: &str) -> String {
    let mut parts = value.trim().split(';').map(str::trim);
    let (name, cookie_value) = parts.next().unwrap_or_default().split_once('=').unwrap_or_default();
    let cookie_value = if RANDOM_COOKIES.contains(&name) && !cookie_value.is_empty() && cookie_value != "\"\"" {
        "<random>"
    } else {
        cookie_value
    };
    let mut shape = format!("{name}={cookie_value}");
    for attribute in parts {
        let attribute =
            if attribute.to_ascii_lowercase().starts_with("expires=") { "expires=<date>" } else { attribute };
        shape.push_str("; ");
        shape.push_str(attribute);
    }
    shape
}

/// Where a page carries Django's per-request masked CSRF token.
const CSRF_INPUT: &str = "name=\"csrfmiddlewaretoken\" value=\"";

/// The CSRF token of the first form in `page`.
fn csrf_token(page: &str) -> Option<String> {
    let start = page.find(CSRF_INPUT)? + CSRF_INPUT.len();
    let end = page[start..].find('"')?;
    Some(page[start..start + end].to_string())
}

/// `body` without what differs between servers serving the same thing:
/// the address (in absolute redirects and error pages) and CSRF tokens.
/// Bodies that are not UTF-8 are compared by size and digest.
fn body_shape(body: &[u8], host: &str) -> String {
    let Ok(text) = std::str::from_utf8(body) else {
        return format!("{} bytes, md5 {}", body.len(), hex(&Md5::digest(body)));
    };
    let mut text = text.replace(host, "HOST");
    let mut from = 0;
    while let Some(found) = text[from..].find(CSRF_INPUT) {
        let start = from + found + CSRF_INPUT.len();
        let end = text[start..].find('"').map_or(text.len(), |end| start + end);
        text.replace_range(start..end, "<token>");
        from = start;
    }
    text
}

/// How a response's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `Content-Length: N`.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither: the body ends with the connection.
    Close,
}

impl Framing {
    fn of(response: &HttpResponse) -> Framing {
        match response.header("Content-Length") {
            Some(length) => Framing::Length(length.parse().unwrap_or(usize::MAX)),
            None if response.head.is_chunked() => Framing::Chunked,
            None => Framing::Close,
        }
    }

    /// Whether our framing `ours` agrees with mod_wsgi's `theirs` for a
    /// body of `len` bytes: the same, or one side chunked where the other
    /// sends that exact length. HTTP allows both for a body whose length
    /// the application did not declare, and which one a server picks
    /// depends on what it holds when the head goes out: we send the length
    /// of a list of chunks in embedded mode, and in daemon mode of a
    /// response that reached the front end whole (wsgi-daemon's
    /// `relay_chunk`), where mod_wsgi flushes and chunks; Apache's
    /// content-length filter may count what arrives at once. Declared
    /// lengths are checked in every mode by tests/tests/response_matrix.rs.
    fn agrees(ours: Framing, theirs: Framing, len: usize) -> bool {
        let exact = |a: Framing, b: Framing| a == Framing::Chunked && b == Framing::Length(len);
        ours == theirs || exact(theirs, ours) || exact(ours, theirs)
    }
}

/// What is compared of a response: the status line, every header field
/// but those that vary by nature (Date, Server, the connection's own;
/// `Expires`, which Django's `never_cache` sets to the current time, and
/// `ETag` only by presence), cookies by [`cookie_shape`], and the body by
/// [`body_shape`]. Fields are sorted: Apache keeps its own order. The
/// framing is compared apart (see [`Framing::agrees`]).
fn shape(response: &HttpResponse, port: u16) -> String {
    let host = format!("127.0.0.1:{port}");
    let mut fields = Vec::new();
    for (name, value) in &response.head.headers {
        let name = name.to_ascii_lowercase();
        let value = value.replace(&host, "HOST");
        match name.as_str() {
            "date" | "server" | "connection" | "keep-alive" | "content-length" | "transfer-encoding" => {}
            "expires" => fields.push("expires: <date>".to_string()),
            // An entity tag is opaque (RFC 9110), its form the server's:
            // whether there is one is compared.
            "etag" => fields.push("etag: <present>".to_string()),
            "set-cookie" => fields.push(format!("set-cookie: {}", cookie_shape(&value))),
            _ => fields.push(format!("{name}: {value}")),
        }
    }
    fields.sort();
    format!(
        "{} {}\n{}\nbody: {}",
        response.head.status,
        response.head.reason,
        fields.join("\n"),
        body_shape(&response.body, &host)
    )
}

/// Where `ours` first differs from `expected`, with some context on each
/// side (shapes hold whole pages).
fn first_difference(expected: &str, ours: &str) -> String {
    let common = expected.bytes().zip(ours.bytes()).take_while(|(a, b)| a == b).count();
    let mut start = common.saturating_sub(120);
    while !expected.is_char_boundary(start) {
        start -= 1;
    }
    let excerpt = |text: &str| {
        let mut end = (common + 200).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        format!("{:?}", &text[start.min(text.len())..end])
    };
    format!("        mod_wsgi: …{}\n        ours:     …{}", excerpt(expected), excerpt(ours))
}

/// A response in a few words, for a failed check.
fn describe(response: &HttpResponse) -> String {
    let text = response.text();
    let mut excerpt: String = text.chars().take(300).collect();
    if excerpt.len() < text.len() {
        excerpt.push('…');
    }
    format!(
        "{} {}, Content-Type {:?}, Location {:?}, Set-Cookie {:?}, body {excerpt:?}",
        response.head.status,
        response.head.reason,
        response.header("Content-Type"),
        response.header("Location"),
        response.head.header_all("Set-Cookie"),
    )
}

// ---------------------------------------------------------------------------
// A user with a cookie jar.

/// One request and what is compared of its response.
struct Exchange {
    title: String,
    shape: String,
    framing: Framing,
    body_len: usize,
}

/// A user's browser against one server: it keeps the cookies it is given
/// and sends them back, records each exchange, and records (rather than
/// panics on) each documented behaviour it does not see.
struct Client<'a> {
    host: &'a Host,
    jar: BTreeMap<String, String>,
    exchanges: Vec<Exchange>,
    failures: Vec<String>,
}

impl<'a> Client<'a> {
    fn new(host: &'a Host) -> Client<'a> {
        Client { host, jar: BTreeMap::new(), exchanges: Vec::new(), failures: Vec::new() }
    }

    /// Sends a request with the jar's cookies, keeps the cookies of the
    /// response, and records the exchange under `title`.
    fn send(&mut self, title: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
        let cookies: Vec<String> = self.jar.iter().map(|(name, value)| format!("{name}={value}")).collect();
        let cookies = cookies.join("; ");
        let mut all = headers.to_vec();
        if !cookies.is_empty() {
            all.push(("Cookie", &cookies));
        }
        let response = self.host.request(method, path, &all, body);
        for set_cookie in response.head.header_all("Set-Cookie") {
            let mut parts = set_cookie.split(';').map(str::trim);
            let Some((name, value)) = parts.next().and_then(|pair| pair.split_once('=')) else { continue };
            let deleted = value.is_empty()
                || value == "\"\""
                || parts.any(|attribute| attribute.eq_ignore_ascii_case("max-age=0"));
            if deleted {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_string(), value.to_string());
            }
        }
        self.exchanges.push(Exchange {
            title: title.to_string(),
            shape: shape(&response, self.host.address().port()),
            framing: Framing::of(&response),
            body_len: response.body.len(),
        });
        response
    }

    /// `GET path` with the jar's cookies.
    fn get(&mut self, title: &str, path: &str) -> HttpResponse {
        self.send(title, "GET", path, &[], b"")
    }

    /// Records a failure of the last exchange unless `ok`.
    fn check(&mut self, response: &HttpResponse, ok: bool, expected: &str) {
        if !ok {
            let title = self.exchanges.last().map_or("", |exchange| exchange.title.as_str());
            self.failures.push(format!("{title}: expected {expected}; got {}", describe(response)));
        }
    }

    /// Records a failure unless the server's log comes to hold `marker`
    /// (a daemon process's output may reach it a moment after the
    /// response).
    fn check_log(&mut self, marker: &str, what: &str) {
        let host = self.host;
        let found = tests::wait_for(std::time::Duration::from_secs(10), || host.log().contains(marker).then_some(()));
        if found.is_none() {
            self.failures.push(format!("{what}: {marker:?} is not in the server's log"));
        }
    }

    /// A path on this server from a `Location` (absolute or not).
    fn local(&self, location: &str) -> String {
        let origin = format!("http://127.0.0.1:{}", self.host.address().port());
        location.strip_prefix(&origin).unwrap_or(location).to_string()
    }
}

// ---------------------------------------------------------------------------
// Comparing every mode with mod_wsgi.

/// The last lines of a server's log (tracebacks are long).
fn log_tail(host: &Host) -> String {
    let log = host.log();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(80)..].join("\n")
}

/// How `client`'s exchanges with `host` (named `name`) differ from
/// mod_wsgi's `expected`, and the checks it failed, with the end of the
/// log when it failed any.
fn differences(name: &str, expected: &[Exchange], client: &Client, host: &Host) -> Vec<String> {
    let mut differences = Vec::new();
    for failure in &client.failures {
        differences.push(format!("{name}: {failure}"));
    }
    if client.exchanges.len() != expected.len() {
        differences.push(format!("{name}: {} exchanges, mod_wsgi had {}", client.exchanges.len(), expected.len()));
    }
    for (ours, theirs) in client.exchanges.iter().zip(expected) {
        if ours.title != theirs.title {
            differences.push(format!("{name}: {}, where mod_wsgi had {}", ours.title, theirs.title));
        } else if ours.shape != theirs.shape {
            differences.push(format!("{name}: {}\n{}", ours.title, first_difference(&theirs.shape, &ours.shape)));
        } else if !Framing::agrees(ours.framing, theirs.framing, ours.body_len) {
            differences
                .push(format!("{name}: {}: framing {:?}, mod_wsgi's {:?}", ours.title, ours.framing, theirs.framing));
        }
    }
    if !client.failures.is_empty() {
        differences.push(format!("--- {name} log (the end)\n{}", log_tail(host)));
    }
    differences
}

/// Serves `deployment` with mod_wsgi (embedded, then in daemon mode) and
/// with each of our modes, runs `drive` against each, and compares every
/// exchange with the reference's. Panics with every difference and every
/// failed check; the reference failing a check is a broken test or set-up.
fn compare_with_mod_wsgi(suite: &str, deployment: &Deployment, drive: impl Fn(&mut Client)) {
    let mut report = Vec::new();
    let mut compared = BTreeMap::new();
    for daemon in [false, true] {
        let reference = Host::reference(daemon, deployment);
        let mut client = Client::new(&reference);
        drive(&mut client);
        assert!(
            client.failures.is_empty(),
            "{suite}: mod_wsgi ({}) does not behave as the framework documents:\n{}\n--- log (the end)\n{}",
            if daemon { "daemon" } else { "embedded" },
            client.failures.join("\n"),
            log_tail(&reference)
        );
        let expected = client.exchanges;
        drop(reference);
        for mode in Mode::ALL.into_iter().filter(|mode| mode.is_daemon() == daemon) {
            let host = Host::start(mode, deployment);
            let mut client = Client::new(&host);
            drive(&mut client);
            compared.insert(mode.name(), client.exchanges.len());
            report.extend(differences(mode.name(), &expected, &client, &host));
        }
    }
    eprintln!("{suite}: responses compared with mod_wsgi's: {compared:?}");
    assert!(report.is_empty(), "{suite}: our modes differ from mod_wsgi:\n{}", report.join("\n"));
}

// ---------------------------------------------------------------------------
// Django.

/// Runs `python3 -m django ARGS` for the project in `site`.
fn django_admin(site: &Path, args: &[&str], env: &[(&str, &str)]) {
    let output = Command::new(PYTHON)
        .args(["-m", "django"])
        .args(args)
        .args(["--settings", "proj.settings", "--pythonpath"])
        .arg(site)
        .envs(env.iter().copied())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run python3 -m django");
    assert!(
        output.status.success(),
        "django-admin {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The Django project in a fresh directory: migrated, with a superuser,
/// the admin's static files collected, the sample file FileResponse
/// serves, and the database's directory given to www-data (Apache's
/// children and daemon processes write the sessions there, and sqlite its
/// journal beside the database).
fn django_site() -> TempDir {
    let site = TempDir::new("frameworks-django");
    site.write("django.wsgi", DJANGO_WSGI);
    site.write("proj/__init__.py", "");
    site.write("proj/settings.py", DJANGO_SETTINGS);
    site.write("proj/urls.py", DJANGO_URLS);
    site.write("proj/views.py", DJANGO_VIEWS);
    std::fs::create_dir(site.path().join("db")).expect("create the database directory");
    std::fs::create_dir(site.path().join("media")).expect("create the media directory");
    std::fs::write(site.path().join("media/sample.bin"), noise(100_000, 7)).expect("write the sample file");
    django_admin(site.path(), &["migrate", "--noinput", "-v", "0"], &[]);
    django_admin(
        site.path(),
        &["createsuperuser", "--noinput", "--username", ADMIN_USER, "--email", ADMIN_EMAIL],
        &[("DJANGO_SUPERUSER_PASSWORD", ADMIN_PASSWORD)],
    );
    django_admin(site.path(), &["collectstatic", "--noinput", "-v", "0"], &[]);
    let status = Command::new("chown")
        .args(["-R", "www-data:www-data"])
        .arg(site.path().join("db"))
        .status()
        .expect("run chown");
    assert!(status.success(), "chown www-data the database directory");
    site
}

/// A `multipart/form-data` body of `parts` (field, file name, content
/// type, data).
fn multipart(boundary: &str, parts: &[(&str, Option<&str>, &str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (field, file_name, content_type, data) in parts {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"").as_bytes());
        if let Some(file_name) = file_name {
            body.extend_from_slice(format!("; filename=\"{file_name}\"").as_bytes());
        }
        body.extend_from_slice(format!("\r\nContent-Type: {content_type}\r\n\r\n").as_bytes());
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

/// Django, as a user of the admin and of the project's views.
fn drive_django(c: &mut Client, site: &Path) {
    const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

    // The admin's login flow. The redirect is an HttpResponse whose only
    // chunk is empty: its status and headers must not be lost.
    let r = c.get("GET /admin/, anonymous", "/admin/");
    c.check(
        &r,
        r.status() == 302 && r.header("Location") == Some("/admin/login/?next=/admin/") && r.body.is_empty(),
        "302 to /admin/login/?next=/admin/",
    );
    let r = c.get("GET the login page", "/admin/login/?next=/admin/");
    let page = r.text();
    c.check(
        &r,
        r.status() == 200
            && page.contains("<title>Log in | Django site admin</title>")
            && c.jar.contains_key("csrftoken"),
        "200, the login form, a csrftoken cookie",
    );
    let token = csrf_token(&page).unwrap_or_default();
    c.check(&r, !token.is_empty(), "a csrfmiddlewaretoken in the form");
    let wrong = format!("csrfmiddlewaretoken={token}&username={ADMIN_USER}&password=wrong&next=%2Fadmin%2F");
    let r = c.send("POST a wrong password", "POST", "/admin/login/?next=/admin/", &[FORM], wrong.as_bytes());
    c.check(
        &r,
        r.status() == 200 && r.text().contains("Please enter the correct username and password"),
        "200, the form again with its error",
    );
    let token = csrf_token(&r.text()).unwrap_or(token);
    let right = format!("csrfmiddlewaretoken={token}&username={ADMIN_USER}&password={ADMIN_PASSWORD}&next=%2Fadmin%2F");
    let r = c.send("POST the right password", "POST", "/admin/login/?next=/admin/", &[FORM], right.as_bytes());
    c.check(
        &r,
        r.status() == 302 && r.header("Location") == Some("/admin/") && c.jar.contains_key("sessionid"),
        "302 to /admin/ with a session cookie",
    );
    let r = c.get("GET /admin/, logged in", "/admin/");
    let page = r.text();
    c.check(
        &r,
        r.status() == 200
            && page.contains("Site administration")
            && page.contains(&format!("<strong>{ADMIN_USER}</strong>")),
        "200, the site administration, welcoming the user",
    );
    let r = c.get("GET the users' change list", "/admin/auth/user/");
    let page = r.text();
    c.check(
        &r,
        r.status() == 200 && page.contains("Select user to change") && page.contains(ADMIN_EMAIL),
        "200, the change list with the superuser",
    );
    // (The add form: the change form shows the user's last login time.)
    let r = c.get("GET the add-user form", "/admin/auth/user/add/");
    c.check(&r, r.status() == 200 && r.text().contains("<h1>Add user</h1>"), "200, the add form");
    let r = c.get("GET /admin/logout/", "/admin/logout/");
    c.check(&r, r.status() == 200 && r.text().contains("Logged out"), "200, logged out");
    let r = c.get("GET /admin/ after logging out", "/admin/");
    c.check(
        &r,
        r.status() == 302 && r.header("Location") == Some("/admin/login/?next=/admin/"),
        "302 to the login page again",
    );

    // A form with its CSRF token.
    let r = c.get("GET /form/", "/form/");
    let token = csrf_token(&r.text()).unwrap_or_default();
    c.check(&r, r.status() == 200 && !token.is_empty(), "200, a form with a CSRF token");
    let r = c.send("POST /form/ without its token", "POST", "/form/", &[FORM], b"name=x");
    c.check(&r, r.status() == 403 && r.text().contains("CSRF verification failed"), "403, CSRF verification failed");
    let posted = format!("name=Zo%C3%AB&colour=red&colour=blue&csrfmiddlewaretoken={token}");
    let r = c.send("POST /form/", "POST", "/form/", &[FORM], posted.as_bytes());
    c.check(
        &r,
        r.status() == 200 && r.text().contains(r#""name": "Zo\u00eb", "colours": ["red", "blue"]"#),
        "200, the fields as JSON",
    );
    let r = c.get("GET /form (no slash)", "/form");
    c.check(&r, r.status() == 301 && r.header("Location") == Some("/form/"), "301 to /form/ (APPEND_SLASH)");

    // Multipart uploads: a small one, which Django keeps in memory, and
    // one above FILE_UPLOAD_MAX_MEMORY_SIZE (2.5 MB), which it writes to a
    // temporary file.
    let boundary = "----frameworks-test-boundary-5d2c7a";
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let small = b"a small file\n".as_slice();
    let big = noise(3 << 20, 11);
    for (title, file_name, data, on_disk) in
        [("POST /upload/, a small file", "small.txt", small, false), ("POST /upload/, 3 MiB", "big.bin", &big, true)]
    {
        let body = multipart(
            boundary,
            &[
                ("note", None, "text/plain; charset=utf-8", "café".as_bytes()),
                ("file", Some(file_name), "application/octet-stream", data),
            ],
        );
        let r = c.send(title, "POST", "/upload/", &[("Content-Type", &content_type)], &body);
        let text = r.text();
        let expected = format!(
            r#""files": [{{"field": "file", "name": "{file_name}", "content_type": "application/octet-stream", "size": {}, "md5": "{}", "sha256": "#,
            data.len(),
            hex(&Md5::digest(data))
        );
        c.check(
            &r,
            r.status() == 200
                && text.starts_with(r#"{"note": "caf\u00e9", "#)
                && text.contains(&expected)
                && text.contains(&format!(r#""on_disk": {on_disk}"#)),
            &format!("200, the note, the file's name, size and md5, on disk: {on_disk}"),
        );
    }

    // Streaming, a file, error pages.
    let r = c.get("GET /stream/ (StreamingHttpResponse)", "/stream/");
    let lines: String = (0..5).map(|i| format!("line {i} of a streamed response\n")).collect();
    c.check(&r, r.status() == 200 && r.text() == lines, "200, the five lines");
    let sample = std::fs::read(site.join("media/sample.bin")).expect("read the sample file");
    let r = c.get("GET /file/ (FileResponse)", "/file/");
    c.check(
        &r,
        r.status() == 200
            && r.body == sample
            && r.header("Content-Type") == Some("application/octet-stream")
            && r.header("Content-Disposition") == Some("attachment; filename=\"sample.bin\""),
        "200, the file as an attachment",
    );
    let r = c.send("HEAD /file/", "HEAD", "/file/", &[], b"");
    c.check(&r, r.status() == 200 && r.body.is_empty(), "200 without a body");
    let r = c.get("GET /nope/", "/nope/");
    c.check(
        &r,
        r.status() == 404
            && r.text().contains("<h1>Not Found</h1><p>The requested resource was not found on this server.</p>"),
        "Django's stock 404 page",
    );
    let r = c.get("GET /boom/ (the view raises)", "/boom/");
    c.check(&r, r.status() == 500 && r.text().contains("<h1>Server Error (500)</h1>"), "Django's stock 500 page");
    c.check_log("RuntimeError: a Django view failed on purpose", "the traceback of /boom/ (django.request)");

    // A non-ASCII URL.
    let r = c.get("GET /café/?q=é", "/caf%C3%A9/?q=%C3%A9");
    c.check(
        &r,
        r.status() == 200 && r.text().contains(r#""path": "/caf\u00e9/", "path_info": "/caf\u00e9/""#),
        "200, the decoded path",
    );
    let r = c.get("GET /café (no slash)", "/caf%C3%A9");
    c.check(&r, r.status() == 301 && r.header("Location") == Some("/caf%C3%A9/"), "301 to /caf%C3%A9/");

    // The admin's static files, through Alias.
    for (file, content_type) in [("admin/css/base.css", "text/css"), ("admin/img/search.svg", "image/svg+xml")] {
        let r = c.get(&format!("GET /static/{file}"), &format!("/static/{file}"));
        let collected = std::fs::read(site.join("static").join(file)).expect("read a collected static file");
        c.check(
            &r,
            r.status() == 200
                && r.body == collected
                && r.header("Content-Type").is_some_and(|value| value.starts_with(content_type)),
            &format!("200, {content_type}, the collected file"),
        );
    }
    // A browser revalidates what it has with the validator it was given.
    let r = c.get("GET base.css again", "/static/admin/css/base.css");
    let mut validators = Vec::new();
    if let Some(last_modified) = r.header("Last-Modified") {
        validators.push(("If-Modified-Since", last_modified));
    }
    if let Some(etag) = r.header("ETag") {
        validators.push(("If-None-Match", etag));
    }
    let r = c.send("GET base.css, conditionally", "GET", "/static/admin/css/base.css", &validators, b"");
    c.check(&r, r.status() == 304 && r.body.is_empty(), "304 Not Modified");
    let r = c.get("GET a missing static file", "/static/admin/css/missing.css");
    c.check(&r, r.status() == 404, "404");
}

#[test]
fn django_admin_forms_uploads_files_and_errors_agree_with_mod_wsgi_in_every_mode() {
    tests::require!(tests::apache::APACHE_BINARY, tests::apache::REFERENCE_MODULE, PYTHON);
    require_frameworks();
    let site = django_site();
    // Both with a trailing slash, as Apache's Alias needs.
    let static_dir = format!("{}/", site.path().join("static").display());
    let deployment = Deployment::script(site.path().join("django.wsgi")).alias("/static/", static_dir);
    compare_with_mod_wsgi("django", &deployment, |client| drive_django(client, site.path()));
}

/// The project's `manage.py`, as `django-admin startproject` writes it,
/// with the settings that add the wheel's Django application.
const DJANGO_MANAGE: &str = r#"#!/usr/bin/env python3
import os
import sys

if __name__ == '__main__':
    os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings_runwsgi')
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)
"#;

/// The settings `manage.py runwsgi` runs with: the project's, with
/// mod_wsgi_rs's Django application and a `WSGI_APPLICATION`, as
/// `startproject` writes it.
const DJANGO_RUNWSGI_SETTINGS: &str = "from proj.settings import *  # noqa\n\
INSTALLED_APPS = INSTALLED_APPS + ['mod_wsgi_rs.django']\n\
WSGI_APPLICATION = 'proj.wsgi.application'\n";

const DJANGO_PROJECT_WSGI: &str = "import os\n\
os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings_runwsgi')\n\
from django.core.wsgi import get_wsgi_application\n\
application = get_wsgi_application()\n";

#[test]
fn django_manage_py_runwsgi_from_the_wheel_serves_the_project_as_mod_wsgi_does() {
    tests::require!(tests::apache::APACHE_BINARY, tests::apache::REFERENCE_MODULE, PYTHON);
    require_frameworks();
    let site = django_site();
    let manage = site.write("manage.py", DJANGO_MANAGE);
    site.write("proj/settings_runwsgi.py", DJANGO_RUNWSGI_SETTINGS);
    site.write("proj/wsgi.py", DJANGO_PROJECT_WSGI);
    // The wheel in a virtual environment that sees Debian's Django.
    let venv_dir = TempDir::new("runwsgi-venv");
    let venv = venv_dir.path().join("venv");
    tests::wheel::install(&venv, true);

    let static_dir = format!("{}/", site.path().join("static").display());
    let deployment = Deployment::script(site.path().join("django.wsgi")).alias("/static/", static_dir);
    let reference = Host::reference(false, &deployment);
    let mut client = Client::new(&reference);
    drive_django(&mut client, site.path());
    assert!(client.failures.is_empty(), "mod_wsgi: {}", client.failures.join("\n"));
    let expected = client.exchanges;
    drop(reference);

    // `manage.py runwsgi` with a start-server option passed through.
    let manage = manage.to_str().expect("a UTF-8 path");
    let host = Host::Standalone(tests::Server::start_command(
        &venv.join("bin/python"),
        &[manage, "runwsgi"],
        site.path(),
        |_port| vec!["--threads".into(), "4".into()],
    ));
    let mut client = Client::new(&host);
    drive_django(&mut client, site.path());
    eprintln!("django: manage.py runwsgi: {} responses compared with mod_wsgi's", client.exchanges.len());
    let report = differences("manage.py runwsgi", &expected, &client, &host);
    assert!(report.is_empty(), "manage.py runwsgi differs from mod_wsgi:\n{}", report.join("\n"));
}

// ---------------------------------------------------------------------------
// Flask, Pyramid, Bottle, Falcon, WebOb, CherryPy.

/// Each small framework, as a user of its routes.
fn drive_mounted(c: &mut Client) {
    for name in MOUNTED {
        let prefix = format!("/{name}");
        let r = c.get(&format!("{name}: GET /"), &format!("{prefix}/"));
        c.check(&r, r.status() == 200 && r.text().starts_with("Hello from "), "200, the greeting");

        let r = c.get(&format!("{name}: GET /hello/wörld?x=1"), &format!("{prefix}/hello/w%C3%B6rld?x=1"));
        let text = r.text().replace(' ', "");
        c.check(
            &r,
            r.status() == 200
                && r.header("Content-Type").is_some_and(|value| value.starts_with("application/json"))
                && (text.contains(r#""name":"w\u00f6rld""#) || text.contains(r#""name":"wörld""#))
                && text.contains(r#""x":"1""#)
                && text.contains(&format!(r#""script_name":"/{name}"#)),
            "200, JSON with the decoded name, the query and the mount point",
        );

        let r = c.get(&format!("{name}: GET /redirect"), &format!("{prefix}/redirect"));
        let location = r.header("Location").map(|location| c.local(location)).unwrap_or_default();
        c.check(
            &r,
            matches!(r.status(), 302 | 303) && location == format!("{prefix}/hello/redirected"),
            &format!("302 or 303 to {prefix}/hello/redirected"),
        );
        let r = c.get(&format!("{name}: follow the redirect"), &location);
        c.check(&r, r.status() == 200 && r.text().contains("redirected"), "200, the page redirected to");

        let json = r#"{"a": [1, 2], "é": "ü"}"#;
        let r = c.send(
            &format!("{name}: POST /json"),
            "POST",
            &format!("{prefix}/json"),
            &[("Content-Type", "application/json")],
            json.as_bytes(),
        );
        let text = r.text().replace(' ', "");
        c.check(
            &r,
            r.status() == 200
                && (text.contains(r#""received":{"a":[1,2],"\u00e9":"\u00fc"}"#)
                    || text.contains(r#""received":{"a":[1,2],"é":"ü"}"#)),
            "200, the JSON received",
        );

        let cookie = format!("{name}_cookie");
        let r = c.get(&format!("{name}: set a cookie"), &format!("{prefix}/cookie/set"));
        let set_cookie = r.header("Set-Cookie").unwrap_or_default().to_ascii_lowercase();
        c.check(
            &r,
            r.status() == 200
                && set_cookie.starts_with(&format!("{cookie}={name}-value"))
                && set_cookie.contains(&format!("path={prefix}"))
                && set_cookie.contains("httponly"),
            "200, the cookie with its path, HttpOnly",
        );
        let r = c.get(&format!("{name}: read the cookie back"), &format!("{prefix}/cookie/get"));
        c.check(&r, r.status() == 200 && r.text() == format!("cookie: {name}-value"), "200, the cookie's value");

        let r = c.get(&format!("{name}: GET /stream (a generator)"), &format!("{prefix}/stream"));
        let parts: String = (0..5).map(|i| format!("{name} part {i}\n")).collect();
        c.check(&r, r.status() == 200 && r.text() == parts, "200, the five parts");

        let r = c.get(&format!("{name}: GET /nope"), &format!("{prefix}/nope"));
        c.check(&r, r.status() == 404, "404");
        let r = c.get(&format!("{name}: GET /boom (the view raises)"), &format!("{prefix}/boom"));
        c.check(&r, r.status() == 500, "500");
        c.check_log(&format!("RuntimeError: boom from {name}"), &format!("{name}: the traceback of /boom"));
    }
    let r = c.get("GET a prefix nothing is mounted at", "/nothing/here");
    c.check(&r, r.status() == 404 && r.text() == "no framework is mounted at /nothing/here", "404 from dispatch.wsgi");
}

#[test]
fn flask_pyramid_bottle_falcon_webob_and_cherrypy_agree_with_mod_wsgi_in_every_mode() {
    tests::require!(tests::apache::APACHE_BINARY, tests::apache::REFERENCE_MODULE, PYTHON);
    require_frameworks();
    let site = TempDir::new("frameworks-mounted");
    for (name, text) in MOUNT_FILES {
        site.write(name, text);
    }
    let deployment = Deployment::script(site.path().join("dispatch.wsgi"));
    compare_with_mod_wsgi("flask, pyramid, bottle, falcon, webob, cherrypy", &deployment, drive_mounted);
}
