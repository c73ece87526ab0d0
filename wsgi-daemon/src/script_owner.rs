//! `script-user=` and `script-group=`: a daemon group that only runs
//! scripts owned by one user (or group), in a directory owned by the same,
//! neither writable by others. The front end checks before relaying, as
//! mod_wsgi's Apache child does, and answers 403 otherwise.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::sys;

const GROUP_WRITE: u32 = 0o020;
const WORLD_WRITE: u32 = 0o002;

/// Who must own a group's scripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptOwner {
    /// Any script may run (neither option given).
    Anyone,
    /// `script-user=`: the user's name and id (`None`: no such user, so no
    /// script can match).
    User(String, Option<u32>),
    /// `script-group=`: the group's name and id.
    Group(String, Option<u32>),
}

impl ScriptOwner {
    /// The rule of a `WSGIDaemonProcess` group (names looked up now).
    pub fn for_group(process: &wsgi_config::DaemonProcess) -> ScriptOwner {
        match (&process.script_user, &process.script_group) {
            (Some(user), _) => ScriptOwner::User(user.clone(), sys::lookup_user(user).map(|u| u.uid)),
            (None, Some(group)) => ScriptOwner::Group(group.clone(), sys::lookup_group(group)),
            (None, None) => ScriptOwner::Anyone,
        }
    }

    /// Whether `script` may run; the reason, in mod_wsgi's words, when not.
    pub fn check(&self, script: &Path) -> Result<(), String> {
        if *self == ScriptOwner::Anyone {
            return Ok(());
        }
        let file = std::fs::metadata(script).map_err(|e| format!("Unable to stat WSGI script file: {e}"))?;
        let parent = script.parent().unwrap_or(Path::new("/"));
        let dir =
            std::fs::metadata(parent).map_err(|e| format!("Unable to stat parent directory of WSGI script: {e}"))?;
        match self {
            ScriptOwner::Anyone => Ok(()),
            ScriptOwner::User(name, uid) => {
                if Some(file.uid()) != *uid {
                    return Err(format!(
                        "Owner of WSGI script file does not match required user for daemon process, user={}",
                        user_name(file.uid())
                    ));
                }
                refuse_writable(file.mode(), "WSGI script file", true)?;
                if Some(dir.uid()) != *uid {
                    return Err(format!(
                        "Owner of parent directory of WSGI script file does not match required user '{name}' for \
                         daemon process, user={}",
                        user_name(dir.uid())
                    ));
                }
                refuse_writable(dir.mode(), "Parent directory of WSGI script file", true)
            }
            ScriptOwner::Group(name, gid) => {
                if Some(file.gid()) != *gid {
                    return Err(format!(
                        "Group of WSGI script file does not match required group '{name}' for daemon process, \
                         gid={}",
                        file.gid()
                    ));
                }
                refuse_writable(file.mode(), "WSGI script file", false)?;
                if Some(dir.gid()) != *gid {
                    return Err(format!(
                        "Group of parent directory of WSGI script file does not match required group '{name}' for \
                         daemon process, gid={}",
                        dir.gid()
                    ));
                }
                refuse_writable(dir.mode(), "Parent directory of WSGI script file", false)
            }
        }
    }
}

/// Refuses a world-writable file (and, with `group_too`, a group-writable
/// one).
fn refuse_writable(mode: u32, what: &str, group_too: bool) -> Result<(), String> {
    if mode & WORLD_WRITE != 0 {
        return Err(format!("{what} is writable to world"));
    }
    if group_too && mode & GROUP_WRITE != 0 {
        return Err(format!("{what} is writable to group"));
    }
    Ok(())
}

fn user_name(uid: u32) -> String {
    sys::lookup_user(&format!("#{uid}")).map(|u| u.name).unwrap_or_else(|| uid.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("script-owner-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    #[test]
    fn a_script_of_another_owner_or_writable_by_others_is_refused() {
        let dir = dir();
        let script = dir.join("app.wsgi");
        std::fs::write(&script, "").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
        let me = std::fs::metadata(&script).unwrap().uid();
        let mine = ScriptOwner::User("me".into(), Some(me));
        assert_eq!(mine.check(&script), Ok(()));
        let theirs = ScriptOwner::User("them".into(), Some(me + 1));
        assert!(theirs.check(&script).unwrap_err().starts_with("Owner of WSGI script file does not match"));
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o664)).unwrap();
        assert_eq!(mine.check(&script), Err("WSGI script file is writable to group".into()));
        assert!(ScriptOwner::User("nobody-here".into(), None).check(&script).is_err());
        assert_eq!(ScriptOwner::Anyone.check(&dir.join("missing")), Ok(()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
