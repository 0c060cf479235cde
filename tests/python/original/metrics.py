"""The original Artemis metrics' Redis algorithms, re-stated from shared/PROTOCOL.md (section A,
"Metrics"), to play the Python side of a mixed fleet in the interop tests.

Writers: HINCRBY for integer fields, HINCRBYFLOAT for floats, INCR for counters; the time-series
member keeps the caller's status text as given, the counter key lowercases it; nothing is ever
trimmed. Readers read fixed key names (no SCAN) and derive averages and the hit rate.

Run as a script: `metrics.py <method> '<json kwargs>'` prints the method's result as JSON.
"""

import json
import sys
import time
from datetime import datetime

from original import connect

PREFIX = "artemis:metrics"
DAILY_TTL = 2592000


class Metrics:
    """RedisMetrics as PROTOCOL A states it."""

    def __init__(self, r=None, prefix=PREFIX):
        self.r = r or connect()
        self.p = prefix

    # ---- writers ----

    def track_pipeline_completion(self, card_id, duration_seconds, status, cost=0.0,
                                  metadata=None, at=None):
        """`at` (epoch seconds) stands in for the clock (tests write history from days ago)."""
        ts = time.time() if at is None else at
        now = datetime.fromtimestamp(ts)  # local time, as the original
        member = json.dumps({
            "card_id": card_id,
            "duration_seconds": duration_seconds,
            "status": status,
            "cost": cost,
            "timestamp": now.isoformat(),
            "metadata": metadata or {},
        })
        self.r.zadd(f"{self.p}:timeseries:pipelines", {member: ts})
        total = f"{self.p}:total"
        self.r.hincrby(total, "pipelines_completed", 1)
        self.r.hincrbyfloat(total, "total_cost", cost)
        self.r.hincrbyfloat(total, "total_duration", duration_seconds)
        daily = f"{self.p}:daily:{now.strftime('%Y-%m-%d')}"
        self.r.hincrby(daily, "completions", 1)
        self.r.hincrbyfloat(daily, "cost", cost)
        self.r.hincrbyfloat(daily, "duration", duration_seconds)
        self.r.expire(daily, DAILY_TTL)
        self.r.incr(f"{self.p}:status:{status.lower()}")
        return True

    def track_llm_request(self, provider, model, prompt_tokens, completion_tokens, cost,
                          cache_hit=False):
        llm = f"{self.p}:llm"
        self.r.hincrby(llm, "total_requests", 1)
        self.r.hincrby(llm, "prompt_tokens", prompt_tokens)
        self.r.hincrby(llm, "completion_tokens", completion_tokens)
        self.r.hincrby(llm, "cache_hits" if cache_hit else "cache_misses", 1)
        self.r.hincrbyfloat(llm, "total_cost", cost)
        for key in (f"{self.p}:llm:{provider}", f"{self.p}:llm:model:{model}"):
            self.r.hincrby(key, "requests", 1)
            self.r.hincrbyfloat(key, "cost", cost)
        return True

    def track_code_review(self, developer, status, score, critical_issues=0, high_issues=0):
        dev = f"{self.p}:code_review:{developer}"
        self.r.hincrby(dev, "total_reviews", 1)
        self.r.hincrby(dev, "total_score", score)
        self.r.hincrby(dev, "critical_issues", critical_issues)
        self.r.hincrby(dev, "high_issues", high_issues)
        self.r.incr(f"{self.p}:code_review:status:{status.lower()}")
        return True

    # ---- readers (fixed key names only) ----

    def get_total_metrics(self):
        t = self.r.hgetall(f"{self.p}:total")
        llm = self.r.hgetall(f"{self.p}:llm")
        completed = int(t.get("pipelines_completed", 0))
        cost = float(t.get("total_cost", 0))
        duration = float(t.get("total_duration", 0))
        hits, misses = int(llm.get("cache_hits", 0)), int(llm.get("cache_misses", 0))
        return {
            "pipelines": {
                "total_completed": completed,
                "total_cost": cost,
                "total_duration": duration,
                "average_cost": cost / completed if completed else 0,
                "average_duration": duration / completed if completed else 0,
            },
            "llm": {
                "total_requests": int(llm.get("total_requests", 0)),
                "prompt_tokens": int(llm.get("prompt_tokens", 0)),
                "completion_tokens": int(llm.get("completion_tokens", 0)),
                "cache_hits": hits,
                "cache_misses": misses,
                "total_cost": float(llm.get("total_cost", 0)),
                "cache_hit_rate_percent":
                    round(hits / (hits + misses) * 100, 2) if hits + misses else 0,
            },
        }

    def get_daily_metrics(self, date=None):
        date = date or datetime.now().strftime("%Y-%m-%d")
        d = self.r.hgetall(f"{self.p}:daily:{date}")
        return {"date": date, "completions": int(d.get("completions", 0)),
                "total_cost": float(d.get("cost", 0)), "total_duration": float(d.get("duration", 0))}

    def get_recent_pipelines(self, limit=10):
        out = []
        for member in self.r.zrevrange(f"{self.p}:timeseries:pipelines", 0, limit - 1):
            try:
                out.append(json.loads(member))
            except ValueError:
                continue
        return out

    def get_all_pipelines(self):
        """Every time-series entry with its score, oldest first (the original never trims)."""
        return [[json.loads(m), s] for m, s in
                self.r.zrange(f"{self.p}:timeseries:pipelines", 0, -1, withscores=True)]

    def _pair(self, key):
        h = self.r.hgetall(key)
        return {"requests": int(h.get("requests", 0)), "cost": float(h.get("cost", 0))}

    def get_provider_metrics(self, provider):
        return self._pair(f"{self.p}:llm:{provider}")

    def get_model_metrics(self, model):
        return self._pair(f"{self.p}:llm:model:{model}")

    def get_developer_metrics(self, developer):
        h = self.r.hgetall(f"{self.p}:code_review:{developer}")
        return {f: int(h.get(f, 0)) for f in
                ("total_reviews", "total_score", "critical_issues", "high_issues")}

    def get_status_count(self, status):
        return int(self.r.get(f"{self.p}:status:{status.lower()}") or 0)

    def get_review_status_count(self, status):
        return int(self.r.get(f"{self.p}:code_review:status:{status.lower()}") or 0)


if __name__ == "__main__":
    method, kwargs = sys.argv[1], json.loads(sys.argv[2] if len(sys.argv) > 2 else "{}")
    print(json.dumps(getattr(Metrics(), method)(**kwargs), sort_keys=True))
