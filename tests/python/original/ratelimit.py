"""The original Artemis rate limiter, re-stated from shared/PROTOCOL.md ("Rate limiter
(sliding window log)"), for interop tests only.

Exactly the original's algorithm, with its flaws kept: the client's clock, four or five round
trips per check (not atomic: concurrent callers can overshoot), the member is the score's
float as text (equal timestamps collide), `EXPIRE window+60` after each admission, and the
preset limits matched on the exact model string (a dated id is "other").
"""

import time

DEFAULT_PREFIX = "artemis:ratelimit"

# Requests per minute of the presets; any other model of the provider gets the fallback.
OPENAI_LIMITS = {"gpt-4o": 100, "gpt-4o-mini": 300}
OPENAI_FALLBACK = 50
ANTHROPIC_LIMITS = {"claude-sonnet-4-5": 50}
ANTHROPIC_FALLBACK = 30
PRESET_WINDOW_SECONDS = 60


class RateLimitExceeded(Exception):
    """A refusal with the original's fields."""

    def __init__(self, resource, limit, window_seconds, current_count, retry_after_seconds):
        super().__init__(
            f"rate limit exceeded for {resource}: {current_count}/{limit} "
            f"in {window_seconds} s, retry after {retry_after_seconds:.3f} s"
        )
        self.resource = resource
        self.limit = limit
        self.window_seconds = window_seconds
        self.current_count = current_count
        self.retry_after_seconds = retry_after_seconds


class RedisRateLimiter:
    """The generic limiter: key `<prefix>:<resource>:<identifier>`."""

    def __init__(self, client, prefix=DEFAULT_PREFIX):
        self.redis = client
        self.prefix = prefix

    def key(self, resource, identifier="default"):
        return f"{self.prefix}:{resource}:{identifier}"

    def check_rate_limit(self, resource, limit, window_seconds, identifier="default"):
        """Admits (and records) one request, or raises RateLimitExceeded."""
        key = self.key(resource, identifier)
        now = time.time()
        # Drop members scored <= now - window.
        self.redis.zremrangebyscore(key, "-inf", now - window_seconds)
        count = self.redis.zcard(key)
        if count >= limit:
            oldest = self.redis.zrange(key, 0, 0, withscores=True)
            oldest_score = oldest[0][1] if oldest else now
            retry_after = window_seconds - (now - oldest_score)
            raise RateLimitExceeded(resource, limit, window_seconds, count, retry_after)
        self.redis.zadd(key, {str(now): now})
        self.redis.expire(key, int(window_seconds) + 60)
        return count + 1

    def current_count(self, resource, window_seconds, identifier="default"):
        """Requests in the window now, as the next check would count them (read-only)."""
        now = time.time()
        return self.redis.zcount(self.key(resource, identifier), f"({now - window_seconds}", "+inf")


class _PresetLimiter(RedisRateLimiter):
    provider = ""
    limits = {}
    fallback = 0

    def __init__(self, client):
        super().__init__(client, prefix=f"{DEFAULT_PREFIX}:{self.provider}")

    def limit_for(self, model):
        return self.limits.get(model, self.fallback)

    def check(self, model, identifier="default"):
        return self.check_rate_limit(
            f"{self.provider}:{model}", self.limit_for(model), PRESET_WINDOW_SECONDS, identifier
        )

    def count(self, model, identifier="default"):
        return self.current_count(f"{self.provider}:{model}", PRESET_WINDOW_SECONDS, identifier)


class OpenAIRateLimiter(_PresetLimiter):
    provider = "openai"
    limits = OPENAI_LIMITS
    fallback = OPENAI_FALLBACK

    def check_openai_limit(self, model, identifier="default"):
        return self.check(model, identifier)


class AnthropicRateLimiter(_PresetLimiter):
    provider = "anthropic"
    limits = ANTHROPIC_LIMITS
    fallback = ANTHROPIC_FALLBACK

    def check_anthropic_limit(self, model, identifier="default"):
        return self.check(model, identifier)
