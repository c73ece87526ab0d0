//! Every directive of the table: a valid line parses to the expected typed
//! value and renders back; invalid lines are refused with a message naming
//! the directive.

use std::path::PathBuf;
use std::time::Duration;

use wsgi_config::directives::{self, CoreSetting, DirSetting, GlobalSetting, Setting, UrlPattern, DIRECTIVES};
use wsgi_config::lexer::split_args;
use wsgi_config::values::{AcceptMutex, HashSeed, MapHeadToGet};

fn parse(name: &str, args: &str) -> Result<Setting, String> {
    directives::parse(name, &split_args(args).unwrap())
        .unwrap_or_else(|| panic!("{name} is not in the table"))
        .map_err(|e| e.to_string())
}

fn ok(name: &str, args: &str) -> Setting {
    parse(name, args).unwrap_or_else(|e| panic!("{name} {args}: {e}"))
}

fn err(name: &str, args: &str) -> String {
    match parse(name, args) {
        Ok(s) => panic!("{name} {args} parsed as {s:?}"),
        Err(e) => e,
    }
}

/// The directives the product promises, by name.
const PROMISED: &[&str] = &[
    "WSGIScriptAlias",
    "WSGIScriptAliasMatch",
    "WSGIDaemonProcess",
    "WSGIProcessGroup",
    "WSGIApplicationGroup",
    "WSGICallableObject",
    "WSGIImportScript",
    "WSGIHandlerScript",
    "WSGIDispatchScript",
    "WSGIScriptReloading",
    "WSGIPassAuthorization",
    "WSGIAccessScript",
    "WSGIAuthUserScript",
    "WSGIAuthGroupScript",
    "WSGIGroupAuthoritative",
    "WSGIUserAuthoritative",
    "WSGIRestrictEmbedded",
    "WSGIRestrictProcess",
    "WSGIRestrictStdin",
    "WSGIRestrictStdout",
    "WSGIRestrictSignal",
    "WSGISocketPrefix",
    "WSGISocketRotation",
    "WSGIAcceptMutex",
    "WSGIPythonHome",
    "WSGIPythonPath",
    "WSGIPythonEggs",
    "WSGIPythonOptimize",
    "WSGIPythonHashSeed",
    "WSGIPythonWarnings",
    "WSGIDontWriteBytecode",
    "WSGIDestroyInterpreter",
    "WSGILazyInitialization",
    "WSGICaseSensitivity",
    "WSGIChunkedRequest",
    "WSGIMapHEADToGET",
    "WSGIErrorOverride",
    "WSGIEnableSendfile",
    "WSGITrustedProxyHeaders",
    "WSGITrustedProxies",
    "WSGIIgnoreActivity",
    "WSGIPassApacheRequest",
    "WSGISwitchInterval",
    "WSGIPerInterpreterGIL",
    "WSGIServerMetrics",
    "WSGIFreeThreading",
    "WSGIVerboseDebugging",
    "WSGITelemetryService",
    "WSGISlowRequests",
    "WSGITelemetryOptions",
    "Listen",
    "ServerName",
    "ServerAlias",
    "ServerRoot",
    "LimitRequestBody",
    "Require",
    "AuthMerging",
    "AuthType",
    "AuthName",
    "AuthUserFile",
    "AuthBasicProvider",
    "AuthDigestProvider",
    "SetEnv",
    "PassEnv",
    "UnsetEnv",
    "Alias",
    "AliasMatch",
    "Redirect",
    "RedirectMatch",
    "RedirectPermanent",
    "RedirectTemp",
    "DocumentRoot",
    "Timeout",
    "KeepAlive",
    "KeepAliveTimeout",
    "MaxKeepAliveRequests",
    "LimitRequestLine",
    "LimitRequestFieldSize",
    "LimitRequestFields",
    "User",
    "Group",
    "ErrorLog",
    "CustomLog",
    "LogLevel",
    "LogFormat",
    "Protocols",
    "SSLEngine",
    "SSLCertificateFile",
    "SSLCertificateKeyFile",
    "SSLCertificateChainFile",
    "SSLProtocol",
    "SSLCipherSuite",
    "SSLHonorCipherOrder",
    "SSLOptions",
];

#[test]
fn the_table_has_every_promised_directive_once() {
    for name in PROMISED {
        assert!(directives::find(name).is_some(), "{name} missing");
    }
    for (i, a) in DIRECTIVES.iter().enumerate() {
        for b in &DIRECTIVES[i + 1..] {
            assert!(!a.name.eq_ignore_ascii_case(b.name), "{} twice", a.name);
        }
    }
    assert!(directives::find("wsgiscriptalias").is_some(), "names are case-insensitive");
}

