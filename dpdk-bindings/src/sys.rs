//! What the appliance needs of the OS around DPDK that Rust's standard library does not give:
//! which thread takes the signals some PMDs raise, and sleeping until a deadline.
//!
//! DPDK's `net_tap` (22.11) asks the kernel for a real-time signal on every frame it can read,
//! sent to the process: whichever thread does not block it runs the handler. A thread sleeping
//! in `nanosleep` is woken by each one and sleeps again for the time left, measured afresh
//! (timer slack included), so under a flood it barely wakes at all. And when the queue of
//! pending real-time signals is full, the kernel sends SIGIO instead, whose default action ends
//! the process. So the control core blocks these signals on its own thread (the worker lcores,
//! started earlier, keep taking them), SIGIO is ignored, and the control core sleeps until an
//! absolute deadline that no interruption can push back.

use std::time::{Duration, Instant};

use crate::error::{DpdkError, Result};

/// Block SIGIO and every real-time signal on the calling thread, and on the threads it starts
/// from now on (they inherit its mask).
pub fn block_async_signals() -> Result<()> {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before any other use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t.
    unsafe { libc::sigemptyset(&mut set) };
    let (lo, hi) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    for sig in std::iter::once(libc::SIGIO).chain(lo..=hi) {
        // SAFETY: a valid set and a signal number of this system.
        unsafe { libc::sigaddset(&mut set, sig) };
    }
    // SAFETY: a valid set; the old mask is not asked for (null).
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(DpdkError::from_rc("pthread_sigmask", -rc));
    }
    Ok(())
}

/// Ignore SIGIO process-wide (the kernel's fallback when real-time signals overflow).
pub fn ignore_sigio() -> Result<()> {
    // SAFETY: SIG_IGN is a valid disposition for SIGIO, which nothing in dsrlb handles.
    let old = unsafe { libc::signal(libc::SIGIO, libc::SIG_IGN) };
    if old == libc::SIG_ERR {
        return Err(DpdkError::other("signal(SIGIO)", "cannot ignore SIGIO"));
    }
    Ok(())
}

/// Sleep until `deadline` (monotonic): an interrupted sleep resumes toward the same instant.
pub fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline <= now {
        return;
    }
    let left = deadline - now;
    // SAFETY: timespec is plain data; clock_gettime fills it.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid out-pointer; CLOCK_MONOTONIC always exists on Linux.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        std::thread::sleep(left);
        return;
    }
    let total = Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32) + left;
    let at = libc::timespec {
        tv_sec: total.as_secs() as libc::time_t,
        tv_nsec: total.subsec_nanos() as libc::c_long,
    };
    loop {
        // SAFETY: a valid absolute time; no remainder is asked for (null).
        let rc = unsafe {
            libc::clock_nanosleep(libc::CLOCK_MONOTONIC, libc::TIMER_ABSTIME, &at, std::ptr::null_mut())
        };
        if rc != libc::EINTR {
            return;
        }
    }
}

/// The calling thread's timer slack: how late the kernel may wake it (50 µs by default).
pub fn set_timer_slack(ns: u64) -> Result<()> {
    // SAFETY: PR_SET_TIMERSLACK takes a value and touches only the calling thread.
    let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, ns as libc::c_ulong, 0, 0, 0) };
    if rc != 0 {
        return Err(DpdkError::other("prctl(PR_SET_TIMERSLACK)", "refused"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleeps_until_the_deadline() {
        let t = Instant::now();
        sleep_until(t + Duration::from_millis(20));
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(20) && took < Duration::from_millis(500), "{took:?}");
        sleep_until(t); // past: returns at once
    }
}
