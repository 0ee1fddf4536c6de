"""The Redis event log's layout and its Lua scripts; each script runs atomically inside Redis.

Keys of one execution ``X`` (prefix ``P``):

* ``P:log:X``, a stream. Event number ``n`` (1, 2, 3, ...) has the entry ID ``n-0`` and the
  fields ``k`` (its idempotency key ``<corr>:<index>``), ``s`` (its source number) and ``d``
  (the event's JSON exactly as ingested); its SSE frame is built on read
  (``docs/server-architecture.md``, "Event log storage"). Marking the log ended adds one entry
  ``L-1`` (``L``: the newest number then) with the field ``e`` (the final status): it sorts
  right after the last event stored before the end, so a reader of the stream meets it
  exactly there. Entries written before this layout have ``k``, ``m`` (JSON ``[kind,
  correlation_id, index, checkpoint_id, checkpoint_name, step_name]``) and ``f`` (the frame)
  instead, and are still read.
* ``P:src:X``, a hash: the execution's sources (JSON ``[kind, correlation_id, checkpoint_id,
  checkpoint_name, step_name]``), each stored once: ``<n>`` -> source, ``m:<source>`` -> ``n``,
  ``c:<correlation_id>`` -> ``<corr>`` (the number of the first source with that correlation
  ID) and ``#``, the last number given. It is never deleted, so a number never changes meaning
  (replicas cache them).
* ``P:meta:X``, a hash: ``last`` (newest event number), ``ended``, ``ended_at`` and
  ``end_seq`` (the ``L`` of the end entry). It outlives the stream, so a reader below what is
  retained still learns how much it lost.
* ``P:keys:X``, a hash from idempotency key to event number, for the events still retained.
* ``P:ended``, a sorted set of ended executions by end time (only with time retention).

The first retained event is the stream's first ``n-0`` entry (or ``last + 1`` when there is
none): numbers are contiguous and only ever removed from the front, so a gap is exact.
"""

from __future__ import annotations

__all__ = ["EXPIRE", "MARK_ENDED", "READ", "SOURCES", "TAIL", "TRUNCATE"]

# Appends are not a script: see kitaru.backends._redis_append (an optimistic transaction, so
# Redis runs plain commands). SOURCES is its rare step; retention by length runs TRUNCATE
# after an append that went over it.

# KEYS: src. ARGV: the number S of sources, then S pairs (source JSON, correlation_id). Gives
# each source not numbered yet the next number. Returns per source {its number, the number of
# the first source with its correlation ID} (the idempotency keys' first part), flat.
SOURCES = """
local out = {}
for i = 1, tonumber(ARGV[1]) do
  local m, c = ARGV[2 * i], 'c:' .. ARGV[2 * i + 1]
  local s = redis.call('HGET', KEYS[1], 'm:' .. m)
  if not s then
    s = tostring(redis.call('HINCRBY', KEYS[1], '#', 1))
    redis.call('HSET', KEYS[1], 'm:' .. m, s, s, m)
    redis.call('HSETNX', KEYS[1], c, s)
  end
  out[#out + 1] = s
  out[#out + 1] = redis.call('HGET', KEYS[1], c)
end
return out
"""

# Shared by READ and TAIL: the first retained event number (see the module docstring), and
# one event entry as four values {id, key, source number, JSON} ({id, key, m, frame} for an
# entry of the older layout, whose m starts with "["), plus the sources those entries use.
_COMMON = """
local function first_retained(stream, last)
  local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 2)
  for _, e in ipairs(first) do
    local s, q = string.match(e[1], '^(%d+)-(%d+)$')
    if q == '0' then return tonumber(s) end
  end
  return last + 1
end
local function put(out, n, e, srcs, used)
  local f = e[2]
  out[n + 1] = e[1]
  out[n + 2] = f[2]
  out[n + 3] = f[4]
  out[n + 4] = f[6]
  if f[3] == 's' and not used[f[4]] then
    used[f[4]] = true
    srcs[#srcs + 1] = f[4]
    srcs[#srcs + 1] = redis.call('HGET', KEYS[3], f[4]) or '[]'
  end
  return n + 4
end
"""

