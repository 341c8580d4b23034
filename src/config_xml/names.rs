//! What midfleet knows about parameter names: the `glide.glidesoap.*`
//! aliases of the instance credentials, which names hold passwords, and
//! which parameters the MID writes itself.

/// The instance user a MID logs in as.
pub const USERNAME: &str = "mid.instance.username";
/// The instance user's password.
pub const PASSWORD: &str = "mid.instance.password";
/// Older spelling of [`USERNAME`].
pub const GLIDESOAP_USERNAME: &str = "glide.glidesoap.username";
/// Older spelling of [`PASSWORD`].
pub const GLIDESOAP_PASSWORD: &str = "glide.glidesoap.password";
/// Ties config.xml to the keystore; the MID writes a new one when missing.
pub const KEY_PAIR_ID: &str = "keypairs.mid_id";
/// The MID's `ecc_agent` sys_id, written by the MID.
pub const MID_SYS_ID: &str = "mid_sys_id";

/// Parameters the MID writes itself.
pub const WRITTEN_BY_MID: [&str; 2] = [KEY_PAIR_ID, MID_SYS_ID];

/// The name midfleet uses for `name`: aliases map to `mid.instance.*`,
/// every other name to itself.
pub fn canonical(name: &str) -> &str {
    match name {
        GLIDESOAP_USERNAME => USERNAME,
        GLIDESOAP_PASSWORD => PASSWORD,
        other => other,
    }
}

/// Whether two spellings name the same parameter.
pub fn same_parameter(left: &str, right: &str) -> bool {
    canonical(left) == canonical(right)
}

/// The spelling of `name` in the family of spellings `spelling_in_file`
/// belongs to: asked to add `mid.instance.password` to a file that spells
/// the user `glide.glidesoap.username`, midfleet writes
/// `glide.glidesoap.password`.
pub fn spelled_like<'a>(name: &'a str, spelling_in_file: &str) -> &'a str {
    let uses_glidesoap = spelling_in_file.starts_with("glide.glidesoap.");
    match (canonical(name), uses_glidesoap) {
        (USERNAME, true) => GLIDESOAP_USERNAME,
        (PASSWORD, true) => GLIDESOAP_PASSWORD,
        (USERNAME, false) => USERNAME,
        (PASSWORD, false) => PASSWORD,
        _ => name,
    }
}

/// Whether a parameter of this name holds a password: the instance password
/// (either spelling) or any parameter whose last dotted segment says
/// `password` (`mid.proxy.password`, …). Such values are never shown, and a
/// parameter midfleet adds under such a name gets `secure="true"`.
pub fn is_password(name: &str) -> bool {
    let last_segment = name.rsplit('.').next().unwrap_or(name);
    canonical(name) == PASSWORD || last_segment.to_ascii_lowercase().contains("password")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_the_same_parameter() {
        assert!(same_parameter(GLIDESOAP_USERNAME, USERNAME));
        assert!(same_parameter(PASSWORD, GLIDESOAP_PASSWORD));
        assert!(!same_parameter(USERNAME, PASSWORD));
        assert!(same_parameter("url", "url"));
    }

    #[test]
    fn added_names_follow_the_files_spelling() {
        assert_eq!(
            spelled_like(PASSWORD, GLIDESOAP_USERNAME),
            GLIDESOAP_PASSWORD
        );
        assert_eq!(spelled_like(GLIDESOAP_PASSWORD, USERNAME), PASSWORD);
        assert_eq!(spelled_like("url", GLIDESOAP_USERNAME), "url");
    }

    #[test]
    fn password_names() {
        for name in [
            PASSWORD,
            GLIDESOAP_PASSWORD,
            "mid.proxy.password",
            "x.Password_2",
        ] {
            assert!(is_password(name), "{name}");
        }
        for name in [USERNAME, "url", "password.policy.url", KEY_PAIR_ID] {
            assert!(!is_password(name), "{name}");
        }
    }
}
