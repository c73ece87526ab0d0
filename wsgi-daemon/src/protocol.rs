//! The front-end-to-daemon wire protocol.
//!
//! A front end (an Apache child or the standalone server) carries each
//! request to a daemon process over a UNIX stream socket, and the daemon
//! carries the response back, with this protocol.
//!
//! # Handshake
//!
//! A connection starts with both sides sending [`MAGIC`] followed by their
//! [`PROTOCOL_VERSION`] as a big-endian `u16` ([`write_handshake`]), then
//! reading and checking the peer's ([`read_handshake`]). A peer with another
//! magic is rejected with [`ProtocolError::BadMagic`], one with another
//! version with [`ProtocolError::VersionMismatch`]. The handshake is 8 bytes,
//! so both sides may send before they read without risk of deadlock.
//!
//! # Frames
//!
//! After the handshake the stream is a sequence of frames: a kind byte
//! ([`FrameKind`]), a big-endian `u32` payload length, and the payload. A
//! payload longer than [`MAX_FRAME_SIZE`] is refused by both
//! [`write_frame`] and [`read_frame`]; the reader refuses it from the header
//! alone, without allocating the announced size.
//!
//! Inside payloads, integers are big-endian, booleans are one byte (`0` or
//! `1`), strings and byte strings are a `u32` length followed by the bytes
//! (strings as UTF-8, so the Latin-1 text of environ values and headers,
//! held in Rust `String`s, comes back exactly), and lists are a `u32` count
//! followed by the elements; an optional value is a boolean (present or
//! not) followed by the value when present. An environ key or string value that is one of
//! wsgi-core's common ones ([`wsgi_core::environ::COMMON_KEYS`],
//! [`wsgi_core::environ::COMMON_VALUES`]) goes as its position with the top
//! bit of the length set instead ([`COMMON_STRING`]): nothing to compare
//! or allocate on the daemon's side.
//!
//! # Exchange
//!
//! One request at a time travels on a connection, and connections are
//! reused (mod_wsgi opens one per request; we do not):
//!
//! ```text
//! front end -> daemon   RequestStart, then, if it says a body follows,
//!                       BodyChunk* BodyEnd
//! daemon -> front end   ResponseStart ResponseChunk* ResponseEnd
//!                       or Error (the request failed in the daemon)
//! ```
//!
//! after which the next `RequestStart` may follow on the same stream.
//! Between requests either side may send `Ping`, answered by `Pong`, to
//! check that the other is alive. The end of the stream between two frames
//! is a clean close ([`read_frame`] returns `Ok(None)`); anywhere else it is
//! [`ProtocolError::Truncated`].
//!
//! ```
//! use std::io::Cursor;
//! use wsgi_daemon::protocol::{read_frame, read_handshake, write_frame, write_handshake, Frame};
//!
//! let mut wire = Vec::new();
//! write_handshake(&mut wire)?;
//! write_frame(&mut wire, &Frame::Ping)?;
//!
//! let mut r = Cursor::new(wire);
//! read_handshake(&mut r)?;
//! assert_eq!(read_frame(&mut r)?, Some(Frame::Ping));
//! assert_eq!(read_frame(&mut r)?, None);
//! # Ok::<(), wsgi_daemon::protocol::ProtocolError>(())
//! ```

use std::borrow::Cow;
use std::fmt;
use std::io::{self, BufRead, Read, Write};
use std::path::PathBuf;

use bytes::Bytes;
use wsgi_core::environ_build::{now_us, WsgiFlags};
use wsgi_core::{AppTarget, EnvValue, Environ};

/// The bytes every connection starts with, from both sides.
pub const MAGIC: [u8; 6] = *b"WSGIRS";

/// The version of the protocol this build speaks. Peers must speak exactly
/// the same version.
pub const PROTOCOL_VERSION: u16 = 3;

/// The largest frame payload, in bytes, that is written or accepted (16 MiB).
pub const MAX_FRAME_SIZE: u32 = 16 * 1024 * 1024;

/// Length of the handshake: the magic and the version.
/// The length of a handshake: [`MAGIC`] and the version.
pub const HANDSHAKE_LEN: usize = MAGIC.len() + 2;

/// Length of a frame header: the kind byte and the payload length.
pub const HEADER_LEN: usize = 5;

