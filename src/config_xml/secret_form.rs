//! What kind of value a secret parameter holds, without showing it.

use serde::Serialize;

/// The form of a secret parameter's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretForm {
    /// No value: the MID cannot log in.
    Empty,
    /// Plain text, which the MID encrypts at its next start when the
    /// parameter is marked `secure`/`encrypt`.
    Plaintext,
    /// `encrypted:<base64>`, written by the MID with its keystore.
    Encrypted,
    /// A reference for an external secret provider (`cyberark: id=…, type=…`):
    /// left alone unless a playbook says otherwise.
    ProviderReference,
}

impl SecretForm {
    /// Classifies `value` (already unescaped).
    pub fn classify(value: &str) -> SecretForm {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return SecretForm::Empty;
        }
        if trimmed.starts_with("encrypted:") {
            return SecretForm::Encrypted;
        }
        if is_provider_reference(trimmed) {
            return SecretForm::ProviderReference;
        }
        SecretForm::Plaintext
    }

    /// A short word for tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            SecretForm::Empty => "empty",
            SecretForm::Plaintext => "plaintext",
            SecretForm::Encrypted => "encrypted",
            SecretForm::ProviderReference => "reference",
        }
    }
}

/// `cyberark:` in any case, or the general provider shape
/// `provider: key=value[, key=value]…`.
fn is_provider_reference(value: &str) -> bool {
    let Some((provider, arguments)) = value.split_once(':') else {
        return false;
    };
    if provider.eq_ignore_ascii_case("cyberark") {
        return true;
    }
    let provider_is_word = provider
        .chars()
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic())
        && provider
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "_-.".contains(character));
    let arguments_are_pairs = !arguments.trim().is_empty()
        && arguments.split(',').all(|pair| {
            pair.split_once('=').is_some_and(|(key, _)| {
                let key = key.trim();
                !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
        });
    provider_is_word && arguments_are_pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_each_form() {
        let cases = [
            ("", SecretForm::Empty),
            ("   ", SecretForm::Empty),
            ("encrypted:AbC+/9==", SecretForm::Encrypted),
            (
                "cyberark: id=mid01, type=password",
                SecretForm::ProviderReference,
            ),
            ("CyberArk:id=x", SecretForm::ProviderReference),
            (
                "vaultx: path=secret/mid, field=pw",
                SecretForm::ProviderReference,
            ),
            ("s3cr3t", SecretForm::Plaintext),
            ("pa:ss", SecretForm::Plaintext),
            ("http://x:y@z", SecretForm::Plaintext),
            ("encrypted", SecretForm::Plaintext),
        ];
        for (value, form) in cases {
            assert_eq!(SecretForm::classify(value), form, "{value:?}");
        }
    }
}
