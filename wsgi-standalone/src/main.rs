//! `wsgi-standalone`: the standalone front end of mod_wsgi-rs.
//!
//! A thin binary: argument parsing and wiring of the library crates.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wsgi_config::tree::ReadOptions;

#[derive(Parser)]
#[command(name = "wsgi-standalone", version, about = "Host Python WSGI applications; reads mod_wsgi configuration")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check an Apache-style configuration file, as `apachectl configtest` does.
    ///
    /// Prints `Syntax OK` and exits 0 when the file is valid; otherwise prints
    /// each error as `FILE:LINE: message` and exits 1.
    CheckConfig {
        /// Print the resolved model (virtual hosts, script aliases, daemon
        /// process groups with every effective option) instead of `Syntax OK`.
        #[arg(long)]
        dump: bool,
        /// Base directory for relative `Include` paths [default: the
        /// directory of FILE]. A `ServerRoot` directive in the file wins.
        #[arg(long, value_name = "DIR")]
        server_root: Option<PathBuf>,
        /// Define NAME for `<IfDefine NAME>`, as `httpd -D NAME` does.
        #[arg(short = 'D', value_name = "NAME")]
        define: Vec<String>,
        /// The configuration file.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::CheckConfig { dump, server_root, define, file } => check_config(&file, server_root, define, dump),
    }
}

fn check_config(file: &std::path::Path, server_root: Option<PathBuf>, define: Vec<String>, dump: bool) -> ExitCode {
    let server_root = server_root.unwrap_or_else(|| {
        file.parent().filter(|p| !p.as_os_str().is_empty()).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."))
    });
    let mut options = ReadOptions::standalone(server_root);
    options.defines = define.into_iter().collect::<BTreeSet<_>>();
    match wsgi_config::load_file(file, &options) {
        Ok(config) => {
            if dump {
                print!("{}", config.dump());
            } else {
                println!("Syntax OK");
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for error in &errors.0 {
                eprintln!("{error}");
            }
            ExitCode::FAILURE
        }
    }
}
