//! TLS with rustls, as mod_ssl configures it: a listening address speaks
//! TLS when its servers have `SSLEngine on` (or its `Listen` line says
//! `https`); each of them brings its certificate, chosen by the name the
//! client asks for (SNI), the first being the default; `SSLProtocol`,
//! `SSLCipherSuite` and `SSLHonorCipherOrder` of that first server set
//! what the address offers, and its `Protocols` whether HTTP/2 is.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::crypto::ring as provider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, SupportedCipherSuite};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use wsgi_config::tls::TlsVersion;
use wsgi_config::{Config, Server};

use crate::tls_vars::{ServerCertificate, TlsConnection};

/// How an address speaks TLS: rustls's configuration, and the variables
/// of the certificates it presents.
pub struct TlsSetup {
    /// rustls's configuration.
    pub config: Arc<ServerConfig>,
    certificates: Arc<BySni>,
}

impl TlsSetup {
    /// The facts of a connection whose handshake is done.
    pub fn connection(&self, connection: &rustls::ServerConnection) -> TlsConnection {
        let wanted = connection.server_name().map(str::to_ascii_lowercase);
        TlsConnection::of(connection, self.certificates.site(wanted.as_deref()).variables.clone())
    }
}

/// The TLS setup of the address `local`, if it speaks TLS: `https` says
/// whether its `Listen` line asked for it.
pub fn server_config(config: &Config, local: SocketAddr, https: bool, h2: bool) -> Result<Option<TlsSetup>, String> {
    let servers = config.servers_at(local);
    let secured: Vec<&Server> =
        servers.iter().copied().filter(|s| config.ssl_settings(s).engine == Some(true)).collect();
    if secured.is_empty() {
        return if https {
            Err(format!("Listen {local} https: no server on this address has SSLEngine on"))
        } else {
            Ok(None)
        };
    }
    if secured.len() != servers.len() {
        return Err(format!(
            "{local}: some of its servers have SSLEngine on and some not; one address speaks one protocol"
        ));
    }
    let mut sites = Vec::new();
    for server in &secured {
        let key = certified_key(config, server)?;
        let variables = Arc::new(ServerCertificate::parse(&key.cert[0])?);
        let mut names: Vec<String> = server.host_name().into_iter().collect();
        names.extend(server.server_aliases.iter().map(|a| a.to_ascii_lowercase()));
        sites.push(Site { names, key, variables });
    }
    let certificates = Arc::new(BySni { sites });
    let first = config.ssl_settings(secured[0]);
    let versions = wsgi_config::tls::protocols(first.protocol.as_deref().unwrap_or(&["all".to_string()]))?;
    let mut suites: Vec<SupportedCipherSuite> = Vec::new();
    if versions.contains(&TlsVersion::Tls13) {
        let names = match &first.cipher_suite_tls13 {
            Some(spec) => wsgi_config::tls::tls13_suites(spec)?,
            None => wsgi_config::tls::TLS13_SUITES.to_vec(),
        };
        suites.extend(names.iter().filter_map(|name| suite(name)));
    }
    if versions.contains(&TlsVersion::Tls12) {
        let names = match &first.cipher_suite {
            Some(spec) => wsgi_config::tls::tls12_suites(spec)?,
            None => wsgi_config::tls::TLS12_SUITES.iter().map(|(iana, _)| *iana).collect(),
        };
        suites.extend(names.iter().filter_map(|name| suite(name)));
    }
    let provider = rustls::crypto::CryptoProvider { cipher_suites: suites, ..provider::default_provider() };
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = versions
        .iter()
        .map(|v| match v {
            TlsVersion::Tls12 => &rustls::version::TLS12,
            TlsVersion::Tls13 => &rustls::version::TLS13,
        })
        .collect();
    let mut server_config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("{local}: TLS setup: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(certificates.clone());
    server_config.ignore_client_order = first.honor_cipher_order == Some(true);
    // `Protocols h2`: HTTP/2 for the clients that ask for it by ALPN.
    server_config.alpn_protocols =
        if h2 { vec![b"h2".to_vec(), b"http/1.1".to_vec()] } else { vec![b"http/1.1".to_vec()] };
    Ok(Some(TlsSetup { config: Arc::new(server_config), certificates }))
}

/// A suite by its IANA name.
fn suite(name: &str) -> Option<SupportedCipherSuite> {
    provider::ALL_CIPHER_SUITES.iter().find(|s| iana_name(s.suite()) == name).copied()
}

/// The IANA name of a suite (rustls names the TLS 1.3 ones `TLS13_...`).
pub(crate) fn iana_name(suite: rustls::CipherSuite) -> String {
    let name = format!("{suite:?}");
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name,
    }
}

