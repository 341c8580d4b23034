//! Vaulted texts made by the real `ansible-vault` (ansible-core 2.19),
//! decrypted here; the passwords are in the tests.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::keyring::is_client_script_for_tests;
use super::*;

const PW1: &str = "correct horse";
const PW2: &str = "battery staple";

/// `ansible-vault encrypt_string --vault-password-file PW1 'S3cret-MID!'`
pub(crate) const V11: &str = "\
$ANSIBLE_VAULT;1.1;AES256
39353066306233666431333064666363303761626439326166313836363864333635616236333338
3563666365376237626233653265383535616535323864350a636335663936386330666632623338
32383361323062383061336138396462316438363632376564356462373061663339373131353430
3764616564343166350a303961316163386364373461373833343130353136623737626233303665
6231
";

/// `ansible-vault encrypt_string --vault-id prod@PW2 'prod-pass'`
pub(crate) const V12_PROD: &str = "\
$ANSIBLE_VAULT;1.2;AES256;prod
32643363353331386166303934633332376464313234623238646261333764366634333934396362
3465626432393033393333376162616134646635653832650a353736343239663439373866323064
62643933346633383733353962383464376365646631646639356634326362616436363039633634
3931623466636532340a336537343431346434386665616466363639376233383335663834306539
6339
";

/// `ansible-vault encrypt --vault-password-file PW1` of `mid_password: from-file\nother: 5\n`
pub(crate) const FILE_V11: &str = "\
$ANSIBLE_VAULT;1.1;AES256
61373931303564636336656265653432666238343032373239393234653734643430363863313065
3764303361326235643236333231386538313139376133350a616663366534303463653036343165
65313334333639626532343738656239306630353237396637373361643032613730663562313538
6535323562336261630a616165383661326239623033323639343530646433666134643237333035
62363566633562393961666632616238613036326434613161623666363131363337616433313134
6137313461366339633361313765626233326135333937363462
";

/// `ansible-vault encrypt --vault-password-file PW1` of the 16 bytes `0123456789abcdef` (a whole block of padding)
const BLOCK_V11: &str = "\
$ANSIBLE_VAULT;1.1;AES256
66333561373665363865313964663437393437643164333839386336393263336332323536363234
3334333034353064366330393736653939333663343938340a383563363039383761343731316231
65346365363036393739303562656562376233656333353738653635386536633236316230326535
6230336531643335660a626265366438633833633364343536653436343133646562656533646162
62623862623034326233663561396662653535343936656361653138373532366464
";

