//! A human-readable dump of the resolved model, for `check-config --dump`.

use std::fmt::{self, Write};

use crate::directives::{ScriptAlias, UrlPattern};
use crate::model::{Config, DaemonGroup, Server};
use crate::values::flag_word;

/// Displays a [`Config`] as the resolved model: process-wide settings with
/// their effective values, each server's script aliases with the process
/// group, application group and callable object that apply to them, and
/// every daemon process group with every option (defaults included).
pub struct Dump<'a>(pub &'a Config);

impl Config {
    /// The resolved model as text; see [`Dump`].
    pub fn dump(&self) -> String {
        Dump(self).to_string()
    }
}

fn py(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

fn value_or_default<T: fmt::Display>(value: Option<T>, default: &str) -> String {
    match value {
        Some(v) => v.to_string(),
        None => format!("{default} (default)"),
    }
}

fn or_not_set<T: fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "(not set)".to_string(), |v| v.to_string())
}

fn flag_or_default(value: Option<bool>, default: bool) -> String {
    match value {
        Some(v) => flag_word(v).to_string(),
        None => format!("{} (default)", flag_word(default)),
    }
}

impl fmt::Display for Dump<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = self.0;
        writeln!(f, "ServerRoot {}", config.server_root.display())?;
        for listen in &config.listen {
            writeln!(f, "Listen {listen}")?;
        }
        if let Some(user) = &config.user {
            writeln!(f, "User {user}")?;
        }
        if let Some(group) = &config.group {
            writeln!(f, "Group {group}")?;
        }
        self.globals(f)?;
        self.server(f, &config.main_server, "Main server")?;
        for vhost in &config.virtual_hosts {
            let place = vhost.location.as_ref().map(|l| format!(" ({l})")).unwrap_or_default();
            self.server(f, vhost, &format!("VirtualHost {}{place}", vhost.addresses.join(" ")))?;
        }
        for daemon in &config.daemon_processes {
            self.daemon(f, daemon)?;
        }
        for import in &config.import_scripts {
            writeln!(
                f,
                "WSGIImportScript {} process-group={} application-group={}",
                import.path.display(),
                import.process_group,
                import.application_group
            )?;
        }
        Ok(())
    }
}

