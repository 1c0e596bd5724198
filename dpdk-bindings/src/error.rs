use std::ffi::CStr;
use std::fmt;

use crate::ffi;

/// A failed DPDK call: which operation, and the (positive) errno it reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpdkError {
    pub op: &'static str,
    pub errno: i32,
    pub detail: Option<String>,
}

pub type Result<T> = std::result::Result<T, DpdkError>;

impl DpdkError {
    /// From a DPDK return code (negative errno) or, when it is -1, from `rte_errno`.
    pub(crate) fn from_rc(op: &'static str, rc: i32) -> Self {
        let errno = if rc == -1 { last_errno() } else { rc.abs() };
        DpdkError { op, errno, detail: None }
    }

    /// From `rte_errno` after a call that signals failure by a null pointer.
    pub(crate) fn from_errno(op: &'static str) -> Self {
        DpdkError { op, errno: last_errno(), detail: None }
    }

    pub(crate) fn other(op: &'static str, detail: impl Into<String>) -> Self {
        DpdkError { op, errno: 0, detail: Some(detail.into()) }
    }
}

pub(crate) fn last_errno() -> i32 {
    // SAFETY: reads the calling thread's rte_errno, a thread-local int; always valid.
    unsafe { ffi::dsrlb_errno() }
}

impl fmt::Display for DpdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.detail {
            return write!(f, "{}: {}", self.op, d);
        }
        // SAFETY: rte_strerror returns a pointer to a static or thread-local NUL-terminated
        // string for any errno value; we copy it out before any other DPDK call.
        let msg = unsafe { CStr::from_ptr(ffi::rte_strerror(self.errno)) };
        write!(f, "{}: {} (errno {})", self.op, msg.to_string_lossy(), self.errno)
    }
}

impl std::error::Error for DpdkError {}
