"""The Lua scripts of the Redis event log; each runs atomically inside Redis.

Keys of one execution ``X`` (prefix ``P``):

* ``P:log:X``, a stream. Event number ``n`` (1, 2, 3, ...) has the entry ID ``n-0`` and the
  fields ``k`` (its idempotency key), ``m`` (JSON ``[kind, correlation_id, index,
  checkpoint_id, checkpoint_name, step_name]``) and ``f`` (its ready-made SSE frame). Marking
  the log ended adds one entry ``L-1`` (``L``: the newest number then) with the field ``e``
  (the final status): it sorts right after the last event stored before the end, so a reader
  of the stream meets it exactly there.
* ``P:meta:X``, a hash: ``last`` (newest event number), ``ended``, ``ended_at`` and
  ``end_seq`` (the ``L`` of the end entry). It outlives the stream, so a reader below what is
  retained still learns how much it lost.
* ``P:keys:X``, a hash from idempotency key (``<index>:<correlation_id>``) to event number,
  for the events still retained.
* ``P:ended``, a sorted set of ended executions by end time (only with time retention).

The first retained event is the stream's first ``n-0`` entry (or ``last + 1`` when there is
none): numbers are contiguous and only ever removed from the front, so a gap is exact.
"""

from __future__ import annotations

__all__ = ["APPEND", "EXPIRE", "MARK_ENDED", "READ", "TAIL", "TRUNCATE"]

# KEYS: log, meta, keys. ARGV: max_events (0: all), then 4 per event: key, kind, the body
# without its closing brace ("" for an empty object), m. Returns {stored, last}.
APPEND = """
local last = tonumber(redis.call('HGET', KEYS[2], 'last') or '0')
local stored = 0
for b = 2, #ARGV, 4 do
  if redis.call('HSETNX', KEYS[3], ARGV[b], last + 1) == 1 then
    last = last + 1
    local c = string.format('%012d', last)
    local head = ARGV[b + 2]
    local data
    if head == '' then
      data = '{"cursor":"' .. c .. '"}'
    else
      data = head .. ',"cursor":"' .. c .. '"}'
    end
    redis.call('XADD', KEYS[1], last .. '-0', 'k', ARGV[b], 'm', ARGV[b + 3],
      'f', 'id: ' .. c .. '\\nevent: ' .. ARGV[b + 1] .. '\\ndata: ' .. data .. '\\n\\n')
    stored = stored + 1
  end
end
if stored > 0 then
  redis.call('HSET', KEYS[2], 'last', last)
  local maxn = tonumber(ARGV[1])
  if maxn > 0 and last > maxn then
    local base = last - maxn + 1
    local old = redis.call('XRANGE', KEYS[1], '-', '(' .. base .. '-0')
    if #old > 0 then
      for _, e in ipairs(old) do
        if e[2][1] == 'k' then redis.call('HDEL', KEYS[3], e[2][2]) end
      end
      redis.call('XTRIM', KEYS[1], 'MINID', base .. '-0')
    end
  end
end
return {stored, last}
"""

# Shared by READ and TAIL: the first retained event number (see the module docstring).
_BASE = """
local function first_retained(stream, last)
  local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 2)
  for _, e in ipairs(first) do
    local s, q = string.match(e[1], '^(%d+)-(%d+)$')
    if q == '0' then return tonumber(s) end
  end
  return last + 1
end
"""

# KEYS: log, meta. ARGV: after (event number), limit, mode ("f": frames only).
# Returns {last, base, ended or "", events, from}; events are frames in mode "f", else
# {id, m, frame} triples. When after > last nothing is read (the cursor is beyond the end).
READ = (
    _BASE
    + """
local meta = redis.call('HMGET', KEYS[2], 'last', 'ended')
local last = tonumber(meta[1] or '0')
local ended = meta[2] or ''
local after = tonumber(ARGV[1])
if after > last then return {last, 0, ended, {}, after} end
local base = first_retained(KEYS[1], last)
local from = after
if base - 1 > from then from = base - 1 end
local want = tonumber(ARGV[2])
-- One more than wanted: the end entry may sit among them.
local entries = redis.call('XRANGE', KEYS[1], '(' .. from .. '-0', '+', 'COUNT', want + 1)
local out = {}
local n = 0
for _, e in ipairs(entries) do
  if n >= want then break end
  local f = e[2]
  if f[1] == 'k' then
    n = n + 1
    if ARGV[3] == 'f' then out[n] = f[6] else out[n] = {e[1], f[4], f[6]} end
  end
end
return {last, base, ended, out, from}
"""
)

# KEYS: log, meta. ARGV: n. The newest n entries for a reader that starts following the log.
# Returns {last, ended or "", entries newest first as {id, m or "", frame or status}}.
TAIL = """
local meta = redis.call('HMGET', KEYS[2], 'last', 'ended')
local last = tonumber(meta[1] or '0')
local entries = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', tonumber(ARGV[1]) + 1)
local out = {}
for i, e in ipairs(entries) do
  local f = e[2]
  if f[1] == 'k' then out[i] = {e[1], f[4], f[6]} else out[i] = {e[1], '', f[2]} end
end
return {last, meta[2] or '', out}
"""

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
