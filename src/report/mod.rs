//! Rendering results for people and scripts. The library computes; this
//! module turns results into text. It never decides what happens.

mod diff;
mod table;

pub use diff::masked_unified_diff;
pub use table::render_table;
