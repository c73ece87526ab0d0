//! The module's configuration records: what Apache's per-server and
//! per-directory configuration vectors hold for mod_wsgi, and how a
//! directive line lands in them. Parsing is wsgi-config's; this file only
//! decides where each typed setting is stored, as mod_wsgi does.

use std::sync::OnceLock;

use wsgi_config::directives::{self, ImportScript, ScriptAlias, Setting};
use wsgi_config::model::{GlobalSettings, InterpreterOptions};
use wsgi_config::support::{self, FrontEnd};
use wsgi_config::{DaemonProcess, DirSettings};
use wsgi_core::route::{MatchPolicy, Router};

/// Per-server configuration: a virtual host's after merging with the main
/// server's.
#[derive(Debug, Default)]
pub(crate) struct ServerConfig {
    /// WSGIScriptAlias(Match), in match order: the virtual host's own, then
    /// the main server's (mod_wsgi's merge order).
    pub(crate) script_aliases: Vec<ScriptAlias>,
    /// WSGIDaemonProcess groups defined in this server.
    pub(crate) daemon_processes: Vec<DaemonProcess>,
    /// WSGIImportScript lines.
    pub(crate) import_scripts: Vec<ImportScript>,
    /// Process-wide settings (only the main server's are set).
    pub(crate) global: GlobalSettings,
    /// `<WSGIInterpreterOptions>` blocks (only the main server's are set).
    pub(crate) interpreter_options: Vec<InterpreterOptions>,
    /// The aliases compiled for matching, built on first use in each child.
    router: OnceLock<Router>,
}

/// The scripts processes of `process_group` (`""`: Apache's children)
/// import when they start, from every server record's `WSGIImportScript`
/// lines and script aliases: wsgi-config's rule, as the standalone server
/// applies it.
pub(crate) fn preloads(main: crate::ffi::Server, process_group: &str) -> Vec<(std::path::PathBuf, String)> {
    let (mut imports, mut aliases) = (Vec::new(), Vec::new());
    for server in main.and_following() {
        if let Some(config) = server.config::<ServerConfig>() {
            imports.extend(config.import_scripts.iter().cloned());
            aliases.extend(config.script_aliases.iter().cloned());
        }
    }
    wsgi_config::model::preloads(&imports, &aliases, process_group)
}

impl ServerConfig {
    /// A virtual host's configuration over the main server's.
    pub(crate) fn merged(base: &ServerConfig, add: &ServerConfig) -> ServerConfig {
        ServerConfig {
            script_aliases: add.script_aliases.iter().chain(&base.script_aliases).cloned().collect(),
            daemon_processes: add.daemon_processes.clone(),
            import_scripts: add.import_scripts.clone(),
            global: base.global.clone(),
            interpreter_options: base.interpreter_options.clone(),
            router: OnceLock::new(),
        }
    }

    /// The script aliases compiled for matching; the first matching alias
    /// wins, in configuration order, as in mod_wsgi.
    pub(crate) fn router(&self) -> &Router {
        self.router.get_or_init(|| {
            let case_sensitive = self.global.case_sensitivity.unwrap_or(true);
            Router::new(&self.script_aliases, case_sensitive).with_policy(MatchPolicy::First)
        })
    }
}

/// Per-directory configuration (also a server's defaults).
#[derive(Debug, Default, Clone)]
pub(crate) struct DirConfig {
    /// The settings of this scope.
    pub(crate) settings: DirSettings,
}

impl DirConfig {
    /// A nested scope's configuration over its parent's.
    pub(crate) fn merged(base: &DirConfig, add: &DirConfig) -> DirConfig {
        DirConfig { settings: base.settings.merged_with(&add.settings) }
    }
}

/// Where a directive stands, as far as storing it goes.
pub(crate) struct DirectiveSite<'a> {
    /// The directive's name.
    pub(crate) name: &'a str,
    /// Its raw argument text.
    pub(crate) args: &'a str,
    /// The server being configured.
    pub(crate) server: &'a mut ServerConfig,
    /// The scope's per-directory record (the server's defaults outside
    /// directory sections).
    pub(crate) dir: &'a mut DirConfig,
}

/// `<WSGIInterpreterOptions>`: the block from its opening line's `args`
/// and the lines Apache read inside it, each checked as the standalone
/// server checks them; `Err` names the first problem (Apache adds the
/// file and line of the opening line).
pub(crate) fn interpreter_options_block(command: &crate::ffi::Command, args: &str) -> Result<(), String> {
    let words = wsgi_config::lexer::split_args(args).map_err(|e| format!("<WSGIInterpreterOptions>: {e}"))?;
    let (file, line) = command.location();
    let (mut block, problems) = InterpreterOptions::open(&words, wsgi_config::Location::new(file, line));
    if let Some(problem) = problems.into_iter().next() {
        return Err(problem);
    }
    for (name, args, line) in command.children() {
        let words = wsgi_config::lexer::split_args(&args).map_err(|e| format!("line {line}: {name}: {e}"))?;
        block.add(&name, &words, wsgi_interp::PYTHON_FEATURES).map_err(|e| format!("line {line}: {e}"))?;
    }
    let server = command.server_config_mut::<ServerConfig>().ok_or("mod_wsgi: no server configuration")?;
    server.interpreter_options.push(block);
    Ok(())
}

/// Parses one directive with wsgi-config and stores the setting. `Err` is
/// the message Apache prints after `Syntax error on line N of FILE:`.
pub(crate) fn apply_directive(site: DirectiveSite<'_>) -> Result<(), String> {
    let words = wsgi_config::lexer::split_args(site.args).map_err(|e| format!("{}: {e}", site.name))?;
    let setting = match directives::parse(site.name, &words) {
        Some(parsed) => parsed.map_err(|e| e.to_string())?,
        None => return Err(format!("{}: unknown directive", site.name)),
    };
    support::check(FrontEnd::Apache, wsgi_interp::PYTHON_FEATURES, site.name, &words, &setting)
        .map_err(|e| e.to_string())?;
    match setting {
        Setting::ScriptAlias(alias) => site.server.script_aliases.push(alias),
        Setting::DaemonProcess(process) => {
            if site.server.daemon_processes.iter().any(|p| p.name == process.name) {
                return Err(format!("WSGIDaemonProcess: name '{}' is defined twice in this server", process.name));
            }
            site.server.daemon_processes.push(*process);
        }
        Setting::ImportScript(script) => site.server.import_scripts.push(script),
        Setting::Global(global) => site.server.global.apply(global),
        Setting::Dir(dir) => site.dir.settings.apply(dir),
        Setting::Core(_) => return Err(format!("{}: an Apache directive, not mod_wsgi's", site.name)),
    }
    Ok(())
}
