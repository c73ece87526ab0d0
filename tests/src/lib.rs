//! Harness for the end-to-end tests: builds and locates the workspace's
//! binaries, and makes world-readable fixture directories that are removed
//! when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub mod apache;
pub mod modes;
pub mod wheel;

/// Returns from the test when a system file it needs is missing: under CI
/// (`CI` set) it fails instead, since `cargo xtask test` installs every
/// package a test needs, and a missing one is a broken set-up, never a
/// pass. Takes paths (`tests::apache::APACHE_BINARY`, `/usr/bin/curl`).
#[macro_export]
macro_rules! require {
    ($($path:expr),+ $(,)?) => {
        if !$crate::system_has(&[$($path),+]) {
            return;
        }
    };
}

/// Whether every one of `paths` exists; see [`require!`]. Panics under CI
/// when one is missing, and otherwise says which test is skipped.
pub fn system_has(paths: &[&str]) -> bool {
    let missing: Vec<&str> = paths.iter().copied().filter(|path| !Path::new(path).exists()).collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!("missing (cargo xtask test installs them): {}", missing.join(", "));
    assert!(std::env::var_os("CI").is_none(), "{message}");
    eprintln!("skipped: {message}");
    false
}

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the tests crate lives one level below the workspace root")
}

/// Path of the `wsgi-standalone` binary, built (once per test process) in
/// the same profile as the tests.
pub fn standalone_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| build_binary("wsgi-standalone", "wsgi-standalone"))
}

/// Path of the example `example` of `package`, built (at each call) in the
/// same profile as the tests.
pub fn example_binary(package: &str, example: &str) -> PathBuf {
    build_target(package, "--example", example);
    target_dir().join("debug").join("examples").join(example)
}

fn build_binary(package: &str, binary: &str) -> PathBuf {
    build_target(package, "--bin", binary);
    target_dir().join("debug").join(binary)
}

/// Builds one target (`kind` is `--bin` or `--example`) of `package`.
fn build_target(package: &str, kind: &str, name: &str) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["build", "--quiet", "--package", package, kind, name])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building {name} failed");
}

/// The workspace's target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"))
}

/// A fresh world-readable directory under the system temp dir, removed on drop.
///
/// World-readable because Apache's children, which run as `www-data`,
/// must be able to read what a test serves.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a new, empty directory whose name starts with `prefix`.
    pub fn new(prefix: &str) -> TempDir {
        use std::os::unix::fs::PermissionsExt;
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
        TempDir { path }
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `contents` to `name` inside the directory and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&path, contents).expect("write fixture");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago: bound, and released.
///
/// Ports come from below the kernel's ephemeral range (32768 and up on
/// Linux), so a client connection made by another test cannot take the
/// port between this call and the server's own bind. Each test process
/// walks its own sequence, offset by its process id. A port that any
/// socket still holds, even in TIME_WAIT after an earlier test's server,
/// is skipped: the bind here sets SO_REUSEADDR, as std does, and would
/// succeed, but a server that binds without it would fail.
pub fn free_port() -> u16 {
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let offset = std::process::id().wrapping_mul(7919) % COUNT;
    for _ in 0..COUNT {
        let step = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = (FIRST + (offset + step) % COUNT) as u16;
        if !kernel_holds_port(port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 127.0.0.1:{FIRST}..{}", FIRST + COUNT);
}

/// Whether a TCP socket of this network namespace, in any state, has
/// `port` as its local port (from /proc/net/tcp and tcp6).
fn kernel_holds_port(port: u16) -> bool {
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        text.lines().skip(1).any(|line| {
            let local = line.split_whitespace().nth(1).unwrap_or_default();
            local.rsplit(':').next().and_then(|hex| u16::from_str_radix(hex, 16).ok()) == Some(port)
        })
    })
}

