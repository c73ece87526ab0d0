//! Environ building over arbitrary requests: it never panics, keys are
//! unique, every `HTTP_*` key is `^HTTP_[A-Z0-9_]+$`, `Proxy` never
//! reaches the application, and `Authorization` does exactly when
//! `WSGIPassAuthorization` is On.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use proptest::prelude::*;
use support::cases_or;
use wsgi_config::values::IpSubnet;
use wsgi_config::DirSettings;
use wsgi_core::environ_build::{
    build_environ, AppNames, EnvironInputs, RequestStats, ServerFacts, Versions, WsgiFlags, INTERPRETER_KEYS,
};
use wsgi_core::route::RouteMatch;
use wsgi_core::{Environ, RequestHead, Scheme};

const NAMES: &[&str] = &[
    "Proxy",
    "proxy",
    "PROXY",
    "Authorization",
    "authorization",
    "AUTHORIZATION",
    "Proxy-Authorization",
    "Host",
    "Content-Type",
    "content-length",
    "X-Forwarded-For",
    "X-Real-IP",
    "X-Client-IP",
    "X-Forwarded-Host",
    "X-Host",
    "X-Forwarded-Proto",
    "X-Forwarded-SSL",
    "X-Forwarded-Port",
    "X-Forwarded-Server",
    "X-Script-Name",
    "Cookie",
    "Proxy_",
    "Authorization ",
    "X_Forwarded_For",
    "X-Forwarded-For:",
    "",
];

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(NAMES).prop_map(str::to_string),
        3 => "[A-Za-z0-9-]{1,12}",
        1 => any::<String>(),
    ]
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[ -~]{0,24}",
        1 => "(10\\.0\\.0\\.[0-9]|192\\.0\\.2\\.[0-9]|garbage|)(, ?(10\\.0\\.0\\.[0-9]|203\\.0\\.113\\.[0-9]|::1)){0,3}",
        1 => any::<String>(),
    ]
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
        Just(IpAddr::from([10, 0, 0, 1])),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    method: String,
    raw_uri: String,
    headers: Vec<(String, String)>,
    peer: SocketAddr,
    scheme: Scheme,
    script_name: String,
    path_info: String,
    pass_authorization: bool,
    trusted_headers: Option<Vec<String>>,
    trusted_proxies: Option<Vec<String>>,
}

fn case() -> impl Strategy<Value = Case> {
    let trusted_headers = proptest::option::of(proptest::collection::vec(
        proptest::sample::select(&NAMES[10..21]).prop_map(str::to_string),
        0..5,
    ));
    let trusted_proxies = proptest::option::of(proptest::collection::vec(
        proptest::sample::select(&["10.0.0.0/8", "192.0.2.1", "::1", "0.0.0.0/0"][..]).prop_map(str::to_string),
        0..3,
    ));
    (
        (any::<String>(), any::<String>(), proptest::collection::vec((header_name(), header_value()), 0..12)),
        (ip(), any::<u16>(), any::<bool>(), any::<String>(), any::<String>()),
        (any::<bool>(), trusted_headers, trusted_proxies),
    )
        .prop_map(
            |(
                (method, raw_uri, headers),
                (peer, port, https, script_name, path_info),
                (pass_authorization, trusted_headers, trusted_proxies),
            )| Case {
                method,
                raw_uri,
                headers,
                peer: SocketAddr::new(peer, port),
                scheme: if https { Scheme::Https } else { Scheme::Http },
                script_name,
                path_info,
                pass_authorization,
                trusted_headers,
                trusted_proxies,
            },
        )
}

