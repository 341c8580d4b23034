//! midfleet's record on each host (`.midfleet/state.json` and
//! `.midfleet/config.after`), which makes runs idempotent although the MID
//! replaces the plaintext password midfleet wrote with an `encrypted:`
//! value of its own.
//!
//! For each sensitive parameter midfleet wrote, the record keeps a salted
//! Argon2id hash of the value — never the value — and `config.after` keeps
//! config.xml as it was once the MID had started, so the `encrypted:` value
//! the MID made of midfleet's plaintext can be recognised later. A value in
//! the file that is neither the desired plaintext nor what the MID made of
//! it was changed outside midfleet. `docs/state.md` justifies the hash cost.

use std::collections::BTreeMap;
use std::io::Read;

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The record's format; a newer one is refused, not misread.
pub const FORMAT: u32 = 1;

/// Argon2id memory in KiB, passes and lanes. Sized so that hashing costs
/// well under a millisecond per host (the plan's budget is ≤ 3 ms of client
/// CPU per host, 2 of which the SSH floor takes), with memory enough that
/// guessing costs an attacker real RAM per try. See `docs/state.md`.
pub const MEMORY_KIB: u32 = 256;
pub const PASSES: u32 = 2;
pub const LANES: u32 = 1;
const OUTPUT: usize = 32;

/// Why a value cannot be hashed, or a record is not usable.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read /dev/urandom: {0}")]
    Random(std::io::Error),
    /// A record asks for more memory, passes or lanes than midfleet spends.
    #[error("the recorded hash cost is out of range")]
    CostOutOfRange,
    #[error("{0}")]
    Hash(argon2::Error),
    #[error("state.json: {0}")]
    Json(serde_json::Error),
    #[error("state.json has format {found}, this midfleet reads {FORMAT}")]
    Format { found: u32 },
}

/// A salted hash of a secret value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaltedHash {
    pub algorithm: String,
    pub memory_kib: u32,
    pub passes: u32,
    pub lanes: u32,
    pub salt: String,
    pub hash: String,
}

impl SaltedHash {
    /// Hashes `value` with a fresh random salt.
    pub fn new(value: &str) -> Result<SaltedHash, StateError> {
        let mut salt = [0u8; 16];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut random| random.read_exact(&mut salt))
            .map_err(StateError::Random)?;
        let hash = compute(value, &salt, MEMORY_KIB, PASSES, LANES)?;
        let encoding = base64::engine::general_purpose::STANDARD_NO_PAD;
        Ok(SaltedHash {
            algorithm: "argon2id".into(),
            memory_kib: MEMORY_KIB,
            passes: PASSES,
            lanes: LANES,
            salt: encoding.encode(salt),
            hash: encoding.encode(hash.as_slice()),
        })
    }

    /// Whether `value` is the value this hash was made from.
    pub fn matches(&self, value: &str) -> bool {
        if self.algorithm != "argon2id" {
            return false;
        }
        let encoding = base64::engine::general_purpose::STANDARD_NO_PAD;
        let (Ok(salt), Ok(expected)) = (encoding.decode(&self.salt), encoding.decode(&self.hash))
        else {
            return false;
        };
        match compute(value, &salt, self.memory_kib, self.passes, self.lanes) {
            // Not secret-dependent timing worth guarding: both sides are
            // the operator's; still, compare without early exit.
            Ok(actual) => {
                actual.len() == expected.len()
                    && actual
                        .iter()
                        .zip(&expected)
                        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                        == 0
            }
            Err(_) => false,
        }
    }
}

fn compute(
    value: &str,
    salt: &[u8],
    memory_kib: u32,
    passes: u32,
    lanes: u32,
) -> Result<Zeroizing<Vec<u8>>, StateError> {
    // Refuse absurd costs from a tampered record rather than spend them.
    if memory_kib > 64 * 1024 || passes > 16 || lanes > 4 {
        return Err(StateError::CostOutOfRange);
    }
    let params = Params::new(memory_kib, passes, lanes, Some(OUTPUT)).map_err(StateError::Hash)?;
    let mut output = Zeroizing::new(vec![0u8; OUTPUT]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(value.as_bytes(), salt, &mut output)
        .map_err(StateError::Hash)?;
    Ok(output)
}

/// `.midfleet/state.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRecord {
    pub format: u32,
    /// The run that wrote it.
    pub run: String,
    /// For each sensitive parameter midfleet wrote (canonical name), the
    /// salted hash of the value it wrote.
    pub written: BTreeMap<String, SaltedHash>,
    /// The last rotation (`rotate:`): when, and to which user. Never a
    /// secret. Absent in records of hosts never rotated (and in records
    /// written before rotations existed: the format stays 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<RotationRecord>,
}

/// When a host's credentials last rotated, and to which user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationRecord {
    /// RFC 3339, UTC, to the second.
    pub at: String,
    pub user: String,
    /// The user it left, to be retired (also by a later run, when the run
    /// that rotated ended before it could).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// **Test hook.** `MIDFLEET_NOW=2027-02-01T00:00:00Z` makes midfleet take