/// The header of a `kind` frame with a payload of `size` bytes, or
/// [`ProtocolError::FrameTooLarge`].
fn frame_header(kind: FrameKind, size: usize) -> Result<[u8; HEADER_LEN], ProtocolError> {
    let len = match u32::try_from(size) {
        Ok(len) if len <= MAX_FRAME_SIZE => len,
        _ => return Err(ProtocolError::FrameTooLarge { size: size as u64, max: MAX_FRAME_SIZE }),
    };
    let mut header = [0u8; HEADER_LEN];
    header[0] = kind.as_byte();
    header[1..].copy_from_slice(&len.to_be_bytes());
    Ok(header)
}

impl ProtocolError {
    /// Whether the peer reset the connection (on a UNIX socket: it closed
    /// with data of ours unread).
    pub fn is_reset(&self) -> bool {
        matches!(self, ProtocolError::Io(e) if e.kind() == io::ErrorKind::ConnectionReset)
    }

    /// Whether the socket's timeout ran out (nothing else went wrong).
    pub fn is_timeout(&self) -> bool {
        matches!(self, ProtocolError::Io(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
    }
}

/// Why a connection could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The socket failed.
    #[error("daemon connection I/O error: {0}")]
    Io(#[from] io::Error),
    /// The peer did not start with [`MAGIC`]: it is not a mod_wsgi-rs
    /// daemon endpoint.
    #[error("peer is not a mod_wsgi-rs daemon endpoint: expected magic \"WSGIRS\", got \"{}\"", .found.escape_ascii())]
    BadMagic {
        /// The bytes the peer sent where the magic belongs.
        found: [u8; 6],
    },
    /// The peer speaks another version of the protocol.
    #[error("daemon protocol version mismatch: this side speaks version {ours}, the peer speaks version {theirs}")]
    VersionMismatch {
        /// [`PROTOCOL_VERSION`].
        ours: u16,
        /// The version the peer announced.
        theirs: u16,
    },
    /// The stream ended in the middle of something (named here).
    #[error("daemon connection closed in the middle of {0}")]
    Truncated(&'static str),
    /// A frame payload longer than [`MAX_FRAME_SIZE`].
    #[error("frame payload of {size} bytes exceeds the maximum of {max} bytes")]
    FrameTooLarge {
        /// The payload length announced (when reading) or needed (when writing).
        size: u64,
        /// [`MAX_FRAME_SIZE`].
        max: u32,
    },
    /// A frame header with a kind byte this version does not know.
    #[error("unknown frame kind {0:#04x}")]
    UnknownKind(u8),
    /// A frame payload that does not decode as its kind requires.
    #[error("malformed {kind} frame: {reason}")]
    Malformed {
        /// The kind of the frame.
        kind: FrameKind,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// The kind byte of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameKind {
    /// [`Frame::RequestStart`].
    RequestStart = 1,
    /// [`Frame::BodyChunk`].
    BodyChunk = 2,
    /// [`Frame::BodyEnd`].
    BodyEnd = 3,
    /// [`Frame::ResponseStart`].
    ResponseStart = 4,
    /// [`Frame::ResponseChunk`].
    ResponseChunk = 5,
    /// [`Frame::ResponseEnd`].
    ResponseEnd = 6,
    /// [`Frame::Error`].
    Error = 7,
    /// [`Frame::Ping`].
    Ping = 8,
    /// [`Frame::Pong`].
    Pong = 9,
}

impl FrameKind {
    /// The kind with wire byte `byte`, if there is one.
    pub fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            1 => Self::RequestStart,
            2 => Self::BodyChunk,
            3 => Self::BodyEnd,
            4 => Self::ResponseStart,
            5 => Self::ResponseChunk,
            6 => Self::ResponseEnd,
            7 => Self::Error,
            8 => Self::Ping,
            9 => Self::Pong,
            _ => return None,
        })
    }

    /// The wire byte of this kind.
    pub fn as_byte(self) -> u8 {
        self as u8
    }

    /// The name of this kind, as [`Frame`]'s variants are named.
    pub fn name(self) -> &'static str {
        match self {
            Self::RequestStart => "RequestStart",
            Self::BodyChunk => "BodyChunk",
            Self::BodyEnd => "BodyEnd",
            Self::ResponseStart => "ResponseStart",
            Self::ResponseChunk => "ResponseChunk",
            Self::ResponseEnd => "ResponseEnd",
            Self::Error => "Error",
            Self::Ping => "Ping",
            Self::Pong => "Pong",
        }
    }
}

