-- wrk script for the ingress benchmark.
--
--   wrk -t2 -c16 -d20s -s webhook.lua http://127.0.0.1:PORT -- \
--       PATH RUNTAG RATE THREADS EVENT1 BODY1 SIG1 [EVENT2 BODY2 SIG2 ...]
--
-- PATH     the webhook path (/webhook for shipgate, /api/github/webhooks for Probot)
-- RUNTAG   a number 0..65535 that makes delivery ids unique across runs
-- RATE     0 for saturation (every connection sends as fast as answers come),
--          or a target for the whole run in requests/s (spread over the threads)
-- THREADS  the -t value (a thread's Lua state cannot see how many threads there are)
-- EVENTn   the X-GitHub-Event value; BODYn a file with the exact body;
--          SIGn a file with "sha256=<hex>" (the body is fixed, so the
--          signature is computed once, by run.sh).
--
-- With MAX_REQUESTS=N in the environment (and -t1), wrk exits once N
-- requests have been answered (bench/drain.sh fills a backlog this way; the
-- requests still in flight then may be stored too). Without it, wrk's -d
-- duration ends the run.
--
-- Requests cycle through the payloads (1, 2, 1, 2, ...). Each request has its own
-- X-GitHub-Delivery in the UUID shape GitHub uses: run tag, thread, counter.
-- The request text is built from two precomputed halves around the id, so
-- the generator does no per-request formatting beyond one concatenation.

local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local thread_count = 0

function setup(thread)
  thread:set("thread_no", thread_count)
  thread_count = thread_count + 1
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local heads, tails = {}, {}
local n_payloads = 0
local counter = 0
local run_tag = 0
local interval_ms = 0
local next_slot = nil

function init(args)
  local path = args[1]
  run_tag = tonumber(args[2])
  local rate = tonumber(args[3])
  local thread_total = tonumber(args[4])
  if rate > 0 then
    -- this thread's share of the target rate
    interval_ms = 1000.0 * thread_total / rate
  end
  local host = wrk.host .. ":" .. tostring(wrk.port)
  local i = 5
  while args[i] do
    local event = args[i]
    local body = read_file(args[i + 1])
    local sig = read_file(args[i + 2]):gsub("%s+$", "")
    n_payloads = n_payloads + 1
    heads[n_payloads] = "POST " .. path .. " HTTP/1.1\r\n"
      .. "Host: " .. host .. "\r\n"
      .. "User-Agent: GitHub-Hookshot/bench\r\n"
      .. "Accept: */*\r\n"
      .. "Content-Type: application/json\r\n"
      .. "X-GitHub-Event: " .. event .. "\r\n"
      .. "X-Hub-Signature-256: " .. sig .. "\r\n"
      .. "X-GitHub-Delivery: "
    tails[n_payloads] = "\r\n"
      .. "Content-Length: " .. tostring(#body) .. "\r\n"
      .. "\r\n"
      .. body
    i = i + 3
  end
  assert(n_payloads > 0, "no payloads given")
end

-- Defined only with MAX_REQUESTS: a response() hook costs wrk a copy of
-- every answer into Lua.
local max_requests = tonumber(os.getenv("MAX_REQUESTS") or "")
if max_requests then
  local answered = 0
  function response(status)
    answered = answered + 1
    if answered >= max_requests then
      io.write(string.format("FILLED answered=%d\n", answered))
      os.exit(0)
    end
  end
end

function request()
  counter = counter + 1
  local k = (counter - 1) % n_payloads + 1
  local id = string.format("%08x-%04x-4%03x-8%03x-%012x",
    run_tag, thread_no, 0, k, counter)
  return heads[k] .. id .. tails[k]
end

-- Fixed rate: every call claims the next send slot of this thread's schedule
-- (one slot every interval_ms); a connection waits until its slot. As long as
-- there are more connections than requests in flight, the schedule is kept
-- and the achieved rate is the target (run.sh checks it from wrk's count).
function delay()
  if interval_ms == 0 then
    return 0
  end
  local t = now_ms()
  if next_slot == nil or next_slot < t then
    next_slot = t
  end
  local wait = next_slot - t
  next_slot = next_slot + interval_ms
  return wait
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  local non2xx = e.status -- wrk counts statuses above 399 here
  io.write(string.format(
    "RESULT requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f mean_ms=%.3f non2xx=%d connect_err=%d read_err=%d write_err=%d timeouts=%d bytes=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
    latency.max / 1000, latency.mean / 1000,
    non2xx, e.connect, e.read, e.write, e.timeout, summary.bytes))
end
