//! Test doubles for the seams (feature `testing`): what a test of a front
//! end, an interpreter or the daemon relay needs in place of a client.

use std::io;

use crate::response::ResponseSink;

/// A [`ResponseSink`] that records everything it is given, in memory. With
/// `fail_after`, a body write that would take it past that many bytes
/// fails as a client that went away does.
#[derive(Debug, Default, Clone)]
pub struct RecordingSink {
    /// The status of the last head.
    pub status: u16,
    /// The reason phrase of the last head.
    pub reason: String,
    /// The headers of the last head.
    pub headers: Vec<(String, String)>,
    /// Every body byte, files included.
    pub body: Vec<u8>,
    /// How many heads were sent (one for a well-formed response).
    pub heads: usize,
    /// How many `send_file` calls there were.
    pub files_sent: usize,
    /// How many flushes there were.
    pub flushes: usize,
    /// Whether `finish` was called.
    pub finished: bool,
    /// Fail body writes beyond this many bytes.
    pub fail_after: Option<usize>,
}

impl RecordingSink {
    /// A sink that fails once more than `limit` body bytes were written.
    pub fn failing_after(limit: usize) -> RecordingSink {
        RecordingSink { fail_after: Some(limit), ..RecordingSink::default() }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl ResponseSink for RecordingSink {
    fn send_head(&mut self, status: u16, reason: &str, headers: &[(String, String)]) -> io::Result<()> {
        self.heads += 1;
        self.status = status;
        self.reason = reason.to_string();
        self.headers = headers.to_vec();
        Ok(())
    }

    fn send_body(&mut self, chunk: &[u8]) -> io::Result<()> {
        if self.fail_after.is_some_and(|limit| self.body.len() + chunk.len() > limit) {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "client went away"));
        }
        self.body.extend_from_slice(chunk);
        Ok(())
    }

    fn send_file(&mut self, file: &std::fs::File, offset: u64, len: u64) -> io::Result<u64> {
        use std::os::unix::fs::FileExt;
        self.files_sent += 1;
        let mut buf = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
        let n = file.read_at(&mut buf, offset)?;
        self.body.extend_from_slice(&buf[..n]);
        Ok(n as u64)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flushes += 1;
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.finished = true;
        Ok(())
    }
}
