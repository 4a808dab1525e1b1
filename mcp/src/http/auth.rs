//! Bearer-token validation: execkit-mcp on HTTP is an OAuth 2.1 resource server (the MCP
//! authorization spec). A request carries `Authorization: Bearer <JWT>`; the token must be
//! signed by a key of the operator's JWKS (RS256/384/512, PS256/384/512, ES256/384 or
//! EdDSA — the operator lists which), issued by the operator's issuer, for this server's
//! audience, and within its validity (`exp` required, `nbf` honoured, leeway the
//! operator's). Its subject and group claim become the caller's identity.
//!
//! The JWKS file is read again when its modification time or size changes, so keys rotate
//! without a restart; a file that no longer parses keeps the last good set and says so.
//! Validation itself is `jsonwebtoken`'s (signature, `exp`, `nbf`, `iss`, `aud`); this
//! module picks the key by `kid` and turns claims into an identity.

use crate::server::caller::TokenIdentity;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

/// The operator's token settings, resolved.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Accepted `iss`.
    pub issuer: String,
    /// Accepted `aud` values (any one).
    pub audiences: Vec<String>,
    /// The JWKS file.
    pub jwks_file: PathBuf,
    /// Accepted signature algorithms.
    pub algorithms: Vec<Algorithm>,
    /// The claim naming the principal (default `sub`).
    pub subject_claim: String,
    /// The claim listing the principal's groups (an array of strings, or one string of
    /// space-separated names).
    pub groups_claim: String,
    /// Clock skew allowed on `exp` and `nbf`, seconds.
    pub leeway_secs: u64,
    /// Scopes the token's `scope` claim must all contain.
    pub required_scopes: Vec<String>,
}

/// Why a token is refused; `WWW-Authenticate` carries the code and the text.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// No `Authorization: Bearer` header.
    #[error("no bearer token")]
    Missing,
    /// Not valid: malformed, bad signature, expired, wrong issuer or audience, unknown key.
    #[error("{0}")]
    Invalid(String),
    /// Valid, but without a scope the operator requires.
    #[error("the token lacks the scope `{0}`")]
    InsufficientScope(String),
}

impl TokenError {
    /// The RFC 6750 error code (`None` when no token was sent).
    pub fn code(&self) -> Option<&'static str> {
        match self {
            TokenError::Missing => None,
            TokenError::Invalid(_) => Some("invalid_token"),
            TokenError::InsufficientScope(_) => Some("insufficient_scope"),
        }
    }
}

struct Loaded {
    stamp: Option<(SystemTime, u64)>,
    set: std::sync::Arc<JwkSet>,
}

/// Validates tokens against the operator's settings and current key set.
pub struct Verifier {
    settings: AuthSettings,
    keys: Mutex<Loaded>,
}

