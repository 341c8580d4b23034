//! Any bytes → `ConfigXml::parse`. Refusals are fine; a panic, or a parsed
//! document that breaks an invariant (see `midfleet_fuzz::check_document`),
//! is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use midfleet::config_xml::ConfigXml;

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = ConfigXml::parse(data) {
        midfleet_fuzz::check_document(&doc);
    }
});
