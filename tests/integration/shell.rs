//! A remote shell kept open on one exec channel (`transport::Shell`),
//! against a real lab sshd: what the apply's read and staging stand on.

use std::time::Duration;

use midfleet::inventory::SshConfig;
use midfleet::transport::{Connection, KnownHostsPolicy, Transport, TransportOptions};
use midfleet_lab::{Lab, LabSpec};

use crate::lab::{lab, midsim};

fn connect(lab: &Lab, host: &str) -> (Transport, Connection) {
    let inventory = midfleet::inventory::Inventory::load(std::slice::from_ref(&lab.inventory)).0;
    let resolved = inventory
        .resolve(host, &midfleet::template::Templates::new())
        .unwrap_or_else(|_| panic!("{host} resolves"));
    let endpoint = SshConfig::default().endpoint(&resolved).unwrap();
    let transport = Transport::new(TransportOptions {
        known_hosts: KnownHostsPolicy::new(Some(&lab.known_hosts), false),
        operation_timeout: Duration::from_secs(30),
    });
    let connection = transport.connect(&endpoint).unwrap();
    (transport, connection)
}

#[test]
fn scripts_run_one_after_another_on_one_channel() {
    let lab = lab(LabSpec::new(1, &midsim()));
    let (_transport, connection) = connect(&lab, "lab-001");
    let mut shell = connection.shell("sh -s").unwrap();
    // Exactly what the script printed, even without a last newline, and
    // its exit status.
    let first = shell.run(b"printf 'a\\nb'; exit 3").unwrap();
    assert_eq!(first.stdout, b"a\nb");
    assert_eq!(first.status, 3);
    // An end line with another marker is only output; a script that reads
    // stdin reads nothing (not the scripts that follow it).
    let second = shell
        .run(b"echo 'midfleet-end-0000 0'; cat; read line || echo no-input; echo done")
        .unwrap();
    assert_eq!(second.stdout, b"midfleet-end-0000 0\nno-input\ndone\n");
    assert_eq!(second.status, 0);
    // Nothing a script sets reaches the next one (each runs in a subshell).
    shell.run(b"set -e; kept=yes; cd /").unwrap();
    let third = shell.run(b"echo \"${kept:-unset}\"; false").unwrap();
    assert_eq!(third.stdout, b"unset\n");
    assert_eq!(third.status, 1);
    shell.alive(Duration::from_secs(5)).unwrap();
    // The last script is read whole before it runs: one larger than the
    // SSH window that ends the shell at once neither leaves the sender
    // waiting for a window that no one opens again, nor loses what it
    // printed.
    let mut last = b"printf 'early\\n'; exit 0\n".to_vec();
    for _ in 0..60_000 {
        last.extend_from_slice(b"echo never printed: the shell has exited already\n");
    }
    let mut streamed = Vec::new();
    let output = shell
        .finish(&last, &mut |chunk| streamed.extend_from_slice(chunk))
        .unwrap();
    assert_eq!(output.stdout, b"early\n");
    assert_eq!(streamed, b"early\n");
    assert_eq!(output.status, 0);
    let timings = &shell.connection().timings;
    assert_eq!(timings.channels, 1, "one exec channel for it all");
    assert_eq!(timings.execs.len(), 5, "four scripts and the last");
    assert!(shell.run(b"true").is_err(), "the shell has ended");
}

#[test]
fn a_shell_that_ends_early_or_a_cut_session_is_reported() {
    let lab = lab(LabSpec::new(1, &midsim()));
    let (_transport, connection) = connect(&lab, "lab-001");
    // The command refuses before reading a script (as `sudo -n` does): its
    // stderr and status, and no more scripts.
    let mut shell = connection
        .shell("echo 'sudo: a password is required' >&2; exit 1")
        .unwrap();
    let ended = shell.run(b"echo never").unwrap();
    assert_eq!(ended.status, 1);
    assert_eq!(ended.stdout, b"");
    assert_eq!(ended.stderr, b"sudo: a password is required\n");
    assert!(shell.alive(Duration::from_secs(5)).is_err());
    // A kept session cut while it waits: `alive` says so in time.
    let (_transport, connection) = connect(&lab, "lab-001");
    let mut shell = connection.shell("sh -s").unwrap();
    assert_eq!(shell.run(b"echo ok").unwrap().stdout, b"ok\n");
    assert!(lab.host("lab-001").cut_connections() > 0);
    let started = std::time::Instant::now();
    assert!(shell.alive(Duration::from_secs(5)).is_err());
    assert!(started.elapsed() < Duration::from_secs(10));
}
