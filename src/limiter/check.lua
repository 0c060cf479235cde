-- Sliding-window checks of one key: prune, count, decide and record atomically, timed by the
-- server. One call decides a batch of requests, in order, as if each had been checked alone at
-- the same instant: requests that queued up behind a call in flight share the TIME, the prune,
-- the count and the writes of one call instead of paying for them each (the limiter batches
-- per key only while a call for that key is in flight, so a lone check waits for nothing).
-- All three keys share one hash slot (the extension keys carry the window key as hash tag).
--
-- KEYS[1] the window: sorted set of the Python layout (score = epoch seconds, one member per
--         admitted request; Python's members are the float as text, ours "<score>-<id>")
-- KEYS[2] token entries: sorted set, score = admission time, member = "<id>:<tokens>"
-- KEYS[3] running sum of the token entries (integer string)
-- ARGV[1] window, microseconds        ARGV[2] request limit
-- ARGV[3] token limit (0: none)       ARGV[4] TTL after an admission, seconds (window + 60)
-- ARGV[5], ARGV[6], ...: per request, the tokens it reserves and its unique id.
--
-- Reply, per request in order, {status, requests_used, tokens_used, retry_after_us, exceeded,
-- now_us}: status 1 admitted, 0 refused, -1 larger than the whole token limit; exceeded = 1
-- requests, 2 tokens, 3 both. All times are integer microseconds, so no float rounding can make
-- a retry-after early.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local req_limit = tonumber(ARGV[2])
local tok_limit = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
-- A key's TTL is set again only once it has run down by more than this (1 %, at least 1 s) or
-- is longer than ours (another writer's), so a busy key costs a cheap PTTL per call instead of
-- an EXPIRE (which Redis rewrites and propagates as PEXPIREAT): a key still outlives its last
-- admission by >= 0.99 x TTL, which is more than the window.
local fresh_ms = (ttl - math.max(1, math.floor(ttl / 100))) * 1000

local function fresh(key)
  local left = redis.call('PTTL', key)
  return left >= fresh_ms and left <= ttl * 1000
end

local any_cost = false
for i = 5, #ARGV, 2 do
  if tonumber(ARGV[i]) > 0 then
    any_cost = true
  end
end

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
if tok_limit > 0 or any_cost then
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

local count = redis.call('ZCARD', KEYS[1])
local ts = score_text(now)
-- Admissions of this call not written yet: written together, or before a refusal of a later
-- request in the batch reads the window (it must see them, as if they had been checked alone).
local window_adds, token_adds = {}, {}
local admitted, tokens_added = false, 0

local function write_pending()
  if #window_adds > 0 then
    redis.call('ZADD', KEYS[1], unpack(window_adds))
    window_adds = {}
  end
  if #token_adds > 0 then
    redis.call('ZADD', KEYS[2], unpack(token_adds))
    token_adds = {}
  end
end

-- Microseconds until a request reserving `cost` could pass, and which limits stand in the way.
local function refusal(cost)
  local wait = 0
  local exceeded = 0
  if count >= req_limit then
    write_pending()
    -- The (count - limit + 1)-th oldest request frees the slot this one needs.
    local k = count - req_limit
    local e = redis.call('ZRANGE', KEYS[1], k, k, 'WITHSCORES')
    wait = leaves_at(e[2]) - now
    exceeded = 1
  end
  if tok_limit > 0 and sum + cost > tok_limit then
    write_pending()
    -- Walk the oldest entries until enough tokens would have left. Bounded: past the budget
    -- the newest entry's expiry is used, a time by which every current token has left (late,
    -- never early).
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
  if wait < 1 then
    wait = 1
  end
  return wait, exceeded
end

local out = {}
for i = 5, #ARGV, 2 do
  local cost, id = tonumber(ARGV[i]), ARGV[i + 1]
  local n = #out
  if tok_limit > 0 and cost > tok_limit then
    out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5] = -1, count, sum, 0, 2
  elseif count >= req_limit or (tok_limit > 0 and sum + cost > tok_limit) then
    local wait, exceeded = refusal(cost)
    out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5] = 0, count, sum, wait, exceeded
  else
    window_adds[#window_adds + 1] = ts
    window_adds[#window_adds + 1] = ts .. '-' .. id
    if cost > 0 then
      token_adds[#token_adds + 1] = ts
      token_adds[#token_adds + 1] = id .. ':' .. cost
      tokens_added = tokens_added + cost
    end
    admitted = true
    count = count + 1
    sum = sum + cost
    out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5] = 1, count, sum, 0, 0
  end
  out[n + 6] = now
end
write_pending()

-- Gives `key` the full TTL unless it still has nearly all of it.
local function keep_alive(key)
  if not fresh(key) then
    redis.call('EXPIRE', key, ttl)
  end
end

if admitted then
  keep_alive(KEYS[1])
end
if tokens_added > 0 then
  keep_alive(KEYS[2])
end
-- The running sum, with the TTL rules above: refreshed when tokens were added.
if tokens_added > 0 or sum_changed then
  if sum == 0 then
    if raw_sum then
      redis.call('DEL', KEYS[3])
    end
  elseif raw_sum and (tokens_added == 0 or fresh(KEYS[3])) then
    redis.call('SET', KEYS[3], sum, 'KEEPTTL')
  else
    redis.call('SET', KEYS[3], sum, 'EX', ttl)
  end
end
return out