/// One valid line for every table entry; each must render back to itself.
fn examples() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "WSGIScriptAlias",
            "/app /srv/app.wsgi process-group=g application-group=%{GLOBAL} callable-object=app pass-authorization=On",
        ),
        ("WSGIScriptAliasMatch", "^/wsgi/([^/]+) /srv/wsgi/$1.wsgi"),
        ("WSGIDaemonProcess", "site processes=2 threads=4 display-name=%{GROUP}"),
        ("WSGISocketPrefix", "run/wsgi"),
        ("WSGISocketRotation", "Off"),
        ("WSGIAcceptMutex", "flock"),
        ("WSGIVerboseDebugging", "On"),
        ("WSGIDontWriteBytecode", "On"),
        ("WSGIPythonWarnings", "ignore::DeprecationWarning"),
        ("WSGIPythonOptimize", "2"),
        ("WSGIPythonHome", "/opt/venv"),
        ("WSGIPythonPath", "/srv/a:/srv/b"),
        ("WSGIPythonEggs", "/tmp/eggs"),
        ("WSGIPythonHashSeed", "random"),
        ("WSGISwitchInterval", "0.01"),
        ("WSGIDestroyInterpreter", "Off"),
        ("WSGIApplicationGroupFallback", "%{GLOBAL}"),
        ("WSGIPerInterpreterGIL", "Off"),
        ("WSGIFreeThreading", "Off"),
        ("WSGIRestrictEmbedded", "On"),
        ("WSGIRestrictStdin", "Off"),
        ("WSGIRestrictStdout", "On"),
        ("WSGIRestrictSignal", "Off"),
        ("WSGICaseSensitivity", "Off"),
        ("WSGIRestrictProcess", "a b %{GLOBAL}"),
        ("WSGIProcessGroup", "%{ENV:GROUP}"),
        ("WSGIApplicationGroup", "%{RESOURCE}"),
        ("WSGICallableObject", "app"),
        ("WSGIImportScript", "/srv/warm.py process-group=g application-group=%{GLOBAL}"),
        ("WSGIDispatchScript", "/srv/dispatch.py application-group=d"),
        ("WSGIPassApacheRequest", "On"),
        ("WSGIPassAuthorization", "On"),
        ("WSGIScriptReloading", "Off"),
        ("WSGIErrorOverride", "On"),
        ("WSGIChunkedRequest", "On"),
        ("WSGIMapHEADToGET", "Auto"),
        ("WSGIIgnoreActivity", "On"),
        ("WSGITrustedProxyHeaders", "X-Forwarded-For X-Forwarded-Proto"),
        ("WSGITrustedProxies", "10.0.0.0/8 192.168.1.7/32"),
        ("WSGIEnableSendfile", "On"),
        ("WSGIAccessScript", "/srv/access.py"),
        ("WSGIAuthUserScript", "/srv/auth.py application-group=auth"),
        ("WSGIAuthGroupScript", "/srv/groups.py"),
        ("WSGIGroupAuthoritative", "Off"),
        ("WSGIUserAuthoritative", "Off"),
        ("WSGIHandlerScript", "my-handler /srv/handler.py process-group=g pass-authorization=Off"),
        ("WSGIServerMetrics", "On"),
        ("WSGITelemetryService", "unix:/run/t.sock interval=2"),
        ("WSGISlowRequests", "1.5"),
        ("WSGITelemetryOptions", "+CaptureUserAgent"),
        ("WSGILazyInitialization", "Off"),
        ("WSGIPy3kWarningFlag", "Off"),
        ("WSGINewRelicConfigFile", "/etc/newrelic.ini"),
        ("WSGINewRelicEnvironment", "staging"),
        ("Listen", "[::1]:8443 https"),
        ("ServerName", "www.example.com:8080"),
        ("ServerAlias", "example.com *.example.com"),
        ("ServerRoot", "/etc/apache2"),
        ("LimitRequestBody", "1048576"),
        ("Require", "not ip 10.0.0.0/8"),
        ("AuthMerging", "And"),
        ("AuthType", "Basic"),
        ("AuthName", "\"Private area\""),
        ("AuthUserFile", "/etc/apache2/htpasswd"),
        ("AuthBasicProvider", "file wsgi"),
        ("AuthDigestProvider", "wsgi"),
        ("SetEnv", "APP_MODE production"),
        ("PassEnv", "HOME LANG"),
        ("UnsetEnv", "APP_MODE"),
        ("Alias", "/static/ /srv/static/"),
        ("AliasMatch", "^/img/(.*)$ /srv/images/$1"),
        ("Redirect", "301 /old http://example.com/new"),
        ("RedirectMatch", "302 ^/item/(.*)$ /items/$1"),
        ("RedirectPermanent", "/a /b"),
        ("RedirectTemp", "/c /d"),
        ("DocumentRoot", "/var/www/html"),
        ("Timeout", "300"),
        ("KeepAlive", "Off"),
        ("KeepAliveTimeout", "500ms"),
        ("MaxKeepAliveRequests", "0"),
        ("LimitRequestLine", "16384"),
        ("LimitRequestFieldSize", "16384"),
        ("LimitRequestFields", "0"),
        ("User", "www-data"),
        ("Group", "www-data"),
        ("ErrorLog", "/var/log/apache2/error.log"),
        ("CustomLog", "/var/log/apache2/access.log combined env=!dontlog"),
        ("LogLevel", "warn wsgi:info"),
        ("LogFormat", "\"%h %l %u %t \\\"%r\\\" %>s %b\" common"),
        ("Protocols", "h2 h2c http/1.1"),
        ("SSLEngine", "On"),
        ("SSLCertificateFile", "/etc/ssl/site.crt"),
        ("SSLCertificateKeyFile", "/etc/ssl/site.key"),
        ("SSLCertificateChainFile", "/etc/ssl/chain.pem"),
        ("SSLProtocol", "-all +TLSv1.2 +TLSv1.3"),
        ("SSLCipherSuite", "HIGH:!aNULL:!MD5"),
        ("SSLHonorCipherOrder", "On"),
        ("SSLOptions", "+StdEnvVars -ExportCertData"),
    ]
}

