//! The async LLM client interface the cache wraps: what a request and a response are, and the
//! one method a provider client implements.
//!
//! It exists so that the cache can sit in front of *any* provider client without changing it
//! ([`super::CachedClient`] implements [`LlmClient`] itself), and so that tests can put a
//! counting double where the real provider would be. The request carries the four fields the
//! Python original keys on plus every other parameter that changes the answer (`extra`), so the
//! cache can tell apart requests that the original confused.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Temperature the Python original assumes when the caller gives none.
pub const DEFAULT_TEMPERATURE: f64 = 0.7;
/// `max_tokens` the Python original assumes when the caller gives none.
pub const DEFAULT_MAX_TOKENS: u64 = 4000;

/// One chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user`, `assistant`, … as the provider names it; part of the cache key.
    pub role: String,
    /// The message text; part of the cache key byte for byte.
    pub content: String,
    /// Further fields the provider sees (`name`, `tool_call_id`, …). They join the cache key;
    /// with none, the message hashes exactly as in the Python original.
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Value>,
}

impl Message {
    /// A message with any role and no extra fields.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
            extra: BTreeMap::new(),
        }
    }

    /// A `system` message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }

    /// A `user` message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }

    /// An `assistant` message (a previous answer, for multi-turn requests).
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }
}

/// A sampling temperature as the caller wrote it. Python prints the integer `0` and the float
/// `0.0` differently, so they give different cache keys; keeping the distinction lets a Rust
/// caller share entries with a Python caller that wrote either.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Temperature {
    /// Written as an integer (`0`): Python prints it `0`, which gives another key than `0.0`.
    Int(i64),
    /// Written as a float (`0.7`, `0.0`), the usual case.
    Float(f64),
}

impl Temperature {
    /// The value as a number, for deciding whether a request is cacheable.
    pub fn as_f64(self) -> f64 {
        match self {
            Self::Int(i) => i as f64,
            Self::Float(f) => f,
        }
    }
}

impl Default for Temperature {
    fn default() -> Self {
        Self::Float(DEFAULT_TEMPERATURE)
    }
}

impl From<f64> for Temperature {
    fn from(f: f64) -> Self {
        Self::Float(f)
    }
}

impl From<i64> for Temperature {
    fn from(i: i64) -> Self {
        Self::Int(i)
    }
}

impl From<i32> for Temperature {
    fn from(i: i32) -> Self {
        Self::Int(i.into())
    }
}

/// A chat completion request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmRequest {
    /// The conversation, in order; only `role`, `content` and extra fields join the key.
    pub messages: Vec<Message>,
    /// The model id asked for (e.g. `gpt-4o`); part of the cache key.
    pub model: String,
    /// Sampling temperature (default 0.7, as in the original); part of the cache key.
    #[serde(default)]
    pub temperature: Temperature,
    /// Upper bound on output tokens (default 4000, as in the original); part of the cache key.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u64,
    /// Every other parameter sent to the provider (`response_format`, `tools`, `top_p`, `stop`,
    /// `seed`, provider-specific JSON). Each joins the cache key; keys may not repeat the four
    /// fields above.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Value>,
}

fn default_max_tokens() -> u64 {
    DEFAULT_MAX_TOKENS
}

impl LlmRequest {
    /// A request with the Python original's defaults (temperature 0.7, max_tokens 4000).
    pub fn new(model: impl Into<String>, messages: Vec<Message>) -> Self {
        Self {
            messages,
            model: model.into(),
            temperature: Temperature::default(),
            max_tokens: DEFAULT_MAX_TOKENS,
            extra: BTreeMap::new(),
        }
    }

    /// Sets the temperature; pass an integer to reproduce a Python caller that wrote `0`.
    pub fn temperature(mut self, t: impl Into<Temperature>) -> Self {
        self.temperature = t.into();
        self
    }

    /// Sets the output token bound.
    pub fn max_tokens(mut self, n: u64) -> Self {
        self.max_tokens = n;
        self
    }

    /// Adds (or replaces) one extra parameter.
    pub fn param(mut self, name: impl Into<String>, value: Value) -> Self {
        self.extra.insert(name.into(), value);
        self
    }
}

/// Token counts of one response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    /// Input tokens the provider counted.
    pub prompt_tokens: u64,
    /// Output tokens the provider counted.
    pub completion_tokens: u64,
    /// As the provider reports it (normally the sum of the other two).
    pub total_tokens: u64,
}

/// A provider's answer, in the shape the cache stores (PROTOCOL A, the five-key value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmResponse {
    /// The answer text.
    pub content: String,
    /// The model the API says answered (may be more specific than the requested one).
    pub model: String,
    /// `openai`, `anthropic`, …
    pub provider: String,
    /// Token counts (PROTOCOL `usage`).
    pub usage: Usage,
    /// The provider's whole response, as JSON.
    pub raw_response: Value,
}

/// Why a completion failed. Cloneable so that one failed upstream call can be handed to every
/// caller that was waiting for it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    /// The request cannot be sent as given; retrying will not help.
    #[error("invalid LLM request: {0}")]
    InvalidRequest(String),
    /// The provider failed or refused.
    #[error("{provider} request failed{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Upstream {
        /// The provider that failed.
        provider: String,
        /// Its error message.
        message: String,
        /// The HTTP status, `None` when the call did not get one (network, timeout).
        status: Option<u16>,
        /// Whether the same request may succeed later (rate limit, overload, network).
        retryable: bool,
    },
}

/// An LLM provider client.
#[async_trait::async_trait]
pub trait LlmClient: Send + Sync {
    /// The provider name used in metrics when a response does not name one (`openai`, …).
    fn provider(&self) -> &str;

    /// Answers `request`, or says why not. [`CachedClient`](super::CachedClient) calls it only
    /// on a miss or a bypass.
    async fn complete(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError>;
}

#[async_trait::async_trait]
impl<T: LlmClient + ?Sized> LlmClient for Arc<T> {
    fn provider(&self) -> &str {
        (**self).provider()
    }

    async fn complete(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        (**self).complete(request).await
    }
}

#[async_trait::async_trait]
impl<T: LlmClient + ?Sized> LlmClient for Box<T> {
    fn provider(&self) -> &str {
        (**self).provider()
    }

    async fn complete(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        (**self).complete(request).await
    }
}
