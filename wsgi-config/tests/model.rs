//! The scoped model: contexts, errors with file and line, daemon scoping,
//! mod_wsgi's merge rules and virtual-host selection.

use std::net::SocketAddr;
use std::path::Path;

use wsgi_config::tree::ReadOptions;
use wsgi_config::{load_str, Config};

fn load(text: &str) -> Result<Config, Vec<String>> {
    load_str(text, Path::new("site.conf"), &ReadOptions::standalone("/nonexistent").reference())
        .map_err(|errors| errors.0.iter().map(ToString::to_string).collect())
}

fn config(text: &str) -> Config {
    load(text).unwrap_or_else(|e| panic!("{e:#?}"))
}

fn errors(text: &str) -> Vec<String> {
    match load(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn directives_in_the_wrong_context_are_refused_with_file_and_line() {
    let e = errors(concat!(
        "WSGIAuthUserScript /srv/auth.py\n",
        "<VirtualHost *:80>\n",
        "    WSGIPythonHome /venv\n",
        "    <Location />\n",
        "        WSGIScriptAlias / /srv/app.wsgi\n",
        "        WSGIDaemonProcess inner\n",
        "    </Location>\n",
        "</VirtualHost>\n",
        "WSGIFrobnicate On\n",
    ));
    assert_eq!(
        e,
        [
            "site.conf:1: WSGIAuthUserScript not allowed here",
            "site.conf:3: WSGIPythonHome cannot occur within <VirtualHost> section",
            "site.conf:5: WSGIScriptAlias not allowed here",
            "site.conf:6: WSGIDaemonProcess not allowed here",
            "site.conf:9: Invalid command 'WSGIFrobnicate', perhaps misspelled or defined by a module not included in the server configuration",
        ]
    );
}

#[test]
fn other_modules_directives_are_kept_not_refused() {
    let c = config(concat!(
        "LoadModule rewrite_module modules/mod_rewrite.so\n",
        "RewriteEngine On\n",
        "<VirtualHost *:80>\n",
        "    Header set X-Frame-Options DENY\n",
        "    <Proxy balancer://x>\n",
        "        BalancerMember http://127.0.0.1:9000\n",
        "    </Proxy>\n",
        "    <Directory /srv>\n",
        "        Require all granted\n",
        "        Options ExecCGI\n",
        "    </Directory>\n",
        "</VirtualHost>\n",
    ));
    let names: Vec<&str> = c.main_server.other_directives.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["LoadModule", "RewriteEngine"]);
    assert_eq!(c.virtual_hosts[0].other_directives[0].name, "Header");
    let dir = &c.virtual_hosts[0].sections[0];
    // Require is modelled (access control); Options is kept as written.
    assert_eq!(dir.other_directives.len(), 1);
    assert!(dir.settings.authz.is_some());
}

#[test]
fn wsgi_directives_inside_foreign_containers_are_refused() {
    let e = errors("<If \"%{HTTPS} == 'on'\">\n    WSGIProcessGroup x\n</If>\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("site.conf:2: WSGIProcessGroup inside <If> is not supported"), "{e:?}");
}

#[test]
fn a_bad_configuration_reports_every_error_and_yields_no_model() {
    let e = errors(concat!(
        "WSGIDaemonProcess a threads=x\n",
        "WSGIDaemonProcess b bogus=1\n",
        "WSGIScriptReloading sometimes\n",
        "<VirtualHost *:80>\n",
    ));
    assert_eq!(e.len(), 4, "{e:#?}");
    assert!(e[0].starts_with("site.conf:1: WSGIDaemonProcess: invalid value 'x' for option 'threads'"));
    assert!(e[1].starts_with("site.conf:2: WSGIDaemonProcess: unknown option 'bogus'"));
    assert!(e[2].starts_with("site.conf:3: WSGIScriptReloading must be one of: Off | On"));
    assert_eq!(e[3], "site.conf:4: <VirtualHost> was not closed");
}

#[test]
fn daemon_names_are_unique_across_the_server() {
    let e = errors(concat!(
        "WSGIDaemonProcess site\n",
        "<VirtualHost *:80>\n",
        "    ServerName a.example\n",
        "    WSGIDaemonProcess site threads=2\n",
        "</VirtualHost>\n",
    ));
    assert_eq!(
        e,
        ["site.conf:4: WSGIDaemonProcess: name 'site' duplicates previous WSGI daemon definition at site.conf:1"]
    );
}

#[test]
fn a_process_group_must_name_a_daemon() {
    let e = errors("WSGIProcessGroup nosuch\nWSGIScriptAlias / /srv/a.wsgi process-group=other\n");
    assert_eq!(
        e,
        [
            "site.conf:1: WSGIProcessGroup: no WSGIDaemonProcess named 'nosuch' is defined",
            "site.conf:2: WSGIScriptAlias: no WSGIDaemonProcess named 'other' is defined",
        ]
    );
    // Expanded forms are resolved per request, not here.
    config("WSGIProcessGroup %{ENV:GROUP}\nWSGIApplicationGroup %{GLOBAL}\nWSGIProcessGroup %{GLOBAL}\n");
}

#[test]
fn a_daemon_defined_in_a_virtual_host_is_only_usable_from_that_host() {
    let base = concat!(
        "<VirtualHost *:80>\n",
        "    ServerName a.example\n",
        "    WSGIDaemonProcess a-site\n",
        "    WSGIProcessGroup a-site\n",
        "</VirtualHost>\n",
    );
    config(base);
    let other_host = format!(
        "{base}<VirtualHost *:80>\n    ServerName b.example\n    <Location /x>\n        WSGIProcessGroup a-site\n    </Location>\n</VirtualHost>\n"
    );
    let e = errors(&other_host);
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("site.conf:9: WSGIProcessGroup: WSGI process group 'a-site' is defined in the virtual host for 'a.example' and not accessible from here"),
        "{e:?}"
    );
    // The same ServerName on another port (say http and https) may share it.
    let same_name = format!(
        "{base}<VirtualHost *:443>\n    ServerName a.example\n    WSGIScriptAlias / /srv/a.wsgi process-group=a-site\n</VirtualHost>\n"
    );
    config(&same_name);
    // A daemon of the main server is usable everywhere.
    config(
        "WSGIDaemonProcess shared\n<VirtualHost *:80>\n    ServerName z\n    WSGIProcessGroup shared\n</VirtualHost>\n",
    );
}

#[test]
fn preloads_and_import_scripts_need_the_daemon_defined_first() {
    let e = errors(concat!(
        "WSGIImportScript /srv/warm.py process-group=late application-group=%{GLOBAL}\n",
        "WSGIScriptAlias / /srv/a.wsgi process-group=late application-group=%{GLOBAL}\n",
        "WSGIDaemonProcess late\n",
    ));
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e[0].starts_with("site.conf:1: WSGIImportScript: WSGI process group 'late' not yet configured"));
    assert!(e[1].starts_with("site.conf:2: WSGIScriptAlias: WSGI process group 'late' not yet configured"));
    // Without application-group= the alias does not preload, so order is free.
    config("WSGIScriptAlias / /srv/a.wsgi process-group=late\nWSGIDaemonProcess late\n");
    let c = config(concat!(
        "WSGIDaemonProcess early\n",
        "WSGIImportScript /srv/warm.py process-group=early application-group=%{GLOBAL}\n",
    ));
    assert_eq!(c.import_scripts[0].process_group, "early");
}

