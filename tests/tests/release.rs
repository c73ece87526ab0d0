//! Installing the Apache module: `wsgi-standalone module-config` prints the
//! lines that load it, and those lines, as printed, load it into a real
//! Apache that then serves an application.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use tests::apache::{apache_available, our_module, APACHE_BINARY, MODULES_DIR};
use tests::{free_port, http_request, standalone_binary, wait_for, TempDir};

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

/// `apache2 -DFOREGROUND` in its own process group, stopped on drop.
struct ApacheProcess {
    child: Child,
    run_dir: PathBuf,
}

impl ApacheProcess {
    fn logs(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.run_dir.join(name)).unwrap_or_default();
        format!("--- stderr\n{}--- error.log\n{}", read("stderr.log"), read("error.log"))
    }
}

impl Drop for ApacheProcess {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).stderr(Stdio::null()).status();
        if wait_for(Duration::from_secs(15), || self.child.try_wait().ok().flatten()).is_none() {
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).stderr(Stdio::null()).status();
            let _ = self.child.wait();
        }
    }
}

fn start_apache(run_dir: &Path, config: &str) -> ApacheProcess {
    let conf = run_dir.join("httpd.conf");
    std::fs::write(&conf, config).expect("write httpd.conf");
    let stderr = std::fs::File::create(run_dir.join("stderr.log")).expect("create stderr log");
    let child = Command::new(APACHE_BINARY)
        .process_group(0)
        .args(["-DFOREGROUND", "-f"])
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start apache2");
    ApacheProcess { child, run_dir: run_dir.to_path_buf() }
}

#[test]
fn apache_loads_the_module_with_the_printed_lines_and_serves_an_application() {
    if !apache_available() {
        eprintln!("skipped: {APACHE_BINARY} is not installed");
        return;
    }
    our_module();
    let output = module_config(&[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed = String::from_utf8(output.stdout).expect("UTF-8 output");
    let named = directive_value(&printed, "LoadModule wsgi_module").expect("a LoadModule line");
    assert!(Path::new(&named).is_file(), "{printed}");

    let site = TempDir::new("module-config-site");
    let app = site.write("hello.wsgi", HELLO_APP);
    let run = TempDir::new("module-config-run");
    let port = free_port();
    let root = run.path().display();
    let config = format!(
        "ServerRoot {root}\n\
         Listen 127.0.0.1:{port}\n\
         PidFile {root}/httpd.pid\n\
         ErrorLog {root}/error.log\n\
         DefaultRuntimeDir {root}\n\
         Mutex file:{root} default\n\
         User www-data\n\
         Group www-data\n\
         ServerName localhost\n\
         DocumentRoot {site}\n\
         LoadModule mpm_event_module {MODULES_DIR}/mod_mpm_event.so\n\
         LoadModule authz_core_module {MODULES_DIR}/mod_authz_core.so\n\
         {printed}\
         WSGIScriptAlias / {app}\n",
        site = site.path().display(),
        app = app.display(),
    );
    let mut apache = start_apache(run.path(), &config);
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let answer = wait_for(Duration::from_secs(20), || {
        if let Ok(Some(status)) = apache.child.try_wait() {
            return Some(Err(format!("Apache exited with {status}")));
        }
        http_request(address, "GET", "/", &[], b"").ok().map(Ok)
    });
    let response = match answer {
        Some(Ok(response)) => response,
        Some(Err(message)) => panic!("{message}:\n{}\n--- httpd.conf\n{config}", apache.logs()),
        None => panic!("Apache did not answer on port {port}:\n{}\n--- httpd.conf\n{config}", apache.logs()),
    };
    assert_eq!(response.status(), 200, "{}", apache.logs());
    assert_eq!(response.text(), "Hello world!");
}
