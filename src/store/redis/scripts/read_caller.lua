-- The first part of `gateway_check.lua` and `lease.lua`: the store loads
-- each of them with this text in front (`scripts.rs`). It reads the instance
-- epoch and the caller's revocation state; each script's header says what
-- its KEYS and ARGV are.
-- KEYS[1]  the instance's epoch key
-- ARGV[1]  `token`: KEYS[2..5] are the jti, sid, credential and instance
--          revocation keys; or `xt`: KEYS[2] is the credential hash
-- Leaves `out` = { epoch (0 when absent), `token`: the four revocation
-- values (-1 when absent), `xt`: 1/0 whether the credential exists, its
-- `revoked_at` and `expires_at` (-1 when absent) }, and `first`, the index
-- in KEYS of the first window's counter.
-- A value read that is not a whole number (digits only) is corrupt: the
-- script fails closed with the error `CORRUPT <key>` before any window is
-- counted or granted, rather than read it as "not revoked".
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
