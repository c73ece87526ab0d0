//! The configuration examples of mod_wsgi's documentation, rewritten as
//! fixtures under `tests/fixtures/docs/`, each loaded and checked for the
//! model facts the example is about; and malformed variants checked for
//! `FILE:LINE: message` errors.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use wsgi_config::directives::{
    GlobalSetting, HandlerScript, ImportScript, ScriptAlias, ScriptRef, UrlPattern, TELEMETRY_CAPTURE_USER_AGENT,
};
use wsgi_config::model::{GlobalSettings, SectionKind, DEFAULT_LIMIT_REQUEST_BODY};
use wsgi_config::tree::ReadOptions;
use wsgi_config::values::{AcceptMutex, HashSeed, IpSubnet, MapHeadToGet};
use wsgi_config::{Config, DaemonProcess, DirSettings, Server};

// ---------------------------------------------------------------------------
// Helpers

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/docs")
}

fn load_with(name: &str, options: &ReadOptions) -> Config {
    let path = fixtures_dir().join(name);
    match wsgi_config::load_file(&path, options) {
        Ok(config) => config,
        Err(errors) => panic!("fixture {name} should load, but:\n{errors}"),
    }
}

fn load(name: &str) -> Config {
    load_with(name, &ReadOptions::standalone(fixtures_dir()).reference())
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap_or_else(|e| panic!("bad socket address {text}: {e}"))
}

fn daemon<'a>(config: &'a Config, name: &str) -> &'a DaemonProcess {
    match config.daemon(name) {
        Some(group) => &group.process,
        None => panic!(
            "no daemon named {name}; have {:?}",
            config.daemon_processes.iter().map(|d| &d.process.name).collect::<Vec<_>>()
        ),
    }
}

fn daemon_names(config: &Config) -> Vec<&str> {
    config.daemon_processes.iter().map(|d| d.process.name.as_str()).collect()
}

/// The server picked for `local` and `host`, checked to be the virtual host
/// with `expected` as its `ServerName`.
fn vhost<'a>(config: &'a Config, local: &str, host: Option<&str>, expected: &str) -> &'a Server {
    let server = config.select_server(addr(local), host);
    assert!(
        !std::ptr::eq(server, &config.main_server),
        "{local} / {host:?} selected the main server, expected {expected}"
    );
    assert_eq!(server.server_name.as_deref(), Some(expected), "{local} / {host:?}");
    server
}

fn settings(config: &Config, server: &Server, url: &str, file: &str) -> DirSettings {
    config.settings_for(server, url, Some(Path::new(file)))
}

fn prefix(alias: &ScriptAlias) -> &str {
    match &alias.url {
        UrlPattern::Prefix(p) => p,
        UrlPattern::Regex(r) => panic!("expected a URL prefix, got the regex {}", r.as_str()),
    }
}

fn regex(alias: &ScriptAlias) -> &regex::Regex {
    match &alias.url {
        UrlPattern::Regex(r) => r,
        UrlPattern::Prefix(p) => panic!("expected a regex, got the prefix {p}"),
    }
}

fn mounts(aliases: &[ScriptAlias]) -> Vec<(&str, &str)> {
    aliases.iter().map(|a| (a.url.as_str(), a.target.as_str())).collect()
}

fn other_names(server: &Server) -> Vec<&str> {
    server.other_directives.iter().map(|d| d.name.as_str()).collect()
}

fn script(path: &str, application_group: Option<&str>) -> ScriptRef {
    ScriptRef { path: PathBuf::from(path), application_group: application_group.map(String::from) }
}

