//! Access control as Apache applies it to a request, for a front end that
//! has no Apache: mod_wsgi's `WSGIAccessScript`, mod_authz_core's
//! evaluation of `Require` (without a user, then with the authenticated
//! one), Basic and Digest authentication with the `file` (`AuthUserFile`)
//! and `wsgi` (`WSGIAuthUserScript`) providers, and the 401 and 403
//! answers, in Apache's order and with its results.
//!
//! Python is behind [`AuthScripts`] and host-name lookups behind
//! [`HostNames`]; this module is plain Rust.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use md5::{Digest as _, Md5};
use wsgi_config::authz::{AuthType, AuthzNode, AuthzSection, Logic, Provider, Requirement};
use wsgi_config::directives::ScriptRef;
use wsgi_config::DirSettings;

use crate::{Environ, ErrorLog, LogLevel, RequestHead};

/// What an authentication provider answers (Apache's `authn_status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authn {
    /// The password is right.
    Granted,
    /// The password is right, and the user is to be known by this name.
    GrantedAs(String),
    /// The password is wrong.
    Denied,
    /// For Digest: the user's `MD5(user:realm:password)`, in hex.
    RealmHash(Vec<u8>),
    /// No such user here (the next provider is asked).
    UserNotFound,
    /// The provider failed (logged): 500.
    GeneralError,
}

/// What an authorization provider, or a section of them, answers (Apache's
/// `authz_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authz {
    /// Access is granted.
    Granted,
    /// Access is denied.
    Denied,
    /// Denied for want of a user: authentication may change it.
    DeniedNoUser,
    /// Neither (a negated provider that did not match).
    Neutral,
    /// The provider failed (logged): 500.
    GeneralError,
}

/// What `WSGIAccessScript`'s `allow_access` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostAccess {
    /// `True`.
    Allow,
    /// `False`, or a failure (logged): 403.
    Deny,
    /// `None`: the script does not decide.
    Decline,
}

/// What the Python scripts of a request's access control see of it.
pub struct AuthRequest<'a> {
    /// The request.
    pub head: &'a RequestHead,
    /// Its CGI variables (the scripts get the ones mod_wsgi passes).
    pub environ: &'a Environ,
    /// The settings in effect for it.
    pub settings: &'a DirSettings,
    /// The `ServerName` of the server that answers it.
    pub server_hostname: &'a str,
    /// The file it maps to (or its URL path), for log lines.
    pub filename: &'a str,
    /// What the front end's TLS layer knows of its connection, for
    /// `mod_ssl.is_https` and `mod_ssl.var_lookup`.
    pub ssl: Option<&'a dyn crate::app::SslLookup>,
    /// The error log.
    pub log: &'a dyn ErrorLog,
}

