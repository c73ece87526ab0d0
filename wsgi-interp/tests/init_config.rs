//! Python initialised from mod_wsgi's process-wide settings. (Alone in its
//! test binary: Python is initialised once per process.)

use std::path::PathBuf;

use wsgi_config::tree::ReadOptions;
use wsgi_interp::{PythonConfig, PythonRuntime};

#[test]
fn settings_reach_every_interpreter() {
    let base = std::env::temp_dir().join(format!("wsgi-interp-init-{}", std::process::id()));
    let (first, second, via_pth) = (base.join("first"), base.join("second"), base.join("via-pth"));
    for dir in [&first, &second, &via_pth] {
        std::fs::create_dir_all(dir).unwrap();
    }
    // site.addsitedir processes .pth files, as mod_wsgi's WSGIPythonPath does.
    std::fs::write(first.join("extra.pth"), format!("{}\n", via_pth.display())).unwrap();

    let text = format!(
        "WSGIPythonPath {}:{}\nWSGIPythonOptimize 1\nWSGIPythonHashSeed 0\n\
         WSGIPythonWarnings ignore::DeprecationWarning\nWSGIDontWriteBytecode On\n\
         WSGIRestrictStdin On\nWSGIRestrictStdout On\n",
        first.display(),
        second.display()
    );
    let model = wsgi_config::load_str(&text, std::path::Path::new("init.conf"), &ReadOptions::standalone("/")).unwrap();
    let config = PythonConfig::from_settings(&model.global);
    assert_eq!(config.path, vec![first.clone(), second.clone()]);
    assert!(config.restrict_signal, "mod_wsgi restricts signal registration by default");
    let runtime = PythonRuntime::initialize(config.clone()).unwrap();

    let probe = "import sys\nresult = repr((sys.flags.optimize, sys.flags.hash_randomization, sys.warnoptions, \
                 sys.dont_write_bytecode, sys.path[:3]))";
    let expected = format!(
        "(1, 0, ['ignore::DeprecationWarning'], True, ['{}', '{}', '{}'])",
        first.display(),
        via_pth.display(),
        second.display()
    );
    assert_eq!(runtime.evaluate("", probe).unwrap(), expected, "main interpreter");
    assert_eq!(runtime.evaluate("init-group", probe).unwrap(), expected, "sub-interpreter");

    for (group, stream, action) in [("", "stdout", "print('hello')"), ("init-group", "stdin", "sys.stdin.read()")] {
        let source = format!(
            "import sys\ntry:\n    {action}\n    result = 'allowed'\nexcept OSError as e:\n    result = str(e)\n"
        );
        assert_eq!(
            runtime.evaluate(group, &source).unwrap(),
            format!("sys.{stream} access restricted by mod_wsgi"),
            "{stream} in group {group:?}"
        );
    }

    // A second initialisation with the same settings shares the runtime;
    // different settings are refused.
    assert!(PythonRuntime::initialize(config.clone()).is_ok());
    let other = PythonConfig { optimize: 2, ..config };
    assert_eq!(PythonRuntime::initialize(other).err(), Some(wsgi_interp::InterpError::AlreadyInitialized));
    assert_eq!(runtime.groups(), vec!["init-group".to_string()]);
    let errors = runtime.evaluate("", "raise ValueError('probe failure')").unwrap_err().to_string();
    assert!(errors.contains("ValueError: probe failure"), "{errors}");
    let _ = std::fs::remove_dir_all(PathBuf::from(&base));
}
