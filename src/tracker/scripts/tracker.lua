-- One atomic step of the pipeline tracker (see src/tracker/redis.rs).
--
-- KEYS[1] pipeline document   artemis:pipeline:<card>
-- KEYS[2] event history       artemis:pipeline::history:{artemis:pipeline:<card>}  (same slot)
-- KEYS[3] card index          artemis:pipeline::index       (standalone only; on Cluster the
-- KEYS[4] stage document      artemis:pipeline:<card>:stage:<name>  caller writes these two apart)
--
-- ARGV[1] op: start | stage | complete
-- ARGV[2] TTL seconds, ARGV[3] history length, ARGV[4] events channel,
-- ARGV[5] card id (index member), ARGV[6] write time, epoch seconds (index score)
-- ARGV[7..] per op, see below.
--
-- The document is never re-encoded with cjson: cjson turns empty arrays into {}, prints numbers
-- with 14 digits and escapes '/', which would alter the caller's metadata. The script locates the
-- top-level fields of the stored text, replaces only the fields it owns and keeps every other
-- field (metadata, fields a Python writer added) byte for byte. Values it writes arrive already
-- JSON-encoded from the caller (ARGV) or are numbers and fixed words it prints itself.

local op, ttl, maxlen, channel = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local member, score = ARGV[5], ARGV[6]
local doc_key, history_key, index_key, stage_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]

-- Index just past the JSON string that opens at i.
local function skip_string(s, i)
  local j = i + 1
  while true do
    local k = s:find('["\\]', j)
    if not k then return nil end
    if s:byte(k) == 92 then j = k + 2 else return k + 1 end
  end
end

-- Index just past the JSON value that starts at i.
local function skip_value(s, i)
  local c = s:byte(i)
  if c == 34 then return skip_string(s, i) end
  if c == 123 or c == 91 then
    local depth, j = 0, i
    while true do
      local k = s:find('[%[%]{}"]', j)
      if not k then return nil end
      local b = s:byte(k)
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
  return s:find('[,}%]%s]', i) or (#s + 1)
end

-- The top-level fields of a JSON object text, in order: {k = name, kt = raw name, vt = raw value}.
local function scan_object(s)
  local fields = {}
  local i = s:find('%S')
  if not i or s:byte(i) ~= 123 then return nil end
  i = s:find('%S', i + 1)
  if i and s:byte(i) == 125 then return fields end
  while i do
    if s:byte(i) ~= 34 then return nil end
    local ke = skip_string(s, i)
    if not ke then return nil end
    local kt = s:sub(i, ke - 1)
    i = s:find('%S', ke)
    if not i or s:byte(i) ~= 58 then return nil end
    i = s:find('%S', i + 1)
    if not i then return nil end
    local ve = skip_value(s, i)
    if not ve then return nil end
    fields[#fields + 1] = { k = cjson.decode(kt), kt = kt, vt = s:sub(i, ve - 1) }
    i = s:find('%S', ve)
    if not i then return nil end
    local b = s:byte(i)
    if b == 125 then return fields end
    if b ~= 44 then return nil end
    i = s:find('%S', i + 1)
  end
  return nil
end

-- The stored document, or nil and 0 (absent) / -1 (not a JSON object: left untouched).
local function read_doc()
  local raw = redis.call('GET', doc_key)
  if not raw then return nil, 0 end
  local ok, obj = pcall(cjson.decode, raw)
  if not ok or type(obj) ~= 'table' then return nil, -1 end
  local fields = scan_object(raw)
  if not fields then return nil, -1 end
  local rawof = {}
  for _, f in ipairs(fields) do rawof[f.k] = f.vt end
  return { obj = obj, fields = fields, raw = rawof }, 1
end

-- The document with `set` (name -> raw JSON) applied; new names are appended in `order`.
local function rebuild(d, set, order)
  local out, present = {}, {}
  for _, f in ipairs(d.fields) do
    local v = set[f.k]
    if v then present[f.k] = true else v = f.vt end
    out[#out + 1] = f.kt .. ':' .. v
  end
  for _, k in ipairs(order) do
    if not present[k] then out[#out + 1] = '"' .. k .. '":' .. set[k] end
  end
  return '{' .. table.concat(out, ',') .. '}'
end

-- Whether extension list `name` of the document holds `item`, and the raw list with `item_json`
-- appended (a fresh list when the field is missing or not an array).
local function list_add(d, name, item, item_json)
  local raw = d.raw[name]
  local list = d.obj[name]
  if raw and raw:byte(1) == 91 and type(list) == 'table' then
    for _, v in ipairs(list) do
      if v == item then return true, raw end
    end
    if #list > 0 then return false, raw:sub(1, #raw - 1) .. ',' .. item_json .. ']' end
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
    redis.call('SET', doc_key, rebuild(d, set, order), 'EX', ttl)
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
    local set = { status = '"' .. status .. '"', end_time = ARGV[8] }
    local order = { 'status', 'end_time' }
    local start = d.obj.start_time
    local start_us = type(start) == 'string' and parse_micros(start)
    if start_us then
      duration = format_seconds(tonumber(ARGV[9]) - start_us)
      set.duration_seconds = duration
      order[3] = 'duration_seconds'
    end
    redis.call('SET', doc_key, rebuild(d, set, order), 'EX', ttl)
  end
  emit('{"event":"pipeline_completed","card_id":' .. ARGV[10] .. ',"status":"' .. status
    .. '","duration_seconds":' .. duration .. ',"message":' .. ARGV[11]
    .. ',"timestamp":' .. ARGV[12] .. '}')
  touch_index(false)
  return { code, duration }
end
return redis.error_reply('ERR artemis tracker script: unknown op')
