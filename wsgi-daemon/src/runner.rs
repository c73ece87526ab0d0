//! A [`WsgiRunner`] for a front end that runs no Python of its own for
//! daemon-mode requests: it relays each request to the daemon group named
//! by its `mod_wsgi.process_group`, and runs the others (embedded mode) with
//! the runner it was given, if any.

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::Arc;

use wsgi_core::environ_build::WsgiFlags;
use wsgi_core::response::WriteError;
use wsgi_core::{AppTarget, Environ, ErrorLog, LogLevel, ResponseSink, ResponseWriter, RunOutcome, WsgiRunner};

use crate::client::{DaemonClient, Recovery};
use crate::protocol::RequestStart;
use crate::script_owner::ScriptOwner;

/// One daemon group a front end can send requests to.
#[derive(Debug)]
pub struct GroupClient {
    /// The connection pool to the group's socket.
    pub client: DaemonClient,
    /// `wsgi.multithread`, `wsgi.multiprocess`, `wsgi.run_once` of the group.
    pub flags: WsgiFlags,
    /// `script-user=`/`script-group=`: whose scripts the group runs.
    pub script_owner: ScriptOwner,
    /// How long a write of the group's response may wait for the client:
    /// `response-socket-timeout=`, else `socket-timeout=` (zero: the front
    /// end's own).
    pub response_socket_timeout: std::time::Duration,
}

impl GroupClient {
    /// The client of `process`'s group, listening at `socket`.
    pub fn for_group(socket: std::path::PathBuf, process: &wsgi_config::DaemonProcess) -> GroupClient {
        GroupClient {
            client: DaemonClient::for_group(socket, process),
            flags: WsgiFlags::daemon(process),
            script_owner: ScriptOwner::for_group(process),
            response_socket_timeout: if process.response_socket_timeout.is_zero() {
                process.socket_timeout
            } else {
                process.response_socket_timeout
            },
        }
    }
}

/// Routes requests to daemon groups, or to an embedded runner.
pub struct DaemonRunner {
    groups: HashMap<String, GroupClient>,
    embedded: Option<Arc<dyn WsgiRunner>>,
}

impl DaemonRunner {
    /// A runner over `groups` (by name); requests for no group go to
    /// `embedded`, or get 500 when it is `None` (`WSGIRestrictEmbedded On`).
    pub fn new(groups: HashMap<String, GroupClient>, embedded: Option<Arc<dyn WsgiRunner>>) -> DaemonRunner {
        DaemonRunner { groups, embedded }
    }
}

/// Relays a daemon's response through the front end's writer.
struct WriterSink<'a, 'w> {
    writer: &'a mut ResponseWriter<'w>,
}

fn write_error(e: WriteError) -> io::Error {
    match e {
        WriteError::Client(e) => e,
        WriteError::NotStarted => io::Error::other("body before the response head"),
        WriteError::Complete => io::Error::new(io::ErrorKind::BrokenPipe, "response complete, client gone"),
    }
}

impl ResponseSink for WriterSink<'_, '_> {
    fn send_head(&mut self, status: u16, reason: &str, headers: &[(String, String)]) -> io::Result<()> {
        self.writer
            .start_response(&format!("{status} {reason}"), headers.to_vec(), false)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        // The daemon sent its head: so does the front end, at once (as at
        // an empty first chunk), so that a response that breaks after it
        // keeps its status rather than getting the front end's default.
        self.writer.write(&[]).map_err(write_error)
    }

    fn send_body(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.writer.write(chunk).map_err(write_error)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush().map_err(write_error)
    }

    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl WsgiRunner for DaemonRunner {
    fn run(
        &self,
        target: &AppTarget,
        environ: Environ,
        body: &mut dyn Read,
        response: &mut ResponseWriter<'_>,
        log: &dyn ErrorLog,
    ) -> RunOutcome {
        let name = environ.get_str("mod_wsgi.process_group").unwrap_or_default().to_string();
        if name.is_empty() {
            if let Some(embedded) = &self.embedded {
                return embedded.run(target, environ, body, response, log);
            }
            log.log(
                LogLevel::Error,
                &format!(
                    "mod_wsgi (pid={}): Embedded mode of mod_wsgi disabled by runtime configuration: {}",
                    std::process::id(),
                    target.script.display()
                ),
            );
            let _ = response.respond_error(500);
            return RunOutcome::Completed;
        }
        let Some(group) = self.groups.get(&name) else {
            let refusal = wsgi_core::group::GroupRefusal::NotConfigured(name);
            log.log(LogLevel::Error, &format!("mod_wsgi (pid={}): {refusal}", std::process::id()));
            let _ = response.respond_error(500);
            return RunOutcome::Completed;
        };
        if let Err(why) = group.script_owner.check(&target.script) {
            log.log(
                LogLevel::Error,
                &format!("mod_wsgi (pid={}): {why}: {}", std::process::id(), target.script.display()),
            );
            let _ = response.respond_error(403);
            return RunOutcome::Completed;
        }
        if !group.response_socket_timeout.is_zero() {
            response.set_write_timeout(group.response_socket_timeout);
        }
        let start = RequestStart::for_group(target.clone(), environ, group.flags);
        let result = {
            let mut sink = WriterSink { writer: response };
            group.client.forward(&start, body, &mut sink)
        };
        let error = match result {
            Ok(()) => {
                return match response.finish() {
                    Ok(_) => RunOutcome::Completed,
                    Err(_) => RunOutcome::ClientGone,
                }
            }
            Err(error) => error,
        };
        if let Some(line) = error.log_line(&name) {
            log.log(LogLevel::Error, &format!("mod_wsgi (pid={}): {line}", std::process::id()));
        }
        match error.recovery() {
            Recovery::Answer(_) if response.head_sent() => RunOutcome::Failed,
            Recovery::Answer(status) => {
                let _ = response.respond_error(status);
                RunOutcome::Completed
            }
            Recovery::CloseConnection => RunOutcome::Failed,
            Recovery::Nothing => RunOutcome::ClientGone,
        }
    }
}
