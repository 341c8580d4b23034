//! Network namespaces for lab hosts that must be reached through a bastion
//! (or not at all): each is linked by a veth pair to its parent namespace
//! (the machine's own, or a bastion's), with no routing beyond that link.

use std::process::Command;

use super::LabError;

/// A namespace made by the lab, deleted on drop (which also removes its
/// veth pair).
pub struct Namespace {
    pub name: String,
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

pub fn run(program: &str, arguments: &[&str]) -> Result<(), LabError> {
    let output = Command::new(program)
        .args(arguments)
        .output()
        .map_err(|error| LabError(format!("cannot run {program}: {error}")))?;
    if !output.status.success() {
        return Err(LabError(format!(
            "`{program} {}` failed: {}",
            arguments.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}

fn in_namespace(namespace: Option<&str>, arguments: &[&str]) -> Result<(), LabError> {
    match namespace {
        None => run("ip", arguments),
        Some(namespace) => {
            let mut full = vec!["netns", "exec", namespace, "ip"];
            full.extend_from_slice(arguments);
            run("ip", &full)
        }
    }
}

/// Creates namespace `name` linked to `parent` (`None`: this machine's):
/// the parent side gets `parent_address`/30, the namespace side
/// `child_address`/30. `link` names the interfaces (≤ 13 characters).
pub fn create(
    name: &str,
    parent: Option<&str>,
    link: &str,
    parent_address: &str,
    child_address: &str,
) -> Result<Namespace, LabError> {
    run("ip", &["netns", "add", name])?;
    let namespace = Namespace {
        name: name.to_string(),
    };
    let parent_side = format!("{link}p");
    let child_side = format!("{link}c");
    in_namespace(
        parent,
        &[
            "link",
            "add",
            &parent_side,
            "type",
            "veth",
            "peer",
            "name",
            &child_side,
        ],
    )?;
    in_namespace(parent, &["link", "set", &child_side, "netns", name])?;
    in_namespace(
        parent,
        &[
            "addr",
            "add",
            &format!("{parent_address}/30"),
            "dev",
            &parent_side,
        ],
    )?;
    in_namespace(parent, &["link", "set", &parent_side, "up"])?;
    in_namespace(
        Some(name),
        &[
            "addr",
            "add",
            &format!("{child_address}/30"),
            "dev",
            &child_side,
        ],
    )?;
    in_namespace(Some(name), &["link", "set", &child_side, "up"])?;
    in_namespace(Some(name), &["link", "set", "lo", "up"])?;
    Ok(namespace)
}

/// Makes `address` silent from the parent side: frames go to a MAC address
/// nobody has, so every packet is dropped without an answer.
pub fn black_hole(parent_link: &str, address: &str) -> Result<(), LabError> {
    run(
        "ip",
        &[
            "neigh",
            "replace",
            address,
            "lladdr",
            "02:00:00:00:00:01",
            "dev",
            &format!("{parent_link}p"),
            "nud",
            "permanent",
        ],
    )
}

/// Deletes namespaces left by labs whose process is gone (a test killed
/// with SIGKILL cannot clean up after itself).
pub fn reap_stale() {
    let Ok(output) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(pid) = name
            .strip_prefix("mfl")
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        let alive = pid
            .parse::<i32>()
            .is_ok_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

/// Whether this process can make mount and network namespaces (probed, not
/// assumed from the uid).
pub fn capabilities() -> (bool, bool) {
    let mount = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .output()
        .is_ok_and(|output| output.status.success());
    let probe = format!("mfl{}-probe", std::process::id());
    let network = Command::new("ip")
        .args(["netns", "add", &probe])
        .output()
        .is_ok_and(|output| output.status.success());
    if network {
        let _ = Command::new("ip").args(["netns", "del", &probe]).output();
    }
    (mount, network)
}

/// An `unreachable` route for the lab's whole 10.x.0.0/16 range on this
/// machine: only the links the lab made are more specific, so a packet for
/// a hidden host can never leave the machine by the default route (where a
/// sandbox's proxy might even answer it). Removed on drop.
pub struct UnreachableRoute {
    prefix: String,
}

impl UnreachableRoute {
    pub fn add(prefix: &str) -> Result<UnreachableRoute, LabError> {
        run("ip", &["route", "replace", "unreachable", prefix])?;
        Ok(UnreachableRoute {
            prefix: prefix.to_string(),
        })
    }
}

impl Drop for UnreachableRoute {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["route", "del", "unreachable", &self.prefix])
            .output();
    }
}
