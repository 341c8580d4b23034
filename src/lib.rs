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
//! Every module, top layer first (a layer imports only layers below it):
//!
//! - [`cli`]: clap arguments → one [`ops`] call → rendering and exit codes.
//!   The only module that writes to stdout/stderr (through its console).
//! - [`ops`]: one workflow per command (check, hosts, facts, plan, apply,
//!   rollback, unlock, edit), returning data and typed errors.
//! - [`apply`]: the rollout, one host's run on one remote shell, the
//!   on-host transaction (assembled from `apply/transaction/`), following
//!   it, rollback and unlock.
//! - [`instance`]: the ServiceNow instance's Table API: new credentials
//!   checked, MID users ensured, `ecc_agent` awaited and validated.
//! - [`plan`]: pure — desired × facts → [`plan::Plan`], plain data; the
//!   plan file; the human rendering.
//! - [`playbook`]: the playbook file, its `instance:` section, the rollout,
//!   and the desired values per host.
//! - [`facts`]: the one remote read of a host, its pure parser, the
//!   parallel gather.
//! - [`inventory`]: Ansible inventories, variables, patterns, host
//!   selection, and a host as an [`endpoint::Endpoint`].
//! - [`transport`]: SSH sessions, host keys, jump hosts, exec — to an
//!   endpoint; knows no inventory and no MID.
//! - [`config_xml`]: byte-preserving read and edit of a MID's
//!   `agent/config.xml`. Pure: no I/O.
//! - [`report`]: tables, masked diffs, the reporter trait, the audit log.
//! - [`ansible_cfg`]: ansible.cfg and `ANSIBLE_*`, found and read as
//!   Ansible does; the defaults they give the command line.
//! - Shared pieces: [`endpoint`] (where a machine is), [`secret`]
//!   (references and values that cannot be printed), [`vault`] (Ansible
//!   Vault texts decrypted with Ansible's password sources), [`state`] (the
//!   on-host record), [`diagnostic`] (file:line:col problems), [`yaml`],
//!   [`template`], [`source_file`], [`local_file`] (the atomic local write
//!   of `edit`), [`xml_char`].
//!
//! The test doubles (the lab, the simulated MID and instance, the demo)
//! are the `midfleet-lab` crate in `crates/lab/`, never a dependency of
//! this one.

// Diagnostics are rich (file, line, host, hint) and travel only on the
// cold error path; boxing them everywhere would buy nothing.
#![allow(clippy::result_large_err)]

pub mod ansible_cfg;
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
pub mod vault;
pub mod wrapper_conf;
pub mod xml_char;
pub mod yaml;
