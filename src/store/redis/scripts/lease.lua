-- The product hot path's round trip when the process keeps a local view:
-- the instance epoch, the caller's revocation state, then quota leases from
-- the rate-limit windows (see `app/leases.rs`).
-- KEYS[1]  the instance's epoch key
-- ARGV[1]  `token`: KEYS[2..5] are the jti, sid, credential and instance
--          revocation keys; or `xt`: KEYS[2] is the credential hash
-- ARGV[2]  the share: a grant is at most 1/share of what is left
-- KEYS     then one counter per window asked
-- ARGV[3k], ARGV[3k+1], ARGV[3k+2]  the ask, limit and TTL (ms) of window k
-- Each window grants min(ask, limit - granted, max(1, floor(left / share)))
-- units and adds them to its counter; the counter therefore counts units
-- granted to every process and never passes the limit. Windows are taken
-- in order, stopping after the first that grants nothing.
-- Returns { epoch (0 when absent),
--           `token`: the four revocation values (-1 when absent),
--           `xt`: 1/0 whether the credential exists, its `revoked_at` and
--                 `expires_at` (-1 when absent),
--           then for each window taken: its counter after the grant, and
--           the units granted }.
-- It runs after `read_caller.lua`, which reads the epoch and the caller's
-- state into `out` and fails closed on a corrupt value.
local share = tonumber(ARGV[2])
local w = 0
for i = first, #KEYS do
  w = w + 1
  local ask = tonumber(ARGV[3 * w])
  local limit = tonumber(ARGV[3 * w + 1])
  local used = tonumber(redis.call('GET', KEYS[i]) or '0') or limit
  local left = limit - used
  local grant = 0
  if left > 0 then
    grant = math.max(1, math.floor(left / share))
    if ask < grant then grant = ask end
    if left < grant then grant = left end
  end
  if grant > 0 then
    used = redis.call('INCRBY', KEYS[i], grant)
    if used == grant then redis.call('PEXPIRE', KEYS[i], ARGV[3 * w + 2]) end
  end
  out[#out + 1] = used
  out[#out + 1] = grant
  if grant == 0 then break end
end
return out
