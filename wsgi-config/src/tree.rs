//! Reading configuration text into a tree of directives and sections.
//!
//! This layer knows Apache's file structure but no directive's meaning:
//! containers and their nesting, `Include`/`IncludeOptional`, `Define` and
//! `${VAR}` substitution, and the `<IfModule>`/`<IfDefine>`/`<IfFile>`
//! conditionals, which are decided while reading (as Apache does) so an
//! inactive branch never includes files. Directives of other modules pass
//! through untouched; the model layer decides what each one means.
//!
//! The files an `Include` brings in come from a [`FileSource`]: the file
//! system ([`DiskFiles`], what [`read_file`] and [`read_str`] use), or
//! files held in memory ([`MemoryFiles`]), for a caller that generates its
//! configuration, and for tests and fuzzing.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{ConfigError, Location};
use crate::lexer::{logical_lines, split_args, LogicalLine};
use crate::support::FrontEnd;

/// A directive line: its name, its words, and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The name as written (compare case-insensitively).
    pub name: String,
    /// The argument words, unquoted.
    pub args: Vec<String>,
    /// The argument text exactly as written, for directives that want it.
    pub raw_args: String,
    /// Where the directive starts.
    pub location: Location,
}

/// A container such as `<VirtualHost *:80>` with the nodes inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The container name without `<`, as written (compare case-insensitively).
    pub name: String,
    /// The words between the name and the closing `>`.
    pub args: Vec<String>,
    /// The directives and sections inside.
    pub children: Vec<Node>,
    /// Where the opening tag stands.
    pub location: Location,
}

/// One entry of a configuration tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A single directive.
    Directive(Directive),
    /// A container with children.
    Section(Section),
}

/// What the reader needs to decide includes and conditionals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// Base for relative `Include` paths; a `ServerRoot` directive read at
    /// the top level replaces it for the lines that follow.
    pub server_root: PathBuf,
    /// Names defined as if by `httpd -D NAME`.
    pub defines: BTreeSet<String>,
    /// Module names that `<IfModule>` treats as loaded: either the
    /// identifier (`wsgi_module`) or the source name (`mod_wsgi.c`).
    /// `LoadModule` lines add to the set while reading.
    pub modules: BTreeSet<String>,
    /// The front end the model is built for: each line is checked against
    /// what it honours ([`crate::support::check`]). `None` builds the model
    /// of mod_wsgi's semantics alone, as a reference.
    pub front_end: Option<FrontEnd>,
    /// What the front end's Python can do (the directives that need a newer
    /// one are refused without it).
    pub python: crate::support::PythonFeatures,
}

impl ReadOptions {
    /// Options for the standalone server: relative includes resolve against
    /// `server_root`, and the modules whose directives the standalone server
    /// implements count as loaded.
    pub fn standalone(server_root: impl Into<PathBuf>) -> Self {
        let modules = [
            "core.c",
            "http_core.c",
            "mod_so.c",
            "so_module",
            "mod_wsgi.c",
            "wsgi_module",
            "mod_alias.c",
            "alias_module",
            "mod_log_config.c",
            "log_config_module",
            "mod_env.c",
            "env_module",
            "mod_authz_core.c",
            "authz_core_module",
            "mod_authz_host.c",
            "authz_host_module",
            "mod_authz_user.c",
            "authz_user_module",
            "mod_authn_core.c",
            "authn_core_module",
            "mod_authn_file.c",
            "authn_file_module",
            "mod_auth_basic.c",
            "auth_basic_module",
            "mod_auth_digest.c",
            "auth_digest_module",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        ReadOptions {
            server_root: server_root.into(),
            defines: BTreeSet::new(),
            modules,
            front_end: Some(FrontEnd::Standalone),
            python: crate::support::PythonFeatures::default(),
        }
    }

    /// These options for a front end whose Python has `python`'s features.
    pub fn with_python(self, python: crate::support::PythonFeatures) -> Self {
        ReadOptions { python, ..self }
    }

    /// These options, building the model of mod_wsgi's semantics without
    /// checking what a front end honours.
    pub fn reference(self) -> Self {
        ReadOptions { front_end: None, ..self }
    }
}

/// Where the reader finds the files `Include` names and `<IfFile>` tests.
///
/// Paths arrive absolute or relative to the process's directory, as the
/// reader resolved them against the server root.
pub trait FileSource {
    /// The contents of the file at `path`.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Whether a file or directory exists at `path`.
    fn exists(&self, path: &Path) -> bool;
    /// Whether `path` is a directory (an `Include` of it takes every file
    /// under it).
    fn is_dir(&self, path: &Path) -> bool;
    /// The entries of directory `path`, in any order.
    fn dir_entries(&self, path: &Path) -> Vec<PathBuf>;
    /// The paths that the wildcard `pattern` (`*`, `?`, `[...]`, which do
    /// not cross `/`) matches, in any order; `Err` with the reason for a
    /// malformed pattern.
    fn glob(&self, pattern: &str) -> Result<Vec<PathBuf>, String>;
}

/// The file system, as Apache reads it.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiskFiles;

impl FileSource for DiskFiles {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn dir_entries(&self, path: &Path) -> Vec<PathBuf> {
        match std::fs::read_dir(path) {
            Ok(entries) => entries.flatten().map(|entry| entry.path()).collect(),
            Err(_) => Vec::new(),
        }
    }

