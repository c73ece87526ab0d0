//! `WSGIDaemonProcess`: a daemon process group and every option mod_wsgi
//! accepts for it, with mod_wsgi's defaults and validation.

use std::path::PathBuf;
use std::time::Duration;

use crate::values::{flag_word, option_word, parse_flag, parse_number, parse_seconds, split_option, DirectiveError};

const DIRECTIVE: &str = "WSGIDaemonProcess";

/// One `WSGIDaemonProcess` group: its name and effective options.
///
/// Fields hold effective values (mod_wsgi's defaults where an option was not
/// given), except where "not given" means something of its own; those are
/// `Option`s.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonProcess {
    /// The group's name, unique across the server.
    pub name: String,
    /// `processes=`: `None` when not given. Giving it at all, even
    /// `processes=1`, makes `wsgi.multiprocess` True.
    pub processes: Option<u32>,
    /// `threads=` (default 15; 0 means no request threads).
    pub threads: u32,
    /// `maximum-requests=`: recycle a process after this many (0: never).
    pub maximum_requests: u64,
    /// `user=`: run as this user (when the server starts as root).
    pub user: Option<String>,
    /// `group=`: run as this group.
    pub group: Option<String>,
    /// `supplementary-groups=`: comma-separated extra groups.
    pub supplementary_groups: Vec<String>,
    /// `umask=` (octal).
    pub umask: Option<u32>,
    /// `chroot=`: absolute directory to chroot into.
    pub chroot: Option<PathBuf>,
    /// `home=`: absolute working directory.
    pub home: Option<PathBuf>,
    /// `display-name=`: process title; `%{GROUP}` means `(wsgi:NAME)`.
    pub display_name: Option<String>,
    /// `lang=`: sets `LANG`.
    pub lang: Option<String>,
    /// `locale=`: sets `LC_ALL` and the C locale.
    pub locale: Option<String>,
    /// `python-home=`: overrides WSGIPythonHome for this group.
    pub python_home: Option<PathBuf>,
    /// `python-path=`: replaces WSGIPythonPath for this group.
    pub python_path: Option<Vec<PathBuf>>,
    /// `python-eggs=`: replaces WSGIPythonEggs for this group.
    pub python_eggs: Option<PathBuf>,
    /// `switch-interval=`: the GIL switch interval in seconds (6.x).
    pub switch_interval: Option<f64>,
    /// `stack-size=`: per-thread stack size in bytes (`None`: system default).
    pub stack_size: Option<u64>,
    /// `listen-backlog=` (default 100).
    pub listen_backlog: u32,
    /// `restart-interval=` (0: never).
    pub restart_interval: Duration,
    /// `inactivity-timeout=` (0: never).
    pub inactivity_timeout: Duration,
    /// `request-timeout=` (0: none).
    pub request_timeout: Duration,
    /// `interrupt-timeout=` (6.x; 0: none).
    pub interrupt_timeout: Duration,
    /// `graceful-timeout=` (default 15 s).
    pub graceful_timeout: Duration,
    /// `eviction-timeout=` (0: use graceful-timeout).
    pub eviction_timeout: Duration,
    /// `shutdown-timeout=` (default 5 s).
    pub shutdown_timeout: Duration,
    /// `startup-timeout=` (0: none).
    pub startup_timeout: Duration,
    /// `deadlock-timeout=` (default 300 s).
    pub deadlock_timeout: Duration,
    /// `connect-timeout=` (default 15 s).
    pub connect_timeout: Duration,
    /// `socket-timeout=` (0: use the server's `Timeout`).
    pub socket_timeout: Duration,
    /// `queue-timeout=` (0: none).
    pub queue_timeout: Duration,
    /// `header-buffer-size=` in bytes (0: default of 32768).
    pub header_buffer_size: u64,
    /// `response-buffer-size=` in bytes (0: default of 8 MiB).
    pub response_buffer_size: u64,
    /// `response-socket-timeout=` (0: use socket-timeout).
    pub response_socket_timeout: Duration,
    /// `response-flush-delay=` in milliseconds (6.x; default 5 ms, 0 disables).
    pub response_flush_delay: Duration,
    /// `send-buffer-size=` in bytes (0: system default).
    pub send_buffer_size: u64,
    /// `receive-buffer-size=` in bytes (0: system default).
    pub receive_buffer_size: u64,
    /// `cpu-time-limit=` in seconds (0: none).
    pub cpu_time_limit: Duration,
    /// `memory-limit=` in bytes (0: none).
    pub memory_limit: u64,
    /// `virtual-memory-limit=` in bytes (0: none).
    pub virtual_memory_limit: u64,
    /// `cpu-priority=`: the nice value.
    pub cpu_priority: i32,
    /// `socket-user=`: owner of the listener socket (default: the server's user).
    pub socket_user: Option<String>,
    /// `script-user=`: scripts must be owned by this user.
    pub script_user: Option<String>,
    /// `script-group=`: scripts must be owned by this group.
    pub script_group: Option<String>,
    /// `server-metrics=`.
    pub server_metrics: bool,
    /// `newrelic-config-file=` (4.x only; accepted and recorded, no effect).
    pub newrelic_config_file: Option<String>,
    /// `newrelic-environment=` (4.x only; accepted and recorded, no effect).
    pub newrelic_environment: Option<String>,
}

