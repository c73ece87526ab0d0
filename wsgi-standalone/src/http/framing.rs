//! Finds the HTTP/1.1 request heads that carry both `Content-Length` and
//! `Transfer-Encoding`, which hyper reads by their chunked coding after
//! dropping `Content-Length` from the head it hands over, so that the
//! server can refuse them (400, connection closed: RFC 9112 section 6.1
//! allows a server to, and such a request could be read two ways by
//! another server on the path).
//!
//! [`FramingWatch`] sees every byte hyper reads from a connection and
//! follows the message framing as hyper does (heads, `Content-Length`
//! bodies, chunked bodies and their trailers) with a few bytes of state
//! and no buffering. It stops looking only at an HTTP/2 preface as the
//! very first bytes of a connection (where hyper switches to HTTP/2) and
//! at a message hyper cannot parse (hyper closes the connection then).
//! A `CONNECT` is followed like any request: if hyper tunnels after a 2xx
//! no later request is read from the connection anyway.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The first request of a connection (by number, counted from 0) whose head
/// had both `Content-Length` and `Transfer-Encoding`. hyper closes the
/// connection after such a request, so one number is all there is to keep.
#[derive(Clone, Default)]
pub(super) struct AmbiguousHead(Arc<AtomicU64>);

impl AmbiguousHead {
    /// Whether request number `index` of the connection had both fields.
    pub(super) fn was_ambiguous(&self, index: u64) -> bool {
        self.0.load(Ordering::Acquire) == index + 1
    }

    fn mark(&self, index: u64) {
        let _ = self.0.compare_exchange(0, index + 1, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// Names compared, lower-case: the longest is `transfer-encoding`.
const NAME_CAP: usize = 17;

/// Where in the byte stream the watch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the request line: empty lines are skipped, as httparse does.
    Start,
    /// In the request line; `at` bytes of it seen, `preface` while they
    /// are the start of HTTP/2's preface as the connection's first bytes.
    RequestLine { at: usize, preface: bool },
    /// At the start of a header line (or the empty line ending the head).
    LineStart,
    /// In a header name.
    Name,
    /// In a header value (or a line without a colon, which hyper refuses).
    Value,
    /// A `\r` at the start of a line: the head ends at the `\n`.
    HeadEnd,
    /// `n` bytes of a `Content-Length` body left.
    Length(u64),
    /// In a chunk-size line (size, extensions), up to its `\n`.
    ChunkSize { size: u64, digits: bool, done: bool },
    /// `n` bytes of chunk data left.
    ChunkData(u64),
    /// The line end after chunk data.
    ChunkEnd,
    /// At the start of a trailer line (or the empty line ending it).
    TrailerStart,
    /// In a trailer line.
    Trailer,
    /// A `\r` at the start of a trailer line.
    TrailerEnd,
    /// No longer following the stream.
    Off,
}

/// The framing of the stream read so far; see the module documentation.
pub(super) struct Framing {
    state: State,
    /// Heads completed so far.
    heads: u64,
    /// The current header name, lower-cased (up to [`NAME_CAP`] bytes).
    name: [u8; NAME_CAP],
    name_len: usize,
    name_long: bool,
    /// What the current field is.
    field: Field,
    /// The current `Content-Length` value (digits only), if valid.
    length: Option<u64>,
    length_valid: bool,
    /// Seen in this head.
    has_length: bool,
    has_coding: bool,
    /// Any byte seen yet (an HTTP/2 preface counts only as the first).
    started: bool,
    found: AmbiguousHead,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Other,
    ContentLength,
    TransferEncoding,
}

impl Framing {
    pub(super) fn new(found: AmbiguousHead) -> Framing {
        Framing {
            state: State::Start,
            heads: 0,
            name: [0; NAME_CAP],
            name_len: 0,
            name_long: false,
            field: Field::Other,
            length: None,
            length_valid: true,
            has_length: false,
            has_coding: false,
            started: false,
            found,
        }
    }

    /// Follows `bytes`, the next bytes read from the connection.
    pub(super) fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.state {
                State::Off => return,
                State::Length(left) => {
                    let n = left.min(bytes.len() as u64);
                    bytes = &bytes[n as usize..];
                    self.state = if left == n { State::Start } else { State::Length(left - n) };
                }
                State::ChunkData(left) => {
                    let n = left.min(bytes.len() as u64);
                    bytes = &bytes[n as usize..];
                    self.state = if left == n { State::ChunkEnd } else { State::ChunkData(left - n) };
                }
                // Within a line whose bytes do not matter: on to its end.
                State::RequestLine { preface: false, .. } | State::Trailer | State::ChunkEnd => {
                    bytes = self.skip_line(bytes);
                }
                State::Value if self.field != Field::ContentLength => bytes = self.skip_line(bytes),
                _ => {
                    self.byte(bytes[0]);
                    bytes = &bytes[1..];
                }
            }
        }
    }