#[test]
fn every_directive_parses_and_renders_back() {
    let examples = examples();
    for spec in DIRECTIVES {
        assert!(examples.iter().any(|(name, _)| *name == spec.name), "no example for {}", spec.name);
    }
    for (name, args) in examples {
        let setting = ok(name, args);
        let line = setting.to_line();
        let (rendered_name, rendered_args) = line.split_once(' ').unwrap();
        assert_eq!(rendered_name, name);
        assert_eq!(ok(name, rendered_args), setting, "{line}");
    }
}

#[test]
fn typed_values() {
    assert_eq!(
        ok("WSGIPythonPath", "/a:/b::/c"),
        Setting::Global(GlobalSetting::PythonPath(vec!["/a".into(), "/b".into(), "/c".into()]))
    );
    assert_eq!(ok("WSGIPythonHashSeed", "42"), Setting::Global(GlobalSetting::PythonHashSeed(HashSeed::Fixed(42))));
    assert_eq!(ok("WSGIAcceptMutex", "PthReaD"), Setting::Global(GlobalSetting::AcceptMutex(AcceptMutex::Pthread)));
    assert_eq!(ok("WSGIMapHEADToGET", "off"), Setting::Dir(DirSetting::MapHeadToGet(MapHeadToGet::Off)));
    assert_eq!(ok("KeepAliveTimeout", "2"), Setting::Core(CoreSetting::KeepAliveTimeout(Duration::from_secs(2))));
    assert_eq!(ok("Timeout", "2mi"), Setting::Core(CoreSetting::Timeout(Duration::from_secs(120))));
    let Setting::ScriptAlias(alias) = ok("WSGIScriptAliasMatch", "^/(\\w+) /srv/$1.wsgi") else { panic!() };
    assert!(matches!(alias.url, UrlPattern::Regex(_)));
    assert!(!alias.preloads());
    let Setting::ScriptAlias(alias) =
        ok("WSGIScriptAlias", "/ /srv/a.wsgi process-group=g application-group=%{GLOBAL}")
    else {
        panic!()
    };
    assert!(alias.preloads(), "both groups fixed: imported at process start");
    let Setting::ScriptAlias(alias) = ok("WSGIScriptAlias", "/ /srv/a.wsgi process-group=g") else { panic!() };
    assert!(!alias.preloads());
    let Setting::Core(CoreSetting::Listen(listen)) = ok("Listen", "8080") else { panic!() };
    assert_eq!((listen.address, listen.port), (None, 8080));
    let Setting::Core(CoreSetting::Listen(listen)) = ok("Listen", "127.0.0.1:80") else { panic!() };
    assert_eq!(listen.address.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        ok("WSGIImportScript", "/x.py application-group=a process-group=%{GLOBAL}"),
        Setting::ImportScript(wsgi_config::directives::ImportScript {
            path: PathBuf::from("/x.py"),
            process_group: "%{GLOBAL}".into(),
            application_group: "a".into(),
        })
    );
}

