//! Integration tests: the real `midfleet` binary, run as an operator runs
//! it. One test binary (STYLE.md); each area in its own module.

#[path = "../support/ansible.rs"]
mod ansible;
mod apply;
mod chaos;
mod completions;
mod connection;
mod edit;
mod faults;
mod habits;
mod hostile;
mod instance;
#[path = "../support/instancesim.rs"]
mod instancesim;
mod inventory;
mod kept_lab;
mod kinds;
mod lab;
mod parity;
mod racer;
mod rotation;
mod secrets;
mod shell;
mod steps;
mod support;
mod terminal;
mod vault;
mod verbose;
mod wrapper;