    fn glob(&self, pattern: &str) -> Result<Vec<PathBuf>, String> {
        let paths = glob::glob(pattern).map_err(|e| e.to_string())?;
        Ok(paths.flatten().collect())
    }
}

/// Files held in memory, by path; the directories are those the paths
/// imply.
///
/// ```
/// use std::path::Path;
/// use wsgi_config::tree::{read_str_from, MemoryFiles, Node, ReadOptions};
///
/// let mut files = MemoryFiles::default();
/// files.insert("/etc/site/conf.d/app.conf", "WSGIScriptAlias / /srv/app.wsgi\n");
/// let options = ReadOptions::standalone("/etc/site");
/// let nodes = read_str_from(&files, "Include conf.d/*.conf\n", Path::new("main.conf"), &options).unwrap();
/// assert!(matches!(&nodes[0], Node::Directive(d) if d.name == "WSGIScriptAlias"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryFiles {
    files: BTreeMap<PathBuf, Vec<u8>>,
}

impl MemoryFiles {
    /// Adds (or replaces) the file at `path`.
    pub fn insert(&mut self, path: impl Into<PathBuf>, contents: impl Into<Vec<u8>>) {
        self.files.insert(path.into(), contents.into());
    }

    /// Every file and directory, each once.
    fn all_paths(&self) -> BTreeSet<&Path> {
        let mut paths = BTreeSet::new();
        for file in self.files.keys() {
            paths.extend(file.ancestors().filter(|p| !p.as_os_str().is_empty()));
        }
        paths
    }
}

impl FileSource for MemoryFiles {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        match self.files.get(path) {
            Some(contents) => Ok(contents.clone()),
            None if self.is_dir(path) => Err(io::Error::new(io::ErrorKind::IsADirectory, "is a directory")),
            None => Err(io::Error::new(io::ErrorKind::NotFound, "no such file")),
        }
    }

    fn exists(&self, path: &Path) -> bool {
        self.files.contains_key(path) || self.is_dir(path)
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.files.keys().any(|file| file != path && file.starts_with(path))
    }

    fn dir_entries(&self, path: &Path) -> Vec<PathBuf> {
        self.all_paths().into_iter().filter(|p| p.parent() == Some(path)).map(Path::to_path_buf).collect()
    }

    fn glob(&self, pattern: &str) -> Result<Vec<PathBuf>, String> {
        let pattern = glob::Pattern::new(pattern).map_err(|e| e.to_string())?;
        let options = glob::MatchOptions { require_literal_separator: true, ..glob::MatchOptions::new() };
        Ok(self
            .all_paths()
            .into_iter()
            .filter(|p| pattern.matches_path_with(p, options))
            .map(Path::to_path_buf)
            .collect())
    }
}

