-- One sliding-window check: prune, count, decide and record atomically, timed by the server.
-- All three keys share one hash slot (the extension keys carry the window key as hash tag).
--
-- KEYS[1] the window: sorted set of the Python layout (score = epoch seconds, one member per
--         admitted request; Python's members are the float as text, ours "<score>-<id>")
-- KEYS[2] token entries: sorted set, score = admission time, member = "<id>:<tokens>"
-- KEYS[3] running sum of the token entries (integer string)
-- ARGV[1] window, microseconds        ARGV[2] request limit
-- ARGV[3] token limit (0: none)       ARGV[4] tokens this request reserves
-- ARGV[5] unique request id           ARGV[6] TTL after an admission, seconds (window + 60)
--
-- Reply {status, requests_used, tokens_used, retry_after_us, exceeded, now_us}:
-- status 1 admitted, 0 refused, -1 larger than the whole token limit; exceeded = 1 requests,
-- 2 tokens, 3 both. All times are integer microseconds, so no float rounding can make a
-- retry-after early.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local req_limit = tonumber(ARGV[2])
local tok_limit = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])

-- Exact decimal text of a microsecond time, as a score Redis parses.
local function score_text(us)
  local s = math.floor(us / 1000000)
  return string.format('%d.%06d', s, us - s * 1000000)
end

-- The first microsecond at which an entry scored `score` has left the window (a member
-- scored <= now - window is out). Rounded up: never early, even for Python's float scores.
local function leaves_at(score)
  return math.ceil(tonumber(score) * 1000000) + window
end

local function weight(member)
  return tonumber(string.match(member, ':(%d+)$')) or 0
end

local cutoff = score_text(now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)

-- Tokens: subtract what left the window from the running sum. Each entry is visited once
-- when it expires, so the cost per check is amortised O(1), never O(window). A key without a
-- token limit skips this (entries left from an earlier token limit expire with their TTL).
local sum = 0
local raw_sum = false
local sum_changed = false
if tok_limit > 0 or cost > 0 then
  raw_sum = redis.call('GET', KEYS[3])
  sum = tonumber(raw_sum or '0')
  local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', cutoff)
  if #expired > 0 then
    for i = 1, #expired do
      sum = sum - weight(expired[i])
    end
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', cutoff)
    sum_changed = true
  end
  if (not raw_sum) or sum <= 0 then
    -- No sum (a new or idle key, or one lost to eviction) or nothing left: count the entries.
    -- Cheap when there are none; a lost sum with live entries is rebuilt once.
    local all = redis.call('ZRANGE', KEYS[2], 0, -1)
    sum = 0
    for i = 1, #all do
      sum = sum + weight(all[i])
    end
    sum_changed = true
  end
end

-- Stores the running sum (`extra` tokens being added) with the TTL rules above.
local function store_sum(extra)
  local total = sum + extra
  if extra > 0 then
    redis.call('SET', KEYS[3], total, 'EX', tonumber(ARGV[6]))
  elseif total == 0 then
    if raw_sum then
      redis.call('DEL', KEYS[3])
    end
  elseif raw_sum then
    redis.call('SET', KEYS[3], total, 'KEEPTTL')
  else
    redis.call('SET', KEYS[3], total, 'EX', tonumber(ARGV[6]))
  end
end

local count = redis.call('ZCARD', KEYS[1])
if tok_limit > 0 and cost > tok_limit then
  return {-1, count, sum, 0, 2, now}
end

local wait = 0
local exceeded = 0
if count >= req_limit then
  -- The (count - limit + 1)-th oldest request frees the slot this one needs.
  local k = count - req_limit
  local e = redis.call('ZRANGE', KEYS[1], k, k, 'WITHSCORES')
  wait = leaves_at(e[2]) - now
  exceeded = 1
end
if tok_limit > 0 and sum + cost > tok_limit then
  -- Walk the oldest entries until enough tokens would have left. Bounded: past the budget the
  -- newest entry's expiry is used, a time by which every current token has left (late, never
  -- early).
  local need = sum + cost - tok_limit
  local freed = 0
  local found = nil
  local start = 0
  while found == nil and start < 1024 do
    local batch = redis.call('ZRANGE', KEYS[2], start, start + 127, 'WITHSCORES')
    if #batch == 0 then
      break
    end
    for i = 1, #batch, 2 do
      freed = freed + weight(batch[i])
      if freed >= need then
        found = batch[i + 1]
        break
      end
    end
    start = start + 128
  end
  if found == nil then
    local newest = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
    if #newest > 0 then
      found = newest[2]
    end
  end
  local tw = window
  if found then
    tw = leaves_at(found) - now
  end
  if tw > wait then
    wait = tw
  end
  exceeded = exceeded + 2
end
if exceeded > 0 then
  if sum_changed then
    store_sum(0)
  end
  if wait < 1 then
    wait = 1
  end
  return {0, count, sum, wait, exceeded, now}
end

local ts = score_text(now)
local ttl = tonumber(ARGV[6])
redis.call('ZADD', KEYS[1], ts, ts .. '-' .. ARGV[5])
redis.call('EXPIRE', KEYS[1], ttl)
if cost > 0 then
  redis.call('ZADD', KEYS[2], ts, ARGV[5] .. ':' .. cost)
  redis.call('EXPIRE', KEYS[2], ttl)
  store_sum(cost)
elseif sum_changed then
  store_sum(0)
end
return {1, count + 1, sum + cost, 0, 0, now}
