//! The core's error type: one enum, every message safe to show (no password, no raw control
//! characters) and specific enough to act on.
//!
//! Error replies from the server keep their code as a [`ServerCode`], so every decision on a
//! code (fall back from EVALSHA to EVAL, read a key of the wrong type as malformed, treat a
//! Cluster in transition as an outage) is a match on a value made here, never a substring test
//! at the call site.

use std::fmt;
use std::time::Duration;

use crate::keys::InvalidName;
use crate::model::Malformed;

/// The core's error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The server could not be reached within the connect timeout.
    #[error("cannot reach Redis at {endpoint}: {detail}")]
    Unreachable {
        /// Where, without credentials.
        endpoint: String,
        /// Why, scrubbed.
        detail: String,
    },
    /// The connection is down and a reconnect is under way; the call did not wait for it.
    #[error("Redis at {endpoint} is unavailable ({detail})")]
    Unavailable {
        /// Where, without credentials.
        endpoint: String,
        /// Why, scrubbed.
        detail: String,
    },
    /// The server refused the credentials, or asked for a password none was sent for. The
    /// password is never part of the message.
    #[error("Redis at {endpoint} {}", if *missing_password {
        "requires a password and none was given (set REDIS_PASSWORD, redis.password or the \
         URL's password)".to_owned()
    } else {
        format!(
            "refused the credentials{} (wrong user name or password?)",
            user.as_ref().map(|u| format!(" for user {u:?}")).unwrap_or_default()
        )
    })]
    Auth {
        /// Where, without credentials.
        endpoint: String,
        /// The ACL user name, if one was configured.
        user: Option<String>,
        /// The server answered `NOAUTH`: it requires a password and none was sent (as
        /// opposed to `WRONGPASS`, credentials that were sent and refused).
        missing_password: bool,
    },
    /// The ACL user may not run a command or touch a key.
    #[error("Redis at {endpoint} denied permission: {detail}")]
    Permission {
        /// Where, without credentials.
        endpoint: String,
        /// The server's explanation, scrubbed.
        detail: String,
    },
    /// The server did not answer within the command timeout.
    #[error("Redis at {endpoint} did not answer within {after:?}")]
    Timeout {
        /// Where, without credentials.
        endpoint: String,
        /// The command timeout.
        after: Duration,
    },
    /// The server is up but refused the request for a reason that passes on its own (`OOM`
    /// at `maxmemory`, `READONLY` from a replica, `LOADING`, `BUSY`, a Cluster in transition;
    /// see [`ServerCode::is_transient`]). The request did not run, so to callers this is an
    /// outage: writes are buffered and replayed, the limiter applies its failure policy.
    #[error("Redis at {endpoint} refuses requests: {code}{}", if detail.is_empty() { String::new() } else { format!(" {detail}") })]
    Refused {
        /// Where, without credentials.
        endpoint: String,
        /// The reply's code (`OOM`, `READONLY`, …).
        code: ServerCode,
        /// The rest of the reply, scrubbed.
        detail: String,
    },
    /// Any other error reply from the server, with its code.
    #[error("Redis error: {code}{}", if detail.is_empty() { String::new() } else { format!(" {detail}") })]
    Server {
        /// The reply's first word (`WRONGTYPE`, `NOSCRIPT`, …).
        code: ServerCode,
        /// The rest of the reply, scrubbed.
        detail: String,
    },
    /// A reply of the wrong shape (or another driver-side failure) that is not an error reply
    /// of the server.
    #[error("unexpected reply from Redis: {0}")]
    UnexpectedReply(String),
    /// A name the caller passed cannot be used in a key.
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    /// Data in Redis does not parse.
    #[error("malformed data at {}: {}", .0.key, .0.reason)]
    Malformed(Malformed),
    /// The settings are unusable.
    #[error("configuration error: {0}")]
    Config(String),
    /// An argument the caller passed is out of range (e.g. a final status that is not final).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// An operation gave up before it was complete (e.g. a cache invalidation racing writers).
    #[error("incomplete: {0}")]
    Incomplete(String),
}

/// The code of a Redis error reply: its first word.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerCode {
    /// `ERR`: the generic error.
    Err,
    /// `NOSCRIPT`: EVALSHA of a script the server has not cached.
    NoScript,
    /// `WRONGTYPE`: the key holds another type.
    WrongType,
    /// `NOPERM`: the ACL user may not run the command or touch the key.
    NoPerm,
    /// `OOM`: `maxmemory` reached and the policy refuses writes.
    Oom,
    /// `READONLY`: a write reached a replica (e.g. just after a failover).
    ReadOnly,
    /// `MASTERDOWN`: a replica lost its master and refuses stale reads.
    MasterDown,
    /// `LOADING`: the server is loading its dataset.
    Loading,
    /// `BUSY`: a script or function is running past its time limit.
    Busy,
    /// `TRYAGAIN`: a multi-key command during resharding.
    TryAgain,
    /// `CLUSTERDOWN`: the Cluster cannot serve the slot.
    ClusterDown,
    /// `MOVED`: the slot lives on another node.
    Moved,
    /// `ASK`: the slot is migrating; ask the other node once.
    Ask,
    /// `CROSSSLOT`: keys of one command in different slots.
    CrossSlot,
    /// `EXECABORT`: a transaction was discarded.
    ExecAbort,
    /// `NOAUTH`: authentication required.
    NoAuth,
    /// `WRONGPASS`: wrong user name or password.
    WrongPass,
    /// Any other code, as the server sent it.
    Other(String),
}

