//! Every refusal of wsgi-config's support table, driven through both front
//! ends: `wsgi-standalone check-config` names each refused line with its
//! `file:line`, and Apache refuses to start on each, naming the line.
//! The lines are made from the table, so a new refusal is tested the day
//! it is added (a refusal without a sample line below fails here).

use std::process::Command;

use tests::apache::{Apache, ApacheOptions};
use tests::{standalone_binary, TempDir};
use wsgi_config::directives::{find, Context};
use wsgi_config::support::{FrontEnd, Status, DIRECTIVE_SUPPORT, OPTION_SUPPORT};

/// A valid argument for each directive the table may refuse outright.
const DIRECTIVE_SAMPLES: &[(&str, &str)] = &[
    ("WSGIAccessScript", "/srv/access.py"),
    ("WSGIAuthUserScript", "/srv/auth.py"),
    ("WSGIAuthGroupScript", "/srv/groups.py"),
    ("WSGIHandlerScript", "my-handler /srv/handler.py"),
    ("WSGIGroupAuthoritative", "On"),
    ("WSGIUserAuthoritative", "On"),
    ("WSGITelemetryService", "unix:/run/telemetry.sock"),
    ("WSGISlowRequests", "5"),
    ("WSGITelemetryOptions", "All"),
    ("WSGINewRelicConfigFile", "/etc/newrelic.ini"),
    ("WSGINewRelicEnvironment", "production"),
];

/// A value other than the default for each daemon option the table may
/// refuse.
const OPTION_SAMPLES: &[(&str, &str)] = &[
    ("chroot", "/srv/jail"),
    ("response-buffer-size", "65536"),
    ("response-flush-delay", "10"),
    ("server-metrics", "On"),
    ("newrelic-config-file", "/etc/newrelic.ini"),
    ("newrelic-environment", "production"),
];

fn sample(table: &[(&str, &'static str)], name: &str) -> &'static str {
    table.iter().find(|(n, _)| *n == name).map(|(_, v)| *v).unwrap_or_else(|| {
        panic!("{name} is refused by the support table: add a sample line for it to tests/tests/refusals.rs")
    })
}

/// One configuration line per refusal of `front_end`, each standing where
/// its directive is allowed (a `<Location>` for the directory-only ones),
/// with the text the refusal must contain.
fn refused_lines(front_end: FrontEnd) -> Vec<(String, String)> {
    let mut lines = Vec::new();
    // The table's "only Off" is the rule of a Python without a GIL per
    // interpreter; from 3.12 On is honoured (tests/tests/own_gil.rs).
    let own_gil = tests::built_python_at_least(3, 12);
    for row in DIRECTIVE_SUPPORT {
        if own_gil && row.name == "WSGIPerInterpreterGIL" {
            continue;
        }
        let line = match row.status(front_end) {
            Status::Refused(_) => format!("{} {}", row.name, sample(DIRECTIVE_SAMPLES, row.name)),
            Status::OnlyValue(value, _) => {
                let other = if value.eq_ignore_ascii_case("on") { "Off" } else { "On" };
                format!("{} {other}", row.name)
            }
            _ => continue,
        };
        let spec = find(row.name).expect("every row is a directive");
        let line = if spec.contexts.allows(Context::Server) {
            line
        } else {
            format!("<Location /refused>\n{line}\n</Location>")
        };
        lines.push((line, row.name.to_string()));
    }
    for row in OPTION_SUPPORT {
        if let Status::Refused(_) = row.status(front_end) {
            let line =
                format!("WSGIDaemonProcess refused-{} {}={}", row.name, row.name, sample(OPTION_SAMPLES, row.name));
            lines.push((line, format!("option {}= is refused", row.name)));
        }
    }
    // A switch interval scoped to an application group needs a GIL per
    // interpreter (Python 3.12).
    lines.push((
        "<WSGIInterpreterOptions application-group=a>\nWSGISwitchInterval 0.01\n</WSGIInterpreterOptions>".into(),
        "WSGISwitchInterval".into(),
    ));
    lines
}

/// The 1-based line where each entry starts once they are joined.
fn numbered(lines: &[(String, String)]) -> (String, Vec<(usize, &str)>) {
    let mut text = String::new();
    let mut places = Vec::new();
    let mut next = 1;
    for (line, needle) in lines {
        let inner = if line.starts_with("<Location") || line.starts_with("<WSGIInterpreterOptions") { 1 } else { 0 };
        places.push((next + inner, needle.as_str()));
        next += line.lines().count();
        text.push_str(line);
        text.push('\n');
    }
    (text, places)
}

#[test]
fn check_config_names_every_refusal_with_file_and_line() {
    let dir = TempDir::new("refusals");
    let lines = refused_lines(FrontEnd::Standalone);
    let (text, places) = numbered(&lines);
    let file = dir.write("refused.conf", &text);
    let out = Command::new(standalone_binary()).arg("check-config").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (line, needle) in places {
        let prefix = format!("{}:{line}: ", file.display());
        let found = stderr.lines().any(|l| l.starts_with(&prefix) && l.contains(needle) && l.contains("refused"));
        assert!(found, "no refusal {prefix}...{needle}... in:\n{stderr}\nfor:\n{text}");
    }
    assert_eq!(stderr.lines().count(), lines.len(), "one error per refused line:\n{stderr}");
}

#[test]
fn apache_refuses_to_start_on_every_refusal_naming_the_line() {
    tests::require!(tests::apache::APACHE_BINARY);
    for (line, needle) in refused_lines(FrontEnd::Apache) {
        let logged = Apache::refused(&ApacheOptions::ours(line.clone()));
        assert!(logged.contains(&needle) && logged.contains("refused"), "{line}:\n{logged}");
        assert!(logged.contains("Syntax error on line"), "{line}: no line named:\n{logged}");
    }
}
