-- Adds usage counts; `last_used_at` keeps the maximum. Does nothing when the
-- instance is gone, so a late flush cannot recreate its keys.
-- KEYS[1]  the instance's usage hash; KEYS[2] the instance key
-- ARGV     (`<credential>|<counter>`, amount) pairs
-- Returns 1, or 0 when the instance does not exist.
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
for i = 1, #ARGV, 2 do
  local field = ARGV[i]
  local amount = tonumber(ARGV[i + 1])
  if string.sub(field, -13) == '|last_used_at' then
    local cur = tonumber(redis.call('HGET', KEYS[1], field) or '0')
    if amount > cur then redis.call('HSET', KEYS[1], field, amount) end
  else
    redis.call('HINCRBY', KEYS[1], field, amount)
  end
end
return 1