impl fmt::Display for FrameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The start of a request, sent by the front end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestStart {
    /// An identifier chosen by the front end, for logs on both sides.
    pub request_id: u64,
    /// The application to run.
    pub target: AppTarget,
    /// The environ, entries in order (carried exactly, duplicates included).
    pub environ: Environ,
    /// Whether [`Frame::BodyChunk`]s and a [`Frame::BodyEnd`] follow.
    pub has_body: bool,
}

impl RequestStart {
    /// A front end's request for a daemon group whose processes have
    /// `flags`: the environ gets the group's `wsgi.*` flags and
    /// `mod_wsgi.queue_start`, and a body follows only if the environ
    /// announces one ([`Environ::announces_body`]).
    pub fn for_group(target: AppTarget, mut environ: Environ, flags: WsgiFlags) -> RequestStart {
        environ.set("wsgi.multithread", EnvValue::Bool(flags.multithread));
        environ.set("wsgi.multiprocess", EnvValue::Bool(flags.multiprocess));
        environ.set("wsgi.run_once", EnvValue::Bool(flags.run_once));
        environ.set_str("mod_wsgi.queue_start", now_us().to_string());
        let has_body = environ.announces_body();
        RequestStart { request_id: 0, target, environ, has_body }
    }
}

/// The status line and headers of a response, sent by the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseStart {
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// The headers, in order, as `(name, value)`.
    pub headers: Vec<(String, String)>,
}

/// One frame of the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Front end to daemon: a new request.
    RequestStart(RequestStart),
    /// Front end to daemon: a piece of the request body.
    BodyChunk(Bytes),
    /// Front end to daemon: the request body is complete.
    BodyEnd,
    /// Daemon to front end: the status and headers of the response.
    ResponseStart(ResponseStart),
    /// Daemon to front end: a piece of the response body.
    ResponseChunk(Bytes),
    /// Daemon to front end: the response is complete.
    ResponseEnd,
    /// Either way: the current request failed (e.g. the daemon could not
    /// run it), with a message for the error log.
    Error(String),
    /// Either way, between requests: are you alive?
    Ping,
    /// The answer to [`Frame::Ping`].
    Pong,
}

impl Frame {
    /// The kind byte of this frame.
    pub fn kind(&self) -> FrameKind {
        match self {
            Self::RequestStart(_) => FrameKind::RequestStart,
            Self::BodyChunk(_) => FrameKind::BodyChunk,
            Self::BodyEnd => FrameKind::BodyEnd,
            Self::ResponseStart(_) => FrameKind::ResponseStart,
            Self::ResponseChunk(_) => FrameKind::ResponseChunk,
            Self::ResponseEnd => FrameKind::ResponseEnd,
            Self::Error(_) => FrameKind::Error,
            Self::Ping => FrameKind::Ping,
            Self::Pong => FrameKind::Pong,
        }
    }
}

/// Sends this side's handshake: [`MAGIC`] and [`PROTOCOL_VERSION`].
///
/// It does not flush `w`; flush a buffered writer before waiting for the
/// peer's handshake.
pub fn write_handshake(w: &mut impl Write) -> io::Result<()> {
    let mut buf = [0u8; HANDSHAKE_LEN];
    buf[..MAGIC.len()].copy_from_slice(&MAGIC);
    buf[MAGIC.len()..].copy_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    w.write_all(&buf)
}

/// Reads and checks the peer's handshake.
///
/// Fails with [`ProtocolError::BadMagic`] if the peer is not speaking this
/// protocol, [`ProtocolError::VersionMismatch`] if it speaks another version
/// of it, and [`ProtocolError::Truncated`] if the stream ends first.
pub fn read_handshake(r: &mut impl Read) -> Result<(), ProtocolError> {
    let mut buf = [0u8; HANDSHAKE_LEN];
    r.read_exact(&mut buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => ProtocolError::Truncated("the handshake"),
        _ => ProtocolError::Io(e),
    })?;
    let mut found = [0u8; 6];
    found.copy_from_slice(&buf[..MAGIC.len()]);
    if found != MAGIC {
        return Err(ProtocolError::BadMagic { found });
    }
    let theirs = u16::from_be_bytes([buf[MAGIC.len()], buf[MAGIC.len() + 1]]);
    if theirs != PROTOCOL_VERSION {
        return Err(ProtocolError::VersionMismatch { ours: PROTOCOL_VERSION, theirs });
    }
    Ok(())
}

