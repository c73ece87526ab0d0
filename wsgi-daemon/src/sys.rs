//! The operating-system calls of daemon mode (the crate's only `unsafe`):
//! processes, signals, credentials, limits and polling.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::Duration;

fn check(result: libc::c_int) -> io::Result<libc::c_int> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

/// A pipe with both ends close-on-exec: (read, write).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sets or clears `O_NONBLOCK`.
pub fn set_nonblocking(fd: RawFd, nonblocking: bool) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor the caller owns; no pointers involved.
    unsafe {
        let flags = check(libc::fcntl(fd, libc::F_GETFL))?;
        let flags = if nonblocking { flags | libc::O_NONBLOCK } else { flags & !libc::O_NONBLOCK };
        check(libc::fcntl(fd, libc::F_SETFL, flags))?;
    }
    Ok(())
}

/// The result of [`fork`].
pub enum Forked {
    /// In the parent: the child's pid.
    Parent(i32),
    /// In the child.
    Child,
}

/// `fork()`.
///
/// # Safety
/// The calling process must be single-threaded (or the child must only
/// call async-signal-safe functions before `exec`): the child gets a copy
/// of the memory with only the calling thread running.
pub unsafe fn fork() -> io::Result<Forked> {
    // SAFETY: the caller upholds the single-thread requirement.
    match check(unsafe { libc::fork() })? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// Ends the process at once, without running destructors or atexit
/// handlers (for a forked child whose copy of the parent's state must not
/// be torn down).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildExit {
    /// Exited with a status.
    Code(i32),
    /// Killed by a signal.
    Signal(i32),
}

/// Reaps child `pid` if it has exited, without waiting: how it ended, or
/// `None` while it runs. Only the caller's own children are reaped, so a
/// process that has others (the standalone server's daemon managers)
/// leaves them to their owners.
pub fn reap(pid: i32) -> Option<ChildExit> {
    let mut status: libc::c_int = 0;
    // SAFETY: `status` is a valid out-pointer; WNOHANG never blocks.
    let reaped = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    if reaped != pid {
        return None;
    }
    Some(if libc::WIFSIGNALED(status) {
        ChildExit::Signal(libc::WTERMSIG(status))
    } else {
        ChildExit::Code(libc::WEXITSTATUS(status))
    })
}

/// How many threads this process has (`None` if `/proc` cannot tell).
pub fn thread_count() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/task").ok()?.count())
}

/// Closes a descriptor this process no longer needs but does not own as
/// an `OwnedFd` (a forked child's copy of its parent's pipe end).
pub fn close(fd: RawFd) {
    // SAFETY: close takes a plain integer; the caller never uses `fd` again.
    unsafe { libc::close(fd) };
}

