//! Any bytes → `facts::parse`, the parser of the facts script's reply.
//! Refusals are fine; a panic, or an accepted reply that breaks an
//! invariant (see `midfleet_fuzz::check_facts`), is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    midfleet_fuzz::check_facts(data);
});