/// Writes one frame: header and payload in a single `write_all`, except
/// for data frames, whose bytes follow their header straight from the
/// frame (as [`write_data_chunk`] writes them).
///
/// Fails with [`ProtocolError::FrameTooLarge`] (writing nothing) if the
/// payload would exceed [`MAX_FRAME_SIZE`]; split bodies into smaller
/// chunks. It does not flush `w`.
pub fn write_frame(w: &mut impl Write, frame: &Frame) -> Result<(), ProtocolError> {
    match frame {
        Frame::RequestStart(start) => write_encoded(w, FrameKind::RequestStart, |e| encode_request_start(e, start)),
        Frame::ResponseStart(start) => write_encoded(w, FrameKind::ResponseStart, |e| {
            e.u16(start.status);
            e.str(&start.reason);
            e.len(start.headers.len());
            for (name, value) in &start.headers {
                e.str(name);
                e.str(value);
            }
        }),
        Frame::Error(message) => write_encoded(w, FrameKind::Error, |e| e.str(message)),
        Frame::BodyChunk(data) => write_data_chunk(w, data, true),
        Frame::ResponseChunk(data) => write_data_chunk(w, data, false),
        Frame::BodyEnd | Frame::ResponseEnd | Frame::Ping | Frame::Pong => {
            w.write_all(&frame_header(frame.kind(), 0)?)?;
            Ok(())
        }
    }
}

/// Writes a [`Frame::ResponseChunk`] (or, with `request_body`, a
/// [`Frame::BodyChunk`]) of `data` straight from the caller's slice: the
/// frame header, then the bytes, with no copy into a frame of its own.
pub fn write_data_chunk(w: &mut impl Write, data: &[u8], request_body: bool) -> Result<(), ProtocolError> {
    let kind = if request_body { FrameKind::BodyChunk } else { FrameKind::ResponseChunk };
    w.write_all(&frame_header(kind, data.len())?)?;
    w.write_all(data)?;
    Ok(())
}

/// Writes the header of a [`Frame::ResponseChunk`] of `len` bytes, which
/// the caller then writes itself (from a file, with `sendfile`).
pub fn write_response_chunk_header(w: &mut impl Write, len: usize) -> Result<(), ProtocolError> {
    w.write_all(&frame_header(FrameKind::ResponseChunk, len)?)?;
    Ok(())
}

/// If `buffered` starts with a whole [`Frame::ResponseChunk`], the range
/// of its data in `buffered` and the frame's full length: a reader with
/// the frame already in its buffer can pass the data on from there, with
/// no copy.
pub fn buffered_response_chunk(buffered: &[u8]) -> Option<(std::ops::Range<usize>, usize)> {
    let (kind, end) = whole_frame(buffered)?;
    (kind == FrameKind::ResponseChunk.as_byte()).then_some((HEADER_LEN..end, end))
}

/// Reads one frame, as [`read_frame`] does, but decodes a frame that is
/// already whole in the reader's buffer from there: no payload buffer of
/// its own (a request's first frame takes kilobytes). Data frames, whose
/// payload becomes bytes of their own either way, are left to
/// [`read_frame`], as is every frame not yet whole.
pub fn read_frame_buffered(r: &mut impl BufRead) -> Result<Option<Frame>, ProtocolError> {
    let buffered = match r.fill_buf() {
        Ok(buffered) => buffered,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return read_frame(r),
        Err(e) => return Err(e.into()),
    };
    if let Some((kind, end)) = whole_frame(buffered) {
        match FrameKind::from_byte(kind) {
            Some(FrameKind::BodyChunk | FrameKind::ResponseChunk) | None => {}
            Some(kind) => {
                let frame = decode_payload(kind, &buffered[HEADER_LEN..end]);
                r.consume(end);
                return frame.map(Some);
            }
        }
    }
    read_frame(r)
}

