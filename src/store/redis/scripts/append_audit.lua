-- Appends an audit entry unless the instance is gone, and trims the list.
-- KEYS[1]  the instance's audit list; KEYS[2] the instance key
-- ARGV[1]  the entry (JSON); ARGV[2] how many entries to keep
-- Returns 1, or 0 when the instance does not exist.
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
return 1
