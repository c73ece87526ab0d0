//! mod_ssl's protocol and cipher settings in OpenSSL's words, mapped to
//! what a TLS library without OpenSSL offers: TLS 1.2 and 1.3, with the
//! AEAD cipher suites of ECDHE key exchange. What falls outside is an
//! error that names it.

/// A TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// The versions `SSLProtocol` leaves enabled. `all` stands for TLS 1.2
/// and 1.3: the older versions, which Debian's OpenSSL refuses at its
/// default security level anyway, are not offered; enabling one by name is
/// an error.
pub fn protocols(words: &[String]) -> Result<Vec<TlsVersion>, String> {
    let mut enabled: Vec<TlsVersion> = Vec::new();
    for word in words {
        let (action, name) = match word.chars().next() {
            Some('+') => ('+', &word[1..]),
            Some('-') => ('-', &word[1..]),
            _ => ('=', word.as_str()),
        };
        let versions: Vec<TlsVersion> = match name.to_ascii_lowercase().as_str() {
            "all" => vec![TlsVersion::Tls12, TlsVersion::Tls13],
            "tlsv1.2" => vec![TlsVersion::Tls12],
            "tlsv1.3" => vec![TlsVersion::Tls13],
            "sslv2" | "sslv3" | "tlsv1" | "tlsv1.1" if action == '-' => Vec::new(),
            "sslv2" | "sslv3" | "tlsv1" | "tlsv1.1" => {
                return Err(format!("{name} is not offered: the standalone server speaks TLS 1.2 and 1.3"));
            }
            _ => return Err(format!("unknown protocol {name}")),
        };
        match action {
            '=' => enabled = versions,
            '+' => enabled.extend(versions),
            _ => enabled.retain(|v| !versions.contains(v)),
        }
    }
    enabled.sort();
    enabled.dedup();
    if enabled.is_empty() {
        return Err("no protocol is left enabled".into());
    }
    Ok(enabled)
}

/// The TLS 1.2 cipher suites offered, by their IANA names, with OpenSSL's
/// names for them.
pub const TLS12_SUITES: &[(&str, &str)] = &[
    ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"),
    ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"),
    ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"),
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"),
    ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"),
];

/// The TLS 1.3 cipher suites offered (their names are the same in
/// OpenSSL).
pub const TLS13_SUITES: &[&str] = &["TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"];

/// What OpenSSL's cipher keywords select among [`TLS12_SUITES`] (by
/// OpenSSL name); `None` for a keyword that names nothing offered here,
/// which only makes sense excluded (`!aNULL`, `!MD5`, ...).
fn keyword(word: &str) -> Option<Vec<&'static str>> {
    let all = || TLS12_SUITES.iter().map(|(_, name)| *name).collect::<Vec<_>>();
    let with = |part: &str| TLS12_SUITES.iter().map(|(_, n)| *n).filter(|n| n.contains(part)).collect::<Vec<_>>();
    Some(match word {
        "ALL" | "HIGH" | "DEFAULT" | "ECDHE" | "EECDH" | "kEECDH" | "kECDHE" | "AEAD" | "SHA2" | "TLSv1.2" => all(),
        "AESGCM" | "AES" => with("-AES"),
        "AES128" => with("AES128"),
        "AES256" => with("AES256"),
        "CHACHA20" => with("CHACHA20"),
        "ECDSA" | "aECDSA" => with("ECDSA"),
        "RSA" | "aRSA" => with("-RSA-"),
        "SHA256" => with("SHA256"),
        "SHA384" => with("SHA384"),
        _ => return None,
    })
}

