//! The Environment Abstraction Layer: initialised once per process, cleaned up on drop.

use std::ffi::{c_char, c_int, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{DpdkError, Result};
use crate::ffi;

/// DPDK refuses a second `rte_eal_init` in one process; we refuse it earlier, with a clear error.
static EAL_INITIALISED: AtomicBool = AtomicBool::new(false);

/// Proof that EAL is up. Dropping it runs `rte_eal_cleanup`.
pub struct Eal {
    // EAL may keep pointers into argv (device arguments, file prefix): keep them alive with us.
    _args: Vec<CString>,
    _argv: Vec<*mut c_char>,
}

// SAFETY: the argv storage is only read by EAL; the handle itself carries no thread affinity and
// every method calls thread-safe EAL functions.
unsafe impl Send for Eal {}
// SAFETY: as above; no method mutates state through &self.
unsafe impl Sync for Eal {}

type LcoreFn = Box<dyn FnOnce() -> i32 + Send + 'static>;

/// A job launched on a worker lcore; `join` waits for it and returns its result.
#[must_use = "a launched lcore must be joined"]
pub struct LcoreJoin {
    lcore: u32,
}

impl LcoreJoin {
    pub fn lcore(&self) -> u32 {
        self.lcore
    }

    /// Wait for the job; its return value, or -1 if it panicked.
    pub fn join(self) -> i32 {
        // SAFETY: lcore is a worker id on which we launched a job; waiting is always valid.
        unsafe { ffi::rte_eal_wait_lcore(self.lcore) }
    }
}

extern "C" fn lcore_trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` was produced by Box::into_raw in `Eal::launch` and is consumed exactly once,
    // here, on the lcore it was launched on.
    let job: Box<LcoreFn> = unsafe { Box::from_raw(arg.cast()) };
    // A panic must not unwind into C.
    catch_unwind(AssertUnwindSafe(job)).unwrap_or(-1)
}

impl Eal {
    /// Initialise EAL with `args` (the first is the program name, as in argv).
    pub fn init<I, S>(args: I) -> Result<Eal>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        if EAL_INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::other(
                "rte_eal_init",
                "EAL is already initialised in this process (it can be initialised only once)",
            ));
        }
        let args: Vec<CString> = args
            .into_iter()
            .map(|a| CString::new(a.as_ref()))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| DpdkError::other("rte_eal_init", "argument contains a NUL byte"))?;
        let mut argv: Vec<*mut c_char> = args.iter().map(|a| a.as_ptr() as *mut c_char).collect();
        // SAFETY: argv points at NUL-terminated strings that live as long as the returned Eal;
        // EAL may permute the argv array but does not write into the strings.
        let rc = unsafe { ffi::rte_eal_init(argv.len() as c_int, argv.as_mut_ptr()) };
        if rc < 0 {
            return Err(DpdkError::from_rc("rte_eal_init", rc));
        }
        Ok(Eal { _args: args, _argv: argv })
    }

    /// The lcore that ran `init` (the control core in dsrlb).
    pub fn main_lcore(&self) -> u32 {
        // SAFETY: EAL is initialised (we hold the proof); a plain getter.
        unsafe { ffi::rte_get_main_lcore() }
    }

    /// Enabled lcores other than the main one, in order.
    pub fn worker_lcores(&self) -> Vec<u32> {
        let mut out = Vec::new();
        let mut i = u32::MAX; // -1 asks for the first lcore
        loop {
            // SAFETY: EAL is initialised; rte_get_next_lcore iterates its lcore table read-only.
            i = unsafe { ffi::rte_get_next_lcore(i, 1, 0) };
            if i >= ffi::RTE_MAX_LCORE {
                break;
            }
            out.push(i);
        }
        out
    }

    /// The lcore id of the calling thread (`u32::MAX` on a non-EAL thread).
    pub fn current_lcore() -> u32 {
        // SAFETY: reads a thread-local; valid on any thread.
        unsafe { ffi::dsrlb_lcore_id() }
    }

    /// Run `job` on worker lcore `lcore`; the lcore must be idle.
    pub fn launch<F>(&self, lcore: u32, job: F) -> Result<LcoreJoin>
    where
        F: FnOnce() -> i32 + Send + 'static,
    {
        let boxed: Box<LcoreFn> = Box::new(Box::new(job));
        let arg = Box::into_raw(boxed);
        // SAFETY: the trampoline has the signature EAL expects and takes ownership of `arg`
        // when (and only when) the launch succeeds.
        let rc = unsafe { ffi::rte_eal_remote_launch(Some(lcore_trampoline), arg.cast(), lcore) };
        if rc != 0 {
            // SAFETY: the launch failed, so the trampoline never saw `arg`; reclaim it once.
            drop(unsafe { Box::from_raw(arg) });
            return Err(DpdkError::from_rc("rte_eal_remote_launch", rc));
        }
        Ok(LcoreJoin { lcore })
    }

    /// Create a virtual device at run time (e.g. `net_ring0`, `net_null1` with `no-rx=1`).
    pub fn create_vdev(&self, name: &str, args: &str) -> Result<()> {
        let n = CString::new(name).map_err(|_| DpdkError::other("rte_vdev_init", "NUL in name"))?;
        let a = CString::new(args).map_err(|_| DpdkError::other("rte_vdev_init", "NUL in args"))?;
        // SAFETY: both strings are NUL-terminated and outlive the call, which copies them.
        let rc = unsafe { ffi::rte_vdev_init(n.as_ptr(), a.as_ptr()) };
        if rc != 0 {
            return Err(DpdkError::from_rc("rte_vdev_init", rc));
        }
        Ok(())
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: EAL was initialised by us; cleanup releases its resources once at the end.
        unsafe {
            ffi::rte_eal_cleanup();
        }
    }
}