/// that instant as "now" for rotation ages (`plan`) and the rotation times
/// it records (`apply`), so tests can move the clock past `max_age`. Not
/// for production: a wrong "now" rotates too early or too late.
pub const NOW_VARIABLE: &str = "MIDFLEET_NOW";

/// Now, in seconds since the epoch: [`NOW_VARIABLE`] when set, else the
/// system clock. `Err` names the variable when it is not RFC 3339.
pub fn now_seconds() -> Result<u64, String> {
    match std::env::var(NOW_VARIABLE) {
        Ok(text) => parse_rfc3339(&text).ok_or_else(|| {
            format!("{NOW_VARIABLE} (a test hook) must be a UTC time like 2027-02-01T00:00:00Z")
        }),
        Err(_) => Ok(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs())),
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` (what [`crate::report::rfc3339`] writes) as
/// seconds since the epoch.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let bytes = text.trim().as_bytes();
    if bytes.len() != 20 || bytes[4] != b'-' || bytes[7] != b'-' || bytes[10] != b'T' {
        return None;
    }
    if bytes[13] != b':' || bytes[16] != b':' || bytes[19] != b'Z' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = std::str::from_utf8(&bytes[range]).ok()?;
        part.bytes()
            .all(|byte| byte.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1..=12).contains(&month)
        || !(1..=month_days).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second;
    u64::try_from(seconds).ok()
}

impl StateRecord {
    /// Parses a record; `Err` says why it is not usable (it is then
    /// ignored, and sensitive values are rewritten once).
    pub fn parse(bytes: &[u8]) -> Result<StateRecord, StateError> {
        let record: StateRecord = serde_json::from_slice(bytes).map_err(StateError::Json)?;
        if record.format != FORMAT {
            return Err(StateError::Format {
                found: record.format,
            });
        }
        Ok(record)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_matches_its_value_only() {
        let hash = SaltedHash::new("s3cr3t & <x>").unwrap();
        assert!(hash.matches("s3cr3t & <x>"));
        assert!(!hash.matches("s3cr3t & <y>"));
        let again = SaltedHash::new("s3cr3t & <x>").unwrap();
        assert_ne!(hash.salt, again.salt, "salts are random");
        assert_ne!(hash.hash, again.hash);
        let json = serde_json::to_string(&hash).unwrap();
        assert!(!json.contains("s3cr3t"));
    }

    #[test]
    fn records_written_before_keep_matching() {
        // Argon2id, 256 KiB, 2 passes, 1 lane, from an independent
        // implementation (Python's argon2-cffi, `hash_secret_raw`): a
        // change of the argon2 crate must not orphan the records on hosts.
        let record = SaltedHash {
            algorithm: "argon2id".into(),
            memory_kib: 256,
            passes: 2,
            lanes: 1,
            salt: "bWlkZmxlZXQtc2FsdC0xNg".into(),
            hash: "r1B/8+DGALl4ekQKFX1jgyB8z5DExXtU1DAKT/+XkPM".into(),
        };
        assert!(record.matches("s3cr3t & <x>"));
        assert!(!record.matches("s3cr3t & <y>"));
    }

    #[test]
    fn rfc3339_round_trips() {
        for seconds in [0, 951_782_400, 1_795_000_000, 4_102_444_799] {
            let text = crate::report::rfc3339(seconds);
            assert_eq!(parse_rfc3339(&text), Some(seconds), "{text}");
        }
        for bad in [
            "2027-02-01",
            "2027-13-01T00:00:00Z",
            "2027-02-01T00:00:00+01:00",
            "x",
            // Days a month does not have: not silently the next month.
            "2027-02-31T00:00:00Z",
            "2027-02-29T00:00:00Z",
            "2027-04-31T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        assert!(
            parse_rfc3339("2028-02-29T00:00:00Z").is_some(),
            "a leap day"
        );
        assert!(
            parse_rfc3339("2000-02-29T00:00:00Z").is_some(),
            "a leap day"
        );
    }

    #[test]
    fn a_rotation_record_is_optional_and_holds_no_secret() {
        let old = br#"{"format": 1, "run": "r", "written": {}}"#;
        assert_eq!(StateRecord::parse(old).unwrap().rotation, None);
        let record = StateRecord {
            format: FORMAT,
            run: "r".into(),
            written: BTreeMap::new(),
            rotation: Some(RotationRecord {
                at: "2027-02-01T00:00:00Z".into(),
                user: "svc_b".into(),
                from: Some("svc_a".into()),
            }),
        };
        let again = StateRecord::parse(record.to_json().as_bytes()).unwrap();
        assert_eq!(again, record);
    }

    #[test]
    fn tampered_records_do_not_match_or_cost() {
        let mut hash = SaltedHash::new("v").unwrap();
        hash.memory_kib = u32::MAX;
        assert!(!hash.matches("v"));
        let mut hash = SaltedHash::new("v").unwrap();
        hash.salt = "!!".into();
        assert!(!hash.matches("v"));
        assert!(StateRecord::parse(b"{\"format\": 9, \"run\": \"x\", \"written\": {}}").is_err());
        assert!(StateRecord::parse(b"garbage").is_err());
    }
}