/// The TLS 1.2 suites an `SSLCipherSuite` string selects (IANA names, in
/// its order): explicit OpenSSL names, keywords, and exclusions (`!X`,
/// `-X`); `+X` and `@STRENGTH`/`@SECLEVEL` change only the order, which
/// this keeps. A positive name this server does not offer is an error.
pub fn tls12_suites(spec: &str) -> Result<Vec<&'static str>, String> {
    let mut selected: Vec<&'static str> = Vec::new();
    for word in spec.split([':', ',', ' ']).filter(|w| !w.is_empty()) {
        if word.starts_with('@') || word.starts_with('+') {
            continue;
        }
        if let Some(excluded) = word.strip_prefix('!').or_else(|| word.strip_prefix('-')) {
            let names = keyword(excluded)
                .unwrap_or_else(|| TLS12_SUITES.iter().map(|(_, n)| *n).filter(|n| *n == excluded).collect());
            selected.retain(|name| !names.contains(name));
            continue;
        }
        let names = match keyword(word) {
            Some(names) => names,
            None => match TLS12_SUITES.iter().find(|(iana, name)| *name == word || *iana == word) {
                Some((_, name)) => vec![*name],
                None => return Err(format!("cipher {word} is not offered by the standalone server's TLS")),
            },
        };
        for name in names {
            if !selected.contains(&name) {
                selected.push(name);
            }
        }
    }
    if selected.is_empty() {
        return Err("no cipher suite is left".into());
    }
    Ok(selected.iter().filter_map(|name| TLS12_SUITES.iter().find(|(_, n)| n == name).map(|(iana, _)| *iana)).collect())
}

/// The TLS 1.3 suites of `SSLCipherSuite TLSv1.3 ...`, in its order.
pub fn tls13_suites(spec: &str) -> Result<Vec<&'static str>, String> {
    let mut selected = Vec::new();
    for word in spec.split([':', ',', ' ']).filter(|w| !w.is_empty()) {
        match TLS13_SUITES.iter().find(|name| **name == word) {
            Some(name) => selected.push(*name),
            None => return Err(format!("TLS 1.3 cipher {word} is not offered by the standalone server's TLS")),
        }
    }
    if selected.is_empty() {
        return Err("no TLS 1.3 cipher suite is left".into());
    }
    Ok(selected)
}

/// An option of mod_ssl's `SSLOptions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SslOption {
    /// `StdEnvVars`: the TLS variables in the request's environment.
    StdEnvVars,
    /// `ExportCertData`: the certificates too, in PEM.
    ExportCertData,
    /// `FakeBasicAuth`: the client certificate's subject as a Basic user.
    FakeBasicAuth,
    /// `StrictRequire`: `SSLRequire` denies even under `Satisfy any`.
    StrictRequire,
    /// `OptRenegotiate`: renegotiation per directory.
    OptRenegotiate,
    /// `LegacyDNStringFormat`: distinguished names in OpenSSL's old format.
    LegacyDnStringFormat,
}

impl SslOption {
    const ALL: [SslOption; 6] = [
        SslOption::StdEnvVars,
        SslOption::ExportCertData,
        SslOption::FakeBasicAuth,
        SslOption::StrictRequire,
        SslOption::OptRenegotiate,
        SslOption::LegacyDnStringFormat,
    ];

    /// The option's name, as mod_ssl's manual writes it.
    pub fn name(self) -> &'static str {
        match self {
            SslOption::StdEnvVars => "StdEnvVars",
            SslOption::ExportCertData => "ExportCertData",
            SslOption::FakeBasicAuth => "FakeBasicAuth",
            SslOption::StrictRequire => "StrictRequire",
            SslOption::OptRenegotiate => "OptRenegotiate",
            SslOption::LegacyDnStringFormat => "LegacyDNStringFormat",
        }
    }

    /// The option a word names (in any case).
    pub fn from_name(word: &str) -> Option<SslOption> {
        SslOption::ALL.into_iter().find(|o| o.name().eq_ignore_ascii_case(word))
    }
}

/// One `SSLOptions` line. As mod_ssl merges them: a line whose options all
/// carry `+` or `-` changes what the enclosing scope set; a line with a
/// bare option replaces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SslOptionsLine {
    /// Whether the line replaces the enclosing scope's options.
    pub replaces: bool,
    /// The options it sets (bare) or adds (`+`).
    pub add: Vec<SslOption>,
    /// The options it removes (`-`).
    pub remove: Vec<SslOption>,
}

