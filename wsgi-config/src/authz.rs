//! Access control as Apache 2.4 configures it: mod_authz_core's `Require`
//! lines and `<RequireAll>`/`<RequireAny>`/`<RequireNone>` containers, the
//! way sections merge (`AuthMerging`), and the authentication settings of
//! mod_authn_core, mod_auth_basic and mod_auth_digest.
//!
//! This is the configuration only; wsgi-core evaluates it.

use std::fmt;

use crate::values::IpSubnet;

/// What one `Require` line asks of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    /// `all granted` (true) or `all denied` (false).
    All(bool),
    /// `ip ADDRESS|SUBNET...`.
    Ip(Vec<IpSubnet>),
    /// `host NAME...`: the client's double-reverse host name is one of
    /// them or within one of them.
    Host(Vec<String>),
    /// `local`: the client is this host.
    Local,
    /// `user NAME...`.
    User(Vec<String>),
    /// `valid-user`.
    ValidUser,
    /// `env VARIABLE...`: one of them is set.
    Env(Vec<String>),
    /// `method METHOD...`.
    Method(Vec<String>),
    /// `wsgi-group NAME...` (mod_wsgi's `WSGIAuthGroupScript`), with the
    /// words as written.
    WsgiGroup(Vec<String>),
    /// Another module's provider (`group`, `ldap-user`, `expr`, ...), kept
    /// for the model of Apache's semantics; the standalone server refuses
    /// it.
    Other(String),
}

/// One `Require` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// `Require not ...`.
    pub negated: bool,
    /// What it asks.
    pub provider: Provider,
    /// The words after `Require` (and `not`), as written.
    pub words: Vec<String>,
}

/// How the children of a section combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logic {
    /// All must grant (`<RequireAll>`).
    And,
    /// One must grant (`<RequireAny>`, and the lines of one section).
    Or,
}

/// A `Require` line or a container of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthzNode {
    /// A `Require` line.
    Require(Requirement),
    /// A container.
    Section(AuthzSection),
}

/// `<RequireAll>`, `<RequireAny>`, `<RequireNone>`, or the `Require` lines
/// of one directory section, which combine as `<RequireAny>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzSection {
    /// How the children combine.
    pub logic: Logic,
    /// `<RequireNone>`: granting children deny, and the section never
    /// grants by itself.
    pub negated: bool,
    /// The lines and containers inside, in order.
    pub children: Vec<AuthzNode>,
}

impl AuthzSection {
    /// An empty section of `logic`.
    pub fn new(logic: Logic, negated: bool) -> AuthzSection {
        AuthzSection { logic, negated, children: Vec::new() }
    }

    /// The section a container name opens (`RequireAll`, `RequireAny`,
    /// `RequireNone`, any case), if it is one.
    pub fn for_container(name: &str) -> Option<AuthzSection> {
        match name.to_ascii_lowercase().as_str() {
            "requireall" => Some(AuthzSection::new(Logic::And, false)),
            "requireany" => Some(AuthzSection::new(Logic::Or, false)),
            "requirenone" => Some(AuthzSection::new(Logic::Or, true)),
            _ => None,
        }
    }

    /// Why Apache would refuse this section, as mod_authz_core does: a
    /// negative child of a section that grants when one child grants (it
    /// could never decide), or a section of negative children only.
    pub fn problem(&self) -> Option<String> {
        let negative = |node: &AuthzNode| match node {
            AuthzNode::Require(r) => r.negated,
            AuthzNode::Section(s) => s.negated,
        };
        let name = match (self.logic, self.negated) {
            (Logic::And, _) => "<RequireAll>",
            (Logic::Or, false) => "<RequireAny>",
            (Logic::Or, true) => "<RequireNone>",
        };
        if self.logic == Logic::Or && self.children.iter().any(negative) {
            return Some(format!("negative Require directive has no effect in {name} directive"));
        }
        if !self.children.is_empty() && self.children.iter().all(negative) {
            return Some(format!("{name} directive contains only negative authorization directives"));
        }
        None
    }

    /// The section `AuthMerging And|Or` makes of an outer section and an
    /// inner one.
    pub fn merged(outer: &AuthzSection, inner: &AuthzSection, logic: Logic) -> AuthzSection {
        AuthzSection {
            logic,
            negated: false,
            children: vec![AuthzNode::Section(outer.clone()), AuthzNode::Section(inner.clone())],
        }
    }
}