impl ServerCode {
    /// The code of a reply's first word (upper-cased as Redis sends it).
    pub fn parse(code: &str) -> Self {
        match code {
            "ERR" => Self::Err,
            "NOSCRIPT" => Self::NoScript,
            "WRONGTYPE" => Self::WrongType,
            "NOPERM" => Self::NoPerm,
            "OOM" => Self::Oom,
            "READONLY" => Self::ReadOnly,
            "MASTERDOWN" => Self::MasterDown,
            "LOADING" => Self::Loading,
            "BUSY" => Self::Busy,
            "TRYAGAIN" => Self::TryAgain,
            "CLUSTERDOWN" => Self::ClusterDown,
            "MOVED" => Self::Moved,
            "ASK" => Self::Ask,
            "CROSSSLOT" => Self::CrossSlot,
            "EXECABORT" => Self::ExecAbort,
            "NOAUTH" => Self::NoAuth,
            "WRONGPASS" => Self::WrongPass,
            other => Self::Other(other.chars().filter(|c| !c.is_control()).collect()),
        }
    }

    /// The code as Redis writes it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Err => "ERR",
            Self::NoScript => "NOSCRIPT",
            Self::WrongType => "WRONGTYPE",
            Self::NoPerm => "NOPERM",
            Self::Oom => "OOM",
            Self::ReadOnly => "READONLY",
            Self::MasterDown => "MASTERDOWN",
            Self::Loading => "LOADING",
            Self::Busy => "BUSY",
            Self::TryAgain => "TRYAGAIN",
            Self::ClusterDown => "CLUSTERDOWN",
            Self::Moved => "MOVED",
            Self::Ask => "ASK",
            Self::CrossSlot => "CROSSSLOT",
            Self::ExecAbort => "EXECABORT",
            Self::NoAuth => "NOAUTH",
            Self::WrongPass => "WRONGPASS",
            Self::Other(code) => code,
        }
    }

    /// Whether the server refused for a reason that passes on its own (memory freed, a
    /// failover finished, the dataset loaded, a script ended, slots settled): the request did
    /// not run and the same request may succeed later. `connection::Redis::classify` turns
    /// such replies (and the Cluster states of [`ServerCode::is_cluster_transition`]) into
    /// [`Error::Refused`], an outage to every fallback.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Oom
                | Self::ReadOnly
                | Self::MasterDown
                | Self::Loading
                | Self::Busy
                | Self::TryAgain
                | Self::ClusterDown
        )
    }

    /// Cluster states that pass on their own (a master down until it returns or fails over,
    /// slots moving, a node loading its data): to callers an outage, not a bad request.
    pub fn is_cluster_transition(&self) -> bool {
        matches!(
            self,
            Self::ClusterDown
                | Self::TryAgain
                | Self::MasterDown
                | Self::Loading
                | Self::Moved
                | Self::Ask
        )
    }

    /// Whether the server refused the credentials.
    pub fn is_auth_failure(&self) -> bool {
        matches!(self, Self::WrongPass | Self::NoAuth)
    }
}

