//! Rendering results for people and scripts. The library computes; this
//! module turns results into text. It never decides what happens.

mod diff;
mod table;

pub use diff::masked_unified_diff;
pub use table::render_table;

/// Where the library reports progress. Implementations are in the CLI
/// (live bars on a terminal, plain lines otherwise); the library never
/// prints.
pub trait Reporter: Sync {
    /// A host began a step ("connecting", "stopping", …).
    fn host_step(&self, host: &str, step: &str);
    /// A host is done.
    fn host_done(&self, host: &str, ok: bool, summary: &str);
}

/// A reporter that says nothing (tests, benchmarks).
pub struct Silent;

impl Reporter for Silent {
    fn host_step(&self, _host: &str, _step: &str) {}
    fn host_done(&self, _host: &str, _ok: bool, _summary: &str) {}
}