/// The full length of the frame `buffered` starts with, if it is whole
/// there (`None` while more bytes are needed): a reader that fills its
/// own buffer, as an asynchronous one does, then decodes the frame with
/// [`read_frame`] from that slice. Fails with
/// [`ProtocolError::FrameTooLarge`] for a header announcing more than
/// [`MAX_FRAME_SIZE`], which no amount of reading completes.
pub fn whole_frame_len(buffered: &[u8]) -> Result<Option<usize>, ProtocolError> {
    let Some(header) = buffered.first_chunk::<HEADER_LEN>() else { return Ok(None) };
    let (_, len) = parse_header(header);
    if len > MAX_FRAME_SIZE {
        return Err(ProtocolError::FrameTooLarge { size: u64::from(len), max: MAX_FRAME_SIZE });
    }
    let end = HEADER_LEN + len as usize;
    Ok((buffered.len() >= end).then_some(end))
}

/// The kind byte and payload length a frame header announces.
fn parse_header(header: &[u8; HEADER_LEN]) -> (u8, u32) {
    (header[0], u32::from_be_bytes([header[1], header[2], header[3], header[4]]))
}

/// If `buffered` starts with a whole frame of an allowed size, its kind
/// byte and full length.
fn whole_frame(buffered: &[u8]) -> Option<(u8, usize)> {
    let (kind, len) = parse_header(buffered.first_chunk::<HEADER_LEN>()?);
    let end = HEADER_LEN + len as usize;
    (len <= MAX_FRAME_SIZE && buffered.len() >= end).then_some((kind, end))
}

/// Reads one frame.
///
/// Returns `Ok(None)` if the stream ends cleanly between frames. Never
/// allocates more than the announced payload length, which is checked
/// against [`MAX_FRAME_SIZE`] first, and grows its buffer only as bytes
/// actually arrive.
pub fn read_frame(r: &mut impl Read) -> Result<Option<Frame>, ProtocolError> {
    let mut header = [0u8; HEADER_LEN];
    let mut filled = 0;
    while filled < HEADER_LEN {
        match r.read(&mut header[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(ProtocolError::Truncated("a frame header")),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let (kind, len) = parse_header(&header);
    let kind = FrameKind::from_byte(kind).ok_or(ProtocolError::UnknownKind(kind))?;
    if len > MAX_FRAME_SIZE {
        return Err(ProtocolError::FrameTooLarge { size: u64::from(len), max: MAX_FRAME_SIZE });
    }
    let len = len as usize;
    let mut payload = Vec::with_capacity(len.min(64 * 1024));
    r.by_ref().take(len as u64).read_to_end(&mut payload)?;
    if payload.len() < len {
        return Err(ProtocolError::Truncated("a frame payload"));
    }
    // Data frames keep the payload as read: no second copy.
    match kind {
        FrameKind::BodyChunk => Ok(Some(Frame::BodyChunk(Bytes::from(payload)))),
        FrameKind::ResponseChunk => Ok(Some(Frame::ResponseChunk(Bytes::from(payload)))),
        _ => decode_payload(kind, &payload).map(Some),
    }
}

// ---------------------------------------------------------------------------
// Encoding

const TAG_STR: u8 = 0;
/// In place of a string's length: the string is the common one at the
/// position in the low bits.
pub const COMMON_STRING: u32 = 0x8000_0000;
const TAG_BOOL: u8 = 1;
const TAG_INT: u8 = 2;
const TAG_TUPLE: u8 = 3;

/// Writes a [`Frame::RequestStart`] from a borrowed request (no copy of
/// its environ), as [`write_frame`] would.
pub fn write_request_start(w: &mut impl Write, start: &RequestStart) -> Result<(), ProtocolError> {
    write_encoded(w, FrameKind::RequestStart, |e| encode_request_start(e, start))
}

/// Largest frame buffer kept for the thread's next frame.
const KEPT_FRAME_BUFFER: usize = 64 * 1024;

std::thread_local! {
    /// The buffer this thread encodes frames in, kept between frames: a
    /// request's first frame takes kilobytes, beyond the system
    /// allocator's fast path for small objects.
    static FRAME_BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Encodes a frame's payload with `encode`, then writes header and payload
/// in one `write_all`; nothing is written if the payload is too large.
fn write_encoded(w: &mut impl Write, kind: FrameKind, encode: impl FnOnce(&mut Encoder)) -> Result<(), ProtocolError> {
    let mut buf = FRAME_BUFFER.try_with(std::cell::Cell::take).unwrap_or_default();
    buf.clear();
    buf.resize(HEADER_LEN, 0);
    let mut e = Encoder { buf };
    encode(&mut e);
    let mut buf = e.buf;
    let written = frame_header(kind, buf.len() - HEADER_LEN).and_then(|header| {
        buf[..HEADER_LEN].copy_from_slice(&header);
        Ok(w.write_all(&buf)?)
    });
    if buf.capacity() <= KEPT_FRAME_BUFFER {
        // At thread exit the slot may be gone: the buffer is freed instead.
        let _ = FRAME_BUFFER.try_with(|kept| kept.set(buf));
    }
    written
}

fn encode_request_start(e: &mut Encoder, start: &RequestStart) {
    e.u64(start.request_id);
    e.bytes(&path_bytes(&start.target.script));
    e.str(&start.target.callable);
    e.str(&start.target.application_group);
    e.bool(start.target.reload_on_change);
    e.bool(start.target.script_mtime_us.is_some());
    if let Some(mtime) = start.target.script_mtime_us {
        e.i64(mtime);
    }
    e.bool(start.has_body);
    e.len(start.environ.entries.len());
    for (key, value) in &start.environ.entries {
        e.common_or_str(key, wsgi_core::environ::common_key_index);
        match value {
            EnvValue::Str(s) => {
                e.u8(TAG_STR);
                e.common_or_str(s, wsgi_core::environ::common_value_index);
            }
            EnvValue::Bool(b) => {
                e.u8(TAG_BOOL);
                e.bool(*b);
            }
            EnvValue::Int(i) => {
                e.u8(TAG_INT);
                e.i64(*i);
            }
            EnvValue::Tuple(items) => {
                e.u8(TAG_TUPLE);
                e.len(items.len());
                for i in items {
                    e.i64(*i);
                }
            }
        }
    }
}

struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    fn bool(&mut self, v: bool) {
        self.buf.push(u8::from(v));
    }

    fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// A length or count. Anything beyond `u32` cannot fit in a frame
    /// anyway; it saturates and the frame is refused as too large.
    fn len(&mut self, n: usize) {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.buf.extend_from_slice(&n.to_be_bytes());
    }

    fn bytes(&mut self, v: &[u8]) {
        self.len(v.len());
        self.buf.extend_from_slice(v);
    }

    fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }

    /// A string that may be a common one: only a `'static` string is looked
    /// up, since the environ builders give the common ones as such.
    #[allow(clippy::ptr_arg)] // whether it is borrowed is the point
    fn common_or_str(&mut self, v: &Cow<'static, str>, common: fn(&[u8]) -> Option<usize>) {
        match v {
            Cow::Borrowed(s) => match common(s.as_bytes()) {
                Some(index) => self.buf.extend_from_slice(&(COMMON_STRING | index as u32).to_be_bytes()),
                None => self.str(s),
            },
            Cow::Owned(s) => self.str(s),
        }
    }
}

#[cfg(unix)]
fn path_bytes(path: &std::path::Path) -> Cow<'_, [u8]> {
    use std::os::unix::ffi::OsStrExt;
    Cow::Borrowed(path.as_os_str().as_bytes())
}

#[cfg(not(unix))]
fn path_bytes(path: &std::path::Path) -> Cow<'_, [u8]> {
    match path.to_string_lossy() {
        Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
        Cow::Owned(s) => Cow::Owned(s.into_bytes()),
    }
}

