//! The response rules: `start_response` (status, headers, `exc_info`),
//! the head going out, Content-Length truncation, HEAD, 204 and 304, and
//! the error page of a failed application (`wsgi_core::ResponseWriter`).
//!
//! Input: a first line `HEAD` for a HEAD request, then one operation a
//! line, as an application's calls:
//!
//! ```text
//! S 200 OK              start_response("200 OK", headers)
//! X 500 Oops            start_response(..., exc_info)
//! H Name: value         a header of the start_response above
//! W text                write(b"text"); `W` alone writes b""
//! B 12                  write 12 bytes
//! F                     flush
//! Z                     the application returned: finish
//! E                     the application failed: fail
//! ```
//!
//! Invariants: the sink gets at most one head, before any body, and never
//! a status or header with CR, LF or another control character (nor a
//! header name that is not a token); the head sent is the last one
//! `start_response` accepted, or the error page; `start_response` accepts
//! only what the status and header rules accept and refuses a second call
//! without `exc_info`; the body sent is what was written, cut at the
//! declared Content-Length, and nothing for HEAD, 204 and 304; nothing
//! follows the end.

#![no_main]

use std::io;

use libfuzzer_sys::fuzz_target;
use wsgi_core::response::{parse_status, validate_header, StartResponseError};
use wsgi_core::{ResponseSink, ResponseWriter};

#[derive(Default)]
struct CheckingSink {
    head: Option<(u16, String, Vec<(String, String)>)>,
    body: Vec<u8>,
    finished: bool,
}

impl ResponseSink for CheckingSink {
    fn send_head(&mut self, status: u16, reason: &str, headers: &[(String, String)]) -> io::Result<()> {
        assert!(self.head.is_none(), "a second head");
        assert!((100..=999).contains(&status), "status {status}");
        assert!(!reason.is_empty() && !reason.chars().any(char::is_control), "reason {reason:?}");
        for (name, value) in headers {
            assert!(
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && !b":()<>@,;\\\"/[]?={}".contains(&b))
            );
            assert!(!value.chars().any(|c| c.is_control() && c != '\t'), "header {name}: {value:?}");
        }
        self.head = Some((status, reason.to_string(), headers.to_vec()));
        Ok(())
    }

    fn send_body(&mut self, chunk: &[u8]) -> io::Result<()> {
        assert!(self.head.is_some(), "body before the head");
        assert!(!self.finished, "body after the end");
        assert!(!chunk.is_empty(), "an empty chunk reached the sink");
        self.body.extend_from_slice(chunk);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        assert!(self.head.is_some(), "a flush before the head");
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        assert!(self.head.is_some(), "the end before the head");
        assert!(!self.finished, "the end twice");
        self.finished = true;
        Ok(())
    }
}

/// The status and headers of an accepted `start_response`.
type Start = (String, Vec<(String, String)>);

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n').peekable();
    let head_only = lines.peek() == Some(&"HEAD");
    if head_only {
        lines.next();
    }
    let mut sink = CheckingSink::default();
    let mut writer = ResponseWriter::new(&mut sink, head_only);
    let mut accepted: Option<Start> = None;
    let mut written = 0usize;
    let mut failed_page = false;
    let mut ended = false;
    let lines: Vec<&str> = lines.take(200).collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        let (op, arg) = (line.get(..1).unwrap_or(""), line.get(2..).unwrap_or(""));
        if ended {
            break;
        }
        match op {
            "S" | "X" => {
                let mut headers = Vec::new();
                while i < lines.len() && lines[i].starts_with("H ") {
                    let (name, value) = lines[i][2..].split_once(':').unwrap_or((&lines[i][2..], ""));
                    headers.push((name.to_string(), value.trim_start().to_string()));
                    i += 1;
                }
                let exc = op == "X";
                let started = writer.started();
                let sent = writer.head_sent();
                match writer.start_response(arg, headers.clone(), exc) {
                    Ok(()) => {
                        assert!(!started || exc, "a second start_response without exc_info accepted");
                        assert!(!sent, "start_response accepted after the head went out");
                        assert!(parse_status(arg).is_ok());
                        assert!(headers.iter().all(|(n, v)| validate_header(n, v).is_ok()));
                        accepted = Some((arg.to_string(), headers));
                    }
                    Err(StartResponseError::AlreadyCalled) => assert!(started && !exc),
                    Err(StartResponseError::HeadersSent) => assert!(sent && exc),
                    Err(StartResponseError::InvalidStatus(_)) => assert!(parse_status(arg).is_err()),
                    Err(StartResponseError::InvalidHeader { .. }) => {}
                }
            }
            "W" | "B" => {
                let chunk = if op == "W" {
                    arg.as_bytes().to_vec()
                } else {
                    vec![b'x'; arg.trim().parse::<usize>().unwrap_or(0) % 70_000]
                };
                match writer.write(&chunk) {
                    Ok(()) => written += chunk.len(),
                    Err(_) => assert!(!writer.started(), "a write failed with a started response"),
                }
            }
            "F" => writer.flush().expect("a flush fails only when the sink does"),
            "Z" => {
                let result = writer.finish();
                assert_eq!(result.is_ok(), accepted.is_some(), "finish: {result:?}");
                ended = true;
            }
            "E" => {
                let sent_before = writer.head_sent();
                let page = writer.fail().expect("fail fails only when the sink does");
                assert_eq!(page, !sent_before);
                failed_page = page;
                ended = true;
            }
            _ => {}
        }
    }
    let summary = writer.summary();
    drop(writer);

    let Some((status, reason, headers)) = &sink.head else {
        assert!(sink.body.is_empty());
        return;
    };
    let declared = headers
        .iter()
        .rev()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<u64>().ok());
    if failed_page {
        assert_eq!(*status, 500);
        if head_only {
            assert!(sink.body.is_empty() && declared.is_some_and(|d| d > 0));
        } else {
            assert_eq!(declared, Some(sink.body.len() as u64), "the error page's Content-Length");
        }
        return;
    }
    let (given_status, given_headers) = accepted.expect("a head without an accepted start_response");
    assert_eq!(format!("{status} {reason}"), given_status, "the head sent is not the one accepted");
    assert_eq!(headers, &given_headers);
    assert_eq!(summary.body_bytes, sink.body.len() as u64);
    let body_expected = if head_only || matches!(status, 204 | 304) {
        0
    } else {
        declared.map_or(written as u64, |d| d.min(written as u64))
    };
    assert_eq!(sink.body.len() as u64, body_expected, "written {written}, declared {declared:?}");
});
