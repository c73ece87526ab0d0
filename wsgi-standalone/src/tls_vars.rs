//! mod_ssl's variables for the standalone server's TLS connections: what
//! `mod_ssl.var_lookup` answers access and authentication scripts, and what
//! `SSLOptions +StdEnvVars` and `+ExportCertData` put in the application's
//! environ, with mod_ssl's names and value formats.
//!
//! What only OpenSSL knows is left out, as mod_ssl leaves out a variable it
//! has no value for: `SSL_SESSION_ID` (rustls does not expose one) and the
//! client certificate's variables (no client certificates are asked for;
//! `SSL_CLIENT_VERIFY` is `NONE`).

use std::sync::Arc;

use rustls::server::ServerConnection;
use rustls_pki_types::CertificateDer;
use wsgi_core::app::SslLookup;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate, X509Name};

/// The variables mod_ssl's `StdEnvVars` sets, in its order (those with no
/// value here are skipped, as mod_ssl skips empty ones).
const STANDARD: &[&str] = &[
    "SSL_VERSION_INTERFACE",
    "SSL_VERSION_LIBRARY",
    "SSL_PROTOCOL",
    "SSL_SECURE_RENEG",
    "SSL_COMPRESS_METHOD",
    "SSL_CIPHER",
    "SSL_CIPHER_EXPORT",
    "SSL_CIPHER_USEKEYSIZE",
    "SSL_CIPHER_ALGKEYSIZE",
    "SSL_CLIENT_VERIFY",
    "SSL_SERVER_M_VERSION",
    "SSL_SERVER_M_SERIAL",
    "SSL_SERVER_V_START",
    "SSL_SERVER_V_END",
    "SSL_SERVER_S_DN",
    "SSL_SERVER_I_DN",
    "SSL_SERVER_A_KEY",
    "SSL_SERVER_A_SIG",
    "SSL_SESSION_RESUMED",
];

/// The server certificate's variables, worked out once at start-up.
#[derive(Debug)]
pub struct ServerCertificate {
    /// `SSL_SERVER_*` of the standard list, and the distinguished names'
    /// components and the alternative names `StdEnvVars` adds.
    variables: Vec<(String, String)>,
    /// The names of the components and alternative names among them.
    extracted: Vec<String>,
    /// `SSL_SERVER_CERT`.
    pem: String,
}

impl ServerCertificate {
    /// The variables of the certificate `der`.
    pub fn parse(der: &CertificateDer<'_>) -> Result<ServerCertificate, String> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| format!("cannot read the certificate: {e}"))?;
        let mut variables = vec![
            ("SSL_SERVER_M_VERSION".to_string(), (cert.version().0 + 1).to_string()),
            ("SSL_SERVER_M_SERIAL".to_string(), serial_hex(cert.raw_serial())),
            ("SSL_SERVER_V_START".to_string(), openssl_time(cert.validity().not_before.timestamp())),
            ("SSL_SERVER_V_END".to_string(), openssl_time(cert.validity().not_after.timestamp())),
            ("SSL_SERVER_S_DN".to_string(), rfc2253(cert.subject())),
            ("SSL_SERVER_I_DN".to_string(), rfc2253(cert.issuer())),
            ("SSL_SERVER_A_KEY".to_string(), algorithm_name(&cert.public_key().algorithm.algorithm.to_id_string())),
            ("SSL_SERVER_A_SIG".to_string(), algorithm_name(&cert.signature_algorithm.algorithm.to_id_string())),
        ];
        let mut extracted = Vec::new();
        for (prefix, name) in [("SSL_SERVER_S_DN", cert.subject()), ("SSL_SERVER_I_DN", cert.issuer())] {
            for (key, value) in dn_components(prefix, name) {
                extracted.push(key.clone());
                variables.push((key, value));
            }
        }
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            let (mut dns, mut email) = (0, 0);
            for name in &san.value.general_names {
                // Each kind numbered from 0.
                let (kind, count, value) = match name {
                    GeneralName::DNSName(value) => ("DNS", &mut dns, value),
                    GeneralName::RFC822Name(value) => ("Email", &mut email, value),
                    _ => continue,
                };
                let key = format!("SSL_SERVER_SAN_{kind}_{count}");
                *count += 1;
                extracted.push(key.clone());
                variables.push((key, value.to_string()));
            }
        }
        Ok(ServerCertificate { variables, extracted, pem: pem(der) })
    }

    fn get(&self, name: &str) -> Option<&str> {
        if name == "SSL_SERVER_CERT" {
            return Some(&self.pem);
        }
        self.variables.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

/// What one TLS connection negotiated, as mod_ssl names it.
#[derive(Debug)]
pub struct TlsConnection {
    protocol: &'static str,
    cipher: String,
    key_bits: u32,
    resumed: bool,
    server_name: Option<String>,
    server: Arc<ServerCertificate>,
}

impl TlsConnection {
    /// The facts of `connection`, whose handshake is done, which presented
    /// `server`'s certificate.
    pub fn of(connection: &ServerConnection, server: Arc<ServerCertificate>) -> TlsConnection {
        let protocol = match connection.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            _ => "TLSv1.2",
        };
        let suite = connection.negotiated_cipher_suite().map(|s| s.suite());
        let (cipher, key_bits) = suite.map_or((String::new(), 0), openssl_cipher);
        TlsConnection {
            protocol,
            cipher,
            key_bits,
            resumed: connection.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
            server_name: connection.server_name().map(str::to_string),
            server,
        }
    }

    /// mod_ssl's value of `name`; `None` for what it has no value for.
    fn variable(&self, name: &str) -> Option<String> {
        let text = |s: &str| Some(s.to_string());
        match name {
            "HTTPS" => text("on"),
            "SSL_VERSION_INTERFACE" => Some(format!("mod_wsgi-rs/{}", env!("CARGO_PKG_VERSION"))),
            "SSL_VERSION_LIBRARY" => text("rustls/0.23"),
            "SSL_PROTOCOL" => text(self.protocol),
            // rustls signals secure renegotiation in TLS 1.2 (and never
            // renegotiates); TLS 1.3 has none, as OpenSSL 3.5 reports.
            "SSL_SECURE_RENEG" => text(if self.protocol == "TLSv1.2" { "true" } else { "false" }),
            "SSL_COMPRESS_METHOD" => text("NULL"),
            "SSL_CIPHER" => Some(self.cipher.clone()),
            "SSL_CIPHER_EXPORT" => text("false"),
            "SSL_CIPHER_USEKEYSIZE" | "SSL_CIPHER_ALGKEYSIZE" => Some(self.key_bits.to_string()),
            "SSL_CLIENT_VERIFY" => text("NONE"),
            "SSL_SESSION_RESUMED" => text(if self.resumed { "Resumed" } else { "Initial" }),
            "SSL_TLS_SNI" => self.server_name.clone(),
            _ => self.server.get(name).map(str::to_string),
        }
    }
}

