-- wrk script: replay pre-computed requests, each at most once, and count outcomes.
--
-- BENCH_FILE   one request a line: METHOD <tab> PATH <tab> Header:value|Header:value <tab> BODY
-- BENCH_CYCLE  "1": start over at the end (for requests that do not use anything up);
--              otherwise the thread stops once every request has been answered, and
--              the few connections still open ask for /bench-exhausted (counted apart)
-- BENCH_PI     "1": classify privacyIDEA answers by result.value (always HTTP 200)
-- BENCH_OUT    where done() writes a JSON summary
-- BENCH_CONNS  the connection count (-c)
-- Run it with one thread (-t1): the request list is per thread.

local reqs = {}
local n = 0
local i = 0
counts = {} -- global: done() reads it with thread:get
local cycle = os.getenv("BENCH_CYCLE") == "1"
local conns = tonumber(os.getenv("BENCH_CONNS") or "16")
local pi = os.getenv("BENCH_PI") == "1"
local threads = {}
local real = 0

-- wrk waits out -d even after a thread stops, so a run that ends early times itself.
local ffi = require("ffi")
ffi.cdef([[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
]])
local ts = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end
started_us = 0
stopped_us = 0
exhausted_count = 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(os.getenv("BENCH_FILE")) do
    local method, path, hdr, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    if method then
      local headers = {}
      for k, v in hdr:gmatch("([^:|]+):([^|]*)") do
        headers[k] = v
      end
      if body == "" then
        body = nil
      end
      n = n + 1
      reqs[n] = wrk.format(method, path, headers, body)
    end
  end
  exhausted = wrk.format("GET", "/bench-exhausted")
end

function request()
  if started_us == 0 then
    started_us = now_us()
  end
  i = i + 1
  if i > n then
    if cycle then
      i = 1
    else
      return exhausted
    end
  end
  return reqs[i]
end

function response(status, headers, body)
  local key = tostring(status)
  if status == 404 and not cycle and i > n then
    key = "exhausted"
    exhausted_count = exhausted_count + 1
  elseif pi and status == 200 then
    if body:find('"value": true', 1, true) then
      key = "accept"
    elseif body:find('"value": false', 1, true) then
      key = "reject"
    end
  end
  counts[key] = (counts[key] or 0) + 1
  if key ~= "exhausted" then
    real = real + 1
  end
  -- wrk drops the request of a connection that had to reconnect: once the idle
  -- connections have asked for /bench-exhausted 4 times each, nothing else is coming.
  local lost = exhausted_count > 4 * conns
  if not cycle and (real >= n or lost) and stopped_us == 0 then
    stopped_us = now_us()
    wrk.thread:stop()
    -- Tell the driver, which then ends wrk with SIGINT instead of waiting out -d.
    local marker = io.open(os.getenv("BENCH_OUT") .. ".stopped", "w")
    marker:close()
  end
end

-- The latency histogram: wrk's latency(i) is the i-th distinct value (us) and its count.
-- Runs repeated in rounds pool these to take one percentile over all their answers.
local function json_hist(latency)
  local parts = {}
  for i = 1, #latency do
    local value, count = latency(i)
    table.insert(parts, string.format("[%d, %d]", value, count))
  end
  return "[" .. table.concat(parts, ", ") .. "]"
end

local function json_counts(t)
  local parts = {}
  for k, v in pairs(t) do
    table.insert(parts, string.format('"%s": %d', k, v))
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

function done(summary, latency, requests)
  local total = {}
  local elapsed = summary.duration
  for _, thread in ipairs(threads) do
    local stopped = thread:get("stopped_us")
    if stopped > 0 then
      elapsed = stopped - thread:get("started_us")
    end
    local c = thread:get("counts")
    for k, v in pairs(c) do
      total[k] = (total[k] or 0) + v
    end
  end
  local e = summary.errors
  local out = io.open(os.getenv("BENCH_OUT"), "w")
  out:write(string.format(
    '{"duration_us": %d, "wrk_duration_us": %d, "requests": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
      .. '"max_us": %d, "mean_us": %.1f, "errors": {"connect": %d, "read": %d, "write": %d, '
      .. '"timeout": %d}, "outcomes": %s, "latency_hist": %s}\n',
    elapsed, summary.duration, summary.requests, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, e.connect, e.read, e.write, e.timeout,
    json_counts(total), json_hist(latency)))
  out:close()
end