fn write(folder: &Path, name: &str, contents: &str, mode: u32) -> PathBuf {
    let path = folder.join(name);
    std::fs::write(&path, contents).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn keyring(ids: &[&str]) -> Keyring {
    Keyring::new(VaultIds::from_settings(&VaultSettings {
        vault_ids: ids.iter().map(|id| id.to_string()).collect(),
        ..VaultSettings::default()
    }))
}

struct Passwords {
    _folder: tempfile::TempDir,
    pw1: String,
    pw2: String,
    wrong: String,
}

fn passwords() -> Passwords {
    let folder = tempfile::tempdir().unwrap();
    let path = |name: &str, contents: &str| {
        write(folder.path(), name, contents, 0o600)
            .display()
            .to_string()
    };
    Passwords {
        pw1: path("pw1", &format!("{PW1}\n")),
        pw2: path("pw2", PW2),
        wrong: path("wrong", "not it\n"),
        _folder: folder,
    }
}

fn plaintext(keyring: &Keyring, text: &str) -> Result<String, VaultError> {
    reveal(text, keyring).map(|value| value.expose().to_string())
}

#[test]
fn format_1_1_and_1_2_decrypt_with_the_right_password() {
    let pw = passwords();
    let keyring = keyring(&[&pw.pw1, &format!("prod@{}", pw.pw2)]);
    assert_eq!(plaintext(&keyring, V11).unwrap(), "S3cret-MID!");
    assert_eq!(plaintext(&keyring, V12_PROD).unwrap(), "prod-pass");
    assert_eq!(
        plaintext(&keyring, FILE_V11).unwrap(),
        "mid_password: from-file\nother: 5\n"
    );
    // A plaintext of whole blocks carries a whole block of padding.
    assert_eq!(plaintext(&keyring, BLOCK_V11).unwrap(), "0123456789abcdef");
    // Indented as a `!vault |` block is, and with CRLF line ends.
    let indented: String = V11.lines().map(|line| format!("   {line}\r\n")).collect();
    assert_eq!(plaintext(&keyring, &indented).unwrap(), "S3cret-MID!");
}

#[test]
fn a_vault_id_label_is_not_needed_to_decrypt_as_in_ansible() {
    // Ansible tries every password after the matching label's: a 1.2 text
    // opens with a password given without a label, and a 1.1 text with a
    // labelled one.
    let pw = passwords();
    let keyring = keyring(&[&pw.pw2, &format!("other@{}", pw.pw1)]);
    assert_eq!(plaintext(&keyring, V12_PROD).unwrap(), "prod-pass");
    assert_eq!(plaintext(&keyring, V11).unwrap(), "S3cret-MID!");
}

#[test]
fn the_password_of_the_texts_label_is_tried_first_then_the_others_in_order() {
    let pw = passwords();
    let keyring = keyring(&[
        &format!("a@{}", pw.wrong),
        &format!("prod@{}", pw.wrong),
        &format!("b@{}", pw.wrong),
    ]);
    let error = plaintext(&keyring, V12_PROD).unwrap_err();
    assert_eq!(
        error,
        VaultError::NoMatch {
            vault_id: Some("prod".into()),
            tried: vec!["`prod`".into(), "`a`".into(), "`b`".into()],
        }
    );
    let message = error.to_string();
    assert!(message.contains("vault id `prod`"), "{message}");
    // ANSIBLE_VAULT_ID_MATCH: only the label's own passwords.
    let mut ids = VaultIds::from_settings(&VaultSettings {
        vault_ids: vec![format!("a@{}", pw.pw2), format!("prod@{}", pw.wrong)],
        id_match: true,
        ..VaultSettings::default()
    });
    let only_label = Keyring::new(ids.clone());
    assert!(matches!(
        plaintext(&only_label, V12_PROD),
        Err(VaultError::NoMatch { tried, .. }) if tried == vec!["`prod`".to_string()]
    ));
    ids.id_match = false;
    assert_eq!(
        plaintext(&Keyring::new(ids), V12_PROD).unwrap(),
        "prod-pass"
    );
}

#[test]
fn a_wrong_password_is_refused_without_showing_anything_secret() {
    let pw = passwords();
    let keyring = keyring(&[&pw.wrong]);
    let error = plaintext(&keyring, V11).unwrap_err();
    assert_eq!(
        error,
        VaultError::NoMatch {
            vault_id: None,
            tried: vec!["`default`".into()],
        }
    );
    let message = format!("{error} {error:?} {}", error.hint());
    for secret in ["S3cret", PW1, "not it"] {
        assert!(!message.contains(secret), "{message}");
    }
}

#[test]
fn no_password_given_is_its_own_error() {
    assert_eq!(
        plaintext(&Keyring::default(), V12_PROD).unwrap_err(),
        VaultError::NoPassword {
            vault_id: Some("prod".into())
        }
    );
}

#[test]
fn a_tampered_text_fails_its_hmac_before_decryption() {
    let pw = passwords();
    let keyring = keyring(&[&pw.pw1]);
    // Flip one hex digit of the body's last line (the ciphertext's
    // hexlified hex): the HMAC no longer matches.
    let mut lines: Vec<String> = V11.lines().map(str::to_string).collect();
    let last = lines.last_mut().unwrap();
    let flipped = if last.ends_with('1') { '2' } else { '1' };
    last.pop();
    last.push(flipped);
    let tampered = lines.join("\n");
    assert!(matches!(
        plaintext(&keyring, &tampered),
        Err(VaultError::NoMatch { .. })
    ));
    // The HMAC itself altered: the same.
    let body = hex_body(V11);
    let mut fields: Vec<String> = body.split('\n').map(str::to_string).collect();
    fields[1] = format!("{}00", &fields[1][..fields[1].len() - 2]);
    let rebuilt = rebuild("$ANSIBLE_VAULT;1.1;AES256", &fields.join("\n"));
    assert!(matches!(
        plaintext(&keyring, &rebuilt),
        Err(VaultError::NoMatch { .. })
    ));
}

/// The body of a vaulted text unhexlified: `salt\nhmac\nciphertext` (hex).
fn hex_body(text: &str) -> String {
    let joined: String = text.lines().skip(1).collect();
    let bytes: Vec<u8> = (0..joined.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&joined[at..at + 2], 16).unwrap())
        .collect();
    String::from_utf8(bytes).unwrap()
}