impl SslLookup for TlsConnection {
    fn is_https(&self) -> bool {
        true
    }

    fn var_lookup(&self, name: &[u8]) -> Option<Vec<u8>> {
        let name = std::str::from_utf8(name).unwrap_or_default();
        // mod_ssl answers "" for a variable it has no value for.
        Some(self.variable(name).unwrap_or_default().into_bytes())
    }

    fn environment(&self, standard: bool, certificates: bool) -> Vec<(String, String)> {
        // mod_ssl sets SSL_TLS_SNI whatever the options.
        let mut out: Vec<(String, String)> =
            self.server_name.iter().map(|name| ("SSL_TLS_SNI".to_string(), name.clone())).collect();
        if standard {
            let names = self.server.extracted.iter().map(String::as_str).chain(STANDARD.iter().copied());
            for name in names {
                match self.variable(name) {
                    Some(value) if !value.is_empty() => out.push((name.to_string(), value)),
                    _ => {}
                }
            }
        }
        if certificates {
            // No client certificate is asked for: mod_ssl sets it empty.
            out.push(("SSL_SERVER_CERT".to_string(), self.server.pem.clone()));
            out.push(("SSL_CLIENT_CERT".to_string(), String::new()));
        }
        out
    }
}

/// A plain connection, as mod_ssl answers for one: not HTTPS, and no TLS
/// variable has a value.
#[derive(Debug)]
pub struct PlainConnection;

impl SslLookup for PlainConnection {
    fn is_https(&self) -> bool {
        false
    }

    fn var_lookup(&self, name: &[u8]) -> Option<Vec<u8>> {
        Some(if name == b"HTTPS" { b"off".to_vec() } else { Vec::new() })
    }
}

/// OpenSSL's name of a suite, and its key size in bits. OpenSSL names the
/// TLS 1.3 suites as IANA does.
fn openssl_cipher(suite: rustls::CipherSuite) -> (String, u32) {
    let iana = crate::tls::iana_name(suite);
    let bits = if iana.contains("AES_128") { 128 } else { 256 };
    let name = wsgi_config::tls::TLS12_SUITES
        .iter()
        .find(|(name, _)| *name == iana)
        .map_or(iana.clone(), |(_, openssl)| openssl.to_string());
    (name, bits)
}

/// A serial number as OpenSSL's `BN_bn2hex` writes it: upper-case hex, no
/// leading zero bytes.
fn serial_hex(raw: &[u8]) -> String {
    let start = raw.iter().position(|&b| b != 0).unwrap_or(raw.len().saturating_sub(1));
    raw[start..].iter().map(|b| format!("{b:02X}")).collect()
}

