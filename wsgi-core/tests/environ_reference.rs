//! The environ built for the requests recorded from real mod_wsgi 4.9.4
//! (shared/reference/mod_wsgi-4.9.4-environ.json) must match it key for
//! key. Values that differ from run to run (the client port, request id,
//! timestamps, versions, server banner) are fed in from the recording, and
//! the recording's `PORT` placeholder is the port the request is sent to,
//! so every value is compared exactly.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::Value;
use wsgi_config::directives::{self, ScriptAlias, Setting};
use wsgi_config::{DaemonProcess, DirSettings};
use wsgi_core::environ_build::{
    build_environ, server_port, AppNames, DaemonFacts, EnvironInputs, RequestStats, ServerFacts, Versions, WsgiFlags,
    INTERPRETER_KEYS,
};
use wsgi_core::group::{application_group, callable_object, process_group, GroupContext};
use wsgi_core::route::{latin1, normalize_path, RouteMatch, Router};
use wsgi_core::{EnvValue, Environ, RequestHead, Scheme};

const PORT: u16 = 8080;

fn reference() -> Value {
    // A copy of shared/reference/ (what real mod_wsgi 4.9.4 gave), kept in
    // the repository so the test runs wherever it is cloned.
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mod_wsgi-4.9.4-environ.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("the reference environ {} cannot be read ({e})", path.display()));
    serde_json::from_str(&text).expect("the reference environ is valid JSON")
}

/// The `;`-separated directives of a case.
fn parse_config(config: &str) -> (ScriptAlias, Option<DaemonProcess>) {
    let mut alias = None;
    let mut daemon = None;
    for line in config.split(';') {
        let mut words = line.split_whitespace().map(str::to_string);
        let name = words.next().expect("a directive name");
        let args: Vec<String> = words.collect();
        match directives::parse(&name, &args).expect("a known directive").expect("a valid directive") {
            Setting::ScriptAlias(a) => alias = Some(a),
            Setting::DaemonProcess(d) => daemon = Some(*d),
            other => panic!("unexpected directive in the reference: {other:?}"),
        }
    }
    (alias.expect("a WSGIScriptAlias"), daemon)
}

fn text<'a>(environ: &'a Value, key: &str) -> &'a str {
    environ[key].as_str().unwrap_or_else(|| panic!("reference {key} is a string"))
}

fn number(environ: &Value, key: &str) -> u64 {
    match &environ[key] {
        Value::String(s) => s.parse().unwrap_or_else(|_| panic!("reference {key} is a number")),
        Value::Number(n) => n.as_u64().unwrap_or_else(|| panic!("reference {key} is a whole number")),
        other => panic!("reference {key} is {other}"),
    }
}

fn triple(environ: &Value, key: &str) -> (i64, i64, i64) {
    let items: Vec<i64> = environ[key].as_array().expect("a version list").iter().filter_map(Value::as_i64).collect();
    match items.as_slice() {
        [a, b, c] => (*a, *b, *c),
        _ => panic!("reference {key} is not a version triple"),
    }
}

fn to_json(environ: &Environ) -> BTreeMap<String, Value> {
    environ
        .entries
        .iter()
        .map(|(key, value)| {
            let value = match value {
                EnvValue::Str(s) => Value::from(s.as_ref()),
                EnvValue::Bool(b) => Value::from(*b),
                EnvValue::Int(i) => Value::from(*i),
                EnvValue::Tuple(items) => Value::from(items.clone()),
            };
            (key.to_string(), value)
        })
        .collect()
}

fn expected(environ: &Value) -> BTreeMap<String, Value> {
    let port = PORT.to_string();
    environ
        .as_object()
        .expect("environ is an object")
        .iter()
        .filter(|(key, _)| !INTERPRETER_KEYS.contains(&key.as_str()))
        .map(|(key, value)| {
            let value = match value {
                Value::String(s) => Value::from(s.replace("PORT", &port)),
                other => other.clone(),
            };
            (key.clone(), value)
        })
        .collect()
}

