//! Where the server listens: TCP sockets it binds, a UNIX domain socket
//! (`--uds`), or the sockets systemd passes (socket activation), and the
//! readiness messages systemd's `Type=notify` waits for.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::{Path, PathBuf};

/// A listening socket.
pub enum ListenSocket {
    /// TCP, IPv4 or IPv6.
    Tcp(TcpListener),
    /// A UNIX domain stream socket.
    Unix(UnixListener),
}

impl ListenSocket {
    /// An inherited listening socket, by its address family.
    pub fn from_fd(fd: OwnedFd) -> Result<ListenSocket, String> {
        let raw = fd.as_raw_fd();
        if wsgi_daemon::sys::socket_domain(raw).is_some() && !wsgi_daemon::sys::is_listening_stream(raw) {
            return Err(format!(
                "descriptor {raw} is not a listening stream socket (a socket unit needs ListenStream= and Accept=no)"
            ));
        }
        match wsgi_daemon::sys::socket_domain(raw) {
            Some(libc::AF_INET | libc::AF_INET6) => Ok(ListenSocket::Tcp(TcpListener::from(fd))),
            Some(libc::AF_UNIX) => Ok(ListenSocket::Unix(UnixListener::from(fd))),
            Some(other) => Err(format!("descriptor {raw} is a socket of family {other}, not TCP or UNIX")),
            None => Err(format!("descriptor {raw} is not a socket")),
        }
    }

    /// The socket's TCP address (`None` for a UNIX socket).
    pub fn tcp_address(&self) -> Option<SocketAddr> {
        match self {
            ListenSocket::Tcp(socket) => socket.local_addr().ok(),
            ListenSocket::Unix(_) => None,
        }
    }

    /// How the log names it: `http://ADDRESS/` or `unix:PATH`.
    pub fn describe(&self, scheme: &str) -> String {
        match self {
            ListenSocket::Tcp(socket) => {
                socket.local_addr().map_or_else(|_| "?".into(), |address| format!("{scheme}://{address}/"))
            }
            ListenSocket::Unix(socket) => {
                match socket.local_addr().ok().and_then(|a| a.as_pathname().map(Path::to_path_buf)) {
                    Some(path) => format!("unix:{}", path.display()),
                    None => "unix:(unnamed)".into(),
                }
            }
        }
    }
}

impl AsRawFd for ListenSocket {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            ListenSocket::Tcp(socket) => socket.as_raw_fd(),
            ListenSocket::Unix(socket) => socket.as_raw_fd(),
        }
    }
}

/// `--uds PATH`: a UNIX socket at PATH (a stale socket file there, one
/// nobody listens on, is replaced), with `--uds-permissions` as its mode,
/// given to the serving user (`owner`) when the server switches user; the
/// file is removed when the returned guard goes.
pub fn bind_unix(
    path: &Path,
    mode: Option<u32>,
    owner: Option<(u32, u32)>,
    backlog: u32,
) -> Result<(ListenSocket, SocketFile), String> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(existing) = std::fs::symlink_metadata(path) {
        if !existing.file_type().is_socket() {
            return Err(format!("--uds {}: exists and is not a socket", path.display()));
        }
        // Only a socket that refuses connections is stale: one that
        // answers, or that this user may not reach, is another server's.
        match std::os::unix::net::UnixStream::connect(path) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                std::fs::remove_file(path).map_err(|e| format!("--uds {}: {e}", path.display()))?;
            }
            Ok(_) => return Err(format!("--uds {}: another server listens there", path.display())),
            Err(e) => return Err(format!("--uds {}: a socket that is not stale: {e}", path.display())),
        }
    }
    let socket = UnixListener::bind(path).map_err(|e| format!("cannot listen on unix:{}: {e}", path.display()))?;
    let file = SocketFile(path.to_path_buf());
    if let Some((uid, gid)) = owner {
        wsgi_daemon::sys::chown(path, uid, gid)
            .map_err(|e| format!("--uds {}: cannot give it to the serving user: {e}", path.display()))?;
    }
    if let Some(mode) = mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("--uds-permissions: {}: {e}", path.display()))?;
    }
    wsgi_daemon::sys::set_listen_backlog(socket.as_raw_fd(), backlog)
        .map_err(|e| format!("cannot set the backlog of unix:{}: {e}", path.display()))?;
    Ok((ListenSocket::Unix(socket), file))
}

/// A UNIX socket's file, removed on drop.
pub struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const FIRST_ACTIVATED_FD: RawFd = 3;

/// The sockets systemd passed, when `LISTEN_PID` names this process and
/// `LISTEN_FDS` counts them (sd_listen_fds(3)); the variables are taken,
/// so that the processes this one starts do not take the sockets again.
pub fn activated() -> Result<Option<Vec<ListenSocket>>, String> {
    let (pid, count) = (std::env::var("LISTEN_PID"), std::env::var("LISTEN_FDS"));
    for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(name);
    }
    let (Ok(pid), Ok(count)) = (pid, count) else { return Ok(None) };
    if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(None);
    }
    let count: RawFd = count.trim().parse().map_err(|_| format!("LISTEN_FDS: '{count}' is not a number"))?;
    if count < 1 {
        return Ok(None);
    }
    let sockets = (FIRST_ACTIVATED_FD..FIRST_ACTIVATED_FD + count)
        .map(|fd| {
            let owned =
                wsgi_daemon::sys::inherited_fd(fd).ok_or_else(|| format!("LISTEN_FDS: descriptor {fd} is not open"))?;
            ListenSocket::from_fd(owned)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(sockets))
}

/// systemd's readiness protocol (sd_notify(3)): the socket of
/// `NOTIFY_SOCKET`, taken from the environment so that only the top
/// process speaks.
pub struct Notifier {
    socket: Option<(UnixDatagram, std::os::unix::net::SocketAddr)>,
}

impl Notifier {
    /// The notifier of `NOTIFY_SOCKET` (a path, or `@NAME` for an
    /// abstract socket); silent when it is not set.
    pub fn from_env() -> Notifier {
        let target = std::env::var_os("NOTIFY_SOCKET");
        std::env::remove_var("NOTIFY_SOCKET");
        let socket = target.and_then(|target| {
            let address = match target.as_encoded_bytes().strip_prefix(b"@") {
                Some(name) => {
                    use std::os::linux::net::SocketAddrExt;
                    std::os::unix::net::SocketAddr::from_abstract_name(name).ok()?
                }
                None => std::os::unix::net::SocketAddr::from_pathname(&target).ok()?,
            };
            Some((UnixDatagram::unbound().ok()?, address))
        });
        Notifier { socket }
    }

    /// Sends `state` (`READY=1`, `STOPPING=1`, ...), if systemd listens.
    pub fn notify(&self, state: &str) {
        if let Some((socket, address)) = &self.socket {
            let _ = socket.send_to_addr(state.as_bytes(), address);
        }
    }
}
