//! The request body reader: the body policy (`check_body`), the limit on
//! a body (`LimitedReader`) and `wsgi.input`'s buffering (`InputBuffer`:
//! `read(n)`, `readline(n)`, iteration), over a body that arrives in reads
//! of any size, delimited by Content-Length or chunked.
//!
//! Input, as text lines:
//!
//! ```text
//! LIMIT CHUNKED-ALLOWED READ-SIZE,READ-SIZE,...
//! OPERATION OPERATION ...
//! Header-Name: value
//! ...
//!
//! BODY
//! ```
//!
//! Operations: `rN` read(N), `r` read(), `lN` readline(N), `l` readline(),
//! `i` the next line of iteration, `L` readlines(), `dN` a read of N bytes
//! straight from the body when nothing is buffered. A chunked body is
//! given in the chunked coding; the harness decodes it into the pieces the
//! HTTP layer hands on (hyper's, in the standalone server).
//!
//! Invariants: the policy's answer agrees with the headers and the limit;
//! what the application reads is, in order, a prefix of the body, all of
//! it when nothing failed; `read(n)` gives `n` bytes unless the body ended;
//! a line holds at most one newline, at its end, and is shorter than asked
//! only at a newline or the end of the body; a body over the limit fails
//! with a 413, a malformed or short one with a 400, and only then.

#![no_main]

use std::io::{self, Read};

use libfuzzer_sys::fuzz_target;
use wsgi_core::body::{body_error_status, check_body, BodyError, BodyKind, InputBuffer, LimitedReader};
use wsgi_core::{RequestHead, Scheme};

