"""The original Artemis LLM cache's Redis algorithms, re-stated from shared/PROTOCOL.md (section
A, "LLM response cache"), to play the Python side of a mixed fleet in the interop tests.

- key: sha256 of json.dumps({max_tokens, messages: [{content, role}], model, temperature},
  sort_keys=True) under `artemis:llm:cache:`; value: exactly five keys, `SETEX 604800`;
- `get_stats` counts every key `SCAN MATCH artemis:llm:cache:*` finds as a cached response;
- `invalidate_all` deletes every key that pattern finds.
Hits and misses are counted in process only, as in the original.

Run as a script: `cache.py <method> '<json kwargs>'` prints the method's result as JSON.
"""

import hashlib
import json
import sys

from original import connect

PREFIX = "artemis:llm:cache"
TTL = 604800
FIELDS = {"content", "model", "provider", "usage", "raw_response"}


class LLMCache:
    """RedisLLMCache as PROTOCOL A states it."""

    def __init__(self, r=None, prefix=PREFIX, ttl=TTL):
        self.r = r or connect()
        self.prefix = prefix
        self.ttl = ttl
        self.hits = 0
        self.misses = 0

    def key(self, messages, model, temperature=0.7, max_tokens=4000):
        payload = {
            "max_tokens": max_tokens,
            "messages": [{"content": m["content"], "role": m["role"]} for m in messages],
            "model": model,
            "temperature": temperature,
        }
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()
        return f"{self.prefix}:{digest}"

    def get(self, messages, model, temperature=0.7, max_tokens=4000):
        data = self.r.get(self.key(messages, model, temperature, max_tokens))
        if data:
            try:
                value = json.loads(data)
            except ValueError:
                value = None
            if isinstance(value, dict) and set(value) == FIELDS:
                self.hits += 1
                return value
        self.misses += 1
        return None

    def set(self, messages, model, content, response_model, provider, usage,
            raw_response=None, temperature=0.7, max_tokens=4000):
        value = {"content": content, "model": response_model, "provider": provider,
                 "usage": usage, "raw_response": raw_response}
        self.r.setex(self.key(messages, model, temperature, max_tokens), self.ttl,
                     json.dumps(value))
        return True

    def get_stats(self):
        count = sum(1 for _ in self.r.scan_iter(match=f"{self.prefix}:*"))
        total = self.hits + self.misses
        return {
            "cached_responses": count,
            "cache_hits": self.hits,
            "cache_misses": self.misses,
            "total_requests": total,
            "hit_rate_percent": round(self.hits / total * 100, 2) if total else 0,
        }

    def invalidate_all(self):
        deleted = 0
        for key in self.r.scan_iter(match=f"{self.prefix}:*"):
            deleted += self.r.delete(key)
        return deleted


if __name__ == "__main__":
    method, kwargs = sys.argv[1], json.loads(sys.argv[2] if len(sys.argv) > 2 else "{}")
    print(json.dumps(getattr(LLMCache(), method)(**kwargs), sort_keys=True))