/// Takes over descriptor `fd`, passed to this process by its parent for
/// its use (named in an environment variable), and makes it close-on-exec
/// so that it goes no further. `None` when `fd` is not open.
pub fn inherited_fd(fd: RawFd) -> Option<OwnedFd> {
    // SAFETY: fcntl on an integer; F_GETFD fails on a closed descriptor.
    if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: as above.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    // SAFETY: the descriptor is open, and the parent passed it for this
    // process's sole use: nothing else here owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Spawns `command` with descriptors `inherit` kept open across `exec`,
/// and set to die with SIGTERM when the calling process dies; fails if the
/// caller died before the child could say so.
pub fn spawn_inheriting(command: &mut std::process::Command, inherit: Vec<RawFd>) -> io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    // SAFETY: getpid takes nothing.
    let parent = unsafe { libc::getpid() };
    // SAFETY: between fork and exec only async-signal-safe calls (fcntl,
    // prctl, getppid) are made, on descriptors open in the parent, and
    // nothing is allocated (the errors are OS error numbers).
    unsafe {
        command.pre_exec(move || {
            for fd in &inherit {
                if libc::fcntl(*fd, libc::F_SETFD, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            // The child must not outlive its parent (killed with SIGKILL,
            // say): it would hold what it inherited with no one to manage it.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                // The parent is gone (an error that allocates nothing).
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    command.spawn()
}

/// Sends `signal` to `pid` (errors, e.g. a process already gone, ignored).
pub fn kill(pid: i32, signal: i32) {
    if pid > 0 {
        // SAFETY: kill takes plain integers.
        unsafe { libc::kill(pid, signal) };
    }
}

/// Whether a process `pid` exists (one of another user's included).
pub fn process_exists(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks that the process exists.
    let status = unsafe { libc::kill(pid, 0) };
    status == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Asks the kernel to send `signal` to this process when its parent dies.
pub fn die_with_parent(signal: i32) {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) };
}

/// Puts the process in a new process group of its own.
pub fn new_process_group() {
    // SAFETY: setpgid with integer arguments.
    unsafe { libc::setpgid(0, 0) };
}

/// Sets the process name shown by `ps -o comm` and `top`: its first 15
/// bytes, cut at a character boundary (a name with a NUL byte is left
/// unset).
pub fn set_process_name(name: &str) {
    let mut end = name.len().min(15);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let Ok(name) = CString::new(&name[..end]) else {
        return;
    };
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0) };
}

/// The descriptor that [`on_signals`] writes signal numbers to.
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn forward_signal(signal: libc::c_int) {
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = signal as u8;
        // SAFETY: write(2) is async-signal-safe; the byte lives on this stack.
        unsafe { libc::write(fd, (&raw const byte).cast(), 1) };
    }
}

/// How many times each signal arrived, for [`count_signals`].
static SIGNALS_SEEN: [AtomicU32; 65] = [const { AtomicU32::new(0) }; 65];

extern "C" fn count_signal(signal: libc::c_int) {
    if let Some(seen) = usize::try_from(signal).ok().and_then(|n| SIGNALS_SEEN.get(n)) {
        seen.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts `signals` instead of taking their default action; a thread
/// looks at [`signals_seen`] when it can. Independent of [`on_signals`].
pub fn count_signals(signals: &[i32]) -> io::Result<()> {
    for &signal in signals {
        // SAFETY: installing a handler that only increments an atomic;
        // the sigaction struct is fully initialised.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = count_signal as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            check(libc::sigaction(signal, &action, std::ptr::null_mut()))?;
        }
    }
    Ok(())
}

/// How many times `signal` arrived since [`count_signals`] was called.
pub fn signals_seen(signal: i32) -> u32 {
    usize::try_from(signal).ok().and_then(|n| SIGNALS_SEEN.get(n)).map_or(0, |seen| seen.load(Ordering::Relaxed))
}

/// Makes descriptor `target` (such as 2, standard error) a copy of `fd`.
pub fn redirect_fd(fd: RawFd, target: RawFd) -> io::Result<()> {
    // SAFETY: dup2 on descriptors the caller owns; `target` is replaced
    // atomically.
    check(unsafe { libc::dup2(fd, target) }).map(|_| ())
}

/// A new descriptor for what `fd` refers to (close-on-exec).
pub fn duplicate_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC makes a new descriptor owned by nobody else.
    let new = check(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) })?;
    // SAFETY: `new` was just created.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// The host name of `ip` by Apache's double-reverse lookup: the name its
/// reverse lookup gives, if that name's forward lookup gives `ip` back.
pub fn double_reverse_lookup(ip: std::net::IpAddr) -> Option<String> {
    use std::net::ToSocketAddrs;
    let name = reverse_lookup(ip)?;
    let forward = (name.as_str(), 0).to_socket_addrs().ok()?;
    forward.into_iter().any(|address| address.ip() == ip).then_some(name)
}