#[test]
fn settings_merge_server_then_host_then_sections() {
    let c = config(concat!(
        "WSGIDaemonProcess d1\n",
        "WSGIDaemonProcess d2\n",
        "WSGIApplicationGroup main-app\n",
        "WSGICallableObject main_callable\n",
        "WSGIPassAuthorization On\n",
        "<Directory /srv>\n",
        "    WSGIProcessGroup d1\n",
        "</Directory>\n",
        "<VirtualHost *:80>\n",
        "    ServerName www.example\n",
        "    WSGIApplicationGroup vhost-app\n",
        "    WSGIScriptAlias / /srv/site/app.wsgi\n",
        "    <Directory /srv/site>\n",
        "        WSGIProcessGroup d2\n",
        "        <Files app.wsgi>\n",
        "            WSGIScriptReloading Off\n",
        "        </Files>\n",
        "    </Directory>\n",
        "    <Location /admin>\n",
        "        WSGIApplicationGroup admin-app\n",
        "        WSGIProcessGroup d1\n",
        "    </Location>\n",
        "</VirtualHost>\n",
    ));
    let vhost = c.select_server(addr("127.0.0.1:80"), Some("www.example"));
    assert_eq!(vhost.server_name.as_deref(), Some("www.example"));
    let file = Path::new("/srv/site/app.wsgi");

    let s = c.settings_for(vhost, "/", Some(file));
    assert_eq!(s.effective_application_group(), "vhost-app");
    assert_eq!(s.effective_callable_object(), "main_callable");
    assert!(s.effective_pass_authorization());
    // The deeper <Directory> wins over the shallower one, whatever the order.
    assert_eq!(s.effective_process_group(), "d2");
    assert!(!s.effective_script_reloading(), "<Files> inside <Directory> applies");

    // <Location> comes last and wins.
    let s = c.settings_for(vhost, "/admin/users", Some(file));
    assert_eq!(s.effective_application_group(), "admin-app");
    assert_eq!(s.effective_process_group(), "d1");
    // ... on path-segment boundaries only.
    let s = c.settings_for(vhost, "/administrator", Some(file));
    assert_eq!(s.effective_application_group(), "vhost-app");

    // Another file: only the outer <Directory /srv> applies.
    let s = c.settings_for(vhost, "/", Some(Path::new("/srv/other/x.wsgi")));
    assert_eq!(s.effective_process_group(), "d1");
    assert!(s.effective_script_reloading());

    // The main server sees neither the virtual host's settings nor sections.
    let s = c.settings_for(&c.main_server, "/admin", Some(file));
    assert_eq!(s.effective_application_group(), "main-app");
    assert_eq!(s.effective_process_group(), "d1");
}

