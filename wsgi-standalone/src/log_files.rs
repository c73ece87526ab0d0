//! Log files as Apache keeps them: opened by the top process (as root,
//! before any serving process changes user) and reopened by it on SIGUSR1,
//! for logrotate. Every process writes a log through a pipe that the top
//! process relays to the file, so that a reopened file is the one every
//! process writes to next, with no process restarted. The main error log's
//! pipe is every process's standard error, as Apache makes its own.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use wsgi_daemon::sys;

use wsgi_core::LogLevel;

use crate::logging::{LogSink, ServerLog};

/// The environment variable naming, for serving processes, the inherited
/// write end of each log file's pipe (`FD\tPATH` lines).
const LOG_FDS_ENV: &str = "WSGI_RS_LOG_FDS";

/// How often the relay looks for SIGUSR1 when no line arrives.
const SIGNAL_LOOK: Duration = Duration::from_millis(200);

/// The log files of this process: the write end of each file's pipe.
pub struct LogFiles {
    writers: BTreeMap<PathBuf, Arc<OwnedFd>>,
    relay: Option<Relay>,
}

/// The top process's side: the thread that copies each pipe to its file.
struct Relay {
    thread: JoinHandle<()>,
    /// Set when the relay is to write what is left and stop.
    stop: Arc<AtomicBool>,
    /// Standard error as it was before it became the error log's pipe.
    original_stderr: Option<OwnedFd>,
}

impl LogFiles {
    /// No files: every log goes to standard error or output.
    pub fn none() -> LogFiles {
        LogFiles { writers: BTreeMap::new(), relay: None }
    }

