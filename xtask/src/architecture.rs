//! Keeps ARCHITECTURE.md's map true: each crate's paragraph ends its
//! dependencies with a sentence `Depends on: `a`, `b`.` (or `Depends on:
//! nothing.`), and the crates named there must be exactly the ones its
//! Cargo.toml lists under `[dependencies]` and `[build-dependencies]`.

use std::collections::BTreeSet;
use std::path::Path;

/// Checks every workspace member's paragraph against its Cargo.toml.
pub fn check(root: &Path) -> Result<(), String> {
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md"))
        .map_err(|e| format!("cannot read ARCHITECTURE.md: {e}"))?;
    let mut problems = Vec::new();
    for member in workspace_members(root)? {
        let manifest = std::fs::read_to_string(root.join(&member).join("Cargo.toml"))
            .map_err(|e| format!("cannot read {member}/Cargo.toml: {e}"))?;
        let declared = manifest_dependencies(&manifest);
        match mapped_dependencies(&map, &member) {
            None => problems.push(format!("{member}: no paragraph with a 'Depends on:' sentence")),
            Some(mapped) if mapped != declared => problems.push(format!(
                "{member}: ARCHITECTURE.md says it depends on {mapped:?}, its Cargo.toml on {declared:?}"
            )),
            Some(_) => {}
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("ARCHITECTURE.md disagrees with the crates:\n  {}", problems.join("\n  ")))
    }
}

/// The `members` of the root Cargo.toml's `[workspace]`.
fn workspace_members(root: &Path) -> Result<Vec<String>, String> {
    let manifest =
        std::fs::read_to_string(root.join("Cargo.toml")).map_err(|e| format!("cannot read Cargo.toml: {e}"))?;
    let start = manifest.find("members = [").ok_or("Cargo.toml: no workspace members")?;
    let list = &manifest[start..];
    let end = list.find(']').ok_or("Cargo.toml: unterminated members list")?;
    Ok(list[..end].split('"').skip(1).step_by(2).map(str::to_string).collect())
}

/// The crate names under `[dependencies]` and `[build-dependencies]`
/// (`name = ...`, `name.workspace = true`).
fn manifest_dependencies(manifest: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut in_dependencies = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]" || line == "[build-dependencies]";
            continue;
        }
        if in_dependencies && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.']).next().unwrap_or_default().trim();
            names.insert(name.to_string());
        }
    }
    names
}

/// The names in backquotes of the `Depends on:` sentence of `member`'s
/// paragraph (the one opening with **`member`**).
fn mapped_dependencies(map: &str, member: &str) -> Option<BTreeSet<String>> {
    let opening = format!("**`{member}`**");
    let paragraph = map.split("\n\n").find(|paragraph| paragraph.trim_start().starts_with(&opening))?;
    // The last one: the paragraph may mention the sentence before it.
    let sentence = &paragraph[paragraph.rfind("Depends on:")?..];
    let sentence = &sentence[..sentence.find(".\n").or_else(|| sentence.rfind('.')).unwrap_or(sentence.len())];
    Some(sentence.split('`').skip(1).step_by(2).map(str::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_dependency_tables_and_nothing_else() {
        let manifest = "[package]\nname = \"x\"\n\n[dependencies]\nregex = \"1\"\nwsgi-core.workspace = true\n\
                        # a comment\n\n[dev-dependencies]\nproptest = \"1\"\n\n[build-dependencies]\ncc = \"1\"\n";
        let names: Vec<String> = manifest_dependencies(manifest).into_iter().collect();
        assert_eq!(names, ["cc", "regex", "wsgi-core"]);
    }

    #[test]
    fn reads_the_sentence_of_the_crates_own_paragraph() {
        let map = "**`a`** does things. Depends on: `b`, `c`.\nMore.\n\n**`b`** does less. Depends on: nothing.\n";
        let a: Vec<String> = mapped_dependencies(map, "a").unwrap().into_iter().collect();
        assert_eq!(a, ["b", "c"]);
        assert!(mapped_dependencies(map, "b").unwrap().is_empty());
        assert!(mapped_dependencies(map, "c").is_none());
    }
}
