//! The `mod_wsgi` module in every kind of interpreter (Apache embedded in
//! the main interpreter and in a named group, Apache daemon mode, the
//! standalone server and its daemon mode), compared line by line with what
//! Debian's mod_wsgi 4.9.4 gives the same monitoring-style application.

use tests::modes::{Deployment, Host, Mode};
use tests::TempDir;

/// The application in a fresh directory, with a directory for its event
/// log that Apache's children (www-data) can write.
fn deployment() -> (TempDir, Deployment) {
    use std::os::unix::fs::PermissionsExt;
    let site = TempDir::new("mod-wsgi-api");
    let source = std::fs::read_to_string(tests::workspace_root().join("tests/fixtures/api/monitored.wsgi")).unwrap();
    let script = site.write("monitored.wsgi", &source);
    let events = site.path().join("events");
    std::fs::create_dir(&events).unwrap();
    std::fs::set_permissions(&events, std::fs::Permissions::from_mode(0o777)).unwrap();
    (site, Deployment::script(script))
}

/// GET /, GET /fail and GET /report, with an empty event log before; the
/// report's lines.
fn report(site: &TempDir, host: &Host) -> Vec<String> {
    let _ = std::fs::remove_file(site.path().join("events/log"));
    let mut last = String::new();
    for (path, status) in [("/", 200), ("/fail", 500), ("/report", 200)] {
        let response = host.request("GET", path, &[], b"");
        assert_eq!(response.status(), status, "{path}\n{}", host.log());
        last = response.text();
    }
    last.lines().map(String::from).collect()
}

fn line<'a>(lines: &'a [String], key: &str) -> &'a str {
    let prefix = format!("{key}=");
    lines.iter().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_else(|| panic!("no {key}= in {lines:#?}"))
}

/// The lines that depend on where the application runs, not on how well
/// the module is implemented: compared separately.
const PLACE: [&str; 5] = ["process_group", "application_group", "maximum_processes", "threads_per_process", "apache"];

/// The lines to compare with mod_wsgi's. The standalone server imports
/// the script before serving and has no Apache scoreboard for
/// `server_metrics()` (checked apart).
fn comparable(lines: &[String], mode: Mode) -> Vec<&String> {
    lines
        .iter()
        .filter(|l| !PLACE.iter().any(|key| l.starts_with(&format!("{key}="))))
        .filter(|l| !standalone(mode) || !(l.starts_with("at_import=") || l.starts_with("server_metrics")))
        // Ours reports the release it implements (4.9.4); the reference
        // its own, which is 5.x on Debian 13 (checked apart).
        .filter(|l| !l.starts_with("version="))
        .collect()
}

/// The standalone server imports the script before it serves, as
/// mod_wsgi-express does, so no request is active at import.
fn standalone(mode: Mode) -> bool {
    matches!(mode, Mode::Standalone | Mode::StandaloneDaemon)
}

