//! `encrypted:` values, sealed with the keystore's key:
//!
//! ```text
//! encrypted:<base64( nonce[16] || ciphertext || tag[16] )>
//! keystream block i = SHA-256(key || nonce || i as u64 big-endian), i = 0, 1, …
//! ciphertext        = plaintext XOR keystream
//! tag               = SHA-256(key || nonce || plaintext)[..16]
//! ```
//!
//! Not a real cipher's strength, only its behaviour: a value opens with the
//! key that sealed it and with no other.

use std::fmt;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::keystore::Key;
use super::{base64, random};

pub const PREFIX: &str = "encrypted:";
const NONCE_BYTES: usize = 16;
const TAG_BYTES: usize = 16;

/// Why an `encrypted:` value did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecryptError {
    NotEncrypted,
    NotBase64,
    TooShort,
    /// The tag does not match: another key sealed it, or it was altered.
    WrongKey,
    NotUtf8,
}

impl fmt::Display for DecryptError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            DecryptError::NotEncrypted => "the value has no `encrypted:` prefix",
            DecryptError::NotBase64 => "the value is not base64",
            DecryptError::TooShort => "the value is too short to hold a nonce and a tag",
            DecryptError::WrongKey => {
                "the value was not sealed with this keystore's key (or was altered)"
            }
            DecryptError::NotUtf8 => "the decrypted value is not UTF-8",
        })
    }
}

/// Seals `plaintext` under a fresh random nonce.
pub fn encrypt(key: &Key, plaintext: &str) -> std::io::Result<String> {
    Ok(encrypt_with_nonce(
        key,
        &random::bytes::<NONCE_BYTES>()?,
        plaintext,
    ))
}

fn encrypt_with_nonce(key: &Key, nonce: &[u8; NONCE_BYTES], plaintext: &str) -> String {
    let mut sealed = Zeroizing::new(Vec::with_capacity(
        NONCE_BYTES + plaintext.len() + TAG_BYTES,
    ));
    sealed.extend_from_slice(nonce);
    sealed.extend_from_slice(plaintext.as_bytes());
    apply_keystream(key, nonce, &mut sealed[NONCE_BYTES..]);
    sealed.extend_from_slice(&tag(key, nonce, plaintext.as_bytes()));
    format!("{PREFIX}{}", base64::encode(&sealed))
}

/// Opens an `encrypted:` value.
pub fn decrypt(key: &Key, value: &str) -> Result<Zeroizing<String>, DecryptError> {
    let encoded = value
        .trim()
        .strip_prefix(PREFIX)
        .ok_or(DecryptError::NotEncrypted)?;
    let sealed = base64::decode(encoded).ok_or(DecryptError::NotBase64)?;
    if sealed.len() < NONCE_BYTES + TAG_BYTES {
        return Err(DecryptError::TooShort);
    }
    let (nonce, rest) = sealed.split_at(NONCE_BYTES);
    let (ciphertext, expected_tag) = rest.split_at(rest.len() - TAG_BYTES);
    let mut plaintext = Zeroizing::new(ciphertext.to_vec());
    apply_keystream(key, nonce, &mut plaintext);
    let actual_tag = tag(key, nonce, &plaintext);
    // Compare every byte, whatever the first difference.
    let difference = actual_tag
        .iter()
        .zip(expected_tag)
        .fold(0u8, |difference, (left, right)| difference | (left ^ right));
    if difference != 0 {
        return Err(DecryptError::WrongKey);
    }
    let text = std::str::from_utf8(&plaintext).map_err(|_| DecryptError::NotUtf8)?;
    Ok(Zeroizing::new(text.to_string()))
}

fn apply_keystream(key: &Key, nonce: &[u8], data: &mut [u8]) {
    for (counter, chunk) in data.chunks_mut(32).enumerate() {
        let block = Sha256::new()
            .chain_update(key.bytes())
            .chain_update(nonce)
            .chain_update((counter as u64).to_be_bytes())
            .finalize();
        for (byte, keystream) in chunk.iter_mut().zip(block.iter()) {
            *byte ^= keystream;
        }
    }
}