    /// `bytes` from the end of the current line on (its `\n` still to be
    /// followed), or nothing when the line goes on past them.
    fn skip_line<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
        match memchr::memchr(b'\n', bytes) {
            Some(end) => {
                let end_byte = bytes[end];
                self.byte(end_byte);
                &bytes[end + 1..]
            }
            None => &[],
        }
    }

    fn byte(&mut self, b: u8) {
        self.state = match self.state {
            State::Start => match b {
                b'\r' | b'\n' => {
                    self.started = true;
                    State::Start
                }
                _ => {
                    let preface = !self.started;
                    self.started = true;
                    self.request_line(0, preface, b)
                }
            },
            State::RequestLine { at, preface } => self.request_line(at, preface, b),
            State::LineStart => match b {
                b'\r' => State::HeadEnd,
                b'\n' => self.end_head(),
                _ => self.name_byte(b),
            },
            State::Name => match b {
                b':' => {
                    self.field = self.field_named();
                    if self.field == Field::ContentLength {
                        self.length = None;
                        self.length_valid = true;
                    }
                    State::Value
                }
                b'\n' => State::LineStart,
                _ => self.name_byte(b),
            },
            State::Value => match b {
                b'\n' => {
                    self.end_field();
                    State::LineStart
                }
                _ => {
                    if self.field == Field::ContentLength {
                        self.length_byte(b);
                    }
                    State::Value
                }
            },
            State::HeadEnd => match b {
                b'\n' => self.end_head(),
                // hyper refuses what follows; stop guessing.
                _ => State::Off,
            },
            State::ChunkSize { size, digits, done } => match b {
                b'\n' if !digits => State::Off,
                b'\n' if size == 0 => State::TrailerStart,
                b'\n' => State::ChunkData(size),
                _ if done => State::ChunkSize { size, digits, done },
                _ => match (b as char).to_digit(16) {
                    Some(d) => match size.checked_mul(16).and_then(|s| s.checked_add(u64::from(d))) {
                        Some(size) => State::ChunkSize { size, digits: true, done: false },
                        None => State::Off,
                    },
                    None => State::ChunkSize { size, digits, done: true },
                },
            },
            State::ChunkEnd => match b {
                b'\n' => State::ChunkSize { size: 0, digits: false, done: false },
                _ => State::ChunkEnd,
            },
            State::TrailerStart => match b {
                b'\r' => State::TrailerEnd,
                b'\n' => State::Start,
                _ => State::Trailer,
            },
            State::Trailer => match b {
                b'\n' => State::TrailerStart,
                _ => State::Trailer,
            },
            State::TrailerEnd => match b {
                b'\n' => State::Start,
                _ => State::Off,
            },
            State::Length(_) | State::ChunkData(_) | State::Off => self.state,
        };
    }

    fn request_line(&mut self, at: usize, preface: bool, b: u8) -> State {
        /// HTTP/2's connection preface up to its first line end: hyper
        /// switches to HTTP/2 only when a connection starts with it.
        const PREFACE: &[u8] = b"PRI * HTTP/2.0\r";
        if b == b'\n' {
            if preface && at == PREFACE.len() {
                // Not HTTP/1.1 from here on.
                return State::Off;
            }
            self.start_line();
            return State::LineStart;
        }
        let preface = preface && PREFACE.get(at) == Some(&b);
        State::RequestLine { at: at.saturating_add(1), preface }
    }

    fn start_line(&mut self) {
        self.name_len = 0;
        self.name_long = false;
        self.field = Field::Other;
    }

    fn name_byte(&mut self, b: u8) -> State {
        if self.name_len < NAME_CAP {
            self.name[self.name_len] = b.to_ascii_lowercase();
            self.name_len += 1;
        } else {
            self.name_long = true;
        }
        State::Name
    }

    fn field_named(&self) -> Field {
        if self.name_long {
            return Field::Other;
        }
        match &self.name[..self.name_len] {
            b"content-length" => Field::ContentLength,
            b"transfer-encoding" => Field::TransferEncoding,
            _ => Field::Other,
        }
    }

    fn length_byte(&mut self, b: u8) {
        match b {
            b'0'..=b'9' => {
                let digit = u64::from(b - b'0');
                match self.length.unwrap_or(0).checked_mul(10).and_then(|l| l.checked_add(digit)) {
                    Some(length) => self.length = Some(length),
                    None => self.length_valid = false,
                }
            }
            b' ' | b'\t' | b'\r' => {}
            _ => self.length_valid = false,
        }
    }

    fn end_field(&mut self) {
        match self.field {
            Field::ContentLength => {
                self.has_length = true;
                if !self.length_valid || self.length.is_none() {
                    // hyper refuses it.
                    self.length = None;
                }
            }
            Field::TransferEncoding => self.has_coding = true,
            Field::Other => {}
        }
        self.start_line();
    }

    fn end_head(&mut self) -> State {
        let index = self.heads;
        self.heads += 1;
        let (has_length, has_coding, length) = (self.has_length, self.has_coding, self.length);
        self.has_length = false;
        self.has_coding = false;
        self.length = None;
        self.length_valid = true;
        if has_coding {
            if has_length {
                self.found.mark(index);
                // hyper closes the connection after this request.
                return State::Off;
            }
            // Chunked (hyper refuses any other final coding).
            return State::ChunkSize { size: 0, digits: false, done: false };
        }
        match (has_length, length) {
            (false, _) | (true, Some(0)) => State::Start,
            (true, Some(n)) => State::Length(n),
            // An invalid length: hyper refuses the request.
            (true, None) => State::Off,
        }
    }
}