/// mod_wsgi's access, authentication and group scripts, with mod_wsgi's
/// mapping of what they return (wsgi-interp implements it).
pub trait AuthScripts: Send + Sync {
    /// `allow_access(environ, host)`.
    fn allow_access(&self, script: &ScriptRef, request: &AuthRequest<'_>, host: &str) -> HostAccess;
    /// `check_password(environ, user, password)`.
    fn check_password(&self, script: &ScriptRef, request: &AuthRequest<'_>, user: &str, password: &str) -> Authn;
    /// `get_realm_hash(environ, user, realm)`.
    fn get_realm_hash(&self, script: &ScriptRef, request: &AuthRequest<'_>, user: &str, realm: &str) -> Authn;
    /// `groups_for_user(environ, user)`, granted when one of `wanted` is
    /// among them.
    fn groups_for_user(&self, script: &ScriptRef, request: &AuthRequest<'_>, user: &str, wanted: &[String]) -> Authz;
}

/// Host-name lookups for `Require host`.
pub trait HostNames: Send + Sync {
    /// The client's host name, when its reverse lookup names a host whose
    /// forward lookup gives the address back (Apache's double-reverse).
    fn double_reverse(&self, ip: IpAddr) -> Option<String>;
}

/// How a request's access check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessOutcome {
    /// Served, as this user (authenticated with this `AUTH_TYPE`) if any.
    Granted {
        /// `REMOTE_USER`.
        user: Option<String>,
        /// `AUTH_TYPE`.
        auth_type: Option<&'static str>,
    },
    /// Answered with this status (401, 403, 400 or 500) and, for 401,
    /// this `WWW-Authenticate` value.
    Denied {
        /// The status.
        status: u16,
        /// The challenge.
        challenge: Option<String>,
    },
}

impl AccessOutcome {
    fn status(status: u16) -> AccessOutcome {
        AccessOutcome::Denied { status, challenge: None }
    }
}

/// How long a Digest nonce stays valid (mod_auth_digest's
/// `AuthDigestNonceLifetime` default).
const NONCE_LIFETIME: Duration = Duration::from_secs(300);

/// What checks a request's access: the scripts (`None` when this process
/// runs no Python), host lookups, the secret Digest nonces are made with,
/// and `ServerRoot` for relative `AuthUserFile` paths.
pub struct AccessControl<'a> {
    /// mod_wsgi's scripts.
    pub scripts: Option<&'a dyn AuthScripts>,
    /// `Require host` lookups.
    pub hosts: &'a dyn HostNames,
    /// The secret of this server's Digest nonces.
    pub nonce_secret: &'a [u8],
    /// `ServerRoot`.
    pub server_root: &'a Path,
}

impl AccessControl<'_> {
    /// Apache's access phases for `request`: the access script, the
    /// authorization a request without a user gets, and when it needs one,
    /// authentication and authorization with the user.
    pub fn check(&self, request: &AuthRequest<'_>) -> AccessOutcome {
        let settings = request.settings;
        if let Some(script) = &settings.access_script {
            match self.allow_access(script, request) {
                HostAccess::Deny => return AccessOutcome::status(403),
                HostAccess::Allow | HostAccess::Decline => {}
            }
        }
        let auth_type = match &settings.auth_type {
            Some(Ok(AuthType::None)) | None => None,
            Some(Ok(auth_type)) => Some(*auth_type),
            // Refused when the configuration was read.
            Some(Err(_)) => return AccessOutcome::status(500),
        };
        let Some(section) = &settings.authz else {
            if auth_type.is_some() {
                request.log.log(LogLevel::Error, "AuthType configured with no corresponding authorization directives");
                return AccessOutcome::status(500);
            }
            return AccessOutcome::Granted { user: None, auth_type: None };
        };
        match self.evaluate(section, request, None) {
            Authz::Granted => return AccessOutcome::Granted { user: None, auth_type: None },
            Authz::DeniedNoUser => {}
            Authz::Denied | Authz::Neutral => {
                request
                    .log
                    .log(LogLevel::Error, &format!("client denied by server configuration: {}", request.filename));
                return AccessOutcome::status(403);
            }
            Authz::GeneralError => return AccessOutcome::status(500),
        }
        let Some(auth_type) = auth_type else {
            request.log.log(
                LogLevel::Error,
                &format!(
                    "No authentication done but request not allowed without authentication for {}. \
                     Authentication not configured?",
                    request.head.raw_path()
                ),
            );
            return AccessOutcome::status(500);
        };
        let user = match self.authenticate(auth_type, request) {
            Ok(user) => user,
            Err(denied) => return denied,
        };
        match self.evaluate(section, request, Some(&user)) {
            Authz::Granted => AccessOutcome::Granted { user: Some(user), auth_type: Some(auth_type.name()) },
            Authz::GeneralError => AccessOutcome::status(500),
            Authz::Denied | Authz::Neutral | Authz::DeniedNoUser => {
                request.log.log(
                    LogLevel::Error,
                    &format!("user {user}: authorization failure for \"{}\": ", request.head.raw_path()),
                );
                self.challenge(auth_type, request, false)
            }
        }
    }

    fn allow_access(&self, script: &ScriptRef, request: &AuthRequest<'_>) -> HostAccess {
        let Some(scripts) = self.scripts else {
            request.log.log(LogLevel::Error, "mod_wsgi: WSGIAccessScript needs Python in this process");
            return HostAccess::Deny;
        };
        scripts.allow_access(script, request, &request.head.peer.ip().to_string())
    }

    /// mod_authz_core's evaluation of a section for `user`.
    fn evaluate(&self, section: &AuthzSection, request: &AuthRequest<'_>, user: Option<&str>) -> Authz {
        evaluate(section, &mut |requirement| self.provider(requirement, request, user))
    }

    /// One `Require` line's provider, before any `not`.
    fn provider(&self, requirement: &Requirement, request: &AuthRequest<'_>, user: Option<&str>) -> Authz {
        let head = request.head;
        let granted = |yes: bool| if yes { Authz::Granted } else { Authz::Denied };
        match &requirement.provider {
            Provider::All(grant) => granted(*grant),
            Provider::Ip(subnets) => granted(subnets.iter().any(|s| s.contains(head.peer.ip()))),
            Provider::Local => granted(head.peer.ip().is_loopback() || head.peer.ip() == head.local.ip()),
            Provider::Host(names) => {
                let Some(host) = self.hosts.double_reverse(head.peer.ip()) else { return Authz::Denied };
                let host = host.to_ascii_lowercase();
                granted(names.iter().any(|n| host == *n || host.ends_with(&format!(".{}", n.trim_start_matches('.')))))
            }
            // No variable is set before authorization here: mod_env sets
            // its variables after it, in Apache's fixups, and SetEnvIf is
            // not implemented (the standalone server refuses the line).
            Provider::Env(_) => Authz::Denied,
            // Apache's method numbers make HEAD a GET.
            Provider::Method(methods) => {
                let method = if head.method == "HEAD" { "GET" } else { head.method.as_str() };
                granted(methods.iter().any(|m| m == method))
            }
            Provider::User(users) => match user {
                None => Authz::DeniedNoUser,
                Some(user) => granted(users.iter().any(|u| u == user)),
            },
            Provider::ValidUser => match user {
                None => Authz::DeniedNoUser,
                Some(_) => Authz::Granted,
            },
            Provider::WsgiGroup(groups) => match (user, &request.settings.auth_group_script, self.scripts) {
                (None, _, _) => Authz::DeniedNoUser,
                (Some(user), Some(script), Some(scripts)) => scripts.groups_for_user(script, request, user, groups),
                (Some(_), None, _) => {
                    request
                        .log
                        .log(LogLevel::Error, "mod_wsgi: Location of WSGI group authorization script not provided.");
                    Authz::Denied
                }
                (Some(_), Some(_), None) => {
                    request.log.log(LogLevel::Error, "mod_wsgi: WSGIAuthGroupScript needs Python in this process");
                    Authz::Denied
                }
            },
            // Refused when the configuration was read.
            Provider::Other(_) => Authz::GeneralError,
        }
    }

    /// Authenticates the request's credentials; the user, or the answer.
    fn authenticate(&self, auth_type: AuthType, request: &AuthRequest<'_>) -> Result<String, AccessOutcome> {
        let Some(realm) = &request.settings.auth_name else {
            request.log.log(LogLevel::Error, &format!("need AuthName: {}", request.head.raw_path()));
            return Err(AccessOutcome::status(500));
        };
        match auth_type {
            AuthType::Basic => self.basic(request),
            AuthType::Digest => self.digest(realm, request),
            AuthType::None => Err(AccessOutcome::status(500)),
        }
    }

    fn basic(&self, request: &AuthRequest<'_>) -> Result<String, AccessOutcome> {
        let challenge = || self.challenge(AuthType::Basic, request, false);
        let Some(credentials) = request.head.header("authorization") else { return Err(challenge()) };
        let Some((user, password)) = basic_credentials(credentials) else {
            request.log.log(LogLevel::Error, "client used wrong authentication scheme: Basic expected");
            return Err(challenge());
        };
        let answer = self.ask_providers(
            &request.settings.auth_basic_provider,
            request,
            || self.file_password(request, &user, &password),
            |scripts, script| scripts.check_password(script, request, &user, &password),
        );
        match answer {
            Authn::Granted => Ok(user),
            Authn::GrantedAs(name) => Ok(name),
            Authn::Denied | Authn::RealmHash(_) => {
                request.log.log(
                    LogLevel::Error,
                    &format!(
                        "user {user}: authentication failure for \"{}\": Password Mismatch",
                        request.head.raw_path()
                    ),
                );
                Err(challenge())
            }
            Authn::UserNotFound => {
                request.log.log(LogLevel::Error, &format!("user {user} not found: {}", request.head.raw_path()));
                Err(challenge())
            }
            Authn::GeneralError => Err(AccessOutcome::status(500)),
        }
    }

    /// Asks the providers of `configured` (default `file`) in turn until
    /// one knows the user: `file` is mod_authn_file, `wsgi` the
    /// `WSGIAuthUserScript`.
    fn ask_providers(
        &self,
        configured: &Option<Vec<String>>,
        request: &AuthRequest<'_>,
        file: impl Fn() -> Authn,
        script: impl Fn(&dyn AuthScripts, &ScriptRef) -> Authn,
    ) -> Authn {
        let mut answer = Authn::UserNotFound;
        for provider in providers(configured) {
            answer = match provider.as_str() {
                "file" => file(),
                _ => match (&request.settings.auth_user_script, self.scripts) {
                    (Some(path), Some(scripts)) => script(scripts, path),
                    _ => {
                        let missing = "mod_wsgi: Location of WSGI user authentication script not provided.";
                        request.log.log(LogLevel::Error, missing);
                        Authn::GeneralError
                    }
                },
            };
            if answer != Authn::UserNotFound {
                break;
            }
        }
        answer
    }

    /// mod_authn_file's check of a Basic password (Latin-1 text: the
    /// bytes the client sent).
    fn file_password(&self, request: &AuthRequest<'_>, user: &str, password: &str) -> Authn {
        let hash = match self.user_file_entry(request, &[user]) {
            Ok(Some(hash)) => hash,
            Ok(None) => return Authn::UserNotFound,
            Err(()) => return Authn::GeneralError,
        };
        match verify_password(&hash, &crate::route::latin1_bytes(password)) {
            Some(true) => Authn::Granted,
            Some(false) => Authn::Denied,
            None => {
                let why = "the password hash in AuthUserFile is of a kind this server does not check";
                request.log.log(LogLevel::Error, &format!("user {user}: {why}"));
                Authn::Denied
            }
        }
    }

    /// The last field of the `AuthUserFile` line whose first fields are
    /// `keys` (`user` in htpasswd; `user`, `realm` in htdigest), compared
    /// as bytes; `Ok(None)`: no such line.
    fn user_file_entry(&self, request: &AuthRequest<'_>, keys: &[&str]) -> Result<Option<String>, ()> {
        let Some(file) = &request.settings.auth_user_file else {
            request.log.log(LogLevel::Error, "AuthUserFile not specified in the configuration");
            return Err(());
        };
        let path = self.server_root.join(file);
        let bytes = std::fs::read(&path).map_err(|e| {
            request.log.log(LogLevel::Error, &format!("Could not open password file: {}: {e}", path.display()));
        })?;
        let mut prefix = Vec::new();
        for key in keys {
            prefix.extend_from_slice(&crate::route::latin1_bytes(key));
            prefix.push(b':');
        }
        Ok(bytes
            .split(|&b| b == b'\n')
            .filter(|line| !line.starts_with(b"#"))
            .find_map(|line| line.strip_prefix(prefix.as_slice()))
            .map(|rest| String::from_utf8_lossy(rest).trim_end().to_string()))
    }

    fn digest(&self, realm: &str, request: &AuthRequest<'_>) -> Result<String, AccessOutcome> {
        let challenge = |stale| self.challenge(AuthType::Digest, request, stale);
        let Some(header) = request.head.header("authorization") else { return Err(challenge(false)) };
        let Some(params) = DigestParams::parse(header) else {
            request.log.log(LogLevel::Error, "client used wrong authentication scheme: Digest expected");
            return Err(challenge(false));
        };
        if params.uri != request.head.raw_uri {
            request.log.log(
                LogLevel::Error,
                &format!("uri mismatch - <{}> does not match request-uri <{}>", params.uri, request.head.raw_uri),
            );
            return Err(AccessOutcome::status(400));
        }
        if params.realm != realm {
            return Err(challenge(false));
        }
        match check_nonce(&params.nonce, realm, self.nonce_secret, SystemTime::now()) {
            NonceState::Valid => {}
            NonceState::Stale => return Err(challenge(true)),
            NonceState::Invalid => {
                request.log.log(LogLevel::Error, &format!("invalid nonce {} received", params.nonce));
                return Err(challenge(false));
            }
        }
        let user = params.username.clone();
        let answer = self.ask_providers(
            &request.settings.auth_digest_provider,
            request,
            || match self.user_file_entry(request, &[&user, realm]) {
                Ok(Some(hash)) => Authn::RealmHash(hash.into_bytes()),
                Ok(None) => Authn::UserNotFound,
                Err(()) => Authn::GeneralError,
            },
            |scripts, script| scripts.get_realm_hash(script, request, &user, realm),
        );
        match answer {
            Authn::RealmHash(ha1) => {
                let expected = params.expected_response(&String::from_utf8_lossy(&ha1), &request.head.method);
                if constant_time_eq(expected.as_bytes(), params.response.to_ascii_lowercase().as_bytes()) {
                    Ok(user)
                } else {
                    request
                        .log
                        .log(LogLevel::Error, &format!("user {user}: password mismatch: {}", request.head.raw_path()));
                    Err(challenge(false))
                }
            }
            Authn::UserNotFound => {
                request.log.log(
                    LogLevel::Error,
                    &format!("user `{user}' in realm `{realm}' not found: {}", request.head.raw_path()),
                );
                Err(challenge(false))
            }
            Authn::GeneralError => Err(AccessOutcome::status(500)),
            Authn::Granted | Authn::GrantedAs(_) | Authn::Denied => Err(challenge(false)),
        }
    }

    /// A 401 asking for credentials of `auth_type`.
    fn challenge(&self, auth_type: AuthType, request: &AuthRequest<'_>, stale: bool) -> AccessOutcome {
        let raw_realm = request.settings.auth_name.as_deref().unwrap_or_default();
        let realm = raw_realm.replace('"', "\\\"");
        let challenge = match auth_type {
            AuthType::Digest => {
                let nonce = make_nonce(raw_realm, self.nonce_secret, SystemTime::now());
                let stale = if stale { ", stale=true" } else { "" };
                format!("Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\"{stale}")
            }
            _ => format!("Basic realm=\"{realm}\""),
        };
        AccessOutcome::Denied { status: 401, challenge: Some(challenge) }
    }
}

/// The providers of `AuthBasicProvider`/`AuthDigestProvider` (default:
/// `file`).
fn providers(configured: &Option<Vec<String>>) -> Vec<String> {
    configured.clone().unwrap_or_else(|| vec!["file".to_string()])
}

/// mod_authz_core's `check_section`: the children of a section combined
/// by its logic, then negated for `<RequireNone>`; `provider` answers for
/// each `Require` line, before its `not`.
pub fn evaluate(section: &AuthzSection, provider: &mut dyn FnMut(&Requirement) -> Authz) -> Authz {
    let mut result = Authz::Neutral;
    for child in &section.children {
        let child_result = match child {
            AuthzNode::Require(requirement) => negate(requirement.negated, provider(requirement)),
            AuthzNode::Section(inner) => evaluate(inner, provider),
        };
        if child_result == Authz::GeneralError {
            return Authz::GeneralError;
        }
        if child_result == Authz::Neutral {
            continue;
        }
        match section.logic {
            Logic::And => {
                if child_result == Authz::Denied {
                    result = child_result;
                    break;
                }
                if (child_result == Authz::DeniedNoUser && result != Authz::Denied) || result == Authz::Neutral {
                    result = child_result;
                }
            }
            Logic::Or => {
                if child_result == Authz::Granted {
                    result = child_result;
                    break;
                }
                if (child_result == Authz::DeniedNoUser && result == Authz::Denied) || result == Authz::Neutral {
                    result = child_result;
                }
            }
        }
    }
    negate(section.negated, result)
}

/// A negated result: a grant denies, and a denial is neutral, since not
/// being refused is no reason to grant.
fn negate(negated: bool, result: Authz) -> Authz {
    match (negated, result) {
        (false, result) => result,
        (true, Authz::Granted) => Authz::Denied,
        (true, Authz::Denied | Authz::DeniedNoUser) => Authz::Neutral,
        (true, other) => other,
    }
}

/// The user and password of a Basic `Authorization` value.
pub fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    // Latin-1, as the rest of a request head is read.
    let text: String = decoded.iter().map(|&b| char::from(b)).collect();
    let (user, password) = text.split_once(':').unwrap_or((&text, ""));
    Some((user.to_string(), password.to_string()))
}