#[test]
fn invalid_lines_are_refused_with_the_directive_named() {
    let cases: &[(&str, &str, &str)] = &[
        ("WSGIScriptAlias", "/only-one", "WSGIScriptAlias takes at least two arguments"),
        ("WSGIScriptAlias", "/a /b.wsgi bogus=1", "WSGIScriptAlias: unknown option 'bogus'"),
        (
            "WSGIScriptAlias",
            "/a /b.wsgi process-group=",
            "WSGIScriptAlias: invalid value '' for option 'process-group'",
        ),
        ("WSGIScriptAlias", "/a /b.wsgi pass-authorization=maybe", "option 'pass-authorization'"),
        ("WSGIScriptAlias", "/a /b.wsgi stray", "WSGIScriptAlias: malformed option 'stray'"),
        ("WSGIScriptAliasMatch", "^/(unclosed /b.wsgi", "regular expression could not be compiled"),
        ("WSGIDaemonProcess", "g threads=abc", "WSGIDaemonProcess: invalid value 'abc' for option 'threads'"),
        ("WSGISocketRotation", "maybe", "WSGISocketRotation must be one of: Off | On"),
        ("WSGISocketRotation", "On Off", "WSGISocketRotation takes one argument"),
        ("WSGIAcceptMutex", "spin", "WSGIAcceptMutex: invalid value 'spin'"),
        ("WSGIPythonOptimize", "3", "WSGIPythonOptimize: invalid value '3'"),
        ("WSGIPythonHashSeed", "4294967296", "must be \"random\" or an integer"),
        ("WSGIPythonHashSeed", "Random", "WSGIPythonHashSeed: invalid value 'Random'"),
        ("WSGISwitchInterval", "0", "positive number of seconds"),
        ("WSGISwitchInterval", "abc", "WSGISwitchInterval: invalid value 'abc'"),
        ("WSGIProcessGroup", "%{BOGUS}", "WSGIProcessGroup: invalid value '%{BOGUS}'"),
        ("WSGIApplicationGroup", "\"\"", "WSGIApplicationGroup: invalid value ''"),
        ("WSGIApplicationGroup", "", "WSGIApplicationGroup takes one argument"),
        ("WSGICallableObject", "%{RESOURCE}", "WSGICallableObject: invalid value '%{RESOURCE}'"),
        ("WSGIImportScript", "/x.py process-group=g", "name of WSGI application group required"),
        ("WSGIImportScript", "/x.py application-group=a", "name of WSGI process group required"),
        ("WSGIImportScript", "", "location of import script not supplied"),
        ("WSGIHandlerScript", "name", "location of handler script not supplied"),
        ("WSGIHandlerScript", "", "name for handler script not supplied"),
        ("WSGIHandlerScript", "h /x.py callable-object=f", "WSGIHandlerScript: unknown option 'callable-object'"),
        ("WSGIDispatchScript", "/d.py process-group=x", "WSGIDispatchScript: unknown option 'process-group'"),
        ("WSGIAccessScript", "", "location of access script not supplied"),
        ("WSGIAuthUserScript", "application-group=x", "location of auth user script not supplied"),
        ("WSGIMapHEADToGET", "sometimes", "WSGIMapHEADToGET must be one of: Off | On | Auto"),
        ("WSGITrustedProxies", "10.0.0.0/33", "WSGITrustedProxies: invalid value '10.0.0.0/33'"),
        ("WSGITrustedProxies", "proxy.example.com", "unable to parse trusted proxy"),
        ("WSGITrustedProxyHeaders", "X_Forwarded_For", "WSGITrustedProxyHeaders: invalid value 'X_Forwarded_For'"),
        ("WSGITelemetryService", "udp:host:1", "target must be 'unix:/path'"),
        ("WSGITelemetryService", "unix:/s interval=0.1", "at least 0.5 seconds"),
        ("WSGISlowRequests", "-1", "non-negative"),
        ("WSGITelemetryOptions", "", "at least one flag required"),
        ("WSGITelemetryOptions", "+CaptureUserAgent None", "cannot mix +/- form"),
        ("WSGITelemetryOptions", "Bogus", "unknown flag 'Bogus'"),
        ("WSGITelemetryOptions", "+All", "'All' may not have a +/- prefix"),
        ("Listen", "http", "Listen: invalid value 'http'"),
        ("Listen", "::1:80", "brackets"),
        ("Listen", "80 http extra", "Listen takes 1-2 arguments"),
        ("LimitRequestBody", "-5", "LimitRequestBody: invalid value '-5'"),
        ("LimitRequestBody", "2147483648", "LimitRequestBody: invalid value"),
        ("Timeout", "5 years", "Timeout takes one argument"),
        ("KeepAliveTimeout", "5d", "KeepAliveTimeout: invalid value '5d'"),
        ("Alias", "/only", "Alias takes two arguments"),
        ("CustomLog", "/only", "CustomLog takes two or three arguments"),
        ("ServerName", "bad/name", "ServerName: invalid value 'bad/name'"),
    ];
    for (name, args, expected) in cases {
        let message = err(name, args);
        assert!(message.contains(expected), "{name} {args}: got {message:?}, expected it to contain {expected:?}");
    }
}

