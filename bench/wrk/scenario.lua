-- One benchmark scenario for wrk (driven by bench/run.sh).
--
-- The requests are built once per thread, from the environment:
--   KB_METHOD    GET or POST
--   KB_HEADERS   "Name: value" lines
--   KB_BODY      request body (optional)
--   KB_TOKENS    access tokens, space-separated (optional): one request per
--                token, each with `Authorization: Bearer <token>`, sent in
--                turn. The broker's rate limits count per session, so spreading
--                the load over a few sessions keeps a fast run under the
--                per-minute limit of the benchmark's products.
-- request() only hands out a prebuilt string, which costs no measurable
-- throughput (checked against the static request on the baseline), and every
-- scenario, the baseline included, goes through it.
-- The result is written as one flat JSON object to KB_RESULT.
--
-- KB_COUNT_STATUS=1 also tallies every response status (the smoke run uses it
-- to check exact statuses, e.g. only 429 in `rate_limited`). It defines
-- response(), which makes wrk hand every response to Lua, so the full run
-- leaves it off and relies on wrk's own non-2xx/3xx count instead.

wrk.method = os.getenv("KB_METHOD") or "GET"
local body = os.getenv("KB_BODY")
if body ~= nil and body ~= "" then
  wrk.body = body
end
for line in (os.getenv("KB_HEADERS") or ""):gmatch("[^\n]+") do
  local name, value = line:match("^%s*([^:]+):%s*(.-)%s*$")
  if name then
    wrk.headers[name] = value
  end
end

local tokens = {}
for token in (os.getenv("KB_TOKENS") or ""):gmatch("%S+") do
  table.insert(tokens, token)
end

local prebuilt = {}

function init(args)
  if #tokens == 0 then
    prebuilt[1] = wrk.format()
    return
  end
  for i, token in ipairs(tokens) do
    local headers = {}
    for name, value in pairs(wrk.headers) do
      if name:lower() ~= "authorization" then
        headers[name] = value
      end
    end
    headers["Authorization"] = "Bearer " .. token
    prebuilt[i] = wrk.format(nil, nil, headers)
  end
end

local next_request = 0

function request()
  next_request = next_request % #prebuilt + 1
  return prebuilt[next_request]
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

if os.getenv("KB_COUNT_STATUS") == "1" then
  statuses = {}
  function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    local t = thread:get("statuses")
    if t then
      for status, n in pairs(t) do
        counts[status] = (counts[status] or 0) + n
      end
    end
  end
  local list = {}
  for status, n in pairs(counts) do
    table.insert(list, string.format("%d:%d", status, n))
  end
  table.sort(list)

  local seconds = summary.duration / 1e6
  local e = summary.errors
  local out = assert(io.open(os.getenv("KB_RESULT"), "w"))
  out:write(string.format(
    '{"requests":%d,"seconds":%.3f,"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f,'
      .. '"non2xx":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,'
      .. '"timeouts":%d,"statuses":"%s"}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.status, e.connect, e.read, e.write, e.timeout, table.concat(list, " ")))
  out:close()
end
