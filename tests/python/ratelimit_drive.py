"""Drives the original's rate limiter (original/ratelimit.py) for the interop tests.

    ratelimit_drive.py check <provider> <model> <identifier> <n>
        n preset checks; prints one line per check: `admitted <count>` or
        `refused <current_count> <limit> <retry_after_seconds>`
    ratelimit_drive.py until-refused <provider> <model> <identifier>
        checks until the first refusal; prints `admitted <n> refused_at <current_count> <limit>`
    ratelimit_drive.py count <provider> <model> <identifier>
        prints the requests the original counts in the window now
    ratelimit_drive.py generic <resource> <identifier> <limit> <window_seconds> <n>
        n generic checks (RedisRateLimiter.check_rate_limit), lines as for `check`
"""

import sys

from original import connect
from original.ratelimit import (
    AnthropicRateLimiter,
    OpenAIRateLimiter,
    RateLimitExceeded,
    RedisRateLimiter,
)


def preset(client, provider):
    return {"openai": OpenAIRateLimiter, "anthropic": AnthropicRateLimiter}[provider](client)


def main(argv):
    client = connect()
    cmd = argv[0]
    if cmd == "check":
        limiter = preset(client, argv[1])
        for _ in range(int(argv[4])):
            try:
                print(f"admitted {limiter.check(argv[2], argv[3])}")
            except RateLimitExceeded as e:
                print(f"refused {e.current_count} {e.limit} {e.retry_after_seconds}")
    elif cmd == "until-refused":
        limiter = preset(client, argv[1])
        admitted = 0
        while True:
            try:
                limiter.check(argv[2], argv[3])
                admitted += 1
            except RateLimitExceeded as e:
                print(f"admitted {admitted} refused_at {e.current_count} {e.limit}")
                break
    elif cmd == "count":
        print(preset(client, argv[1]).count(argv[2], argv[3]))
    elif cmd == "generic":
        limiter = RedisRateLimiter(client)
        resource, identifier = argv[1], argv[2]
        limit, window = int(argv[3]), float(argv[4])
        for _ in range(int(argv[5])):
            try:
                print(f"admitted {limiter.check_rate_limit(resource, limit, window, identifier)}")
            except RateLimitExceeded as e:
                print(f"refused {e.current_count} {e.limit} {e.retry_after_seconds}")
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv[1:])
