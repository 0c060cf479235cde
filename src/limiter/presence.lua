-- Presence of limiter processes, for the default share of the `local` failure policy.
-- KEYS[1] sorted set: member = instance id, score = last check (server clock, seconds)
-- ARGV[1] this instance's id          ARGV[2] horizon, seconds
-- Reply: processes seen within the horizon, this one included.
local t = redis.call('TIME')
local now = tonumber(t[1])
local horizon = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - horizon)
redis.call('EXPIRE', KEYS[1], horizon * 2)
return redis.call('ZCARD', KEYS[1])