#[test]
fn the_module_matches_mod_wsgi_in_every_interpreter_kind() {
    tests::require!(tests::apache::APACHE_BINARY, tests::apache::REFERENCE_MODULE);
    let (site, deployment) = deployment();
    let reference_embedded = report(&site, &Host::reference(false, &deployment));
    let reference_daemon = report(&site, &Host::reference(true, &deployment));
    // What the module must say in any interpreter, checked on mod_wsgi
    // itself so that the comparison below compares the right things.
    for lines in [&reference_embedded, &reference_daemon] {
        assert_eq!(line(lines, "outside"), "RuntimeError: no active request for thread");
        assert_eq!(line(lines, "wrapped"), "yes");
        assert!(lines.iter().any(|l| l.starts_with("event request_exception:")), "{lines:#?}");
        assert!(line(lines, "version").ends_with(" at least 4.9: True"), "{lines:#?}");
    }
    for mode in Mode::ALL {
        let host = Host::start(mode, &deployment);
        let ours = report(&site, &host);
        let reference = if mode.is_daemon() { &reference_daemon } else { &reference_embedded };
        assert_eq!(
            comparable(&ours, mode),
            comparable(reference, mode),
            "{}: ours, then mod_wsgi's\n{}",
            mode.name(),
            host.log()
        );
        assert_eq!(line(&ours, "version"), "(4, 9, 4) at least 4.9: True", "{}", mode.name());
        // Embedded Apache reports its scoreboard (mod_wsgi's unset
        // WSGIServerMetrics counts as on); daemon groups only with
        // server-metrics=On; the standalone server never.
        let metrics = if matches!(mode, Mode::ApacheGlobal | Mode::ApacheNamedGroup) { "dict" } else { "NoneType" };
        assert_eq!(line(&ours, "server_metrics"), metrics, "{}", mode.name());
        let expected_group = match mode {
            Mode::ApacheNamedGroup => "site",
            _ => "",
        };
        assert_eq!(line(&ours, "application_group"), expected_group, "{}", mode.name());
        match mode {
            Mode::Standalone | Mode::StandaloneDaemon => {
                assert_eq!(line(&ours, "apache"), "no apache module", "{}", mode.name());
                assert_eq!(line(&ours, "at_import"), "RuntimeError: no active request for thread");
            }
            _ => {
                // An embedded child counts the children started so far
                // (the MPM's highest slot in use), which races with their
                // start-up, for mod_wsgi as for us.
                let racy = |key: &str| key == "maximum_processes" && !mode.is_daemon();
                for key in PLACE {
                    if key != "application_group" && !racy(key) {
                        assert_eq!(line(&ours, key), line(reference, key), "{}: {key}", mode.name());
                    }
                }
            }
        }
        if mode.is_daemon() {
            assert_eq!(line(&ours, "threads_per_process"), "4", "{}", mode.name());
            assert_ne!(line(&ours, "process_group"), "", "{}", mode.name());
        } else {
            assert_eq!(line(&ours, "process_group"), "", "{}", mode.name());
        }
    }
}

const METRICS: &str = "import mod_wsgi\n\
def application(environ, start_response):\n\
\x20   metrics = mod_wsgi.server_metrics()\n\
\x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
\x20   return [('%s %s' % (type(metrics).__name__, sorted(metrics or {}))).encode()]\n";

/// `server-metrics=On` gives a daemon group Apache's scoreboard (from the
/// first start: its processes start once the scoreboard exists, as
/// mod_wsgi starts them), and `WSGIServerMetrics Off` hides it in
/// embedded mode; the same as Debian's mod_wsgi.
#[test]
fn server_metrics_follow_their_switches_as_in_mod_wsgi() {
    use tests::apache::{Apache, ApacheOptions, WsgiModule};
    tests::require!(tests::apache::APACHE_BINARY, tests::apache::REFERENCE_MODULE);
    let site = TempDir::new("server-metrics");
    site.write("metrics.wsgi", METRICS);
    let dir = site.path().display();
    let config = |embedded: &str| {
        format!(
            "WSGIServerMetrics {embedded}\n\
             WSGIDaemonProcess metered threads=2 server-metrics=On\n\
             WSGIDaemonProcess plain threads=2\n\
             WSGIScriptAlias /metered {dir}/metrics.wsgi process-group=metered application-group=%{{GLOBAL}}\n\
             WSGIScriptAlias /plain {dir}/metrics.wsgi process-group=plain application-group=%{{GLOBAL}}\n\
             WSGIScriptAlias /embedded {dir}/metrics.wsgi process-group=%{{GLOBAL}} application-group=%{{GLOBAL}}\n"
        )
    };
    let keys = "dict ['current_time', 'processes', 'restart_time', 'running_generation', 'running_time', \
                'server_limit', 'thread_limit']";
    for module in [WsgiModule::Ours, WsgiModule::Reference] {
        let apache = Apache::start(&ApacheOptions { module, ..ApacheOptions::ours(config("Off")) });
        let answers: Vec<String> = ["/metered", "/plain", "/embedded"].iter().map(|p| apache.get(p).text()).collect();
        assert_eq!(answers, [keys, "NoneType []", "NoneType []"], "{module:?}\n{}", apache.error_log());
    }
}