fn reverse_lookup(ip: std::net::IpAddr) -> Option<String> {
    let socket = sockaddr_of(ip);
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: `socket` is a valid sockaddr of the given length; `host` is
    // a writable buffer of its length; no service name is asked for.
    let status = unsafe {
        libc::getnameinfo(
            (&raw const socket.0).cast(),
            socket.1,
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if status != 0 {
        return None;
    }
    // SAFETY: getnameinfo wrote a NUL-terminated name into `host`.
    let name = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

/// `ip` as a `sockaddr_storage` and its length.
fn sockaddr_of(ip: std::net::IpAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is valid.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match ip {
        std::net::IpAddr::V4(v4) => {
            let address = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(v4.octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is large and aligned enough for any
            // sockaddr.
            unsafe { std::ptr::write((&raw mut storage).cast(), address) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        std::net::IpAddr::V6(v6) => {
            let address = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr { s6_addr: v6.octets() },
                sin6_scope_id: 0,
            };
            // SAFETY: as above.
            unsafe { std::ptr::write((&raw mut storage).cast(), address) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// The calling thread's `pthread_self()`: the id Python knows it by
/// (`threading.get_ident()`).
pub fn current_thread() -> u64 {
    // SAFETY: pthread_self has no preconditions.
    let id = unsafe { libc::pthread_self() };
    id as u64
}

/// One byte from `fd` if one is there (`fd` is non-blocking, or known
/// readable).
pub fn read_byte(fd: RawFd) -> Option<u8> {
    let mut byte = [0u8; 1];
    // SAFETY: reads at most one byte into the local buffer.
    let n = unsafe { libc::read(fd, byte.as_mut_ptr().cast(), 1) };
    (n == 1).then_some(byte[0])
}

/// Routes `signals` to a pipe (the self-pipe pattern): returns its read
/// end, on which each delivered signal appears as one byte. Call once per
/// process.
pub fn on_signals(signals: &[i32]) -> io::Result<OwnedFd> {
    let (read, write) = pipe()?;
    set_nonblocking(write.as_raw_fd(), true)?;
    set_nonblocking(read.as_raw_fd(), true)?;
    SIGNAL_PIPE.store(write.as_raw_fd(), Ordering::Relaxed);
    std::mem::forget(write);
    for &signal in signals {
        // SAFETY: installing a handler that only calls write(2); the
        // sigaction struct is fully initialised.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = forward_signal as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            check(libc::sigaction(signal, &action, std::ptr::null_mut()))?;
        }
    }
    Ok(read)
}

/// Restores the default action of `signals` and unblocks them (in a forked
/// child, before it sets up its own handling).
pub fn default_signals(signals: &[i32]) {
    for &signal in signals {
        // SAFETY: resetting a disposition and unblocking a signal take
        // plain integers and an initialised set.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, signal);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
    }
    SIGNAL_PIPE.store(-1, Ordering::Relaxed);
}

/// Waits until one of `fds` is readable or `timeout` passes; returns the
/// readiness of each (true: readable or closed).
pub fn poll_readable(fds: &[RawFd], timeout: Option<Duration>) -> io::Result<Vec<bool>> {
    let mut entries: Vec<libc::pollfd> =
        fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    let timeout = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as libc::c_int);
    // SAFETY: `entries` is a valid array of `len` pollfd structs.
    let result = unsafe { libc::poll(entries.as_mut_ptr(), entries.len() as libc::nfds_t, timeout) };
    if result < 0 {
        let error = io::Error::last_os_error();
        if error.kind() == io::ErrorKind::Interrupted {
            return Ok(vec![false; fds.len()]);
        }
        return Err(error);
    }
    Ok(entries.iter().map(|e| e.revents != 0).collect())
}

/// An epoll instance: descriptors watched for readability (level
/// triggered, or once until rearmed), each reported with the token it was
/// added with.
///
/// Unlike `poll`, the set lives in the kernel: adding or removing one
/// descriptor costs one call, whatever the set's size, and another thread's
/// addition wakes a waiter at once.
#[derive(Debug)]
pub struct Epoll(OwnedFd);

impl Epoll {
    /// A new, empty instance (closed on exec).
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 has no memory arguments.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor owned by nothing else.
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Watches `fd` for readability (or hang-up), reported as `token`
    /// every time a wait finds it ready (level triggered).
    pub fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_ADD, fd, libc::EPOLLIN as u32, token)
    }

    /// Watches `fd` for readability (or hang-up) once: the first wait that
    /// finds it ready reports `token`, to that one waiter only, and `fd`
    /// is then ignored until [`Epoll::rearm`].
    pub fn add_once(&self, fd: RawFd, token: u64) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_ADD, fd, (libc::EPOLLIN | libc::EPOLLONESHOT) as u32, token)
    }

    /// Watches `fd`, added with [`Epoll::add_once`], once more.
    pub fn rearm(&self, fd: RawFd, token: u64) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_MOD, fd, (libc::EPOLLIN | libc::EPOLLONESHOT) as u32, token)
    }

    fn control(&self, op: libc::c_int, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event { events, u64: token };
        // SAFETY: `event` is a valid epoll_event for the duration of the call.
        let result = unsafe { libc::epoll_ctl(self.0.as_raw_fd(), op, fd, &raw mut event) };
        if result < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Stops watching `fd`.
    pub fn delete(&self, fd: RawFd) -> io::Result<()> {
        // The event is ignored for a removal.
        self.control(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Waits until a watched descriptor is ready or `timeout` passes, and
    /// puts the tokens of the ready ones (at most 64) in `ready`. An
    /// interrupted wait reports none.
    pub fn wait(&self, ready: &mut Vec<u64>, timeout: Option<Duration>) -> io::Result<()> {
        const MAX: usize = 64;
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; MAX];
        let timeout = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as libc::c_int);
        // SAFETY: `events` has room for MAX entries.
        let n = unsafe { libc::epoll_wait(self.0.as_raw_fd(), events.as_mut_ptr(), MAX as libc::c_int, timeout) };
        ready.clear();
        if n < 0 {
            let error = io::Error::last_os_error();
            return if error.kind() == io::ErrorKind::Interrupted { Ok(()) } else { Err(error) };
        }
        ready.extend(events[..n as usize].iter().map(|e| e.u64));
        Ok(())
    }
}

/// Whether a connected socket has been closed by its peer (or has data
/// waiting, which for an idle connection also means it cannot be reused).
pub fn peer_closed_or_data(fd: RawFd) -> bool {
    let mut byte = 0u8;
    // SAFETY: recv into a one-byte buffer without blocking or consuming.
    let n = unsafe { libc::recv(fd, (&raw mut byte).cast(), 1, libc::MSG_PEEK | libc::MSG_DONTWAIT) };
    if n == 0 {
        return true;
    }
    if n > 0 {
        return true;
    }
    io::Error::last_os_error().kind() != io::ErrorKind::WouldBlock
}

/// A user's ids and home, from the password database.
#[derive(Debug, Clone)]
pub struct UserInfo {
    /// The user id.
    pub uid: u32,
    /// The primary group id.
    pub gid: u32,
    /// The login name.
    pub name: String,
    /// The home directory.
    pub home: std::path::PathBuf,
}

/// Looks up a user by name or `#uid`.
pub fn lookup_user(name: &str) -> Option<UserInfo> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: a zeroed passwd is a valid out-struct.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    let status = if let Some(uid) = name.strip_prefix('#').and_then(|n| n.parse::<u32>().ok()) {
        // SAFETY: all pointers are valid for the call; getpwuid_r fills
        // `pwd` with strings inside `buf`.
        unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) }
    } else {
        let c_name = CString::new(name).ok()?;
        // SAFETY: as above, by name.
        unsafe { libc::getpwnam_r(c_name.as_ptr(), &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) }
    };
    if status != 0 || result.is_null() {
        return None;
    }
    // SAFETY: pw_name points into `buf`, NUL-terminated.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) }.to_string_lossy().into_owned();
    // SAFETY: pw_dir points into `buf`, NUL-terminated.
    let home = unsafe { std::ffi::CStr::from_ptr(pwd.pw_dir) }.to_string_lossy().into_owned();
    Some(UserInfo { uid: pwd.pw_uid, gid: pwd.pw_gid, name, home: home.into() })
}

