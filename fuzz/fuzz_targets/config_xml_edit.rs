//! A file plus up to eight operations → parse → edit → re-read. The input is
//! `FILE \0 OP \0 OP …` (see `midfleet_fuzz::split_edit_input`), so a plain
//! config.xml is an input with no operations. Refusals are fine; a panic, a
//! failed self-verification, or a result that breaks an invariant (see
//! `midfleet_fuzz::check_edit`) is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (file, operations) = midfleet_fuzz::split_edit_input(data);
    midfleet_fuzz::check_edit(file, &operations);
});
