-- Replaces an existing instance record and bumps its epoch, atomically; never
-- recreates an instance deleted meanwhile.
-- KEYS[1]  the instance key; KEYS[2] its epoch key
-- ARGV[1]  the instance JSON
-- Returns 1, or 0 when the instance does not exist.
if redis.call('SET', KEYS[1], ARGV[1], 'XX') then
  redis.call('INCR', KEYS[2])
  return 1
end
return 0
