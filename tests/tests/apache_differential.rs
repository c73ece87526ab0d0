//! The drop-in proof: the same configuration text in two real Apaches, one
//! with our module and one with Debian's mod_wsgi, answers the same requests
//! with the same environ, key for key, except what must differ.

use std::collections::BTreeMap;

use tests::apache::{environ_differences, Apache, ApacheOptions, WsgiModule, MAY_DIFFER};
use tests::TempDir;

/// Dumps the environ as JSON: strings, numbers, booleans and tuples as
/// they are; objects by the methods they offer.
const DUMP_APP: &str = r#"
import json
def application(environ, start_response):
    out = {}
    for key, value in environ.items():
        if isinstance(value, (str, int, bool, tuple)):
            out[key] = value
        else:
            out[key] = sorted(m for m in ('read', 'readline', 'readlines', 'write', 'writelines', 'flush', '__iter__', '__call__') if hasattr(value, m))
    if environ.get('CONTENT_LENGTH'):
        out['body'] = environ['wsgi.input'].read().decode('latin-1')
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [json.dumps(out, sort_keys=True).encode()]
"#;

/// Parses the dump into key -> JSON text of the value, with the server's
/// port replaced by `PORT`.
fn parse_dump(text: &str, port: u16) -> BTreeMap<String, String> {
    let text = text.replace(&port.to_string(), "PORT");
    let mut out = BTreeMap::new();
    // A tiny reader for the flat object json.dumps writes: "key": value.
    let body = text.trim().trim_start_matches('{').trim_end_matches('}');
    let mut rest = body;
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let Some(end) = find_string_end(after) else { break };
        let key = after[..end].to_string();
        let value_start = &after[end + 1..];
        let value_start = value_start.trim_start().trim_start_matches(':').trim_start();
        let value_len = value_length(value_start);
        out.insert(key, value_start[..value_len].to_string());
        rest = &value_start[value_len..];
    }
    out
}

fn find_string_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn value_length(text: &str) -> usize {
    let bytes = text.as_bytes();
    match bytes.first() {
        Some(b'"') => find_string_end(&text[1..]).map_or(text.len(), |end| end + 2),
        Some(b'[') => text.find(']').map_or(text.len(), |end| end + 1),
        _ => text.find([',', '}']).unwrap_or(text.len()),
    }
}

struct Case {
    title: &'static str,
    method: &'static str,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static [u8],
}

const CASES: &[Case] = &[
    Case {
        title: "GET with path info, query, cookie and custom header",
        method: "GET",
        path: "/env/a/b?x=1&y=%20z",
        headers: &[("Cookie", "a=1"), ("X-Custom", "v1")],
        body: b"",
    },
    Case {
        title: "form POST",
        method: "POST",
        path: "/env/form",
        headers: &[("Content-Type", "application/x-www-form-urlencoded")],
        body: b"a=1&b=2",
    },
    Case { title: "alias without path info", method: "GET", path: "/env", headers: &[], body: b"" },
    Case { title: "alias with a trailing slash", method: "GET", path: "/env/", headers: &[], body: b"" },
    Case { title: "root mount", method: "GET", path: "/", headers: &[], body: b"" },
    Case { title: "root mount, dot segments", method: "GET", path: "/a//b/../c", headers: &[], body: b"" },
    Case { title: "encoded characters", method: "GET", path: "/env/caf%C3%A9%20x?q=%C3%A9", headers: &[], body: b"" },
    Case { title: "%{GLOBAL} group", method: "GET", path: "/global/x", headers: &[], body: b"" },
    Case { title: "named group and callable", method: "GET", path: "/named", headers: &[], body: b"" },
    Case {
        title: "pass-authorization",
        method: "GET",
        path: "/auth/x",
        headers: &[("Authorization", "Basic Zm9vOmJhcg==")],
        body: b"",
    },
    Case {
        title: "authorization not passed by default",
        method: "GET",
        path: "/env/x",
        headers: &[("Authorization", "Basic Zm9vOmJhcg==")],
        body: b"",
    },
    Case { title: "directory target", method: "GET", path: "/dir/app.wsgi/more", headers: &[], body: b"" },
    Case { title: "WSGIScriptAliasMatch", method: "GET", path: "/match/app/tail", headers: &[], body: b"" },
    Case { title: "AddHandler with ExecCGI", method: "GET", path: "/handler/app.wsgi/p", headers: &[], body: b"" },
    Case {
        title: "trusted proxy headers",
        method: "GET",
        path: "/proxied/x",
        headers: &[("X-Forwarded-Proto", "https"), ("X-Forwarded-For", "10.0.0.1, 10.0.0.2")],
        body: b"",
    },
    Case { title: "SetEnv", method: "GET", path: "/env/setenv", headers: &[], body: b"" },
    Case {
        title: "header names with underscores, repeated headers",
        method: "GET",
        path: "/env/h",
        headers: &[("X_Under", "1"), ("X-Dup", "a"), ("X-Dup", "b"), ("Accept", "text/plain")],
        body: b"",
    },
    Case {
        title: "Host header naming another host",
        method: "GET",
        path: "/env/h",
        headers: &[("Host", "example.org:8080")],
        body: b"",
    },
    Case {
        title: "Host header without a port",
        method: "GET",
        path: "/env/h",
        headers: &[("Host", "example.org")],
        body: b"",
    },
];

