-- Updates one field of an existing credential hash; never recreates a deleted
-- credential's hash.
-- KEYS[1]  the credential hash
-- ARGV[1]  the field; ARGV[2] its new value
-- ARGV[3]  the mode: `set` always, `setnx` only when absent, `min`/`max` keep
--          the smaller/larger number
-- Further ARGV are ignored.
-- Returns 1, or 0 when the credential does not exist.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local mode = ARGV[3]
if mode == 'set' or not cur
   or (mode == 'min' and tonumber(ARGV[2]) < tonumber(cur))
   or (mode == 'max' and tonumber(ARGV[2]) > tonumber(cur)) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return 1
