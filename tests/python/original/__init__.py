"""Re-statements of the original Python Artemis's Redis algorithms, as shared/PROTOCOL.md states
them, used by the interop tests to play the Python side of a mixed fleet. One module per job."""

import os

import redis


def connect():
    """A redis-py client like the original's: decode_responses=True, URL from REDIS_URL."""
    return redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
