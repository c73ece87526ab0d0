//! `wsgi-standalone`: the standalone front end of mod_wsgi-rs.
//!
//! A thin binary: the command line (`cli`), the Apache module's commands
//! and the installed layout (`install`), serving (`serve`: the
//! configuration, sockets, processes and daemon groups; `http` over hyper;
//! the Python worker pool in `workers`) and `--reload-on-changes`
//! (`reload`), wired over the library crates (configuration from
//! wsgi-config, the request pipeline from wsgi-core, Python from
//! wsgi-interp, processes from wsgi-daemon).

mod app_target;
mod cli;
mod daemon;
mod dates;
mod hangup;
mod http;
mod idle;
mod install;
mod listen;
mod log_files;
mod logging;
mod relay;
mod reload;
mod serve;
mod supervisor;
mod tls;
mod tls_vars;
mod workers;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{check_config, Cli, Command};
use crate::serve::start_server;

/// Requests allocate many small strings (the environ, headers); mimalloc
/// serves those markedly faster than glibc's allocator. Python keeps its own.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::CheckConfig { dump, server_root, define, file } => check_config(&file, server_root, define, dump),
        Command::StartServer(args) => {
            report(install::adopt_installed_venv(args.python_home.is_some()).and_then(|()| start_server(*args)))
        }
        Command::ModuleConfig { module } => report(install::module_config(module)),
        Command::ModuleLocation => report(install::module_location()),
        Command::InstallModule { modules_directory } => report(install::install_module(modules_directory)),
        Command::DaemonManager { group, socket } => report(daemon::manager_main(&group, &socket)),
    }
}

fn report(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("wsgi-standalone: {message}");
            ExitCode::FAILURE
        }
    }
}
