//! What is imported before any request: `WSGIImportScript` and script
//! aliases naming both groups, in embedded mode and in a daemon group. The
//! Apache module and the standalone server read the same configuration and
//! must preload the same scripts in the same places.

use std::collections::BTreeSet;
use std::time::Duration;

use tests::apache::{Apache, ApacheOptions};
use tests::{Server, TempDir};

/// Each script leaves a marker `NAME.PID` when it is imported.
fn script(name: &str) -> String {
    format!(
        "import os\n\
         open(os.path.join(os.path.dirname(__file__), 'markers', '{name}.%d' % os.getpid()), 'w').close()\n\
         def application(environ, start_response):\n\
         \x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
         \x20   return [b'{name}']\n"
    )
}

const SCRIPTS: [&str; 5] = ["imported", "embedded", "daemon", "daemon_imported", "lazy"];

fn site() -> TempDir {
    use std::os::unix::fs::PermissionsExt;
    let site = TempDir::new("preload");
    for name in SCRIPTS {
        site.write(&format!("{name}.wsgi"), &script(name));
    }
    let markers = site.path().join("markers");
    std::fs::create_dir(&markers).unwrap();
    // Apache's children and daemon processes write as www-data.
    std::fs::set_permissions(&markers, std::fs::Permissions::from_mode(0o777)).unwrap();
    site
}

/// The same configuration for both servers: an import and an alias for
/// embedded mode, an import and an alias for the daemon group, and an
/// alias with no fixed groups, which is imported only when requested.
fn config(site: &TempDir) -> String {
    let dir = site.path().display();
    format!(
        "WSGIDaemonProcess pre processes=1 threads=2\n\
         WSGIImportScript {dir}/imported.wsgi process-group=%{{GLOBAL}} application-group=%{{GLOBAL}}\n\
         WSGIImportScript {dir}/daemon_imported.wsgi process-group=pre application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /embedded {dir}/embedded.wsgi process-group=%{{GLOBAL}} application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /daemon {dir}/daemon.wsgi process-group=pre application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /lazy {dir}/lazy.wsgi\n"
    )
}

/// The scripts imported so far, with where: `NAME in PLACE`, a daemon
/// process told by its name (`(wsgi:pre)`, in `/proc/PID/comm`).
fn imported(site: &TempDir) -> BTreeSet<String> {
    let Ok(entries) = std::fs::read_dir(site.path().join("markers")) else { return BTreeSet::new() };
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let (script, pid) = name.split_once('.')?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let place = if comm.starts_with("(wsgi:pre)") { "daemon group 'pre'" } else { "embedded" };
            Some(format!("{script} in {place}"))
        })
        .collect()
}

/// What a server has imported once the four preloads are there (at most
/// 20 s), without a request.
fn preloaded(site: &TempDir) -> BTreeSet<String> {
    tests::wait_for(Duration::from_secs(20), || {
        let seen = imported(site);
        (seen.len() >= 4).then_some(seen)
    })
    .unwrap_or_else(|| imported(site))
}

#[test]
fn apache_preloads_the_same_scripts_as_the_standalone_server() {
    tests::require!(tests::apache::APACHE_BINARY);
    let expected: BTreeSet<String> = [
        "daemon in daemon group 'pre'",
        "daemon_imported in daemon group 'pre'",
        "embedded in embedded",
        "imported in embedded",
    ]
    .into_iter()
    .map(String::from)
    .collect();

    let apache_site = site();
    let apache = Apache::start(&ApacheOptions::ours(config(&apache_site)));
    let by_apache = preloaded(&apache_site);
    assert_eq!(by_apache, expected, "Apache's preloads\n{}", apache.error_log());
    drop(apache);

    let standalone_site = site();
    let file = standalone_site.write("site.conf", &config(&standalone_site));
    let server = Server::start(["--config".as_ref(), file.as_os_str()]);
    let by_standalone = preloaded(&standalone_site);
    assert_eq!(by_standalone, expected, "the standalone server's preloads\n{}", server.stderr());

    // The alias without fixed groups is imported when requested, by both.
    assert_eq!(server.get("/lazy").text(), "lazy");
    assert!(imported(&standalone_site).contains("lazy in embedded"));
}
