//! Tokens: the claims glowing-telegram reads from a JWT, the limits it puts on them, and the
//! local signer that stands in for Cognito when the stack runs on one machine (its RSA key in a
//! 0600 file, its public half served as a JWKS). The API verifies tokens; the `gt` CLI mints
//! the local user's token with the same key; neither needs the other's code.

pub mod token_box;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
    RSAKeyParameters, RSAKeyType,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde::{Deserialize, Serialize};

/// The longest a token may live (`exp` − `iat`, or `exp` − now without `iat`): a leaked token
/// is useless after this. Cognito's ID and access tokens live at most a day; the local token
/// `gt up` prints lives a week.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// Clock skew tolerated on `exp`, `nbf` and `iat`, seconds.
pub const LEEWAY_S: u64 = 30;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// A string or an array of strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_use: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// Why the time claims of a token are not acceptable at `now` (seconds since the epoch), if
/// they are not: issued in the future, not valid yet, or living longer than
/// [`MAX_TOKEN_LIFETIME`].
pub fn time_claims_problem(claims: &Claims, now: u64) -> Option<&'static str> {
    if claims.iat.is_some_and(|iat| iat > now + LEEWAY_S) {
        return Some("token issued in the future");
    }
    if claims.nbf.is_some_and(|nbf| nbf > now + LEEWAY_S) {
        return Some("token not valid yet");
    }
    let from = claims.iat.unwrap_or(now).min(now);
    if claims.exp.saturating_sub(from) > MAX_TOKEN_LIFETIME.as_secs() + LEEWAY_S {
        return Some("token lives longer than allowed");
    }
    None
}

/// Signs tokens in local mode. The RSA key is generated once and kept in a file (mode 0600) so
/// tokens survive restarts; its public half is the JWKS the API verifies against.
#[derive(Clone)]
pub struct LocalSigner {
    kid: String,
    issuer: String,
    audience: String,
    encoding: Arc<EncodingKey>,
    jwk: Jwk,
}

impl LocalSigner {
    pub const DEFAULT_ISSUER: &'static str = "glowing-telegram-local";
    pub const DEFAULT_AUDIENCE: &'static str = "glowing-telegram";

    /// Loads the key at `path`, generating it first if the file does not exist.
    pub fn load_or_create(path: &Path, issuer: &str, audience: &str) -> anyhow::Result<Self> {
        let key = if path.exists() {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("reading signing key {}", path.display()))?;
            rsa::RsaPrivateKey::from_pkcs1_pem(&pem)
                .with_context(|| format!("{} is not a PKCS#1 RSA private key", path.display()))?
        } else {
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
                .context("generating an RSA key")?;
            let pem = key.to_pkcs1_pem(LineEnding::LF)?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            write_private(path, pem.as_bytes())
                .with_context(|| format!("writing signing key {}", path.display()))?;
            key
        };
        Self::from_key(&key, issuer, audience)
    }

    pub fn from_key(
        key: &rsa::RsaPrivateKey,
        issuer: &str,
        audience: &str,
    ) -> anyhow::Result<Self> {
        let pem = key.to_pkcs1_pem(LineEnding::LF)?;
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes())?;
        let n = URL_SAFE_NO_PAD.encode(key.n().to_bytes_be());
        let e = URL_SAFE_NO_PAD.encode(key.e().to_bytes_be());
        // A stable kid derived from the public key.
        let kid = {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(format!("{n}.{e}").as_bytes());
            URL_SAFE_NO_PAD.encode(&digest[..12])
        };
        let jwk = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::RS256),
                key_id: Some(kid.clone()),
                ..Default::default()
            },
            algorithm: AlgorithmParameters::RSA(RSAKeyParameters {
                key_type: RSAKeyType::RSA,
                n,
                e,
            }),
        };
        Ok(Self {
            kid,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            encoding: Arc::new(encoding),
            jwk,
        })
    }

    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.jwk.clone()],
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// An ID token for `user_id`, valid for `ttl`.
    pub fn mint(&self, user_id: &str, ttl: Duration) -> anyhow::Result<String> {
        let now = jsonwebtoken::get_current_timestamp();
        self.sign(&Claims {
            sub: user_id.to_string(),
            iss: self.issuer.clone(),
            exp: now + ttl.as_secs(),
            iat: Some(now),
            nbf: None,
            aud: Some(serde_json::Value::String(self.audience.clone())),
            client_id: None,
            token_use: Some("id".into()),
            email: None,
        })
    }

    /// Signs arbitrary claims (tests use it for expired and foreign-audience tokens).
    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(iat: Option<u64>, nbf: Option<u64>, exp: u64) -> Claims {
        Claims {
            sub: "u".into(),
            iss: "i".into(),
            exp,
            iat,
            nbf,
            aud: None,
            client_id: None,
            token_use: None,
            email: None,
        }
    }

    #[test]
    fn time_claims_are_bounded() {
        let now = 1_000_000;
        let week = MAX_TOKEN_LIFETIME.as_secs();
        assert_eq!(
            time_claims_problem(&claims(Some(now), None, now + 3600), now),
            None
        );
        assert_eq!(
            time_claims_problem(&claims(Some(now + 3600), None, now + 7200), now),
            Some("token issued in the future")
        );
        assert_eq!(
            time_claims_problem(&claims(Some(now), Some(now + 600), now + 3600), now),
            Some("token not valid yet")
        );
        assert_eq!(
            time_claims_problem(&claims(Some(now), None, now + week + 3600), now),
            Some("token lives longer than allowed")
        );
        // Without iat, the lifetime counts from now.
        assert_eq!(
            time_claims_problem(&claims(None, None, now + 10 * week), now),
            Some("token lives longer than allowed")
        );
    }

    #[test]
    fn the_signer_key_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let a = LocalSigner::load_or_create(&path, "i", "a").unwrap();
        let b = LocalSigner::load_or_create(&path, "i", "a").unwrap();
        assert_eq!(
            a.jwks().keys[0].common.key_id,
            b.jwks().keys[0].common.key_id
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(
            a.mint("u", Duration::from_secs(60))
                .unwrap()
                .split('.')
                .count()
                == 3
        );
    }
}