impl DaemonProcess {
    /// A group with every option at mod_wsgi's default.
    pub fn new(name: impl Into<String>) -> Self {
        DaemonProcess {
            name: name.into(),
            processes: None,
            threads: 15,
            maximum_requests: 0,
            user: None,
            group: None,
            supplementary_groups: Vec::new(),
            umask: None,
            chroot: None,
            home: None,
            display_name: None,
            lang: None,
            locale: None,
            python_home: None,
            python_path: None,
            python_eggs: None,
            switch_interval: None,
            stack_size: None,
            listen_backlog: 100,
            restart_interval: Duration::ZERO,
            inactivity_timeout: Duration::ZERO,
            request_timeout: Duration::ZERO,
            interrupt_timeout: Duration::ZERO,
            graceful_timeout: Duration::from_secs(15),
            eviction_timeout: Duration::ZERO,
            shutdown_timeout: Duration::from_secs(5),
            startup_timeout: Duration::ZERO,
            deadlock_timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(15),
            socket_timeout: Duration::ZERO,
            queue_timeout: Duration::ZERO,
            header_buffer_size: 0,
            response_buffer_size: 0,
            response_socket_timeout: Duration::ZERO,
            response_flush_delay: Duration::from_millis(5),
            send_buffer_size: 0,
            receive_buffer_size: 0,
            cpu_time_limit: Duration::ZERO,
            memory_limit: 0,
            virtual_memory_limit: 0,
            cpu_priority: 0,
            socket_user: None,
            script_user: None,
            script_group: None,
            server_metrics: false,
            newrelic_config_file: None,
            newrelic_environment: None,
        }
    }

    /// Gives `socket-timeout=` the server's `Timeout` when it was not
    /// given (0), as mod_wsgi does.
    pub fn default_socket_timeout(&mut self, server_timeout: Duration) {
        if self.socket_timeout.is_zero() {
            self.socket_timeout = server_timeout;
        }
    }

    /// The number of processes the group runs (1 when not given).
    pub fn process_count(&self) -> u32 {
        self.processes.unwrap_or(1)
    }

    /// `wsgi.multithread` for requests in this group: True unless threads=1.
    pub fn multithread(&self) -> bool {
        self.threads != 1
    }

    /// `wsgi.multiprocess`: True whenever `processes=` was given, even as 1.
    pub fn multiprocess(&self) -> bool {
        self.processes.is_some()
    }

    /// `wsgi.run_once`: only with one thread recycled after every request.
    pub fn run_once(&self) -> bool {
        self.threads == 1 && self.maximum_requests == 1
    }

