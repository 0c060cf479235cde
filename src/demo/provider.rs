//! The simulated LLM provider: an [`LlmClient`] that answers like OpenAI, Anthropic or Google
//! would (latency, token usage, dated model names, the provider's raw response shape) without
//! any network, and that respects the real rate limiter before every "API call".
//!
//! It sits *behind* the response cache ([`crate::cache::CachedClient`] wraps it), so only
//! misses reach it and only misses spend rate-limit headroom, as with a real provider client.
//! Answers are a pure function of the request (its cache hash), so whichever card fetches a
//! prompt first, the cached answer is the same.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::script::{self, MODELS, ModelSpec};
use crate::cache::{LlmClient, LlmError, LlmRequest, LlmResponse, Usage};
use crate::limiter::{
    AcquireOptions, Decision, Limit, LimitError, Limits, RateLimiter, Reservation, Source,
};

/// The identifier of the simulator's rate-limit keys, so they never share a window with a real
/// pipeline's (`artemis:ratelimit:<provider>:<model>:sim`).
pub const LIMIT_IDENTIFIER: &str = "sim";

/// What the provider saw, for the report.
#[derive(Debug, Default)]
pub struct ProviderStats {
    /// Calls that reached the provider (cache misses).
    pub calls: AtomicU64,
    /// Calls whose first rate-limit check was refused.
    pub refused: AtomicU64,
    /// Calls that then waited for admission (`acquire`) and were admitted.
    pub waited: AtomicU64,
    /// Total time spent waiting for admission, microseconds.
    pub waited_us: AtomicU64,
    /// `acquire` deadlines that passed (the call kept waiting).
    pub acquire_timeouts: AtomicU64,
    /// Calls that failed because the limiter itself failed.
    pub limiter_errors: AtomicU64,
    /// Admissions decided by Redis (or the memory backend).
    pub admitted_store: AtomicU64,
    /// Admissions decided by the in-process window of the `local` failure policy (Redis away).
    pub admitted_local: AtomicU64,
    /// Admissions without counting under the `open` failure policy (Redis away).
    pub admitted_open: AtomicU64,
}

/// A provider that answers every model in [`MODELS`], `speed` times faster than real time.
pub struct SimProvider {
    limiter: RateLimiter,
    limits: HashMap<&'static str, Limit>,
    speed: f64,
    acquire: AcquireOptions,
    stats: Arc<ProviderStats>,
}

impl std::fmt::Debug for SimProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimProvider")
            .field("speed", &self.speed)
            .field("models", &self.limits.len())
            .finish_non_exhaustive()
    }
}

impl SimProvider {
    /// A provider whose per-model limits (requests and tokens per simulated minute, see
    /// [`ModelSpec`]) are enforced by `limiter` over windows of `60 s / speed`.
    pub fn new(limiter: RateLimiter, speed: f64) -> Result<Self, LimitError> {
        let window = sim_window(speed);
        let mut limits = HashMap::new();
        for m in MODELS {
            let resource = format!("{}:{}", m.provider, m.model);
            let l =
                Limits::requests(m.requests_per_minute, window).with_tokens(m.tokens_per_minute);
            limits.insert(m.model, limiter.limit(&resource, LIMIT_IDENTIFIER, l)?);
        }
        // Give up waiting after a few windows, then wait again (counted): a waiting call is
        // only ever abandoned by the caller dropping it.
        let acquire = AcquireOptions::from_settings(limiter.settings())
            .with_timeout((window * 4).max(Duration::from_secs(1)));
        Ok(Self {
            limiter,
            limits,
            speed,
            acquire,
            stats: Arc::default(),
        })
    }

    /// The provider's running counts, shared: they keep changing while the simulation runs.
    pub fn stats(&self) -> Arc<ProviderStats> {
        self.stats.clone()
    }

    /// The limits this provider enforces, one per model.
    pub fn limits(&self) -> impl Iterator<Item = &Limit> {
        self.limits.values()
    }

