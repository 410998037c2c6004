//! Shared-secret tokens: one for clients, one for workers, checked on every RPC in constant
//! time. Tokens are never logged: [`Token`]'s `Debug` prints asterisks.

use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::{Arc, RwLock};
use subtle::ConstantTimeEq;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// A shared secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

/// Why a token cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Empty, or characters that cannot travel in an HTTP header.
    #[error("{0}")]
    Invalid(String),
    /// Unreadable token file.
    #[error("cannot read token file {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl Token {
    /// A token from its text; surrounding whitespace (a file's final newline) is dropped.
    ///
    /// # Errors
    /// Empty, or not printable ASCII. `what` names the source in the message.
    pub fn new(text: &str, what: &str) -> Result<Self, TokenError> {
        concur_core::token::token_text(text, what)
            .map(|text| Self(text.to_string()))
            .map_err(TokenError::Invalid)
    }

    /// A token read from a file.
    ///
    /// # Errors
    /// The file is unreadable, empty or not printable ASCII.
    pub fn from_file(path: &Path) -> Result<Self, TokenError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::File {
            path: path.display().to_string(),
            source,
        })?;
        Self::new(&text, &format!("token file {}", path.display()))
    }

    /// The secret itself, for sending it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison with a presented token. Both sides are hashed first, so
    /// neither the content nor the length of the secret shows in the timing.
    pub fn matches(&self, presented: &str) -> bool {
        let expected = Sha256::digest(self.0.as_bytes());
        let presented = Sha256::digest(presented.as_bytes());
        expected.as_slice().ct_eq(presented.as_slice()).into()
    }
}

/// Which side of the protocol a check guards; names the setting in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// `JobService`: `concur-cli --token` / `CONCUR_TOKEN`.
    Client,
    /// `WorkerService`: `concur-worker --token` / `CONCUR_WORKER_TOKEN`.
    Worker,
}

impl Audience {
    fn hint(self) -> &'static str {
        match self {
            Audience::Client => "client token (concur-cli --token or CONCUR_TOKEN)",
            Audience::Worker => "worker token (concur-worker --token or CONCUR_WORKER_TOKEN)",
        }
    }
}

/// Whether this coordinator is a standby, and if so which coordinator is active (its URL, or
/// a description when it is not known): shared by the interceptors and the dashboard.
pub type Role = Arc<RwLock<Option<String>>>;

/// The answer a standby gives every request: retry elsewhere, and where.
pub fn standby_status(active: &str) -> Status {
    Status::unavailable(format!(
        "this coordinator is a standby; the active coordinator is {active}"
    ))
}

/// Interceptor that refuses every request on a standby, then requires
/// `authorization: Bearer <token>` when a token is configured.
#[derive(Debug, Clone)]
pub struct TokenCheck {
    expected: Option<Token>,
    audience: Audience,
    role: Role,
}

impl TokenCheck {
    /// Checks against `expected` (`None` lets every request through) while `role` says active.
    pub fn new(expected: Option<Token>, audience: Audience, role: Role) -> Self {
        Self {
            expected,
            audience,
            role,
        }
    }
}

impl Interceptor for TokenCheck {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(active) = &*self.role.read().unwrap_or_else(|p| p.into_inner()) {
            return Err(standby_status(active));
        }
        let Some(expected) = &self.expected else {
            return Ok(request);
        };
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        match presented {
            Some(token) if expected.matches(token) => Ok(request),
            Some(_) => Err(Status::unauthenticated(format!(
                "invalid {}",
                self.audience.hint()
            ))),
            None => Err(Status::unauthenticated(format!(
                "this coordinator requires a {}",
                self.audience.hint()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(header: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(value) = header {
            request
                .metadata_mut()
                .insert("authorization", value.parse().unwrap());
        }
        request
    }

    #[test]
    fn tokens_are_checked_and_never_printed() {
        let token = Token::new("s3cret-token\n", "test").unwrap();
        assert_eq!(format!("{token:?}"), "Token(***)");
        let mut check = TokenCheck::new(Some(token), Audience::Client, Role::default());
        assert!(check.call(request(Some("Bearer s3cret-token"))).is_ok());
        let wrong = check.call(request(Some("Bearer nope"))).unwrap_err();
        assert_eq!(wrong.code(), tonic::Code::Unauthenticated);
        assert!(wrong.message().contains("CONCUR_TOKEN"));
        assert!(!wrong.message().contains("s3cret"));
        let missing = check.call(request(None)).unwrap_err();
        assert!(missing.message().contains("requires a client token"));
    }

    #[test]
    fn without_a_token_everything_passes() {
        let mut check = TokenCheck::new(None, Audience::Worker, Role::default());
        assert!(check.call(request(None)).is_ok());
    }

    #[test]
    fn empty_and_binary_tokens_are_refused() {
        assert!(Token::new("  \n", "x").is_err());
        assert!(Token::new("a b", "x").is_err());
    }
}