fn config(site: &TempDir) -> String {
    let dir = site.path().display();
    format!(
        "WSGIScriptAlias /env {dir}/app.wsgi\n\
         WSGIScriptAlias /global {dir}/app.wsgi application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /named {dir}/named.wsgi application-group=named callable-object=app\n\
         WSGIScriptAlias /auth {dir}/app.wsgi pass-authorization=On\n\
         WSGIScriptAlias /dir/ {dir}/scripts/\n\
         WSGIScriptAliasMatch ^/match/([^/]+) {dir}/scripts/$1.wsgi\n\
         WSGIScriptAlias /proxied {dir}/proxied.wsgi\n\
         Alias /handler {dir}/handler\n\
         <Directory {dir}/handler>\n  Options ExecCGI\n  AddHandler wsgi-script .wsgi\n</Directory>\n\
         <Location /proxied>\n  WSGITrustedProxyHeaders X-Forwarded-Proto X-Forwarded-For\n</Location>\n\
         SetEnv DEPLOYMENT staging\n\
         WSGIScriptAlias / {dir}/app.wsgi\n"
    )
}

#[test]
fn our_environ_matches_mod_wsgi_key_for_key() {
    tests::require!(tests::apache::APACHE_BINARY, tests::apache::REFERENCE_MODULE);
    let site = TempDir::new("apache-diff");
    site.write("app.wsgi", DUMP_APP);
    site.write("named.wsgi", &DUMP_APP.replace("def application(", "def app("));
    site.write("scripts/app.wsgi", DUMP_APP);
    site.write("handler/app.wsgi", DUMP_APP);
    site.write("proxied.wsgi", DUMP_APP);
    let modules = vec!["alias", "mime", "env"];
    let ours = Apache::start(&ApacheOptions { modules: modules.clone(), ..ApacheOptions::ours(config(&site)) });
    let reference =
        Apache::start(&ApacheOptions { module: WsgiModule::Reference, modules, ..ApacheOptions::ours(config(&site)) });

    let mut differences = Vec::new();
    for case in CASES {
        let a = ours.request(case.method, case.path, case.headers, case.body);
        let b = reference.request(case.method, case.path, case.headers, case.body);
        if a.status() != b.status() {
            differences.push(format!("{}: status {} vs mod_wsgi's {}", case.title, a.status(), b.status()));
            continue;
        }
        if a.status() != 200 {
            differences.push(format!("{}: both answered {}", case.title, a.status()));
            continue;
        }
        let ours_env = parse_dump(&a.text(), ours.port());
        let theirs = parse_dump(&b.text(), reference.port());
        assert!(theirs.len() > 20, "{}: mod_wsgi's dump did not parse: {}", case.title, b.text());
        differences.extend(environ_differences(case.title, &ours_env, &theirs, MAY_DIFFER));
    }
    assert!(differences.is_empty(), "environ differences from mod_wsgi:\n{}", differences.join("\n"));
}
