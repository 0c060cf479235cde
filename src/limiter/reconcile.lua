-- Replace an admitted request's reserved tokens by the tokens it really used.
--
-- KEYS[1] token entries (sorted set), KEYS[2] running token sum (same slot)
-- ARGV[1] request id, ARGV[2] tokens reserved, ARGV[3] tokens used (0 releases everything)
-- Reply 1 if the entry was found, 0 if it had already left the window (nothing to do).

local old = ARGV[1] .. ':' .. ARGV[2]
local score = redis.call('ZSCORE', KEYS[1], old)
if not score then
  return 0
end
local reserved = tonumber(ARGV[2])
local used = tonumber(ARGV[3])
if used > 0 then
  -- Add before removing so the key is never empty (an empty key is deleted and would come
  -- back without its TTL).
  redis.call('ZADD', KEYS[1], score, ARGV[1] .. ':' .. used)
end
redis.call('ZREM', KEYS[1], old)
local raw = redis.call('GET', KEYS[2])
if raw then
  local sum = tonumber(raw) + used - reserved
  if sum < 0 then
    sum = 0
  end
  redis.call('SET', KEYS[2], sum, 'KEEPTTL')
end
return 1
