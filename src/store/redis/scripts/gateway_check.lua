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
-- A value read that is not a whole number (digits only) is corrupt: the
-- script fails closed with the error `CORRUPT <key>` before counting any
-- window, rather than read it as "not revoked".
local function whole(v, what, absent)
  if not v then return absent end
  if #v > 15 or not string.find(v, '^%d+$') then
    error({ err = 'CORRUPT not a whole number: ' .. what })
  end
  return tonumber(v)
end

local out = { whole(redis.call('GET', KEYS[1]), KEYS[1], 0) }
local first
if ARGV[1] == 'token' then
  local v = redis.call('MGET', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
  for i = 1, 4 do out[#out + 1] = whole(v[i], KEYS[i + 1], -1) end
  first = 6
else
  local v = redis.call('HMGET', KEYS[2], 'record', 'revoked_at', 'expires_at')
  out[#out + 1] = v[1] and 1 or 0
  out[#out + 1] = whole(v[2], KEYS[2] .. ' revoked_at', -1)
  out[#out + 1] = whole(v[3], KEYS[2] .. ' expires_at', -1)
  first = 3
end
local w = 0
for i = first, #KEYS do
  w = w + 1
  local n = redis.call('INCR', KEYS[i])
  if n == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[2 * w + 1]) end
  out[#out + 1] = n
  if n > tonumber(ARGV[2 * w]) then break end
end
return out
