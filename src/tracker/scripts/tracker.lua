-- Steps of the pipeline tracker (see src/tracker/redis.rs), several in one call: each step is
-- atomic on its own (the whole call is), keeps its own reply, and the steps run in the order
-- given, so one card's steps keep theirs. A step that fails (e.g. WRONGTYPE) stops where a
-- call of its own would have stopped, and its reply is the error; the steps after it still run.
--
-- ARGV[1] TTL seconds, ARGV[2] history length (the least kept, see `emit`), ARGV[3] '1' on a
-- standalone server: KEYS[1] is the card index (artemis:pipeline#index) and stage steps also
-- write their stage document; '0' on Cluster, where a call may only touch one slot and the
-- caller writes those two apart.
-- Then one record per step, from ARGV[4]: op (start | stage | stage_known | complete), events
-- channel, card id (the index member), then the op's own arguments (below); and per step its
-- keys, in order:
--   pipeline document   artemis:pipeline:<card>
--   event history       artemis:pipeline#history:{artemis:pipeline:<card>}  (same slot)
--   stage document      artemis:pipeline:<card>:stage:<name>  (stage steps, standalone only)
--
-- The index score is the server's TIME, read once per call, so that a reader polling for
-- changes compares it with the same clock, whatever the writer's.
--
-- Reply: one item per step: 1 written, 0 no pipeline document, -1 document left alone (not a
-- JSON object); for complete {code, duration}; for stage_known whose expected text was not
-- the stored one {code, 'stale'}; a status reply (not an error reply, which
-- would fail the whole call in the client) holding the error message of a step that failed.
--
-- The document is never re-encoded with cjson: cjson turns empty arrays into {}, prints numbers
-- with 14 digits and escapes '/', which would alter the caller's metadata. cjson only reads it;
-- the script then replaces the values of the few fields it owns inside the stored text and keeps
-- everything else (metadata, fields a Python writer added) byte for byte. The quick path finds
-- those values by their (unique) key text; when that is not certain it scans every top-level
-- field. Values it writes arrive already JSON-encoded from the caller (ARGV) or are numbers and
-- fixed words it prints itself.

-- The TTL is passed to redis.call as the caller's text, not a Lua number: Redis turns a number
-- argument into text with sprintf('%.17g') on every call (measured in a perf profile of the
-- server: libc's float printing was ~2 % of its CPU during the bench, on every SET ... EX and
-- EXPIRE), and the text is what the command parses anyway.
local ttl, maxlen, standalone = ARGV[1], ARGV[2], ARGV[3] == '1'
local index_key = standalone and KEYS[1] or nil

local find, byte, sub, concat = string.find, string.byte, string.sub, table.concat

-- Index just past the JSON string that opens at i.
local function skip_string(s, i)
  local j = i + 1
  while true do
    local k = find(s, '["\\]', j)
    if not k then return nil end
    if byte(s, k) == 92 then j = k + 2 else return k + 1 end
  end
end

-- Index just past the JSON value that starts at i.
local function skip_value(s, i)
  local c = byte(s, i)
  if c == 34 then return skip_string(s, i) end
  if c == 123 or c == 91 then
    local depth, j = 0, i
    while true do
      local k = find(s, '[%[%]{}"]', j)
      if not k then return nil end
      local b = byte(s, k)
      if b == 34 then
        j = skip_string(s, k)
        if not j then return nil end
      elseif b == 123 or b == 91 then
        depth, j = depth + 1, k + 1
      else
        depth, j = depth - 1, k + 1
        if depth == 0 then return j end
      end
    end
  end
  return find(s, '[,}%]%s]', i) or (#s + 1)
end

-- Every top-level field of a JSON object text, in order: {k = name, kt = raw name, vt = raw
-- value}. The general path, for documents the quick path below cannot edit safely.
local function scan_object(s)
  local fields = {}
  local i = find(s, '%S')
  if not i or byte(s, i) ~= 123 then return nil end
  i = find(s, '%S', i + 1)
  if i and byte(s, i) == 125 then return fields end
  while i do
    if byte(s, i) ~= 34 then return nil end
    local ke = skip_string(s, i)
    if not ke then return nil end
    local kt = sub(s, i, ke - 1)
    i = find(s, '%S', ke)
    if not i or byte(s, i) ~= 58 then return nil end
    i = find(s, '%S', i + 1)
    if not i then return nil end
    local ve = skip_value(s, i)
    if not ve then return nil end
    local k = find(kt, '\\', 1, true) and cjson.decode(kt) or sub(kt, 2, -2)
    fields[#fields + 1] = { k = k, kt = kt, vt = sub(s, i, ve - 1) }
    i = find(s, '%S', ve)
    if not i then return nil end
    local b = byte(s, i)
    if b == 125 then return fields end
    if b ~= 44 then return nil end
    i = find(s, '%S', i + 1)
  end
  return nil
end

-- The value span [v, e) of top-level field `name` without scanning the whole text, when that
-- is certain: the quoted name occurs exactly once (so it is not also a nested key or a string
-- value) and the text has no \u escape (through which another key could spell the same name).
local function quick_span(text, name)
  local q = '"' .. name .. '"'
  local a, b = find(text, q, 1, true)
  if not a or find(text, q, b + 1, true) then return nil end
  local c = find(text, '%S', b + 1)
  if not c or byte(text, c) ~= 58 then return nil end
  local v = find(text, '%S', c + 1)
  local e = v and skip_value(text, v)
  if not e then return nil end
  return v, e
end

-- The stored document `text` (nil when absent) parsed, or nil and 0 (absent) / -1 (not a
-- JSON object: left untouched).
local function parse_doc(text)
  if not text then return nil, 0 end
  local ok, obj = pcall(cjson.decode, text)
  if not ok or type(obj) ~= 'table' or not find(text, '^%s*{') then return nil, -1 end
  return { text = text, obj = obj, quick = not find(text, '\\u', 1, true) }, 1
end

-- Switches a document to the general path; false if the text does not scan.
local function scanned(d)
  d.quick = false
  if d.fields then return true end
  d.fields = scan_object(d.text)
  if not d.fields then return false end
  d.rawof = {}
  for _, f in ipairs(d.fields) do d.rawof[f.k] = f.vt end
  return true
end

-- The raw JSON text of top-level field `name`, nil when absent.
local function field_text(d, name)
  if d.obj[name] == nil then return nil end
  if d.quick then
    local v, e = quick_span(d.text, name)
    if v then return sub(d.text, v, e - 1) end
  end
  if not scanned(d) then return nil end
  return d.rawof[name]
end

-- The document text with the fields in `order` set to the raw JSON in `set`: existing fields
-- replaced in place, missing ones appended. Nothing else in the text changes.
local function edited(d, set, order)
  if d.quick then
    local edits, adds = {}, {}
    for _, k in ipairs(order) do
      if d.obj[k] == nil then
        adds[#adds + 1] = '"' .. k .. '":' .. set[k]
      else
        local v, e = quick_span(d.text, k)
        if not v then edits = nil break end
        edits[#edits + 1] = { v, e, set[k] }
      end
    end
    if edits then
      -- At most four edits: an insertion sort, without the closure table.sort needs.
      for i = 2, #edits do
        local e, j = edits[i], i - 1
        while j > 0 and edits[j][1] > e[1] do
          edits[j + 1] = edits[j]
          j = j - 1
        end
        edits[j + 1] = e
      end
      local out, pos = {}, 1
      for _, ed in ipairs(edits) do
        out[#out + 1] = sub(d.text, pos, ed[1] - 1)
        out[#out + 1] = ed[3]
        pos = ed[2]
      end
      local tail = sub(d.text, pos)
      if #adds > 0 then
        local close = find(tail, '}%s*$')
        if not close then return nil end
        local sep = next(d.obj) == nil and '' or ','
        tail = sub(tail, 1, close - 1) .. sep .. concat(adds, ',') .. sub(tail, close)
      end
      out[#out + 1] = tail
      return concat(out)
    end
  end
  if not scanned(d) then return nil end
  local out, present = {}, {}
  for _, f in ipairs(d.fields) do
    local v = set[f.k]
    if v then present[f.k] = true else v = f.vt end
    out[#out + 1] = f.kt .. ':' .. v
  end
  for _, k in ipairs(order) do
    if not present[k] then out[#out + 1] = '"' .. k .. '":' .. set[k] end
  end
  return '{' .. concat(out, ',') .. '}'
end

-- Whether extension list `name` of the document holds `item`, and if not the raw list with
-- `item_json` appended (a fresh list when the field is missing or not an array). Membership
-- comes from the decoded document (an item found by ipairs is in a JSON array: cjson gives
-- an object's keys as strings), so a list that already holds the item costs no text scan.
local function list_add(d, name, item, item_json)
  local list = d.obj[name]
  if type(list) ~= 'table' then return false, '[' .. item_json .. ']' end
  for _, v in ipairs(list) do
    if v == item then return true end
  end
  local raw = #list > 0 and field_text(d, name)
  if raw and byte(raw, 1) == 91 then
    return false, sub(raw, 1, #raw - 1) .. ',' .. item_json .. ']'
  end
  return false, '[' .. item_json .. ']'
end

local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

-- Microseconds since the epoch of an ISO-8601 time (naive = UTC), or nil.
local function parse_micros(s)
  local y, mo, d, h, mi, se, rest =
    s:match('^%s*(%d%d%d%d)-(%d%d)-(%d%d)[T ](%d%d):(%d%d):(%d%d)(.-)%s*$')
  if not y then return nil end
  local frac = 0
  local f = rest:match('^%.(%d+)')
  if f then
    rest = rest:sub(#f + 2)
    frac = tonumber((f .. '000000'):sub(1, 6))
  end
  local off = 0
  if rest ~= '' and rest ~= 'Z' and rest ~= 'z' then
    local sign, oh, om = rest:match('^([+-])(%d%d):?(%d%d)$')
    if not sign then return nil end
    off = (tonumber(oh) * 60 + tonumber(om)) * 60
    if sign == '-' then off = -off end
  end
  local days = days_from_civil(tonumber(y), tonumber(mo), tonumber(d))
  local secs = days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(se) - off
  return secs * 1000000 + frac
end

-- Seconds with up to six decimals, always with a fraction (Python writes a float).
local function format_seconds(us)
  local sign = ''
  if us < 0 then sign, us = '-', -us end
  local s = string.format('%s%d.%06d', sign, math.floor(us / 1000000), us % 1000000)
  s = s:gsub('0+$', '')
  if s:sub(-1) == '.' then s = s .. '0' end
  return s
end

-- The history is trimmed with an approximate MAXLEN: Redis then drops only whole stream nodes
-- (`stream-node-max-entries`, 100 by default, fewer when `stream-node-max-bytes` fills first),
-- so the stream keeps at least the last `maxlen` events and at most one node more. An exact
-- MAXLEN rewrote the stream's oldest node on every add once the stream was full (measured
-- in-script: 3.2 us per XADD against 1.6 us approximate, on a 1,000-entry stream). Readers
-- that show "the last N" ask for exactly N (XREVRANGE COUNT N).
local function emit(history_key, channel, event)
  redis.call('XADD', history_key, 'MAXLEN', '~', maxlen, '*', 'event', event)
  redis.call('EXPIRE', history_key, ttl)
  redis.call('PUBLISH', channel, event)
end

-- The steps; each returns its reply code (and duration) and whether it touched the index.

-- ARGV: document, pipeline_started event. KEYS: document, history.
local function start_step(a, k)
  redis.call('SET', KEYS[k], ARGV[a], 'EX', ttl)
  emit(KEYS[k + 1], ARGV[a - 2], ARGV[a + 1])
  return 1, true
end

-- The general stage edit of document `text` (as read from `doc_key`, nil when absent) with
-- the stage record at ARGV[a]: decodes it, edits the few fields in place, writes it back.
-- Its reply code.
local function stage_edit(a, doc_key, text)
  local name, name_json, status = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local d, code = parse_doc(text)
  if d then
    local set, order = { current_stage = name_json }, { 'current_stage' }
    local seen, stages = list_add(d, '_stages', name, name_json)
    if not seen then
      set._stages = stages
      order[#order + 1] = '_stages'
    end
    if status == 'completed' then
      local done, completed = list_add(d, '_completed', name, name_json)
      if not done then
        set._completed = completed
        order[#order + 1] = '_completed'
        local n = (tonumber(d.obj.completed_stages) or 0) + 1
        local total = tonumber(d.obj.total_stages)
        if total and n > total then n = total end
        if n < 0 then n = 0 end
        set.completed_stages = string.format('%d', n)
        order[#order + 1] = 'completed_stages'
      end
    end
    if #order == 1 and d.obj.current_stage == name then
      -- Nothing in the document changes (a progress report, a stage reported twice): only
      -- its TTL is refreshed, as the SET would have.
      redis.call('EXPIRE', doc_key, ttl)
    else
      local out = edited(d, set, order)
      if out then redis.call('SET', doc_key, out, 'EX', ttl) else code = -1 end
    end
  end
  return code
end

-- ARGV: stage name, its JSON, stage status, stage_updated event, stage document.
-- KEYS: document, history, stage document (standalone).
local function stage_step(a, k)
  if standalone then redis.call('SET', KEYS[k + 2], ARGV[a + 4], 'EX', ttl) end
  local code = stage_edit(a, KEYS[k], redis.call('GET', KEYS[k]))
  emit(KEYS[k + 1], ARGV[a - 2], ARGV[a + 3])
  return code, true
end

-- A stage step from a writer that knows the document: ARGV as `stage`, then the document
-- text the writer expects to find and the text it computed for after this step ('' when the
-- step changes nothing in it). When the stored text is exactly the expected one, the new text
-- is written as it is: no decode, no edit. That is safe because the writer only ever expects a
-- text this project produced (its own start document and its own edits of it, see
-- `DocMirror` in src/tracker/mirror.rs), which is a JSON object by construction, and computes
-- the same edit as `stage_edit` would (tests/tracker.rs compares the two byte for byte).
-- Any other stored text (another writer's edit, an expired document, a non-JSON value) takes
-- the general path, and the reply says the writer's copy was stale: {code, 'stale'}.
local function stage_known_step(a, k)
  if standalone then redis.call('SET', KEYS[k + 2], ARGV[a + 4], 'EX', ttl) end
  local doc_key = KEYS[k]
  local text = redis.call('GET', doc_key)
  local reply = 1
  if text and text == ARGV[a + 5] then
    local out = ARGV[a + 6]
    if out == '' then
      -- Nothing in the document changes: only its TTL is refreshed, as the SET would have.
      redis.call('EXPIRE', doc_key, ttl)
    else
      redis.call('SET', doc_key, out, 'EX', ttl)
    end
  else
    reply = { stage_edit(a, doc_key, text), 'stale' }
  end
  emit(KEYS[k + 1], ARGV[a - 2], ARGV[a + 3])
  return reply, true
end

-- ARGV: final status, end time JSON, end time (epoch microseconds), card id JSON, message
-- JSON, timestamp JSON. KEYS: document, history.
local function complete_step(a, k)
  local status = ARGV[a]
  local duration = 'null'
  local doc_key = KEYS[k]
  local d, code = parse_doc(redis.call('GET', doc_key))
  if d then
    -- A finished card is in no stage any more (the original sets current_stage to None).
    local set = { status = '"' .. status .. '"', end_time = ARGV[a + 1], current_stage = 'null' }
    local order = { 'status', 'end_time', 'current_stage' }
    local start = d.obj.start_time
    local start_us = type(start) == 'string' and parse_micros(start)
    if start_us then
      duration = format_seconds(tonumber(ARGV[a + 2]) - start_us)
      set.duration_seconds = duration
      order[4] = 'duration_seconds'
    end
    local text = edited(d, set, order)
    if text then redis.call('SET', doc_key, text, 'EX', ttl) else code = -1 end
  end
  -- The original publishes nothing for a card that has no document.
  if code == 0 then return { code, duration }, false end
  emit(KEYS[k + 1], ARGV[a - 2], '{"event":"pipeline_completed","card_id":' .. ARGV[a + 3]
    .. ',"status":"' .. status .. '","duration_seconds":' .. duration .. ',"message":'
    .. ARGV[a + 4] .. ',"timestamp":' .. ARGV[a + 5] .. '}')
  return { code, duration }, true
end

-- Per op: its function, how many arguments it has after the three every record starts with,
-- and how many keys.
local steps = {
  start = { start_step, 2, 2 },
  stage = { stage_step, 5, standalone and 3 or 2 },
  stage_known = { stage_known_step, 7, standalone and 3 or 2 },
  complete = { complete_step, 6, 2 },
}

-- A step's error as the status reply that carries it, with the server's error code first.
local function failed(e)
  local msg = type(e) == 'table' and (e.err or e.ok) or tostring(e)
  msg = string.gsub(msg, '[\r\n]', ' ')
  if not find(msg, '^[A-Z]+ ') then msg = 'ERR ' .. msg end
  return { ok = msg }
end

-- Keeps the index in the skiplist encoding. In the listpack encoding Redis uses for small
-- sorted sets, every ZADD parses the score text of every member (measured: 5 us per ZADD at
-- 32 members, 1.7 us as a skiplist); a member longer than zset-max-listpack-value converts
-- the set, and Redis never converts it back. Only an optimization: a refusal (an ACL without
-- OBJECT) is ignored.
local function skiplist_index()
  if redis.call('OBJECT', 'ENCODING', index_key) ~= 'skiplist' then
    local long = string.rep('~', 200)
    redis.call('ZADD', index_key, 0, long)
    redis.call('ZREM', index_key, long)
  end
end

local replies, members, touched, trim = {}, {}, {}, false
local a, k = 4, standalone and 2 or 1
while ARGV[a] do
  local op = steps[ARGV[a]]
  if not op then return redis.error_reply('ERR artemis tracker script: unknown op') end
  local first_arg = a + 3
  local ok, reply, indexed = pcall(op[1], first_arg, k)
  if ok then
    replies[#replies + 1] = reply
    if indexed then
      members[#members + 1] = ARGV[a + 2]
      touched[#touched + 1] = #replies
      if ARGV[a] == 'start' then trim = true end
    end
  else
    replies[#replies + 1] = failed(reply)
  end
  a, k = first_arg + op[2], k + op[3]
end

-- The index, once for the whole call: every step that got to it is scored with this call's
-- TIME. If writing it fails, so does each of those steps, as it would have on its own.
if index_key and #members > 0 then
  local now = redis.call('TIME')
  local score = now[1] .. '.' .. string.format('%06d', tonumber(now[2]))
  local args = {}
  for i, m in ipairs(members) do
    args[2 * i - 1], args[2 * i] = score, m
  end
  local ok, e = pcall(function()
    redis.call('ZADD', index_key, unpack(args))
    if trim then
      redis.call('ZREMRANGEBYSCORE', index_key, '-inf', '(' .. (tonumber(score) - tonumber(ttl)))
      pcall(skiplist_index)
    end
    redis.call('EXPIRE', index_key, ttl)
  end)
  if not ok then
    local err = failed(e)
    for _, i in ipairs(touched) do replies[i] = err end
  end
end
return replies