/// Longest a closing HTTP/1.1 connection is drained ([`FramingWatch`]'s
/// lingering close).
const LINGER_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// Most bytes a closing HTTP/1.1 connection drains.
const LINGER_BYTES: usize = 1024 * 1024;

/// A connection whose bytes, as hyper reads them, go through [`Framing`].
///
/// Its shutdown lingers, as Apache's close does: after the sending side
/// is shut, what the client still sends (a request body the server did
/// not read, say, after an error) is read and dropped, for up to
/// [`LINGER_TIME`] and [`LINGER_BYTES`] or until the client closes. A
/// socket closed with unread bytes in it sends a reset, which can make
/// the client drop the response before reading it.
pub(super) struct FramingWatch<S> {
    inner: S,
    framing: Framing,
    /// Linger at shutdown (HTTP/1.1 connections).
    linger: bool,
    /// The sending side is shut; lingering until this fires.
    lingering: Option<Pin<Box<tokio::time::Sleep>>>,
    drained: usize,
}

impl<S> FramingWatch<S> {
    /// Watches `inner`, telling `found` of an ambiguous head; `watch`
    /// false (HTTP/2 chosen by ALPN): passes the bytes through unlooked at.
    pub(super) fn new(inner: S, found: AmbiguousHead, watch: bool) -> FramingWatch<S> {
        let mut framing = Framing::new(found);
        if !watch {
            framing.state = State::Off;
        }
        FramingWatch { inner, framing, linger: watch, lingering: None, drained: 0 }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FramingWatch<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.framing.feed(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for FramingWatch<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.linger {
            return Pin::new(&mut this.inner).poll_shutdown(cx);
        }
        if this.lingering.is_none() {
            std::task::ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
            this.lingering = Some(Box::pin(tokio::time::sleep(LINGER_TIME)));
        }
        let mut scratch = [0u8; 8192];
        loop {
            let timed_out = this.lingering.as_mut().is_none_or(|sleep| sleep.as_mut().poll(cx).is_ready());
            if timed_out || this.drained >= LINGER_BYTES {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.inner).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => this.drained += buf.filled().len(),
                // The client is gone: nothing left to linger for.
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ambiguous head found after feeding `pieces`, if any.
    fn found(pieces: &[&[u8]]) -> Option<u64> {
        let found = AmbiguousHead::default();
        let mut framing = Framing::new(found.clone());
        for piece in pieces {
            framing.feed(piece);
        }
        (0..10).find(|&i| found.was_ambiguous(i))
    }

    #[test]
    fn both_fields_in_either_order_are_found() {
        assert_eq!(found(&[b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"]), Some(0));
        assert_eq!(found(&[b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\nCONTENT-LENGTH: 5\r\n\r\n"]), Some(0));
    }

    #[test]
    fn one_field_alone_is_not_ambiguous() {
        assert_eq!(found(&[b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"]), None);
        assert_eq!(found(&[b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"]), None);
    }

    #[test]
    fn bodies_are_skipped_so_that_pipelined_heads_are_counted() {
        let body_lookalike = b"Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut first = b"POST / HTTP/1.1\r\nContent-Length: 49\r\n\r\n".to_vec();
        first.extend_from_slice(body_lookalike);
        assert_eq!(body_lookalike.len(), 49);
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
            31;ext=1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n\r\n0\r\nX-T: 1\r\n\r\n";
        let third = b"\r\nPOST / HTTP/1.1\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(found(&[&first, chunked, third]), Some(2));
        // Byte by byte, the same.
        let all: Vec<u8> = [&first[..], chunked, third].concat();
        let pieces: Vec<&[u8]> = all.chunks(1).collect();
        assert_eq!(found(&pieces), Some(2));
    }

    const SMUGGLE: &[u8] = b"POST /smug HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";

    #[test]
    fn only_a_connections_first_bytes_can_be_the_http2_preface() {
        let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(found(&[preface]), None);
        // Split anywhere, the same.
        let pieces: Vec<&[u8]> = preface.chunks(1).collect();
        assert_eq!(found(&pieces), None);
        // After a request, or after blank lines, it is an HTTP/1.1 request.
        let get = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(found(&[get, b"PRI * HTTP/2.0\r\n\r\n", SMUGGLE]), Some(2));
        assert_eq!(found(&[b"\r\nPRI * HTTP/2.0\r\nHost: a\r\n\r\n", SMUGGLE]), Some(1));
    }

    #[test]
    fn pri_and_connect_requests_do_not_end_the_watch() {
        for first in [
            &b"PRI /x HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n",
            b"CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r\n",
        ] {
            assert_eq!(found(&[first, SMUGGLE]), Some(1), "{}", String::from_utf8_lossy(first));
        }
    }

    #[test]
    fn a_longer_name_is_another_field() {
        assert_eq!(found(&[b"POST / HTTP/1.1\r\nContent-Length-X: 5\r\nTransfer-Encoding: chunked\r\n\r\n"]), None);
    }
}