/// A time as OpenSSL's `ASN1_TIME_print` writes it: `Dec  3 11:00:00 2026 GMT`.
fn openssl_time(timestamp: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(timestamp.max(0) as u64);
    let (year, month, day, hour, minute, second, _, _) = crate::dates::civil(time);
    let month = crate::dates::MONTHS[(month - 1) as usize];
    format!("{month} {day:>2} {hour:02}:{minute:02}:{second:02} {year} GMT")
}

/// An attribute's OpenSSL short name (as in distinguished names) and
/// mod_ssl's suffix for its variable, by OID.
fn attribute_names(oid: &str) -> Option<(&'static str, &'static str)> {
    Some(match oid {
        "2.5.4.6" => ("C", "C"),
        "2.5.4.8" => ("ST", "ST"),
        "2.5.4.7" => ("L", "L"),
        "2.5.4.10" => ("O", "O"),
        "2.5.4.11" => ("OU", "OU"),
        "2.5.4.3" => ("CN", "CN"),
        "2.5.4.12" => ("title", "T"),
        "2.5.4.43" => ("initials", "I"),
        "2.5.4.42" => ("GN", "G"),
        "2.5.4.4" => ("SN", "S"),
        "2.5.4.13" => ("description", "D"),
        "0.9.2342.19200300.100.1.1" => ("UID", "UID"),
        "1.2.840.113549.1.9.1" => ("emailAddress", "Email"),
        _ => return None,
    })
}

/// A distinguished name's attributes, in the certificate's order: (OID,
/// value).
fn attributes(name: &X509Name<'_>) -> Vec<(String, String)> {
    name.iter_rdn()
        .flat_map(|rdn| rdn.iter())
        .map(|attribute| {
            let value = attribute
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|_| String::from_utf8_lossy(attribute.attr_value().data).into_owned());
            (attribute.attr_type().to_id_string(), value)
        })
        .collect()
}

/// A distinguished name as mod_ssl writes it (OpenSSL's RFC 2253 form,
/// UTF-8 left unescaped): the last attribute first.
fn rfc2253(name: &X509Name<'_>) -> String {
    let parts: Vec<String> = attributes(name)
        .iter()
        .rev()
        .map(|(oid, value)| {
            let short = attribute_names(oid).map_or(oid.as_str(), |(short, _)| short);
            format!("{short}={}", escape_dn_value(value))
        })
        .collect();
    parts.join(",")
}

fn escape_dn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (index, c) in value.chars().enumerate() {
        let edge = (index == 0 && (c == '#' || c == ' ')) || (index == last && c == ' ');
        if edge || matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `PREFIX_CN`, `PREFIX_O`, ... for each attribute mod_ssl knows, a
/// repeated one numbered from `_1`, as `StdEnvVars` adds them.
fn dn_components(prefix: &str, name: &X509Name<'_>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (oid, value) in attributes(name) {
        let Some((_, suffix)) = attribute_names(&oid) else { continue };
        let base = format!("{prefix}_{suffix}");
        let seen = out.iter().filter(|(key, _)| *key == base || key.starts_with(&format!("{base}_"))).count();
        let key = if seen == 0 { base } else { format!("{base}_{seen}") };
        out.push((key, value));
    }
    out
}

/// OpenSSL's long name of a key or signature algorithm, by OID.
fn algorithm_name(oid: &str) -> String {
    match oid {
        "1.2.840.113549.1.1.1" => "rsaEncryption",
        "1.2.840.10045.2.1" => "id-ecPublicKey",
        "1.3.101.112" => "ED25519",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "rsassaPss",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        other => other,
    }
    .to_string()
}

/// The certificate in PEM, 64 characters a line.
fn pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in encoded.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_written_as_openssl_writes_them() {
        assert_eq!(serial_hex(&[0x00, 0x8a, 0x01]), "8A01");
        assert_eq!(serial_hex(&[0x00]), "00");
        // 2026-12-03 11:00:00 UTC.
        assert_eq!(openssl_time(1_796_295_600), "Dec  3 11:00:00 2026 GMT");
        assert_eq!(escape_dn_value("a,b"), "a\\,b");
        assert_eq!(escape_dn_value(" x "), "\\ x\\ ");
        assert_eq!(
            openssl_cipher(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256),
            ("TLS_AES_128_GCM_SHA256".into(), 128)
        );
        assert_eq!(
            openssl_cipher(rustls::CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256),
            ("ECDHE-RSA-CHACHA20-POLY1305".into(), 256)
        );
        assert!(pem(b"abcd").contains("\nYWJjZA==\n"));
    }
}