#[test]
fn defaults_apply_when_nothing_is_set() {
    let c = config("WSGIScriptAlias / /srv/a.wsgi\n");
    let s = c.settings_for(&c.main_server, "/", Some(Path::new("/srv/a.wsgi")));
    assert_eq!(s.effective_process_group(), "");
    assert_eq!(s.effective_application_group(), "%{RESOURCE}");
    assert_eq!(s.effective_callable_object(), "application");
    assert!(!s.effective_pass_authorization());
    assert!(s.effective_script_reloading());
    assert!(!s.effective_chunked_request());
    assert_eq!(s.effective_limit_request_body(), 1 << 30);
}

#[test]
fn lists_append_within_a_context_and_replace_across_contexts() {
    let c = config(concat!(
        "WSGITrustedProxies 10.0.0.1\n",
        "WSGITrustedProxies 10.0.0.2\n",
        "WSGITrustedProxyHeaders X-Forwarded-For\n",
        "WSGIRestrictProcess a\n",
        "WSGIRestrictProcess b c\n",
        "WSGIHandlerScript h1 /srv/h1.py\n",
        "<Location /x>\n",
        "    WSGITrustedProxies 10.0.0.3\n",
        "    WSGIHandlerScript h2 /srv/h2.py\n",
        "    WSGIHandlerScript h1 /srv/h1-override.py\n",
        "</Location>\n",
    ));
    let top = &c.main_server.settings;
    assert_eq!(top.trusted_proxies.as_ref().unwrap().len(), 2);
    assert_eq!(top.restrict_process.as_deref(), Some(&["b".to_string(), "c".to_string()][..]));
    let s = c.settings_for(&c.main_server, "/x", None);
    assert_eq!(s.trusted_proxies.unwrap().len(), 1, "a section's list replaces");
    assert_eq!(s.trusted_proxy_headers.unwrap(), ["X-Forwarded-For"], "inherited");
    assert_eq!(s.handler_scripts.len(), 2, "handler scripts are the union");
    assert_eq!(s.handler_scripts["h1"].path, Path::new("/srv/h1-override.py"));
}

#[test]
fn script_aliases_of_a_host_come_before_the_main_servers() {
    let c = config(concat!(
        "WSGIScriptAlias /shared /srv/shared.wsgi\n",
        "<VirtualHost *:80>\n",
        "    WSGIScriptAlias /own /srv/own.wsgi\n",
        "</VirtualHost>\n",
    ));
    let vhost = &c.virtual_hosts[0];
    let targets: Vec<&str> = c.script_aliases(vhost).map(|a| a.target.as_str()).collect();
    assert_eq!(targets, ["/srv/own.wsgi", "/srv/shared.wsgi"]);
    let targets: Vec<&str> = c.script_aliases(&c.main_server).map(|a| a.target.as_str()).collect();
    assert_eq!(targets, ["/srv/shared.wsgi"]);
}

