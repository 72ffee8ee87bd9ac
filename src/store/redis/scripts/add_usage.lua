-- Adds usage counts; `last_used_at` keeps the maximum. The counts also go to
-- the usage series: the minute and hour steps of the credential's last use,
-- whose keys expire after their retention. Does nothing when the instance is
-- gone, so a late flush cannot recreate its keys.
-- KEYS[1]  the instance's usage hash; KEYS[2] the instance key;
-- KEYS[3…] series steps, a (minute, hour) pair per credential
-- ARGV[1]  TTL of a minute step, ARGV[2] of an hour step (seconds)
-- ARGV[3…] (`<credential>|<counter>`, amount, k) triples: k > 0 names the
--          credential's minute step KEYS[k] (its hour step is KEYS[k + 1]);
--          0 for `last_used_at`, which is not a count
-- Returns 1, or 0 when the instance does not exist.
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local minute_ttl = tonumber(ARGV[1])
local hour_ttl = tonumber(ARGV[2])
for i = 3, #ARGV, 3 do
  local field = ARGV[i]
  local amount = tonumber(ARGV[i + 1])
  local k = tonumber(ARGV[i + 2])
  if string.sub(field, -13) == '|last_used_at' then
    local cur = tonumber(redis.call('HGET', KEYS[1], field) or '0')
    if amount > cur then redis.call('HSET', KEYS[1], field, amount) end
  else
    redis.call('HINCRBY', KEYS[1], field, amount)
    if k > 0 then
      redis.call('HINCRBY', KEYS[k], field, amount)
      redis.call('EXPIRE', KEYS[k], minute_ttl)
      redis.call('HINCRBY', KEYS[k + 1], field, amount)
      redis.call('EXPIRE', KEYS[k + 1], hour_ttl)
    end
  end
end
return 1