/// Checks `password` against an htpasswd hash: bcrypt (`$2y$`, `$2a$`,
/// `$2b$`), APR1-MD5 (`$apr1$`, and `$1$`), SHA-1 (`{SHA}`). `None` for a
/// kind of hash this server does not check (crypt(3)'s DES and SHA-2).
pub fn verify_password(hash: &str, password: &[u8]) -> Option<bool> {
    if hash.starts_with("$2y$") || hash.starts_with("$2a$") || hash.starts_with("$2b$") {
        return Some(bcrypt::verify(password, hash).unwrap_or(false));
    }
    if let Some(rest) = hash.strip_prefix("{SHA}") {
        let digest = sha1::Sha1::digest(password);
        let encoded = base64::engine::general_purpose::STANDARD.encode(digest);
        return Some(constant_time_eq(encoded.as_bytes(), rest.as_bytes()));
    }
    for magic in ["$apr1$", "$1$"] {
        if let Some(rest) = hash.strip_prefix(magic) {
            let salt = rest.split('$').next().unwrap_or_default();
            let computed = md5_crypt(password, salt.as_bytes(), magic.as_bytes());
            return Some(constant_time_eq(computed.as_bytes(), hash.as_bytes()));
        }
    }
    None
}

/// The MD5-based crypt of FreeBSD, which APR uses with the magic `$apr1$`.
fn md5_crypt(password: &[u8], salt: &[u8], magic: &[u8]) -> String {
    let salt = &salt[..salt.len().min(8)];
    let mut alternate = Md5::new();
    alternate.update(password);
    alternate.update(salt);
    alternate.update(password);
    let alternate = alternate.finalize();
    let mut context = Md5::new();
    context.update(password);
    context.update(magic);
    context.update(salt);
    let mut left = password.len();
    while left > 0 {
        let n = left.min(16);
        context.update(&alternate[..n]);
        left -= n;
    }
    let mut bits = password.len();
    while bits > 0 {
        if bits & 1 == 1 {
            context.update([0u8]);
        } else {
            context.update(&password[..1.min(password.len())]);
        }
        bits >>= 1;
    }
    let mut digest = context.finalize();
    for round in 0..1000 {
        let mut next = Md5::new();
        if round & 1 == 1 {
            next.update(password);
        } else {
            next.update(digest);
        }
        if round % 3 != 0 {
            next.update(salt);
        }
        if round % 7 != 0 {
            next.update(password);
        }
        if round & 1 == 1 {
            next.update(digest);
        } else {
            next.update(password);
        }
        digest = next.finalize();
    }
    const ITOA64: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = String::new();
    out.push_str(&String::from_utf8_lossy(magic));
    out.push_str(&String::from_utf8_lossy(salt));
    out.push('$');
    let mut push = |value: u32, count: usize| {
        let mut v = value;
        for _ in 0..count {
            out.push(char::from(ITOA64[(v & 0x3f) as usize]));
            v >>= 6;
        }
    };
    let d = |i: usize| u32::from(digest[i]);
    push((d(0) << 16) | (d(6) << 8) | d(12), 4);
    push((d(1) << 16) | (d(7) << 8) | d(13), 4);
    push((d(2) << 16) | (d(8) << 8) | d(14), 4);
    push((d(3) << 16) | (d(9) << 8) | d(15), 4);
    push((d(4) << 16) | (d(10) << 8) | d(5), 4);
    push(d(11), 2);
    out
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn md5_hex(text: &str) -> String {
    Md5::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The parameters of a Digest `Authorization` value.
#[derive(Debug, Default)]
struct DigestParams {
    username: String,
    realm: String,
    nonce: String,
    uri: String,
    response: String,
    qop: Option<String>,
    nc: String,
    cnonce: String,
}

impl DigestParams {
    fn parse(value: &str) -> Option<DigestParams> {
        let (scheme, rest) = value.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("digest") {
            return None;
        }
        let mut params = DigestParams::default();
        let mut chars = rest.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
                chars.next();
            }
            let name: String = chars.by_ref().take_while(|c| *c != '=').collect::<String>().trim().to_ascii_lowercase();
            if name.is_empty() {
                break;
            }
            let value: String = if chars.peek() == Some(&'"') {
                chars.next();
                let mut value = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next()),
                        '"' => break,
                        c => value.push(c),
                    }
                }
                value
            } else {
                chars.by_ref().take_while(|c| *c != ',').collect::<String>().trim().to_string()
            };
            match name.as_str() {
                "username" => params.username = value,
                "realm" => params.realm = value,
                "nonce" => params.nonce = value,
                "uri" => params.uri = value,
                "response" => params.response = value,
                "qop" => params.qop = Some(value),
                "nc" => params.nc = value,
                "cnonce" => params.cnonce = value,
                "algorithm" if !value.eq_ignore_ascii_case("md5") => return None,
                _ => {}
            }
        }
        let complete = !params.username.is_empty() && !params.nonce.is_empty() && !params.response.is_empty();
        let qop_ok = match &params.qop {
            None => true,
            Some(qop) => qop == "auth" && !params.nc.is_empty() && !params.cnonce.is_empty(),
        };
        (complete && qop_ok).then_some(params)
    }

    /// RFC 2617's request-digest for `ha1` (hex) and `method`.
    fn expected_response(&self, ha1: &str, method: &str) -> String {
        let ha2 = md5_hex(&format!("{method}:{}", self.uri));
        match &self.qop {
            Some(qop) => md5_hex(&format!("{ha1}:{}:{}:{}:{qop}:{ha2}", self.nonce, self.nc, self.cnonce)),
            None => md5_hex(&format!("{ha1}:{}:{ha2}", self.nonce)),
        }
    }
}

