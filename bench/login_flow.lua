-- Full OpenID Connect logins driven by wrk (bench/bench_oidc.py writes the inputs).
--
-- Run with as many threads as connections (-tN -cN): wrk's request() and
-- response() callbacks do not say which connection they serve, so each thread
-- owns one connection and carries one browser's login at a time. Each login is
-- a fresh browser (no cookies): GET /authorize, follow same-origin redirects,
-- fill the identify form from the hidden fields it carries (CSRF token,
-- interaction), follow redirects to the client's redirect URI, then spend the
-- code at /token with the PKCE verifier. Only logins answered with an access
-- token count.
--
-- args: <inputs file> <client_id> <basic authorization> <redirect_uri> <scope>
-- inputs file, one login a line: verifier challenge national_code birth_date

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } timespec;
  int clock_gettime(int clk_id, timespec *tp);
]]
local ts = ffi.new("timespec")
local function now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

local function urlencode(value)
  return (string.gsub(value, "[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

local inputs = {}
local position, stride
local client_id, authorization, redirect_uri, scope
local cookies, pending, login, started

function init(args)
  for line in io.lines(args[1]) do
    local verifier, challenge, code, born = line:match("(%S+) (%S+) (%S+) (%S+)")
    inputs[#inputs + 1] = { verifier = verifier, challenge = challenge, code = code, born = born }
  end
  client_id, authorization, redirect_uri, scope = args[2], args[3], args[4], args[5]
  stride = tonumber(args[6])
  position = tid + 1
  logins, failures, latencies = 0, 0, {}
  failed_at = {}
end

local function cookie_header()
  local parts = {}
  for name, value in pairs(cookies) do parts[#parts + 1] = name .. "=" .. value end
  return table.concat(parts, "; ")
end

local function get(path)
  return { method = "GET", path = path }
end

local function start_login()
  login = inputs[position]
  position = position + stride
  if position > #inputs then position = tid + 1 end
  cookies = {}
  started = now()
  local state = string.format("s%d%d", tid, math.random(1, 1e9))
  pending = get("/authorize?response_type=code&client_id=" .. urlencode(client_id)
    .. "&redirect_uri=" .. urlencode(redirect_uri) .. "&scope=" .. urlencode(scope)
    .. "&state=" .. state .. "&nonce=n" .. state .. "&code_challenge=" .. login.challenge
    .. "&code_challenge_method=S256")
end

function request()
  if pending == nil then start_login() end
  local headers = {}
  if next(cookies) ~= nil then headers["Cookie"] = cookie_header() end
  if pending.method == "POST" then
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    if pending.authorization then headers["Authorization"] = pending.authorization end
  end
  return wrk.format(pending.method, pending.path, headers, pending.body)
end

local function fail(step)
  failures = failures + 1
  failed_at[step] = (failed_at[step] or 0) + 1
  pending = nil
end

local function keep_cookie(headers)
  local set = headers["set-cookie"] or headers["Set-Cookie"]
  if set then
    local name, value = set:match("^%s*([^=]+)=([^;]*)")
    if name then cookies[name] = value end
  end
end

local function identify_form(body)
  local fields = {}
  for name, value in body:gmatch('<input type="hidden" name="([^"]+)" value="([^"]*)"') do
    if fields[name] == nil then fields[name] = value end
  end
  if not fields["csrf_token"] then return nil end
  local form = {}
  for name, value in pairs(fields) do form[#form + 1] = name .. "=" .. urlencode(value) end
  form[#form + 1] = "national_code=" .. login.code
  form[#form + 1] = "birth_date=" .. urlencode(login.born)
  return { method = "POST", path = "/login/identify", body = table.concat(form, "&") }
end

function response(status, headers, body)
  if pending == nil then return end
  keep_cookie(headers)
  if pending.path == "/token" then
    if status == 200 and body:find('"access_token"', 1, true) then
      logins = logins + 1
      latencies[#latencies + 1] = now() - started
      pending = nil
    else
      fail("token")
    end
    return
  end
  local location = headers["location"] or headers["Location"]
  if status >= 300 and status < 400 and location then
    if location:sub(1, 1) == "/" then
      pending = get(location)
    elseif location:sub(1, #redirect_uri) == redirect_uri then
      local code = location:match("[?&]code=([^&]+)")
      if not code then return fail("callback") end
      pending = {
        method = "POST", path = "/token", authorization = authorization,
        body = "grant_type=authorization_code&code=" .. code .. "&redirect_uri="
          .. urlencode(redirect_uri) .. "&code_verifier=" .. login.verifier,
      }
    else
      fail("redirect")
    end
  elseif status == 200 and pending.method == "GET" then
    pending = identify_form(body)
    if pending == nil then fail("form") end
  else
    fail(pending.path:match("^[^?]*") .. " " .. status)
  end
end

function done(summary, latency, requests)
  local total, failed, all = 0, 0, {}
  local reasons = {}
  for _, thread in ipairs(threads) do
    total = total + thread:get("logins")
    failed = failed + thread:get("failures")
    for _, value in ipairs(thread:get("latencies")) do all[#all + 1] = value end
    for step, count in pairs(thread:get("failed_at")) do
      reasons[step] = (reasons[step] or 0) + count
    end
  end
  table.sort(all)
  local p99 = #all > 0 and all[math.max(1, math.floor(#all * 0.99))] or 0
  local p50 = #all > 0 and all[math.max(1, math.floor(#all * 0.5))] or 0
  io.write(string.format("LOGINS %d FAILED %d SECONDS %.3f P50_MS %.2f P99_MS %.2f REQUESTS %d\n",
    total, failed, summary.duration / 1e6, p50 * 1000, p99 * 1000, summary.requests))
  for step, count in pairs(reasons) do io.write(string.format("FAILED_AT %s %d\n", step, count)) end
end