fn tag(key: &Key, nonce: &[u8], plaintext: &[u8]) -> [u8; TAG_BYTES] {
    let digest = Sha256::new()
        .chain_update(key.bytes())
        .chain_update(nonce)
        .chain_update(plaintext)
        .finalize();
    let mut tag = [0u8; TAG_BYTES];
    tag.copy_from_slice(&digest[..TAG_BYTES]);
    tag
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> Key {
        Key::from_bytes([byte; 32])
    }

    #[test]
    fn round_trips_values_of_every_length() {
        let key = key(1);
        for length in [0, 1, 31, 32, 33, 64, 100] {
            let plaintext: String = "pä&<\"ß".chars().cycle().take(length).collect();
            let sealed = encrypt(&key, &plaintext).expect("urandom");
            assert!(sealed.starts_with(PREFIX));
            if length >= 8 {
                assert!(!sealed.contains(&plaintext), "{sealed}");
            }
            assert_eq!(decrypt(&key, &sealed).expect("opens").as_str(), plaintext);
        }
    }

    #[test]
    fn a_fresh_nonce_each_time() {
        let key = key(1);
        let first = encrypt(&key, "secret").expect("urandom");
        let second = encrypt(&key, "secret").expect("urandom");
        assert_ne!(first, second);
    }

    #[test]
    fn another_key_does_not_open_it() {
        let sealed = encrypt(&key(1), "secret").expect("urandom");
        assert_eq!(
            decrypt(&key(2), &sealed).err(),
            Some(DecryptError::WrongKey)
        );
    }

    /// The layout is fixed by the module docs: check it against SHA-256
    /// computed here by hand, so that the lab can seal values itself.
    #[test]
    fn layout_keystream_and_tag() {
        let key = key(9);
        let nonce = [3u8; NONCE_BYTES];
        let plaintext = "p".repeat(40);
        let sealed = encrypt_with_nonce(&key, &nonce, &plaintext);
        let bytes = base64::decode(sealed.strip_prefix(PREFIX).expect("prefix")).expect("b64");
        assert_eq!(bytes.len(), NONCE_BYTES + 40 + TAG_BYTES);
        assert_eq!(&bytes[..NONCE_BYTES], &nonce);
        let block = |counter: u64| {
            let mut input = vec![9u8; 32];
            input.extend_from_slice(&nonce);
            input.extend_from_slice(&counter.to_be_bytes());
            Sha256::digest(&input)
        };
        let (first, second) = (block(0), block(1));
        assert_eq!(bytes[NONCE_BYTES], b'p' ^ first[0]);
        assert_eq!(bytes[NONCE_BYTES + 32], b'p' ^ second[0]);
        let mut tag_input = vec![9u8; 32];
        tag_input.extend_from_slice(&nonce);
        tag_input.extend_from_slice(plaintext.as_bytes());
        assert_eq!(
            &bytes[NONCE_BYTES + 40..],
            &Sha256::digest(&tag_input)[..16]
        );
    }

    #[test]
    fn an_altered_value_does_not_open() {
        let key = key(1);
        let sealed = encrypt_with_nonce(&key, &[0; NONCE_BYTES], "secret");
        let mut bytes = base64::decode(&sealed[PREFIX.len()..]).expect("b64");
        for index in [0, NONCE_BYTES, bytes.len() - 1] {
            bytes[index] ^= 1;
            let altered = format!("{PREFIX}{}", base64::encode(&bytes));
            assert_eq!(decrypt(&key, &altered).err(), Some(DecryptError::WrongKey));
            bytes[index] ^= 1;
        }
    }

    #[test]
    fn malformed_values() {
        let key = key(1);
        let cases = [
            ("secret", DecryptError::NotEncrypted),
            ("encrypted:not base64!", DecryptError::NotBase64),
            // The shipped fixture's placeholder: 16 bytes, no room for a tag.
            ("encrypted:QUJDREVGR0hJSktMTU5PUA==", DecryptError::TooShort),
        ];
        for (value, error) in cases {
            assert_eq!(decrypt(&key, value).err(), Some(error), "{value}");
        }
    }
}
