//! The core's error type: one enum, every message safe to show (no password, no raw control
//! characters) and specific enough to act on.

use std::time::Duration;

use crate::keys::InvalidName;
use crate::model::Malformed;

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The server could not be reached within the connect timeout.
    #[error("cannot reach Redis at {endpoint}: {detail}")]
    Unreachable { endpoint: String, detail: String },
    /// The connection is down and a reconnect is under way; the call did not wait for it.
    #[error("Redis at {endpoint} is unavailable ({detail})")]
    Unavailable { endpoint: String, detail: String },
    /// The server refused the credentials. The password is never part of the message.
    #[error("Redis at {endpoint} refused the credentials{} (wrong password?)", user.as_ref().map(|u| format!(" for user {u:?}")).unwrap_or_default())]
    Auth {
        endpoint: String,
        user: Option<String>,
    },
    /// The ACL user may not run a command or touch a key.
    #[error("Redis at {endpoint} denied permission: {detail}")]
    Permission { endpoint: String, detail: String },
    #[error("Redis at {endpoint} did not answer within {after:?}")]
    Timeout { endpoint: String, after: Duration },
    /// Any other error reply from the server.
    #[error("Redis error: {0}")]
    Redis(String),
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    #[error("malformed data at {}: {}", .0.key, .0.reason)]
    Malformed(Malformed),
    #[error("configuration error: {0}")]
    Config(String),
    /// An argument the caller passed is out of range (e.g. a final status that is not final).
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl Error {
    /// Whether the error means "Redis is not reachable now" (as opposed to a bad request):
    /// the cases the core's fallbacks handle.
    /// Whether Redis refused a command because the key holds another type (someone overwrote
    /// it): readers report the key as malformed and read the rest.
    pub fn is_wrong_type(&self) -> bool {
        matches!(self, Self::Redis(m) if m.contains("WRONGTYPE"))
    }

    pub fn is_outage(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. } | Self::Unavailable { .. } | Self::Timeout { .. }
        )
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
