//! The config.xml parameters ServiceNow documents, for the playbook's
//! "did you mean" on a misspelled `set:`/`unset:` name. An unknown name
//! stays allowed (MIDs take undocumented and newer parameters too): this
//! only feeds a warning.
//!
//! Owns: [`DOCUMENTED`] and the lookups on it. Must not: refuse a name.

/// Every parameter name ServiceNow's documentation gives for config.xml.
///
/// Source: ServiceNow/ServiceNowDocs (brazil), `markdown/servicenow-platform/
/// mid-server/`: `mid-server-parameters.md` ("MID Server parameters": every
/// section from "Required parameters" to "Windows Discovery parameters",
/// spellings kept as documented, typos included), `mid-security-checks.md`
/// (`mid.ssl.*`), `mid-data-encrypt-with-dpapi.md` (`mid.secure_encrypter`),
/// `use-cyberark-secure-config-provider.md` (`mid.secure_config.provider`),
/// `config-mid-ipv6.md` (`mid.prefer_ipv6_addresses`), `mid-timeout.md`
/// (`mid.inactivity.timeout.days`); and docs/mid-server.md notes
/// (`keypairs.mid_id`, the IPKI parameters of the newest releases).
pub const DOCUMENTED: &[&str] = &[
    // Required
    "url",
    "mid_sys_id",
    "name",
    "mid.instance.username",
    "glide.glidesoap.username",
    "mid.instance.password",
    "glide.glidesoap.password",
    "keypairs.mid_id",
    // CIM
    "mid.cim.batch.size",
    "mid.cim.request.interval",
    "mid.cim.host.connection.limit",
    // Connection
    "glide.mid.fast.responses",
    "glide.mid.max.sender.queue.size",
    "instance.date.format",
    "mid.disable_amb",
    "mid.https.truststore.password",
    "mid.https.truststore.path",
    "mid.instance.skip_basic_auth",
    "mid.jmx.enabled",
    "mid.poll.time",
    "mid.poll.time.standard",
    "mid.probe.wait.resources",
    "mid.property.long_runner",
    "threads.interactive.max",
    "threads.expedited.max",
    "threads.max",
    // Credentials
    "mid.aws.instance_profile_name",
    "mid.credentials.provider",
    "mid.secure_credentials.key_pairs.provider",
    // Debug
    "debug.logging",
    "debug",
    "file.probe.template.debug",
    "mid.cim.debug",
    "mid.ssh.debug",
    "mid.log.level",
    "mid.http.idle_connection_monitor.debug",
    // DNS
    "mid.dns_scan.regulator.interval_ms",
    "mid.dns_scan.regulator.packets_per_interval",
    "mid.dns_scan.default_name_servers",
    "mid.dns_scan.additional_name_servers",
    "mid.dns_scan.load_balancing_enable",
    "mid.probe.use_legacy_forward_dns",
    "mid.probe.use_legacy_reverse_dns",
    // Event Management
    "mid.probe.event.bulk_size",
    "mid.probe.event.wait_time",
    "mid.probe.event.send.enabled",
    "mid.probe.event.queue.max_size",
    "mid.probe.event.max.retry_time",
    "mid.probe.event.queue.use_bulk",
    "mid.probe.event.suppress.whitespaces",
    "mid.em.metric.metric_to_ci_map_limit",
    "mid.em.metric_binding_timeout_seconds",
    "mid.em.metric_binding_timeout_max_seconds",
    "mid.em.metric_max_elapsed_time_before_refresh",
    "mid.em.matric_max_sql_string_length_for_types",
    "mid.em.statistics_report_perioon_sec",
    "mid.em.metric_connector_max_run_time_seconds",
    "mid.em.metric_connector_history_min",
    "mid.em.metric_event_logging",
    "mid.em.metric_connector_late_arrivals_delay",
    // FTP
    "mid.ftp.max_pool_size",
    "mid.ftp.max_per_target",
    "mid.ftp.max_conn_idle_time",
    "mid.filesystem.max.ls",
    // Logging
    "disable_monitors",
    "mid.show.queries",
    "disable.remote.logging",
    "disable.status",
    "mid.file_cleaner.disabled",
    "mid.eccq.max_payload_size",
    // Pattern
    "mid.parsing.max_field_size",
    "mid.sa.discovery.pattern_string_attributes.deduplicate",
    // Proxy
    "mid.instance.use_proxy",
    "mid.proxy.use_proxy",
    "mid.proxy.host",
    "mid.proxy.password",
    "mid.proxy.port",
    "mid.proxy.username",
    // Request timeouts
    "mid.sa.cloud.request_timeout",
    "mid.http_classy.request_timeout",
    // Security
    "mid.windows_host.file_permissions.allow_list",
    "mid.windows_host.file_permissions.enforce",
    "mid.httpclient.tls.verify_revoked_certificate.verify_issuer",
    "mid.ssl.bootstrap.default.check_cert_hostname",
    "mid.ssl.bootstrap.default.check_cert_chain",
    "mid.ssl.bootstrap.default.check_cert_revocation",
    "mid.ssl.bootstrap.default.target_endpoint",
    "mid.ssl.use.instance.security.policy",
    "mid.secure_encrypter",
    "mid.secure_config.provider",
    "mid.ipki.enabled",
    "mid.ipki.registration_key",
    "mid.ipki.user",
    "mid.ipki.rotation_trigger_threshold",
    "mid.inactivity.timeout.days",
    "mid.prefer_ipv6_addresses",
    // Shazzam
    "mid.shazzam.regulator.interval_ms",
    "mid.shazzam.regulator.packets_per_interval",
    "mid.shazzam.chunk_size",
    "mid.shazzam.threads",
    "mid.shazzam.max_scanners_per_thread",
    // SNMP
    "mid.snmp.request.timeout",
    "mid.snmp.session.timeout",
    "mid.snmp.use_getbulk",
    "mid.snmp.use_snmp4j",
    "mid.snmp.use_snmp_v1_v2c",
    "mid.snmp.use_snmp_v3",
    // SSH Discovery
    "mid.connection_cache",
    "mid.ssh.disable_history",
    "mid.ssh.set_path",
    "mid.ssh.local",
    "mid.ssh_connections_per_host",
    "mid.ssh.sudo_preserve_environment",
    "mid.ssh.terminal.width",
    "mid.ssh.path_override",
    "mid.ssh.use_snc",
    "mid.ssh.max_retries",
    "mid.ssh.alt_rm",
    "mid.ssh.initial_delay_ms",
    "mid.ssh.suppress_history",
    "mid.ssh.socket_timeout",
    "mid.ssh.channel_timeout",
    "mid.ssh.session_timeout",
    "mid.ssh.command_timeout_ms",
    "mid.ssh.use_keyboard_interactive",
    "mid.ssh.dh_group_length_min",
    "mid.ssh.dh_group_length_max",
    "mid.ssh.shells_supported",
    "mid.ssh.discard_lrc_error",
    "mid.ssh.pool_thread_ratio",
    "mid.ssh.disable_privilege_check",
    // Upgrade
    "mid.pinned.version",
    "mid.upgrade.use_proxy",
    "glide.mid.autoupgrade.proxy_host",
    "glide.glidesoap.proxy_host",
    "glide.mid.autoupgrade.proxy_port",
    "glide.glidesoap.proxy_port",
    "glide.mid.autoupgrade.proxy_user",
    "glide.mid.autoupgrade.proxy_password",
    // Windows Discovery
    "mid.powershell_api.session_pool.max_size",
    "mid.powershell_api.session_pool.target.max_size",
    "mid.sa.prefer_powershell",
    "mid.powershell_api.winrm.use_ssl",
    "mid.powershell_api.winrm.additional_pssesion_options",
    "mid.powershell_api.winrm.remote_https_port",
    "mid.powershell_api.winrm.remote_port",
    "mid.powershell_api.winrm.skip_ssl_cert_check",
    "mid.powershell_api.winrm.skip_ssl_cert_check_options",
    "mid.powershell.use_credentials",
    "mid.powershell.path",
    "mid.powershell.enforce_utf8",
    "mid.powershell.local_mid_service_credential_fallback",
    "mid.powershell_api.idle_session_timeout",
    "mid.powershell.command.parameter_passing",
    "mid.powershell.command.script.parameter_passing",
    "mid.windows.management_protocol",
    "mid.windows.probe_timeout",
    "mid.powershell.jea.append_username",
    "mid.powershell.jea.endpoint",
];

