-- The gateway's one call per product request: the instance epoch, the
-- caller's revocation state, then the rate-limit windows (counted in order,
-- stopping after the first over its limit).
-- KEYS[1]  the instance's epoch key
-- ARGV[1]  `token`: KEYS[2..5] are the jti, sid, credential and instance
--          revocation keys; or `xt`: KEYS[2] is the credential hash
-- KEYS     then one counter per window
-- ARGV[2k], ARGV[2k+1]  the limit and TTL (ms) of window k
-- Returns { epoch (0 when absent),
--           `token`: the four revocation values (-1 when absent),
--           `xt`: 1/0 whether the credential exists, its `revoked_at` and
--                 `expires_at` (-1 when absent),
--           then the count of each window evaluated }.
-- It runs after `read_caller.lua`, which reads the epoch and the caller's
-- state into `out` and fails closed on a corrupt value.
local w = 0
for i = first, #KEYS do
  w = w + 1
  local n = redis.call('INCR', KEYS[i])
  if n == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[2 * w + 1]) end
  out[#out + 1] = n
  if n > tonumber(ARGV[2 * w]) then break end
end
return out