#[cfg(unix)]
fn path_from_bytes(bytes: &[u8]) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
}

#[cfg(not(unix))]
fn path_from_bytes(bytes: &[u8]) -> Option<PathBuf> {
    std::str::from_utf8(bytes).ok().map(PathBuf::from)
}

// ---------------------------------------------------------------------------
// Decoding

/// Elements preallocated for a list, whatever count it announces.
const MAX_PREALLOC: usize = 1024;

fn decode_payload(kind: FrameKind, payload: &[u8]) -> Result<Frame, ProtocolError> {
    let mut d = Decoder { kind, buf: payload };
    let frame = match kind {
        FrameKind::RequestStart => {
            let request_id = d.u64()?;
            let script = path_from_bytes(d.bytes()?).ok_or_else(|| d.malformed("script path is not valid"))?;
            let callable = d.string()?;
            let application_group = d.string()?;
            let reload_on_change = d.bool()?;
            let script_mtime_us = if d.bool()? { Some(d.i64()?) } else { None };
            let has_body = d.bool()?;
            // An entry is at least a key length, a tag and a one-byte value.
            let count = d.count(4 + 1 + 1)?;
            let mut environ = Environ::for_request();
            let entries = &mut environ.entries;
            entries.reserve(count.min(MAX_PREALLOC));
            for _ in 0..count {
                // Common keys come back as 'static strings: no allocation,
                // and the interpreter caches their Python objects.
                let key = d.common_or_string(&wsgi_core::environ::COMMON_KEYS)?;
                let value = match d.u8()? {
                    TAG_STR => EnvValue::Str(d.common_or_string(&wsgi_core::environ::COMMON_VALUES)?),
                    TAG_BOOL => EnvValue::Bool(d.bool()?),
                    TAG_INT => EnvValue::Int(d.i64()?),
                    TAG_TUPLE => {
                        let n = d.count(8)?;
                        let mut items = Vec::with_capacity(n.min(MAX_PREALLOC));
                        for _ in 0..n {
                            items.push(d.i64()?);
                        }
                        EnvValue::Tuple(items)
                    }
                    _ => return Err(d.malformed("unknown environ value type")),
                };
                entries.push((key, value));
            }
            Frame::RequestStart(RequestStart {
                request_id,
                target: AppTarget { script, callable, application_group, reload_on_change, script_mtime_us },
                environ,
                has_body,
            })
        }
        FrameKind::ResponseStart => {
            let status = d.u16()?;
            let reason = d.string()?;
            let count = d.count(4 + 4)?;
            let mut headers = Vec::with_capacity(count.min(MAX_PREALLOC));
            for _ in 0..count {
                let name = d.string()?;
                let value = d.string()?;
                headers.push((name, value));
            }
            Frame::ResponseStart(ResponseStart { status, reason, headers })
        }
        FrameKind::BodyChunk => Frame::BodyChunk(Bytes::copy_from_slice(d.rest())),
        FrameKind::ResponseChunk => Frame::ResponseChunk(Bytes::copy_from_slice(d.rest())),
        FrameKind::Error => Frame::Error(d.string()?),
        FrameKind::BodyEnd => Frame::BodyEnd,
        FrameKind::ResponseEnd => Frame::ResponseEnd,
        FrameKind::Ping => Frame::Ping,
        FrameKind::Pong => Frame::Pong,
    };
    if !d.buf.is_empty() {
        return Err(d.malformed("trailing bytes after the payload"));
    }
    Ok(frame)
}

