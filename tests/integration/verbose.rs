//! `-v`, `-vv`, `-vvv` (docs/SPEC.md "Verbosity"): per host the connection,
//! the steps with their times, the files read, the remote stderr and the
//! transport's exchanges; and a rolled-back host's reason naming the MID's
//! log line behind it. Times, ports, addresses, fingerprints and paths are
//! filtered out of the snapshots.

use midfleet_lab::{Lab, LabSpec};

use crate::faults::{run_on_lab, PASSWORD};
use crate::lab::{lab, midsim};

/// A lab of `hosts` whose new users log in with `PASSWORD`, but for the
/// hosts in `refused` (the instance has no such user: it refuses the
/// MID's login), and the rotation playbook.
fn setup(hosts: usize, refused: &[&str]) -> (Lab, std::path::PathBuf) {
    let lab = lab(LabSpec::new(hosts, &midsim()));
    for host in &lab.hosts {
        if !refused.contains(&host.name.as_str()) {
            lab.add_instance_user(&format!("svc_{}", host.name.replace('-', "")), PASSWORD)
                .unwrap();
        }
    }
    let playbook = lab.directory.join("rotate.yml");
    std::fs::write(
        &playbook,
        "hosts: lab\nset:\n  mid.instance.username: \"svc_{{ mid_name }}\"\n  mid.instance.password: { secret: \"env:FAULT_PASSWORD\" }\nhealth:\n  timeout: 20\nrollout:\n  serial: [100%]\n  max_fail: 100%\n",
    )
    .unwrap();
    (lab, playbook)
}

#[test]
fn probe() {
    let (lab, playbook) = setup(2, &["lab-002"]);
    let plan = run_on_lab(&lab, "plan", &playbook, &["-v"]);
    eprintln!("PLAN\n{}\n{}", plan.stdout, plan.stderr);
    let apply = run_on_lab(&lab, "apply", &playbook, &["-vvv"]);
    eprintln!("APPLY\n{}\n{}", apply.stdout, apply.stderr);
    let apply = run_on_lab(&lab, "plan", &playbook, &["-vv"]);
    eprintln!("APPLY\n{}\n{}", apply.stdout, apply.stderr);
}
