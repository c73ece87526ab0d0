//! Property tests: model -> text -> model is the identity, and no input,
//! however hostile, makes the reader panic.

use std::path::Path;

use proptest::prelude::*;
use wsgi_config::tree::ReadOptions;
use wsgi_config::{load_str, Config};

fn load(text: &str) -> Config {
    load_str(text, Path::new("gen.conf"), &ReadOptions::standalone("/nonexistent").reference())
        .unwrap_or_else(|e| panic!("generated text did not load:\n{text}\n{e}"))
}

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9.-]{0,10}"
}

fn path() -> impl Strategy<Value = String> {
    "(/[a-z0-9_.-]{1,8}){1,3}"
}

/// A value that needs quoting now and then.
fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z]{1,8}", "[a-z]{1,5} [a-z]{1,5}", "'[a-z]{1,4}\"x"]
}

fn daemon_option() -> impl Strategy<Value = String> {
    prop_oneof![
        (1u32..64).prop_map(|n| format!("processes={n}")),
        (0u32..65534).prop_map(|n| format!("threads={n}")),
        (0u64..100_000).prop_map(|n| format!("maximum-requests={n}")),
        name().prop_map(|u| format!("user={u}")),
        name().prop_map(|g| format!("group={g}")),
        proptest::collection::vec(name(), 1..3).prop_map(|g| format!("supplementary-groups={}", g.join(","))),
        (0u32..0o777).prop_map(|m| format!("umask={m:04o}")),
        path().prop_map(|p| format!("home={p}")),
        path().prop_map(|p| format!("chroot={p}")),
        text().prop_map(|t| format!("display-name={t}")),
        name().prop_map(|t| format!("lang={t}")),
        name().prop_map(|t| format!("locale={t}")),
        path().prop_map(|p| format!("python-home={p}")),
        proptest::collection::vec(path(), 1..3).prop_map(|p| format!("python-path={}", p.join(":"))),
        path().prop_map(|p| format!("python-eggs={p}")),
        (1u32..1000).prop_map(|n| format!("switch-interval={}", f64::from(n) / 1000.0)),
        (1u64..10_000_000).prop_map(|n| format!("stack-size={n}")),
        (0u32..5000).prop_map(|n| format!("listen-backlog={n}")),
        (
            prop_oneof![
                Just("restart-interval"),
                Just("inactivity-timeout"),
                Just("request-timeout"),
                Just("interrupt-timeout"),
                Just("graceful-timeout"),
                Just("eviction-timeout"),
                Just("shutdown-timeout"),
                Just("startup-timeout"),
                Just("deadlock-timeout"),
                Just("connect-timeout"),
                Just("socket-timeout"),
                Just("queue-timeout"),
                Just("response-socket-timeout"),
                Just("cpu-time-limit"),
            ],
            0u64..100_000
        )
            .prop_map(|(o, n)| format!("{o}={n}")),
        prop_oneof![Just(0u64), 512u64..1 << 20].prop_map(|n| format!("send-buffer-size={n}")),
        prop_oneof![Just(0u64), 512u64..1 << 20].prop_map(|n| format!("receive-buffer-size={n}")),
        prop_oneof![Just(0u64), 8192u64..1 << 20].prop_map(|n| format!("header-buffer-size={n}")),
        prop_oneof![Just(0u64), 65536u64..1 << 24].prop_map(|n| format!("response-buffer-size={n}")),
        (0u64..1000).prop_map(|n| format!("response-flush-delay={n}")),
        (0u64..1 << 40).prop_map(|n| format!("memory-limit={n}")),
        (0u64..1 << 40).prop_map(|n| format!("virtual-memory-limit={n}")),
        (-20i32..20).prop_map(|n| format!("cpu-priority={n}")),
        name().prop_map(|u| format!("socket-user={u}")),
        name().prop_map(|u| format!("script-user={u}")),
        prop_oneof![Just("On"), Just("Off")].prop_map(|f| format!("server-metrics={f}")),
    ]
}