/// Looks up a group id by name or `#gid`.
pub fn lookup_group(name: &str) -> Option<u32> {
    if let Some(gid) = name.strip_prefix('#').and_then(|n| n.parse::<u32>().ok()) {
        return Some(gid);
    }
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: a zeroed group is a valid out-struct.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    let c_name = CString::new(name).ok()?;
    // SAFETY: all pointers are valid for the call.
    let status = unsafe { libc::getgrnam_r(c_name.as_ptr(), &mut grp, buf.as_mut_ptr(), buf.len(), &mut result) };
    if status != 0 || result.is_null() {
        return None;
    }
    Some(grp.gr_gid)
}

/// Whether the process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Switches to `user`'s uid, with group `gid` and the supplementary groups
/// `groups` (the user's own groups plus these).
pub fn switch_user(user: &UserInfo, gid: u32, groups: &[u32]) -> io::Result<()> {
    let name = CString::new(user.name.clone()).map_err(|_| io::Error::other("user name with NUL"))?;
    // SAFETY: plain credential calls with valid arguments; the order (groups,
    // then gid, then uid) keeps the privilege to make each change.
    unsafe {
        check(libc::initgroups(name.as_ptr(), gid))?;
        if !groups.is_empty() {
            let mut all: Vec<libc::gid_t> = vec![0; 256];
            let count = check(libc::getgroups(all.len() as libc::c_int, all.as_mut_ptr()))? as usize;
            all.truncate(count);
            all.extend(groups.iter().copied());
            check(libc::setgroups(all.len(), all.as_ptr()))?;
        }
        check(libc::setgid(gid))?;
        check(libc::setuid(user.uid))?;
    }
    Ok(())
}