fn build_case(case: &Value) -> Environ {
    let reference = &case["environ"];
    let request = &case["request"];
    let (alias, daemon) = parse_config(case["config"].as_str().expect("config text"));

    let mut headers = vec![("Host".to_string(), format!("127.0.0.1:{PORT}"))];
    for (name, value) in request["headers"].as_object().expect("request headers") {
        headers.push((name.clone(), value.as_str().expect("header value").to_string()));
    }
    if let Some(body) = request["body"].as_str() {
        headers.push(("Content-Length".to_string(), body.len().to_string()));
    }
    let remote_port = u16::try_from(number(reference, "REMOTE_PORT")).expect("a port");
    let head = RequestHead {
        method: request["method"].as_str().expect("method").to_string(),
        raw_uri: request["path"].as_str().expect("path").to_string(),
        protocol: "HTTP/1.1".to_string(),
        headers,
        peer: SocketAddr::from(([127, 0, 0, 1], remote_port)),
        local: SocketAddr::from(([127, 0, 0, 1], PORT)),
        scheme: Scheme::Http,
    };

    // The script does not exist here: route without the file system.
    let router = Router::new([&alias], true);
    let path = normalize_path(head.raw_path()).expect("a valid path");
    let split = router.split_path(&path).expect("the alias matches");
    let route = RouteMatch {
        alias_index: split.alias_index,
        script_filename: split.target.clone(),
        script_name: latin1(&split.script_name),
        path_info: latin1(&split.rest),
    };

    let settings = DirSettings::default();
    let no_env = |_: &str| None;
    let groups = GroupContext {
        server_hostname: "localhost",
        port: server_port(&head),
        request_host: head.header("host"),
        script_name: &route.script_name,
        case_sensitive: true,
        env: &no_env,
    };
    let process = process_group(alias.process_group.as_deref().or(settings.process_group.as_deref()), &groups);
    let application =
        application_group(alias.application_group.as_deref().or(settings.application_group.as_deref()), &groups);
    let callable = callable_object(alias.callable_object.as_deref().or(settings.callable_object.as_deref()), &groups);

    let flags = match &daemon {
        Some(process) => WsgiFlags::daemon(process),
        None => WsgiFlags::embedded(true, true), // mpm_event
    };
    let daemon_facts = daemon.as_ref().map(|_| DaemonFacts {
        connects: number(reference, "mod_wsgi.daemon_connects") as i64,
        restarts: number(reference, "mod_wsgi.daemon_restarts") as i64,
        start_us: number(reference, "mod_wsgi.daemon_start"),
        queue_start_us: number(reference, "mod_wsgi.queue_start"),
    });
    let inputs = EnvironInputs {
        head: &head,
        route: &route,
        settings: &settings,
        pass_authorization: alias.pass_authorization,
        router: Some(&router),
        server: ServerFacts {
            server_hostname: "localhost",
            document_root: "/var/www/html",
            server_admin: None,
            server_software: text(reference, "SERVER_SOFTWARE"),
            listener_host: "127.0.0.1",
            listener_port: PORT,
        },
        names: AppNames {
            process_group: &process,
            application_group: &application,
            callable_object: &callable,
            request_handler: "wsgi-script",
            handler_script: "",
        },
        flags,
        stats: RequestStats {
            request_id: text(reference, "mod_wsgi.request_id"),
            request_start_us: number(reference, "mod_wsgi.request_start"),
            script_start_us: number(reference, "mod_wsgi.script_start"),
            thread_id: number(reference, "mod_wsgi.thread_id") as i64,
            thread_requests: number(reference, "mod_wsgi.thread_requests") as i64,
            total_requests: number(reference, "mod_wsgi.total_requests") as i64,
        },
        versions: Versions {
            mod_wsgi: triple(reference, "mod_wsgi.version"),
            apache: Some(triple(reference, "apache.version")),
        },
        daemon: daemon_facts,
        content_filters: false,
    };
    build_environ(&inputs)
}

#[test]
fn reference_cases_match_key_for_key() {
    let reference = reference();
    let cases = reference["cases"].as_array().expect("a list of cases");
    assert_eq!(cases.len(), 3, "the reference has three cases");
    for case in cases {
        let title = case["title"].as_str().unwrap_or("?");
        for key in INTERPRETER_KEYS {
            assert!(case["environ"].get(key).is_some(), "{title}: the reference has {key}");
        }
        let environ = build_case(case);
        let ours = to_json(&environ);
        let theirs = expected(&case["environ"]);
        assert_eq!(ours.len(), environ.entries.len(), "{title}: keys are unique");
        let missing: Vec<&String> = theirs.keys().filter(|k| !ours.contains_key(*k)).collect();
        let extra: Vec<&String> = ours.keys().filter(|k| !theirs.contains_key(*k)).collect();
        assert!(missing.is_empty() && extra.is_empty(), "{title}: missing keys {missing:?}, extra keys {extra:?}");
        for (key, value) in &theirs {
            assert_eq!(&ours[key], value, "{title}: {key}");
        }
    }
}

#[test]
fn the_reference_application_group_uses_server_name() {
    let reference = reference();
    let environ = build_case(&reference["cases"][0]);
    assert_eq!(environ.get_str("mod_wsgi.application_group"), Some("localhost:8080|/env"));
    assert_eq!(environ.get_str("HTTP_HOST"), Some("127.0.0.1:8080"));
    assert_eq!(environ.get_str("SERVER_NAME"), Some("127.0.0.1"));
}