impl fmt::Display for ServerCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// The core's error for a driver error that is not about the connection: an error reply
    /// becomes [`Error::Server`] with its code, anything else [`Error::UnexpectedReply`].
    /// Connection-level classification (auth, outage, reconnect) is
    /// `connection::Redis::classify`, which falls back to this.
    pub fn from_reply(e: &redis::RedisError) -> Self {
        match e.code() {
            Some(code) => Self::Server {
                code: ServerCode::parse(code),
                detail: scrub(e.detail().unwrap_or("")),
            },
            None => Self::UnexpectedReply(scrub(&e.to_string())),
        }
    }

    /// The code of an error reply, `None` for every other error.
    pub fn server_code(&self) -> Option<&ServerCode> {
        match self {
            Self::Server { code, .. } | Self::Refused { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether Redis refused a command because the key holds another type (someone overwrote
    /// it): readers report the key as malformed and read the rest.
    pub fn is_wrong_type(&self) -> bool {
        self.server_code() == Some(&ServerCode::WrongType)
    }

    /// Whether an EVALSHA failed because the server has not cached the script: send the
    /// source with EVAL.
    pub fn is_noscript(&self) -> bool {
        self.server_code() == Some(&ServerCode::NoScript)
    }

    /// Whether the error means "Redis is not reachable now" (as opposed to a bad request):
    /// the cases the core's fallbacks handle.
    pub fn is_outage(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. }
                | Self::Unavailable { .. }
                | Self::Timeout { .. }
                | Self::Refused { .. }
        )
    }
}

/// Redis error texts can echo a command's arguments; strip anything that looks like an AUTH
/// line so a password never reaches a log, and control characters so none reaches a terminal.
pub(crate) fn scrub(msg: &str) -> String {
    let lower = msg.to_ascii_lowercase();
    if lower.contains("auth ") {
        return "authentication-related error (details withheld)".into();
    }
    let shown: String = msg.chars().filter(|c| !c.is_control()).collect();
    // A driver's message may quote the URL or node it failed on.
    crate::redact::redact_text(&shown)
}

/// The core's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// A driver error from the exact bytes a server sends.
    fn reply(raw: &str) -> redis::RedisError {
        match redis::parse_redis_value(format!("{raw}\r\n").as_bytes()) {
            Ok(redis::Value::ServerError(e)) => e.into(),
            other => panic!("not an error reply: {other:?}"),
        }
    }

    #[test]
    fn error_replies_are_classified_by_their_code() {
        let table: &[(&str, ServerCode)] = &[
            (
                "-WRONGTYPE Operation against a key holding the wrong kind of value",
                ServerCode::WrongType,
            ),
            (
                "-NOSCRIPT No matching script. Please use EVAL.",
                ServerCode::NoScript,
            ),
            (
                "-NOPERM User bob has no permissions to run the 'set' command",
                ServerCode::NoPerm,
            ),
            (
                "-OOM command not allowed when used memory > 'maxmemory'.",
                ServerCode::Oom,
            ),
            (
                "-READONLY You can't write against a read only replica.",
                ServerCode::ReadOnly,
            ),
            (
                "-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
                ServerCode::MasterDown,
            ),
            (
                "-LOADING Redis is loading the dataset in memory",
                ServerCode::Loading,
            ),
            (
                "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
                ServerCode::Busy,
            ),
            (
                "-TRYAGAIN Multiple keys request during rehashing of slot",
                ServerCode::TryAgain,
            ),
            ("-CLUSTERDOWN The cluster is down", ServerCode::ClusterDown),
            ("-MOVED 3999 127.0.0.1:6381", ServerCode::Moved),
            ("-ASK 3999 127.0.0.1:6381", ServerCode::Ask),
            (
                "-CROSSSLOT Keys in request don't hash to the same slot",
                ServerCode::CrossSlot,
            ),
            (
                "-EXECABORT Transaction discarded because of previous errors.",
                ServerCode::ExecAbort,
            ),
            ("-NOAUTH Authentication required.", ServerCode::NoAuth),
            (
                "-WRONGPASS invalid username-password pair or user is disabled.",
                ServerCode::WrongPass,
            ),
            ("-ERR unknown command 'FROB'", ServerCode::Err),
            (
                "-BUSYGROUP Consumer Group name already exists",
                ServerCode::Other("BUSYGROUP".into()),
            ),
        ];
        for (raw, code) in table {
            let e = Error::from_reply(&reply(raw));
            assert_eq!(e.server_code(), Some(code), "{raw}");
        }
    }

    #[test]
    fn only_wrongtype_is_wrong_type_and_only_noscript_is_noscript() {
        let wrong = Error::from_reply(&reply("-WRONGTYPE Operation against a key"));
        let noscript = Error::from_reply(&reply("-NOSCRIPT No matching script."));
        // A detail that merely mentions a code must not count.
        let mention = Error::from_reply(&reply("-ERR user script said WRONGTYPE NOSCRIPT"));
        assert!(wrong.is_wrong_type() && !wrong.is_noscript());
        assert!(noscript.is_noscript() && !noscript.is_wrong_type());
        assert!(!mention.is_wrong_type() && !mention.is_noscript());
    }

    #[test]
    fn transient_codes_are_the_documented_seven() {
        let transient = [
            "OOM",
            "READONLY",
            "MASTERDOWN",
            "LOADING",
            "BUSY",
            "TRYAGAIN",
            "CLUSTERDOWN",
        ];
        for code in transient {
            assert!(ServerCode::parse(code).is_transient(), "{code}");
        }
        for code in [
            "ERR",
            "WRONGTYPE",
            "NOSCRIPT",
            "NOPERM",
            "MOVED",
            "ASK",
            "X",
        ] {
            assert!(!ServerCode::parse(code).is_transient(), "{code}");
        }
    }

    #[test]
    fn codes_round_trip_through_their_text() {
        for code in ["NOSCRIPT", "WRONGTYPE", "EXECABORT", "BUSYGROUP"] {
            assert_eq!(ServerCode::parse(code).as_str(), code);
        }
    }

    #[test]
    fn server_error_messages_keep_the_code_and_no_auth_line() {
        let e = Error::from_reply(&reply("-WRONGTYPE Operation against a key"));
        assert_eq!(
            e.to_string(),
            "Redis error: WRONGTYPE Operation against a key"
        );
        let e = Error::from_reply(&reply("-ERR syntax error near AUTH hunter2"));
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn replies_of_the_wrong_shape_are_not_server_errors() {
        let parsed = redis::from_redis_value::<i64>(redis::Value::Nil).unwrap_err();
        let e = Error::from_reply(&parsed.into());
        assert!(matches!(e, Error::UnexpectedReply(_)), "{e:?}");
        assert_eq!(e.server_code(), None);
    }
}
