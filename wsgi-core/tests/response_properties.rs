//! Response validation over arbitrary strings: `parse_status`,
//! `validate_header` and `start_response` never panic, and nothing with
//! CR, LF or NUL is ever accepted.

mod support;

use proptest::prelude::*;
use support::cases_or;
use wsgi_core::response::{parse_status, validate_header};
use wsgi_core::testing::RecordingSink;
use wsgi_core::ResponseWriter;

fn has_break(text: &str) -> bool {
    text.contains(['\r', '\n', '\0'])
}

/// Strings that are often almost valid, with line breaks slipped in.
fn tricky() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => any::<String>(),
        2 => "[0-9]{3} [ -~]{0,12}",
        2 => "[A-Za-z-]{1,10}",
        2 => "[ -~]{0,8}(\r|\n|\r\n|\u{0}|\t)[ -~]{0,8}",
    ]
}

proptest! {
    // PROPTEST_CASES, when set, overrides the count (`cargo xtask memcheck` runs
    // fewer cases under valgrind).
    #![proptest_config(ProptestConfig { cases: cases_or(3000), ..ProptestConfig::default() })]

    #[test]
    fn statuses_with_breaks_are_refused(status in tricky()) {
        let parsed = parse_status(&status);
        if has_break(&status) {
            prop_assert!(parsed.is_err(), "{status:?} accepted");
        }
        if let Ok((code, reason)) = parsed {
            prop_assert!((100..=999).contains(&code));
            prop_assert!(!reason.trim().is_empty());
        }
    }

    #[test]
    fn headers_with_breaks_are_refused(name in tricky(), value in tricky()) {
        let checked = validate_header(&name, &value);
        if has_break(&name) || has_break(&value) || name.is_empty() {
            prop_assert!(checked.is_err(), "{name:?}: {value:?} accepted");
        }
    }

    #[test]
    fn start_response_never_emits_breaks(
        status in tricky(),
        headers in proptest::collection::vec((tricky(), tricky()), 0..6),
    ) {
        let mut sink = RecordingSink::default();
        let mut writer = ResponseWriter::new(&mut sink, false);
        let started = writer.start_response(&status, headers.clone(), false);
        if has_break(&status) || headers.iter().any(|(n, v)| has_break(n) || has_break(v)) {
            prop_assert!(started.is_err());
        }
        if started.is_ok() {
            let _ = writer.write(b"body");
            let _ = writer.finish();
        }
        prop_assert!(!has_break(&sink.reason));
        for (name, value) in &sink.headers {
            prop_assert!(!has_break(name) && !has_break(value));
        }
    }
}
