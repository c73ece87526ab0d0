//! Routing over hostile request paths: it never panics, a directory alias
//! never yields a script outside its directory (whatever `..`, `%2e%2e`,
//! encoded slashes or symlinks the path uses), and `SCRIPT_NAME` +
//! `PATH_INFO` always add up to the normalized path.

mod support;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use support::cases_or;
use wsgi_config::directives::{ScriptAlias, UrlPattern};
use wsgi_core::route::{latin1, normalize_path, MatchPolicy, RouteError, Router};

/// A script tree with symlinks pointing in and out, built once per run.
///
/// ```text
/// root/secret.wsgi            outside every directory alias
/// root/outside/evil.wsgi
/// root/file.wsgi              a file alias target
/// root/scripts/app.wsgi       the directory alias target
/// root/scripts/sub/inner.wsgi
/// root/scripts/link_in.wsgi  -> scripts/app.wsgi
/// root/scripts/link_out.wsgi -> root/secret.wsgi
/// root/scripts/link_dir      -> root/outside
/// root/scripts/link_up       -> root
/// ```
struct Tree {
    root: PathBuf,
    scripts: PathBuf,
    aliases: Vec<ScriptAlias>,
}

impl Tree {
    fn new() -> Tree {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let root = std::env::temp_dir().join(format!("wsgi-core-route-props-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let scripts = root.join("scripts");
        std::fs::create_dir_all(scripts.join("sub")).unwrap();
        std::fs::create_dir_all(root.join("outside")).unwrap();
        for file in ["secret.wsgi", "outside/evil.wsgi", "file.wsgi", "scripts/app.wsgi", "scripts/sub/inner.wsgi"] {
            std::fs::write(root.join(file), "").unwrap();
        }
        symlink(scripts.join("app.wsgi"), scripts.join("link_in.wsgi")).unwrap();
        symlink(root.join("secret.wsgi"), scripts.join("link_out.wsgi")).unwrap();
        symlink(root.join("outside"), scripts.join("link_dir")).unwrap();
        symlink(&root, scripts.join("link_up")).unwrap();
        let dir = scripts.display().to_string();
        let aliases = vec![
            prefix("/d", &dir),
            prefix("/e/", &format!("{dir}/")),
            prefix("/f", &root.join("file.wsgi").display().to_string()),
            pattern("^/r/([^/]+)", &format!("{dir}/$1")),
            pattern("^/m", &dir),
            pattern("^/p/a(..)", &format!("{dir}/$1")),
            prefix("/", &dir),
        ];
        Tree { root, scripts, aliases }
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn prefix(url: &str, target: &str) -> ScriptAlias {
    ScriptAlias::new(UrlPattern::Prefix(url.to_string()), target)
}

fn pattern(url: &str, target: &str) -> ScriptAlias {
    ScriptAlias::new(UrlPattern::Regex(regex::Regex::new(url).unwrap()), target)
}

const FRAGMENTS: &[&str] = &[
    "/",
    "//",
    ".",
    "..",
    "%2e",
    "%2E%2e",
    ".%2e",
    "%2f",
    "%2F",
    "%5c",
    "\\",
    "%00",
    "\0",
    "%",
    "%4",
    "%zz",
    "d",
    "e",
    "f",
    "r",
    "m",
    "app.wsgi",
    "%61pp.wsgi",
    "APP.WSGI",
    "sub",
    "inner.wsgi",
    "link_in.wsgi",
    "link_out.wsgi",
    "link_dir",
    "link_up",
    "evil.wsgi",
    "secret.wsgi",
    "outside",
    "scripts",
    "file.wsgi",
    "é",
    "%C3%A9",
    "%FF",
    ";",
    "?",
    "#",
    " ",
    "%20",
    "\u{1F600}",
    "http://h",
    "*",
];

/// Whole segments, so that alias names meet script names often.
const SEGMENTS: &[&str] = &[
    "d",
    "e",
    "f",
    "r",
    "m",
    "p",
    "a..",
    "..",
    "%2e%2e",
    ".",
    "",
    "app.wsgi",
    "sub",
    "inner.wsgi",
    "link_in.wsgi",
    "link_out.wsgi",
    "link_dir",
    "link_up",
    "evil.wsgi",
    "secret.wsgi",
    "outside",
    "..%2Fsecret.wsgi",
    "%2e%2e%2f",
];

fn hostile_path() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![8 => proptest::sample::select(FRAGMENTS), 1 => Just("")];
    let alias_prefix = proptest::sample::select(&["/d/", "/e/", "/f/", "/r/", "/m/", "/p/a", "/", ""][..]);
    prop_oneof![
        6 => (alias_prefix, proptest::collection::vec(fragment, 0..10))
            .prop_map(|(start, parts)| format!("{start}{}", parts.concat())),
        4 => proptest::collection::vec(proptest::sample::select(SEGMENTS), 1..6)
            .prop_map(|segments| format!("/{}", segments.join("/"))),
        1 => any::<String>(),
        1 => "/[a-z./%0-9A-F]{0,24}",
    ]
}

fn check(tree: &Tree, router: &Router, raw: &str) -> Result<(), TestCaseError> {
    let outcome = router.resolve(raw);
    let normalized = normalize_path(raw);
    if let Ok(path) = &normalized {
        if let Some(split) = router.split_path(path) {
            let mut joined = split.script_name.clone();
            joined.extend_from_slice(&split.rest);
            prop_assert_eq!(&joined, path, "the split adds up to the path");
        }
    }
    match outcome {
        Ok(None) => {}
        Ok(Some(found)) => {
            let path = normalized.expect("a routed path normalizes");
            prop_assert_eq!(format!("{}{}", found.script_name, found.path_info), latin1(&path));
            prop_assert!(found.path_info.is_empty() || found.path_info.starts_with('/'));
            let script = std::fs::canonicalize(&found.script_filename).expect("the script exists");
            prop_assert!(script.is_file(), "{} is a file", script.display());
            let split = router.split_path(&path).expect("a routed path splits");
            let target = std::fs::canonicalize(&split.target).expect("the target exists");
            if target.is_dir() {
                prop_assert!(
                    script.starts_with(&target) && script != target,
                    "{} escapes {}",
                    script.display(),
                    target.display()
                );
            }
            let root_scripts = std::fs::canonicalize(&tree.scripts).unwrap();
            let secret = std::fs::canonicalize(tree.root.join("secret.wsgi")).unwrap();
            let evil = std::fs::canonicalize(tree.root.join("outside/evil.wsgi")).unwrap();
            prop_assert!(script != secret && script != evil, "{raw:?} reached {}", script.display());
            prop_assert!(script.starts_with(&root_scripts) || script.ends_with("file.wsgi"));
        }
        Err(error) => {
            prop_assert!([400, 403, 404].contains(&error.status()), "{error}");
        }
    }
    Ok(())
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() })
}

#[test]
fn hostile_paths_never_escape() {
    let tree = Tree::new();
    let strategy = (hostile_path(), any::<bool>(), any::<bool>());
    runner(3000)
        .run(&strategy, |(raw, case_sensitive, first)| {
            let policy = if first { MatchPolicy::First } else { MatchPolicy::Longest };
            let router = Router::new(&tree.aliases, case_sensitive).with_policy(policy);
            check(&tree, &router, &raw)
        })
        .unwrap();
}

proptest! {
    // PROPTEST_CASES, when set, overrides the count (`cargo xtask memcheck` runs
    // fewer cases under valgrind).
    #![proptest_config(ProptestConfig { cases: cases_or(2000), ..ProptestConfig::default() })]

    #[test]
    fn normalization_is_total_and_idempotent(raw in any::<String>()) {
        if let Ok(path) = normalize_path(&raw) {
            prop_assert_eq!(path.first(), Some(&b'/'));
            prop_assert!(!path.windows(2).any(|w| w == b"//"), "slashes merged");
            prop_assert!(!path.split(|&b| b == b'/').any(|s| s == b"." || s == b".."), "no dot segments");
            prop_assert!(!path.contains(&0));
            // Normal text (with `%` escaped) normalizes to itself.
            let text: String = latin1(&path).replace('%', "%25");
            prop_assert_eq!(normalize_path(&text), Ok(path));
        }
    }
}

#[test]
fn known_escape_attempts_are_refused() {
    let tree = Tree::new();
    let router = Router::new(&tree.aliases, true);
    let status = |raw: &str| match router.resolve(raw) {
        Ok(Some(found)) => panic!("{raw:?} routed to {}", found.script_filename.display()),
        Ok(None) => 0,
        Err(error) => error.status(),
    };
    assert_eq!(status("/d/link_out.wsgi"), 404);
    assert_eq!(status("/d/link_dir/evil.wsgi"), 404);
    assert_eq!(status("/d/link_up/secret.wsgi"), 404);
    assert_eq!(status("/d/..%2Fsecret.wsgi"), 404);
    assert_eq!(status("/d/%2e%2e%2fsecret.wsgi"), 404);
    assert_eq!(status("/d/%2e%2e/%2e%2e/%2e%2e/etc/passwd"), 400);
    assert_eq!(status("/r/link_out.wsgi"), 404);
    assert_eq!(status("/r/link_up/secret.wsgi"), 404);
    assert_eq!(status("/p/a../secret.wsgi"), 404);
    assert!(router.resolve("/d/link_in.wsgi/x").unwrap().is_some());
    assert!(router.resolve("/r/app.wsgi/x").unwrap().is_some());
    assert_eq!(router.resolve("/r/app.wsgi").unwrap().unwrap().script_name, "/r/app.wsgi");
    let found = router.resolve("/m/app.wsgi/y").unwrap().unwrap();
    assert_eq!((found.script_name.as_str(), found.path_info.as_str()), ("/m/app.wsgi", "/y"));
    assert_eq!(router.resolve("/d/sub/inner.wsgi").unwrap_err(), RouteError::Directory(tree.scripts.join("sub")));
}

#[test]
fn the_tree_is_what_the_properties_assume() {
    let tree = Tree::new();
    assert!(Path::new(&tree.scripts).join("link_up").is_dir());
    assert!(std::fs::symlink_metadata(tree.scripts.join("link_out.wsgi")).unwrap().file_type().is_symlink());
}