/// How deep `Include` may nest before we call it a loop.
const MAX_INCLUDE_DEPTH: usize = 32;

/// How many files the includes of one configuration may read in all: a
/// file that includes two copies of itself (a wildcard matching it and a
/// sibling) would otherwise be read 2^32 times before the depth limit.
const MAX_INCLUDED_FILES: usize = 10_000;

/// Reads the configuration file at `path`, following includes.
///
/// Every problem found is returned; the tree is only returned when there is
/// none.
pub fn read_file(path: &Path, options: &ReadOptions) -> Result<Vec<Node>, Vec<ConfigError>> {
    into_result(read_file_lenient(path, options))
}

/// Like [`read_file`], but returns what could be read along with every
/// error, so that a caller can go on to find later errors too.
pub fn read_file_lenient(path: &Path, options: &ReadOptions) -> (Vec<Node>, Vec<ConfigError>) {
    read_file_lenient_from(&DiskFiles, path, options)
}

/// Like [`read_file_lenient`], with the files (the one at `path` too) from
/// `files`.
pub fn read_file_lenient_from(
    files: &dyn FileSource,
    path: &Path,
    options: &ReadOptions,
) -> (Vec<Node>, Vec<ConfigError>) {
    let mut reader = Reader::new(options, files);
    let nodes = reader.read_path(path, 0);
    (nodes, reader.errors)
}

/// Reads configuration text that came from `name` (a file name used in
/// messages and as the base for nothing: relative includes use the server
/// root).
pub fn read_str(text: &str, name: &Path, options: &ReadOptions) -> Result<Vec<Node>, Vec<ConfigError>> {
    into_result(read_str_lenient(text, name, options))
}

/// Like [`read_str`], but returns what could be read along with every error.
pub fn read_str_lenient(text: &str, name: &Path, options: &ReadOptions) -> (Vec<Node>, Vec<ConfigError>) {
    read_str_lenient_from(&DiskFiles, text, name, options)
}

/// Like [`read_str`], with the included files from `files`.
pub fn read_str_from(
    files: &dyn FileSource,
    text: &str,
    name: &Path,
    options: &ReadOptions,
) -> Result<Vec<Node>, Vec<ConfigError>> {
    into_result(read_str_lenient_from(files, text, name, options))
}

/// Like [`read_str_lenient`], with the included files from `files`.
pub fn read_str_lenient_from(
    files: &dyn FileSource,
    text: &str,
    name: &Path,
    options: &ReadOptions,
) -> (Vec<Node>, Vec<ConfigError>) {
    let mut reader = Reader::new(options, files);
    let nodes = reader.read_text(text, name, 0);
    (nodes, reader.errors)
}

fn into_result((nodes, errors): (Vec<Node>, Vec<ConfigError>)) -> Result<Vec<Node>, Vec<ConfigError>> {
    if errors.is_empty() {
        Ok(nodes)
    } else {
        Err(errors)
    }
}

struct Reader<'f> {
    files: &'f dyn FileSource,
    server_root: PathBuf,
    defines: BTreeMap<String, Option<String>>,
    modules: BTreeSet<String>,
    errors: Vec<ConfigError>,
    /// Files read by includes so far ([`MAX_INCLUDED_FILES`]).
    included: usize,
    /// The files being read, outermost first: one that includes a file
    /// among them includes itself.
    reading: Vec<PathBuf>,
}

/// A frame of the open-container stack within one file.
struct Open {
    section: Section,
    /// `None` for a real container; `Some(active)` for a conditional.
    conditional: Option<bool>,
    /// Whether the lines inside are read at all.
    active: bool,
}

impl<'f> Reader<'f> {
    fn new(options: &ReadOptions, files: &'f dyn FileSource) -> Self {
        Reader {
            files,
            server_root: options.server_root.clone(),
            defines: options.defines.iter().map(|d| (d.clone(), None)).collect(),
            modules: options.modules.clone(),
            errors: Vec::new(),
            included: 0,
            reading: Vec::new(),
        }
    }

