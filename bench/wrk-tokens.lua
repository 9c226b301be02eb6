-- wrk script for `make bench` (examples/bench): every request carries the next token of a file
-- (one token a line, cycled; a file of one token is the `repeat` workload), every answer outside
-- 2xx is counted, and done() prints one line `BENCH_RESULT {json}` for the driver to parse.
--
--   wrk -t1 -c8 -d5s -s bench/wrk-tokens.lua http://127.0.0.1:PORT/ -- TOKENS_FILE [in-step]
--
-- `in-step` (the `spread` workload): every thread starts at the first token, so with T threads
-- each token is sent T times at about the same time, over T threads' connections.
-- `second-half` (a warm-up): threads start half-way down the list, so the run measured after it,
-- which starts at the top, does not begin with tokens the warm-up has just put in the caches.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

-- Runs in each thread's own Lua state: the requests are formatted once here, not per request.
function init(args)
  local file = args[1]
  if file == nil then
    error("usage: wrk ... -s wrk-tokens.lua URL -- TOKENS_FILE")
  end
  reqs = {}
  for line in io.lines(file) do
    if #line > 0 then
      reqs[#reqs + 1] = wrk.format("GET", "/", { Authorization = "Bearer " .. line })
    end
  end
  if #reqs == 0 then
    error("no tokens in " .. file)
  end
  -- Threads start at different places in the list so they do not send the same token together,
  -- unless they are to.
  if args[2] == "in-step" then
    next_req = 0
  else
    next_req = (id * math.floor(#reqs / 7 + 1)) % #reqs
  end
  if args[2] == "second-half" then
    next_req = (next_req + math.floor(#reqs / 2)) % #reqs
  end
  non2xx = 0
  first_non2xx = 0
end

function request()
  next_req = next_req % #reqs + 1
  return reqs[next_req]
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if first_non2xx == 0 then
      first_non2xx = status
    end
  end
end

function done(summary, latency, requests)
  local bad, first = 0, 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("non2xx")
    if first == 0 then
      first = t:get("first_non2xx")
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"non2xx":%d,"first_non2xx_status":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, bad, first,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
