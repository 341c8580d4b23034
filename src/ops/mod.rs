//! One workflow per command, between the CLI (arguments in, rendering
//! out) and the layers below: what `check`, `hosts`, `facts`, `plan`,
//! `apply`, `rollback`, `unlock` and `edit` do, step by step. Each takes plain
//! values (paths, patterns, [`connection::Connection`],
//! [`hosts::Selection`]) and an [`Operator`], and returns data or an
//! [`OpsError`].
//!
//! Owns: the order of the steps and how their results combine; building
//! the transport and selecting hosts. Must not: print (progress, warnings
//! and questions go through the [`Operator`]), render results, parse
//! arguments or choose exit codes.

pub mod apply;
pub mod audit;
pub mod check;
pub mod connection;
pub mod edit;
mod error;
pub mod facts;
pub mod hosts;
pub mod instance;
pub mod interrupt;
mod operator;
pub mod plan;
pub mod rollback;
pub mod store;
pub mod unlock;

pub use error::OpsError;
pub use operator::{Operator, Progress};
