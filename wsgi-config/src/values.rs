//! Argument value types and their parsers, shared by the directives.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

/// Why one directive line is invalid. Displayed in the style of Apache's own
/// messages, always naming the directive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectiveError {
    /// The wrong number of arguments.
    #[error("{directive} takes {expected}")]
    ArgCount {
        /// Canonical directive name.
        directive: &'static str,
        /// What it takes, e.g. "one argument".
        expected: &'static str,
    },
    /// A flag that is not On or Off (or one of the other listed words).
    #[error("{directive} must be one of: {choices} (got '{value}')")]
    NotOneOf {
        /// Canonical directive name.
        directive: &'static str,
        /// The accepted words, as `Off | On`.
        choices: &'static str,
        /// What was given.
        value: String,
    },
    /// A `name=value` word without `=`.
    #[error("{directive}: malformed option '{word}': expected name=value")]
    MalformedOption {
        /// Canonical directive name.
        directive: &'static str,
        /// The offending word.
        word: String,
    },
    /// An option name the directive does not know.
    #[error("{directive}: unknown option '{option}'")]
    UnknownOption {
        /// Canonical directive name.
        directive: &'static str,
        /// The option name.
        option: String,
    },
    /// An option with a value outside its domain.
    #[error("{directive}: invalid value '{value}' for option '{option}': {reason}")]
    InvalidOption {
        /// Canonical directive name.
        directive: &'static str,
        /// The option name.
        option: &'static str,
        /// What was given.
        value: String,
        /// What is expected.
        reason: String,
    },
    /// A directive-level value that is invalid.
    #[error("{directive}: invalid value '{value}': {reason}")]
    InvalidValue {
        /// Canonical directive name.
        directive: &'static str,
        /// What was given.
        value: String,
        /// What is expected.
        reason: String,
    },
    /// A feature the embedded Python does not have: refused rather than
    /// accepted and ignored.
    #[error("{directive} On needs {needs}, which this server does not embed: refused rather than ignored")]
    NeedsPython {
        /// Canonical directive name.
        directive: &'static str,
        /// The Python that has the feature.
        needs: &'static str,
    },
    /// A directive or option this front end would not act on: refused
    /// rather than accepted and ignored (see [`crate::support`]).
    #[error("{directive}: {what} is refused: {why}")]
    Refused {
        /// Canonical directive name.
        directive: &'static str,
        /// What is refused: the directive, an option, a value.
        what: String,
        /// Why.
        why: &'static str,
    },
    /// Any other problem with the line.
    #[error("{directive}: {message}")]
    Other {
        /// Canonical directive name.
        directive: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Parses `On`/`Off` (case-insensitive), as mod_wsgi's flag directives do.
pub fn parse_flag(directive: &'static str, value: &str) -> Result<bool, DirectiveError> {
    if value.eq_ignore_ascii_case("on") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("off") {
        Ok(false)
    } else {
        Err(DirectiveError::NotOneOf { directive, choices: "Off | On", value: value.to_string() })
    }
}

/// Renders a flag as Apache writes it.
pub fn flag_word(value: bool) -> &'static str {
    if value {
        "On"
    } else {
        "Off"
    }
}

/// Parses a whole decimal number and checks it against `min..=max`.
///
/// mod_wsgi uses C `atoi`, which reads `3abc` as 3 and `abc` as 0; we refuse
/// both with a message saying what is expected.
pub fn parse_number<T>(value: &str, min: T, max: T) -> Result<T, String>
where
    T: FromStr + PartialOrd + fmt::Display + Copy,
{
    let expected = || format!("expected a whole number from {min} to {max}");
    let number: T = value.parse().map_err(|_| expected())?;
    if number < min || number > max {
        return Err(expected());
    }
    Ok(number)
}

/// Parses a number of seconds (a whole number) into a [`Duration`].
pub fn parse_seconds(value: &str) -> Result<Duration, String> {
    parse_number(value, 0u64, u64::MAX / 1_000_000).map(Duration::from_secs)
}

/// `WSGIMapHEADToGET`'s three values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapHeadToGet {
    /// Never map HEAD to GET.
    Off,
    /// Always map HEAD to GET.
    On,
    /// Map when an output filter may need the body (mod_wsgi's default).
    Auto,
}

impl fmt::Display for MapHeadToGet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MapHeadToGet::Off => "Off",
            MapHeadToGet::On => "On",
            MapHeadToGet::Auto => "Auto",
        })
    }
}

/// `WSGIPythonHashSeed`: `random` or a fixed seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashSeed {
    /// Let Python choose a random seed per process.
    Random,
    /// A fixed seed, 0 disables hash randomisation.
    Fixed(u32),
}

impl fmt::Display for HashSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HashSeed::Random => f.write_str("random"),
            HashSeed::Fixed(n) => write!(f, "{n}"),
        }
    }
}

/// `WSGIAcceptMutex`'s lock mechanisms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptMutex {
    /// The platform's default mechanism.
    Default,
    /// `flock()`.
    Flock,
    /// `fcntl()` (the value mod_wsgi uses when the directive is absent).
    Fcntl,
    /// System V semaphores.
    SysVSem,
    /// POSIX semaphores.
    PosixSem,
    /// Process-shared pthread mutexes.
    Pthread,
}