    /// Parses the arguments of a `WSGIDaemonProcess` line.
    pub fn parse(args: &[String]) -> Result<DaemonProcess, DirectiveError> {
        let Some((name, options)) = args.split_first() else {
            return Err(DirectiveError::Other {
                directive: DIRECTIVE,
                message: "name of WSGI daemon process not supplied".into(),
            });
        };
        if name.is_empty() || split_option(name).is_some() {
            return Err(DirectiveError::Other {
                directive: DIRECTIVE,
                message: format!("name of WSGI daemon process not supplied (first argument is '{name}')"),
            });
        }
        let mut daemon = DaemonProcess::new(name.clone());
        for word in options {
            let Some((option, value)) = split_option(word) else {
                return Err(DirectiveError::MalformedOption { directive: DIRECTIVE, word: word.clone() });
            };
            let spec = OPTIONS
                .iter()
                .find(|spec| spec.name == option)
                .ok_or_else(|| DirectiveError::UnknownOption { directive: DIRECTIVE, option: option.to_string() })?;
            (spec.set)(&mut daemon, value).map_err(|reason| DirectiveError::InvalidOption {
                directive: DIRECTIVE,
                option: spec.name,
                value: value.to_string(),
                reason,
            })?;
        }
        if daemon.script_user.is_some() && daemon.script_group.is_some() {
            return Err(DirectiveError::Other {
                directive: DIRECTIVE,
                message: "only one of script-user and script-group allowed".into(),
            });
        }
        Ok(daemon)
    }

    /// The argument words that [`DaemonProcess::parse`] reads back into an
    /// equal value: the name, then every option that differs from its
    /// default.
    pub fn to_args(&self) -> Vec<String> {
        let default = DaemonProcess::new(self.name.clone());
        let mut words = vec![self.name.clone()];
        for spec in OPTIONS {
            let value = (spec.get)(self);
            if let Some(value) = value {
                if Some(&value) != (spec.get)(&default).as_ref() {
                    words.push(option_word(spec.name, &value));
                }
            }
        }
        words
    }

    /// Every option with its effective value (defaults included), for dumps.
    /// Options with no value and no default show as `None`.
    pub fn effective_options(&self) -> Vec<(&'static str, Option<String>)> {
        OPTIONS.iter().map(|spec| (spec.name, (spec.get)(self))).collect()
    }
}

/// One option: how to set it from text and how to render it back.
struct OptionSpec {
    name: &'static str,
    set: fn(&mut DaemonProcess, &str) -> Result<(), String>,
    get: fn(&DaemonProcess) -> Option<String>,
}

fn non_empty(value: &str) -> Result<String, String> {
    if value.is_empty() {
        Err("a value is required".into())
    } else {
        Ok(value.to_string())
    }
}

fn absolute(value: &str) -> Result<PathBuf, String> {
    if value.starts_with('/') {
        Ok(PathBuf::from(value))
    } else {
        Err("expected an absolute path".into())
    }
}

fn not_root(value: &str) -> Result<String, String> {
    let user = non_empty(value)?;
    if user == "root" || user == "#0" {
        return Err("WSGI process blocked from running as root".into());
    }
    Ok(user)
}

fn buffer_size(value: &str, minimum: u64) -> Result<u64, String> {
    let size = parse_number(value, 0u64, u64::MAX)?;
    if size != 0 && size < minimum {
        return Err(format!("must be >= {minimum} bytes, or 0 for the default"));
    }
    Ok(size)
}

fn seconds_word(d: &Duration) -> Option<String> {
    Some(d.as_secs().to_string())
}

fn path_word(p: &Option<PathBuf>) -> Option<String> {
    p.as_ref().map(|p| p.display().to_string())
}

macro_rules! seconds_option {
    ($name:literal, $field:ident) => {
        OptionSpec {
            name: $name,
            set: |d, v| {
                d.$field = parse_seconds(v)?;
                Ok(())
            },
            get: |d| seconds_word(&d.$field),
        }
    };
}

macro_rules! string_option {
    ($name:literal, $field:ident, $check:expr) => {
        OptionSpec {
            name: $name,
            set: |d, v| {
                d.$field = Some($check(v)?);
                Ok(())
            },
            get: |d| d.$field.clone(),
        }
    };
}

macro_rules! path_option {
    ($name:literal, $field:ident, $check:expr) => {
        OptionSpec {
            name: $name,
            set: |d, v| {
                d.$field = Some($check(v)?);
                Ok(())
            },
            get: |d| path_word(&d.$field),
        }
    };
}

