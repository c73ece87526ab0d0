//! The PROXY protocol (HAProxy's, versions 1 and 2): the header a load
//! balancer sends at the start of a connection to say which client it
//! carries, read before any HTTP.
//!
//! [`parse`] looks at the bytes received so far and says whether they
//! hold a whole header, how long it is and what it names; a front end
//! reads until it does. Only the connection's addresses are taken: version
//! 2's TLVs are skipped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Version 2's twelve-byte signature.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The longest version 1 header, CRLF included.
const V1_MAX: usize = 107;

/// What the bytes at the start of a connection hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Not enough yet: at least this many bytes in all are needed.
    Incomplete(usize),
    /// A whole header of `length` bytes.
    Header {
        /// How many bytes it takes; the connection's own data follows.
        length: usize,
        /// The client's and the proxy's addresses, as the proxy saw the
        /// client's connection; `None` for a connection the proxy made
        /// itself (v2 `LOCAL`, v1 `UNKNOWN`), which keeps its own
        /// addresses.
        addresses: Option<(SocketAddr, SocketAddr)>,
    },
}

/// Why the bytes are no PROXY header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyHeaderError {
    /// They start with neither version's signature.
    #[error("the connection does not start with a PROXY protocol header")]
    NoHeader,
    /// A version 1 header that breaks its grammar.
    #[error("malformed PROXY protocol v1 header: {0}")]
    V1(&'static str),
    /// A version 2 header that breaks its format.
    #[error("malformed PROXY protocol v2 header: {0}")]
    V2(&'static str),
}

/// Reads a PROXY header (v1 or v2) from the start of `bytes`.
///
/// It never asks for more than the header: at first for the twelve bytes
/// of v2's signature (the shortest v1 header, `PROXY UNKNOWN\r\n`, has
/// fifteen), so that a reader that reads exactly what it is asked for
/// takes none of the connection's own data.
pub fn parse(bytes: &[u8]) -> Result<Parsed, ProxyHeaderError> {
    let prefix = bytes.len().min(V2_SIGNATURE.len());
    if bytes[..prefix] == V2_SIGNATURE[..prefix] {
        return if bytes.len() < V2_SIGNATURE.len() {
            Ok(Parsed::Incomplete(V2_SIGNATURE.len()))
        } else {
            parse_v2(bytes)
        };
    }
    let prefix = bytes.len().min(6);
    if bytes[..prefix] == b"PROXY "[..prefix] {
        return parse_v1(bytes);
    }
    Err(ProxyHeaderError::NoHeader)
}

fn parse_v1(bytes: &[u8]) -> Result<Parsed, ProxyHeaderError> {
    let Some(end) = bytes.windows(2).take(V1_MAX - 1).position(|w| w == b"\r\n") else {
        return if bytes.len() >= V1_MAX {
            Err(ProxyHeaderError::V1("no CRLF within 107 bytes"))
        } else {
            Ok(Parsed::Incomplete(bytes.len() + 1))
        };
    };
    let line = std::str::from_utf8(&bytes[..end]).map_err(|_| ProxyHeaderError::V1("not ASCII"))?;
    let words: Vec<&str> = line.split(' ').collect();
    let length = end + 2;
    match words.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Ok(Parsed::Header { length, addresses: None }),
        ["PROXY", family @ ("TCP4" | "TCP6"), source, destination, source_port, destination_port] => {
            let ip = |text: &str| -> Result<IpAddr, ProxyHeaderError> {
                match *family {
                    "TCP4" => text.parse::<Ipv4Addr>().map(IpAddr::V4),
                    _ => text.parse::<Ipv6Addr>().map(IpAddr::V6),
                }
                .map_err(|_| ProxyHeaderError::V1("an address that is not of its family"))
            };
            let port = |text: &str| -> Result<u16, ProxyHeaderError> {
                // Decimal without leading zeros, as the specification has it.
                if text.is_empty()
                    || (text.len() > 1 && text.starts_with('0'))
                    || !text.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(ProxyHeaderError::V1("a port that is not a decimal number"));
                }
                text.parse().map_err(|_| ProxyHeaderError::V1("a port beyond 65535"))
            };
            let client = SocketAddr::new(ip(source)?, port(source_port)?);
            let proxy = SocketAddr::new(ip(destination)?, port(destination_port)?);
            Ok(Parsed::Header { length, addresses: Some((client, proxy)) })
        }
        _ => Err(ProxyHeaderError::V1("not PROXY TCP4|TCP6|UNKNOWN with two addresses and two ports")),
    }
}

