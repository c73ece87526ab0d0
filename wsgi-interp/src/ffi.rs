//! Thin helpers over the CPython C API (`pyo3-ffi`): owned references,
//! string conversion and exception capture.
//!
//! Everything here assumes the caller holds the GIL of the interpreter the
//! objects belong to; the types are not `Send` so that they cannot wander to
//! another thread by accident.

use std::ffi::{CStr, CString};
use std::marker::PhantomData;
use std::os::raw::c_char;
use std::ptr::NonNull;

use pyo3_ffi as py;

/// An owned (strong) reference to a Python object.
pub(crate) struct Obj {
    ptr: NonNull<py::PyObject>,
    // Python objects belong to the thread holding the GIL.
    _not_send: PhantomData<*mut ()>,
}

impl Obj {
    /// Takes ownership of a new reference; `None` for NULL (an exception is set).
    ///
    /// # Safety
    /// `ptr` is NULL or a new (owned) reference, and the GIL is held.
    pub(crate) unsafe fn from_owned(ptr: *mut py::PyObject) -> Option<Obj> {
        NonNull::new(ptr).map(|ptr| Obj { ptr, _not_send: PhantomData })
    }

    /// Takes a new reference to a borrowed object.
    ///
    /// # Safety
    /// `ptr` is a valid, non-NULL borrowed reference, and the GIL is held.
    pub(crate) unsafe fn from_borrowed(ptr: *mut py::PyObject) -> Obj {
        // SAFETY: the caller guarantees `ptr` is valid and the GIL is held.
        unsafe { py::Py_IncRef(ptr) };
        Obj { ptr: NonNull::new(ptr).expect("borrowed reference is not NULL"), _not_send: PhantomData }
    }

    /// The raw pointer, still owned by `self`.
    pub(crate) fn as_ptr(&self) -> *mut py::PyObject {
        self.ptr.as_ptr()
    }

    /// Gives up ownership, returning the raw new reference.
    pub(crate) fn into_ptr(self) -> *mut py::PyObject {
        let ptr = self.ptr.as_ptr();
        std::mem::forget(self);
        ptr
    }
}

impl Drop for Obj {
    fn drop(&mut self) {
        // SAFETY: `Obj` is only created with the GIL held and is not `Send`,
        // so it is dropped on a thread that holds (or re-holds) that GIL.
        unsafe { py::Py_DecRef(self.ptr.as_ptr()) }
    }
}

impl Clone for Obj {
    fn clone(&self) -> Obj {
        // SAFETY: `self` is a valid reference and the GIL is held (see Drop).
        unsafe { Obj::from_borrowed(self.as_ptr()) }
    }
}

/// A Python `str` from Latin-1 text stored in a Rust string (each char
/// U+0000..U+00FF is one byte in Python's eyes; anything wider is kept as
/// its UTF-8 bytes decoded as Latin-1, so that no input can fail).
///
/// # Safety
/// The GIL is held.
pub(crate) unsafe fn latin1_str(s: &str) -> Option<Obj> {
    if s.is_ascii() {
        // SAFETY: `s` is valid for `len` bytes; ASCII is valid UTF-8.
        return unsafe {
            Obj::from_owned(py::PyUnicode_FromStringAndSize(s.as_ptr().cast(), s.len() as py::Py_ssize_t))
        };
    }
    let bytes: Vec<u8> =
        if s.chars().all(|c| (c as u32) < 256) { s.chars().map(|c| c as u8).collect() } else { s.as_bytes().to_vec() };
    // SAFETY: `bytes` is valid for its length; NULL errors means strict.
    unsafe {
        Obj::from_owned(py::PyUnicode_DecodeLatin1(
            bytes.as_ptr().cast(),
            bytes.len() as py::Py_ssize_t,
            std::ptr::null(),
        ))
    }
}

/// A Python `str` from UTF-8 text.
///
/// # Safety
/// The GIL is held.
pub(crate) unsafe fn utf8_str(s: &str) -> Option<Obj> {
    // SAFETY: `s` is valid UTF-8 for `len` bytes.
    unsafe { Obj::from_owned(py::PyUnicode_FromStringAndSize(s.as_ptr().cast(), s.len() as py::Py_ssize_t)) }
}

