//! `WSGIErrorOverride On`: in daemon mode an error status from the
//! application is answered with Apache's page (here an `ErrorDocument`),
//! its body discarded; embedded mode and `Off` pass the application's page.
//! Compared with Debian's mod_wsgi on the same configuration.

use tests::apache::{Apache, ApacheOptions, WsgiModule};
use tests::TempDir;

const APP: &str = "def application(environ, start_response):\n\
\x20   start_response('404 Not Found', [('Content-Type', 'text/plain')])\n\
\x20   return [b'the application page']\n";

fn config(site: &TempDir) -> String {
    let dir = site.path().display();
    format!(
        "ErrorDocument 404 \"the server page\"\n\
         WSGIDaemonProcess pages threads=2\n\
         WSGIScriptAlias /daemon-on {dir}/app.wsgi process-group=pages application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /daemon-off {dir}/app.wsgi process-group=pages application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /embedded-on {dir}/app.wsgi process-group=%{{GLOBAL}} application-group=%{{GLOBAL}}\n\
         <Location /daemon-on>\n    WSGIErrorOverride On\n</Location>\n\
         <Location /embedded-on>\n    WSGIErrorOverride On\n</Location>\n"
    )
}

fn pages(module: WsgiModule, site: &TempDir) -> Vec<(u16, String)> {
    let apache = Apache::start(&ApacheOptions { module, ..ApacheOptions::ours(config(site)) });
    ["/daemon-on", "/daemon-off", "/embedded-on"]
        .iter()
        .map(|path| {
            let response = apache.get(path);
            (response.status(), response.text())
        })
        .collect()
}

#[test]
fn error_override_answers_with_apaches_page_in_daemon_mode() {
    tests::require!(tests::apache::APACHE_BINARY, tests::apache::REFERENCE_MODULE);
    let site = TempDir::new("error-override");
    site.write("app.wsgi", APP);
    let ours = pages(WsgiModule::Ours, &site);
    let expected = [
        (404, "the server page".to_string()),
        (404, "the application page".to_string()),
        (404, "the application page".to_string()),
    ];
    assert_eq!(ours, expected);
    assert_eq!(pages(WsgiModule::Reference, &site), expected, "Debian's mod_wsgi");
}