#[test]
fn contexts_follow_mod_wsgi() {
    use wsgi_config::directives::Context::*;
    let allows = |name: &str, context| directives::find(name).unwrap().contexts.allows(context);
    // RSRC_CONF
    for name in ["WSGIScriptAlias", "WSGIDaemonProcess", "WSGIImportScript", "WSGIPythonHome"] {
        assert!(allows(name, Server) && allows(name, VirtualHost), "{name}");
        assert!(!allows(name, Directory) && !allows(name, Htaccess), "{name}");
    }
    // ACCESS_CONF | RSRC_CONF
    for name in ["WSGIProcessGroup", "WSGIApplicationGroup", "WSGIHandlerScript", "WSGIDispatchScript"] {
        assert!(allows(name, Directory) && allows(name, Server), "{name}");
        assert!(!allows(name, Htaccess), "{name}");
    }
    // OR_FILEINFO
    for name in ["WSGICallableObject", "WSGIPassAuthorization", "WSGIChunkedRequest"] {
        assert!(allows(name, Htaccess) && allows(name, Server), "{name}");
    }
    // OR_AUTHCFG: never at server or virtual host level.
    for name in ["WSGIAccessScript", "WSGIAuthUserScript", "WSGIAuthGroupScript", "WSGIGroupAuthoritative"] {
        assert!(allows(name, Directory) && allows(name, Htaccess), "{name}");
        assert!(!allows(name, Server) && !allows(name, VirtualHost), "{name}");
    }
    for name in ["WSGIPythonHome", "WSGIRestrictEmbedded", "WSGISocketPrefix", "Listen", "User"] {
        assert!(directives::find(name).unwrap().global_only, "{name}");
    }
    for name in ["WSGIScriptAlias", "WSGIImportScript", "WSGIDaemonProcess"] {
        assert!(!directives::find(name).unwrap().global_only, "{name}");
    }
}

/// `WSGIPerInterpreterGIL On` and `WSGIFreeThreading On` parse (mod_wsgi 6
/// has them); a front end refuses them unless its Python has the feature.
#[test]
fn python_features_gate_the_gil_directives() {
    use wsgi_config::support::{check, FrontEnd, PythonFeatures};
    let words = |text: &str| split_args(text).unwrap();
    let per_interpreter = ok("WSGIPerInterpreterGIL", "On");
    let free_threading = ok("WSGIFreeThreading", "on");
    let refused = |python: PythonFeatures, name: &str, setting: &Setting| {
        check(FrontEnd::Standalone, python, name, &words("On"), setting).map_err(|e| e.to_string())
    };
    let old = PythonFeatures::default();
    assert_eq!(
        refused(old, "WSGIPerInterpreterGIL", &per_interpreter).unwrap_err(),
        "WSGIPerInterpreterGIL On needs Python 3.12 or later (a GIL per interpreter), which this server does not \
         embed: refused rather than ignored"
    );
    assert!(refused(old, "WSGIFreeThreading", &free_threading).unwrap_err().contains("free-threaded Python 3.13"));
    let newer = PythonFeatures { own_gil: true, free_threading: false };
    assert!(refused(newer, "WSGIPerInterpreterGIL", &per_interpreter).is_ok());
    assert!(refused(newer, "WSGIFreeThreading", &free_threading).is_err());
    let off = ok("WSGIPerInterpreterGIL", "Off");
    for python in [old, newer] {
        assert!(check(FrontEnd::Apache, python, "WSGIPerInterpreterGIL", &words("Off"), &off).is_ok());
    }
}