/// Documented families with a name of the operator's own in the middle:
/// `mid.httpclient.protocol.<protocol>.path|port|password` (mTLS).
const DOCUMENTED_FAMILIES: &[(&str, &[&str])] =
    &[("mid.httpclient.protocol.", &["path", "port", "password"])];

/// Whether ServiceNow documents parameter `name`.
pub fn is_documented(name: &str) -> bool {
    DOCUMENTED.contains(&name)
        || DOCUMENTED_FAMILIES.iter().any(|(prefix, endings)| {
            name.strip_prefix(prefix)
                .and_then(|rest| rest.rsplit_once('.'))
                .is_some_and(|(middle, ending)| !middle.is_empty() && endings.contains(&ending))
        })
}

/// The documented name `name` most likely misspells: at most a few edits
/// away (a swapped pair counts as one) and alike as a whole, so that a
/// parameter of the operator's own is not "corrected" into another.
pub fn closest(name: &str) -> Option<&'static str> {
    DOCUMENTED
        .iter()
        .map(|candidate| (strsim::damerau_levenshtein(name, candidate), *candidate))
        .filter(|(distance, candidate)| {
            *distance <= (candidate.len() / 6).clamp(1, 3)
                && strsim::jaro_winkler(name, candidate) >= 0.9
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_names_and_families() {
        assert!(is_documented("mid.instance.username"));
        assert!(is_documented("mid.proxy.use_proxy"));
        assert!(is_documented("mid.httpclient.protocol.myproto.password"));
        assert!(!is_documented("mid.httpclient.protocol..password"));
        assert!(!is_documented("mid.instanse.username"));
        let mut sorted = DOCUMENTED.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), DOCUMENTED.len(), "a name is listed twice");
    }

    #[test]
    fn typos_get_the_documented_name_and_own_names_get_none() {
        assert_eq!(
            closest("mid.instanse.username"),
            Some("mid.instance.username")
        );
        assert_eq!(
            closest("mid.instance.pasword"),
            Some("mid.instance.password")
        );
        assert_eq!(closest("mid.proxy.hots"), Some("mid.proxy.host"));
        assert_eq!(closest("mid.log.levle"), Some("mid.log.level"));
        assert_eq!(closest("mid.pinned.verison"), Some("mid.pinned.version"));
        assert_eq!(closest("mid.acme.team_contact"), None);
        assert_eq!(closest("threads.min"), None);
    }
}