impl Verifier {
    /// Reads the key set once now: a server does not start with a JWKS it cannot read.
    pub fn new(settings: AuthSettings) -> Result<Verifier, String> {
        let set = read_jwks(&settings.jwks_file)?;
        if set.keys.is_empty() {
            return Err(format!(
                "{}: the key set is empty",
                settings.jwks_file.display()
            ));
        }
        let stamp = stamp(&settings.jwks_file);
        Ok(Verifier {
            settings,
            keys: Mutex::new(Loaded {
                stamp,
                set: std::sync::Arc::new(set),
            }),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// The key set (shared, not copied, per request), read again if the file changed. A
    /// file that no longer parses keeps the last good set (a half-written file must not
    /// lock everyone out); a file that is gone or lists no usable key leaves no key at all
    /// (every token is refused: removing keys revokes them).
    fn current_keys(&self) -> std::sync::Arc<JwkSet> {
        let mut k = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let now = stamp(&self.settings.jwks_file);
        if now != k.stamp {
            match (now, read_jwks(&self.settings.jwks_file)) {
                (None, _) => {
                    tracing::warn!(file = %self.settings.jwks_file.display(), "JWKS file is gone: every token is refused until it is back");
                    k.set = std::sync::Arc::new(JwkSet { keys: Vec::new() });
                }
                (Some(_), Ok(set)) => {
                    tracing::info!(keys = set.keys.len(), "JWKS reloaded");
                    k.set = std::sync::Arc::new(set);
                }
                (Some(_), Err(e)) => {
                    tracing::warn!(error = %e, "JWKS file unreadable; keeping the previous keys")
                }
            }
            k.stamp = now;
        }
        k.set.clone()
    }

    /// The identity of a request's `Authorization` header value.
    pub fn verify_header(&self, header: Option<&str>) -> Result<TokenIdentity, TokenError> {
        let token = header
            .and_then(|h| {
                let (scheme, rest) = h.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(TokenError::Missing)?;
        self.verify(token)
    }

    /// The identity a token carries, or why it is refused.
    pub fn verify(&self, token: &str) -> Result<TokenIdentity, TokenError> {
        let invalid = |m: String| TokenError::Invalid(m);
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| invalid(format!("malformed token: {e}")))?;
        if !self.settings.algorithms.contains(&header.alg) {
            return Err(invalid(format!(
                "algorithm {:?} is not accepted here",
                header.alg
            )));
        }
        let keys = self.current_keys();
        let jwk = match &header.kid {
            Some(kid) => keys
                .find(kid)
                .ok_or_else(|| invalid(format!("unknown key id `{kid}`")))?,
            None if keys.keys.len() == 1 => &keys.keys[0],
            None => {
                return Err(invalid(
                    "the token names no key (kid) and the key set has several".into(),
                ))
            }
        };
        if let Some(alg) = jwk.common.key_algorithm {
            if format!("{alg:?}") != format!("{:?}", header.alg) {
                return Err(invalid("the token's algorithm is not its key's".into()));
            }
        }
        let key = DecodingKey::from_jwk(jwk).map_err(|e| invalid(format!("unusable key: {e}")))?;
        let mut v = Validation::new(header.alg);
        v.algorithms = vec![header.alg];
        v.leeway = self.settings.leeway_secs;
        v.validate_nbf = true;
        v.set_issuer(&[&self.settings.issuer]);
        v.set_audience(&self.settings.audiences);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &v)
            .map_err(|e| invalid(describe(&e)))?;
        let claims = data.claims;
        let subject = claims[&self.settings.subject_claim]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid(format!("no `{}` claim", self.settings.subject_claim)))?
            .to_string();
        let scopes: Vec<&str> = claims["scope"]
            .as_str()
            .map(|s| s.split(' ').collect())
            .unwrap_or_default();
        if let Some(missing) = self
            .settings
            .required_scopes
            .iter()
            .find(|s| !scopes.contains(&s.as_str()))
        {
            return Err(TokenError::InsufficientScope(missing.clone()));
        }
        let groups = match &claims[&self.settings.groups_claim] {
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|g| g.as_str().map(str::to_string))
                .collect(),
            serde_json::Value::String(s) => s.split_whitespace().map(str::to_string).collect(),
            _ => Vec::new(),
        };
        Ok(TokenIdentity { subject, groups })
    }
}

/// A validation error in words a client's operator can act on.
fn describe(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => "the token has expired".into(),
        K::ImmatureSignature => "the token is not valid yet (nbf)".into(),
        K::InvalidIssuer => "the token was issued by another issuer".into(),
        K::InvalidAudience => "the token is for another audience".into(),
        K::InvalidSignature => "the token's signature does not verify".into(),
        K::MissingRequiredClaim(c) => format!("the token has no `{c}` claim"),
        other => format!("invalid token: {other:?}"),
    }
}

/// The usable keys of a JWKS file: a key this library cannot use (another curve, an
/// encryption key) is left out with a warning, never the reason the others are not read.
fn read_jwks(path: &std::path::Path) -> Result<JwkSet, String> {
    #[derive(serde::Deserialize)]
    struct Raw {
        keys: Vec<serde_json::Value>,
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let raw: Raw =
        serde_json::from_str(&text).map_err(|e| format!("{}: not a JWKS: {e}", path.display()))?;
    let mut keys = Vec::new();
    for v in raw.keys {
        if v.get("use")
            .and_then(|u| u.as_str())
            .is_some_and(|u| u != "sig")
        {
            continue;
        }
        match serde_json::from_value::<jsonwebtoken::jwk::Jwk>(v) {
            Ok(k) => keys.push(k),
            Err(e) => tracing::warn!(error = %e, "JWKS: a key that cannot be used is left out"),
        }
    }
    Ok(JwkSet { keys })
}

fn stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}
