//! `WSGIScriptAlias` / `WSGIScriptAliasMatch` resolution.
//!
//! A request path goes through three steps, as in Apache and mod_wsgi:
//!
//! 1. [`normalize_path`]: %-decoding (an encoded `/` is a 404, a NUL or a
//!    bad escape a 400), dot-segment removal (`..` above the root is a 400)
//!    and merging of `//` (Apache's `MergeSlashes On`);
//! 2. [`Router::split_path`]: the alias that matches, and where the URL
//!    splits into `SCRIPT_NAME` and the rest (no file system access);
//! 3. [`Router::resolve`]: the script file on disk; for a directory target
//!    the next path segment names the script inside it, which may never
//!    lie outside the directory.
//!
//! Paths are bytes: a decoded URL need not be UTF-8. `SCRIPT_NAME` and
//! `PATH_INFO` come out as Latin-1 text (each byte one `char`), which is how
//! WSGI carries them.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use wsgi_config::directives::{ScriptAlias, UrlPattern};

/// Why a request path cannot be routed, with the status to answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The path does not start with `/` (400).
    #[error("request path is not absolute")]
    NotAbsolute,
    /// A `%` not followed by two hex digits (400).
    #[error("invalid %-escape in request path")]
    InvalidEscape,
    /// A NUL byte, raw or as `%00` (400).
    #[error("NUL byte in request path")]
    NulByte,
    /// A `..` segment above the root (400).
    #[error("request path climbs above the root")]
    AboveRoot,
    /// An encoded slash (`%2F`), refused as with `AllowEncodedSlashes Off` (404).
    #[error("encoded slash (%2F) in request path")]
    EncodedSlash,
    /// The script file does not exist or cannot be read (404).
    #[error("target WSGI script not found or unable to stat: {}", .0.display())]
    ScriptNotFound(PathBuf),
    /// The named script resolves outside its alias directory (404).
    #[error("target WSGI script {} lies outside its script directory", .0.display())]
    OutsideDirectory(PathBuf),
    /// The path names a directory, not a script (403).
    #[error("attempt to invoke directory as WSGI application: {}", .0.display())]
    Directory(PathBuf),
}

impl RouteError {
    /// The HTTP status that answers this error.
    pub fn status(&self) -> u16 {
        match self {
            RouteError::NotAbsolute | RouteError::InvalidEscape | RouteError::NulByte | RouteError::AboveRoot => 400,
            RouteError::EncodedSlash | RouteError::ScriptNotFound(_) | RouteError::OutsideDirectory(_) => 404,
            RouteError::Directory(_) => 403,
        }
    }
}

/// A request routed to a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// Index of the matching alias in the list the router was built from.
    pub alias_index: usize,
    /// The script file to load.
    pub script_filename: PathBuf,
    /// `SCRIPT_NAME` (Latin-1 text of the decoded bytes).
    pub script_name: String,
    /// `PATH_INFO` (Latin-1 text of the decoded bytes).
    pub path_info: String,
}

/// Where an alias splits a path, before the file system is consulted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasSplit {
    /// Index of the matching alias.
    pub alias_index: usize,
    /// The alias target, with `$N` substituted for a pattern alias.
    pub target: PathBuf,
    /// The matched part of the path: `SCRIPT_NAME` for a file target.
    pub script_name: Vec<u8>,
    /// The rest of the path: empty or starting with `/`, except after a
    /// pattern match that ends inside a segment.
    pub rest: Vec<u8>,
    /// For a pattern target with `$N` references: the directory written
    /// before the first reference. The URL chooses what is substituted, so
    /// the script must lie inside this directory.
    pub confine: Option<PathBuf>,
}

impl AliasSplit {
    /// The file name Apache's translate phase forms (`target` + rest); what
    /// `PATH_TRANSLATED` reports for a path that maps through an alias.
    pub fn filename(&self) -> PathBuf {
        let mut bytes = self.target.as_os_str().as_bytes().to_vec();
        bytes.extend_from_slice(&self.rest);
        PathBuf::from(OsString::from_vec(bytes))
    }
}

/// Which alias wins when several match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatchPolicy {
    /// The alias matching the most of the path; the first on a tie.
    #[default]
    Longest,
    /// The first alias in order that matches, as mod_wsgi's translate hook
    /// does.
    First,
}