macro_rules! bytes_option {
    ($name:literal, $field:ident, $minimum:expr) => {
        OptionSpec {
            name: $name,
            set: |d, v| {
                d.$field = buffer_size(v, $minimum)?;
                Ok(())
            },
            get: |d| Some(d.$field.to_string()),
        }
    };
}

fn any(value: &str) -> Result<String, String> {
    Ok(value.to_string())
}

fn any_path(value: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(value))
}

/// Every option mod_wsgi 4.x and 6.x accept, in the order of its manual.
static OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        name: "processes",
        set: |d, v| {
            d.processes = Some(parse_number(v, 1u32, 100_000)?);
            Ok(())
        },
        get: |d| d.processes.map(|n| n.to_string()),
    },
    OptionSpec {
        name: "threads",
        set: |d, v| {
            d.threads = parse_number(v, 0u32, 65533)?;
            Ok(())
        },
        get: |d| Some(d.threads.to_string()),
    },
    string_option!("display-name", display_name, any),
    path_option!("home", home, absolute),
    path_option!("chroot", chroot, absolute),
    string_option!("user", user, not_root),
    string_option!("group", group, non_empty),
    OptionSpec {
        name: "supplementary-groups",
        set: |d, v| {
            d.supplementary_groups = v.split(',').filter(|g| !g.is_empty()).map(String::from).collect();
            Ok(())
        },
        get: |d| Some(d.supplementary_groups.join(",")),
    },
    OptionSpec {
        name: "umask",
        set: |d, v| {
            let mask = u32::from_str_radix(v, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or("expected an octal number such as 0022")?;
            d.umask = Some(mask);
            Ok(())
        },
        get: |d| d.umask.map(|m| format!("{m:04o}")),
    },
    string_option!("lang", lang, any),
    string_option!("locale", locale, any),
    path_option!("python-home", python_home, any_path),
    OptionSpec {
        name: "python-path",
        set: |d, v| {
            d.python_path = Some(v.split(':').filter(|p| !p.is_empty()).map(PathBuf::from).collect());
            Ok(())
        },
        get: |d| {
            d.python_path
                .as_ref()
                .map(|paths| paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":"))
        },
    },
    path_option!("python-eggs", python_eggs, any_path),
    OptionSpec {
        name: "switch-interval",
        set: |d, v| {
            let seconds: f64 = v
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s > 0.0)
                .ok_or("expected a positive number of seconds")?;
            d.switch_interval = Some(seconds);
            Ok(())
        },
        get: |d| d.switch_interval.map(|s| s.to_string()),
    },
    OptionSpec {
        name: "stack-size",
        set: |d, v| {
            d.stack_size = Some(parse_number(v, 1u64, u64::MAX)?);
            Ok(())
        },
        get: |d| d.stack_size.map(|n| n.to_string()),
    },
    OptionSpec {
        name: "maximum-requests",
        set: |d, v| {
            d.maximum_requests = parse_number(v, 0u64, u64::MAX)?;
            Ok(())
        },
        get: |d| Some(d.maximum_requests.to_string()),
    },
    seconds_option!("startup-timeout", startup_timeout),
    seconds_option!("shutdown-timeout", shutdown_timeout),
    seconds_option!("deadlock-timeout", deadlock_timeout),
    seconds_option!("inactivity-timeout", inactivity_timeout),
    seconds_option!("request-timeout", request_timeout),
    seconds_option!("interrupt-timeout", interrupt_timeout),
    seconds_option!("graceful-timeout", graceful_timeout),
    seconds_option!("eviction-timeout", eviction_timeout),
    seconds_option!("restart-interval", restart_interval),
    seconds_option!("connect-timeout", connect_timeout),
    seconds_option!("socket-timeout", socket_timeout),
    seconds_option!("queue-timeout", queue_timeout),
    OptionSpec {
        name: "listen-backlog",
        set: |d, v| {
            d.listen_backlog = parse_number(v, 0u32, i32::MAX as u32)?;
            Ok(())
        },
        get: |d| Some(d.listen_backlog.to_string()),
    },
    bytes_option!("send-buffer-size", send_buffer_size, 512),
    bytes_option!("receive-buffer-size", receive_buffer_size, 512),
    bytes_option!("header-buffer-size", header_buffer_size, 8192),
    bytes_option!("response-buffer-size", response_buffer_size, 65536),
    seconds_option!("response-socket-timeout", response_socket_timeout),
    OptionSpec {
        name: "response-flush-delay",
        set: |d, v| {
            d.response_flush_delay = Duration::from_millis(parse_number(v, 0u64, u64::MAX / 1_000_000)?);
            Ok(())
        },
        get: |d| Some(d.response_flush_delay.as_millis().to_string()),
    },
    string_option!("socket-user", socket_user, non_empty),
    string_option!("script-user", script_user, non_empty),
    string_option!("script-group", script_group, non_empty),
    seconds_option!("cpu-time-limit", cpu_time_limit),
    OptionSpec {
        name: "cpu-priority",
        set: |d, v| {
            d.cpu_priority = parse_number(v, i32::MIN, i32::MAX)?;
            Ok(())
        },
        get: |d| Some(d.cpu_priority.to_string()),
    },
    bytes_option!("memory-limit", memory_limit, 0),
    bytes_option!("virtual-memory-limit", virtual_memory_limit, 0),
    OptionSpec {
        name: "server-metrics",
        set: |d, v| {
            d.server_metrics = parse_flag(DIRECTIVE, v).map_err(|_| "expected On or Off".to_string())?;
            Ok(())
        },
        get: |d| Some(flag_word(d.server_metrics).to_string()),
    },
    string_option!("newrelic-config-file", newrelic_config_file, any),
    string_option!("newrelic-environment", newrelic_environment, any),
];