# KEYS: log, meta, src. ARGV: after (event number), limit.
# Returns {last, base, ended or "", entries, from, sources}: entries flat, four values per
# event (see _COMMON); sources flat pairs {number, source JSON}. When after > last nothing is
# read (the cursor is beyond the end).
READ = (
    _COMMON
    + """
local meta = redis.call('HMGET', KEYS[2], 'last', 'ended')
local last = tonumber(meta[1] or '0')
local ended = meta[2] or ''
local after = tonumber(ARGV[1])
if after > last then return {last, 0, ended, {}, after, {}} end
local base = first_retained(KEYS[1], last)
local from = after
if base - 1 > from then from = base - 1 end
local want = tonumber(ARGV[2])
-- One more than wanted: the end entry may sit among them.
local entries = redis.call('XRANGE', KEYS[1], '(' .. from .. '-0', '+', 'COUNT', want + 1)
local out, srcs, used = {}, {}, {}
local n, got = 0, 0
for _, e in ipairs(entries) do
  if got >= want then break end
  if e[2][1] == 'k' then
    got = got + 1
    n = put(out, n, e, srcs, used)
  end
end
return {last, base, ended, out, from, srcs}
"""
)

# KEYS: log, meta, src. ARGV: n. The newest n entries for a reader that starts following the
# log. Returns {last, ended or "", entries newest first, sources}: entries flat, four values
# each (see _COMMON; the end entry: {id, "", "", status}).
TAIL = (
    _COMMON
    + """
local meta = redis.call('HMGET', KEYS[2], 'last', 'ended')
local last = tonumber(meta[1] or '0')
local entries = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', tonumber(ARGV[1]) + 1)
local out, srcs, used = {}, {}, {}
local n = 0
for _, e in ipairs(entries) do
  if e[2][1] == 'k' then
    n = put(out, n, e, srcs, used)
  else
    out[n + 1] = e[1]
    out[n + 2] = ''
    out[n + 3] = ''
    out[n + 4] = e[2][2]
    n = n + 4
  end
end
return {last, meta[2] or '', out, srcs}
"""
)

# KEYS: log, meta, ended set. ARGV: status, now, exec_id, "1" to note it for time retention.
# Returns 1 when this call ended the log, 0 when it had ended already (first status wins).
MARK_ENDED = """
if redis.call('HSETNX', KEYS[2], 'ended', ARGV[1]) == 0 then return 0 end
local last = tonumber(redis.call('HGET', KEYS[2], 'last') or '0')
redis.call('HSET', KEYS[2], 'ended_at', ARGV[2], 'end_seq', last)
redis.call('XADD', KEYS[1], last .. '-1', 'e', ARGV[1])
if ARGV[4] == '1' then redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3]) end
return 1
"""

# KEYS: log, keys, meta. ARGV: through. Returns how many events were dropped, or -1 when
# ``through`` is beyond the end of the log.
TRUNCATE = """
local last = tonumber(redis.call('HGET', KEYS[3], 'last') or '0')
local through = tonumber(ARGV[1])
if through > last then return -1 end
local old = redis.call('XRANGE', KEYS[1], '-', through .. '-0')
local n = 0
for _, e in ipairs(old) do
  if e[2][1] == 'k' then
    n = n + 1
    redis.call('HDEL', KEYS[2], e[2][2])
  end
end
redis.call('XTRIM', KEYS[1], 'MINID', (through + 1) .. '-0')
return n
"""

# KEYS: log, keys, meta, ended set. ARGV: exec_id. Drops every event of an ended execution
# (its meta stays); returns how many, or -1 when another replica did it first.
EXPIRE = """
if redis.call('ZREM', KEYS[4], ARGV[1]) == 0 then return -1 end
local n = redis.call('XLEN', KEYS[1])
local end_seq = redis.call('HGET', KEYS[3], 'end_seq')
if end_seq and #redis.call('XRANGE', KEYS[1], end_seq .. '-1', end_seq .. '-1') > 0 then
  n = n - 1
end
redis.call('DEL', KEYS[1], KEYS[2])
return n
"""
