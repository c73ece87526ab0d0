//! Extension modules that do not support sub-interpreters, such as
//! psycopg2's `_psycopg` (single-phase initialisation; mod_wsgi issue
//! #915). From Python 3.12 a sub-interpreter refuses them: the request gets
//! a 500 and the error log one line naming the module and the fix, instead
//! of a module that loads half-working. `WSGIApplicationGroupFallback
//! %{GLOBAL}` runs such an application in the main interpreter instead,
//! with a warning. Python 3.11 loads them in a sub-interpreter, as it
//! always has.

use tests::apache::{Apache, ApacheOptions};
use tests::{Server, TempDir};

const APP: &str = r#"
import psycopg2

def application(environ, start_response):
    body = 'psycopg2 in %r' % environ['mod_wsgi.application_group']
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
"#;

const PSYCOPG2: &str = "/usr/lib/python3/dist-packages/psycopg2/__init__.py";

/// The line the error log must carry for the script `app.wsgi` of `site`
/// in application group `group`.
fn refusal(site: &TempDir, group: &str) -> String {
    format!(
        "mod_wsgi: '{}' cannot load in application group '{group}': the extension module '_psycopg' does not \
         support sub-interpreters; run it in the main interpreter with WSGIApplicationGroup %{{GLOBAL}}, or set \
         WSGIApplicationGroupFallback %{{GLOBAL}}",
        site.path().join("app.wsgi").display()
    )
}

fn standalone(site: &TempDir, config: &str) -> Server {
    let file = site.path().join("site.conf");
    Server::start_with(|port| {
        std::fs::write(&file, format!("Listen 127.0.0.1:{port}\n{config}")).unwrap();
        vec!["--config".into(), file.clone().into()]
    })
}

#[test]
fn an_extension_that_refuses_sub_interpreters_gets_a_clear_error_or_the_fallback() {
    tests::require!(PSYCOPG2);
    let site = TempDir::new("subinterp-ext");
    site.write("app.wsgi", APP);
    let dir = site.path().display();
    let alias = format!("WSGIScriptAlias /app {dir}/app.wsgi application-group=shop\n");

    let server = standalone(&site, &alias);
    let first = server.get("/app/");
    if !tests::built_python_at_least(3, 12) {
        // 3.11: the sub-interpreter loads it, as mod_wsgi's always have.
        assert_eq!((first.status(), first.text()), (200, "psycopg2 in 'shop'".to_string()), "{}", server.stderr());
        return;
    }
    assert_eq!(first.status(), 500, "{}", first.text());
    assert_eq!(server.get("/app/").status(), 500);
    let log = server.stderr();
    // CPython names the module `_psycopg` the first time, by its package
    // after that.
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("cannot load in application group")).collect();
    assert_eq!(lines.len(), 2, "one line per request:\n{log}");
    assert!(lines[0].ends_with(&refusal(&site, "shop")), "{log}");
    assert!(lines[1].contains("the extension module 'psycopg2._psycopg' does not support sub-interpreters"), "{log}");
    drop(server);

    // With the fallback, the application runs in the main interpreter.
    let server = standalone(&site, &format!("WSGIApplicationGroupFallback %{{GLOBAL}}\n{alias}"));
    for _ in 0..3 {
        let response = server.get("/app/");
        assert_eq!((response.status(), response.text()), (200, "psycopg2 in ''".to_string()), "{}", server.stderr());
    }
    let log = server.stderr();
    assert_eq!(log.matches("as WSGIApplicationGroupFallback says").count(), 1, "one warning:\n{log}");
    assert!(log.contains("'psycopg2._psycopg', which does not support sub-interpreters"), "{log}");
}

#[test]
fn apache_reports_the_refusal_and_falls_back_alike() {
    tests::require!(tests::apache::APACHE_BINARY, PSYCOPG2, "/usr/bin/curl");
    if !tests::built_python_at_least(3, 12) {
        return;
    }
    let site = TempDir::new("subinterp-ext-apache");
    site.write("app.wsgi", APP);
    let dir = site.path().display();
    let alias = format!("WSGIScriptAlias /app {dir}/app.wsgi application-group=shop\n");
    let apache = Apache::start(&ApacheOptions::ours(alias.clone()));
    let url = format!("http://127.0.0.1:{}/app/", apache.port());
    assert_eq!(tests::apache::curl(&url, &[]).0, 500);
    let log = apache.error_log();
    assert!(log.contains(&refusal(&site, "shop")), "{log}");
    drop(apache);

    let apache = Apache::start(&ApacheOptions::ours(format!("WSGIApplicationGroupFallback %{{GLOBAL}}\n{alias}")));
    let url = format!("http://127.0.0.1:{}/app/", apache.port());
    assert_eq!(tests::apache::curl(&url, &[]), (200, "psycopg2 in ''".to_string()), "{}", apache.error_log());
}