fn build(case: &Case) -> Environ {
    let head = RequestHead {
        method: case.method.clone(),
        raw_uri: case.raw_uri.clone(),
        protocol: "HTTP/1.1".into(),
        headers: case.headers.clone(),
        peer: case.peer,
        local: "192.0.2.1:443".parse().unwrap(),
        scheme: case.scheme,
    };
    let route = RouteMatch {
        alias_index: 0,
        script_filename: PathBuf::from("/srv/app.wsgi"),
        script_name: case.script_name.clone(),
        path_info: case.path_info.clone(),
    };
    let settings = DirSettings {
        pass_authorization: Some(case.pass_authorization),
        trusted_proxy_headers: case.trusted_headers.clone(),
        trusted_proxies: case
            .trusted_proxies
            .as_ref()
            .map(|list| list.iter().map(|s| IpSubnet::parse(s).unwrap()).collect()),
        ..DirSettings::default()
    };
    let inputs = EnvironInputs {
        head: &head,
        route: &route,
        settings: &settings,
        pass_authorization: None,
        router: None,
        server: ServerFacts {
            server_hostname: "www.example.com",
            document_root: "/var/www/html",
            server_admin: None,
            server_software: "Apache",
            listener_host: "",
            listener_port: 443,
        },
        names: AppNames {
            process_group: "",
            application_group: "",
            callable_object: "application",
            request_handler: "wsgi-script",
            handler_script: "",
        },
        flags: WsgiFlags::embedded(true, true),
        stats: RequestStats {
            request_id: "id",
            request_start_us: 0,
            script_start_us: 0,
            thread_id: 1,
            thread_requests: 0,
            total_requests: 0,
        },
        versions: Versions { mod_wsgi: (4, 9, 4), apache: None },
        daemon: None,
        content_filters: false,
    };
    build_environ(&inputs)
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

proptest! {
    // PROPTEST_CASES, when set, overrides the count (`cargo xtask memcheck` runs
    // fewer cases under valgrind).
    #![proptest_config(ProptestConfig { cases: cases_or(2000), ..ProptestConfig::default() })]

    #[test]
    fn environ_rules_hold_for_any_request(case in case()) {
        let environ = build(&case);
        let http_key = regex::Regex::new("^HTTP_[A-Z0-9_]+$").unwrap();
        let mut keys: Vec<&str> = environ.entries.iter().map(|(k, _)| k.as_ref()).collect();
        for key in &keys {
            if key.starts_with("HTTP") {
                prop_assert!(http_key.is_match(key), "bad key {key:?}");
            }
            prop_assert!(!INTERPRETER_KEYS.contains(key));
        }
        let total = keys.len();
        keys.sort_unstable();
        keys.dedup();
        prop_assert_eq!(keys.len(), total, "keys are unique");

        prop_assert!(environ.get("HTTP_PROXY").is_none());
        prop_assert!(environ.get("HTTP_PROXY_AUTHORIZATION").is_none());
        prop_assert!(environ.get("HTTPS").is_none());

        let authorization: Vec<&str> = case
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| v.as_str())
            .collect();
        if case.pass_authorization && !authorization.is_empty() {
            let joined = authorization.join(", ");
            prop_assert_eq!(environ.get_str("HTTP_AUTHORIZATION"), Some(joined.as_str()));
        } else {
            prop_assert!(environ.get("HTTP_AUTHORIZATION").is_none());
        }

        let scheme = environ.get_str("wsgi.url_scheme");
        prop_assert!(scheme == Some("http") || scheme == Some("https"));
        if case.trusted_headers.is_none() {
            prop_assert_eq!(scheme == Some("https"), case.scheme == Scheme::Https);
            // Without trusted proxy headers, every valid header arrives.
            for (name, _) in &case.headers {
                if !is_valid_name(name) {
                    continue;
                }
                let key = format!("HTTP_{}", name.to_ascii_uppercase().replace('-', "_"));
                let expected_absent = ["HTTP_PROXY", "HTTP_PROXY_AUTHORIZATION", "HTTP_AUTHORIZATION"].contains(&key.as_str());
                let key = match key.as_str() {
                    "HTTP_CONTENT_TYPE" => "CONTENT_TYPE".to_string(),
                    "HTTP_CONTENT_LENGTH" => "CONTENT_LENGTH".to_string(),
                    _ => key,
                };
                if !expected_absent {
                    let joined: Vec<&str> = case
                        .headers
                        .iter()
                        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.as_str())
                        .collect();
                    let joined = joined.join(", ");
                    prop_assert_eq!(environ.get_str(&key), Some(joined.as_str()), "{}", key);
                }
            }
        }
    }

    #[test]
    fn untrusted_peers_cannot_spoof_configured_headers(case in case()) {
        let mut case = case;
        case.trusted_proxies = Some(vec!["198.51.100.0/24".into()]);
        case.peer = "203.0.113.9:1234".parse().unwrap();
        let environ = build(&case);
        prop_assert_eq!(environ.get_str("REMOTE_ADDR"), Some("203.0.113.9"));
        if case.trusted_headers.as_ref().is_some_and(|h| h.iter().any(|n| n.starts_with("X-Forwarded-Proto") || n == "X-Forwarded-SSL")) {
            prop_assert_eq!(environ.get_str("wsgi.url_scheme"), Some(if case.scheme == Scheme::Https { "https" } else { "http" }));
            prop_assert!(environ.get("HTTP_X_FORWARDED_PROTO").is_none() && environ.get("HTTP_X_FORWARDED_SSL").is_none());
        }
        if case.trusted_headers.as_ref().is_some_and(|h| h.iter().any(|n| n == "X-Forwarded-For" || n == "X-Real-IP" || n == "X-Client-IP")) {
            for gone in ["HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_X_CLIENT_IP"] {
                prop_assert!(environ.get(gone).is_none(), "{}", gone);
            }
        }
    }
}