/// Sets the file creation mask.
pub fn set_umask(mask: u32) {
    // SAFETY: umask takes a plain integer.
    unsafe { libc::umask(mask as libc::mode_t) };
}

/// Sets the process's scheduling priority (nice value).
pub fn set_priority(priority: i32) -> io::Result<()> {
    // SAFETY: setpriority takes plain integers.
    check(unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, priority) })?;
    Ok(())
}

/// Resource limits a daemon process may have.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// CPU seconds.
    CpuSeconds,
    /// Data segment bytes (memory-limit).
    Data,
    /// Address space bytes (virtual-memory-limit).
    AddressSpace,
}

/// Sets a resource limit: `soft`, and `hard` (at least `soft`). Past the
/// soft CPU limit the kernel sends SIGXCPU; past the hard one, SIGKILL.
pub fn set_limit(limit: Limit, soft: u64, hard: u64) -> io::Result<()> {
    let resource = match limit {
        Limit::CpuSeconds => libc::RLIMIT_CPU,
        Limit::Data => libc::RLIMIT_DATA,
        Limit::AddressSpace => libc::RLIMIT_AS,
    };
    let rlimit = libc::rlimit { rlim_cur: soft as libc::rlim_t, rlim_max: hard.max(soft) as libc::rlim_t };
    // SAFETY: `rlimit` is a valid, initialised struct.
    check(unsafe { libc::setrlimit(resource, &rlimit) })?;
    Ok(())
}

/// Changes a socket file's owner (for the daemon socket: the server's child
/// user, so only it and root can connect).
pub fn chown(path: &std::path::Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
}

/// Creates a daemon group's listening socket at `path` (replacing a stale
/// one), readable and writable by its owner only, with the group's
/// `listen-backlog=` as the queue of connections not yet accepted and its
/// `send-buffer-size=`/`receive-buffer-size=` (0: the system's) on the
/// socket, as mod_wsgi sets them.
pub fn group_socket(
    path: &std::path::Path,
    process: &wsgi_config::DaemonProcess,
) -> io::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::remove_file(path);
    let listener = std::os::unix::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    for (option, size) in [(libc::SO_SNDBUF, process.send_buffer_size), (libc::SO_RCVBUF, process.receive_buffer_size)]
    {
        if size > 0 {
            set_buffer_size(listener.as_raw_fd(), option, size)?;
        }
    }
    set_listen_backlog(listener.as_raw_fd(), process.listen_backlog)?;
    Ok(listener)
}

/// The address family of the socket `fd` (`libc::AF_INET`, `AF_INET6`,
/// `AF_UNIX`), or `None` if it is no socket.
pub fn socket_domain(fd: RawFd) -> Option<i32> {
    let mut domain: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `domain`, an int
    // on this stack, and `len` says how many it wrote.
    let status =
        unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_DOMAIN, (&raw mut domain).cast(), &raw mut len) };
    (status == 0).then_some(domain)
}