/// Parses the words of a `Require` line.
pub fn parse_require(args: &[String]) -> Result<Requirement, String> {
    let (negated, words) = match args.split_first() {
        Some((first, rest)) if first.eq_ignore_ascii_case("not") => (true, rest),
        _ => (false, args),
    };
    let Some((name, rest)) = words.split_first() else {
        return Err("Require needs a provider: all, ip, host, local, user, valid-user, env, method, ...".into());
    };
    let rest_vec = || rest.to_vec();
    let needs_words = |what: &str| {
        if rest.is_empty() {
            Err(format!("Require {name} needs at least one {what}"))
        } else {
            Ok(())
        }
    };
    let provider = match name.to_ascii_lowercase().as_str() {
        "all" => match rest {
            [word] if word.eq_ignore_ascii_case("granted") => Provider::All(true),
            [word] if word.eq_ignore_ascii_case("denied") => Provider::All(false),
            _ => return Err("Require all takes `granted` or `denied`".into()),
        },
        "ip" => {
            needs_words("address")?;
            let subnets = rest.iter().map(|w| IpSubnet::parse(w).map_err(|e| format!("Require ip {w}: {e}")));
            Provider::Ip(subnets.collect::<Result<_, _>>()?)
        }
        "host" => {
            needs_words("host name")?;
            Provider::Host(rest.iter().map(|h| h.to_ascii_lowercase()).collect())
        }
        "local" => Provider::Local,
        "user" => {
            needs_words("user")?;
            Provider::User(rest_vec())
        }
        "valid-user" => Provider::ValidUser,
        "env" => {
            needs_words("variable")?;
            Provider::Env(rest_vec())
        }
        "method" => {
            needs_words("method")?;
            Provider::Method(rest.iter().map(|m| m.to_ascii_uppercase()).collect())
        }
        "wsgi-group" => {
            needs_words("group")?;
            Provider::WsgiGroup(rest_vec())
        }
        other => Provider::Other(other.to_string()),
    };
    if negated && matches!(provider, Provider::All(_)) {
        return Err("Require not all ... is not allowed: use `Require all denied` or `Require all granted`".into());
    }
    Ok(Requirement { negated, provider, words: words.to_vec() })
}

/// `AuthMerging`: how a section's authorization combines with the one of
/// the sections outside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMerging {
    /// The inner section's replaces the outer one's (the default).
    Off,
    /// Both must grant.
    And,
    /// Either may grant.
    Or,
}

/// `AuthType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthType {
    /// `None`: no authentication.
    None,
    /// `Basic`: mod_auth_basic.
    Basic,
    /// `Digest`: mod_auth_digest.
    Digest,
}

impl AuthType {
    /// The name in `AUTH_TYPE` and in challenges.
    pub fn name(self) -> &'static str {
        match self {
            AuthType::None => "None",
            AuthType::Basic => "Basic",
            AuthType::Digest => "Digest",
        }
    }
}

/// An authentication provider of `AuthBasicProvider`/`AuthDigestProvider`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthnProvider {
    /// mod_authn_file: `AuthUserFile`.
    File,
    /// mod_wsgi's `WSGIAuthUserScript`.
    Wsgi,
}

impl fmt::Display for AuthnProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthnProvider::File => "file",
            AuthnProvider::Wsgi => "wsgi",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn require_lines_parse_into_providers() {
        assert_eq!(parse_require(&words("all granted")).unwrap().provider, Provider::All(true));
        let not_ip = parse_require(&words("not ip 10.0.0.0/8")).unwrap();
        assert!(not_ip.negated);
        assert!(matches!(not_ip.provider, Provider::Ip(ref s) if s.len() == 1));
        assert_eq!(parse_require(&words("method get POST")).unwrap().provider, Provider::Method(words("GET POST")));
        assert_eq!(parse_require(&words("ldap-group cn=x")).unwrap().provider, Provider::Other("ldap-group".into()));
        assert!(parse_require(&words("all maybe")).is_err());
        assert!(parse_require(&words("not all granted")).is_err());
        assert!(parse_require(&words("user")).is_err());
        assert!(parse_require(&words("ip 300.1.1.1")).is_err());
    }

    #[test]
    fn a_section_of_negative_lines_only_is_a_problem() {
        let mut section = AuthzSection::new(Logic::Or, false);
        section.children.push(AuthzNode::Require(parse_require(&words("not ip 10.1.1.1")).unwrap()));
        assert!(section.problem().unwrap().contains("<RequireAny>"));
        // In an OR section, a negative line is refused even beside others.
        section.children.push(AuthzNode::Require(parse_require(&words("valid-user")).unwrap()));
        assert!(section.problem().is_some());
        let mut all = AuthzSection::new(Logic::And, false);
        all.children.push(AuthzNode::Require(parse_require(&words("not ip 10.1.1.1")).unwrap()));
        assert!(all.problem().unwrap().contains("only negative"));
        all.children.push(AuthzNode::Require(parse_require(&words("valid-user")).unwrap()));
        assert!(all.problem().is_none());
    }
}