fn rebuild(header: &str, body: &str) -> String {
    let hex: String = body.bytes().map(|byte| format!("{byte:02x}")).collect();
    format!("{header}\n{hex}\n")
}

#[test]
fn malformed_envelopes_are_refused_as_such() {
    let pw = passwords();
    let keyring = keyring(&[&pw.pw1]);
    let body = hex_body(V11);
    let fields: Vec<&str> = body.split('\n').collect();
    let cases: Vec<(String, &str)> = vec![
        // Truncated: the last line gone leaves a ciphertext that is not
        // whole blocks, or an odd number of digits.
        (
            V11.lines().take(5).collect::<Vec<_>>().join("\n"),
            "not a whole number",
        ),
        (
            format!("{}\n", &V11.trim_end()[..V11.trim_end().len() - 1]),
            "odd number",
        ),
        (V11.replacen("3935", "zz35", 1), "not a hex digit"),
        (V11.replace("1.1", "1.0"), "format version `1.0`"),
        (V11.replace("AES256", "AES"), "cipher `AES`"),
        (
            V11.replace("1.1;AES256", "1.2;AES256"),
            "number of `;` fields",
        ),
        (V12_PROD.replace(";prod", ";"), "empty vault id"),
        ("$ANSIBLE_VAULT;1.1;AES256\n".to_string(), "three lines"),
        (
            rebuild(
                "$ANSIBLE_VAULT;1.1;AES256",
                &format!("{}\n{}", fields[0], fields[1]),
            ),
            "three lines",
        ),
        (
            rebuild(
                "$ANSIBLE_VAULT;1.1;AES256",
                &format!("{}\n{}ab\n{}", fields[0], fields[1], fields[2]),
            ),
            "not 32 bytes",
        ),
        ("not a vault".to_string(), "does not start"),
    ];
    for (text, expected) in cases {
        let error = plaintext(&keyring, &text).unwrap_err();
        assert!(
            matches!(error, VaultError::Format(_)) && error.to_string().contains(expected),
            "{expected}: {error}"
        );
    }
    let huge = format!("$ANSIBLE_VAULT;1.1;AES256\n{}", "0".repeat(MAX_VAULT_TEXT));
    assert!(matches!(
        plaintext(&keyring, &huge),
        Err(VaultError::TooLarge { .. })
    ));
}

#[test]
fn password_scripts_run_as_ansible_runs_them() {
    let folder = tempfile::tempdir().unwrap();
    // A plain script: no arguments; stdout's line ends stripped.
    let plain = write(
        folder.path(),
        "pass.sh",
        &format!("#!/bin/sh\n[ $# -eq 0 ] || exit 9\nprintf '%s\\r\\n' '{PW2}'\n"),
        0o700,
    );
    // A client script: `--vault-id LABEL`, answering for its label.
    let client = write(
        folder.path(),
        "vault-client.py",
        &format!(
            "#!/bin/sh\n[ \"$1\" = --vault-id ] || exit 9\ncase \"$2\" in prod) echo '{PW2}';; default) echo '{PW1}';; *) exit 2;; esac\n"
        ),
        0o700,
    );
    assert!(is_client_script_for_tests(&client));
    assert!(!is_client_script_for_tests(&plain));
    let keyring_plain = keyring(&[&format!("prod@{}", plain.display())]);
    assert_eq!(plaintext(&keyring_plain, V12_PROD).unwrap(), "prod-pass");
    let keyring_client = keyring(&[
        &format!("prod@{}", client.display()),
        &format!("default@{}", client.display()),
    ]);
    assert_eq!(plaintext(&keyring_client, V12_PROD).unwrap(), "prod-pass");
    assert_eq!(plaintext(&keyring_client, V11).unwrap(), "S3cret-MID!");
    // A source that fails is a warning when another works; all failing,
    // the text cannot be opened and the warnings say why.
    let failing = keyring(&[
        &format!("nope@{}", client.display()),
        &format!("prod@{}", plain.display()),
    ]);
    assert_eq!(plaintext(&failing, V12_PROD).unwrap(), "prod-pass");
    let warnings = failing.take_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].message.contains("`nope`"), "{warnings:?}");
    let missing = keyring(&[&folder.path().join("absent").display().to_string()]);
    assert!(matches!(
        plaintext(&missing, V11),
        Err(VaultError::NoPasswordLoaded { .. })
    ));
    assert!(missing.take_warnings()[0].message.contains("absent"));
}