impl Dump<'_> {
    fn globals(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = &self.0.global;
        let path = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string());
        let rows: Vec<(&str, String)> = vec![
            ("WSGIPythonHome", or_not_set(path(&g.python_home))),
            (
                "WSGIPythonPath",
                or_not_set(
                    g.python_path
                        .as_ref()
                        .map(|ps| ps.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":")),
                ),
            ),
            ("WSGIPythonEggs", or_not_set(path(&g.python_eggs))),
            ("WSGIPythonOptimize", value_or_default(g.python_optimize, "0")),
            ("WSGIPythonHashSeed", or_not_set(g.python_hash_seed)),
            (
                "WSGIPythonWarnings",
                if g.python_warnings.is_empty() { "(not set)".into() } else { g.python_warnings.join(", ") },
            ),
            ("WSGIDontWriteBytecode", flag_or_default(g.dont_write_bytecode, false)),
            ("WSGISwitchInterval", or_not_set(g.switch_interval)),
            ("WSGIDestroyInterpreter", flag_or_default(g.destroy_interpreter, true)),
            (
                "WSGIApplicationGroupFallback",
                if g.application_group_fallback == Some(true) { "%{GLOBAL}".into() } else { "(not set)".into() },
            ),
            ("WSGIPerInterpreterGIL", flag_or_default(g.per_interpreter_gil, false)),
            ("WSGIFreeThreading", flag_or_default(g.free_threading, false)),
            ("WSGILazyInitialization", flag_or_default(g.lazy_initialization, true)),
            ("WSGIRestrictEmbedded", flag_or_default(g.restrict_embedded, false)),
            ("WSGIRestrictStdin", flag_or_default(g.restrict_stdin, false)),
            ("WSGIRestrictStdout", flag_or_default(g.restrict_stdout, false)),
            ("WSGIRestrictSignal", flag_or_default(g.restrict_signal, true)),
            ("WSGICaseSensitivity", flag_or_default(g.case_sensitivity, true)),
            ("WSGISocketPrefix", value_or_default(path(&g.socket_prefix), "logs/wsgi")),
            ("WSGISocketRotation", flag_or_default(g.socket_rotation, true)),
            ("WSGIAcceptMutex", value_or_default(g.accept_mutex, "fcntl")),
            ("WSGIServerMetrics", flag_or_default(g.server_metrics, false)),
        ];
        writeln!(f, "Process-wide settings:")?;
        for (name, value) in rows {
            writeln!(f, "  {name:<24} {value}")?;
        }
        for block in &self.0.interpreter_options {
            writeln!(
                f,
                "  <WSGIInterpreterOptions process-group={} application-group={}> ({})",
                block.process_group.as_deref().unwrap_or("*"),
                block.application_group.as_deref().unwrap_or("*"),
                block.location
            )?;
            for setting in &block.settings {
                writeln!(f, "    {}", crate::directives::Setting::Global(setting.clone()).to_line())?;
            }
        }
        Ok(())
    }

    fn server(&self, f: &mut fmt::Formatter<'_>, server: &Server, title: &str) -> fmt::Result {
        let config = self.0;
        let name = server.server_name.as_deref().unwrap_or("(none)");
        writeln!(f, "{title}")?;
        writeln!(f, "  ServerName {name}")?;
        if !server.server_aliases.is_empty() {
            writeln!(f, "  ServerAlias {}", server.server_aliases.join(" "))?;
        }
        if let Some(root) = &server.document_root {
            writeln!(f, "  DocumentRoot {}", root.display())?;
        }
        for alias in &server.aliases {
            writeln!(f, "  Alias {} -> {}", alias.url.as_str(), alias.target)?;
        }
        for alias in config.script_aliases(server) {
            self.script_alias(f, server, alias)?;
        }
        for section in &server.sections {
            writeln!(f, "  <{} {}> ({})", section.container_name(), section.pattern_text(), section.location)?;
        }
        Ok(())
    }

    fn script_alias(&self, f: &mut fmt::Formatter<'_>, server: &Server, alias: &ScriptAlias) -> fmt::Result {
        let config = self.0;
        let (url, file) = match &alias.url {
            UrlPattern::Prefix(prefix) => (prefix.as_str(), Some(std::path::Path::new(&alias.target))),
            UrlPattern::Regex(_) => ("", None),
        };
        let settings = config.settings_for(server, url, file);
        let process_group = alias.process_group.as_deref().unwrap_or(settings.effective_process_group());
        let process_group = match process_group {
            "" | "%{GLOBAL}" => "(embedded)".to_string(),
            name => format!("{name} (daemon)"),
        };
        let application_group = alias.application_group.as_deref().unwrap_or(settings.effective_application_group());
        let callable = alias.callable_object.as_deref().unwrap_or(settings.effective_callable_object());
        let pass_auth = alias.pass_authorization.unwrap_or(settings.effective_pass_authorization());
        let mut line = String::new();
        write!(line, "  {} {} -> {}", alias.directive_name(), alias.url.as_str(), alias.target)?;
        writeln!(f, "{line}")?;
        writeln!(f, "      process group:      {process_group}")?;
        writeln!(f, "      application group:  {application_group}")?;
        writeln!(f, "      callable object:    {callable}")?;
        writeln!(f, "      pass authorization: {}", flag_word(pass_auth))?;
        writeln!(f, "      script reloading:   {}", flag_word(settings.effective_script_reloading()))?;
        writeln!(f, "      LimitRequestBody:   {}", settings.effective_limit_request_body())?;
        Ok(())
    }

    fn daemon(&self, f: &mut fmt::Formatter<'_>, daemon: &DaemonGroup) -> fmt::Result {
        let process = &daemon.process;
        let scope = match daemon.virtual_host {
            Some(index) => {
                let vhost = &self.0.virtual_hosts[index];
                format!("virtual host {}", vhost.server_name.as_deref().unwrap_or(&vhost.addresses.join(" ")))
            }
            None => "server-wide".into(),
        };
        writeln!(f, "WSGIDaemonProcess {} ({}; {scope})", process.name, daemon.location)?;
        writeln!(
            f,
            "  wsgi.multithread={} wsgi.multiprocess={} wsgi.run_once={}",
            py(process.multithread()),
            py(process.multiprocess()),
            py(process.run_once())
        )?;
        for (option, value) in process.effective_options() {
            let value = match (option, value) {
                ("processes", None) => "1 (not given)".to_string(),
                (_, Some(v)) if v.is_empty() => "(none)".to_string(),
                (_, Some(v)) => v,
                (_, None) => "(not set)".to_string(),
            };
            writeln!(f, "  {option:<24} {value}")?;
        }
        Ok(())
    }
}
