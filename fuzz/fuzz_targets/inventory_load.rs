//! Any bytes → an inventory file (`KIND FILE [\0 PATTERN]`, see
//! `midfleet_fuzz::split_inventory_input`: YAML, INI or sniffed) →
//! `Inventory::from_text`, the reader `Inventory::load` uses for each file;
//! then host patterns and the resolution of the first hosts. Diagnostics are
//! fine; a panic, or a result that breaks an invariant (see
//! `midfleet_fuzz::check_inventory`), is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    midfleet_fuzz::check_inventory(data);
});
