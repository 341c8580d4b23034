//! The simulated MID Server, laid out like the real agent folder:
//!
//! ```text
//! <mid_home>/.midsim                 knobs (outside agent/, so a backup or
//!                                    restore of agent/ never touches them)
//! <mid_home>/agent/config.xml        read at start, rewritten by the MID
//! <mid_home>/agent/conf/wrapper-override.conf  read by the wrapper at each JVM launch
//! <mid_home>/agent/security/agent_keystore
//! <mid_home>/agent/work/mid.pid      the running MID's pid
//! <mid_home>/agent/logs/agent0.log.0 the MID's log
//! <mid_home>/agent/logs/wrapper.log  the wrapper's log (and the MID's stdout)
//! ```
//!
//! - [`wrapper`]: `start`/`stop`/`restart`/`status`, like Tanuki's `mid.sh`.
//! - [`agent`]: `run`, the MID's start-up sequence and its life until stopped.
//! - [`knobs`]: failure injection and timing, read from `.midsim`.
//! - [`heap`]: `wrapper.java.maxmemory` from `agent/conf/wrapper-override.conf`
//!   against the host's heap limit, at each JVM launch.
//! - [`keystore`], [`cipher`], [`base64`], [`random`]: the `encrypted:` values.
//! - [`instance`]: the lab's stand-in for the instance's login check.
//! - [`overrides`]: the MID's `ecc_agent_config` rows, which outrank
//!   config.xml at each start.
//! - [`logs`], [`process`], [`config_file`]: appending lines, pids and
//!   signals, atomic replacement of config.xml.

pub mod agent;
mod base64;
mod cipher;
mod config_file;
mod heap;
mod instance;
mod keystore;
mod knobs;
mod logs;
mod overrides;
mod process;
mod random;
pub mod wrapper;