impl SslOptionsLine {
    /// Parses the words of an `SSLOptions` line.
    pub fn parse(words: &[String]) -> Result<SslOptionsLine, String> {
        let mut line = SslOptionsLine { replaces: false, add: Vec::new(), remove: Vec::new() };
        for word in words {
            let (sign, name) = match word.chars().next() {
                Some(sign @ ('+' | '-')) => (Some(sign), &word[1..]),
                _ => (None, word.as_str()),
            };
            let Some(option) = SslOption::from_name(name) else {
                return Err(format!("Illegal option '{name}'"));
            };
            match sign {
                Some('-') => line.remove.push(option),
                Some(_) => line.add.push(option),
                None => {
                    line.replaces = true;
                    line.add.push(option);
                }
            }
        }
        Ok(line)
    }

    /// The line's words, as [`SslOptionsLine::parse`] reads them back.
    pub fn words(&self) -> Vec<String> {
        let sign = if self.replaces { "" } else { "+" };
        let added = self.add.iter().map(|o| format!("{sign}{}", o.name()));
        added.chain(self.remove.iter().map(|o| format!("-{}", o.name()))).collect()
    }
}

/// The options in effect after `lines`, the outermost scope's first.
pub fn effective_ssl_options(lines: &[SslOptionsLine]) -> Vec<SslOption> {
    let mut options: Vec<SslOption> = Vec::new();
    for line in lines {
        if line.replaces {
            options.clear();
        }
        options.extend(&line.add);
        options.retain(|o| !line.remove.contains(o));
        options.sort();
        options.dedup();
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn protocols_follow_mod_ssl_words() {
        assert_eq!(protocols(&words("all -SSLv3")).unwrap(), [TlsVersion::Tls12, TlsVersion::Tls13]);
        assert_eq!(protocols(&words("-all +TLSv1.3")).unwrap(), [TlsVersion::Tls13]);
        assert_eq!(protocols(&words("TLSv1.2")).unwrap(), [TlsVersion::Tls12]);
        assert!(protocols(&words("all +TLSv1.1")).unwrap_err().contains("TLSv1.1"));
        assert!(protocols(&words("-all")).is_err());
    }

    #[test]
    fn cipher_strings_select_the_suites_offered() {
        assert_eq!(tls12_suites("HIGH:!aNULL:!MD5").unwrap().len(), TLS12_SUITES.len());
        assert_eq!(
            tls12_suites("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305").unwrap(),
            ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"]
        );
        assert!(!tls12_suites("HIGH:!CHACHA20").unwrap().iter().any(|s| s.contains("CHACHA20")));
        assert!(tls12_suites("DHE-RSA-AES128-GCM-SHA256").unwrap_err().contains("DHE-RSA-AES128-GCM-SHA256"));
        assert_eq!(tls13_suites("TLS_AES_128_GCM_SHA256").unwrap(), ["TLS_AES_128_GCM_SHA256"]);
        assert!(tls13_suites("TLS_AES_128_CCM_SHA256").is_err());
    }
    #[test]
    fn ssl_options_merge_as_mod_ssl_documents() {
        let line = |text: &str| SslOptionsLine::parse(&words(text)).unwrap();
        let server = line("+StdEnvVars +ExportCertData");
        assert_eq!(
            effective_ssl_options(std::slice::from_ref(&server)),
            [SslOption::StdEnvVars, SslOption::ExportCertData]
        );
        // Signed options change the enclosing scope's; a bare one replaces them.
        assert_eq!(effective_ssl_options(&[server.clone(), line("-ExportCertData")]), [SslOption::StdEnvVars]);
        assert_eq!(effective_ssl_options(&[server, line("StrictRequire")]), [SslOption::StrictRequire]);
        assert_eq!(line("stdenvvars -ExportCertData").words(), ["StdEnvVars", "-ExportCertData"]);
        assert_eq!(SslOptionsLine::parse(&words("+StdEnvVar")).unwrap_err(), "Illegal option 'StdEnvVar'");
    }
}