fn quote(word: &str) -> String {
    wsgi_config::lexer::quote_word(word)
}

fn daemon_line(name: &str, options: &[String]) -> String {
    let mut line = format!("WSGIDaemonProcess {name}");
    for option in options {
        line.push(' ');
        line.push_str(&quote(option));
    }
    line
}

fn flag() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("On"), Just("Off")]
}

/// Lines valid in the main server only.
fn global_line() -> impl Strategy<Value = String> {
    prop_oneof![
        path().prop_map(|p| format!("WSGIPythonHome {p}")),
        proptest::collection::vec(path(), 1..3).prop_map(|p| format!("WSGIPythonPath {}", p.join(":"))),
        (0u8..3).prop_map(|n| format!("WSGIPythonOptimize {n}")),
        prop_oneof![Just("random".to_string()), any::<u32>().prop_map(|n| n.to_string())]
            .prop_map(|s| format!("WSGIPythonHashSeed {s}")),
        "[a-z]{1,6}::[A-Z][a-z]{1,8}".prop_map(|w| format!("WSGIPythonWarnings {w}")),
        flag().prop_map(|f| format!("WSGIRestrictEmbedded {f}")),
        flag().prop_map(|f| format!("WSGIRestrictSignal {f}")),
        flag().prop_map(|f| format!("WSGIDestroyInterpreter {f}")),
        // On is refused: the embedded Python has no GIL per interpreter.
        Just("WSGIPerInterpreterGIL Off".to_string()),
        path().prop_map(|p| format!("WSGISocketPrefix {p}")),
        prop_oneof![Just("flock"), Just("fcntl"), Just("default")].prop_map(|m| format!("WSGIAcceptMutex {m}")),
        (1u32..100).prop_map(|n| format!("WSGISwitchInterval {}", f64::from(n) / 100.0)),
    ]
}

/// Per-directory lines, valid at server level and inside sections.
fn dir_line(daemons: Vec<String>) -> impl Strategy<Value = String> {
    let group = if daemons.is_empty() {
        Just("%{GLOBAL}".to_string()).boxed()
    } else {
        prop_oneof![Just("%{GLOBAL}".to_string()), proptest::sample::select(daemons)].boxed()
    };
    prop_oneof![
        group.prop_map(|g| format!("WSGIProcessGroup {g}")),
        prop_oneof![Just("%{GLOBAL}".to_string()), Just("%{SERVER}".to_string()), name()]
            .prop_map(|g| format!("WSGIApplicationGroup {g}")),
        "[a-z_]{1,8}".prop_map(|c| format!("WSGICallableObject {c}")),
        flag().prop_map(|f| format!("WSGIPassAuthorization {f}")),
        flag().prop_map(|f| format!("WSGIScriptReloading {f}")),
        flag().prop_map(|f| format!("WSGIChunkedRequest {f}")),
        prop_oneof![Just("On"), Just("Off"), Just("Auto")].prop_map(|f| format!("WSGIMapHEADToGET {f}")),
        (0u64..1 << 31).prop_map(|n| format!("LimitRequestBody {n}")),
        "(10|192)\\.[0-9]{1,2}\\.0\\.0/(8|16|24)".prop_map(|p| format!("WSGITrustedProxies {p}")),
        (name(), path()).prop_map(|(n, p)| format!("WSGIHandlerScript {n} {p}")),
    ]
}

fn alias_line(daemons: Vec<String>) -> impl Strategy<Value = String> {
    let group = if daemons.is_empty() {
        Just(None).boxed()
    } else {
        proptest::option::of(proptest::sample::select(daemons)).boxed()
    };
    (
        "/[a-z]{0,6}",
        path(),
        group,
        proptest::option::of(prop_oneof![Just("%{GLOBAL}".to_string()), name()]),
        proptest::option::of("[a-z_]{1,6}"),
        proptest::option::of(flag()),
    )
        .prop_map(|(url, target, pg, ag, co, pa)| {
            let mut line = format!("WSGIScriptAlias {url} {target}");
            if let Some(pg) = pg {
                line.push_str(&format!(" process-group={pg}"));
            }
            if let Some(ag) = ag {
                line.push_str(&format!(" application-group={ag}"));
            }
            if let Some(co) = co {
                line.push_str(&format!(" callable-object={co}"));
            }
            if let Some(pa) = pa {
                line.push_str(&format!(" pass-authorization={pa}"));
            }
            line
        })
}

