//! Any bytes → a playbook file → `Playbook::from_text` (what
//! `Playbook::load` reads a file with) → rendered for one host (templates,
//! secret references). Diagnostics are fine; a panic, a render that does
//! not end, or a result that breaks an invariant (see
//! `midfleet_fuzz::check_playbook`) is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    midfleet_fuzz::check_playbook(data);
});