/// A nonce: the time it was made, and a keyed hash of that time and the
/// realm, so that this server recognises its own.
fn make_nonce(realm: &str, secret: &[u8], now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let stamp = format!("{secs:016x}");
    format!("{stamp}{}", nonce_hash(&stamp, realm, secret))
}

fn nonce_hash(stamp: &str, realm: &str, secret: &[u8]) -> String {
    let mut hasher = Md5::new();
    hasher.update(secret);
    hasher.update(format!(":{stamp}:{realm}").as_bytes());
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, PartialEq, Eq)]
enum NonceState {
    Valid,
    /// Made here, but too long ago: the client retries with a new one.
    Stale,
    Invalid,
}

fn check_nonce(nonce: &str, realm: &str, secret: &[u8], now: SystemTime) -> NonceState {
    let (Some(stamp), Some(hash)) = (nonce.get(..16), nonce.get(16..)) else { return NonceState::Invalid };
    if !constant_time_eq(nonce_hash(stamp, realm, secret).as_bytes(), hash.as_bytes()) {
        return NonceState::Invalid;
    }
    let Ok(made) = u64::from_str_radix(stamp, 16) else { return NonceState::Invalid };
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    // This server makes every nonce, and never ahead of its clock.
    if made > now.saturating_add(1) {
        return NonceState::Invalid;
    }
    if now - made > NONCE_LIFETIME.as_secs() {
        NonceState::Stale
    } else {
        NonceState::Valid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wsgi_config::authz::parse_require;

    fn require(line: &str) -> AuthzNode {
        AuthzNode::Require(parse_require(&line.split_whitespace().map(String::from).collect::<Vec<_>>()).unwrap())
    }

    fn section(logic: Logic, negated: bool, children: Vec<AuthzNode>) -> AuthzSection {
        AuthzSection { logic, negated, children }
    }

    /// Grants `all granted` and `user alice` (for alice), denies the rest.
    fn answer(user: Option<&str>) -> impl FnMut(&Requirement) -> Authz + '_ {
        move |r| match &r.provider {
            Provider::All(grant) => {
                if *grant {
                    Authz::Granted
                } else {
                    Authz::Denied
                }
            }
            Provider::User(users) => match user {
                None => Authz::DeniedNoUser,
                Some(u) => {
                    if users.iter().any(|x| x == u) {
                        Authz::Granted
                    } else {
                        Authz::Denied
                    }
                }
            },
            Provider::ValidUser => {
                if user.is_some() {
                    Authz::Granted
                } else {
                    Authz::DeniedNoUser
                }
            }
            _ => Authz::Denied,
        }
    }

    #[test]
    fn sections_combine_as_mod_authz_core_does() {
        let any = section(Logic::Or, false, vec![require("ip 10.0.0.0/8"), require("user alice")]);
        assert_eq!(evaluate(&any, &mut answer(None)), Authz::DeniedNoUser);
        assert_eq!(evaluate(&any, &mut answer(Some("alice"))), Authz::Granted);
        assert_eq!(evaluate(&any, &mut answer(Some("bob"))), Authz::Denied);
        let all = section(Logic::And, false, vec![require("valid-user"), require("not user bob")]);
        assert_eq!(evaluate(&all, &mut answer(None)), Authz::DeniedNoUser);
        assert_eq!(evaluate(&all, &mut answer(Some("alice"))), Authz::Granted);
        assert_eq!(evaluate(&all, &mut answer(Some("bob"))), Authz::Denied);
        let none = section(Logic::Or, true, vec![require("user bob")]);
        assert_eq!(evaluate(&none, &mut answer(Some("bob"))), Authz::Denied);
        assert_eq!(evaluate(&none, &mut answer(Some("alice"))), Authz::Neutral);
        let denied = section(Logic::Or, false, vec![require("all denied")]);
        assert_eq!(evaluate(&denied, &mut answer(Some("alice"))), Authz::Denied);
    }

    #[test]
    fn htpasswd_hashes_verify() {
        // Made with Apache's htpasswd: -m (APR1), -s (SHA-1), -B (bcrypt).
        assert_eq!(verify_password("$apr1$lZL6V/ci$eIMz/iKDkbtys/uU7LEK00", b"password"), Some(true));
        assert_eq!(verify_password("$apr1$lZL6V/ci$eIMz/iKDkbtys/uU7LEK00", b"passwort"), Some(false));
        assert_eq!(verify_password("{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", b"password"), Some(true));
        let bcrypt = bcrypt::hash("password", 4).unwrap();
        assert_eq!(verify_password(&bcrypt, b"password"), Some(true));
        assert_eq!(verify_password(&bcrypt, b"nope"), Some(false));
        assert_eq!(verify_password("$6$salt$hash", b"password"), None);
    }

    #[test]
    fn basic_credentials_and_digest_parameters_parse() {
        assert_eq!(basic_credentials("Basic YWxpY2U6c2VjcmV0"), Some(("alice".into(), "secret".into())));
        assert_eq!(basic_credentials("Bearer x"), None);
        let params = DigestParams::parse(
            r#"Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .unwrap();
        // RFC 2617's example: HA1 of Mufasa:testrealm@host.com:Circle Of Life.
        let ha1 = md5_hex("Mufasa:testrealm@host.com:Circle Of Life");
        assert_eq!(params.expected_response(&ha1, "GET"), "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn nonces_are_recognised_until_they_go_stale() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let nonce = make_nonce("realm", b"secret", now);
        assert_eq!(check_nonce(&nonce, "realm", b"secret", now), NonceState::Valid);
        assert_eq!(check_nonce(&nonce, "other", b"secret", now), NonceState::Invalid);
        assert_eq!(check_nonce(&nonce, "realm", b"secret", now + Duration::from_secs(301)), NonceState::Stale);
        assert_eq!(check_nonce("short", "realm", b"secret", now), NonceState::Invalid);
        let ahead = make_nonce("realm", b"secret", now + Duration::from_secs(60));
        assert_eq!(check_nonce(&ahead, "realm", b"secret", now), NonceState::Invalid);
    }
}
