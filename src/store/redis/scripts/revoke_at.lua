-- Sets a revocation time keeping the earlier (`min`) or later (`max`) one,
-- never shortens the key's TTL, and announces the change.
-- KEYS[1]  the revocation key
-- ARGV[1]  the time (unix seconds; 1 for a token or session)
-- ARGV[2]  the TTL wanted (seconds)
-- ARGV[3]  `min` or `max`
-- ARGV[4]  the revocations channel; ARGV[5] the payload (the instance id)
-- Returns 1, or 2 when the current value was not a whole number: it cannot
-- be compared, so the new time replaces it (recording a revocation must not
-- fail on corrupt data, and this repairs the key); the broker logs it.
local cur = redis.call('GET', KEYS[1])
local new = tonumber(ARGV[1])
local result = 1
if cur then
  if #cur <= 15 and string.find(cur, '^%d+$') then
    cur = tonumber(cur)
    if (ARGV[3] == 'min' and cur < new) or (ARGV[3] == 'max' and cur > new) then new = cur end
  else
    result = 2
  end
end
local ttl = redis.call('TTL', KEYS[1])
local want = tonumber(ARGV[2])
if ttl > want then want = ttl end
redis.call('SET', KEYS[1], new, 'EX', want)
redis.call('PUBLISH', ARGV[4], ARGV[5])
return result