/// The body as the HTTP layer hands it on: pieces of at most the given
/// read sizes, then the end or an error.
struct Source {
    data: Vec<u8>,
    at: usize,
    sizes: Vec<usize>,
    reads: usize,
    error: Option<&'static str>,
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.data.len() {
            return match self.error {
                Some(message) => Err(BodyError::malformed(message).into_io_error()),
                None => Ok(0),
            };
        }
        let size = self.sizes[self.reads % self.sizes.len()];
        self.reads += 1;
        let n = buf.len().min(size).min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Decodes a chunked body: the data, and the error if it is malformed.
fn dechunk(mut body: &[u8]) -> (Vec<u8>, Option<&'static str>) {
    let mut out = Vec::new();
    loop {
        let Some(end) = body.iter().position(|&b| b == b'\n') else { return (out, Some("truncated chunk size")) };
        let line = String::from_utf8_lossy(&body[..end]);
        let size = line.trim_end_matches('\r').split(';').next().unwrap_or("").trim().to_string();
        let Ok(size) = usize::from_str_radix(&size, 16) else { return (out, Some("bad chunk size")) };
        body = &body[end + 1..];
        if size == 0 {
            return (out, None);
        }
        if body.len() < size {
            out.extend_from_slice(body);
            return (out, Some("truncated chunk"));
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size..];
        body = body.strip_prefix(b"\r\n").or_else(|| body.strip_prefix(b"\n")).unwrap_or(body);
    }
}

fn number(word: Option<&str>) -> usize {
    word.and_then(|w| w.parse().ok()).unwrap_or(0)
}

fuzz_target!(|data: &[u8]| {
    let (text, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &b""[..]),
    };
    let text = String::from_utf8_lossy(text);
    let mut lines = text.lines();
    let mut control = lines.next().unwrap_or("").split_whitespace();
    let limit = number(control.next()) as u64 % 4096;
    let chunked_allowed = control.next() != Some("0");
    let sizes: Vec<usize> = control
        .next()
        .unwrap_or("")
        .split(',')
        .map(|s| s.parse::<usize>().unwrap_or(usize::MAX).clamp(1, 1 << 20))
        .collect();
    let ops: Vec<String> = lines.next().unwrap_or("").split_whitespace().take(64).map(String::from).collect();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.to_string(), value.trim().to_string()))
        .collect();
    let head = RequestHead {
        method: "POST".into(),
        raw_uri: "/".into(),
        protocol: "HTTP/1.1".into(),
        headers,
        peer: "127.0.0.1:40000".parse().unwrap(),
        local: "127.0.0.1:80".parse().unwrap(),
        scheme: Scheme::Http,
    };

    let has = |name: &str| head.header(name).is_some();
    let (expected, error) = match check_body(&head, limit, chunked_allowed) {
        Err(e) => {
            assert!(matches!(e.status, 400 | 411 | 413 | 501), "{e}");
            assert_eq!(e.status == 411, !chunked_allowed && e.message.contains("WSGIChunkedRequest"), "{e}");
            return;
        }
        Ok(BodyKind::Empty) => {
            assert!(!has("content-length") && !has("transfer-encoding"));
            (Vec::new(), None)
        }
        Ok(BodyKind::Length(n)) => {
            assert!(has("content-length") && !has("transfer-encoding"));
            assert!(limit == 0 || n <= limit, "Content-Length {n} over the limit {limit}");
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if body.len() < n {
                (body.to_vec(), Some("the body ended before its Content-Length"))
            } else {
                (body[..n].to_vec(), None)
            }
        }
        Ok(BodyKind::Chunked) => {
            assert!(chunked_allowed && has("transfer-encoding") && !has("content-length"));
            dechunk(body)
        }
    };
    let over_limit = limit != 0 && expected.len() as u64 > limit;

    let source = Source { data: expected.clone(), at: 0, sizes, reads: 0, error };
    let mut reader = LimitedReader::new(source, limit);
    let mut read = |buf: &mut [u8]| reader.read(buf);
    let mut input = InputBuffer::new();
    let mut seen: Vec<u8> = Vec::new();
    let failed = std::cell::Cell::new(false);

    // Checks an operation's result; whether the body has ended.
    let check = |result: io::Result<Vec<u8>>, seen: &mut Vec<u8>| -> Option<Vec<u8>> {
        match result {
            Ok(got) => {
                seen.extend_from_slice(&got);
                assert!(expected.starts_with(seen), "read bytes that are not the body's");
                Some(got)
            }
            Err(e) => {
                let status = body_error_status(&e);
                if over_limit && status == Some(413) {
                    assert!(seen.len() as u64 <= limit);
                } else {
                    assert!(error.is_some() && status == Some(400), "unexpected failure {e} ({status:?})");
                }
                failed.set(true);
                None
            }
        }
    };

    for op in &ops {
        let Some(first) = op.chars().next() else { continue };
        let (kind, arg) = op.split_at(first.len_utf8());
        let n: Option<usize> = arg.parse().ok().map(|n: usize| n % 100_000);
        let before = seen.len();
        match kind {
            "r" => {
                let limit = n.unwrap_or(usize::MAX);
                if let Some(got) = check(input.read(limit, &mut read), &mut seen) {
                    assert!(got.len() <= limit);
                    if got.len() < limit {
                        assert_eq!(before + got.len(), seen.len());
                        assert!(input.is_done() || failed.get(), "a short read before the end");
                    }
                }
            }
            "l" | "i" | "L" => {
                let limit = if kind == "l" { n.unwrap_or(usize::MAX) } else { usize::MAX };
                loop {
                    let Some(line) = check(input.read_line(limit, &mut read), &mut seen) else { break };
                    assert!(line.len() <= limit);
                    if let Some(pos) = line.iter().position(|&b| b == b'\n') {
                        assert_eq!(pos, line.len() - 1, "a newline inside a line");
                    } else if line.len() < limit {
                        assert!(input.is_done(), "a line cut short before the end of the body");
                    }
                    if kind != "L" || line.is_empty() {
                        break;
                    }
                }
            }
            "d" if input.buffered().is_empty() => {
                let mut buf = vec![0u8; n.unwrap_or(1)];
                let mut filled = 0;
                let result = loop {
                    if filled == buf.len() {
                        break Ok(());
                    }
                    match input.read_direct(&mut buf[filled..], &mut read) {
                        Ok(0) => break Ok(()),
                        Ok(got) => filled += got,
                        Err(e) => break Err(e),
                    }
                };
                check(result.map(|()| buf[..filled].to_vec()), &mut seen);
            }
            _ => {}
        }
    }
    if !failed.get() {
        // What is left, read whole: the body, exactly.
        if check(input.read(usize::MAX, &mut read), &mut seen).is_some() {
            assert_eq!(seen, expected, "the body read is not the body sent");
            assert!(!over_limit, "a body over the limit read in full");
            assert!(error.is_none(), "a malformed body read without failing");
        }
    }
});
