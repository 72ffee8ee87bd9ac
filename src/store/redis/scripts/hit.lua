-- Counts a hit in each window, stopping after the first one over its limit.
-- KEYS     the counters, in order
-- ARGV     (limit, TTL in ms) pairs in the order of KEYS; a counter's TTL is
--          set when it is created, so it dies with its window
-- Returns the counts seen, one per window evaluated.
local out = {}
for i = 1, #KEYS do
  local n = redis.call('INCR', KEYS[i])
  if n == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[2 * i]) end
  out[i] = n
  if n > tonumber(ARGV[2 * i - 1]) then return out end
end
return out
