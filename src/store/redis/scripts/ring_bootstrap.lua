-- Writes the first key of the signing-key ring, only into an empty ring, and
-- announces it: of two processes starting together, one writes, the other
-- reads the ring it wrote.
-- KEYS[1]  the ring hash
-- ARGV[1]  the kid; ARGV[2] the entry (JSON)
-- ARGV[3]  the revocations channel; ARGV[4] the payload (`#ring`)
-- Returns 1 when written, 0 when the ring already had a key.
if redis.call('HLEN', KEYS[1]) > 0 then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