#[derive(Debug, Clone)]
enum Matcher {
    Prefix(Vec<u8>),
    Bytes(regex::bytes::Regex),
    // Only if the pattern does not compile as a bytes regex (it always
    // should); then only UTF-8 paths can match.
    Text(regex::Regex),
}

#[derive(Debug, Clone)]
struct CompiledAlias {
    matcher: Matcher,
    target: Vec<u8>,
    confine: Option<PathBuf>,
    /// What the (fixed) target is on disk, as last seen.
    kind: KindCache,
}

/// What a fixed alias target is on disk, remembered for a second so that a
/// busy server does not `stat()` the same script on every request (a
/// script that appears or disappears is noticed within that second).
#[derive(Debug, Default)]
struct KindCache(AtomicU64);

impl Clone for KindCache {
    fn clone(&self) -> KindCache {
        KindCache(AtomicU64::new(self.0.load(Ordering::Relaxed)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TargetKind {
    File,
    Directory,
    Other,
}

/// How long a target's kind is trusted.
const KIND_CACHE_MS: u64 = 1000;

impl KindCache {
    /// The kind of `target`, from the cache when fresh; `None` if it does
    /// not exist.
    fn kind(&self, target: &Path) -> Option<TargetKind> {
        let now_ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let cached = self.0.load(Ordering::Relaxed);
        // Layout: milliseconds << 3 | kind code (0: unknown, 1: missing,
        // 2: file, 3: directory, 4: other).
        if cached != 0 && now_ms.saturating_sub(cached >> 3) < KIND_CACHE_MS {
            return match cached & 7 {
                2 => Some(TargetKind::File),
                3 => Some(TargetKind::Directory),
                4 => Some(TargetKind::Other),
                _ => None,
            };
        }
        let kind = std::fs::metadata(target).ok().map(|m| {
            if m.is_file() {
                TargetKind::File
            } else if m.is_dir() {
                TargetKind::Directory
            } else {
                TargetKind::Other
            }
        });
        let code = match kind {
            None => 1,
            Some(TargetKind::File) => 2,
            Some(TargetKind::Directory) => 3,
            Some(TargetKind::Other) => 4,
        };
        self.0.store(now_ms << 3 | code, Ordering::Relaxed);
        kind
    }
}

/// The directory part of a pattern target before its first `$N`.
fn confining_directory(matcher: &Matcher, target: &[u8]) -> Option<PathBuf> {
    if matches!(matcher, Matcher::Prefix(_)) {
        return None;
    }
    let reference = target.windows(2).position(|w| w[0] == b'$' && w[1].is_ascii_digit())?;
    let fixed = &target[..reference];
    let directory = match fixed.iter().rposition(|&b| b == b'/') {
        Some(0) => &b"/"[..],
        Some(slash) => &fixed[..slash],
        None => &b"."[..],
    };
    Some(PathBuf::from(OsStr::from_bytes(directory)))
}

/// Resolves request paths against an ordered list of script aliases.
#[derive(Debug, Clone)]
pub struct Router {
    aliases: Vec<CompiledAlias>,
    case_sensitive: bool,
    policy: MatchPolicy,
}

impl Router {
    /// A router over `aliases` in match order (as
    /// `Config::script_aliases(server)` yields them). With `case_sensitive`
    /// false (`WSGICaseSensitivity Off`) prefixes match regardless of ASCII
    /// case; patterns match as written.
    pub fn new<'a>(aliases: impl IntoIterator<Item = &'a ScriptAlias>, case_sensitive: bool) -> Router {
        let aliases = aliases
            .into_iter()
            .map(|alias| {
                let matcher = match &alias.url {
                    UrlPattern::Prefix(prefix) => Matcher::Prefix(prefix.as_bytes().to_vec()),
                    UrlPattern::Regex(regex) => match regex::bytes::Regex::new(regex.as_str()) {
                        Ok(bytes) => Matcher::Bytes(bytes),
                        Err(_) => Matcher::Text(regex.clone()),
                    },
                };
                let target = alias.target.as_bytes().to_vec();
                let confine = confining_directory(&matcher, &target);
                CompiledAlias { matcher, target, confine, kind: KindCache::default() }
            })
            .collect();
        Router { aliases, case_sensitive, policy: MatchPolicy::default() }
    }

    /// The same router with another [`MatchPolicy`].
    pub fn with_policy(mut self, policy: MatchPolicy) -> Router {
        self.policy = policy;
        self
    }

    /// How many aliases the router holds.
    pub fn len(&self) -> usize {
        self.aliases.len()
    }

    /// Whether the router holds no alias.
    pub fn is_empty(&self) -> bool {
        self.aliases.is_empty()
    }

    /// Routes `raw_path` (the request target's path, still %-encoded, no
    /// query). `Ok(None)` when no alias matches.
    pub fn resolve(&self, raw_path: &str) -> Result<Option<RouteMatch>, RouteError> {
        if raw_path == "*" {
            return Ok(None); // `OPTIONS *` names no resource.
        }
        let path = normalize_path(raw_path)?;
        let Some(split) = self.split_path(&path) else {
            return Ok(None);
        };
        let target = split.target.clone();
        // A fixed target's kind may come from the cache; one chosen by the
        // URL (`$N`) is looked at every time.
        let kind = if split.confine.is_none() {
            self.aliases[split.alias_index].kind.kind(&target)
        } else {
            KindCache::default().kind(&target)
        };
        match kind {
            Some(TargetKind::Directory) => return resolve_in_directory(split).map(Some),
            Some(TargetKind::File) => {}
            Some(TargetKind::Other) | None => return Err(RouteError::ScriptNotFound(target)),
        }
        if !split.rest.is_empty() && split.rest[0] != b'/' {
            // A pattern match ending inside a segment: Apache looks for
            // `target` + the rest of the segment, which is not the script.
            return Err(RouteError::ScriptNotFound(split.filename()));
        }
        if let Some(directory) = &split.confine {
            confine(&target, directory, &target)?;
        }
        Ok(Some(RouteMatch {
            alias_index: split.alias_index,
            script_filename: target,
            script_name: latin1(&split.script_name),
            path_info: latin1(&split.rest),
        }))
    }

    /// The alias that matches the normalized path `path` (see
    /// [`normalize_path`]) and where it splits the path, without touching
    /// the file system.
    ///
    /// A match must cover at least one byte. A match of just `/` leaves the
    /// whole path as the rest, so that `WSGIScriptAlias / app.wsgi` gives
    /// `SCRIPT_NAME` `""`; otherwise, when the matched part ends in `/` and
    /// the rest continues the segment, the `/` moves to the rest. The script
    /// name and rest always add up to `path`.
    pub fn split_path(&self, path: &[u8]) -> Option<AliasSplit> {
        let mut best: Option<(usize, usize, Vec<u8>)> = None;
        for (index, alias) in self.aliases.iter().enumerate() {
            let Some((matched, target)) = self.match_alias(alias, path) else {
                continue;
            };
            let better = best.as_ref().is_none_or(|(_, len, _)| matched > *len);
            if better {
                best = Some((index, matched, target));
            }
            if self.policy == MatchPolicy::First {
                break;
            }
        }
        let (alias_index, mut matched, target) = best?;
        let confine = self.aliases[alias_index].confine.clone();
        // mod_wsgi keeps the whole URL for a match of just `/`; elsewhere a
        // trailing `/` moves to the rest when the rest continues its segment.
        if matched == 1 || (matched < path.len() && path[matched] != b'/' && path[matched - 1] == b'/') {
            matched -= 1;
        }
        Some(AliasSplit {
            alias_index,
            target: PathBuf::from(OsString::from_vec(target)),
            script_name: path[..matched].to_vec(),
            rest: path[matched..].to_vec(),
            confine,
        })
    }

    /// The file name the path maps to through the aliases (Apache's
    /// `r->filename` after translation), if an alias matches.
    pub fn translate(&self, path: &[u8]) -> Option<PathBuf> {
        self.split_path(path).map(|split| split.filename())
    }

    /// The matched length and the (substituted) target, if `alias` matches.
    fn match_alias(&self, alias: &CompiledAlias, path: &[u8]) -> Option<(usize, Vec<u8>)> {
        match &alias.matcher {
            Matcher::Prefix(prefix) => {
                let matched = prefix_match(path, prefix, self.case_sensitive)?;
                Some((matched, alias.target.clone()))
            }
            Matcher::Bytes(regex) => {
                if !alias.target.contains(&b'$') {
                    let end = regex.find(path)?.end();
                    return (end > 0).then(|| (end, alias.target.clone()));
                }
                let captures = regex.captures(path)?;
                let end = captures.get(0)?.end();
                if end == 0 {
                    return None;
                }
                let groups: Vec<Option<&[u8]>> = (0..10).map(|i| captures.get(i).map(|m| m.as_bytes())).collect();
                Some((end, substitute(&alias.target, &groups)))
            }
            Matcher::Text(regex) => {
                let text = std::str::from_utf8(path).ok()?;
                let captures = regex.captures(text)?;
                let end = captures.get(0)?.end();
                if end == 0 {
                    return None;
                }
                let groups: Vec<Option<&[u8]>> =
                    (0..10).map(|i| captures.get(i).map(|m| m.as_str().as_bytes())).collect();
                Some((end, substitute(&alias.target, &groups)))
            }
        }
    }
}

/// For a directory target, the next segment of the rest names the script.
fn resolve_in_directory(split: AliasSplit) -> Result<RouteMatch, RouteError> {
    let directory = split.target;
    let rest = split.rest.as_slice();
    if !rest.is_empty() && rest[0] != b'/' {
        return Err(RouteError::ScriptNotFound(split_filename(&directory, rest)));
    }
    let rest = trim_leading_slashes(rest);
    if rest.is_empty() {
        return Err(RouteError::Directory(directory));
    }
    let segment_len = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
    let (segment, path_info) = rest.split_at(segment_len);
    let candidate = directory.join(OsStr::from_bytes(segment));
    // Normalization leaves no `.`/`..` segments; refuse them all the same.
    if segment == b"." || segment == b".." || segment.contains(&0) {
        return Err(RouteError::OutsideDirectory(candidate));
    }
    let resolved = confine(&candidate, &directory, &candidate)?;
    if let Some(outer) = &split.confine {
        confine(&candidate, outer, &candidate)?;
    }
    let metadata = std::fs::metadata(&resolved).map_err(|_| RouteError::ScriptNotFound(candidate.clone()))?;
    if metadata.is_dir() {
        return Err(RouteError::Directory(candidate));
    }
    if !metadata.is_file() {
        return Err(RouteError::ScriptNotFound(candidate));
    }
    let mut script_name = split.script_name;
    script_name.push(b'/');
    script_name.extend_from_slice(segment);
    Ok(RouteMatch {
        alias_index: split.alias_index,
        script_filename: candidate,
        script_name: latin1(&script_name),
        path_info: latin1(path_info),
    })
}

/// The canonical form of `path`, which must lie strictly inside
/// `directory` once symlinks are resolved; errors name `reported`.
fn confine(path: &Path, directory: &Path, reported: &Path) -> Result<PathBuf, RouteError> {
    let root = std::fs::canonicalize(directory).map_err(|_| RouteError::ScriptNotFound(reported.to_path_buf()))?;
    let resolved = std::fs::canonicalize(path).map_err(|_| RouteError::ScriptNotFound(reported.to_path_buf()))?;
    if resolved.starts_with(&root) && resolved != root {
        Ok(resolved)
    } else {
        Err(RouteError::OutsideDirectory(reported.to_path_buf()))
    }
}

fn split_filename(target: &Path, rest: &[u8]) -> PathBuf {
    let mut bytes = target.as_os_str().as_bytes().to_vec();
    bytes.extend_from_slice(rest);
    PathBuf::from(OsString::from_vec(bytes))
}

fn trim_leading_slashes(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != b'/').unwrap_or(bytes.len());
    &bytes[start..]
}

/// mod_alias-style prefix match: each run of `/` in `prefix` matches a
/// non-empty run of `/` in `path`, and the match must end on a segment
/// boundary. Returns how many bytes of `path` matched, if any.
fn prefix_match(path: &[u8], prefix: &[u8], case_sensitive: bool) -> Option<usize> {
    let (mut p, mut u) = (0usize, 0usize);
    while p < prefix.len() {
        if prefix[p] == b'/' {
            if path.get(u) != Some(&b'/') {
                return None;
            }
            while prefix.get(p) == Some(&b'/') {
                p += 1;
            }
            while path.get(u) == Some(&b'/') {
                u += 1;
            }
        } else {
            let c = *path.get(u)?;
            let same = if case_sensitive { c == prefix[p] } else { c.eq_ignore_ascii_case(&prefix[p]) };
            if !same {
                return None;
            }
            p += 1;
            u += 1;
        }
    }
    let ends_in_slash = prefix.last() == Some(&b'/');
    if !ends_in_slash && u < path.len() && path[u] != b'/' {
        return None;
    }
    (u > 0).then_some(u)
}

/// Apache's `ap_pregsub`: `$0`..`$9` become the groups (empty when a group
/// did not take part), `\c` is a literal `c`, anything else is copied.
fn substitute(template: &[u8], groups: &[Option<&[u8]>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.len());
    let mut i = 0;
    while i < template.len() {
        let c = template[i];
        i += 1;
        if c == b'$' && i < template.len() && template[i].is_ascii_digit() {
            let group = usize::from(template[i] - b'0');
            i += 1;
            if let Some(Some(text)) = groups.get(group) {
                out.extend_from_slice(text);
            }
        } else if c == b'\\' && i < template.len() {
            out.push(template[i]);
            i += 1;
        } else {
            out.push(c);
        }
    }
    out
}

/// Decodes and normalizes a request path as Apache does before its
/// translate phase: the path must start with `/` (an absolute-form target's
/// `scheme://authority` is dropped first); `%XX` escapes are decoded, where
/// a bad escape or a NUL is a 400 and an encoded `/` a 404; `.` and `..`
/// segments are removed (`..` above the root is a 400) and runs of `/`
/// merge into one.
///
/// Characters of `raw_path` up to U+00FF stand for their byte (Latin-1, as
/// [`crate::RequestHead`] carries text); others for their UTF-8 bytes.
pub fn normalize_path(raw_path: &str) -> Result<Vec<u8>, RouteError> {
    let raw = latin1_bytes(strip_scheme_and_authority(raw_path));
    if raw.first() != Some(&b'/') {
        return Err(RouteError::NotAbsolute);
    }
    let decoded = percent_decode(&raw)?;
    remove_dot_segments(&decoded)
}

fn strip_scheme_and_authority(raw: &str) -> &str {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return raw;
    };
    let is_scheme = scheme.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !is_scheme {
        return raw;
    }
    match rest.find('/') {
        Some(slash) => &rest[slash..],
        None => "/",
    }
}

/// The bytes of Latin-1 text (characters beyond U+00FF as their UTF-8).
pub fn latin1_bytes(text: &str) -> Vec<u8> {
    // ASCII, as most paths are, is the same bytes either way.
    if text.is_ascii() {
        return text.as_bytes().to_vec();
    }
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match u8::try_from(u32::from(c)) {
            Ok(byte) => out.push(byte),
            Err(_) => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn percent_decode(raw: &[u8]) -> Result<Vec<u8>, RouteError> {
    let mut out = Vec::with_capacity(raw.len());
    let (mut bad_escape, mut nul, mut slash) = (false, false, false);
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'%' {
            nul |= b == 0;
            out.push(b);
            i += 1;
            continue;
        }
        match (raw.get(i + 1).copied().and_then(hex_value), raw.get(i + 2).copied().and_then(hex_value)) {
            (Some(high), Some(low)) => {
                let decoded = high << 4 | low;
                nul |= decoded == 0;
                slash |= decoded == b'/';
                out.push(decoded);
                i += 3;
            }
            _ => {
                bad_escape = true;
                out.push(b);
                i += 1;
            }
        }
    }
    // Apache reports a bad escape before a forbidden decoded byte.
    if bad_escape {
        Err(RouteError::InvalidEscape)
    } else if nul {
        Err(RouteError::NulByte)
    } else if slash {
        Err(RouteError::EncodedSlash)
    } else {
        Ok(out)
    }
}

fn remove_dot_segments(path: &[u8]) -> Result<Vec<u8>, RouteError> {
    let mut segments: Vec<&[u8]> = Vec::new();
    let mut trailing_slash = false;
    for segment in path[1..].split(|&b| b == b'/') {
        match segment {
            b"" | b"." => trailing_slash = true,
            b".." => {
                segments.pop().ok_or(RouteError::AboveRoot)?;
                trailing_slash = true;
            }
            _ => {
                segments.push(segment);
                trailing_slash = false;
            }
        }
    }
    let mut out = Vec::with_capacity(path.len());
    for segment in &segments {
        out.push(b'/');
        out.extend_from_slice(segment);
    }
    if trailing_slash || segments.is_empty() {
        out.push(b'/');
    }
    Ok(out)
}

/// Latin-1 text of `bytes`: each byte becomes the `char` of the same value,
/// which is how WSGI carries bytes in `str` values.
pub fn latin1(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        // ASCII (the usual case) is the same in both: one copy.
        Ok(text) if bytes.is_ascii() => text.to_string(),
        _ => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn prefix(url: &str, target: &str) -> ScriptAlias {
        ScriptAlias::new(UrlPattern::Prefix(url.to_string()), target)
    }

    fn pattern(url: &str, target: &str) -> ScriptAlias {
        ScriptAlias::new(UrlPattern::Regex(regex::Regex::new(url).unwrap()), target)
    }

    fn norm(raw: &str) -> Result<String, RouteError> {
        normalize_path(raw).map(|b| latin1(&b))
    }

    fn split(router: &Router, path: &str) -> Option<(usize, String, String, String)> {
        router
            .split_path(path.as_bytes())
            .map(|s| (s.alias_index, s.target.display().to_string(), latin1(&s.script_name), latin1(&s.rest)))
    }

    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("wsgi-core-route-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn normalization_decodes_and_removes_dot_segments() {
        assert_eq!(norm("/a/b").unwrap(), "/a/b");
        assert_eq!(norm("/a//b///c").unwrap(), "/a/b/c");
        assert_eq!(norm("/a/./b/../c").unwrap(), "/a/c");
        assert_eq!(norm("/a/b/..").unwrap(), "/a/");
        assert_eq!(norm("/a/.").unwrap(), "/a/");
        assert_eq!(norm("/").unwrap(), "/");
        assert_eq!(norm("//").unwrap(), "/");
        assert_eq!(norm("/a/").unwrap(), "/a/");
        assert_eq!(norm("/%61%62c").unwrap(), "/abc");
        assert_eq!(norm("/x/%2e%2E/y").unwrap(), "/y");
        assert_eq!(norm("/caf%C3%A9").unwrap(), "/caf\u{c3}\u{a9}");
        assert_eq!(norm("/a%20b").unwrap(), "/a b");
        assert_eq!(norm("http://example.com/a/b").unwrap(), "/a/b");
        assert_eq!(norm("http://example.com").unwrap(), "/");
    }

    #[test]
    fn normalization_errors_and_their_statuses() {
        let cases = [
            ("/a%2Fb", RouteError::EncodedSlash, 404),
            ("/a%2fb", RouteError::EncodedSlash, 404),
            ("/a%00b", RouteError::NulByte, 400),
            ("/a\0b", RouteError::NulByte, 400),
            ("/a%zzb", RouteError::InvalidEscape, 400),
            ("/a%2", RouteError::InvalidEscape, 400),
            ("/a%", RouteError::InvalidEscape, 400),
            ("/%2F%zz", RouteError::InvalidEscape, 400),
            ("/..", RouteError::AboveRoot, 400),
            ("/a/../..", RouteError::AboveRoot, 400),
            ("/%2e%2e/etc/passwd", RouteError::AboveRoot, 400),
            ("a/b", RouteError::NotAbsolute, 400),
            ("", RouteError::NotAbsolute, 400),
        ];
        for (raw, error, status) in cases {
            assert_eq!(normalize_path(raw), Err(error.clone()), "{raw:?}");
            assert_eq!(error.status(), status);
        }
    }

    #[test]
    fn prefix_matching_follows_mod_alias() {
        assert_eq!(prefix_match(b"/env", b"/env", true), Some(4));
        assert_eq!(prefix_match(b"/env/a", b"/env", true), Some(4));
        assert_eq!(prefix_match(b"/environ", b"/env", true), None);
        assert_eq!(prefix_match(b"/env", b"/env/", true), None);
        assert_eq!(prefix_match(b"/env/a", b"/env/", true), Some(5));
        assert_eq!(prefix_match(b"//env///a", b"/env/", true), Some(8));
        assert_eq!(prefix_match(b"/a/b", b"/a//b", true), Some(4));
        assert_eq!(prefix_match(b"/ENV/x", b"/env", true), None);
        assert_eq!(prefix_match(b"/ENV/x", b"/env", false), Some(4));
        assert_eq!(prefix_match(b"/anything", b"/", true), Some(1));
        assert_eq!(prefix_match(b"", b"/", true), None);
    }

    #[test]
    fn root_alias_gives_empty_script_name() {
        let router = Router::new(&[prefix("/", "/srv/app.wsgi")], true);
        assert_eq!(split(&router, "/a/b"), Some((0, "/srv/app.wsgi".into(), "".into(), "/a/b".into())));
        assert_eq!(split(&router, "/"), Some((0, "/srv/app.wsgi".into(), "".into(), "/".into())));
    }

    #[test]
    fn prefix_split_and_trailing_slash_alias() {
        let router = Router::new(&[prefix("/env", "/srv/e.wsgi"), prefix("/dir/", "/srv/scripts/")], true);
        assert_eq!(split(&router, "/env"), Some((0, "/srv/e.wsgi".into(), "/env".into(), "".into())));
        assert_eq!(split(&router, "/env/"), Some((0, "/srv/e.wsgi".into(), "/env".into(), "/".into())));
        assert_eq!(split(&router, "/env/a/b"), Some((0, "/srv/e.wsgi".into(), "/env".into(), "/a/b".into())));
        assert_eq!(
            split(&router, "/dir/x.wsgi/p"),
            Some((1, "/srv/scripts/".into(), "/dir".into(), "/x.wsgi/p".into()))
        );
        assert_eq!(split(&router, "/dir/"), Some((1, "/srv/scripts/".into(), "/dir/".into(), "".into())));
        assert_eq!(split(&router, "/dir"), None);
        assert_eq!(split(&router, "/other"), None);
    }

    #[test]
    fn longest_match_wins_and_first_policy_is_available() {
        let aliases =
            [prefix("/", "/srv/root.wsgi"), prefix("/admin", "/srv/admin.wsgi"), prefix("/admin", "/srv/dup.wsgi")];
        let router = Router::new(&aliases, true);
        assert_eq!(split(&router, "/admin/x").unwrap().0, 1, "longest, first on a tie");
        assert_eq!(split(&router, "/other").unwrap().0, 0);
        let first = Router::new(&aliases, true).with_policy(MatchPolicy::First);
        assert_eq!(split(&first, "/admin/x").unwrap().0, 0, "mod_wsgi: first in order");
    }

    #[test]
    fn pattern_aliases_substitute_groups() {
        let router = Router::new(&[pattern("^/app/([^/]+)", "/srv/$1.wsgi")], true);
        assert_eq!(
            split(&router, "/app/blog/post/1"),
            Some((0, "/srv/blog.wsgi".into(), "/app/blog".into(), "/post/1".into()))
        );
        assert_eq!(split(&router, "/other"), None);
        assert_eq!(substitute(b"/a/$1/$2/\\$1/$9/$x/\\", &[Some(b"all"), Some(b"one"), None]), b"/a/one//$1//$x/\\");
        assert_eq!(substitute(b"$0", &[Some(b"/whole")]), b"/whole");
    }

    #[test]
    fn pattern_targets_with_references_are_confined() {
        let confined = |url: &str, target: &str| {
            Router::new(&[pattern(url, target)], true).split_path(b"/a/b").and_then(|s| s.confine)
        };
        assert_eq!(confined("^/(a)", "/srv/scripts/$1.wsgi"), Some(PathBuf::from("/srv/scripts")));
        assert_eq!(confined("^/(a)", "/srv/x$1/y"), Some(PathBuf::from("/srv")));
        assert_eq!(confined("^/(a)", "/$1"), Some(PathBuf::from("/")));
        assert_eq!(confined("^/(a)", "$1"), Some(PathBuf::from(".")));
        assert_eq!(confined("^/(a)", "/srv/fixed.wsgi"), None);
        assert_eq!(confined("^/(a)", "/srv/cost\\$5"), Some(PathBuf::from("/srv")), "conservative on escapes");
        let router = Router::new(&[prefix("/a", "/srv/$1")], true);
        assert_eq!(router.split_path(b"/a").unwrap().confine, None, "prefix targets are literal");
    }

    #[test]
    fn substituted_targets_cannot_leave_their_directory() {
        let dir = TempDir::new();
        let scripts = dir.0.join("scripts");
        std::fs::create_dir_all(&scripts).unwrap();
        std::fs::write(scripts.join("app.wsgi"), "").unwrap();
        std::fs::write(dir.0.join("secret.wsgi"), "").unwrap();
        std::os::unix::fs::symlink(dir.0.join("secret.wsgi"), scripts.join("out.wsgi")).unwrap();
        std::os::unix::fs::symlink(&dir.0, scripts.join("up")).unwrap();
        let target = format!("{}/$1", scripts.display());
        let router = Router::new(&[pattern("^/r/([^/]+)", &target), pattern("^/p/a(..)", &target)], true);
        assert!(router.resolve("/r/app.wsgi/x").unwrap().is_some());
        assert_eq!(router.resolve("/r/out.wsgi").unwrap_err().status(), 404);
        assert_eq!(router.resolve("/r/up/secret.wsgi").unwrap_err().status(), 404);
        assert_eq!(router.resolve("/p/a../secret.wsgi").unwrap_err().status(), 404, "a capture of `..`");
    }

    #[test]
    fn pattern_match_must_cover_something() {
        let router = Router::new(&[pattern("^", "/srv/x.wsgi")], true);
        assert_eq!(split(&router, "/a"), None);
        let router = Router::new(&[pattern("^/(?:)", "/srv/x.wsgi")], true);
        assert_eq!(split(&router, "/a"), Some((0, "/srv/x.wsgi".into(), "".into(), "/a".into())));
    }

    #[test]
    fn pattern_matches_bytes_of_the_decoded_path() {
        let router = Router::new(&[pattern("^/caf\u{e9}", "/srv/x.wsgi")], true);
        let path = normalize_path("/caf%C3%A9/x").unwrap();
        let split = router.split_path(&path).unwrap();
        assert_eq!(split.rest, b"/x");
    }

    #[test]
    fn translate_joins_target_and_rest() {
        let router = Router::new(&[prefix("/env", "/srv/e.wsgi")], true);
        assert_eq!(router.translate(b"/env/x"), Some(PathBuf::from("/srv/e.wsgi/x")));
        assert_eq!(router.translate(b"/x"), None);
    }

    #[test]
    fn resolve_file_target() {
        let dir = TempDir::new();
        let script = dir.0.join("app.wsgi");
        std::fs::write(&script, "").unwrap();
        let missing = dir.0.join("missing.wsgi");
        let aliases = [prefix("/app", script.to_str().unwrap()), prefix("/gone", missing.to_str().unwrap())];
        let router = Router::new(&aliases, true);
        let found = router.resolve("/app/a%20b/").unwrap().unwrap();
        assert_eq!(
            found,
            RouteMatch {
                alias_index: 0,
                script_filename: script.clone(),
                script_name: "/app".into(),
                path_info: "/a b/".into()
            }
        );
        assert_eq!(router.resolve("/nothing").unwrap(), None);
        assert_eq!(router.resolve("*").unwrap(), None);
        let err = router.resolve("/gone/x").unwrap_err();
        assert_eq!((err.status(), err), (404, RouteError::ScriptNotFound(missing)));
        assert_eq!(router.resolve("/app/%2F").unwrap_err().status(), 404);
    }

    #[test]
    fn resolve_directory_target() {
        let dir = TempDir::new();
        let scripts = dir.0.join("scripts");
        std::fs::create_dir_all(scripts.join("sub")).unwrap();
        std::fs::write(scripts.join("app.wsgi"), "").unwrap();
        std::fs::write(dir.0.join("secret.wsgi"), "").unwrap();
        std::os::unix::fs::symlink(dir.0.join("secret.wsgi"), scripts.join("escape.wsgi")).unwrap();
        std::os::unix::fs::symlink(scripts.join("app.wsgi"), scripts.join("inside.wsgi")).unwrap();
        let router = Router::new(&[prefix("/w", scripts.to_str().unwrap())], true);

        let found = router.resolve("/w/app.wsgi/x/y").unwrap().unwrap();
        assert_eq!(found.script_filename, scripts.join("app.wsgi"));
        assert_eq!((found.script_name.as_str(), found.path_info.as_str()), ("/w/app.wsgi", "/x/y"));
        let found = router.resolve("/w/inside.wsgi").unwrap().unwrap();
        assert_eq!((found.script_name.as_str(), found.path_info.as_str()), ("/w/inside.wsgi", ""));

        let status = |raw: &str| router.resolve(raw).map(|_| 200).unwrap_or_else(|e| e.status());
        assert_eq!(status("/w"), 403);
        assert_eq!(status("/w/"), 403);
        assert_eq!(status("/w/sub"), 403);
        assert_eq!(status("/w/sub/x"), 403);
        assert_eq!(status("/w/missing.wsgi"), 404);
        assert_eq!(status("/w/escape.wsgi"), 404);
        assert_eq!(status("/w/..%2Fsecret.wsgi"), 404);
        assert_eq!(router.resolve("/w/../secret.wsgi").unwrap(), None, "normalizes to /secret.wsgi: no alias");
        assert_eq!(router.resolve("/w/%2e%2e/secret.wsgi").unwrap(), None, "normalizes to /secret.wsgi: no alias");
    }
}
