-- Sets a revocation time keeping the earlier (`min`) or later (`max`) one,
-- never shortens the key's TTL, and announces the change.
-- KEYS[1]  the revocation key
-- ARGV[1]  the time (unix seconds; 1 for a token or session)
-- ARGV[2]  the TTL wanted (seconds)
-- ARGV[3]  `min` or `max`
-- ARGV[4]  the revocations channel; ARGV[5] the payload (the instance id)
-- Returns 1.
local cur = redis.call('GET', KEYS[1])
local new = tonumber(ARGV[1])
if cur then
  cur = tonumber(cur)
  if (ARGV[3] == 'min' and cur < new) or (ARGV[3] == 'max' and cur > new) then new = cur end
end
local ttl = redis.call('TTL', KEYS[1])
local want = tonumber(ARGV[2])
if ttl > want then want = ttl end
redis.call('SET', KEYS[1], new, 'EX', want)
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