    /// Waits for the model's rate limit to admit a request reserving `tokens`.
    async fn admit(
        &self,
        spec: &ModelSpec,
        limit: &Limit,
        tokens: u64,
    ) -> Result<Reservation, LlmError> {
        let failed = |e: LimitError| {
            self.stats.limiter_errors.fetch_add(1, Ordering::Relaxed);
            LlmError::Upstream {
                provider: spec.provider.to_owned(),
                message: format!("rate limiter failed: {e}"),
                status: None,
                retryable: true,
            }
        };
        let count = |r: Reservation| {
            let by = match r.source() {
                Source::Store => &self.stats.admitted_store,
                Source::Local => &self.stats.admitted_local,
                Source::FailOpen => &self.stats.admitted_open,
            };
            by.fetch_add(1, Ordering::Relaxed);
            r
        };
        match self.limiter.check(limit, tokens).await.map_err(failed)? {
            Decision::Admitted(r) => return Ok(count(r)),
            Decision::Refused(_) => {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
            }
        }
        let started = Instant::now();
        loop {
            match self.limiter.acquire_with(limit, tokens, self.acquire).await {
                Ok(r) => {
                    self.stats.waited.fetch_add(1, Ordering::Relaxed);
                    let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                    self.stats.waited_us.fetch_add(us, Ordering::Relaxed);
                    return Ok(count(r));
                }
                Err(LimitError::DeadlineExceeded { .. }) => {
                    self.stats.acquire_timeouts.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => return Err(failed(e)),
            }
        }
    }
}

/// The rate-limit window standing for one simulated minute.
pub fn sim_window(speed: f64) -> Duration {
    let secs = if speed.is_finite() && speed > 0.0 {
        60.0 / speed
    } else {
        60.0
    };
    Duration::from_secs_f64(secs).clamp(crate::limiter::MIN_WINDOW, crate::limiter::MAX_WINDOW)
}

/// 64 bits of the request's cache hash: the provider's only source of "randomness", so an
/// answer depends on nothing but the request.
fn request_bits(request: &LlmRequest) -> Result<u64, LlmError> {
    let hash = crate::cache::key::request_hash(request)?;
    Ok(hash
        .get(..16)
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .unwrap_or(0))
}

/// Token usage of an answer: the prompt as written (about four characters a token) plus the
/// repository context a real pipeline would attach, and a completion of a sixth to a half of
/// `max_tokens`.
fn usage_for(request: &LlmRequest, bits: u64) -> Usage {
    let chars: usize = request.messages.iter().map(|m| m.content.len()).sum();
    let context = 800 + (bits % 4_200);
    let prompt_tokens = (chars as u64).div_ceil(4) + context;
    let max = request.max_tokens.max(6);
    let completion_tokens = max / 6 + (bits >> 16) % (max / 2 - max / 6 + 1);
    Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens: prompt_tokens + completion_tokens,
    }
}

fn answer_text(spec: &ModelSpec, request: &LlmRequest, usage: &Usage) -> String {
    let prompt = request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| m.content.as_str())
        .unwrap_or("");
    let shown: String = prompt.chars().take(120).collect();
    format!(
        "[simulated {} answer, {} tokens] {shown}\n\n1. Restate the goal.\n2. Apply the change.\n3. Verify it.",
        spec.served_as, usage.completion_tokens
    )
}

/// The provider's own response document, in its API's shape.
fn raw_response(spec: &ModelSpec, id: &str, text: &str, usage: &Usage) -> serde_json::Value {
    match spec.provider {
        "anthropic" => json!({
            "id": format!("msg_sim{id}"),
            "type": "message",
            "role": "assistant",
            "model": spec.served_as,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens},
        }),
        "google" => json!({
            "candidates": [{
                "content": {"role": "model", "parts": [{"text": text}]},
                "finishReason": "STOP",
            }],
            "modelVersion": spec.served_as,
            "responseId": format!("sim{id}"),
            "usageMetadata": {
                "promptTokenCount": usage.prompt_tokens,
                "candidatesTokenCount": usage.completion_tokens,
                "totalTokenCount": usage.total_tokens,
            },
        }),
        _ => json!({
            "id": format!("chatcmpl-sim{id}"),
            "object": "chat.completion",
            "model": spec.served_as,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }],
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
            },
        }),
    }
}

