-- The card index on Redis Cluster, where it cannot share the tracker script's slot (on a
-- standalone server tracker.lua updates it itself). One script so the TTL is always set after
-- the entry, whatever order the driver sends things in.
--
-- KEYS[1] card index; ARGV[1] card id, ARGV[2] unused (the score is this server's TIME, the
-- clock a reader polling the index for changes compares with), ARGV[3] TTL seconds,
-- ARGV[4] '1' to drop entries not written for longer than the TTL.
local now = redis.call('TIME')
local score = now[1] .. '.' .. string.format('%06d', tonumber(now[2]))
redis.call('ZADD', KEYS[1], score, ARGV[1])
if ARGV[4] == '1' then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (tonumber(now[1]) - tonumber(ARGV[3])))
  -- Kept in the skiplist encoding, as tracker.lua does on a standalone server (see there): a
  -- listpack's ZADD parses every member's score. Only an optimization: a refusal is ignored.
  pcall(function()
    if redis.call('OBJECT', 'ENCODING', KEYS[1]) ~= 'skiplist' then
      local long = string.rep('~', 200)
      redis.call('ZADD', KEYS[1], 0, long)
      redis.call('ZREM', KEYS[1], long)
    end
  end)
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