/// The names of every `WSGIDaemonProcess` option, in manual order.
pub fn option_names() -> impl Iterator<Item = &'static str> {
    OPTIONS.iter().map(|spec| spec.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<DaemonProcess, DirectiveError> {
        DaemonProcess::parse(&crate::lexer::split_args(line).unwrap())
    }

    fn error(line: &str) -> String {
        parse(line).unwrap_err().to_string()
    }

    #[test]
    fn defaults_match_mod_wsgi() {
        let d = parse("example").unwrap();
        assert_eq!(d.processes, None);
        assert_eq!(d.process_count(), 1);
        assert_eq!(d.threads, 15);
        assert_eq!(d.listen_backlog, 100);
        assert_eq!(d.graceful_timeout, Duration::from_secs(15));
        assert_eq!(d.shutdown_timeout, Duration::from_secs(5));
        assert_eq!(d.deadlock_timeout, Duration::from_secs(300));
        assert_eq!(d.connect_timeout, Duration::from_secs(15));
        assert_eq!(d.response_flush_delay, Duration::from_millis(5));
        assert!(d.multithread());
        assert!(!d.multiprocess());
        assert!(!d.run_once());
    }

    #[test]
    fn flags_follow_mod_wsgi_documentation() {
        let flags = |line: &str| {
            let d = parse(line).unwrap();
            (d.multithread(), d.multiprocess(), d.run_once())
        };
        assert_eq!(flags("g threads=25"), (true, false, false));
        assert_eq!(flags("g processes=1 threads=25"), (true, true, false));
        assert_eq!(flags("g processes=2 threads=25"), (true, true, false));
        assert_eq!(flags("g processes=5 threads=1"), (false, true, false));
        assert_eq!(flags("g threads=1 maximum-requests=1"), (false, false, true));
    }

    #[test]
    fn every_option_is_accepted() {
        let d = parse(concat!(
            "site processes=3 threads=0 maximum-requests=1000 user=www-data group=www-data ",
            "supplementary-groups=adm,staff umask=0002 chroot=/jail home=/srv/site ",
            "display-name=%{GROUP} lang=en_US.UTF-8 locale=en_US.UTF-8 python-home=/venv ",
            "python-path=/srv/site:/srv/lib python-eggs=/tmp/eggs switch-interval=0.005 ",
            "stack-size=524288 listen-backlog=200 restart-interval=3600 inactivity-timeout=300 ",
            "request-timeout=60 interrupt-timeout=10 graceful-timeout=20 eviction-timeout=30 ",
            "shutdown-timeout=6 startup-timeout=15 deadlock-timeout=120 connect-timeout=5 ",
            "socket-timeout=70 queue-timeout=45 header-buffer-size=16384 ",
            "response-buffer-size=131072 response-socket-timeout=80 response-flush-delay=0 ",
            "send-buffer-size=1024 receive-buffer-size=2048 cpu-time-limit=600 ",
            "memory-limit=1000000000 virtual-memory-limit=2000000000 cpu-priority=-5 ",
            "socket-user=apache script-user=owner server-metrics=On ",
            "newrelic-config-file=/etc/nr.ini newrelic-environment=prod"
        ))
        .unwrap();
        assert_eq!(d.processes, Some(3));
        assert_eq!(d.threads, 0);
        assert_eq!(d.supplementary_groups, ["adm", "staff"]);
        assert_eq!(d.umask, Some(0o002));
        assert_eq!(d.chroot, Some(PathBuf::from("/jail")));
        assert_eq!(d.display_name.as_deref(), Some("%{GROUP}"));
        assert_eq!(d.python_path, Some(vec![PathBuf::from("/srv/site"), PathBuf::from("/srv/lib")]));
        assert_eq!(d.switch_interval, Some(0.005));
        assert_eq!(d.stack_size, Some(524288));
        assert_eq!(d.request_timeout, Duration::from_secs(60));
        assert_eq!(d.response_flush_delay, Duration::ZERO);
        assert_eq!(d.memory_limit, 1_000_000_000);
        assert_eq!(d.cpu_priority, -5);
        assert!(d.server_metrics);
        assert_eq!(d.newrelic_environment.as_deref(), Some("prod"));
        // Every option of the table was exercised above, except script-group,
        // which may not be given together with script-user.
        let args = d.to_args();
        let given: Vec<&str> = args[1..].iter().map(|w| w.split('=').next().unwrap()).collect();
        let missing: Vec<&str> = option_names().filter(|o| !given.contains(o)).collect();
        assert_eq!(missing, ["script-group"]);
        assert!(parse("g script-group=staff").unwrap().script_group.is_some());
    }

    #[test]
    fn invalid_values_are_named() {
        assert_eq!(
            error("g threads=abc"),
            "WSGIDaemonProcess: invalid value 'abc' for option 'threads': expected a whole number from 0 to 65533"
        );
        assert!(error("g threads=3abc").contains("option 'threads'"));
        assert!(error("g threads=65534").contains("option 'threads'"));
        assert!(error("g processes=0").contains("option 'processes'"));
        assert!(error("g home=relative").contains("expected an absolute path"));
        assert!(error("g chroot=").contains("option 'chroot'"));
        assert!(error("g user=root").contains("blocked from running as root"));
        assert!(error("g umask=9").contains("octal"));
        assert!(error("g send-buffer-size=100").contains(">= 512"));
        assert!(error("g header-buffer-size=8191").contains(">= 8192"));
        assert!(error("g response-buffer-size=1000").contains(">= 65536"));
        assert!(error("g switch-interval=0").contains("positive"));
        assert!(error("g stack-size=0").contains("option 'stack-size'"));
        assert!(error("g server-metrics=maybe").contains("option 'server-metrics'"));
        assert!(error("g graceful-timeout=-1").contains("option 'graceful-timeout'"));
    }

    #[test]
    fn zero_buffer_sizes_mean_default() {
        let d = parse("g send-buffer-size=0 header-buffer-size=0").unwrap();
        assert_eq!((d.send_buffer_size, d.header_buffer_size), (0, 0));
    }

    #[test]
    fn structural_errors() {
        assert_eq!(error(""), "WSGIDaemonProcess: name of WSGI daemon process not supplied");
        assert_eq!(error("g bogus=1"), "WSGIDaemonProcess: unknown option 'bogus'");
        assert_eq!(error("g threads"), "WSGIDaemonProcess: malformed option 'threads': expected name=value");
        assert!(error("threads=5").contains("not supplied"));
        assert!(error("g Threads=5").contains("unknown option 'Threads'"));
        assert!(error("g script-user=a script-group=b").contains("only one of"));
    }

    #[test]
    fn quoted_values_and_repeats() {
        let d = parse("g 'display-name=my site' threads=2 threads=4").unwrap();
        assert_eq!(d.display_name.as_deref(), Some("my site"));
        assert_eq!(d.threads, 4);
    }
}