#[test]
fn virtual_host_selection_is_name_based_per_address() {
    let c = config(concat!(
        "ServerName main.example\n",
        "<VirtualHost *:80>\n    ServerName first.example\n</VirtualHost>\n",
        "<VirtualHost *:80>\n    ServerName second.example:80\n    ServerAlias *.second.example other.example\n</VirtualHost>\n",
        "<VirtualHost 127.0.0.2:80>\n    ServerName ip.example\n</VirtualHost>\n",
        "<VirtualHost _default_:8080>\n    ServerName eight.example\n</VirtualHost>\n",
    ));
    let name = |local: &str, host: Option<&str>| c.select_server(addr(local), host).server_name.clone().unwrap();
    assert_eq!(name("127.0.0.1:80", Some("first.example")), "first.example");
    assert_eq!(name("127.0.0.1:80", Some("SECOND.example:80")), "second.example:80");
    assert_eq!(name("127.0.0.1:80", Some("www.second.example")), "second.example:80");
    assert_eq!(name("127.0.0.1:80", Some("other.example")), "second.example:80");
    // Unknown or missing Host: the first host for the address.
    assert_eq!(name("127.0.0.1:80", Some("nobody.example")), "first.example");
    assert_eq!(name("127.0.0.1:80", None), "first.example");
    // An IP-specific host wins for its address, whatever the name.
    assert_eq!(name("127.0.0.2:80", Some("first.example")), "ip.example");
    assert_eq!(name("127.0.0.1:8080", Some("x")), "eight.example");
    // No virtual host for the port: the main server.
    assert_eq!(name("127.0.0.1:9999", Some("first.example")), "main.example");
}

#[test]
fn interpreter_options_blocks() {
    let c = config(concat!(
        "WSGIPythonPath /base\n",
        "<WSGIInterpreterOptions process-group=site application-group=%{GLOBAL}>\n",
        "    WSGIPythonPath /extra\n",
        "    WSGIPerInterpreterGIL Off\n",
        "    WSGIRestrictStdout Off\n",
        "</WSGIInterpreterOptions>\n",
        "WSGIDaemonProcess site\n",
    ));
    assert_eq!(c.global.python_path.as_ref().unwrap()[0], Path::new("/base"));
    let block = &c.interpreter_options[0];
    assert_eq!(block.process_group.as_deref(), Some("site"));
    assert_eq!(block.application_group.as_deref(), Some("%{GLOBAL}"));
    assert_eq!(block.settings.len(), 3);
    assert!(c.global.per_interpreter_gil.is_none(), "block settings stay in the block");

    let e = errors(concat!(
        "<WSGIInterpreterOptions process-group=a bogus=1 process-group=b plain>\n",
        "    WSGIScriptAlias / /x.wsgi\n",
        "</WSGIInterpreterOptions>\n",
        "<VirtualHost *:80>\n<WSGIInterpreterOptions>\n</WSGIInterpreterOptions>\n</VirtualHost>\n",
    ));
    assert_eq!(e.len(), 5, "{e:#?}");
    assert!(e[0].contains("unknown selector 'bogus'"));
    assert!(e[1].contains("process-group given more than once"));
    assert!(e[2].contains("argument 'plain' is not of the form key=value"));
    assert!(e[3].starts_with("site.conf:2: WSGIScriptAlias is not allowed inside <WSGIInterpreterOptions>"));
    assert!(e[4].starts_with("site.conf:5: <WSGIInterpreterOptions> cannot occur within <VirtualHost> section"));
}

#[test]
fn sections_nest_only_where_apache_allows() {
    let e = errors(concat!(
        "<Location /a>\n    <Directory /b>\n    </Directory>\n</Location>\n",
        "<VirtualHost *:80>\n    <VirtualHost *:81>\n    </VirtualHost>\n</VirtualHost>\n",
        "<Directory /c>\n    <Files x>\n        <Files y>\n        </Files>\n    </Files>\n</Directory>\n",
    ));
    assert_eq!(
        e,
        [
            "site.conf:2: <Directory> cannot occur within <Location> section",
            "site.conf:6: <VirtualHost> cannot occur within <VirtualHost> section",
            "site.conf:11: <Files> cannot occur within <Files> section",
        ]
    );
}

