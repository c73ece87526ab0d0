//! The daemon wire protocol's frame decoder.
//!
//! Input: one frame as it comes off the wire, or, when the first byte has
//! its top bit set, a frame kind (the low bits) and a payload, for which
//! the target writes the header (so that the fuzzer explores payloads
//! without having to get lengths right).
//!
//! Invariants: a frame that decodes re-encodes to exactly the bytes it was
//! decoded from; `read_frame` and `read_frame_buffered` decode the same
//! bytes to the same frame or the same error; the decoder consumes no byte
//! beyond the frame.

#![no_main]

use std::io::{BufReader, Read};

use libfuzzer_sys::fuzz_target;
use wsgi_daemon::protocol::{read_frame, read_frame_buffered, write_frame, HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    let wire: Vec<u8> = match data.split_first() {
        Some((&first, payload)) if first & 0x80 != 0 => {
            let mut wire = vec![first & 0x7f];
            wire.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            wire.extend_from_slice(payload);
            wire
        }
        _ => data.to_vec(),
    };

    let mut plain = &wire[..];
    let decoded = read_frame(&mut plain);
    let consumed = wire.len() - plain.len();

    // The buffered reader, with a buffer too small for most frames and one
    // large enough for all of them, decodes the same.
    for capacity in [HEADER_LEN + 3, 1 << 16] {
        let mut buffered = BufReader::with_capacity(capacity, &wire[..]);
        let again = read_frame_buffered(&mut buffered);
        match (&decoded, &again) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "read_frame and read_frame_buffered disagree"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            _ => panic!("read_frame gave {decoded:?}, read_frame_buffered gave {again:?}"),
        }
        if decoded.is_ok() {
            let mut rest = Vec::new();
            buffered.read_to_end(&mut rest).unwrap();
            assert_eq!(rest, &wire[consumed..], "read_frame_buffered consumed another length");
        }
    }

    match decoded {
        Ok(Some(frame)) => {
            assert!(consumed >= HEADER_LEN);
            let mut encoded = Vec::new();
            write_frame(&mut encoded, &frame).expect("a decoded frame encodes");
            assert_eq!(encoded, &wire[..consumed], "{frame:?} re-encodes to other bytes");
        }
        Ok(None) => assert!(wire.is_empty(), "a clean end with bytes left"),
        Err(_) => {}
    }
});