fn parse_v2(bytes: &[u8]) -> Result<Parsed, ProxyHeaderError> {
    if bytes.len() < 16 {
        return Ok(Parsed::Incomplete(16));
    }
    let (version_command, family, declared) = (bytes[12], bytes[13], u16::from_be_bytes([bytes[14], bytes[15]]));
    if version_command >> 4 != 2 {
        return Err(ProxyHeaderError::V2("version is not 2"));
    }
    let length = 16 + usize::from(declared);
    if bytes.len() < length {
        return Ok(Parsed::Incomplete(length));
    }
    let body = &bytes[16..length];
    match version_command & 0x0f {
        // LOCAL: the proxy's own connection (a health check).
        0 => Ok(Parsed::Header { length, addresses: None }),
        1 => {
            let addresses = match family >> 4 {
                // AF_INET
                1 => {
                    let b =
                        body.get(..12).ok_or(ProxyHeaderError::V2("an IPv4 address block shorter than 12 bytes"))?;
                    let ip = |at: usize| IpAddr::V4(Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]));
                    let port = |at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
                    Some((SocketAddr::new(ip(0), port(8)), SocketAddr::new(ip(4), port(10))))
                }
                // AF_INET6
                2 => {
                    let b =
                        body.get(..36).ok_or(ProxyHeaderError::V2("an IPv6 address block shorter than 36 bytes"))?;
                    let ip = |at: usize| {
                        let octets: [u8; 16] = b[at..at + 16].try_into().expect("sixteen bytes");
                        IpAddr::V6(Ipv6Addr::from(octets))
                    };
                    let port = |at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
                    Some((SocketAddr::new(ip(0), port(32)), SocketAddr::new(ip(16), port(34))))
                }
                // AF_UNSPEC, AF_UNIX: no address to take.
                0 | 3 => None,
                _ => return Err(ProxyHeaderError::V2("an unknown address family")),
            };
            Ok(Parsed::Header { length, addresses })
        }
        _ => Err(ProxyHeaderError::V2("an unknown command")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text: &[u8]) -> Result<Parsed, ProxyHeaderError> {
        parse(text)
    }

    #[test]
    fn version_1_names_the_client_and_is_read_to_its_crlf() {
        let bytes = b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\nGET / HTTP/1.1\r\n";
        let client: SocketAddr = "192.0.2.7:56324".parse().unwrap();
        let proxy: SocketAddr = "198.51.100.1:443".parse().unwrap();
        assert_eq!(header(bytes), Ok(Parsed::Header { length: 45, addresses: Some((client, proxy)) }));
        let six = b"PROXY TCP6 2001:db8::1 2001:db8::2 1 80\r\n";
        let Ok(Parsed::Header { addresses: Some((client, _)), .. }) = header(six) else { panic!() };
        assert_eq!(client, "[2001:db8::1]:1".parse().unwrap());
        assert_eq!(header(b"PROXY UNKNOWN\r\n"), Ok(Parsed::Header { length: 15, addresses: None }));
    }

    #[test]
    fn a_partial_header_asks_for_more() {
        assert_eq!(header(b"PROX"), Ok(Parsed::Incomplete(5)));
        assert_eq!(header(b"PROXY TCP4 1.2.3.4"), Ok(Parsed::Incomplete(19)));
        assert_eq!(header(&V2_SIGNATURE[..5]), Ok(Parsed::Incomplete(12)));
        assert_eq!(header(b""), Ok(Parsed::Incomplete(12)));
        assert_eq!(header(V2_SIGNATURE), Ok(Parsed::Incomplete(16)));
    }

    /// Reads as a front end does, exactly what is asked for, and returns
    /// what is left for HTTP.
    fn rest_after_header(stream: &[u8]) -> &[u8] {
        let mut taken = 0;
        loop {
            match parse(&stream[..taken]).expect("a header") {
                Parsed::Incomplete(needed) => taken = needed,
                Parsed::Header { length, .. } => return &stream[length..],
            }
        }
    }

    #[test]
    fn reading_what_is_asked_for_takes_nothing_beyond_the_header() {
        for header in [&b"PROXY UNKNOWN\r\n"[..], b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", &v2(0, 0, &[])] {
            let mut stream = header.to_vec();
            stream.extend_from_slice(b"GET / HTTP/1.1\r\n");
            assert_eq!(rest_after_header(&stream), b"GET / HTTP/1.1\r\n");
        }
    }

    #[test]
    fn malformed_version_1_headers_are_refused() {
        for bad in [
            &b"PROXY TCP4 1.2.3.4 5.6.7.8 01 80\r\n"[..],
            b"PROXY TCP4 1.2.3.4 5.6.7.8 70000 80\r\n",
            b"PROXY TCP4 ::1 5.6.7.8 1 80\r\n",
            b"PROXY TCP5 1.2.3.4 5.6.7.8 1 80\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
            b"GET / HTTP/1.1\r\n",
        ] {
            assert!(header(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(header(&[b'P'; 200]), Err(ProxyHeaderError::NoHeader));
        let mut long = b"PROXY ".to_vec();
        long.extend([b'1'; 200]);
        assert_eq!(header(&long), Err(ProxyHeaderError::V1("no CRLF within 107 bytes")));
    }

    fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut bytes = V2_SIGNATURE.to_vec();
        bytes.extend([0x20 | command, family]);
        bytes.extend((body.len() as u16).to_be_bytes());
        bytes.extend(body);
        bytes
    }

    #[test]
    fn version_2_names_the_client_and_skips_its_tlvs() {
        let mut body = vec![192, 0, 2, 7, 198, 51, 100, 1, 0xdc, 0x04, 0x01, 0xbb];
        body.extend([0x04, 0x00, 0x01, 0xff]); // a TLV, skipped
        let bytes = v2(1, 0x11, &body);
        let client: SocketAddr = "192.0.2.7:56324".parse().unwrap();
        let proxy: SocketAddr = "198.51.100.1:443".parse().unwrap();
        assert_eq!(header(&bytes), Ok(Parsed::Header { length: 32, addresses: Some((client, proxy)) }));
        assert_eq!(header(&bytes[..20]), Ok(Parsed::Incomplete(32)));
        assert_eq!(header(&v2(0, 0, &[])), Ok(Parsed::Header { length: 16, addresses: None }));
        let mut six = [0u8; 36];
        six[15] = 1;
        six[32..34].copy_from_slice(&8080u16.to_be_bytes());
        let Ok(Parsed::Header { addresses: Some((client, _)), .. }) = header(&v2(1, 0x21, &six)) else { panic!() };
        assert_eq!(client, "[::1]:8080".parse().unwrap());
    }

    #[test]
    fn malformed_version_2_headers_are_refused() {
        assert!(header(&v2(1, 0x11, &[1, 2, 3])).is_err());
        assert!(header(&v2(2, 0x11, &[0; 12])).is_err());
        assert!(header(&v2(1, 0x51, &[0; 12])).is_err());
        let mut wrong_version = v2(1, 0x11, &[0; 12]);
        wrong_version[12] = 0x11;
        assert!(header(&wrong_version).is_err());
    }
}