#[test]
fn directory_regex_and_tilde_forms() {
    let c = config(concat!(
        "WSGIDaemonProcess rx\n",
        "<DirectoryMatch ^/srv/app[0-9]+>\n    WSGIProcessGroup rx\n</DirectoryMatch>\n",
        "<Files ~ \"\\.py$\">\n    WSGICallableObject app\n</Files>\n",
        "<Directory /srv/*/public>\n    WSGIChunkedRequest On\n</Directory>\n",
    ));
    let s = c.settings_for(&c.main_server, "/", Some(Path::new("/srv/app12/x.py")));
    assert_eq!(s.effective_process_group(), "rx");
    assert_eq!(s.effective_callable_object(), "app");
    assert!(!s.effective_chunked_request());
    let s = c.settings_for(&c.main_server, "/", Some(Path::new("/srv/site/public/deep/x.wsgi")));
    assert_eq!(s.effective_process_group(), "");
    assert_eq!(s.effective_callable_object(), "application");
    assert!(s.effective_chunked_request(), "a wildcard matches one component");
}

#[test]
fn core_directives_fill_the_model() {
    let c = config(concat!(
        "ServerRoot /etc/apache2\n",
        "Listen 127.0.0.1:8000\nListen 8001\n",
        "User www-data\nGroup www-data\n",
        "Timeout 30\nKeepAlive Off\nLimitRequestBody 1000\n",
        "<VirtualHost *:8000>\n",
        "    ServerName v.example\n    DocumentRoot /srv/www\n",
        "    Alias /static/ /srv/static/\n    AliasMatch ^/i/(.*) /srv/i/$1\n",
        "    CustomLog /var/log/access.log combined\n    ErrorLog /var/log/error.log\n",
        "    KeepAliveTimeout 500ms\n    MaxKeepAliveRequests 50\n    LogLevel info\n",
        "</VirtualHost>\n",
    ));
    assert_eq!(c.server_root, Path::new("/etc/apache2"));
    assert_eq!(c.listen.len(), 2);
    assert_eq!(c.listen[1].port, 8001);
    assert_eq!(c.user.as_deref(), Some("www-data"));
    assert_eq!(c.main_server.timeout, Some(std::time::Duration::from_secs(30)));
    assert_eq!(c.main_server.settings.limit_request_body, Some(1000));
    let v = &c.virtual_hosts[0];
    assert_eq!(v.aliases.len(), 2);
    assert_eq!(v.custom_logs[0].format, "combined");
    assert_eq!(v.keep_alive_timeout, Some(std::time::Duration::from_millis(500)));
    assert_eq!(c.settings_for(v, "/", None).effective_limit_request_body(), 1000, "inherited from the main server");
    let e = errors("<VirtualHost *:80>\n    Listen 80\n    User nobody\n</VirtualHost>\nServerAlias x\n");
    assert_eq!(
        e,
        [
            "site.conf:2: Listen cannot occur within <VirtualHost> section",
            "site.conf:3: User cannot occur within <VirtualHost> section",
            "site.conf:5: ServerAlias not allowed here",
        ]
    );
}

#[test]
fn the_dump_shows_effective_values() {
    let c = config(concat!(
        "<VirtualHost *:80>\n",
        "    ServerName d.example\n",
        "    WSGIDaemonProcess d processes=1 threads=25\n",
        "    WSGIProcessGroup d\n",
        "    WSGIScriptAlias /app /srv/app.wsgi callable-object=make_app\n",
        "</VirtualHost>\n",
    ));
    let dump = c.dump();
    assert!(dump.contains("WSGIScriptAlias /app -> /srv/app.wsgi"), "{dump}");
    assert!(dump.contains("process group:      d (daemon)"), "{dump}");
    assert!(dump.contains("application group:  %{RESOURCE}"), "{dump}");
    assert!(dump.contains("callable object:    make_app"), "{dump}");
    assert!(dump.contains("wsgi.multithread=True wsgi.multiprocess=True"), "{dump}");
    assert!(dump.contains("graceful-timeout         15"), "{dump}");
    assert!(dump.contains("WSGIRestrictSignal       On (default)"), "{dump}");
}

