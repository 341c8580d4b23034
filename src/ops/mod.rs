//! One workflow per command, between the CLI (arguments in, rendering
//! out) and the layers below: what `check` and `plan` (and `apply`, which
//! plans first) do, step by step.
//!
//! Owns: the order of the steps and how their results combine. Must not:
//! print (progress and results go through a reporter) or parse arguments.

pub mod check;
pub mod plan;
