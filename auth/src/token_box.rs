//! OAuth tokens (any serde value) encrypted at rest.
//!
//! **Key.** [`TokenKey::derive`] turns the server secret (at least 32 bytes, e.g. 32 random bytes
//! from the deployment's secret store, given as configuration) into an AES-256 key with
//! HKDF-SHA256 (RFC 5869): salt `"glowing-telegram/token-box"`, info naming what the key seals
//! ([`YOUTUBE_TOKENS`], [`TWITCH_TOKENS`]). The secret itself never encrypts anything, and each
//! purpose gets an unrelated key, so one provider's sealed tokens never open as another's.
//!
//! **Format.** `v1.` followed by base64url (no padding) of `nonce (12 bytes) ‖ ciphertext ‖ tag
//! (16 bytes)`, AES-256-GCM over the tokens' JSON with a fresh random nonce per seal and the
//! version string as associated data. Any change to the text (or a different key) fails
//! authentication and [`open`] returns an error; nothing partial is ever returned.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};

type Nonce = aes_gcm::aead::Nonce<Aes256Gcm>;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use sha2::Sha256;

use serde::Serialize;
use serde::de::DeserializeOwned;

const VERSION: &str = "v1";
const SALT: &[u8] = b"glowing-telegram/token-box";
/// HKDF info of the key that seals YouTube (Google) token sets.
pub const YOUTUBE_TOKENS: &[u8] = b"youtube-oauth-tokens/v1";
/// HKDF info of the key that seals Twitch token sets.
pub const TWITCH_TOKENS: &[u8] = b"twitch-oauth-tokens/v1";
const NONCE_LEN: usize = 12;
/// Shortest server secret accepted: 256 bits, the strength of the derived key.
pub const MIN_SECRET_LEN: usize = 32;

/// The AES-256 key that seals tokens, derived from the server secret.
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenBoxError {
    #[error("the server secret has {0} bytes; at least {MIN_SECRET_LEN} are required")]
    SecretTooShort(usize),
    #[error("sealed tokens are not in the v1 format")]
    Format,
    #[error("sealed tokens failed authentication (tampered with, or sealed under another key)")]
    Authentication,
    #[error("sealed tokens decrypted to invalid JSON: {0}")]
    Json(String),
}