#[test]
fn preloads_are_the_import_scripts_and_fixed_aliases_of_a_process_group() {
    let c = config(
        "WSGIDaemonProcess d\n\
         WSGIImportScript /srv/embedded.py process-group=%{GLOBAL} application-group=%{GLOBAL}\n\
         WSGIImportScript /srv/daemon.py process-group=d application-group=app\n\
         WSGIScriptAlias /a /srv/a.wsgi process-group=d application-group=%{GLOBAL}\n\
         WSGIScriptAlias /b /srv/b.wsgi process-group=d\n\
         WSGIScriptAlias /c /srv/c.wsgi process-group=%{GLOBAL} application-group=g\n",
    );
    let paths = |group: &str| -> Vec<(String, String)> {
        c.preloads(group).into_iter().map(|(p, g)| (p.display().to_string(), g)).collect()
    };
    assert_eq!(paths(""), vec![("/srv/embedded.py".into(), "%{GLOBAL}".into()), ("/srv/c.wsgi".into(), "g".into())]);
    // /b names no application group: it is not imported ahead of a request.
    assert_eq!(paths("d"), vec![("/srv/daemon.py".into(), "app".into()), ("/srv/a.wsgi".into(), "%{GLOBAL}".into())]);
}

// Found by the config fuzz target: a directive name with a character of
// several bytes within its first four panicked (a byte slice of the name).
#[test]
fn directive_names_with_multibyte_characters_are_other_modules_directives() {
    assert!(load("WSG\u{e9}Thing on\nW\u{fffd}\n\u{e9}\u{e9}\u{e9}x y\n").is_ok());
    assert!(wsgi_config::directives::is_wsgi_name("WSGIThing"));
    assert!(!wsgi_config::directives::is_wsgi_name("WSG\u{e9}Thing"));
}

// The config fuzz target's Include trees held in memory.
#[test]
fn includes_come_from_a_file_source_in_memory() {
    use wsgi_config::tree::MemoryFiles;
    let mut files = MemoryFiles::default();
    files.insert("/etc/site/conf.d/b.conf", "WSGIScriptAlias /b /srv/b.wsgi\n");
    files.insert("/etc/site/conf.d/a.conf", "WSGIScriptAlias /a /srv/a.wsgi\n");
    files.insert("/etc/site/conf.d/sub/c.conf", "WSGIScriptAlias /c /srv/c.wsgi\n");
    files.insert("/etc/site/loop.conf", "Include loop.conf\n");
    let options = ReadOptions::standalone("/etc/site");
    let text = "Include conf.d/*.conf\nInclude conf.d/sub\n<IfFile conf.d/a.conf>\nWSGIScriptAlias /d /srv/d.wsgi\n</IfFile>\n";
    let config = wsgi_config::load_str_from(&files, text, Path::new("main.conf"), &options).unwrap();
    let urls: Vec<&str> = config.main_server.script_aliases.iter().map(|a| a.url.as_str()).collect();
    assert_eq!(urls, ["/a", "/b", "/c", "/d"]);

    let errors =
        wsgi_config::load_str_from(&files, "Include loop.conf\nInclude none.conf\n", Path::new("main.conf"), &options)
            .unwrap_err();
    let messages: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    assert!(
        messages[0].starts_with("/etc/site/loop.conf:1: Include: '/etc/site/loop.conf' includes itself"),
        "{messages:?}"
    );
    assert!(messages[1].starts_with("main.conf:2: Include: no file matches"), "{messages:?}");
}

// Found by the config fuzz target: a file that includes itself twice (a
// wildcard matching it and a sibling) was read 2^32 times before the
// depth limit stopped it, which takes forever. A file that includes
// itself is an error at once, and includes that multiply without a cycle
// stop at a total.
#[test]
fn includes_that_multiply_stop() {
    use wsgi_config::tree::MemoryFiles;
    let mut files = MemoryFiles::default();
    files.insert("/etc/site/loop/a.conf", "Include loop/*.conf\n");
    files.insert("/etc/site/loop/b.conf", "Include loop/*.conf\n");
    // Each level includes the next one twice: 2^20 reads without a total.
    for level in 0..20 {
        let next = format!("Include dag/{}.conf\n", level + 1);
        files.insert(format!("/etc/site/dag/{level}.conf"), next.repeat(2));
    }
    files.insert("/etc/site/dag/20.conf", "WSGIScriptAlias / /srv/app.wsgi\n");
    let options = ReadOptions::standalone("/etc/site");
    let started = std::time::Instant::now();
    let errors =
        wsgi_config::load_str_from(&files, "Include loop/*.conf\n", Path::new("main.conf"), &options).unwrap_err();
    let messages: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    assert!(messages.iter().all(|m| m.contains("includes itself")), "{messages:?}");
    let errors =
        wsgi_config::load_str_from(&files, "Include dag/0.conf\n", Path::new("main.conf"), &options).unwrap_err();
    let messages: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].contains("more than 10000 files included"), "{messages:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}
