//! A 200 MB upload read in 64 KB reads is streamed, never buffered whole.
//! (Alone in its test binary so that nothing else moves the RSS.)

mod common;

use std::io::Read;

use common::*;
use md5::{Digest, Md5};
use wsgi_core::RunOutcome;

/// A request body of `len` deterministic bytes, produced on demand.
struct Generated {
    len: u64,
    pos: u64,
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min((self.len - self.pos) as usize);
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = ((self.pos + i as u64) % 251) as u8;
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// The bound on RSS growth, except under `cargo xtask memcheck`, where
/// valgrind's own bookkeeping counts in the resident set.
fn assert_rss_growth_below_20_mib(growth_mib: f64) {
    if std::env::var_os("WSGI_RS_MEMCHECK").is_none() {
        assert!(growth_mib < 20.0, "RSS grew by {growth_mib:.1} MiB");
    }
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_200_mb_upload_grows_rss_by_less_than_20_mb() {
    const LEN: u64 = 200 * 1024 * 1024;
    let scripts = Scripts::new("upload");
    let path = scripts.write(
        "upload.wsgi",
        r#"
import hashlib
def application(environ, start_response):
    inp = environ['wsgi.input']
    digest = hashlib.md5()
    total = 0
    while True:
        chunk = inp.read(65536)
        if not chunk:
            break
        total += len(chunk)
        digest.update(chunk)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [('%d %s' % (total, digest.hexdigest())).encode()]
"#,
    );
    let t = target(&path, "upload");
    let mut expected = Md5::new();
    let mut source = Generated { len: LEN, pos: 0 };
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = source.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        expected.update(&buf[..n]);
    }
    let expected: String = expected.finalize().iter().map(|b| format!("{b:02x}")).collect();

    // Warm up: Python, the group and the script are loaded before measuring.
    let small = run(&t, "POST", "/", b"warm");
    assert_eq!(small.outcome, RunOutcome::Completed, "{}", small.log.text());

    let before = rss_kib();
    let mut env = environ("POST", "/");
    env.set_str("CONTENT_LENGTH", LEN.to_string());
    let mut sink = Recorded::default();
    let log = Log::default();
    let mut body = Generated { len: LEN, pos: 0 };
    let outcome = {
        let mut writer = wsgi_core::ResponseWriter::new(&mut sink, false);
        wsgi_core::WsgiRunner::run(runner(), &t, env, &mut body, &mut writer, &log)
    };
    let after = rss_kib();
    assert_eq!(outcome, RunOutcome::Completed, "{}", log.text());
    assert_eq!(sink.text(), format!("{LEN} {expected}"));
    let growth_mib = after.saturating_sub(before) as f64 / 1024.0;
    eprintln!("RSS before {before} KiB, after {after} KiB, growth {growth_mib:.1} MiB");
    assert_rss_growth_below_20_mib(growth_mib);

    // Read line by line (lines that straddle the 64 KiB reads): the buffer
    // must not keep what was already consumed.
    let lines = scripts.write(
        "lines.wsgi",
        "def application(environ, start_response):\n    n = 0\n    for line in environ['wsgi.input']:\n        n += len(line)\n    start_response('200 OK', [])\n    return [str(n).encode()]\n",
    );
    struct Lines {
        left: u64,
    }
    impl Read for Lines {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.left as usize);
            for (i, b) in buf[..n].iter_mut().enumerate() {
                *b = if (self.left as usize - i).is_multiple_of(4097) { b'\n' } else { b'l' };
            }
            self.left -= n as u64;
            Ok(n)
        }
    }
    let before = rss_kib();
    let mut env = environ("POST", "/");
    env.set_str("CONTENT_LENGTH", LEN.to_string());
    let mut sink = Recorded::default();
    let log = Log::default();
    let outcome = {
        let mut writer = wsgi_core::ResponseWriter::new(&mut sink, false);
        wsgi_core::WsgiRunner::run(
            runner(),
            &target(&lines, "upload"),
            env,
            &mut Lines { left: LEN },
            &mut writer,
            &log,
        )
    };
    let after = rss_kib();
    assert_eq!(outcome, RunOutcome::Completed, "{}", log.text());
    assert_eq!(sink.text(), LEN.to_string());
    let growth_mib = after.saturating_sub(before) as f64 / 1024.0;
    eprintln!("line by line: RSS before {before} KiB, after {after} KiB, growth {growth_mib:.1} MiB");
    assert_rss_growth_below_20_mib(growth_mib);
}
