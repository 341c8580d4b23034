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
