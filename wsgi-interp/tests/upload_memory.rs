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
    let mut sink = Sink { recorded: Recorded::default(), fail_after: None };
    let log = Log::default();
    let mut body = Generated { len: LEN, pos: 0 };
    let outcome = {
        let mut writer = wsgi_core::ResponseWriter::new(&mut sink, false);
        wsgi_core::WsgiRunner::run(runner(), &t, env, &mut body, &mut writer, &log)
    };
    let after = rss_kib();
    assert_eq!(outcome, RunOutcome::Completed, "{}", log.text());
    assert_eq!(sink.recorded.text(), format!("{LEN} {expected}"));
    let growth_mib = after.saturating_sub(before) as f64 / 1024.0;
    eprintln!("RSS before {before} KiB, after {after} KiB, growth {growth_mib:.1} MiB");
    assert!(growth_mib < 20.0, "RSS grew by {growth_mib:.1} MiB");
}
