"""The original Artemis pipeline tracker's Redis algorithms, re-stated from shared/PROTOCOL.md
(section A, "Pipeline tracker"), to play the Python side of a mixed fleet in the interop tests.

What the original does, kept here on purpose (tests compare against it):
- the pipeline document is updated by read-modify-write (GET, json.loads, SETEX): not atomic;
- `completed_stages` goes up by one on every `completed` report, even a repeated one;
- completing a card sets `status`, `end_time`, `duration_seconds` and `current_stage = None`;
  a card without a document gets nothing written and no event published;
- a `start_time` that does not parse as a naive time makes the completion fail silently;
- the original keeps no list of cards: a reader finds cards only by SCAN.

Run as a script: `tracker.py <method> '<json kwargs>'` prints the method's result as JSON.
"""

import json
import sys
from datetime import datetime

from original import connect

PREFIX = "artemis:pipeline"
TTL = 86400


def _now():
    return datetime.utcnow().isoformat()


class PipelineTracker:
    """RedisPipelineTracker as PROTOCOL A states it."""

    def __init__(self, r=None, prefix=PREFIX, ttl=TTL):
        self.r = r or connect()
        self.prefix = prefix
        self.ttl = ttl

    def _key(self, card_id):
        return f"{self.prefix}:{card_id}"

    def _stage_key(self, card_id, stage_name):
        return f"{self.prefix}:{card_id}:stage:{stage_name}"

    def _publish(self, card_id, event):
        self.r.publish(f"{self.prefix}:events:{card_id}", json.dumps(event))

    def start_pipeline(self, card_id, total_stages, metadata=None, start_time=None):
        """`start_time` stands in for the clock (tests write cards started earlier)."""
        now = start_time or _now()
        doc = {
            "card_id": card_id,
            "status": "running",
            "total_stages": total_stages,
            "completed_stages": 0,
            "current_stage": None,
            "start_time": now,
            "end_time": None,
            "metadata": metadata or {},
        }
        self.r.setex(self._key(card_id), self.ttl, json.dumps(doc))
        self._publish(
            card_id,
            {"event": "pipeline_started", "card_id": card_id, "total_stages": total_stages,
             "timestamp": now},
        )
        return True

    def update_stage_status(self, card_id, stage_name, status, progress_percent=None,
                            message=None, metadata=None):
        now = _now()
        stage = {
            "stage_name": stage_name,
            "status": status,
            "progress_percent": progress_percent,
            "message": message,
            "timestamp": now,
            "metadata": metadata or {},
        }
        self.r.setex(self._stage_key(card_id, stage_name), self.ttl, json.dumps(stage))
        data = self.r.get(self._key(card_id))
        if data:
            doc = json.loads(data)
            doc["current_stage"] = stage_name
            if status == "completed":
                doc["completed_stages"] = doc.get("completed_stages", 0) + 1
            self.r.setex(self._key(card_id), self.ttl, json.dumps(doc))
        self._publish(
            card_id,
            {"event": "stage_updated", "card_id": card_id, "stage_name": stage_name,
             "status": status, "progress_percent": progress_percent, "message": message,
             "timestamp": now},
        )
        return True

    def complete_pipeline(self, card_id, status="completed", message=None):
        data = self.r.get(self._key(card_id))
        if not data:
            return False
        try:
            doc = json.loads(data)
            end = datetime.utcnow()
            start = datetime.fromisoformat(doc["start_time"])
            duration = (end - start).total_seconds()
        except Exception:  # the original logs and carries on: nothing written, nothing sent
            return False
        doc["status"] = status
        doc["end_time"] = end.isoformat()
        doc["current_stage"] = None
        doc["duration_seconds"] = duration
        self.r.setex(self._key(card_id), self.ttl, json.dumps(doc))
        self._publish(
            card_id,
            {"event": "pipeline_completed", "card_id": card_id, "status": status,
             "duration_seconds": duration, "message": message, "timestamp": end.isoformat()},
        )
        return True

    # ---- readers ----

    def get_pipeline_status(self, card_id):
        data = self.r.get(self._key(card_id))
        return json.loads(data) if data else None

    def get_all_stages(self, card_id):
        """SCAN MATCH <prefix>:<card_id>:stage:* and read every match as a stage document."""
        stages = {}
        for key in self.r.scan_iter(match=f"{self.prefix}:{card_id}:stage:*"):
            data = self.r.get(key)
            if data:
                doc = json.loads(data)
                stages[doc["stage_name"]] = doc
        return stages

    def list_pipelines(self):
        """How a Python reader finds cards (the original keeps no list): SCAN MATCH
        <prefix>:*, every key that is not a stage document read as a pipeline document."""
        cards = {}
        for key in self.r.scan_iter(match=f"{self.prefix}:*"):
            if ":stage:" in key:
                continue
            data = self.r.get(key)
            if data:
                doc = json.loads(data)
                cards[doc["card_id"]] = doc
        return cards


if __name__ == "__main__":
    method, kwargs = sys.argv[1], json.loads(sys.argv[2] if len(sys.argv) > 2 else "{}")
    print(json.dumps(getattr(PipelineTracker(), method)(**kwargs), sort_keys=True))