struct Decoder<'a> {
    kind: FrameKind,
    buf: &'a [u8],
}

impl<'a> Decoder<'a> {
    fn malformed(&self, reason: &'static str) -> ProtocolError {
        ProtocolError::Malformed { kind: self.kind, reason }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        if self.buf.len() < n {
            return Err(self.malformed("payload ends early"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    fn u8(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.array::<1>()?[0])
    }

    fn bool(&mut self) -> Result<bool, ProtocolError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.malformed("boolean is neither 0 nor 1")),
        }
    }

    fn u16(&mut self) -> Result<u16, ProtocolError> {
        self.array().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Result<u32, ProtocolError> {
        self.array().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Result<u64, ProtocolError> {
        self.array().map(u64::from_be_bytes)
    }

    fn i64(&mut self) -> Result<i64, ProtocolError> {
        self.array().map(i64::from_be_bytes)
    }

    /// A list count, checked against what is left of the payload given
    /// that each element takes at least `min_size` bytes.
    fn count(&mut self, min_size: usize) -> Result<usize, ProtocolError> {
        let count = self.u32()? as usize;
        if count.saturating_mul(min_size) > self.buf.len() {
            return Err(self.malformed("list count exceeds the payload"));
        }
        Ok(count)
    }

    fn bytes(&mut self) -> Result<&'a [u8], ProtocolError> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn string(&mut self) -> Result<String, ProtocolError> {
        let bytes = self.bytes()?;
        self.utf8(bytes)
    }

    fn utf8(&self, bytes: &[u8]) -> Result<String, ProtocolError> {
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(self.malformed("string is not valid UTF-8")),
        }
    }

    /// A string, or the string of `common` it gives by position.
    fn common_or_string(&mut self, common: &[&'static str]) -> Result<Cow<'static, str>, ProtocolError> {
        let n = self.u32()?;
        if n & COMMON_STRING != 0 {
            return match common.get((n & !COMMON_STRING) as usize) {
                Some(s) => Ok(Cow::Borrowed(s)),
                None => Err(self.malformed("unknown common string")),
            };
        }
        let bytes = self.take(n as usize)?;
        self.utf8(bytes).map(Cow::Owned)
    }
}