/// Whether the socket `fd` is a stream socket that listens (what a server
/// accepts connections on).
pub fn is_listening_stream(fd: RawFd) -> bool {
    let option = |name: libc::c_int| {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `value`, an
        // int on this stack.
        let status = unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, name, (&raw mut value).cast(), &raw mut len) };
        (status == 0).then_some(value)
    };
    option(libc::SO_TYPE) == Some(libc::SOCK_STREAM) && option(libc::SO_ACCEPTCONN) == Some(1)
}

/// Sets the queue of connections not yet accepted of the listening socket
/// `fd` (the kernel caps it at `net.core.somaxconn`).
pub fn set_listen_backlog(fd: RawFd, backlog: u32) -> io::Result<()> {
    let backlog = libc::c_int::try_from(backlog).unwrap_or(libc::c_int::MAX);
    // SAFETY: listen() with integer arguments; on a socket that already
    // listens it only changes the backlog.
    if unsafe { libc::listen(fd, backlog) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `sendfile(2)`: `len` bytes of `file` from `offset` to the socket `out`,
/// all of them (a short count is continued); the socket's send timeout
/// ends a wait for the peer with `TimedOut`.
pub fn send_file_to(out: RawFd, file: RawFd, offset: u64, len: u64) -> io::Result<u64> {
    let mut sent = 0u64;
    while sent < len {
        let mut at = libc::off_t::try_from(offset + sent).map_err(|_| io::Error::other("file offset too large"))?;
        let want = usize::try_from(len - sent).unwrap_or(usize::MAX).min(1 << 30);
        // SAFETY: both descriptors are open for the call; `at` is a valid
        // out-pointer for the offset.
        let n = unsafe { libc::sendfile(out, file, &mut at, want) };
        match n {
            n if n > 0 => sent += n as u64,
            0 => break,
            _ => {
                let error = io::Error::last_os_error();
                match error.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => return Err(io::Error::new(io::ErrorKind::TimedOut, error)),
                    _ => return Err(error),
                }
            }
        }
    }
    Ok(sent)
}

/// `send(2)` with `MSG_DONTWAIT`: as much of `buf` as the socket `fd`
/// takes without waiting (`WouldBlock` when it takes nothing).
pub fn send_without_waiting(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for `buf.len()` bytes for the call; `fd` is
    // open for it; MSG_NOSIGNAL turns a closed peer into EPIPE, not SIGPIPE.
    let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

fn set_buffer_size(fd: RawFd, option: libc::c_int, size: u64) -> io::Result<()> {
    let size = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
    // SAFETY: `size` is a valid c_int for the call's duration.
    let status = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&raw const size).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if status == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    const NOW: Option<Duration> = Some(Duration::ZERO);

    #[test]
    fn a_descriptor_added_once_is_reported_once_until_rearmed() {
        let poller = Epoll::new().unwrap();
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        let (mut level, level_peer) = UnixStream::pair().unwrap();
        poller.add_once(theirs.as_raw_fd(), 7).unwrap();
        poller.add(level_peer.as_raw_fd(), 9).unwrap();
        let mut ready = Vec::new();
        poller.wait(&mut ready, NOW).unwrap();
        assert!(ready.is_empty(), "nothing to read yet: {ready:?}");

        ours.write_all(b"x").unwrap();
        level.write_all(b"y").unwrap();
        poller.wait(&mut ready, NOW).unwrap();
        ready.sort_unstable();
        assert_eq!(ready, [7, 9]);
        // Both still readable: only the level-triggered one is reported.
        poller.wait(&mut ready, NOW).unwrap();
        assert_eq!(ready, [9]);
        ours.write_all(b"more").unwrap();
        poller.wait(&mut ready, NOW).unwrap();
        assert_eq!(ready, [9], "not rearmed: more data does not report it");

        poller.rearm(theirs.as_raw_fd(), 8).unwrap();
        poller.delete(level_peer.as_raw_fd()).unwrap();
        poller.wait(&mut ready, NOW).unwrap();
        assert_eq!(ready, [8], "rearmed with its new token, and the deleted one gone");
        poller.wait(&mut ready, NOW).unwrap();
        assert!(ready.is_empty(), "one report per arming: {ready:?}");
    }
}