impl TokenKey {
    /// HKDF-SHA256 of the server secret for one purpose (see the module documentation).
    pub fn derive(server_secret: &[u8], purpose: &[u8]) -> Result<Self, TokenBoxError> {
        if server_secret.len() < MIN_SECRET_LEN {
            return Err(TokenBoxError::SecretTooShort(server_secret.len()));
        }
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(Some(SALT), server_secret)
            .expand(purpose, &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Ok(Self(key))
    }
}

/// Encrypts the tokens with a fresh random nonce.
pub fn seal<T: Serialize>(key: &TokenKey, tokens: &T) -> String {
    let cipher = Aes256Gcm::new_from_slice(&key.0).expect("32-byte key");
    let nonce_bytes: [u8; NONCE_LEN] = rand::random();
    let plaintext = serde_json::to_vec(tokens).expect("tokens serialize");
    let ciphertext = cipher
        .encrypt(
            &Nonce::from(nonce_bytes),
            Payload {
                msg: &plaintext,
                aad: VERSION.as_bytes(),
            },
        )
        .expect("AES-GCM encryption of a small message cannot fail");
    let mut blob = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    blob.extend_from_slice(&nonce_bytes);
    blob.extend_from_slice(&ciphertext);
    format!("{VERSION}.{}", URL_SAFE_NO_PAD.encode(blob))
}

/// Decrypts what [`seal`] produced; any modification is an error.
pub fn open<T: DeserializeOwned>(key: &TokenKey, sealed: &str) -> Result<T, TokenBoxError> {
    let encoded = sealed
        .strip_prefix(VERSION)
        .and_then(|rest| rest.strip_prefix('.'))
        .ok_or(TokenBoxError::Format)?;
    let blob = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| TokenBoxError::Format)?;
    if blob.len() < NONCE_LEN + 16 {
        return Err(TokenBoxError::Format);
    }
    let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("split at the nonce length");
    let cipher = Aes256Gcm::new_from_slice(&key.0).expect("32-byte key");
    let plaintext = cipher
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: ciphertext,
                aad: VERSION.as_bytes(),
            },
        )
        .map_err(|_| TokenBoxError::Authentication)?;
    serde_json::from_slice(&plaintext).map_err(|e| TokenBoxError::Json(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Tokens {
        access_token: String,
        refresh_token: String,
    }

    fn tokens() -> Tokens {
        Tokens {
            access_token: "ya29.access".into(),
            refresh_token: "1//refresh-secret".into(),
        }
    }

    fn key(byte: u8) -> TokenKey {
        TokenKey::derive(&[byte; 32], YOUTUBE_TOKENS).unwrap()
    }

    fn open_tokens(k: &TokenKey, sealed: &str) -> Result<Tokens, TokenBoxError> {
        open(k, sealed)
    }

    #[test]
    fn round_trip_with_fresh_nonces() {
        let k = key(7);
        let a = seal(&k, &tokens());
        let b = seal(&k, &tokens());
        assert_ne!(a, b, "a fresh nonce per seal");
        assert_eq!(open_tokens(&k, &a).unwrap(), tokens());
        assert_eq!(open_tokens(&k, &b).unwrap(), tokens());
        assert!(!a.contains("refresh-secret"));
    }

    #[test]
    fn every_tampered_byte_is_detected() {
        let k = key(7);
        let sealed = seal(&k, &tokens());
        let blob = URL_SAFE_NO_PAD.decode(&sealed[3..]).unwrap();
        for i in 0..blob.len() {
            let mut changed = blob.clone();
            changed[i] ^= 0x01;
            let text = format!("v1.{}", URL_SAFE_NO_PAD.encode(&changed));
            assert_eq!(
                open_tokens(&k, &text),
                Err(TokenBoxError::Authentication),
                "byte {i}"
            );
        }
        // Truncated, wrong version, not base64.
        assert!(open_tokens(&k, &sealed[..sealed.len() - 4]).is_err());
        assert_eq!(
            open_tokens(&k, &sealed.replacen("v1.", "v2.", 1)),
            Err(TokenBoxError::Format)
        );
        assert_eq!(open_tokens(&k, "v1.***"), Err(TokenBoxError::Format));
    }

    #[test]
    fn another_key_cannot_open() {
        let sealed = seal(&key(7), &tokens());
        assert_eq!(
            open_tokens(&key(8), &sealed),
            Err(TokenBoxError::Authentication)
        );
        let twitch = TokenKey::derive(&[7; 32], TWITCH_TOKENS).unwrap();
        assert_eq!(
            open_tokens(&twitch, &sealed),
            Err(TokenBoxError::Authentication)
        );
    }

    #[test]
    fn key_derivation_matches_rfc5869_hkdf_and_refuses_short_secrets() {
        assert_eq!(
            TokenKey::derive(&[1; 31], YOUTUBE_TOKENS).unwrap_err(),
            TokenBoxError::SecretTooShort(31)
        );
        // Independent HKDF-SHA256 from the hmac crate (RFC 5869: PRK = HMAC(salt, IKM),
        // OKM = HMAC(PRK, info ‖ 0x01) for a 32-byte output).
        use hmac::{Hmac, Mac};
        let ikm = [9u8; 40];
        let mut prk = <Hmac<Sha256> as Mac>::new_from_slice(SALT).unwrap();
        prk.update(&ikm);
        let prk = prk.finalize().into_bytes();
        let mut okm = <Hmac<Sha256> as Mac>::new_from_slice(&prk).unwrap();
        okm.update(TWITCH_TOKENS);
        okm.update(&[1]);
        let expected: [u8; 32] = okm.finalize().into_bytes().into();
        assert_eq!(TokenKey::derive(&ikm, TWITCH_TOKENS).unwrap().0, expected);
        assert_ne!(TokenKey::derive(&ikm, YOUTUBE_TOKENS).unwrap().0, expected);
    }
}
