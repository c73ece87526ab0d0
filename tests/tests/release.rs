//! Installing the Apache module: `wsgi-standalone module-config` prints the
//! lines that load it, and those lines, as printed, load it into a real
//! Apache that then serves an application.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tests::apache::{our_module, Apache, ApacheOptions, WsgiModule, APACHE_BINARY};
use tests::{standalone_binary, TempDir};

const HELLO_APP: &str = r#"
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'Hello world!']
"#;

fn module_config(args: &[&str]) -> Output {
    Command::new(standalone_binary()).arg("module-config").args(args).output().expect("run wsgi-standalone")
}

/// The word after `directive` on its line, unquoted.
fn directive_value(text: &str, directive: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(directive)?.strip_prefix(' ')?;
        Some(rest.trim().trim_matches('"').to_string())
    })
}

#[test]
fn module_config_names_the_module_next_to_the_executable_and_the_python_home() {
    let module = our_module();
    let output = module_config(&[]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("LoadModule wsgi_module \""), "{text}");
    assert!(lines[1].starts_with("WSGIPythonHome \""), "{text}");
    let named = PathBuf::from(directive_value(&text, "LoadModule wsgi_module").expect("a LoadModule line"));
    assert!(named.is_absolute() && named.is_file(), "{text}");
    assert_eq!(named, std::fs::canonicalize(module).expect("the built module exists"));
    assert_eq!(directive_value(&text, "WSGIPythonHome").as_deref(), Some("/usr"), "{text}");
}

#[test]
fn module_config_takes_an_explicit_module_and_refuses_a_missing_one() {
    let dir = TempDir::new("module-config");
    let module = dir.write("custom mod_wsgi.so", "not really a module");
    let output = module_config(&["--module", module.to_str().expect("a UTF-8 path")]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(text.lines().next(), Some(format!("LoadModule wsgi_module \"{}\"", module.display()).as_str()));

    let missing = dir.path().join("missing.so");
    let output = module_config(&["--module", missing.to_str().expect("a UTF-8 path")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing.so"));
}

#[test]
fn apache_loads_the_module_with_the_printed_lines_and_serves_an_application() {
    tests::require!(APACHE_BINARY);
    our_module();
    let output = module_config(&[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed = String::from_utf8(output.stdout).expect("UTF-8 output");
    let named = directive_value(&printed, "LoadModule wsgi_module").expect("a LoadModule line");
    assert!(Path::new(&named).is_file(), "{printed}");

    let site = TempDir::new("module-config-site");
    let app = site.write("hello.wsgi", HELLO_APP);
    // The harness adds no LoadModule of its own: the printed lines load it.
    let apache = Apache::start(&ApacheOptions {
        module: WsgiModule::InConfig,
        ..ApacheOptions::ours(format!("{printed}WSGIScriptAlias / {}\n", app.display()))
    });
    let response = apache.get("/");
    assert_eq!(response.status(), 200, "{}", apache.error_log());
    assert_eq!(response.text(), "Hello world!");
}