#[test]
fn password_files_get_the_bounds_of_secret_files() {
    let folder = tempfile::tempdir().unwrap();
    let open = write(folder.path(), "pw", &format!("  {PW1}  \n"), 0o644);
    let readable = keyring(&[&open.display().to_string()]);
    assert_eq!(plaintext(&readable, V11).unwrap(), "S3cret-MID!");
    let warnings = readable.take_warnings();
    assert!(
        warnings
            .iter()
            .any(|warning| warning.message.contains("readable by group or others")),
        "{warnings:?}"
    );
    let big = write(folder.path(), "big", &"x".repeat(70 * 1024), 0o600);
    let fifo = folder.path().join("fifo");
    assert_eq!(
        unsafe {
            libc::mkfifo(
                std::ffi::CString::new(fifo.to_str().unwrap())
                    .unwrap()
                    .as_ptr(),
                0o600,
            )
        },
        0
    );
    let empty = write(folder.path(), "empty", " \n", 0o600);
    for (path, reason) in [
        (big, "larger than 64 KiB"),
        (fifo, "a FIFO"),
        (empty, "empty"),
    ] {
        let refused = keyring(&[&path.display().to_string()]);
        assert!(matches!(
            plaintext(&refused, V11),
            Err(VaultError::NoPasswordLoaded { .. })
        ));
        let warnings = refused.take_warnings();
        assert!(
            warnings
                .iter()
                .any(|warning| warning.message.contains(reason)),
            "{reason}: {warnings:?}"
        );
    }
}

#[test]
fn vault_id_options_are_parsed_as_ansible_splits_them() {
    let parse = |text: &str| VaultId::parse(text, "--vault-id");
    assert_eq!(
        parse("prod@/run/pw").unwrap(),
        VaultId {
            label: Some("prod".into()),
            source: PasswordSource::File("/run/pw".into()),
            given_by: "--vault-id".into(),
        }
    );
    assert_eq!(parse("/run/p@ss").unwrap().label.as_deref(), Some("/run/p"));
    assert_eq!(parse("/run/pw").unwrap().label, None);
    assert_eq!(parse("dev@prompt").unwrap().source, PasswordSource::Prompt);
    assert_eq!(parse("prompt").unwrap().source, PasswordSource::Prompt);
    for bad in ["@/run/pw", "prod@", "", "a b@x"] {
        assert!(parse(bad).is_err(), "{bad}");
    }
    let ids = VaultIds::from_settings(&VaultSettings {
        identity_list: vec!["list@/a".into()],
        vault_ids: vec!["cli@/b".into()],
        password_files: vec!["/c".into()],
        default_password_file: Some(("/d".into(), "ANSIBLE_VAULT_PASSWORD_FILE".into())),
        ask_vault_pass: true,
        ..VaultSettings::default()
    });
    let order: Vec<(Option<&str>, &str)> = ids
        .ids
        .iter()
        .map(|id| (id.label.as_deref(), id.given_by.as_str()))
        .collect();
    assert_eq!(
        order,
        [
            (Some("list"), "ANSIBLE_VAULT_IDENTITY_LIST"),
            (Some("cli"), "--vault-id"),
            (Some("default"), "--vault-password-file"),
            (Some("default"), "ANSIBLE_VAULT_PASSWORD_FILE"),
            (Some("default"), "--ask-vault-pass"),
        ]
    );
}

#[test]
fn decrypted_values_stay_secret_in_debug() {
    let pw = passwords();
    let keyring = keyring(&[&pw.pw1]);
    let value = reveal(V11, &keyring).unwrap();
    assert_eq!(format!("{value:?} {value}"), "(sensitive) (sensitive)");
    assert!(!format!("{keyring:?}").contains("correct"));
}

/// A password script anyone may change is not run (it would run as
/// midfleet's user and could print any password, or do anything else).
#[test]
fn a_password_script_anyone_may_change_is_not_run() {
    let folder = tempfile::tempdir().unwrap();
    let marker = folder.path().join("ran");
    let script = write(
        folder.path(),
        "pass.sh",
        &format!(
            "#!/bin/sh\ntouch {}\nprintf '%s\\n' '{PW2}'\n",
            marker.display()
        ),
        0o777,
    );
    let open = keyring(&[&format!("prod@{}", script.display())]);
    assert!(plaintext(&open, V12_PROD).is_err());
    assert!(!marker.exists(), "the script was run");
    let warnings = open.take_warnings();
    assert!(
        warnings
            .iter()
            .any(|warning| warning.message.contains("anyone may change it")),
        "{warnings:?}"
    );
}
