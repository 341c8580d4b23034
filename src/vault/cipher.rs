//! Ansible Vault's AES256 scheme on RustCrypto crates: PBKDF2-HMAC-SHA256
//! (10 000 rounds) derives 80 bytes from the password and the salt — the
//! AES-256 key, the HMAC key and the initial counter; HMAC-SHA256 over
//! the ciphertext is checked in constant time before anything is
//! decrypted; AES-256-CTR (a 128-bit big-endian counter) decrypts; the
//! PKCS#7 padding is checked and removed.
//!
//! Owns: that scheme. Must not: parse the envelope, or keep a key or a
//! plaintext outside a zeroizing buffer.

use aes::Aes256;
use ctr::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::envelope::Envelope;

/// PBKDF2 rounds Ansible uses.
const ROUNDS: u32 = 10_000;
const KEY: usize = 32;
const BLOCK: usize = 16;

/// Why one password did not open an envelope.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// The HMAC does not match: another password, or altered text.
    Hmac,
    /// The HMAC matched but the padding is wrong: the text was made wrong.
    Padding,
}

/// The plaintext of `envelope` under `password`.
pub fn decrypt(envelope: &Envelope, password: &[u8]) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let mut derived = Zeroizing::new([0u8; 2 * KEY + BLOCK]);
    pbkdf2::pbkdf2_hmac::<Sha256>(password, &envelope.salt, ROUNDS, derived.as_mut_slice());
    let (aes_key, rest) = derived.split_at(KEY);
    let (hmac_key, counter) = rest.split_at(KEY);
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(hmac_key)
        .expect("HMAC takes a key of any length");
    mac.update(&envelope.ciphertext);
    // verify_slice compares in constant time.
    mac.verify_slice(&envelope.hmac)
        .map_err(|_| Failure::Hmac)?;
    let mut plaintext = Zeroizing::new(envelope.ciphertext.clone());
    let mut cipher = ctr::Ctr128BE::<Aes256>::new_from_slices(aes_key, counter)
        .expect("a 32-byte key and a 16-byte counter");
    cipher.apply_keystream(plaintext.as_mut_slice());
    let padding = usize::from(*plaintext.last().ok_or(Failure::Padding)?);
    if padding == 0
        || padding > BLOCK
        || padding > plaintext.len()
        || !plaintext[plaintext.len() - padding..]
            .iter()
            .all(|byte| usize::from(*byte) == padding)
    {
        return Err(Failure::Padding);
    }
    let length = plaintext.len() - padding;
    // The padding stays in the allocation, wiped with it on drop.
    plaintext.truncate(length);
    Ok(plaintext)
}