#[async_trait::async_trait]
impl LlmClient for SimProvider {
    fn provider(&self) -> &str {
        "simulated"
    }

    async fn complete(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        let spec = script::model(&request.model).ok_or_else(|| {
            LlmError::InvalidRequest(format!(
                "the simulated provider does not serve {:?}",
                request.model.escape_debug().take(80).collect::<String>()
            ))
        })?;
        let limit = self
            .limits
            .get(spec.model)
            .ok_or_else(|| LlmError::InvalidRequest("no rate limit for the model".into()))?;
        let bits = request_bits(request)?;
        let usage = usage_for(request, bits);
        let reservation = self
            .admit(spec, limit, usage.prompt_tokens + request.max_tokens)
            .await?;
        self.stats.calls.fetch_add(1, Ordering::Relaxed);

        // Time to first token plus generation, ±20% by request.
        let jitter = 0.8 + ((bits >> 40) % 1000) as f64 / 2500.0;
        let seconds = (spec.first_token_seconds
            + usage.completion_tokens as f64 * spec.seconds_per_token)
            * jitter
            / self.speed;
        tokio::time::sleep(Duration::try_from_secs_f64(seconds).unwrap_or_default()).await;

        if let Err(e) = reservation.reconcile(usage.total_tokens).await {
            tracing::debug!("rate-limit reservation not reconciled: {e}");
        }
        let id = format!("{bits:016x}");
        let content = answer_text(spec, request, &usage);
        Ok(LlmResponse {
            raw_response: raw_response(spec, &id, &content, &usage),
            content,
            model: spec.served_as.to_owned(),
            provider: spec.provider.to_owned(),
            usage,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Message;
    use crate::config::Settings;

    fn request(text: &str) -> LlmRequest {
        LlmRequest::new("gpt-4o-mini", vec![Message::user(text)]).max_tokens(1200)
    }

    #[test]
    fn usage_depends_on_the_request_only() {
        let r = request("hello");
        let bits = request_bits(&r).unwrap();
        assert_eq!(
            usage_for(&r, bits),
            usage_for(&r, request_bits(&r).unwrap())
        );
        let u = usage_for(&r, bits);
        assert!(
            u.completion_tokens >= 200 && u.completion_tokens <= 600,
            "{u:?}"
        );
        assert_eq!(u.total_tokens, u.prompt_tokens + u.completion_tokens);
    }

    #[tokio::test]
    async fn answers_in_the_providers_shape_and_respects_the_limit() {
        let backend = crate::backend::Backend::memory(Settings::default());
        let limiter = RateLimiter::new(backend.limiter().clone());
        // Speed 600: a 100 ms window, calls of a few ms.
        let provider = SimProvider::new(limiter.clone(), 600.0).unwrap();
        let r = request("hello");
        let a = provider.complete(&r).await.unwrap();
        let b = provider.complete(&r).await.unwrap();
        assert_eq!(a, b);
        assert_eq!(a.model, "gpt-4o-mini-2024-07-18");
        assert_eq!(a.provider, "openai");
        assert_eq!(
            a.raw_response["usage"]["completion_tokens"],
            a.usage.completion_tokens
        );
        // More calls than the window admits: some wait, none fail.
        let stats = provider.stats();
        let calls = (0..45).map(|i| {
            let p = &provider;
            async move { p.complete(&request(&format!("q{i}"))).await }
        });
        for r in futures::future::join_all(calls).await {
            r.unwrap();
        }
        assert_eq!(stats.calls.load(Ordering::Relaxed), 47);
        assert!(stats.refused.load(Ordering::Relaxed) >= 1);
        assert_eq!(
            stats.refused.load(Ordering::Relaxed),
            stats.waited.load(Ordering::Relaxed)
        );
        assert!(!limiter.headroom_all().await.unwrap().is_empty());
        let unknown = LlmRequest::new("nope", vec![Message::user("x")]);
        assert!(matches!(
            provider.complete(&unknown).await,
            Err(LlmError::InvalidRequest(_))
        ));
    }
}