    fn read_path(&mut self, path: &Path, depth: usize) -> Vec<Node> {
        match self.files.read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => self.read_text(&text, path, depth),
                Err(_) => {
                    self.errors.push(ConfigError::in_file(path, "file is not valid UTF-8"));
                    Vec::new()
                }
            },
            Err(e) => {
                self.errors.push(ConfigError::in_file(path, format!("could not open configuration file: {e}")));
                Vec::new()
            }
        }
    }

    fn read_text(&mut self, text: &str, file: &Path, depth: usize) -> Vec<Node> {
        self.reading.push(file.to_path_buf());
        let nodes = self.read_lines(text, file, depth);
        self.reading.pop();
        nodes
    }

    fn read_lines(&mut self, text: &str, file: &Path, depth: usize) -> Vec<Node> {
        let mut stack: Vec<Open> = Vec::new();
        let mut top: Vec<Node> = Vec::new();
        for LogicalLine { line, text } in logical_lines(text) {
            let location = Location::new(file, line);
            let active = stack.last().is_none_or(|open| open.active);
            let text = if active { self.substitute(&text) } else { text };
            if let Some(rest) = text.strip_prefix("</") {
                self.close_section(rest, &location, &mut stack, &mut top);
            } else if let Some(rest) = text.strip_prefix('<') {
                self.open_section(rest, location, active, &mut stack);
            } else if active {
                let nodes = self.directive(&text, location, depth, stack.is_empty());
                let target = match stack.last_mut() {
                    Some(open) => &mut open.section.children,
                    None => &mut top,
                };
                target.extend(nodes);
            }
        }
        for open in stack.into_iter().rev() {
            self.errors
                .push(ConfigError::at(&open.section.location, format!("<{}> was not closed", open.section.name)));
        }
        top
    }

    fn open_section(&mut self, rest: &str, location: Location, active: bool, stack: &mut Vec<Open>) {
        let name_end = rest.find(|c: char| c.is_whitespace() || c == '>').unwrap_or(rest.len());
        let name = rest[..name_end].to_string();
        let after_name = &rest[name_end..];
        let mut section = Section { name, args: Vec::new(), children: Vec::new(), location };
        let parent_active = active;
        let inner = match after_name.trim_end().strip_suffix('>') {
            Some(inner) => inner,
            None => {
                if parent_active {
                    self.errors.push(ConfigError::at(
                        &section.location,
                        format!("<{} directive missing closing '>'", section.name),
                    ));
                }
                after_name
            }
        };
        match split_args(inner) {
            Ok(args) => section.args = args,
            Err(e) if parent_active => {
                self.errors.push(ConfigError::at(&section.location, format!("<{}: {e}", section.name)))
            }
            Err(_) => {}
        }
        let conditional = if parent_active { self.condition(&section) } else { None };
        let active = parent_active && conditional.unwrap_or(true);
        stack.push(Open { section, conditional, active });
    }

    fn close_section(&mut self, rest: &str, location: &Location, stack: &mut Vec<Open>, top: &mut Vec<Node>) {
        let name = rest.trim().trim_end_matches('>').trim();
        let Some(open) = stack.pop() else {
            self.errors.push(ConfigError::at(location, format!("</{name}> without matching <{name}> section")));
            return;
        };
        if !open.section.name.eq_ignore_ascii_case(name) {
            self.errors.push(ConfigError::at(location, format!("expected </{}> but saw </{name}>", open.section.name)));
        }
        let parent_active = stack.last().is_none_or(|o| o.active);
        if !parent_active {
            return;
        }
        let target = match stack.last_mut() {
            Some(parent) => &mut parent.section.children,
            None => top,
        };
        match open.conditional {
            // A true conditional vanishes into its parent; a false one is gone.
            Some(true) => target.extend(open.section.children),
            Some(false) => {}
            None => target.push(Node::Section(open.section)),
        }
    }

    /// `Some(truth)` for the conditional containers, `None` for others.
    fn condition(&mut self, section: &Section) -> Option<bool> {
        let kind = section.name.to_ascii_lowercase();
        let test: fn(&Reader<'_>, &str) -> bool = match kind.as_str() {
            "ifmodule" => |r, name| r.modules.contains(name),
            "ifdefine" => |r, name| r.defines.contains_key(name),
            "iffile" => |r, name| r.files.exists(&r.resolve(name)),
            _ => return None,
        };
        let [arg] = section.args.as_slice() else {
            self.errors
                .push(ConfigError::at(&section.location, format!("<{}> takes exactly one argument", section.name)));
            return Some(false);
        };
        Some(match arg.strip_prefix('!') {
            Some(name) => !test(self, name),
            None => test(self, arg),
        })
    }

    /// Replaces `${NAME}` with a `Define`d value or an environment variable;
    /// an unknown name is left as written, as Apache does.
    fn substitute(&self, text: &str) -> String {
        if !text.contains("${") {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            match after.find('}') {
                Some(end) => {
                    let name = &after[..end];
                    match self.lookup(name) {
                        Some(value) => out.push_str(&value),
                        None => out.push_str(&rest[start..start + 3 + end]),
                    }
                    rest = &after[end + 1..];
                }
                None => {
                    out.push_str(&rest[start..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }

    fn lookup(&self, name: &str) -> Option<String> {
        match self.defines.get(name) {
            Some(Some(value)) => Some(value.clone()),
            _ => std::env::var(name).ok(),
        }
    }

    fn resolve(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.server_root.join(path)
        }
    }

    /// Reads one directive line; an include returns the nodes it brings in.
    fn directive(&mut self, text: &str, location: Location, depth: usize, top_level: bool) -> Vec<Node> {
        let name_end = text.find(char::is_whitespace).unwrap_or(text.len());
        let name = text[..name_end].to_string();
        let raw_args = text[name_end..].trim().to_string();
        let args = match split_args(&raw_args) {
            Ok(args) => args,
            Err(e) => {
                self.errors.push(ConfigError::at(&location, format!("{name}: {e}")));
                return Vec::new();
            }
        };
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "include" | "includeoptional" => {
                return self.include(&name, &args, &location, depth, lower == "includeoptional");
            }
            "define" => match args.as_slice() {
                [key] => {
                    self.defines.insert(key.clone(), None);
                }
                [key, value] => {
                    self.defines.insert(key.clone(), Some(value.clone()));
                }
                _ => self.errors.push(ConfigError::at(&location, "Define takes one or two arguments")),
            },
            "undefine" => {
                for key in &args {
                    self.defines.remove(key);
                }
            }
            "loadmodule" => {
                if let [module, file, ..] = args.as_slice() {
                    self.modules.insert(module.clone());
                    if let Some(stem) = Path::new(file).file_stem().and_then(|s| s.to_str()) {
                        self.modules.insert(format!("{stem}.c"));
                    }
                }
            }
            "serverroot" if top_level => {
                if let [root] = args.as_slice() {
                    self.server_root = PathBuf::from(root);
                }
            }
            _ => {}
        }
        vec![Node::Directive(Directive { name, args, raw_args, location })]
    }

    fn include(&mut self, name: &str, args: &[String], location: &Location, depth: usize, optional: bool) -> Vec<Node> {
        let [pattern] = args else {
            self.errors.push(ConfigError::at(location, format!("{name} takes one argument")));
            return Vec::new();
        };
        if depth >= MAX_INCLUDE_DEPTH {
            self.errors.push(ConfigError::at(
                location,
                format!("{name}: includes nested more than {MAX_INCLUDE_DEPTH} deep; does a file include itself?"),
            ));
            return Vec::new();
        }
        let full = self.resolve(pattern);
        let files = match self.include_targets(&full) {
            Ok(files) => files,
            Err(message) => {
                self.errors.push(ConfigError::at(location, format!("{name}: {message}")));
                return Vec::new();
            }
        };
        if files.is_empty() && !optional {
            self.errors.push(ConfigError::at(location, format!("{name}: no file matches '{}'", full.display())));
        }
        let (files, cycle): (Vec<PathBuf>, Vec<PathBuf>) =
            files.into_iter().partition(|file| !self.reading.contains(file));
        if let Some(file) = cycle.first() {
            self.errors.push(ConfigError::at(
                location,
                format!("{name}: '{}' includes itself (it is being read already)", file.display()),
            ));
        }
        if self.included + files.len() > MAX_INCLUDED_FILES {
            // Once: the includes still open would each say it again.
            if self.included <= MAX_INCLUDED_FILES {
                self.errors.push(ConfigError::at(
                    location,
                    format!("{name}: more than {MAX_INCLUDED_FILES} files included; does a file include itself?"),
                ));
            }
            self.included = MAX_INCLUDED_FILES + 1;
            return Vec::new();
        }
        self.included += files.len();
        let mut nodes = Vec::new();
        for file in files {
            nodes.extend(self.read_path(&file, depth + 1));
        }
        nodes
    }

    /// The files an include names: a glob's matches, a directory's files
    /// (recursively), or the one file; sorted, as Apache sorts them.
    fn include_targets(&self, full: &Path) -> Result<Vec<PathBuf>, String> {
        let text = full.to_string_lossy();
        let mut files = Vec::new();
        if text.contains(['*', '?', '[']) {
            let paths = self.files.glob(&text).map_err(|e| format!("bad wildcard pattern: {e}"))?;
            for path in paths {
                collect_files(self.files, &path, &mut files);
            }
        } else if self.files.exists(full) {
            collect_files(self.files, full, &mut files);
        }
        files.sort();
        Ok(files)
    }
}

fn collect_files(files: &dyn FileSource, path: &Path, out: &mut Vec<PathBuf>) {
    if files.is_dir(path) {
        for entry in files.dir_entries(path) {
            collect_files(files, &entry, out);
        }
    } else {
        out.push(path.to_path_buf());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<Node>, Vec<ConfigError>> {
        read_str(text, Path::new("test.conf"), &ReadOptions::standalone("/nonexistent"))
    }

    fn names(nodes: &[Node]) -> Vec<String> {
        nodes
            .iter()
            .map(|n| match n {
                Node::Directive(d) => d.name.clone(),
                Node::Section(s) => format!("<{}>[{}]", s.name, names(&s.children).join(",")),
            })
            .collect()
    }

    fn messages(result: Result<Vec<Node>, Vec<ConfigError>>) -> Vec<String> {
        result.unwrap_err().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn builds_nested_sections() {
        let nodes = read(
            "Listen 80\n<VirtualHost *:80>\n  ServerName a\n  <Directory /x>\n    Require all granted\n  </Directory>\n</VirtualHost>\n",
        )
        .unwrap();
        assert_eq!(names(&nodes), ["Listen", "<VirtualHost>[ServerName,<Directory>[Require]]"]);
        let Node::Section(vhost) = &nodes[1] else { panic!() };
        assert_eq!(vhost.args, ["*:80"]);
        assert_eq!(vhost.location.line, 2);
    }

    #[test]
    fn close_tags_are_case_insensitive() {
        assert!(read("<directory /x>\n</DIRECTORY>\n").is_ok());
    }

    #[test]
    fn mismatched_and_unclosed_sections_are_errors() {
        assert_eq!(
            messages(read("<Directory /x>\n</Location>\n")),
            ["test.conf:2: expected </Directory> but saw </Location>"]
        );
        assert_eq!(messages(read("<VirtualHost *>\nServerName x\n")), ["test.conf:1: <VirtualHost> was not closed"]);
        assert_eq!(messages(read("</Files>\n")), ["test.conf:1: </Files> without matching <Files> section"]);
        assert_eq!(
            messages(read("<Directory /x\n</Directory>\n")),
            ["test.conf:1: <Directory directive missing closing '>'"]
        );
    }

    #[test]
    fn conditionals_are_decided_while_reading() {
        let nodes = read(concat!(
            "<IfModule mod_wsgi.c>\nA\n</IfModule>\n",
            "<IfModule !wsgi_module>\nB\n</IfModule>\n",
            "<IfModule mod_ssl.c>\nInclude /does/not/exist\n</IfModule>\n",
            "LoadModule ssl_module modules/mod_ssl.so\n",
            "<IfModule mod_ssl.c>\nC\n</IfModule>\n",
            "Define FOO bar\n<IfDefine FOO>\nD ${FOO}\n</IfDefine>\n",
            "<IfDefine !FOO>\nE\n</IfDefine>\n",
            "<IfModule mod_wsgi.c>\n<IfModule !nothing_module>\nF\n</IfModule>\n</IfModule>\n",
        ))
        .unwrap();
        assert_eq!(names(&nodes), ["A", "LoadModule", "C", "Define", "D", "F"]);
        let Node::Directive(d) = &nodes[4] else { panic!() };
        assert_eq!(d.args, ["bar"]);
    }

    #[test]
    fn inactive_branches_still_need_balanced_tags() {
        assert_eq!(
            messages(read("<IfModule nothing.c>\n<Directory /x>\n</IfModule>\n")),
            ["test.conf:3: expected </Directory> but saw </IfModule>", "test.conf:1: <IfModule> was not closed"]
        );
    }

    #[test]
    fn unknown_variables_are_left_alone() {
        let nodes = read("X ${WSGI_CONFIG_SURELY_UNSET_VAR} ${").unwrap();
        let Node::Directive(d) = &nodes[0] else { panic!() };
        assert_eq!(d.args, ["${WSGI_CONFIG_SURELY_UNSET_VAR}", "${"]);
    }

    #[test]
    fn includes_files_globs_and_directories_in_order() {
        let dir = std::env::temp_dir().join(format!("wsgi-config-inc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("conf.d")).unwrap();
        std::fs::write(dir.join("conf.d/b.conf"), "B\n").unwrap();
        std::fs::write(dir.join("conf.d/a.conf"), "A\n<Location /x>\nL\n</Location>\n").unwrap();
        std::fs::write(dir.join("one.conf"), "One\n").unwrap();
        let options = ReadOptions::standalone(&dir);
        let text = "Include one.conf\nInclude conf.d/*.conf\nIncludeOptional nothing/*.conf\nInclude conf.d\n";
        let nodes = read_str(text, Path::new("main.conf"), &options).unwrap();
        assert_eq!(names(&nodes), ["One", "A", "<Location>[L]", "B", "A", "<Location>[L]", "B"]);
        let Node::Directive(a) = &nodes[1] else { panic!() };
        assert_eq!(a.location, Location::new(dir.join("conf.d/a.conf"), 1));

        let errors =
            read_str("Include missing/*.conf\nInclude none.conf\n", Path::new("main.conf"), &options).unwrap_err();
        assert_eq!(errors.len(), 2);
        assert!(errors[0].to_string().starts_with("main.conf:1: Include: no file matches"));

        std::fs::write(dir.join("loop.conf"), "Include loop.conf\n").unwrap();
        let errors = read_str("Include loop.conf\n", Path::new("main.conf"), &options).unwrap_err();
        assert!(errors[0].message.contains("loop.conf' includes itself"), "{errors:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn server_root_directive_moves_relative_includes() {
        let dir = std::env::temp_dir().join(format!("wsgi-config-root-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("x.conf"), "X\n").unwrap();
        let text = format!("ServerRoot {}\nInclude x.conf\n", dir.display());
        let nodes = read(&text).unwrap();
        assert_eq!(names(&nodes), ["ServerRoot", "X"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "(<[/]?[A-Za-z]{0,8}[ >]?|[A-Za-z${}\"' \\\\]{0,12}|\n){0,40}") {
            let _ = read(&s);
        }
    }
}
