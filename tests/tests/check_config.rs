//! `wsgi-standalone check-config`, driven as a user runs it: the real
//! binary on real files.

use std::process::{Command, Output};

use tests::{standalone_binary, workspace_root, TempDir};

fn check_config(args: &[&str]) -> Output {
    Command::new(standalone_binary()).arg("check-config").args(args).output().expect("wsgi-standalone runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_shipped_example_is_valid() {
    let example = workspace_root().join("examples/site.conf");
    let out = check_config(&[example.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "Syntax OK\n");
}

#[test]
fn dump_prints_the_resolved_model() {
    let example = workspace_root().join("examples/site.conf");
    let out = check_config(&["--dump", example.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dump = text(&out.stdout);
    for expected in [
        "VirtualHost *:8000",
        "ServerName www.example.com",
        "WSGIScriptAlias / -> /srv/example/wsgi.py",
        "process group:      example.com (daemon)",
        "application group:  %{GLOBAL}",
        "WSGIScriptAlias /tools -> /srv/admin/tools.wsgi",
        "callable object:    app",
        "WSGIDaemonProcess example.com",
        "wsgi.multithread=True wsgi.multiprocess=True wsgi.run_once=False",
        "maximum-requests         10000",
        "graceful-timeout         30",
        "shutdown-timeout         5",
    ] {
        assert!(dump.contains(expected), "missing {expected:?} in:\n{dump}");
    }
}

#[test]
fn errors_are_printed_as_file_line_message_with_exit_status_1() {
    let dir = TempDir::new("check-config-errors");
    let file = dir.write(
        "bad.conf",
        concat!(
            "WSGIDaemonProcess site threads=abc\n",
            "<VirtualHost *:80>\n",
            "    WSGIPythonHome /venv\n",
            "    WSGIScriptAlias /app\n",
            "</VirtualHost>\n",
            "WSGIUnknownThing 1\n",
        ),
    );
    let out = check_config(&[file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "no Syntax OK on failure");
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let f = file.display();
    assert_eq!(
        lines,
        [
            format!("{f}:1: WSGIDaemonProcess: invalid value 'abc' for option 'threads': expected a whole number from 0 to 65533"),
            format!("{f}:3: WSGIPythonHome cannot occur within <VirtualHost> section"),
            format!("{f}:4: WSGIScriptAlias takes at least two arguments: a URL and a script path"),
            format!("{f}:6: Invalid command 'WSGIUnknownThing', perhaps misspelled or defined by a module not included in the server configuration"),
        ]
    );
}

#[test]
fn includes_resolve_against_the_file_directory_and_errors_name_the_included_file() {
    let dir = TempDir::new("check-config-include");
    dir.write("sites/a.conf", "WSGIScriptAlias /a /srv/a.wsgi\n");
    dir.write("sites/b.conf", "\n\nWSGIScriptReloading perhaps\n");
    let main = dir.write("main.conf", "IncludeOptional sites/*.conf\n");
    let out = check_config(&[main.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let expected = format!(
        "{}:3: WSGIScriptReloading must be one of: Off | On (got 'perhaps')\n",
        dir.path().join("sites/b.conf").display()
    );
    assert_eq!(text(&out.stderr), expected);

    dir.write("sites/b.conf", "WSGIScriptReloading Off\n");
    let out = check_config(&["--dump", main.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("WSGIScriptAlias /a -> /srv/a.wsgi"));
    assert!(text(&out.stdout).contains("script reloading:   Off"));
}

#[test]
fn defines_and_server_root_options() {
    let dir = TempDir::new("check-config-define");
    let root = TempDir::new("check-config-root");
    root.write("extra.conf", "WSGIScriptAlias /extra /srv/extra.wsgi\n");
    let main = dir.write("main.conf", "<IfDefine WITH_EXTRA>\n    Include extra.conf\n</IfDefine>\n");
    let main = main.to_str().unwrap();
    let root_arg = root.path().to_str().unwrap();

    let out = check_config(&["--dump", "--server-root", root_arg, main]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("/extra"));

    let out = check_config(&["--dump", "--server-root", root_arg, "-D", "WITH_EXTRA", main]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("WSGIScriptAlias /extra -> /srv/extra.wsgi"));

    // Without --server-root, the include is looked for beside main.conf.
    let out = check_config(&["-D", "WITH_EXTRA", main]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("Include: no file matches"), "{}", text(&out.stderr));
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let out = check_config(&["/nonexistent/wsgi.conf"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "/nonexistent/wsgi.conf: could not open configuration file: No such file or directory (os error 2)\n"
    );
}

#[test]
fn bad_command_lines_are_usage_errors() {
    let out = Command::new(standalone_binary()).arg("check-config").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("Usage"), "{}", text(&out.stderr));
    let out = Command::new(standalone_binary()).arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("check-config"));
}

#[test]
fn python_features_the_embedded_python_lacks_are_refused_with_file_and_line() {
    let dir = TempDir::new("check-config-gil");
    let file = dir.write(
        "gil.conf",
        concat!(
            "WSGIDaemonProcess nogil threads=4\n",
            "WSGIPerInterpreterGIL Off\n",
            "WSGIFreeThreading Off\n",
            "WSGIFreeThreading On\n",
            "\n",
            "WSGIPerInterpreterGIL On\n",
        ),
    );
    let out = check_config(&[file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    let path = file.display();
    let mut expected =
        vec![format!("{path}:4: WSGIFreeThreading On needs a free-threaded Python 3.13 or later (3.13t)")];
    // From 3.12 a GIL per interpreter is there: On is accepted.
    if !tests::built_python_at_least(3, 12) {
        expected.push(format!("{path}:6: WSGIPerInterpreterGIL On needs Python 3.12 or later (a GIL per interpreter)"));
    }
    for line in &expected {
        assert!(stderr.contains(line), "missing {line:?} in:\n{stderr}");
    }
    assert_eq!(stderr.lines().count(), expected.len(), "Off is accepted:\n{stderr}");
}
