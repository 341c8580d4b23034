//! Ctrl-C and SIGTERM during a rollout (apply, rollback): no new host
//! starts; the running ones are followed to their end and reported.
//!
//! Must not: stop a host's transaction (it finishes on the host).

use std::sync::atomic::{AtomicBool, Ordering};

/// Set by Ctrl-C: no new host starts.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(signal: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
    // A second Ctrl-C (or TERM) ends midfleet at once; the hosts'
    // transactions go on by themselves.
    // SAFETY: signal(2) is async-signal-safe.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
    }
}

/// From here on, Ctrl-C and SIGTERM (a service manager, `timeout`, a CI
/// job cancelled) stop starting new hosts (apply, rollback); the running
/// ones are followed to their end and reported.
pub fn catch_interrupt() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: installing a handler that only stores to an atomic and
        // calls signal(2).
        unsafe {
            libc::signal(signal, on_interrupt as *const () as libc::sighandler_t);
        }
    }
}

/// Whether Ctrl-C (or SIGTERM) came.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
