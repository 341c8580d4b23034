//! The instance side: what midfleet asks of the ServiceNow instance through
//! its REST Table API (`docs/instance.md`).
//!
//! - [`client`]: the blocking HTTP client (ureq + rustls): timeouts,
//!   bounded retries with backoff, basic auth, no secret in any error.
//! - [`table`]: the Table API calls midfleet makes (users, roles, the login
//!   check, the ECC queue's `SystemCommand`s).
//! - [`preflight`]: the logins checked before any host, `ensure_user`,
//!   the wait for each MID's record to be Up, `retire_old_user`.
//! - [`kinds`]: each MID's `ecc_agent` record and `ecc_agent_config`
//!   rows, for the kind of MID.
//! - [`validation`]: Invalidate, then Validate, a MID whose key pair was
//!   reset.
//!
//! Must not: print, or touch a host.

pub mod client;
mod error;
pub mod kinds;
pub mod preflight;
pub mod table;
pub mod validation;

pub use client::{Client, Credentials, Method, Settings};
pub use error::InstanceError;
