-- One atomic step of the pipeline tracker (see src/tracker/redis.rs).
--
-- KEYS[1] pipeline document   artemis:pipeline:<card>
-- KEYS[2] event history       artemis:pipeline#history:{artemis:pipeline:<card>}  (same slot)
-- KEYS[3] card index          artemis:pipeline#index        (standalone only; on Cluster the
-- KEYS[4] stage document      artemis:pipeline:<card>:stage:<name>  caller writes these two apart)
--
-- ARGV[1] op: start | stage | complete
-- ARGV[2] TTL seconds, ARGV[3] history length, ARGV[4] events channel,
-- ARGV[5] card id (index member), ARGV[6] unused (the index score is the server's TIME, so
-- that a reader polling for changes compares it with the same clock, whatever the writer's)
-- ARGV[7..] per op, see below.
--
-- The document is never re-encoded with cjson: cjson turns empty arrays into {}, prints numbers
-- with 14 digits and escapes '/', which would alter the caller's metadata. cjson only reads it;
-- the script then replaces the values of the few fields it owns inside the stored text and keeps
-- everything else (metadata, fields a Python writer added) byte for byte. The quick path finds
-- those values by their (unique) key text; when that is not certain it scans every top-level
-- field. Values it writes arrive already JSON-encoded from the caller (ARGV) or are numbers and
-- fixed words it prints itself.

local op, ttl, maxlen, channel = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local member = ARGV[5]
local now = redis.call('TIME')
local score = now[1] .. '.' .. string.format('%06d', tonumber(now[2]))
local doc_key, history_key, index_key, stage_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]

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

-- The stored document, or nil and 0 (absent) / -1 (not a JSON object: left untouched).
local function read_doc()
  local text = redis.call('GET', doc_key)
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
      table.sort(edits, function(x, y) return x[1] < y[1] end)
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

-- Whether extension list `name` of the document holds `item`, and the raw list with `item_json`
-- appended (a fresh list when the field is missing or not an array).
local function list_add(d, name, item, item_json)
  local list = d.obj[name]
  local raw = type(list) == 'table' and field_text(d, name)
  if raw and byte(raw, 1) == 91 then
    for _, v in ipairs(list) do
      if v == item then return true, raw end
    end
    if #list > 0 then return false, sub(raw, 1, #raw - 1) .. ',' .. item_json .. ']' end
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

local function emit(event)
  redis.call('XADD', history_key, 'MAXLEN', maxlen, '*', 'event', event)
  redis.call('EXPIRE', history_key, ttl)
  redis.call('PUBLISH', channel, event)
end

local function touch_index(trim)
  if not index_key then return end
  redis.call('ZADD', index_key, score, member)
  if trim then
    redis.call('ZREMRANGEBYSCORE', index_key, '-inf', '(' .. (tonumber(score) - ttl))
  end
  redis.call('EXPIRE', index_key, ttl)
end

if op == 'start' then
  -- ARGV[7] document, ARGV[8] pipeline_started event
  redis.call('SET', doc_key, ARGV[7], 'EX', ttl)
  emit(ARGV[8])
  touch_index(true)
  return 1
elseif op == 'stage' then
  -- ARGV[7] stage name, ARGV[8] its JSON, ARGV[9] stage status, ARGV[10] stage_updated event,
  -- ARGV[11] stage document (written here when KEYS[4] is given)
  local name, name_json, status = ARGV[7], ARGV[8], ARGV[9]
  if stage_key then redis.call('SET', stage_key, ARGV[11], 'EX', ttl) end
  local d, code = read_doc()
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
    local text = edited(d, set, order)
    if text then redis.call('SET', doc_key, text, 'EX', ttl) else code = -1 end
  end
  emit(ARGV[10])
  touch_index(false)
  return code
elseif op == 'complete' then
  -- ARGV[7] final status, ARGV[8] end time JSON, ARGV[9] end time (epoch microseconds),
  -- ARGV[10] card id JSON, ARGV[11] message JSON, ARGV[12] timestamp JSON
  local status = ARGV[7]
  local duration = 'null'
  local d, code = read_doc()
  if d then
    -- A finished card is in no stage any more (the original sets current_stage to None).
    local set = { status = '"' .. status .. '"', end_time = ARGV[8], current_stage = 'null' }
    local order = { 'status', 'end_time', 'current_stage' }
    local start = d.obj.start_time
    local start_us = type(start) == 'string' and parse_micros(start)
    if start_us then
      duration = format_seconds(tonumber(ARGV[9]) - start_us)
      set.duration_seconds = duration
      order[4] = 'duration_seconds'
    end
    local text = edited(d, set, order)
    if text then redis.call('SET', doc_key, text, 'EX', ttl) else code = -1 end
  end
  -- The original publishes nothing for a card that has no document.
  if code == 0 then return { code, duration } end
  emit('{"event":"pipeline_completed","card_id":' .. ARGV[10] .. ',"status":"' .. status
    .. '","duration_seconds":' .. duration .. ',"message":' .. ARGV[11]
    .. ',"timestamp":' .. ARGV[12] .. '}')
  touch_index(false)
  return { code, duration }
end
return redis.error_reply('ERR artemis tracker script: unknown op')