fn paths(list: &[&str]) -> Vec<PathBuf> {
    list.iter().map(PathBuf::from).collect()
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Every fixture that has a test below; a new fixture must be added here.
const FIXTURES: &[&str] = &[
    "application_groups.conf",
    "auth_group_and_access.conf",
    "auth_user_script.conf",
    "callable_object.conf",
    "conditional_and_include.conf",
    "dispatch_script.conf",
    "gil_modes.conf",
    "handler_script.conf",
    "http_and_https.conf",
    "import_script.conf",
    "interpreter_options.conf",
    "process_group_env.conf",
    "processes_and_threads.conf",
    "python_process_settings.conf",
    "quick_embedded.conf",
    "quick_vhost_daemon.conf",
    "quick_vhost_static.conf",
    "recommended_timeouts.conf",
    "request_handling_flags.conf",
    "restrict_process.conf",
    "reverse_proxy.conf",
    "script_alias_match.conf",
    "script_alias_options.conf",
    "script_alias_targets.conf",
    "security_hardening.conf",
    "service_daemon.conf",
    "several_mounts.conf",
    "shared_daemon.conf",
    "static_files.conf",
    "telemetry.conf",
    "venv_daemon.conf",
    "venv_embedded.conf",
    "vhosts_own_daemons.conf",
];

#[test]
fn every_fixture_is_covered_and_loads() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures directory")
        .map(|entry| entry.expect("directory entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".conf"))
        .collect();
    let listed: BTreeSet<String> = FIXTURES.iter().map(|s| s.to_string()).collect();
    assert_eq!(on_disk, listed, "fixtures on disk and FIXTURES differ");
    for name in FIXTURES {
        let text = std::fs::read_to_string(fixtures_dir().join(name)).unwrap();
        assert!(text.starts_with("# "), "{name} should open with a comment naming its docs page");
        load(name);
    }
}

// ---------------------------------------------------------------------------
// WSGIScriptAlias and WSGIScriptAliasMatch

#[test]
fn script_alias_targets() {
    let config = load("script_alias_targets.conf");
    let main = &config.main_server;
    assert_eq!(main.server_name.as_deref(), Some("apps.orchard.test"));
    assert_eq!(main.document_root.as_deref(), Some(Path::new("/var/orchard/htdocs")));
    assert_eq!(
        mounts(&main.script_aliases),
        [
            ("/tools/", "/opt/orchard/wsgi-bin/"),
            ("/inventory", "/opt/orchard/wsgi-bin/inventory"),
            ("/", "/opt/orchard/wsgi-bin/site.wsgi"),
        ]
    );
    for alias in &main.script_aliases {
        prefix(alias);
        assert_eq!(alias.directive_name(), "WSGIScriptAlias");
        assert_eq!(
            (&alias.process_group, &alias.application_group, &alias.callable_object, alias.pass_authorization),
            (&None, &None, &None, None),
            "{} has no options",
            alias.url.as_str()
        );
        assert!(!alias.preloads(), "{} names no groups", alias.url.as_str());
    }
    assert!(config.daemon_processes.is_empty());

    // Embedded mode with every default.
    let s = settings(&config, main, "/inventory", "/opt/orchard/wsgi-bin/inventory");
    assert_eq!(s.effective_process_group(), "");
    assert_eq!(s.effective_application_group(), "%{RESOURCE}");
    assert_eq!(s.effective_callable_object(), "application");

    // The SetHandler form stays with its section, as written.
    assert_eq!(main.sections.len(), 2);
    let scripts = &main.sections[1];
    assert_eq!((scripts.kind, scripts.pattern_text()), (SectionKind::Directory, "/var/orchard/htdocs/scripts"));
    let written: Vec<(&str, &[String])> =
        scripts.other_directives.iter().map(|d| (d.name.as_str(), d.args.as_slice())).collect();
    assert_eq!(written, [("SetHandler", &strings(&["wsgi-script"])[..]), ("Options", &strings(&["ExecCGI"])[..])]);
}

#[test]
fn script_alias_options() {
    let config = load("script_alias_options.conf");
    let ledger = daemon(&config, "ledger");
    assert_eq!((ledger.processes, ledger.threads), (Some(3), 10));

    let aliases = &config.main_server.script_aliases;
    assert_eq!(aliases.len(), 3);
    assert_eq!(
        aliases[0],
        ScriptAlias {
            url: UrlPattern::Prefix("/ledger".into()),
            target: "/srv/ledger/entry.wsgi".into(),
            process_group: Some("ledger".into()),
            application_group: Some("ledger-main".into()),
            callable_object: Some("make_app".into()),
            pass_authorization: Some(true),
        }
    );
    assert!(aliases[0].preloads(), "both groups fixed: preloaded");

    assert_eq!(aliases[1].process_group.as_deref(), Some("%{GLOBAL}"));
    assert_eq!(aliases[1].application_group.as_deref(), Some("%{GLOBAL}"));
    assert!(aliases[1].preloads(), "%{{GLOBAL}} counts as a fixed group");

    assert_eq!(aliases[2].process_group.as_deref(), Some("%{ENV:TENANT_POOL}"));
    assert_eq!(aliases[2].application_group.as_deref(), Some("%{ENV:TENANT_NAME}"));
    assert_eq!(aliases[2].pass_authorization, Some(false));
    assert!(!aliases[2].preloads(), "groups from the environment: no preload");

    // Alias options stay on the alias; they do not become server settings.
    assert_eq!(config.main_server.settings, DirSettings::default());
}

#[test]
fn script_alias_match() {
    let config = load("script_alias_match.conf");
    let aliases = &config.main_server.script_aliases;
    assert_eq!(aliases.len(), 3);

    let jobs = &aliases[0];
    assert_eq!(jobs.directive_name(), "WSGIScriptAliasMatch");
    assert_eq!(regex(jobs).as_str(), "^/jobs/([^/]+)");
    assert_eq!(jobs.target, "/srv/batch/scripts/$1.py");
    let caps = regex(jobs).captures("/jobs/report/extra").expect("matches /jobs/report");
    assert_eq!(&caps[1], "report");
    let mut script = String::new();
    caps.expand(&jobs.target, &mut script);
    assert_eq!(script, "/srv/batch/scripts/report.py");
    assert!(!regex(jobs).is_match("/other/jobs/x"));

    let gallery = &aliases[1];
    assert_eq!(regex(gallery).as_str(), "^/(charts|exports|thumbs)", "quotes are removed");
    assert_eq!(gallery.target, "/srv/gallery/dispatch.wsgi/$1");
    assert!(regex(gallery).is_match("/thumbs/cat.png"));
    assert!(!regex(gallery).is_match("/photos"));

    let batch = &aliases[2];
    assert_eq!(batch.process_group.as_deref(), Some("batch-pool"));
    assert_eq!(batch.application_group.as_deref(), Some("%{GLOBAL}"));
    assert!(!batch.preloads(), "a target built from the URL is never preloaded");
    // ... which is why its daemon may come after it.
    assert_eq!(daemon(&config, "batch-pool").processes, Some(2));
}

// ---------------------------------------------------------------------------
// Quick configuration guide and configuration guidelines

#[test]
fn quick_embedded() {
    let config = load("quick_embedded.conf");
    let main = &config.main_server;
    assert!(config.virtual_hosts.is_empty());
    assert!(config.daemon_processes.is_empty());
    assert_eq!(main.log_level, Some(strings(&["warn", "wsgi:info"])));
    assert_eq!(mounts(&main.script_aliases), [("/greeter", "/home/deploy/wsgi/greeter.wsgi")]);

    let s = settings(&config, main, "/greeter", "/home/deploy/wsgi/greeter.wsgi");
    assert_eq!(s.effective_process_group(), "", "embedded mode");
    assert_eq!(s.effective_application_group(), "%{RESOURCE}");
    assert!(s.effective_script_reloading());
    assert!(!s.effective_pass_authorization());
    assert_eq!(s.effective_limit_request_body(), DEFAULT_LIMIT_REQUEST_BODY);

    let [dir] = main.sections.as_slice() else { panic!("one section expected, got {:?}", main.sections) };
    assert_eq!((dir.kind, dir.pattern_text()), (SectionKind::Directory, "/home/deploy/wsgi"));
    let authz = dir.settings.authz.as_ref().expect("Require all granted is modelled");
    assert_eq!(authz.children.len(), 1);
}

#[test]
fn quick_vhost_static() {
    let config = load("quick_vhost_static.conf");
    assert_eq!(config.listen.len(), 1);
    assert_eq!((config.listen[0].address.as_deref(), config.listen[0].port), (None, 8080));
    assert_eq!(config.virtual_hosts.len(), 1);

    let site = vhost(&config, "192.0.2.7:8080", Some("Bakery.Test:8080"), "www.bakery.test");
    assert_eq!(site.addresses, ["*:8080"]);
    assert_eq!(site.server_aliases, ["bakery.test"]);
    assert_eq!(site.document_root.as_deref(), Some(Path::new("/srv/bakery/public")));
    assert!(other_names(site).contains(&"ServerAdmin"));
    // Only port 8080 is served by the virtual host.
    assert!(std::ptr::eq(config.select_server(addr("192.0.2.7:80"), Some("bakery.test")), &config.main_server));

    let aliases: Vec<(&str, &str)> = site.aliases.iter().map(|a| (a.url.as_str(), a.target.as_str())).collect();
    assert_eq!(
        aliases,
        [
            ("/robots.txt", "/srv/bakery/public/robots.txt"),
            ("/favicon.ico", "/srv/bakery/public/favicon.ico"),
            ("/media/", "/srv/bakery/public/media/"),
        ]
    );
    assert!(site.aliases.iter().all(|a| matches!(a.url, UrlPattern::Prefix(_))));
    let apps: Vec<&ScriptAlias> = config.script_aliases(site).collect();
    assert_eq!(apps.len(), 1);
    assert_eq!((prefix(apps[0]), apps[0].target.as_str()), ("/", "/srv/bakery/app/storefront.wsgi"));
    assert_eq!(site.sections.len(), 2);
}

#[test]
fn quick_vhost_daemon() {
    let config = load("quick_vhost_daemon.conf");
    let group = config.daemon("bakery.test").expect("daemon bakery.test");
    assert_eq!(group.virtual_host, Some(0), "declared inside the virtual host");
    assert_eq!(group.location.line, 16);
    let d = &group.process;
    assert_eq!((d.processes, d.threads), (Some(2), 15));
    assert_eq!(d.display_name.as_deref(), Some("%{GROUP}"));
    assert!(d.multiprocess() && d.multithread() && !d.run_once());

    let site = vhost(&config, "198.51.100.1:80", Some("bakery.test"), "www.bakery.test");
    assert_eq!(site.settings.process_group.as_deref(), Some("bakery.test"));
    let s = settings(&config, site, "/cart", "/srv/bakery/app/storefront.wsgi");
    assert_eq!(s.effective_process_group(), "bakery.test");
    assert_eq!(s.effective_application_group(), "%{RESOURCE}");
    assert_eq!(config.main_server.settings.process_group, None, "nothing leaks to the main server");
}

#[test]
fn static_files() {
    let config = load("static_files.conf");
    let site = vhost(&config, "192.0.2.1:80", Some("journal.lakeside.test"), "journal.lakeside.test");
    assert_eq!(site.aliases.len(), 3);
    assert_eq!(site.aliases[0].url, UrlPattern::Prefix("/favicon.ico".into()));
    let UrlPattern::Regex(css) = &site.aliases[1].url else {
        panic!("AliasMatch should give a regex, got {:?}", site.aliases[1].url)
    };
    assert_eq!(css.as_str(), r"/([^/]*\.css)");
    assert_eq!(site.aliases[1].target, "/opt/journal/assets/css/$1");
    assert_eq!(&css.captures("/print.css").expect("matches")[1], "print.css");
    assert_eq!(site.aliases[2].url, UrlPattern::Prefix("/static/".into()));

    // The daemon's options continue on the next line.
    let d = daemon(&config, "journal");
    assert_eq!((d.processes, d.threads, d.display_name.as_deref()), (Some(2), 15, Some("%{GROUP}")));
    let s = settings(&config, site, "/entries/1", "/opt/journal/deploy/journal.wsgi");
    assert_eq!(s.effective_process_group(), "journal");
}

#[test]
fn several_mounts() {
    let config = load("several_mounts.conf");
    let main = &config.main_server;
    assert_eq!(
        mounts(&main.script_aliases),
        [("/forum", "/opt/suite/forum.wsgi"), ("/notes", "/opt/suite/notes.wsgi"), ("/", "/opt/suite/portal.wsgi")]
    );
    assert_eq!(daemon(&config, "suite").python_home.as_deref(), Some(Path::new("/opt/venvs/suite")));

    let intranet = vhost(&config, "192.0.2.1:80", Some("intranet.suite.test"), "intranet.suite.test");
    let in_match_order: Vec<&str> = config.script_aliases(intranet).map(|a| a.url.as_str()).collect();
    assert_eq!(in_match_order, ["/admin", "/forum", "/notes", "/"], "own aliases first, then the main server's");
    let main_order: Vec<&str> = config.script_aliases(main).map(|a| a.url.as_str()).collect();
    assert_eq!(main_order, ["/forum", "/notes", "/"]);

    // WSGIProcessGroup of the main server is inherited by the virtual host.
    let s = settings(&config, intranet, "/admin", "/opt/suite/admin.wsgi");
    assert_eq!(s.effective_process_group(), "suite");
}

#[test]
fn callable_object_in_files_section() {
    let config = load("callable_object.conf");
    let main = &config.main_server;
    assert_eq!(mounts(&main.script_aliases), [("/", "/srv/pastry/pastry.py")]);
    let dir = &main.sections[0];
    assert_eq!(dir.nested.len(), 1);
    assert_eq!((dir.nested[0].container_name(), dir.nested[0].pattern_text()), ("Files", "pastry.py"));

    let s = settings(&config, main, "/", "/srv/pastry/pastry.py");
    assert_eq!(s.effective_callable_object(), "server");
    let s = settings(&config, main, "/", "/srv/pastry/other.py");
    assert_eq!(s.effective_callable_object(), "application", "only pastry.py is overridden");
}

// ---------------------------------------------------------------------------
// Daemon process groups and virtual hosts

#[test]
fn vhosts_with_own_daemons() {
    let config = load("vhosts_own_daemons.conf");
    assert_eq!(daemon_names(&config), ["www.alpine.test", "www.fjord.test"]);
    for (index, (name, user)) in [("www.alpine.test", "alpine"), ("www.fjord.test", "fjord")].into_iter().enumerate() {
        let group = config.daemon(name).unwrap();
        assert_eq!(group.virtual_host, Some(index), "{name}");
        let d = &group.process;
        assert_eq!((d.user.as_deref(), d.group.as_deref()), (Some(user), Some(user)), "{name}");
        assert_eq!((d.processes, d.threads), (Some(2), 25), "{name}");
    }

    let fjord = vhost(&config, "203.0.113.5:80", Some("www.fjord.test"), "www.fjord.test");
    assert_eq!(fjord.error_log.as_deref(), Some("logs/fjord-error_log"));
    assert_eq!(fjord.custom_logs.len(), 1);
    assert_eq!(
        (fjord.custom_logs[0].target.as_str(), fjord.custom_logs[0].format.as_str(), &fjord.custom_logs[0].condition),
        ("logs/fjord-access_log", "common", &None)
    );
    let s = settings(&config, fjord, "/", "/home/fjord/site/fjord.wsgi");
    assert_eq!(s.effective_process_group(), "www.fjord.test");

    // An unknown host falls back to the first virtual host for the address.
    let fallback = vhost(&config, "203.0.113.5:80", Some("unknown.test"), "www.alpine.test");
    let s = settings(&config, fallback, "/", "/home/alpine/site/alpine.wsgi");
    assert_eq!(s.effective_process_group(), "www.alpine.test");
}

#[test]
fn http_and_https_share_a_daemon() {
    let config = load("http_and_https.conf");
    let listen: Vec<(u16, Option<&str>)> = config.listen.iter().map(|l| (l.port, l.protocol.as_deref())).collect();
    assert_eq!(listen, [(80, None), (443, Some("https"))]);
    assert_eq!(config.daemon("meadow-shop").unwrap().virtual_host, Some(0));

    let tls = vhost(&config, "192.0.2.10:443", Some("shop.meadow.test"), "shop.meadow.test");
    assert!(std::ptr::eq(tls, &config.virtual_hosts[1]), "port 443 picks the second virtual host");
    assert_eq!(config.ssl_settings(tls).engine, Some(true));
    let s = settings(&config, tls, "/checkout", "/srv/meadow/shop/wsgi.py");
    assert_eq!(s.effective_process_group(), "meadow-shop");
    assert_eq!(s.effective_application_group(), "%{GLOBAL}");

    let plain = vhost(&config, "192.0.2.10:80", Some("shop.meadow.test"), "shop.meadow.test");
    assert!(std::ptr::eq(plain, &config.virtual_hosts[0]));
}

#[test]
fn daemon_shared_by_virtual_hosts() {
    let config = load("shared_daemon.conf");
    let group = config.daemon("common-pool").unwrap();
    assert_eq!(group.virtual_host, None, "declared outside every virtual host");
    let d = &group.process;
    assert_eq!((d.processes, d.threads), (Some(4), 15));
    assert_eq!((d.user.as_deref(), d.group.as_deref()), (Some("webapps"), Some("webapps")));
    assert_eq!(d.display_name.as_deref(), Some("%{GROUP}"));

    for (host, script) in
        [("north.harbor.test", "/srv/harbor/north/north.wsgi"), ("south.harbor.test", "/srv/harbor/south/south.wsgi")]
    {
        let site = vhost(&config, "192.0.2.1:80", Some(host), host);
        assert_eq!(mounts(&site.script_aliases), [("/", script)]);
        assert_eq!(settings(&config, site, "/", script).effective_process_group(), "common-pool");
    }
}

#[test]
fn import_scripts() {
    let config = load("import_script.conf");
    let import = |path: &str, process_group: &str, application_group: &str| ImportScript {
        path: PathBuf::from(path),
        process_group: process_group.into(),
        application_group: application_group.into(),
    };
    assert_eq!(
        config.import_scripts,
        [
            import("/srv/catalog/warmup.wsgi", "catalog", "%{GLOBAL}"),
            import("/srv/catalog/stats_reporter.py", "catalog", "telemetry"),
            import("/srv/catalog/embedded_warmup.py", "%{GLOBAL}", "%{GLOBAL}"),
        ]
    );
    assert_eq!(daemon(&config, "catalog").python_path, Some(paths(&["/srv/catalog"])));
    let alias = &config.main_server.script_aliases[0];
    assert_eq!(alias.process_group.as_deref(), Some("catalog"));
    assert!(alias.preloads());
}

#[test]
fn service_daemon_without_request_threads() {
    let config = load("service_daemon.conf");
    let d = daemon(&config, "board-watch");
    assert_eq!(d.threads, 0);
    assert!(d.server_metrics);
    assert_eq!(d.processes, None);
    assert_eq!(
        config.import_scripts,
        [ImportScript {
            path: PathBuf::from("/opt/board/watch_service.py"),
            process_group: "board-watch".into(),
            application_group: "%{GLOBAL}".into(),
        }]
    );
    // LoadModule made <IfModule mod_proxy.c> true.
    assert_eq!(other_names(&config.main_server), ["LoadModule", "LoadModule", "ProxyPass", "ProxyPassReverse"]);
    let location = &config.main_server.sections[0];
    assert_eq!((location.kind, location.pattern_text()), (SectionKind::Location, "/board/"));
    assert_eq!(location.other_directives[0].name, "RequestHeader");
}

#[test]
fn handler_scripts() {
    let config = load("handler_script.conf");
    let main = &config.main_server;
    let markdown = HandlerScript {
        name: "md-render".into(),
        path: PathBuf::from("/etc/wsgi-handlers/markdown.wsgi"),
        process_group: Some("renderers".into()),
        application_group: Some("%{GLOBAL}".into()),
        pass_authorization: None,
    };
    assert_eq!(main.settings.handler_scripts.len(), 1);
    assert_eq!(main.settings.handler_scripts["md-render"], markdown);
    assert!(other_names(main).contains(&"AddHandler"));

    let private = settings(&config, main, "/private/notes.md", "/srv/wiki/private/notes.md");
    let names: Vec<&str> = private.handler_scripts.keys().map(String::as_str).collect();
    assert_eq!(names, ["guarded", "md-render"], "the section's handler adds to the server's");
    assert_eq!(private.handler_scripts["md-render"], markdown);
    let guarded = &private.handler_scripts["guarded"];
    assert_eq!(guarded.path, Path::new("/etc/wsgi-handlers/guarded.wsgi"));
    assert_eq!((guarded.process_group.as_deref(), guarded.pass_authorization), (None, Some(true)));

    let public = settings(&config, main, "/notes.md", "/srv/wiki/public/notes.md");
    assert_eq!(public.handler_scripts.keys().collect::<Vec<_>>(), ["md-render"]);
}

#[test]
fn dispatch_scripts() {
    let config = load("dispatch_script.conf");
    assert_eq!(daemon_names(&config), ["backoffice", "rest", "frontpage"]);
    let main = &config.main_server;
    let route = script("/etc/wsgi-routing/route.py", None);
    assert_eq!(main.settings.dispatch_script, Some(route.clone()));

    let partners = config.settings_for(main, "/partners/acme", None);
    assert_eq!(partners.dispatch_script, Some(script("/etc/wsgi-routing/partners.py", Some("routing"))));
    // <Location /partners> stops at a path-segment boundary.
    assert_eq!(config.settings_for(main, "/partnership", None).dispatch_script, Some(route));
}

// ---------------------------------------------------------------------------
// Access control

#[test]
fn auth_user_scripts() {
    let config = load("auth_user_script.conf");
    let main = &config.main_server;
    assert_eq!(main.settings.auth_user_script, None, "only in sections");

    let app = settings(&config, main, "/", "/srv/vault/app/vault.wsgi");
    assert_eq!(app.auth_user_script, Some(script("/srv/vault/auth/check_user.wsgi", Some("vault"))));
    assert_eq!(app.effective_application_group(), "vault");
    assert_eq!(app.auth_type, Some(Ok(wsgi_config::authz::AuthType::Basic)));
    assert_eq!(app.auth_name.as_deref(), Some("Vault Staff"));
    assert_eq!(app.auth_basic_provider, Some(vec!["wsgi".to_string()]));
    // Two Require lines of one section: `<RequireAny>`.
    let authz = app.authz.as_ref().expect("the Require lines are modelled");
    assert_eq!((authz.logic, authz.children.len()), (wsgi_config::authz::Logic::Or, 2));

    let digest = config.settings_for(main, "/digest-area/page", None);
    assert_eq!(digest.auth_user_script, Some(script("/srv/vault/auth/realm_hash.wsgi", None)));
    assert_eq!(digest.user_authoritative, Some(false));
    assert_eq!(main.sections[1].kind, SectionKind::Location);
}

#[test]
fn auth_group_and_access_scripts() {
    let config = load("auth_group_and_access.conf");
    let site = vhost(&config, "192.0.2.1:80", Some("records.quarry.test"), "records.quarry.test");
    assert_eq!(site.settings.auth_group_script, None);
    assert_eq!(site.settings.access_script, None);

    let s = settings(&config, site, "/classified/map", "/srv/quarry/records.wsgi");
    assert_eq!(s.auth_group_script, Some(script("/srv/quarry/auth/groups.wsgi", None)));
    assert_eq!(s.group_authoritative, Some(false));
    assert_eq!(s.access_script, Some(script("/srv/quarry/auth/hosts.wsgi", Some("gatekeeper"))));

    // Outside /classified only the directory's access script applies.
    let s = settings(&config, site, "/open", "/srv/quarry/records.wsgi");
    assert_eq!(s.auth_group_script, None);
    assert!(s.access_script.is_some());
    // With no script file known, the <Directory> cannot apply.
    assert_eq!(config.settings_for(site, "/open", None).access_script, None);
}

#[test]
fn restrict_process_per_user() {
    let config = load("restrict_process.conf");
    assert_eq!(daemon_names(&config), ["fallback", "ana:1", "ana:2", "ana:3", "ben:1", "ben:2"]);
    assert_eq!(config.daemon("fallback").unwrap().virtual_host, None);
    assert!(config.daemon_processes[1..].iter().all(|d| d.virtual_host == Some(0)));
    assert_eq!(daemon(&config, "ben:2").user.as_deref(), Some("ben"));

    let site = vhost(&config, "192.0.2.1:80", Some("people.campus.test"), "people.campus.test");
    assert_eq!(site.settings.process_group.as_deref(), Some("%{ENV:PROCESS_GROUP}"));

    let ana = settings(&config, site, "/~ana/blog.wsgi", "/home/ana/public_html/blog.wsgi");
    assert_eq!(ana.restrict_process, Some(strings(&["ana:1", "ana:2", "ana:3"])));
    assert_eq!(ana.effective_process_group(), "%{ENV:PROCESS_GROUP}", "expanded per request, not here");
    let ben = settings(&config, site, "/~ben/wiki.wsgi", "/home/ben/public_html/wiki.wsgi");
    assert_eq!(ben.restrict_process, Some(strings(&["ben:1", "ben:2"])));
    let other = settings(&config, site, "/x.wsgi", "/srv/other/x.wsgi");
    assert_eq!(other.restrict_process, None);
}

#[test]
fn security_hardening() {
    let config = load("security_hardening.conf");
    assert_eq!(config.global.restrict_embedded, Some(true));
    assert_eq!(daemon_names(&config), ["staff-desk", "storefront", "partner-api"]);

    let desk = daemon(&config, "staff-desk");
    assert_eq!(desk.processes, Some(1));
    assert!(desk.multiprocess(), "processes=1 given explicitly still means multiprocess");
    assert_eq!(desk.umask, Some(0o027));
    assert_eq!(desk.home.as_deref(), Some(Path::new("/var/lib/staff-desk")));
    assert_eq!(desk.python_home.as_deref(), Some(Path::new("/var/lib/staff-desk/venv")));
    assert_eq!(desk.display_name.as_deref(), Some("%{GROUP}"));

    let store = daemon(&config, "storefront");
    assert_eq!(store.supplementary_groups, ["pgclients", "mailers"]);
    assert_eq!(store.umask, None);

    let api = daemon(&config, "partner-api");
    assert_eq!((api.script_user.as_deref(), api.script_group.as_deref()), (Some("partner-api"), None));

    for (host, group) in
        [("desk.granite.test", "staff-desk"), ("www.granite.test", "storefront"), ("api.granite.test", "partner-api")]
    {
        let site = vhost(&config, "192.0.2.1:443", Some(host), host);
        let s = config.settings_for(site, "/", None);
        assert_eq!(s.effective_process_group(), group, "{host}");
        assert_eq!(s.effective_application_group(), "%{GLOBAL}", "{host}");
        assert_eq!(s.restrict_process, Some(strings(&[group])), "{host}");
    }
}

// ---------------------------------------------------------------------------
// Virtual environments, processes and threads, daemon options

#[test]
fn virtual_environment_for_a_daemon() {
    let config = load("venv_daemon.conf");
    let d = daemon(&config, "tracker");
    assert_eq!(d.python_home.as_deref(), Some(Path::new("/opt/venvs/tracker")));
    assert_eq!(d.python_path, Some(paths(&["/opt/tracker/src", "/opt/tracker/vendor"])));
    assert_eq!(config.global.python_home, None, "the daemon option is not WSGIPythonHome");
    assert_eq!(config.global.python_path, None);

    let s = settings(&config, &config.main_server, "/", "/opt/tracker/src/tracker.wsgi");
    assert_eq!(s.effective_process_group(), "tracker");
    assert_eq!(s.effective_application_group(), "%{GLOBAL}");
}

#[test]
fn virtual_environment_for_embedded_mode() {
    let config = load("venv_embedded.conf");
    assert_eq!(config.global.python_home.as_deref(), Some(Path::new("/opt/venvs/embedded-site")));
    assert_eq!(config.global.python_path, Some(paths(&["/opt/embedded-site/lib", "/opt/embedded-site/plugins"])));
    assert!(config.daemon_processes.is_empty());
    let main = &config.main_server;
    assert_eq!(mounts(&main.script_aliases), [("/", "/opt/embedded-site/scripts/")]);
    let s = settings(&config, main, "/hello", "/opt/embedded-site/scripts/hello");
    assert_eq!(s.effective_process_group(), "");
    assert_eq!(s.effective_application_group(), "%{GLOBAL}");
}

#[test]
fn processes_and_threads_flags() {
    let config = load("processes_and_threads.conf");
    // name, processes=, process count, threads, multithread, multiprocess, run_once
    let expected = [
        ("solo-threaded", None, 1, 25, true, false, false),
        ("single-explicit", Some(1), 1, 25, true, true, false),
        ("pair-threaded", Some(2), 2, 25, true, true, false),
        ("five-single", Some(5), 5, 1, false, true, false),
        ("one-shot", None, 1, 1, false, false, true),
        ("plain", None, 1, 15, true, false, false),
    ];
    assert_eq!(daemon_names(&config), expected.map(|e| e.0));
    for (name, processes, count, threads, multithread, multiprocess, run_once) in expected {
        let d = daemon(&config, name);
        assert_eq!(
            (d.processes, d.process_count(), d.threads),
            (processes, count, threads),
            "{name}: processes, process_count, threads"
        );
        assert_eq!(
            (d.multithread(), d.multiprocess(), d.run_once()),
            (multithread, multiprocess, run_once),
            "{name}: wsgi.multithread, wsgi.multiprocess, wsgi.run_once"
        );
    }
    assert_eq!(daemon(&config, "one-shot").maximum_requests, 1);
    assert_eq!(*daemon(&config, "plain"), DaemonProcess::new("plain"), "no options: all defaults");
}

#[test]
fn recommended_timeouts_and_tuning() {
    let config = load("recommended_timeouts.conf");
    let expected = DaemonProcess {
        processes: Some(2),
        threads: 5,
        display_name: Some("%{GROUP}".into()),
        lang: Some("en_US.UTF-8".into()),
        locale: Some("en_US.UTF-8".into()),
        queue_timeout: secs(45),
        socket_timeout: secs(60),
        connect_timeout: secs(15),
        request_timeout: secs(60),
        interrupt_timeout: secs(0),
        inactivity_timeout: secs(0),
        startup_timeout: secs(15),
        deadlock_timeout: secs(60),
        graceful_timeout: secs(15),
        eviction_timeout: secs(0),
        restart_interval: secs(0),
        shutdown_timeout: secs(5),
        maximum_requests: 0,
        ..DaemonProcess::new("payroll")
    };
    assert_eq!(*daemon(&config, "payroll"), expected);

    let expected = DaemonProcess {
        processes: Some(3),
        threads: 8,
        stack_size: Some(524_288),
        listen_backlog: 250,
        cpu_time_limit: secs(3600),
        cpu_priority: 5,
        memory_limit: 2_000_000_000,
        virtual_memory_limit: 4_000_000_000,
        header_buffer_size: 65_536,
        response_buffer_size: 1_048_576,
        response_socket_timeout: secs(30),
        response_flush_delay: Duration::from_millis(20),
        send_buffer_size: 262_144,
        receive_buffer_size: 262_144,
        switch_interval: Some(0.002),
        python_eggs: Some(PathBuf::from("/var/cache/tuned-eggs")),
        socket_user: Some("#48".into()),
        script_group: Some("deployers".into()),
        restart_interval: secs(86_400),
        maximum_requests: 5000,
        ..DaemonProcess::new("tuned")
    };
    assert_eq!(*daemon(&config, "tuned"), expected);
    let s = settings(&config, &config.main_server, "/", "/srv/payroll/payroll.wsgi");
    assert_eq!(s.effective_process_group(), "payroll");
}

#[test]
fn process_group_from_environment() {
    let config = load("process_group_env.conf");
    assert_eq!(daemon_names(&config), ["release:blue", "release:green", "release:maintenance"]);
    for colour in ["blue", "green"] {
        let d = daemon(&config, &format!("release:{colour}"));
        assert_eq!((d.processes, d.threads), (Some(4), 15), "{colour}");
        assert_eq!(d.user.as_deref(), Some("deployer"));
        assert_eq!(d.python_home, Some(PathBuf::from(format!("/srv/release/{colour}/venv"))));
        assert_eq!(d.home, Some(PathBuf::from(format!("/srv/release/{colour}/code"))));
    }
    let maintenance = daemon(&config, "release:maintenance");
    assert_eq!((maintenance.processes, maintenance.threads, maintenance.python_home.as_deref()), (Some(1), 1, None));
    assert!(!maintenance.multithread());

    let main = &config.main_server;
    assert_eq!(main.settings.process_group.as_deref(), Some("%{ENV:PROCESS_GROUP}"));
    // An unknown ${...} is left for mod_rewrite, as Apache leaves it.
    let rule = main.other_directives.iter().find(|d| d.name == "RewriteRule").expect("RewriteRule kept");
    assert_eq!(rule.args, [".", "-", "[E=PROCESS_GROUP:${livecolour:current|release:maintenance}]"]);
}

// ---------------------------------------------------------------------------
// Process-wide settings

#[test]
fn python_and_process_settings() {
    let config = load("python_process_settings.conf");
    let expected = GlobalSettings {
        python_home: Some(PathBuf::from("/opt/py312:/opt/py312-arch")),
        python_optimize: Some(1),
        python_hash_seed: Some(HashSeed::Fixed(0)),
        python_warnings: strings(&["error", "ignore::DeprecationWarning:oldlib.compat"]),
        python_eggs: Some(PathBuf::from("/var/cache/wsgi-eggs")),
        dont_write_bytecode: Some(true),
        socket_prefix: Some(PathBuf::from("run/wsgi")),
        accept_mutex: Some(AcceptMutex::PosixSem),
        case_sensitivity: Some(true),
        destroy_interpreter: Some(false),
        restrict_stdin: Some(true),
        restrict_stdout: Some(true),
        restrict_signal: Some(false),
        switch_interval: Some(0.002),
        server_metrics: Some(true),
        ..GlobalSettings::default()
    };
    assert_eq!(config.global, expected);
    assert_eq!(config.main_server.settings, DirSettings::default(), "no per-request setting was given");
}

#[test]
fn request_handling_flags() {
    let config = load("request_handling_flags.conf");
    let main = &config.main_server;
    assert_eq!((main.settings.script_reloading, main.settings.pass_authorization), (Some(false), Some(true)));

    let site = vhost(&config, "192.0.2.1:80", Some("uploads.river.test"), "uploads.river.test");
    let own = &site.settings;
    assert_eq!(own.chunked_request, Some(true));
    assert_eq!(own.map_head_to_get, Some(MapHeadToGet::On));
    assert_eq!(own.enable_sendfile, Some(true));
    assert_eq!(own.error_override, Some(true));
    assert_eq!(own.pass_apache_request, Some(true));

    let upload = settings(&config, site, "/upload", "/srv/river/uploads.wsgi");
    assert!(upload.effective_script_reloading(), "the <Directory> turns reloading back on");
    assert_eq!(upload.effective_limit_request_body(), 1_048_576);
    assert!(upload.effective_pass_authorization(), "inherited from the main server");
    assert!(upload.effective_chunked_request());
    assert_eq!(upload.effective_map_head_to_get(), MapHeadToGet::On);
    assert_eq!(upload.ignore_activity, None);

    let health = settings(&config, site, "/healthz", "/srv/river/uploads.wsgi");
    assert_eq!(health.ignore_activity, Some(true));
    assert!(!health.effective_pass_authorization(), "<Location> wins over everything");
    assert!(health.effective_script_reloading());

    let outside = config.settings_for(main, "/", None);
    assert!(!outside.effective_script_reloading());
    assert!(!outside.effective_chunked_request(), "default Off");
    assert_eq!(outside.effective_map_head_to_get(), MapHeadToGet::Auto, "default Auto");
    assert_eq!(outside.effective_limit_request_body(), DEFAULT_LIMIT_REQUEST_BODY);
}

#[test]
fn trusted_proxies_and_headers() {
    let config = load("reverse_proxy.conf");
    let listen: Vec<String> = config.listen.iter().map(ToString::to_string).collect();
    assert_eq!(listen, ["127.0.0.1:8000", "80"]);

    let main = &config.main_server;
    let proxies = main.settings.trusted_proxies.as_deref().expect("main server proxies");
    assert_eq!(proxies, [IpSubnet::parse("10.20.30.40/32").unwrap(), IpSubnet::parse("172.16.0.0/12").unwrap()]);
    assert!(proxies.iter().any(|p| p.contains("172.20.1.1".parse().unwrap())));
    assert!(!proxies.iter().any(|p| p.contains("10.20.30.41".parse().unwrap())));
    assert_eq!(
        main.settings.trusted_proxy_headers,
        Some(strings(&["X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Port"])),
        "separate directives add up"
    );

    let backend = config.select_server(addr("127.0.0.1:8000"), None);
    assert!(std::ptr::eq(backend, &config.virtual_hosts[0]), "the loopback virtual host");
    assert!(std::ptr::eq(config.select_server(addr("127.0.0.1:80"), Some("x")), main));
    assert!(std::ptr::eq(config.select_server(addr("192.0.2.9:8000"), None), main));

    let s = settings(&config, backend, "/", "/srv/edge/backend/wsgi.py");
    assert_eq!(s.trusted_proxies, Some(vec![IpSubnet::parse("127.0.0.1").unwrap()]), "replaces the server's list");
    assert_eq!(
        s.trusted_proxy_headers,
        Some(strings(&["X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port"]))
    );
    assert_eq!(s.effective_process_group(), "backend");
    let order: Vec<&str> = config.script_aliases(backend).map(|a| a.target.as_str()).collect();
    assert_eq!(order, ["/srv/edge/backend/wsgi.py", "/srv/edge/main.wsgi"]);
}

#[test]
fn interpreter_options_containers() {
    let config = load("interpreter_options.conf");
    assert_eq!(config.global.per_interpreter_gil, Some(false));
    assert_eq!(config.global.python_path, Some(paths(&["/opt/common/lib"])));
    assert_eq!(config.global.restrict_stdout, None, "container values stay in their container");

    let blocks = &config.interpreter_options;
    let selectors: Vec<(Option<&str>, Option<&str>, usize)> =
        blocks.iter().map(|b| (b.process_group.as_deref(), b.application_group.as_deref(), b.location.line)).collect();
    assert_eq!(
        selectors,
        [
            (Some("pool-east"), Some("billing"), 11),
            (Some("pool-east"), Some("reports"), 18),
            (None, Some("billing"), 23),
            (Some("%{GLOBAL}"), None, 27),
            (None, None, 32),
        ]
    );
    assert_eq!(
        blocks[0].settings,
        [
            GlobalSetting::PerInterpreterGil(false),
            GlobalSetting::PythonPath(paths(&["/opt/billing/src", "/opt/billing/lib"])),
        ]
    );
    assert_eq!(blocks[1].settings, [GlobalSetting::PerInterpreterGil(false)]);
    assert_eq!(blocks[2].settings, [GlobalSetting::RestrictStdout(true)]);
    assert_eq!(blocks[3].settings, [GlobalSetting::RestrictStdin(false), GlobalSetting::RestrictSignal(true)]);
    assert_eq!(blocks[4].settings, [GlobalSetting::PythonPath(paths(&["/opt/everywhere"]))]);

    assert_eq!(daemon(&config, "pool-east").python_path, Some(paths(&["/opt/pool-east"])));
    assert!(config.main_server.script_aliases[0].preloads());
}

#[test]
fn gil_modes_on_is_refused_with_file_and_line() {
    // The documentation's example as written: both On values need a newer
    // Python than the one embedded, and are refused rather than ignored.
    let text = std::fs::read_to_string(fixtures_dir().join("gil_modes.conf"))
        .unwrap()
        .replace("WSGIFreeThreading Off", "WSGIFreeThreading On")
        .replace("WSGIPerInterpreterGIL Off", "WSGIPerInterpreterGIL On");
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let errors = errors_of(&text);
    assert_eq!(
        errors,
        [
            format!(
                "bad.conf:{}: WSGIFreeThreading On needs a free-threaded Python 3.13 or later (3.13t), \
                 which this server does not embed: refused rather than ignored",
                line_of("WSGIFreeThreading On")
            ),
            format!(
                "bad.conf:{}: WSGIPerInterpreterGIL On needs Python 3.12 or later (a GIL per interpreter), \
                 which this server does not embed: refused rather than ignored",
                line_of("WSGIPerInterpreterGIL On")
            ),
        ]
    );
}

#[test]
fn gil_modes_per_daemon() {
    let config = load("gil_modes.conf");
    assert_eq!(daemon_names(&config), ["nogil-pool", "subinterp-pool", "classic-pool"]);
    assert_eq!(daemon(&config, "nogil-pool").threads, 30);
    assert_eq!((config.global.free_threading, config.global.per_interpreter_gil), (None, None));

    let blocks = &config.interpreter_options;
    assert_eq!(blocks.len(), 2);
    assert_eq!(
        (blocks[0].process_group.as_deref(), blocks[0].application_group.as_deref()),
        (Some("nogil-pool"), None)
    );
    assert_eq!(blocks[0].settings, [GlobalSetting::FreeThreading(false)]);
    assert_eq!(blocks[1].process_group.as_deref(), Some("subinterp-pool"));
    assert_eq!(blocks[1].settings, [GlobalSetting::PerInterpreterGil(false)]);

    let main = &config.main_server;
    assert_eq!(main.settings.dispatch_script, Some(script("/etc/wsgi-routing/pick_interpreter.py", None)));
    let groups: Vec<(&str, Option<&str>, Option<&str>, bool)> = main
        .script_aliases
        .iter()
        .map(|a| (a.url.as_str(), a.process_group.as_deref(), a.application_group.as_deref(), a.preloads()))
        .collect();
    assert_eq!(
        groups,
        [
            ("/compute", Some("nogil-pool"), None, false),
            ("/search", Some("subinterp-pool"), Some("%{ENV:APPLICATION_GROUP}"), false),
            ("/pages", Some("classic-pool"), None, false),
        ]
    );
    assert_eq!(other_names(main), ["LoadModule"]);
}

#[test]
fn ifmodule_guards_and_sibling_include() {
    let config = load("conditional_and_include.conf");
    assert_eq!(config.global.socket_prefix.as_deref(), Some(Path::new("/var/run/wsgi-sockets")));
    assert_eq!(daemon_names(&config), ["ferry"], "the mod_ssl and FERRY_DEBUG branches are skipped");
    assert_eq!(daemon(&config, "ferry").processes, Some(2));

    let [site] = config.virtual_hosts.as_slice() else {
        panic!("one virtual host expected, got {}", config.virtual_hosts.len())
    };
    let location = site.location.as_ref().expect("a virtual host has a location");
    assert!(location.file.ends_with("conditional_and_include.inc"), "{location}");
    assert_eq!(location.line, 4);
    assert_eq!(site.server_name.as_deref(), Some("tickets.ferry.test"));
    assert_eq!(mounts(&site.script_aliases), [("/", "/srv/ferry/tickets.wsgi")], "Define substituted");
    assert_eq!(site.sections[0].pattern_text(), "/srv/ferry");
    let s = settings(&config, site, "/", "/srv/ferry/tickets.wsgi");
    assert_eq!(s.effective_process_group(), "ferry");

    // With -D FERRY_DEBUG the <IfDefine> branch is read too.
    let mut options = ReadOptions::standalone(fixtures_dir()).reference();
    options.defines.insert("FERRY_DEBUG".into());
    let config = load_with("conditional_and_include.conf", &options);
    assert_eq!(daemon_names(&config), ["ferry", "ferry-debug"]);
    assert_eq!(daemon(&config, "ferry-debug").threads, 1);
}

#[test]
fn telemetry_settings() {
    let config = load("telemetry.conf");
    assert_eq!(
        config.global.telemetry_service,
        Some((PathBuf::from("/run/wsgi/telemetry.sock"), Duration::from_millis(2500)))
    );
    assert_eq!(config.global.telemetry_options, Some(TELEMETRY_CAPTURE_USER_AGENT));
    assert_eq!(config.global.slow_requests, Some(Duration::from_millis(1500)));

    let site = vhost(&config, "192.0.2.1:80", Some("telemetry.beacon.test"), "telemetry.beacon.test");
    let s = settings(&config, site, "/", "/srv/beacon/wsgi.py");
    assert_eq!(s.effective_process_group(), "metrics-demo");
    assert_eq!(s.effective_application_group(), "%{GLOBAL}");
    let location = &site.sections[1];
    assert_eq!((location.kind, location.pattern_text()), (SectionKind::Location, "/telemetry/"));
    assert!(location.settings.auth_user_file.is_some());
}

#[test]
fn application_group_forms() {
    let config = load("application_groups.conf");
    let main = &config.main_server;
    assert_eq!(main.settings.application_group.as_deref(), Some("%{SERVER}"));
    for (url, file, expected) in [
        ("/console", "/srv/groups/admin/console.wsgi", "console-tools"),
        ("/legacy", "/srv/groups/legacy/legacy.wsgi", "%{GLOBAL}"),
        ("/isolated/x", "/srv/groups/isolated/isolated.wsgi", "%{RESOURCE}"),
        ("/~maria/hello", "/home/maria/public_html/wsgi-scripts/hello.wsgi", "%{ENV:APPLICATION_GROUP}"),
        ("/other", "/srv/groups/other.wsgi", "%{SERVER}"),
        // The wildcard matches one path component only.
        ("/~x/y", "/home/maria/sub/public_html/wsgi-scripts/y.wsgi", "%{SERVER}"),
    ] {
        let s = settings(&config, main, url, file);
        assert_eq!(s.effective_application_group(), expected, "{url} ({file})");
    }
    let rewrite: Vec<&str> = other_names(main).into_iter().filter(|n| n.starts_with("Rewrite")).collect();
    assert_eq!(rewrite, ["RewriteEngine", "RewriteCond", "RewriteRule"]);
}

// ---------------------------------------------------------------------------
// Malformed variants

/// Loads `text` as `bad.conf` and returns the error lines.
fn errors_of(text: &str) -> Vec<String> {
    match wsgi_config::load_str(text, Path::new("bad.conf"), &ReadOptions::standalone("/nonexistent-root").reference())
    {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn malformed_variants_report_file_line_and_directive() {
    // (what, text, line, substrings the message must contain)
    let cases: &[(&str, &str, usize, &[&str])] = &[
        (
            "unknown daemon option",
            "# a pool\nWSGIDaemonProcess pool threads=4 bogus-option=1\n",
            2,
            &["WSGIDaemonProcess: unknown option 'bogus-option'"],
        ),
        (
            "threads=abc",
            "ServerName x.test\n\nWSGIDaemonProcess pool threads=abc\n",
            3,
            &["WSGIDaemonProcess: invalid value 'abc' for option 'threads'"],
        ),
        (
            "bad value on a continued line",
            "WSGIDaemonProcess pool \\\n    processes=two\n",
            1,
            &["WSGIDaemonProcess: invalid value 'two' for option 'processes'"],
        ),
        (
            "daemon as root",
            "WSGIDaemonProcess pool user=root\n",
            1,
            &["WSGIDaemonProcess: invalid value 'root' for option 'user'", "blocked from running as root"],
        ),
        (
            "script-user with script-group",
            "WSGIDaemonProcess pool script-user=a script-group=b\n",
            1,
            &["WSGIDaemonProcess: only one of script-user and script-group allowed"],
        ),
        (
            "auth user script at server level",
            "WSGIScriptAlias / /srv/a.wsgi\nWSGIAuthUserScript /srv/auth.wsgi\n",
            2,
            &["WSGIAuthUserScript not allowed here"],
        ),
        (
            "auth group script in a virtual host",
            "<VirtualHost *:80>\n  ServerName a.test\n  WSGIAuthGroupScript /srv/groups.wsgi\n</VirtualHost>\n",
            3,
            &["WSGIAuthGroupScript not allowed here"],
        ),
        (
            "access script in a virtual host",
            "<VirtualHost *:80>\n  WSGIAccessScript /srv/hosts.wsgi\n</VirtualHost>\n",
            2,
            &["WSGIAccessScript not allowed here"],
        ),
        (
            "python home in a virtual host",
            "<VirtualHost *:80>\n  ServerName a.test\n  WSGIPythonHome /opt/venv\n</VirtualHost>\n",
            3,
            &["WSGIPythonHome cannot occur within <VirtualHost> section"],
        ),
        (
            "restrict embedded in a virtual host",
            "<VirtualHost *:80>\nWSGIRestrictEmbedded On\n</VirtualHost>\n",
            2,
            &["WSGIRestrictEmbedded cannot occur within <VirtualHost> section"],
        ),
        (
            "daemon in a directory section",
            "<Directory /srv>\n  WSGIDaemonProcess pool\n</Directory>\n",
            2,
            &["WSGIDaemonProcess not allowed here"],
        ),
        (
            "unknown WSGI directive",
            "WSGIScriptAlias / /srv/a.wsgi\n<Location />\n  WSGIFoo bar\n</Location>\n",
            3,
            &["Invalid command 'WSGIFoo'"],
        ),
        (
            "unclosed virtual host",
            "Listen 80\n<VirtualHost *:80>\n  ServerName a.test\n  WSGIScriptAlias / /srv/a.wsgi\n",
            2,
            &["<VirtualHost> was not closed"],
        ),
        (
            "mismatched closing tag",
            "<VirtualHost *:80>\n<Directory /srv>\n</Location>\n</VirtualHost>\n",
            3,
            &["expected </Directory> but saw </Location>"],
        ),
        (
            "process group naming no daemon",
            "WSGIDaemonProcess pool\nWSGIProcessGroup ghost\n",
            2,
            &["WSGIProcessGroup: no WSGIDaemonProcess named 'ghost' is defined"],
        ),
        (
            "import script before its daemon",
            "WSGIImportScript /srv/warm.py process-group=late application-group=%{GLOBAL}\nWSGIDaemonProcess late\n",
            1,
            &["WSGIImportScript", "'late' not yet configured"],
        ),
        (
            "preloading script alias before its daemon",
            "WSGIScriptAlias / /srv/a.wsgi process-group=late application-group=a\nWSGIDaemonProcess late\n",
            1,
            &["WSGIScriptAlias", "'late' not yet configured"],
        ),
        (
            "preloading script alias match (fixed target) before its daemon",
            "WSGIScriptAliasMatch ^/a /srv/a.wsgi process-group=late application-group=a\n\
             WSGIDaemonProcess late\n",
            1,
            &["WSGIScriptAliasMatch", "'late' not yet configured"],
        ),
        (
            "import script missing its application group",
            "WSGIDaemonProcess pool\nWSGIImportScript /srv/warm.py process-group=pool\n",
            2,
            &["WSGIImportScript: name of WSGI application group required"],
        ),
        (
            "daemon name used twice",
            "WSGIDaemonProcess pool\n<VirtualHost *:80>\n  WSGIDaemonProcess pool\n</VirtualHost>\n",
            3,
            &["WSGIDaemonProcess: name 'pool' duplicates previous WSGI daemon definition at bad.conf:1"],
        ),
        (
            "daemon of another virtual host",
            "<VirtualHost *:80>\n  ServerName a.test\n  WSGIDaemonProcess a-pool\n</VirtualHost>\n\
             <VirtualHost *:80>\n  ServerName b.test\n  WSGIProcessGroup a-pool\n</VirtualHost>\n",
            7,
            &["WSGIProcessGroup: WSGI process group 'a-pool'", "not accessible"],
        ),
        (
            "script alias option misspelt",
            "WSGIScriptAlias / /srv/a.wsgi process_group=pool\n",
            1,
            &["WSGIScriptAlias: unknown option 'process_group'"],
        ),
        (
            "unknown application group form",
            "<Directory /srv>\nWSGIApplicationGroup %{PROCESS}\n</Directory>\n",
            2,
            &["WSGIApplicationGroup: invalid value '%{PROCESS}'"],
        ),
        (
            "interpreter options inside a virtual host",
            "<VirtualHost *:80>\n<WSGIInterpreterOptions process-group=p>\nWSGIPerInterpreterGIL Off\n\
             </WSGIInterpreterOptions>\n</VirtualHost>\n",
            2,
            &["<WSGIInterpreterOptions> cannot occur within <VirtualHost> section"],
        ),
        (
            "non-interpreter directive inside interpreter options",
            "<WSGIInterpreterOptions application-group=a>\n  WSGIPythonHome /opt/venv\n</WSGIInterpreterOptions>\n",
            2,
            &["WSGIPythonHome is not allowed inside <WSGIInterpreterOptions>"],
        ),
        (
            "interpreter options with an unknown selector",
            "<WSGIInterpreterOptions process=p>\n  WSGIPerInterpreterGIL Off\n</WSGIInterpreterOptions>\n",
            1,
            &["<WSGIInterpreterOptions>: unknown selector 'process'"],
        ),
    ];
    for (what, text, line, needles) in cases {
        let errors = errors_of(text);
        assert_eq!(errors.len(), 1, "{what}: expected one error, got {errors:#?}");
        let message = &errors[0];
        let place = format!("bad.conf:{line}: ");
        assert!(message.starts_with(&place), "{what}: expected {place:?} at the start of {message:?}");
        for needle in *needles {
            assert!(message.contains(needle), "{what}: {message:?} should contain {needle:?}");
        }
    }
}

#[test]
fn every_error_is_reported_in_one_pass() {
    let errors = errors_of(concat!(
        "WSGIDaemonProcess pool threads=abc\n",
        "<VirtualHost *:80>\n",
        "  WSGIPythonPath /opt/lib\n",
        "</VirtualHost>\n",
        "WSGIBogus On\n",
    ));
    let places: Vec<&str> = errors.iter().map(|e| e.split(": ").next().unwrap()).collect();
    assert_eq!(places, ["bad.conf:1", "bad.conf:3", "bad.conf:5"], "{errors:#?}");
    assert!(errors[0].contains("WSGIDaemonProcess"));
    assert!(errors[1].contains("WSGIPythonPath"));
    assert!(errors[2].contains("WSGIBogus"));
}

#[test]
fn a_fixture_made_invalid_is_reported_at_its_line() {
    // The fixture of WSGIImportScript with its first daemon moved to the end.
    let text = std::fs::read_to_string(fixtures_dir().join("import_script.conf")).unwrap();
    let (daemon_lines, rest): (Vec<&str>, Vec<&str>) = {
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.iter().position(|l| l.starts_with("WSGIDaemonProcess catalog")).unwrap();
        let mut rest = lines.clone();
        let daemon: Vec<&str> = rest.drain(start..start + 2).collect();
        (daemon, rest)
    };
    let moved = format!("{}\n{}\n", rest.join("\n"), daemon_lines.join("\n"));
    let import_line = moved.lines().position(|l| l.starts_with("WSGIImportScript /srv/catalog/warmup")).unwrap() + 1;
    let alias_line = moved.lines().position(|l| l.starts_with("WSGIScriptAlias /")).unwrap() + 1;
    let report_line = moved.lines().position(|l| l.starts_with("WSGIImportScript /srv/catalog/stats")).unwrap() + 1;
    let errors = errors_of(&moved);
    let expected: Vec<String> = [
        (import_line, "WSGIImportScript"),
        (alias_line, "WSGIScriptAlias"),
        (report_line, "WSGIImportScript"),
    ]
    .iter()
    .map(|(line, directive)| {
        format!("bad.conf:{line}: {directive}: WSGI process group 'catalog' not yet configured: its WSGIDaemonProcess must come first")
    })
    .collect();
    assert_eq!(errors, expected);
}