/// The text of a Python `str`, or `None` if `obj` is not a `str`.
///
/// # Safety
/// `obj` is a valid reference and the GIL is held.
pub(crate) unsafe fn str_value(obj: *mut py::PyObject) -> Option<String> {
    // SAFETY: `obj` is valid; the type check comes first.
    unsafe {
        if py::PyUnicode_Check(obj) == 0 {
            return None;
        }
        let mut len: py::Py_ssize_t = 0;
        let data = py::PyUnicode_AsUTF8AndSize(obj, &mut len);
        if data.is_null() {
            py::PyErr_Clear();
            return None;
        }
        let bytes = std::slice::from_raw_parts(data.cast::<u8>(), len as usize);
        Some(String::from_utf8_lossy(bytes).into_owned())
    }
}

/// The text of a Python `str` whose characters all fit Latin-1 (PEP 3333's
/// rule for status and headers), or `None` if it is not a `str` or has a
/// wider character.
///
/// # Safety
/// `obj` is a valid reference and the GIL is held.
pub(crate) unsafe fn latin1_value(obj: *mut py::PyObject) -> Option<String> {
    // SAFETY: forwarded; the UTF-8 form of an ASCII str is its own buffer.
    let text = unsafe { str_value(obj)? };
    if text.is_ascii() || text.chars().all(|c| (c as u32) < 256) {
        Some(text)
    } else {
        None
    }
}

/// The contents of a `bytes` object (borrowed for as long as `obj` lives).
///
/// # Safety
/// `obj` is a valid reference and the GIL is held; the slice must not
/// outlive the object.
pub(crate) unsafe fn bytes_data<'a>(obj: *mut py::PyObject) -> Option<&'a [u8]> {
    // SAFETY: `obj` is valid; bytes objects are immutable, so the buffer
    // stays put while a reference is held.
    unsafe {
        if py::PyBytes_Check(obj) == 0 {
            return None;
        }
        let mut data: *mut c_char = std::ptr::null_mut();
        let mut len: py::Py_ssize_t = 0;
        if py::PyBytes_AsStringAndSize(obj, &mut data, &mut len) != 0 {
            py::PyErr_Clear();
            return None;
        }
        Some(std::slice::from_raw_parts(data.cast::<u8>(), len as usize))
    }
}

/// A new `bytes` object holding `data`.
///
/// # Safety
/// The GIL is held.
pub(crate) unsafe fn new_bytes(data: &[u8]) -> Option<Obj> {
    // SAFETY: `data` is valid for its length.
    unsafe { Obj::from_owned(py::PyBytes_FromStringAndSize(data.as_ptr().cast(), data.len() as py::Py_ssize_t)) }
}

/// Sets a Python exception of type `kind` with `message`.
///
/// # Safety
/// The GIL is held; `kind` is an exception type.
pub(crate) unsafe fn raise(kind: *mut py::PyObject, message: &str) {
    let text = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    // SAFETY: `kind` is an exception type and `text` is NUL-terminated.
    unsafe { py::PyErr_SetString(kind, text.as_ptr()) }
}

/// A captured Python exception: its formatted traceback and whether it is
/// an `ImportError`.
pub(crate) struct PythonError {
    pub(crate) traceback: String,
    pub(crate) is_import_error: bool,
}

/// The current exception, normalised, as owned `(type, value,
/// traceback)` (each may be absent); clears it. `None` when none is set.
///
/// # Safety
/// The GIL is held.
#[cfg(Py_3_12)]
unsafe fn fetch_exception() -> Option<[Option<Obj>; 3]> {
    // SAFETY: the GIL is held; the raised exception (normalised since
    // 3.12) and the new references taken from it become Obj.
    unsafe {
        let value = Obj::from_owned(py::PyErr_GetRaisedException())?;
        let kind = Obj::from_borrowed(py::Py_TYPE(value.as_ptr()).cast());
        let tb = py::PyException_GetTraceback(value.as_ptr());
        Some([Some(kind), Some(value), Obj::from_owned(tb)])
    }
}

/// The current exception, as [`fetch_exception`] gives it before 3.12.
///
/// # Safety
/// The GIL is held.
#[cfg(not(Py_3_12))]
unsafe fn fetch_exception() -> Option<[Option<Obj>; 3]> {
    // SAFETY: the GIL is held; the fetched references become Obj.
    unsafe {
        let mut kind = std::ptr::null_mut();
        let mut value = std::ptr::null_mut();
        let mut tb = std::ptr::null_mut();
        py::PyErr_Fetch(&mut kind, &mut value, &mut tb);
        if kind.is_null() {
            return None;
        }
        py::PyErr_NormalizeException(&mut kind, &mut value, &mut tb);
        if !tb.is_null() && !value.is_null() && py::PyExceptionInstance_Check(value) != 0 {
            py::PyException_SetTraceback(value, tb);
        }
        Some([Obj::from_owned(kind), Obj::from_owned(value), Obj::from_owned(tb)])
    }
}