    /// In the top process: opens `paths` (appending, creating them) and
    /// starts relaying to them; `error_log`, one of them, becomes this
    /// process's standard error, which every process it starts inherits.
    pub fn open(paths: &[PathBuf], error_log: Option<&Path>) -> Result<LogFiles, String> {
        sys::count_signals(&[libc::SIGUSR1]).map_err(|e| format!("cannot handle SIGUSR1: {e}"))?;
        let mut writers = BTreeMap::new();
        let mut relayed = Vec::new();
        for path in paths {
            if writers.contains_key(path) {
                continue;
            }
            let file = open_log(path)?;
            let (read, write) = sys::pipe().map_err(|e| format!("cannot make a pipe for {}: {e}", path.display()))?;
            writers.insert(path.clone(), Arc::new(write));
            relayed.push(Relayed { path: path.clone(), pipe: File::from(read), file, open: true, lost: None });
        }
        if relayed.is_empty() {
            return Ok(LogFiles::none());
        }
        // Where a file that cannot be written is reported: standard error
        // as it was before the error log took its place.
        let report =
            sys::duplicate_fd(2).ok().map(|fd| ServerLog::new(LogSink::from_file(File::from(fd)), LogLevel::Info));
        let mut original_stderr = None;
        if let Some(writer) = error_log.and_then(|path| writers.get(path)) {
            original_stderr = Some(sys::duplicate_fd(2).map_err(|e| format!("cannot keep standard error: {e}"))?);
            sys::redirect_fd(writer.as_raw_fd(), 2).map_err(|e| format!("cannot redirect standard error: {e}"))?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stop_seen = stop.clone();
        let thread = std::thread::Builder::new()
            .name("log-relay".into())
            .spawn(move || relay(relayed, &stop_seen, report.as_ref()))
            .map_err(|e| format!("cannot start the log relay: {e}"))?;
        Ok(LogFiles { writers, relay: Some(Relay { thread, stop, original_stderr }) })
    }

    /// In a serving process: the pipes its top process handed down (none
    /// if it was started by no top process).
    pub fn inherited() -> LogFiles {
        // A signal meant for the top process must not end this one.
        let _ = sys::count_signals(&[libc::SIGUSR1]);
        let Ok(text) = std::env::var(LOG_FDS_ENV) else { return LogFiles::none() };
        // Taken: programs the application starts do not see it.
        std::env::remove_var(LOG_FDS_ENV);
        let writers = text
            .lines()
            .filter_map(|line| line.split_once('\t'))
            .filter_map(|(fd, path)| {
                let fd = sys::inherited_fd(fd.parse().ok()?)?;
                Some((PathBuf::from(path), Arc::new(fd)))
            })
            .collect();
        LogFiles { writers, relay: None }
    }

    /// The sink writing to `path`'s log (`None` if it is not one of these
    /// files).
    pub fn sink(&self, path: &Path) -> Option<LogSink> {
        let fd = self.writers.get(path)?;
        let copy = sys::duplicate_fd(fd.as_raw_fd()).ok()?;
        Some(LogSink::from_file(File::from(copy)))
    }

    /// What a serving process needs to inherit: the descriptors, and the
    /// environment variable naming them.
    pub fn for_children(&self) -> (Vec<RawFd>, (&'static str, String)) {
        let fds = self.writers.values().map(|fd| fd.as_raw_fd()).collect();
        let text = self.writers.iter().map(|(path, fd)| format!("{}\t{}\n", fd.as_raw_fd(), path.display())).collect();
        (fds, (LOG_FDS_ENV, text))
    }
}

/// In the top process, once every other process has stopped: gives
/// standard error back and lets the relay write what is left.
impl Drop for LogFiles {
    fn drop(&mut self) {
        let Some(relay) = self.relay.take() else { return };
        if let Some(original) = &relay.original_stderr {
            let _ = sys::redirect_fd(original.as_raw_fd(), 2);
        }
        self.writers.clear();
        relay.stop.store(true, Ordering::Relaxed);
        // A file that blocks must not keep this process from exiting.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while !relay.thread.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// One relayed log: its pipe and its file.
struct Relayed {
    path: PathBuf,
    pipe: File,
    file: File,
    /// Until every writer has closed the pipe.
    open: bool,
    /// While the file cannot be written (a full disk): the bytes lost
    /// since it failed.
    lost: Option<u64>,
}

impl Relayed {
    /// Writes what came through the pipe to the file. A file that cannot
    /// be written loses the lines (the writers must never block on it):
    /// that is reported once when it starts, and once when the file is
    /// written again, never per line.
    fn write(&mut self, data: &[u8], report: Option<&ServerLog>) {
        match self.file.write_all(data) {
            Ok(()) => {
                if let Some(lost) = self.lost.take() {
                    if let Some(report) = report {
                        report.log(
                            LogLevel::Warn,
                            &format!(
                                "wsgi-standalone: log file {} is written again; about {lost} bytes of log lines were lost",
                                self.path.display()
                            ),
                        );
                    }
                }
            }
            Err(e) => match &mut self.lost {
                Some(lost) => *lost += data.len() as u64,
                None => {
                    self.lost = Some(data.len() as u64);
                    if let Some(report) = report {
                        report.log(
                            LogLevel::Error,
                            &format!(
                                "wsgi-standalone: cannot write to log file {}: {e}; its lines are lost until it can be written again (serving goes on)",
                                self.path.display()
                            ),
                        );
                    }
                }
            },
        }
    }
}

fn open_log(path: &Path) -> Result<File, String> {
    std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Copies each pipe to its file until every pipe is closed, or until
/// `stop` is set and nothing is left to read, reopening the files whenever
/// SIGUSR1 arrived.
fn relay(mut logs: Vec<Relayed>, stop: &AtomicBool, report: Option<&ServerLog>) {
    let mut reopened = sys::signals_seen(libc::SIGUSR1);
    let mut buf = vec![0u8; 64 * 1024];
    while logs.iter().any(|log| log.open) {
        let stopping = stop.load(Ordering::Relaxed);
        let fds: Vec<RawFd> = logs.iter().filter(|l| l.open).map(|l| l.pipe.as_raw_fd()).collect();
        let wait = if stopping { Duration::ZERO } else { SIGNAL_LOOK };
        let ready = sys::poll_readable(&fds, Some(wait)).unwrap_or_default();
        if stopping && !ready.contains(&true) {
            return;
        }
        for (index, log) in logs.iter_mut().filter(|l| l.open).enumerate() {
            if ready.get(index).copied().unwrap_or(false) {
                match log.pipe.read(&mut buf) {
                    Ok(0) | Err(_) => log.open = false,
                    Ok(n) => log.write(&buf[..n], report),
                }
            }
        }
        let seen = sys::signals_seen(libc::SIGUSR1);
        if seen != reopened {
            reopened = seen;
            for log in &mut logs {
                if let Ok(file) = open_log(&log.path) {
                    log.file = file;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_cannot_be_written_is_reported_once_and_again_when_it_can() {
        let dir = std::env::temp_dir().join(format!("wsgi-log-files-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let report_path = dir.join("report");
        let report = ServerLog::new(LogSink::from_file(File::create(&report_path).unwrap()), LogLevel::Info);
        let (read, _write) = sys::pipe().unwrap();
        // /dev/full: every write fails with ENOSPC, as on a full disk.
        let full = std::fs::OpenOptions::new().append(true).open("/dev/full").unwrap();
        let mut log =
            Relayed { path: PathBuf::from("/dev/full"), pipe: File::from(read), file: full, open: true, lost: None };
        for _ in 0..100 {
            log.write(b"a line of the log\n", Some(&report));
        }
        let text = std::fs::read_to_string(&report_path).unwrap();
        assert_eq!(text.matches("cannot write to log file /dev/full").count(), 1, "{text}");
        assert!(text.contains("No space left on device"), "{text}");
        log.file = File::create(dir.join("log")).unwrap();
        log.write(b"written\n", Some(&report));
        log.write(b"written\n", Some(&report));
        let text = std::fs::read_to_string(&report_path).unwrap();
        assert_eq!(text.matches("is written again; about 1800 bytes").count(), 1, "{text}");
        assert_eq!(std::fs::read_to_string(dir.join("log")).unwrap(), "written\nwritten\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