/// A whole configuration: daemons first (preloads need them defined),
/// globals, server-level lines, a section, and virtual hosts.
fn configuration() -> impl Strategy<Value = String> {
    let daemons = proptest::collection::vec(proptest::collection::vec(daemon_option(), 0..6), 0..3);
    daemons.prop_flat_map(|daemon_options| {
        let names: Vec<String> = (0..daemon_options.len()).map(|i| format!("daemon{i}")).collect();
        let daemon_lines: Vec<String> = names.iter().zip(&daemon_options).map(|(n, o)| daemon_line(n, o)).collect();
        (
            Just(daemon_lines),
            proptest::collection::vec(global_line(), 0..6),
            proptest::collection::vec(dir_line(names.clone()), 0..6),
            proptest::collection::vec(alias_line(names.clone()), 0..3),
            proptest::collection::vec(dir_line(names.clone()), 0..4),
            proptest::collection::vec(
                (
                    name(),
                    proptest::collection::vec(dir_line(names.clone()), 0..4),
                    proptest::collection::vec(alias_line(names.clone()), 0..3),
                    proptest::collection::vec(daemon_option(), 0..4),
                ),
                0..3,
            ),
        )
            .prop_map(|(daemons, globals, dirs, aliases, section, vhosts)| {
                let mut text = String::new();
                for line in daemons.iter().chain(&globals).chain(&dirs).chain(&aliases) {
                    text.push_str(line);
                    text.push('\n');
                }
                text.push_str("<Location /section>\n");
                for line in &section {
                    text.push_str(&format!("    {line}\n"));
                }
                text.push_str("</Location>\n");
                for (i, (server_name, dirs, aliases, options)) in vhosts.iter().enumerate() {
                    text.push_str(&format!("<VirtualHost *:{}>\n    ServerName {server_name}\n", 8000 + i));
                    text.push_str(&format!("    {}\n", daemon_line(&format!("vhost{i}"), options)));
                    for line in dirs.iter().chain(aliases) {
                        text.push_str(&format!("    {line}\n"));
                    }
                    text.push_str("</VirtualHost>\n");
                }
                text
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn model_to_text_to_model_is_the_identity(text in configuration()) {
        let first = load(&text);
        let rendered = first.to_text();
        let second = load(&rendered);
        prop_assert_eq!(first.without_locations(), second.without_locations(), "rendered:\n{}", rendered);
        prop_assert_eq!(second.to_text(), rendered);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "[ -~\t\n]{0,400}") {
        let _ = load_str(&text, Path::new("any.conf"), &ReadOptions::standalone("/nonexistent").reference());
    }

    #[test]
    fn directive_shaped_noise_never_panics(
        lines in proptest::collection::vec(
            (
                proptest::sample::select(
                    wsgi_config::directives::DIRECTIVES.iter().map(|d| d.name).collect::<Vec<_>>()
                ),
                "[ -~]{0,40}",
            ),
            0..20,
        ),
        wrap in proptest::sample::select(vec!["", "VirtualHost *:80", "Directory /srv", "Location /", "WSGIInterpreterOptions", "Files x"]),
    ) {
        let mut text = String::new();
        if !wrap.is_empty() {
            text.push_str(&format!("<{wrap}>\n"));
        }
        for (name, args) in &lines {
            text.push_str(&format!("{name} {args}\n"));
        }
        if let Some(tag) = wrap.split(' ').next().filter(|t| !t.is_empty()) {
            text.push_str(&format!("</{tag}>\n"));
        }
        let _ = load_str(&text, Path::new("noise.conf"), &ReadOptions::standalone("/nonexistent").reference());
    }
}