/// The exception `[kind, value, tb]`, formatted with the `traceback`
/// module.
///
/// # Safety
/// The GIL is held.
unsafe fn describe([kind, value, tb]: &[Option<Obj>; 3]) -> PythonError {
    // SAFETY: the GIL is held (caller); new references are owned by Obj.
    unsafe {
        let is_import_error = kind.as_ref().is_some_and(|k| {
            py::PyType_Check(k.as_ptr()) != 0
                && py::PyType_IsSubtype(k.as_ptr().cast(), py::PyExc_ImportError.cast()) != 0
        });
        let traceback = format_exception(kind, value, tb).unwrap_or_else(|| {
            py::PyErr_Clear();
            let text = value.as_ref().and_then(|v| Obj::from_owned(py::PyObject_Str(v.as_ptr())));
            let text = text.and_then(|t| str_value(t.as_ptr()));
            py::PyErr_Clear();
            text.unwrap_or_else(|| "unprintable exception".into())
        });
        PythonError { traceback, is_import_error }
    }
}

fn no_exception() -> PythonError {
    PythonError { traceback: "unknown error (no Python exception was set)".into(), is_import_error: false }
}

/// Takes the current exception (which must be set), formatted with the
/// `traceback` module; clears it.
///
/// # Safety
/// The GIL is held.
pub(crate) unsafe fn take_exception() -> PythonError {
    // SAFETY: the GIL is held (caller).
    unsafe { fetch_exception().map_or_else(no_exception, |parts| describe(&parts)) }
}

/// Takes the current exception as [`take_exception`] does, and also gives
/// it as the `(type, value, traceback)` tuple of `sys.exc_info()`.
///
/// # Safety
/// The GIL is held.
pub(crate) unsafe fn take_exception_info() -> (PythonError, Option<Obj>) {
    // SAFETY: the GIL is held (caller); the tuple's items are new
    // references that PyTuple_SetItem steals.
    unsafe {
        let Some(parts) = fetch_exception() else { return (no_exception(), None) };
        let error = describe(&parts);
        let info = Obj::from_owned(py::PyTuple_New(3));
        if let Some(info) = &info {
            for (i, part) in parts.iter().enumerate() {
                let item = part.as_ref().map_or(py::Py_None(), Obj::as_ptr);
                py::Py_IncRef(item);
                py::PyTuple_SetItem(info.as_ptr(), i as py::Py_ssize_t, item);
            }
        }
        (error, info)
    }
}

/// `''.join(traceback.format_exception(kind, value, tb))`.
unsafe fn format_exception(kind: &Option<Obj>, value: &Option<Obj>, tb: &Option<Obj>) -> Option<String> {
    // SAFETY: the GIL is held (caller); NULLs are replaced by None.
    unsafe {
        let module = Obj::from_owned(py::PyImport_ImportModule(c"traceback".as_ptr()))?;
        let format = Obj::from_owned(py::PyObject_GetAttrString(module.as_ptr(), c"format_exception".as_ptr()))?;
        let none = py::Py_None();
        let arg = |o: &Option<Obj>| o.as_ref().map_or(none, Obj::as_ptr);
        let lines = Obj::from_owned(py::PyObject_CallFunctionObjArgs(
            format.as_ptr(),
            arg(kind),
            arg(value),
            arg(tb),
            std::ptr::null_mut::<py::PyObject>(),
        ))?;
        let empty = utf8_str("")?;
        let joined = Obj::from_owned(py::PyUnicode_Join(empty.as_ptr(), lines.as_ptr()))?;
        str_value(joined.as_ptr()).map(|s| s.trim_end().to_string())
    }
}

/// Runs Python source in the `__main__`-like namespace `globals`.
///
/// # Safety
/// The GIL is held; `globals` is a dict.
pub(crate) unsafe fn run_source(source: &CStr, globals: *mut py::PyObject) -> Result<(), PythonError> {
    // SAFETY: `source` is NUL-terminated and `globals` is a dict.
    unsafe {
        let result = py::PyRun_StringFlags(source.as_ptr(), py::Py_file_input, globals, globals, std::ptr::null_mut());
        match Obj::from_owned(result) {
            Some(_) => Ok(()),
            None => Err(take_exception()),
        }
    }
}

extern "C" {
    /// A dict sized for `minused` items (CPython exports it; pyo3-ffi skips
    /// private names). Saves the resizes of a ~40-key environ.
    pub(crate) fn _PyDict_NewPresized(minused: py::Py_ssize_t) -> *mut py::PyObject;
}