/// The certificate, chain and key of `server`.
fn certified_key(config: &Config, server: &Server) -> Result<Arc<CertifiedKey>, String> {
    let settings = config.ssl_settings(server);
    let name = server.host_name().unwrap_or_else(|| "the main server".to_string());
    let Some(cert_file) = settings.certificate_file else {
        return Err(format!("{name}: SSLEngine on needs SSLCertificateFile"));
    };
    let mut chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_file)
        .map_err(|e| format!("SSLCertificateFile {cert_file}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("SSLCertificateFile {cert_file}: {e}"))?;
    if let Some(chain_file) = &settings.certificate_chain_file {
        let more: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(chain_file)
            .map_err(|e| format!("SSLCertificateChainFile {chain_file}: {e}"))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("SSLCertificateChainFile {chain_file}: {e}"))?;
        chain.extend(more);
    }
    if chain.is_empty() {
        return Err(format!("SSLCertificateFile {cert_file}: no certificate in it"));
    }
    // As mod_ssl allows, the key may sit in the certificate's file.
    let key_file = settings.certificate_key_file.unwrap_or_else(|| cert_file.clone());
    let key = PrivateKeyDer::from_pem_file(&key_file).map_err(|e| format!("SSLCertificateKeyFile {key_file}: {e}"))?;
    let signing =
        provider::sign::any_supported_type(&key).map_err(|e| format!("SSLCertificateKeyFile {key_file}: {e}"))?;
    Ok(Arc::new(CertifiedKey::new(chain, signing)))
}

/// Picks the certificate of the server the client names, else the
/// address's first server's, as Apache picks the default virtual host.
#[derive(Debug)]
struct BySni {
    /// Each server's names, key and certificate variables.
    sites: Vec<Site>,
}

/// One server's TLS identity.
#[derive(Debug)]
struct Site {
    /// `ServerName`, and `ServerAlias` patterns, lower-cased.
    names: Vec<String>,
    key: Arc<CertifiedKey>,
    variables: Arc<ServerCertificate>,
}

impl BySni {
    /// The site named `wanted` (lower-cased), else the first: there is
    /// one, as an address without a secured server has no TLS setup.
    fn site(&self, wanted: Option<&str>) -> &Site {
        let named = wanted.and_then(|wanted| {
            self.sites.iter().find(|site| site.names.iter().any(|name| name == wanted || glob_matches(name, wanted)))
        });
        named.unwrap_or(&self.sites[0])
    }
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let wanted = hello.server_name().map(str::to_ascii_lowercase);
        Some(self.site(wanted.as_deref()).key.clone())
    }
}

/// `ServerAlias`'s wildcards: `*` for any run of characters, `?` for one.
fn glob_matches(pattern: &str, name: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return false;
    }
    fn matches(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => matches(&p[1..], n) || (!n.is_empty() && matches(p, &n[1..])),
            (Some(b'?'), Some(_)) => matches(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => matches(&p[1..], &n[1..]),
            _ => false,
        }
    }
    matches(pattern.as_bytes(), name.as_bytes())
}