/// Sleeps in short steps until `check` returns `Some`, for at most `limit`.
pub fn wait_for<T>(limit: std::time::Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(found) = check() {
            return Some(found);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// How long a server may take to accept connections after it is spawned.
const SERVER_START_LIMIT: std::time::Duration = std::time::Duration::from_secs(20);

/// A running `wsgi-standalone start-server` on 127.0.0.1, killed on drop.
///
/// Its standard output and error go to files in a temporary directory
/// (see [`Server::stdout`] and [`Server::stderr`]).
pub struct Server {
    child: std::process::Child,
    port: u16,
    exit: Option<std::process::ExitStatus>,
    logs: TempDir,
}

impl Server {
    /// Spawns `wsgi-standalone start-server ARGS --port P` on a free port
    /// and waits (at most 20 s) until it has logged that it serves on that
    /// port (unless given `--error-log` or `--log-level`) and accepts
    /// connections. Panics, with
    /// the server's output, if it exits or never listens. A port taken
    /// between choosing it and the server binding it is retried.
    pub fn start<I, S>(args: I) -> Server
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_os_string()).collect();
        Server::start_with(|_port| args.clone())
    }

    /// As [`Server::start`], with the arguments made by `args` for the port
    /// chosen (for configuration files that name it); `--port P` is still
    /// appended. `args` may be called again if the port was taken.
    pub fn start_with(args: impl FnMut(u16) -> Vec<std::ffi::OsString>) -> Server {
        Server::start_with_env(&[], args)
    }

    /// As [`Server::start_with`], with the variables of `env` set in the
    /// server's environment (over the test's own).
    pub fn start_with_env(
        env: &[(&str, &std::ffi::OsStr)],
        args: impl FnMut(u16) -> Vec<std::ffi::OsString>,
    ) -> Server {
        Server::launch(standalone_binary(), &["start-server"], env, None, args)
    }

    /// As [`Server::start_with_env`], run from the directory `dir`.
    pub fn start_in<I, S>(dir: &Path, env: &[(&str, &std::ffi::OsStr)], args: I) -> Server
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_os_string()).collect();
        Server::launch(standalone_binary(), &["start-server"], env, Some(dir), |_port| args.clone())
    }

    /// As [`Server::start_with_env`], running `binary` (a `wsgi-standalone`
    /// installed elsewhere, such as a virtual environment's) instead of the
    /// workspace's.
    pub fn start_program(
        binary: &Path,
        env: &[(&str, &std::ffi::OsStr)],
        args: impl FnMut(u16) -> Vec<std::ffi::OsString>,
    ) -> Server {
        Server::launch(binary, &["start-server"], env, None, args)
    }

    /// A server started by another program: `program LEADING ARGS --port
    /// P`, run from `dir` (such as `python manage.py runwsgi`, which runs
    /// `wsgi-standalone start-server`), waited for as [`Server::start`]
    /// waits.
    pub fn start_command(
        program: &Path,
        leading: &[&str],
        dir: &Path,
        args: impl FnMut(u16) -> Vec<std::ffi::OsString>,
    ) -> Server {
        Server::launch(program, leading, &[], Some(dir), args)
    }

    fn launch(
        binary: &Path,
        leading: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
        dir: Option<&Path>,
        mut args: impl FnMut(u16) -> Vec<std::ffi::OsString>,
    ) -> Server {
        use std::process::Stdio;
        let logs = TempDir::new("wsgi-server-logs");
        let mut last_failure = String::new();
        let mut last_args = Vec::new();
        for _attempt in 0..5 {
            let port = free_port();
            let port_args = args(port);
            let stdout = std::fs::File::create(logs.path().join("stdout")).expect("create stdout file");
            let stderr = std::fs::File::create(logs.path().join("stderr")).expect("create stderr file");
            let mut command = Command::new(binary);
            if let Some(dir) = dir {
                command.current_dir(dir);
            }
            let mut child = command
                .args(leading)
                .args(&port_args)
                .arg("--port")
                .arg(port.to_string())
                .envs(env.iter().copied())
                .stdin(Stdio::null())
                .stdout(stdout)
                .stderr(stderr)
                .spawn()
                .expect("spawn wsgi-standalone");
            // The server logs this once Python is up and the port is its own
            // (unless its error log goes elsewhere or leaves out info).
            let banner = format!("serving on http://127.0.0.1:{port}/");
            let config_logs_elsewhere = port_args
                .windows(2)
                .any(|pair| pair[0] == "--config" && read_text(Path::new(&pair[1])).contains("ErrorLog"));
            let own_log = !port_args.iter().any(|a| a == "--error-log" || a == "--log-level") && !config_logs_elsewhere;
            let ready = || !own_log || read_text(&logs.path().join("stderr")).contains(&banner);
            match wait_until_listening(&mut child, port, ready) {
                Ok(()) => return Server { child, port, exit: None, logs },
                Err(failure) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let stderr = read_text(&logs.path().join("stderr"));
                    last_args = port_args;
                    let retry = stderr.contains("cannot listen on");
                    last_failure = format!(
                        "{failure}\n--- stderr ---\n{stderr}\n--- stdout ---\n{}",
                        read_text(&logs.path().join("stdout"))
                    );
                    if !retry {
                        break;
                    }
                }
            }
        }
        panic!("wsgi-standalone start-server {last_args:?} did not start: {last_failure}");
    }

    fn kill(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            self.exit = self.child.wait().ok();
        }
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port`.
    pub fn address(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server wrote to standard error so far.
    pub fn stderr(&self) -> String {
        read_text(&self.logs.path().join("stderr"))
    }

    /// Everything the server wrote to standard output so far.
    pub fn stdout(&self) -> String {
        read_text(&self.logs.path().join("stdout"))
    }

    /// Sends SIGTERM to the server (with the `kill` command).
    pub fn terminate(&self) {
        let status =
            Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().expect("the kill command runs");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// Waits at most `limit` for the server to exit; its status, or `None`
    /// if it is still running.
    pub fn wait_exit(&mut self, limit: std::time::Duration) -> Option<std::process::ExitStatus> {
        if self.exit.is_some() {
            return self.exit;
        }
        let child = &mut self.child;
        self.exit = wait_for(limit, || child.try_wait().expect("poll the server process"));
        self.exit
    }

    /// A new connection to the server.
    pub fn connect(&self) -> HttpConnection {
        HttpConnection::open(self.address())
    }

    /// `GET path` on a new connection (with `Connection: close`).
    pub fn get(&self, path: &str) -> HttpResponse {
        self.request("GET", path, &[], b"")
    }

    /// One request on a new connection (with `Host` and `Connection: close`
    /// added, and `Content-Length` when `body` is not empty); panics if no
    /// complete response arrives.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
        http_request(self.address(), method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}; stderr:\n{}", self.stderr()))
    }
}

/// One request to `address` on a new connection, with `Host` and
/// `Connection: close` added, and `Content-Length` when `body` is not
/// empty; `Err` if no complete response arrives.
pub fn http_request(
    address: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<HttpResponse, String> {
    let mut connection = HttpConnection::try_open(address).map_err(|e| format!("connect to {address}: {e}"))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: 127.0.0.1:{}\r\n", address.port()));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    // A body given with a Transfer-Encoding is sent as it is (see
    // [`chunked`]).
    if !body.is_empty() && !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("transfer-encoding")) {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    connection.send(head.as_bytes()).map_err(|e| format!("send request head: {e}"))?;
    connection.send(body).map_err(|e| format!("send request body: {e}"))?;
    connection.read_response(method == "HEAD").map_err(|e| format!("no complete response ({e})"))
}

/// `pieces` in the chunked transfer coding, one chunk each, for a request
/// sent with `Transfer-Encoding: chunked`.
pub fn chunked(pieces: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in pieces.iter().filter(|piece| !piece.is_empty()) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// A file's contents as (lossy) UTF-8; empty if it cannot be read.
pub(crate) fn read_text(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

/// Waits (at most [`SERVER_START_LIMIT`]) until 127.0.0.1:`port` accepts
/// connections and `ready` holds; `Err` if the process exits first or the
/// time runs out.
fn wait_until_listening(child: &mut std::process::Child, port: u16, ready: impl Fn() -> bool) -> Result<(), String> {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = std::time::Instant::now() + SERVER_START_LIMIT;
    loop {
        if let Some(status) = child.try_wait().expect("poll the server process") {
            return Err(format!("the server exited with {status}"));
        }
        if ready() && std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_millis(500)).is_ok() {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(format!("the server did not listen on {address} within {SERVER_START_LIMIT:?}"));
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The status line and header fields of an HTTP response.
#[derive(Debug, Clone)]
pub struct HttpHead {
    /// The protocol of the status line (`HTTP/1.1`).
    pub version: String,
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// Header fields in the order received.
    pub headers: Vec<(String, String)>,
}

impl HttpHead {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (case-insensitive).
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }

    /// Whether the body is sent with `Transfer-Encoding: chunked`.
    pub fn is_chunked(&self) -> bool {
        self.header_all("transfer-encoding")
            .iter()
            .any(|v| v.split(',').any(|coding| coding.trim().eq_ignore_ascii_case("chunked")))
    }
}

/// A complete HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status line and headers.
    pub head: HttpHead,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.head.status
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads from a stream and keeps a copy of every byte read.
struct Tap {
    stream: std::net::TcpStream,
    seen: Vec<u8>,
}

impl std::io::Read for Tap {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.stream.read(buf)?;
        if self.seen.len() < 1 << 20 {
            self.seen.extend_from_slice(&buf[..n]);
        }
        Ok(n)
    }
}

/// How long a client read or write may block before the test gives up.
const IO_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// A minimal HTTP/1.1 client connection over a raw [`std::net::TcpStream`],
/// with read and write timeouts so that a test never hangs.
pub struct HttpConnection {
    reader: std::io::BufReader<Tap>,
}

fn protocol_error(message: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.into())
}

impl HttpConnection {
    /// Connects to `address` (at most 5 s).
    pub fn open(address: std::net::SocketAddr) -> HttpConnection {
        HttpConnection::try_open(address).unwrap_or_else(|e| panic!("connect to {address}: {e}"))
    }

    /// Connects to `address`; `Err` if it cannot.
    pub fn try_open(address: std::net::SocketAddr) -> std::io::Result<HttpConnection> {
        let stream = std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_secs(5))?;
        stream.set_read_timeout(Some(IO_LIMIT))?;
        stream.set_write_timeout(Some(IO_LIMIT))?;
        let _ = stream.set_nodelay(true);
        Ok(HttpConnection { reader: std::io::BufReader::new(Tap { stream, seen: Vec::new() }) })
    }

    /// The underlying stream (for writing, timeouts, shutdown).
    pub fn stream(&mut self) -> &mut std::net::TcpStream {
        &mut self.reader.get_mut().stream
    }

    /// Writes all of `bytes`.
    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        self.stream().write_all(bytes)
    }

    /// Every byte read from the connection so far (the first MiB), raw.
    pub fn raw_received(&self) -> &[u8] {
        &self.reader.get_ref().seen
    }

    fn read_line(&mut self) -> std::io::Result<String> {
        use std::io::{BufRead, Read};
        let mut line = Vec::new();
        let n = std::io::Read::by_ref(&mut self.reader).take(256 * 1024).read_until(b'\n', &mut line)?;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
        }
        if !line.ends_with(b"\n") {
            return Err(protocol_error("line without an end"));
        }
        while line.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
            line.pop();
        }
        String::from_utf8(line).map_err(|_| protocol_error("line is not UTF-8"))
    }

    /// Reads a status line and header fields (skipping 1xx interim responses).
    pub fn read_head(&mut self) -> std::io::Result<HttpHead> {
        loop {
            let status_line = self.read_line()?;
            let mut parts = status_line.splitn(3, ' ');
            let version = parts.next().unwrap_or_default().to_string();
            if !version.starts_with("HTTP/") {
                return Err(protocol_error(format!("bad status line {status_line:?}")));
            }
            let status = parts
                .next()
                .and_then(|s| s.parse::<u16>().ok())
                .ok_or_else(|| protocol_error(format!("bad status line {status_line:?}")))?;
            let reason = parts.next().unwrap_or_default().to_string();
            let mut headers = Vec::new();
            loop {
                let line = self.read_line()?;
                if line.is_empty() {
                    break;
                }
                let (name, value) =
                    line.split_once(':').ok_or_else(|| protocol_error(format!("bad header line {line:?}")))?;
                headers.push((name.trim().to_string(), value.trim().to_string()));
            }
            if (100..200).contains(&status) && status != 101 {
                continue;
            }
            return Ok(HttpHead { version, status, reason, headers });
        }
    }

    /// Reads the next chunk of a chunked body: `None` after the last
    /// (zero-size) chunk and its trailer fields.
    pub fn read_chunk(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        use std::io::Read;
        let line = self.read_line()?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| protocol_error(format!("bad chunk size line {line:?}")))?;
        if size == 0 {
            while !self.read_line()?.is_empty() {}
            return Ok(None);
        }
        let mut chunk = vec![0; size];
        self.reader.read_exact(&mut chunk)?;
        if !self.read_line()?.is_empty() {
            return Err(protocol_error("chunk data longer than its size"));
        }
        Ok(Some(chunk))
    }

    /// Reads up to `limit` bytes of a body as they come (raw: chunk framing
    /// included); fewer at the end of the stream.
    pub fn read_some(&mut self, limit: usize) -> std::io::Result<Vec<u8>> {
        use std::io::Read;
        let mut buf = vec![0; limit];
        let n = self.reader.read(&mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Reads the body that follows `head`: de-chunked, by Content-Length, or
    /// to the end of the connection. `head_request`: the request was HEAD.
    pub fn read_body(&mut self, head: &HttpHead, head_request: bool) -> std::io::Result<Vec<u8>> {
        use std::io::Read;
        if head_request || head.status == 204 || head.status == 304 {
            return Ok(Vec::new());
        }
        if head.is_chunked() {
            let mut body = Vec::new();
            while let Some(chunk) = self.read_chunk()? {
                body.extend_from_slice(&chunk);
            }
            return Ok(body);
        }
        if let Some(length) = head.header("content-length") {
            let length: usize = length.parse().map_err(|_| protocol_error(format!("bad Content-Length {length:?}")))?;
            let mut body = vec![0; length];
            self.reader.read_exact(&mut body)?;
            return Ok(body);
        }
        let mut body = Vec::new();
        self.reader.read_to_end(&mut body)?;
        Ok(body)
    }

    /// Reads one complete response.
    pub fn read_response(&mut self, head_request: bool) -> std::io::Result<HttpResponse> {
        let head = self.read_head()?;
        let body = self.read_body(&head, head_request)?;
        Ok(HttpResponse { head, body })
    }
}

/// The pids of a process's direct children.
pub fn child_pids(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The value of `key` in the flat JSON object `text` (as `json.dumps`
/// writes it), without quotes; `None` if absent.
pub fn json_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let needle = format!("\"{key}\": ");
    let start = text.find(&needle)? + needle.len();
    let rest = &text[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim().trim_matches('"'))
}

/// The value of `key` in `text` (see [`json_field`]); panics, showing
/// `text`, when it is missing.
pub fn field<'a>(text: &'a str, key: &str) -> &'a str {
    json_field(text, key).unwrap_or_else(|| panic!("no {key} in {text}"))
}

/// mod_wsgi's documented table of daemon-mode flags: `WSGIDaemonProcess`
/// options, then `wsgi.multithread`, `wsgi.multiprocess`, `wsgi.run_once`.
pub const DAEMON_FLAGS: [(&str, bool, bool, bool); 5] = [
    ("threads=25", true, false, false),
    ("processes=1 threads=25", true, true, false),
    ("processes=2 threads=25", true, true, false),
    ("processes=5 threads=1", false, true, false),
    ("threads=1 maximum-requests=1", false, false, true),
];

/// Checks [`PROCESS_APP`]'s description `text` against a row of
/// [`DAEMON_FLAGS`].
pub fn assert_daemon_flags(text: &str, (options, multithread, multiprocess, run_once): (&str, bool, bool, bool)) {
    assert_eq!(field(text, "multithread"), multithread.to_string(), "{options}: {text}");
    assert_eq!(field(text, "multiprocess"), multiprocess.to_string(), "{options}: {text}");
    assert_eq!(field(text, "run_once"), run_once.to_string(), "{options}: {text}");
}

/// A WSGI application for daemon-mode tests: `/sleep?S` sleeps S seconds,
/// `/echo` returns the body, anything else describes the process serving
/// it as JSON (pid, uid, process group, the three `wsgi.*` flags).
pub const PROCESS_APP: &str = r#"
import os, json, time
def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/sleep':
        time.sleep(float(environ['QUERY_STRING'] or '1'))
    if path == '/echo':
        data = environ['wsgi.input'].read()
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return [data]
    body = json.dumps({'pid': os.getpid(), 'uid': os.getuid(), 'group': environ['mod_wsgi.process_group'],
                       'multithread': environ['wsgi.multithread'], 'multiprocess': environ['wsgi.multiprocess'],
                       'run_once': environ['wsgi.run_once']}, sort_keys=True)
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [body.encode()]
"#;

/// Concurrent clients sending `GET path` to a server in a loop, each on a
/// new connection, until [`Load::finish`].
pub struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    clients: Vec<std::thread::JoinHandle<LoadReport>>,
}

/// What the clients of a [`Load`] saw.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// The bodies of the 200 responses.
    pub bodies: Vec<String>,
    /// Everything else: `status N` or the error of a request.
    pub failures: Vec<String>,
}

impl Load {
    /// Starts `clients` clients.
    pub fn start(address: std::net::SocketAddr, path: &str, clients: usize) -> Load {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let clients = (0..clients)
            .map(|_| {
                let (stop, path) = (stop.clone(), path.to_string());
                std::thread::spawn(move || {
                    let mut report = LoadReport::default();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        match http_request(address, "GET", &path, &[], b"") {
                            Ok(r) if r.status() == 200 => report.bodies.push(r.text()),
                            Ok(r) => report.failures.push(format!("status {}", r.status())),
                            Err(e) => report.failures.push(e),
                        }
                    }
                    report
                })
            })
            .collect();
        Load { stop, clients }
    }

    /// Stops the clients and merges what they saw.
    pub fn finish(self) -> LoadReport {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut all = LoadReport::default();
        for client in self.clients {
            let report = client.join().expect("a load client panicked");
            all.bodies.extend(report.bodies);
            all.failures.extend(report.failures);
        }
        all
    }
}

/// Whether the Python the workspace is built against (`PYO3_PYTHON`:
/// Debian's `/usr/bin/python3`, 3.11 by default and 3.13 in the Debian 13
/// root of `cargo xtask test --python 3.13`) is at least `major.minor`.
pub fn built_python_at_least(major: u32, minor: u32) -> bool {
    let out = Command::new("/usr/bin/python3")
        .args(["-c", &format!("import sys; print(sys.version_info >= ({major}, {minor}))")])
        .output()
        .expect("/usr/bin/python3 runs");
    String::from_utf8_lossy(&out.stdout).trim() == "True"
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_missing_system_file_fails_under_ci_and_skips_elsewhere() {
        assert!(super::system_has(&["/"]));
        let missing = std::panic::catch_unwind(|| super::system_has(&["/no/such/file"]));
        if std::env::var_os("CI").is_some() {
            assert!(missing.is_err(), "under CI a missing file must fail the test");
        } else {
            assert_eq!(missing.ok(), Some(false));
        }
    }
}

#[cfg(test)]
mod port_tests {
    #[test]
    fn a_port_held_by_a_socket_is_seen_and_not_handed_out() {
        let port = super::free_port();
        assert!(!super::kernel_holds_port(port));
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("the free port binds");
        assert!(super::kernel_holds_port(port));
        assert_ne!(super::free_port(), port);
        drop(listener);
    }
}
