//! `WSGIMapHEADToGET` in real Apache, side by side with Debian's mod_wsgi:
//! a HEAD reaches the application as GET when told to (`On`), or when a
//! content filter will see the body (`Auto`), so that the filter's headers
//! are the same as for a GET; where the directive is not given, nothing is
//! mapped, as Debian's 4.9.4 does.

use tests::apache::{Apache, ApacheOptions, WsgiModule};
use tests::TempDir;

const APP: &str = r#"
def application(environ, start_response):
    body = b'x' * 4000
    start_response('200 OK', [('Content-Type', 'text/plain'), ('X-Method', environ['REQUEST_METHOD'])])
    return [body]
"#;

fn config(site: &TempDir) -> String {
    let dir = site.path().display();
    format!(
        "WSGIScriptAlias /plain {dir}/app.wsgi\n\
         WSGIScriptAlias /on {dir}/app.wsgi\n\
         WSGIScriptAlias /filtered {dir}/app.wsgi\n\
         WSGIScriptAlias /off {dir}/app.wsgi\n\
         WSGIScriptAlias /auto {dir}/app.wsgi\n\
         <Location /on>\n  WSGIMapHEADToGET On\n</Location>\n\
         <Location /filtered>\n  SetOutputFilter DEFLATE\n</Location>\n\
         <Location /off>\n  SetOutputFilter DEFLATE\n  WSGIMapHEADToGET Off\n</Location>\n\
         <Location /auto>\n  SetOutputFilter DEFLATE\n  WSGIMapHEADToGET Auto\n</Location>\n"
    )
}

/// What the application saw for a HEAD of `path`, and the status, body
/// length and (with `encoding`) Content-Encoding the client got.
fn head(apache: &Apache, path: &str, encoding: bool) -> String {
    let response = apache.request("HEAD", path, &[("Accept-Encoding", "gzip")], b"");
    let mut text =
        format!("{} method={:?} body={}", response.status(), response.header("X-Method"), response.body.len());
    if encoding {
        text.push_str(&format!(" encoding={:?}", response.header("Content-Encoding")));
    }
    text
}

#[test]
fn head_is_mapped_to_get_as_mod_wsgi_maps_it() {
    tests::require!(tests::apache::APACHE_BINARY, tests::apache::REFERENCE_MODULE);
    let site = TempDir::new("apache-head");
    site.write("app.wsgi", APP);
    let options = ApacheOptions { modules: vec!["deflate"], ..ApacheOptions::ours(config(&site)) };
    let ours = Apache::start(&options);
    let reference = Apache::start(&ApacheOptions { module: WsgiModule::Reference, ..options.clone() });
    // (path, the method the application sees, whether the filter's
    // Content-Encoding is compared). An unmapped HEAD through a content
    // filter is the one difference: mod_wsgi passes the body it discards
    // through the filter (which then says gzip), ours discards it before.
    let expected = [
        ("/plain", "HEAD", true),
        ("/on", "GET", true),
        ("/filtered", "HEAD", false),
        ("/off", "HEAD", false),
        ("/auto", "GET", true),
    ];
    for (path, method, encoding) in expected {
        let got = head(&ours, path, encoding);
        assert_eq!(got, head(&reference, path, encoding), "{path}: ours, then mod_wsgi's\n{}", ours.error_log());
        assert!(got.starts_with(&format!("200 method={:?} body=0", Some(method))), "{path}: {got}");
    }
}
