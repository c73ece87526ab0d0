//! Loading WSGI scripts as modules named after their path, and reloading
//! them when they change.

use std::collections::HashMap;
use std::ffi::CString;
use std::hash::BuildHasherDefault;
use std::path::Path;

use md5::{Digest, Md5};
use pyo3_ffi as py;
use wsgi_core::app::file_mtime_us;

use crate::call::FnvHasher;
use crate::ffi::{self, Obj, PythonError};

/// The module name mod_wsgi gives a script: `_mod_wsgi_` and the MD5 of
/// its absolute path (lower-cased first when the file system is not case
/// sensitive).
pub fn module_name(path: &Path, case_sensitive: bool) -> String {
    let text = path.to_string_lossy();
    let text = if case_sensitive { text.into_owned() } else { text.to_lowercase() };
    let digest = Md5::digest(text.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("_mod_wsgi_{hex}")
}

/// A script module loaded into one interpreter.
pub(crate) struct LoadedScript {
    module: Obj,
    /// Microseconds since the epoch ([`file_mtime_us`]).
    mtime: Option<i64>,
    /// The last callable name asked for, as an interned `str`.
    callable_name: Option<(String, Obj)>,
}

/// The scripts one interpreter has loaded, by path.
#[derive(Default)]
pub(crate) struct ScriptCache {
    scripts: HashMap<Box<[u8]>, LoadedScript, BuildHasherDefault<FnvHasher>>,
}

/// Why a script could not provide an application.
pub(crate) enum LoadError {
    /// The file could not be read.
    Unreadable(String),
    /// Importing it raised.
    Import(PythonError),
    /// It has no attribute of the callable's name.
    NoCallable,
}

// SAFETY: the cache is only touched by a thread holding its interpreter's
// GIL (the Mutex around it is uncontended bookkeeping).
unsafe impl Send for ScriptCache {}

impl ScriptCache {
    /// The module for `path`, importing it on first use and again when its
    /// modification time changed and `reload` is on.
    ///
    /// # Safety
    /// The GIL of the interpreter owning this cache is held.
    pub(crate) unsafe fn module(&mut self, path: &Path, reload: bool) -> Result<Obj, LoadError> {
        // SAFETY: the GIL is held (caller).
        unsafe { self.loaded(path, reload, None).map(|loaded| loaded.module.clone()) }
    }

    /// `current_mtime_us`: the file's modification time if the caller has
    /// just read it; otherwise it is read here when needed.
    unsafe fn loaded(
        &mut self,
        path: &Path,
        reload: bool,
        current_mtime_us: Option<i64>,
    ) -> Result<&mut LoadedScript, LoadError> {
        let key = path.as_os_str().as_encoded_bytes();
        let known = self.scripts.get(key).map(|loaded| loaded.mtime);
        let current = || current_mtime_us.or_else(|| file_mtime_us(path));
        let fresh = match known {
            // mod_wsgi checks the file on every request when reloading is on.
            Some(mtime) if reload => mtime == current(),
            Some(_) => true,
            None => false,
        };
        if !fresh {
            let mtime = current();
            // SAFETY: the GIL is held (caller).
            let module = unsafe { import(path)? };
            self.scripts.insert(key.into(), LoadedScript { module, mtime, callable_name: None });
        }
        Ok(self.scripts.get_mut(key).expect("present: found or just inserted"))
    }

    /// The application callable `name` of the script at `path`.
    ///
    /// # Safety
    /// As for [`ScriptCache::module`].
    pub(crate) unsafe fn callable(
        &mut self,
        path: &Path,
        name: &str,
        reload: bool,
        current_mtime_us: Option<i64>,
    ) -> Result<Obj, LoadError> {
        // SAFETY: the GIL is held (caller).
        unsafe {
            let loaded = self.loaded(path, reload, current_mtime_us)?;
            // Looked up on every request, as mod_wsgi does, so that an
            // application may rebind it; the name object is kept.
            let name_obj = match &loaded.callable_name {
                Some((known, obj)) if known == name => obj.clone(),
                _ => {
                    let mut ptr = ffi::utf8_str(name).ok_or(LoadError::NoCallable)?.into_ptr();
                    py::PyUnicode_InternInPlace(&mut ptr);
                    let obj = Obj::from_owned(ptr).ok_or(LoadError::NoCallable)?;
                    loaded.callable_name = Some((name.to_string(), obj.clone()));
                    obj
                }
            };
            match Obj::from_owned(py::PyObject_GetAttr(loaded.module.as_ptr(), name_obj.as_ptr())) {
                Some(callable) => Ok(callable),
                None => {
                    py::PyErr_Clear();
                    Err(LoadError::NoCallable)
                }
            }
        }
    }
}

/// Compiles and executes the script as a fresh module, registered in
/// `sys.modules` (replacing an earlier version).
unsafe fn import(path: &Path) -> Result<Obj, LoadError> {
    let source = std::fs::read(path).map_err(|e| LoadError::Unreadable(format!("{}: {e}", path.display())))?;
    let source = CString::new(source)
        .map_err(|_| LoadError::Unreadable(format!("{}: the file contains a NUL byte", path.display())))?;
    let file_name = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| LoadError::Unreadable(format!("{}: path contains a NUL byte", path.display())))?;
    let name = CString::new(module_name(path, true)).expect("hex module names have no NUL");
    // SAFETY: the GIL is held (caller); all strings are NUL-terminated.
    unsafe {
        let modules = py::PyImport_GetModuleDict();
        if !py::PyDict_GetItemString(modules, name.as_ptr()).is_null() {
            py::PyDict_DelItemString(modules, name.as_ptr());
        }
        let code = Obj::from_owned(py::Py_CompileStringExFlags(
            source.as_ptr(),
            file_name.as_ptr(),
            py::Py_file_input,
            std::ptr::null_mut(),
            -1,
        ))
        .ok_or_else(|| LoadError::Import(ffi::take_exception()))?;
        // Registers the module in sys.modules, and removes it again if the
        // code raises, so that the next request retries the import.
        Obj::from_owned(py::PyImport_ExecCodeModuleEx(name.as_ptr(), code.as_ptr(), file_name.as_ptr()))
            .ok_or_else(|| LoadError::Import(ffi::take_exception()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_follow_mod_wsgi() {
        // md5("/srv/app/environ.wsgi")
        let name = module_name(Path::new("/srv/app/environ.wsgi"), true);
        assert_eq!(name, "_mod_wsgi_a804f943fe6fa429884b256d8f31accd");
        assert_eq!(module_name(Path::new("/A.wsgi"), false), module_name(Path::new("/a.wsgi"), true));
        assert_ne!(module_name(Path::new("/A.wsgi"), true), module_name(Path::new("/a.wsgi"), true));
    }
}
