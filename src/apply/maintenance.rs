//! `rollback` and `unlock`: the operator's tools when a run must be undone
//! or a dead run's lock broken.

use serde::Serialize;

use crate::config_xml::{names, ConfigXml};
use crate::facts::gather::HostFacts;
use crate::plan::{HostPlan, HostStatus, PlannedChange};
use crate::transport::{check_become, shell_command, shell_quote, Transport};

/// The plan that restores `read`'s newest backup (with restart and health).
pub fn rollback_plan(read: &HostFacts) -> HostPlan {
    let host = &read.host;
    let mut plan = HostPlan::new(host, &read.endpoint);
    plan.status = HostStatus::Error;
    plan.restart = true;
    let facts = match &read.facts {
        Ok(facts) => facts,
        Err(error) => {
            plan.error = Some(error.message.clone());
            return plan;
        }
    };
    plan.service_found = Some(facts.service.kind.clone());
    plan.service_unit = facts.service.unit.clone();
    let file = match &facts.config {
        Ok(file) => file,
        Err(problem) => {
            plan.error = Some(format!("{}: {problem}", read.host.config));
            return plan;
        }
    };
    plan.fingerprint = Some(file.sha256.clone());
    plan.current_user = ConfigXml::parse(&file.bytes).ok().and_then(|document| {
        document
            .get(names::USERNAME)
            .map(|parameter| parameter.value().to_string())
    });
    let (Some(newest), Some(backup)) = (&facts.backup_chosen, &facts.backup_config) else {
        plan.error = Some(if facts.backups.is_empty() {
            "there is no midfleet backup on this host".into()
        } else {
            "every midfleet backup on this host equals the current config.xml (and wrapper-override.conf): nothing to restore"
                .into()
        });
        return plan;
    };
    let user = ConfigXml::parse(backup).ok().and_then(|document| {
        document
            .get(names::USERNAME)
            .map(|parameter| parameter.value().to_string())
    });
    plan.status = HostStatus::Change;
    plan.restore_from = Some(newest.clone());
    // The restored files log in as the backup's user: the transaction's
    // health check after a restore expects ROLLBACK_USER.
    plan.expect_user = user.clone();
    plan.current_user = user.clone();
    plan.changes.push(PlannedChange {
        action: "restore".into(),
        param: None,
        before: None,
        after: None,
        sensitive: false,
        reason: Some(format!(
            "restore backup {newest} (config.xml{}{}), then restart and wait for {}",
            if facts.backup_wrapper.is_some() {
                ", conf/wrapper-override.conf"
            } else {
                ""
            },
            if facts.backups.is_empty() {
                ""
            } else {
                " and the keystore when it was saved"
            },
            user.as_deref().unwrap_or("the MID")
        )),
        file: None,
    });
    plan
}

/// What `unlock` did on one host.
#[derive(Debug, Clone, Serialize)]
pub struct UnlockResult {
    pub host: String,
    /// `unlocked`, `not_locked`, `refused`, `error`.
    pub result: &'static str,
    pub message: String,
}

/// Breaks the lock on `read`'s host when its lease has passed (or when
/// `force`), saying whose it was.
pub fn unlock(transport: &Transport, read: &HostFacts, force: bool) -> UnlockResult {
    let name = read.host.name.clone();
    let answer = |result, message: String| UnlockResult {
        host: name.clone(),
        result,
        message,
    };
    let facts = match &read.facts {
        Ok(facts) => facts,
        Err(error) => return answer("error", error.message.clone()),
    };
    let Some(lock) = &facts.lock else {
        return answer("not_locked", "no lock".into());
    };
    let text = String::from_utf8_lossy(lock).trim().to_string();
    let mut words = text.split_whitespace();
    let run = words.next().unwrap_or("unknown").to_string();
    let deadline = words
        .next()
        .and_then(|word| word.parse::<u64>().ok())
        .unwrap_or(0);
    let now = facts.time.unwrap_or(0);
    if deadline > now && !force {
        return answer(
            "refused",
            format!(
                "locked by run {run}, whose lease lasts {} s more; its transaction may still be running (use --force only if you know it is gone)",
                deadline - now
            ),
        );
    }
    let script = format!(
        // .midfleet entered once and checked (where mid_home says, this
        // user's own): the MID's user may swap entries of mid_home.
        "cd -P -- {} 2>/dev/null && home=$(pwd -P) && cd .midfleet 2>/dev/null \
         && [ \"$(pwd -P)\" = \"${{home%/}}/.midfleet\" ] && [ -O . ] || {{ echo changed; exit 0; }}\n\
         if [ \"$(cat lock 2>/dev/null)\" = {} ]; then rm -f lock && echo unlocked; else echo changed; fi\n",
        shell_quote(&read.host.mid_home),
        shell_quote(&text)
    );
    let result = transport
        .connect(&read.endpoint)
        .and_then(|mut connection| {
            connection.exec(
                shell_command(read.host.become_as()).as_str(),
                script.as_bytes(),
            )
        })
        .and_then(|output| {
            check_become(&name, &output)?;
            Ok(output)
        });
    match result {
        Ok(output) if String::from_utf8_lossy(&output.stdout).trim() == "unlocked" => {
            answer("unlocked", format!("removed the lock of run {run}"))
        }
        Ok(_) => answer(
            "error",
            "the lock changed meanwhile; run unlock again".into(),
        ),
        Err(error) => answer("error", error.message),
    }
}
