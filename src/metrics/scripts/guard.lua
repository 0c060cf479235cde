-- Applies one metrics write's commands on keys of one slot, at most once per operation id.
-- KEYS[1]: the operation's marker in this slot; KEYS[2..]: the keys the commands touch.
-- ARGV[1]: marker lifetime (s); then one command per four arguments:
--   key index into KEYS, command, first argument, second argument ('' when unused).
-- A replay of a write whose reply was lost (the server applied it, then died or the connection
-- dropped) finds the marker and changes nothing.
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return 0
end
for i = 2, #ARGV, 4 do
  local key, cmd = KEYS[tonumber(ARGV[i])], ARGV[i + 1]
  if cmd == 'HINCRBY' or cmd == 'HINCRBYFLOAT' or cmd == 'ZADD' or cmd == 'ZREMRANGEBYSCORE' then
    redis.call(cmd, key, ARGV[i + 2], ARGV[i + 3])
  elseif cmd == 'INCRBY' or cmd == 'SADD' or cmd == 'EXPIRE' then
    redis.call(cmd, key, ARGV[i + 2])
  else
    return redis.error_reply('unknown metrics command ' .. cmd)
  end
end
return 1
