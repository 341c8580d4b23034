//! midfleet keeps a fleet of ServiceNow MID Servers in a declared state.
//!
//! # Codemap
//!
//! Data flows one way (see `docs/ARCHITECTURE.md`):
//!
//! ```text
//! inventory + playbook → desired state per host → facts (read over SSH)
//!     → plan (pure: desired × facts) → apply (per-host transaction) → report
//! ```
//!
//! - [`cli`]: clap arguments → library calls → text and exit codes. The only
//!   module that writes to stdout/stderr.
//! - [`config_xml`]: byte-preserving read and edit of a MID's
//!   `agent/config.xml`. Pure: no I/O.
//! - [`secret`]: secret references and values that cannot be printed.
//! - [`instance`]: the ServiceNow instance's Table API: new credentials
//!   checked, MID users ensured, before any host is touched.
//! - [`local_file`]: atomic replacement of a file on this machine (`edit`).
//! - [`report`]: rendering results (masked diffs, tables, JSON).

// Diagnostics are rich (file, line, host, hint) and travel only on the
// cold error path; boxing them everywhere would buy nothing.
#![allow(clippy::result_large_err)]

pub mod apply;
pub mod cli;
pub mod config_xml;
pub mod diagnostic;
pub mod endpoint;
pub mod facts;
pub mod instance;
pub mod inventory;
pub mod local_file;
pub mod ops;
pub mod plan;
pub mod playbook;
pub mod report;
pub mod secret;
pub mod source_file;
pub mod state;
pub mod template;
pub mod transport;
pub mod xml_char;
pub mod yaml;
