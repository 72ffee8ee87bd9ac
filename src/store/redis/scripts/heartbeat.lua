-- The registry of live processes: each process's last heartbeat, in the
-- Redis server's own time, so that the clocks of the broker hosts do not
-- matter.
-- KEYS[1]  the registry (a sorted set under the `{procs}` hash tag)
-- ARGV[1]  `beat`: ARGV[2] is the process id; records it as heard now,
--          drops entries silent for a minute, and keeps the key for one
--          more minute (it dies when every process is gone)
--          `live`: ARGV[2] is the liveness window (ms)
-- Returns nothing for `beat`; the ids heard within the window for `live`.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] == 'beat' then
  redis.call('ZADD', KEYS[1], now, ARGV[2])
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000)
  redis.call('PEXPIRE', KEYS[1], 120000)
  return {}
end
return redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[2]), '+inf')