impl AcceptMutex {
    const ALL: [(&'static str, AcceptMutex); 6] = [
        ("default", AcceptMutex::Default),
        ("flock", AcceptMutex::Flock),
        ("fcntl", AcceptMutex::Fcntl),
        ("sysvsem", AcceptMutex::SysVSem),
        ("posixsem", AcceptMutex::PosixSem),
        ("pthread", AcceptMutex::Pthread),
    ];

    /// Parses a mechanism name (case-insensitive).
    pub fn parse(value: &str) -> Option<AcceptMutex> {
        Self::ALL.iter().find(|(name, _)| name.eq_ignore_ascii_case(value)).map(|(_, m)| *m)
    }
}

impl fmt::Display for AcceptMutex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = Self::ALL.iter().find(|(_, m)| m == self).map(|(name, _)| *name).unwrap_or("default");
        f.write_str(name)
    }
}

/// An IP address or subnet from `WSGITrustedProxies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpSubnet {
    /// The network address.
    pub address: IpAddr,
    /// The prefix length in bits.
    pub prefix: u8,
}

impl IpSubnet {
    /// Parses `ADDRESS` or `ADDRESS/BITS`. As Apache does, an IPv4 address
    /// may be given partially (`10.1` means `10.1.0.0/16`).
    pub fn parse(word: &str) -> Result<IpSubnet, String> {
        let (address, bits) = match word.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (word, None),
        };
        let (address, implied) = if address.contains(':') {
            let ip: std::net::Ipv6Addr = address.parse().map_err(|_| "not an IP address or subnet".to_string())?;
            (IpAddr::V6(ip), 128)
        } else {
            parse_partial_ipv4(address)?
        };
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match bits {
            Some(b) => parse_number(b, 0u8, max).map_err(|e| format!("bad prefix length: {e}"))?,
            None => implied,
        };
        Ok(IpSubnet { address, prefix })
    }

    /// Whether `ip` lies in this subnet.
    pub fn contains(&self, ip: IpAddr) -> bool {
        fn masked(bits: u128, prefix: u8, width: u8) -> u128 {
            if prefix == 0 {
                0
            } else {
                bits >> (width - prefix)
            }
        }
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u32::from(net).into(), self.prefix, 32) == masked(u32::from(ip).into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), self.prefix, 128) == masked(u128::from(ip), self.prefix, 128)
            }
            (IpAddr::V6(_), IpAddr::V4(v4)) => self.contains(IpAddr::V6(v4.to_ipv6_mapped())),
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().is_some_and(|v4| self.contains(IpAddr::V4(v4))),
        }
    }
}

fn parse_partial_ipv4(address: &str) -> Result<(IpAddr, u8), String> {
    let bad = || "not an IP address or subnet".to_string();
    let parts: Vec<&str> = address.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return Err(bad());
    }
    let mut octets = [0u8; 4];
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        octets[i] = part.parse().map_err(|_| bad())?;
    }
    Ok((IpAddr::from(octets), 8 * parts.len() as u8))
}

impl fmt::Display for IpSubnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// Splits `name=value`, as mod_wsgi's option parser does: the name runs to
/// the first `=`, which must be there, and the name must not be empty.
pub fn split_option(word: &str) -> Option<(&str, &str)> {
    match word.split_once('=') {
        Some((name, value)) if !name.is_empty() => Some((name, value)),
        _ => None,
    }
}

/// The `name=value` word for an option (unquoted: quoting is the job of
/// whoever renders a whole line).
pub fn option_word(name: &str, value: &str) -> String {
    format!("{name}={value}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::quote_word;

    #[test]
    fn flags() {
        assert!(parse_flag("X", "ON").unwrap());
        assert!(!parse_flag("X", "off").unwrap());
        assert_eq!(
            parse_flag("WSGIScriptReloading", "yes").unwrap_err().to_string(),
            "WSGIScriptReloading must be one of: Off | On (got 'yes')"
        );
    }

    #[test]
    fn numbers_are_strict() {
        assert_eq!(parse_number("15", 0u32, 100), Ok(15));
        assert!(parse_number("3abc", 0u32, 100).is_err());
        assert!(parse_number("", 0u32, 100).is_err());
        assert_eq!(parse_number("101", 0u32, 100).unwrap_err(), "expected a whole number from 0 to 100");
        assert!(parse_number("-1", 0u32, 100).is_err());
    }

    #[test]
    fn subnets() {
        let net = IpSubnet::parse("10.1").unwrap();
        assert_eq!(net.to_string(), "10.1.0.0/16");
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        let net = IpSubnet::parse("192.168.0.0/24").unwrap();
        assert!(net.contains("192.168.0.77".parse().unwrap()));
        assert!(net.contains("::ffff:192.168.0.77".parse().unwrap()));
        assert!(IpSubnet::parse("::1").unwrap().contains("::1".parse().unwrap()));
        assert!(IpSubnet::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        for bad in ["", "x", "1.2.3.4.5", "1.2.3.4/33", "300.1.1.1", "1..2"] {
            assert!(IpSubnet::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn option_words_read_back() {
        for (n, v) in [("a", "b"), ("display-name", "my app"), ("x", ""), ("p", "\"q")] {
            let word = quote_word(&option_word(n, v));
            let words = crate::lexer::split_args(&word).unwrap();
            assert_eq!(words, [format!("{n}={v}")]);
        }
    }
}
