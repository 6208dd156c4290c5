"""The Lua scripts RedisSaver runs server-side, each one atomic on plain Redis 7.

Invariant: every script that writes a thread first checks its head (and lease) and writes
nothing when the check fails; KEYS of a thread are ``head, cp, cpv, val, w, wx, threads``.

Invariant: a thread's keys live and die together. The head's field ``keys`` lists (as digits)
which of KEYS[2..6] the thread has; every script checks that they all exist before it reads
or writes (an error reply ``TETHER_MISSING <n>`` otherwise, before any write), and every
script that writes seals the list and sets one TTL on all six keys (or none), so they expire
together and only eviction or a hand can remove one alone.

Invariant: ``wx`` indexes ``w``: for each task id, the names of exactly the fields of ``w``
that belong to it, each followed by the byte 0xFF (which UTF-8 text never contains). Every
script that adds or removes fields of ``w`` updates ``wx`` in the same call, so reading or
deleting a task's writes touches only that task's rows, never the whole thread.
"""

from __future__ import annotations

# The write index (KEYS w wx): ``put_writes_from(i)`` stores (field payload)* pairs from
# ARGV[i] to the end and lists each new field under its task (the text before the first
# NUL) in ``wx``, reading and rewriting each task's entry once per call.
_INDEX = """
local function put_writes_from(w, wx, i)
  local added = {}
  local order = {}
  while i < #ARGV do
    local f = ARGV[i]
    if redis.call('HSET', w, f, ARGV[i + 1]) == 1 then
      local task = string.match(f, '^([^%z]*)%z') or f
      local list = added[task]
      if not list then
        list = {}
        added[task] = list
        order[#order + 1] = task
      end
      list[#list + 1] = f .. '\\255'
    end
    i = i + 2
  end
  for _, task in ipairs(order) do
    local old = redis.call('HGET', wx, task) or ''
    redis.call('HSET', wx, task, old .. table.concat(added[task]))
  end
end
local function fields_of(entry, out)
  local pos = 1
  while true do
    local stop = string.find(entry, '\\255', pos, true)
    if not stop then return end
    out[#out + 1] = string.sub(entry, pos, stop - 1)
    pos = stop + 1
  end
end
local function chunked(cmd, key, list)
  local out = {}
  for s = 1, #list, 1000 do
    local part = redis.call(cmd, key, unpack(list, s, math.min(s + 999, #list)))
    if type(part) == 'table' then
      for j = 1, #part do out[#out + 1] = part[j] end
    end
  end
  return out
end
local function task_fields(wx, tasks)
  local fields = {}
  for _, entry in ipairs(chunked('HMGET', wx, tasks)) do
    if entry then fields_of(entry, fields) end
  end
  return fields
end
"""

# Whether every key of the thread is there (KEYS head cp cpv val w wx threads; ARGV tid).
# ``missing(tid)`` is the KEYS index of a listed key that is gone, or nil. Without a
# ``keys`` list the head itself is gone if the thread's other keys remain, or if the thread
# list says the thread should live more than another second (its score is its expiry, or
# +inf). ``seal()`` rewrites the list after a script wrote; the fast path holds because
# writes only add keys and deletes only remove them.
_INTACT = """
local function present()
  return redis.call('EXISTS', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
end
local function missing(tid)
  local has = redis.call('HGET', KEYS[1], 'keys')
  if has then
    if has == '' then return nil end
    local listed = {}
    for i = 1, #has do listed[i] = tonumber(string.sub(has, i, i)) end
    local names = {}
    for i, k in ipairs(listed) do names[i] = KEYS[k] end
    if redis.call('EXISTS', unpack(names)) == #names then return nil end
    for _, k in ipairs(listed) do
      if redis.call('EXISTS', KEYS[k]) == 0 then return k end
    end
    return nil
  end
  if present() > 0 then return 1 end
  local expiry = redis.call('ZSCORE', KEYS[7], tid)
  if not expiry then return nil end
  if expiry == 'inf' then return 1 end
  local t = redis.call('TIME')
  if tonumber(expiry) - 1 > tonumber(t[1]) then return 1 end
  return nil
end
local function refuse(k)
  return redis.error_reply('TETHER_MISSING ' .. k)
end
local function seal()
  local has = redis.call('HGET', KEYS[1], 'keys')
  local n = present()
  if (has and n == #has) or (not has and n == 0) then return end
  local now = ''
  for i = 2, 6 do
    if redis.call('EXISTS', KEYS[i]) == 1 then now = now .. i end
  end
  redis.call('HSET', KEYS[1], 'keys', now)
end
"""

# Shared helpers. A lease blocks unless it is free, expired, ours (ARGV run), or the one
# held by the dead process the caller names (srun/shost/spid).
_PRELUDE = (
    """
local function lease_ok(head, now, run, srun, shost, spid)
  local l = redis.call('HMGET', head, 'lrun', 'lhost', 'lpid', 'lexp')
  if not l[1] then return true, l end
  if tonumber(l[4]) <= tonumber(now) then return true, l end
  if run ~= '' and l[1] == run then return true, l end
  if srun ~= '' and l[1] == srun and l[2] == shost and l[3] == spid then return true, l end
  return false, l
end
local function busy(ver, l)
  return {0, ver or '', l[1] or '', l[2] or '', l[3] or '', l[4] or ''}
end
local function touch(ttl, tid)
  if ttl == '' then
    if redis.call('PTTL', KEYS[1]) < 0 then return end
    for i = 1, 6 do redis.call('PERSIST', KEYS[i]) end
    if redis.call('HEXISTS', KEYS[1], 'ver') == 1 then
      redis.call('ZADD', KEYS[7], '+inf', tid)
    end
    return
  end
  for i = 1, 6 do redis.call('EXPIRE', KEYS[i], ttl) end
  if redis.call('HEXISTS', KEYS[1], 'ver') == 1 then
    local t = redis.call('TIME')
    redis.call('ZADD', KEYS[7], tonumber(t[1]) + tonumber(ttl), tid)
  end
end
local function listed(ttl, tid)
  if ttl == '' then
    redis.call('ZADD', KEYS[7], '+inf', tid)
  else
    local t = redis.call('TIME')
    redis.call('ZADD', KEYS[7], tonumber(t[1]) + tonumber(ttl), tid)
  end
end
"""
    + _INDEX
    + _INTACT
)

# ARGV: tid expected now run host pid exp srun shost spid cid ver cp_packed ttl nvals
#       (val_field val_packed)*nvals (write_field payload)*
COMMIT = (
    _PRELUDE
    + """
local gone = missing(ARGV[1])
if gone then return refuse(gone) end
local ver = redis.call('HGET', KEYS[1], 'ver')
local expected = ARGV[2]
local ok, l = lease_ok(KEYS[1], ARGV[3], ARGV[4], ARGV[8], ARGV[9], ARGV[10])
if (expected == '' and ver) or (expected ~= '' and ver ~= expected) or not ok then
  return busy(ver, l)
end
redis.call('HSET', KEYS[2], ARGV[11], ARGV[13])
redis.call('ZADD', KEYS[3], ARGV[12], ARGV[11])
local n = tonumber(ARGV[15])
local i = 16
for _ = 1, n do
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1])
  i = i + 2
end
put_writes_from(KEYS[5], KEYS[6], i)
redis.call('HSET', KEYS[1], 'cp', ARGV[11], 'ver', ARGV[12])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'lrun', ARGV[4], 'lhost', ARGV[5], 'lpid', ARGV[6], 'lexp', ARGV[7])
end
seal()
listed(ARGV[14], ARGV[1])
touch(ARGV[14], ARGV[1])
return {1}
"""
)

# ARGV: tid ttl (write_field payload)*
PUT_WRITES = (
    _PRELUDE
    + """
local gone = missing(ARGV[1])
if gone then return refuse(gone) end
put_writes_from(KEYS[5], KEYS[6], 3)
seal()
touch(ARGV[2], ARGV[1])
return 1
"""
)

# ARGV: tid now run host pid exp srun shost spid ttl
CLAIM = (
    _PRELUDE
    + """
local gone = missing(ARGV[1])
if gone then return refuse(gone) end
local ok, l = lease_ok(KEYS[1], ARGV[2], ARGV[3], ARGV[7], ARGV[8], ARGV[9])
local head = redis.call('HMGET', KEYS[1], 'cp', 'ver')
if not ok then return busy(head[2], l) end
redis.call('HSET', KEYS[1], 'lrun', ARGV[3], 'lhost', ARGV[4], 'lpid', ARGV[5], 'lexp', ARGV[6])
touch(ARGV[10], ARGV[1])
return {1, head[1] or '', head[2] or ''}
"""
)

# KEYS: head w; ARGV: run. A head without a checkpoint goes with the lease unless the thread
# has writes or other keys (which the head's ``keys`` list must keep accounting for).
RELEASE = """
if redis.call('HGET', KEYS[1], 'lrun') ~= ARGV[1] then return 0 end
local has = redis.call('HGET', KEYS[1], 'keys') or ''
if redis.call('HEXISTS', KEYS[1], 'ver') == 0 and redis.call('EXISTS', KEYS[2]) == 0
   and has == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('HDEL', KEYS[1], 'lrun', 'lhost', 'lpid', 'lexp')
end
return 1
"""

# KEYS: threads; drops threads whose TTL has passed, returns the rest.
LIST_THREADS = """
local t = redis.call('TIME')
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. t[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""

# The read scripts take all KEYS of the thread and its id as ARGV[1], and refuse a thread
# with a key gone (``_INTACT``) rather than answer from part of it.

# ARGV: tid. Returns the head's checkpoint id and version (nil, nil: no thread).
GET_HEAD = (
    _INTACT
    + """
local gone = missing(ARGV[1])
if gone then return refuse(gone) end
return redis.call('HMGET', KEYS[1], 'cp', 'ver')
"""
)

# ARGV: tid checkpoint_id. Returns the packed row or nil.
GET_CHECKPOINT = (
    _INTACT
    + """
local gone = missing(ARGV[1])
if gone then return refuse(gone) end
return redis.call('HGET', KEYS[2], ARGV[2])
"""
)

# ARGV: tid (channel version)*. Returns (channel version packed)* for every row found
# walking ``prev`` (the row's text header ``prev|``) from each wanted version; stops at a
# missing row (the caller reports it).
GET_VALUES = (
    _INTACT
    + """
local gone = missing(ARGV[1])
if gone then return refuse(gone) end
local out = {}
for i = 2, #ARGV, 2 do
  local ch = ARGV[i]
  local v = ARGV[i + 1]
  while v do
    local raw = redis.call('HGET', KEYS[4], ch .. '\\0' .. v)
    if not raw then break end
    out[#out + 1] = ch
    out[#out + 1] = v
    out[#out + 1] = raw
    local prev = string.match(raw, '^(%-?%d+)|')
    if prev == nil or tonumber(prev) >= tonumber(v) then break end
    v = prev
  end
end
return out
"""
)

# ARGV: tid task_id* (distinct). Returns (field payload)* of those tasks' writes, looked up
# through the index: two HMGETs, whatever else the thread holds.
GET_WRITES = (
    _INDEX
    + _INTACT
    + """
local gone = missing(ARGV[1])
if gone then return refuse(gone) end
local tasks = {}
for j = 2, #ARGV do tasks[#tasks + 1] = ARGV[j] end
local fields = task_fields(KEYS[6], tasks)
local out = {}
if #fields == 0 then return out end
local payloads = chunked('HMGET', KEYS[5], fields)
for j = 1, #fields do
  if payloads[j] then
    out[#out + 1] = fields[j]
    out[#out + 1] = payloads[j]
  end
end
return out
"""
)

# ARGV: tid max_score ('+inf' or '(N') limit ('' = all). Returns ids then rows.
LIST_CHECKPOINTS = (
    _INTACT
    + """
local gone = missing(ARGV[1])
if gone then return refuse(gone) end
local ids
if ARGV[3] == '' then
  ids = redis.call('ZREVRANGEBYSCORE', KEYS[3], ARGV[2], '-inf')
else
  ids = redis.call('ZREVRANGEBYSCORE', KEYS[3], ARGV[2], '-inf', 'LIMIT', 0, ARGV[3])
end
if #ids == 0 then return {{}, {}} end
local rows = {}
for i = 1, #ids, 1000 do
  local part = redis.call('HMGET', KEYS[2], unpack(ids, i, math.min(i + 999, #ids)))
  for j = 1, #part do rows[#rows + 1] = part[j] end
end
return {ids, rows}
"""
)

# ARGV: tid. Returns the whole of head, cp, val and w (as flat field/value lists).
DUMP_THREAD = (
    _INTACT
    + """
local gone = missing(ARGV[1])
if gone then return refuse(gone) end
local out = {}
for _, k in ipairs({1, 2, 4, 5}) do out[#out + 1] = redis.call('HGETALL', KEYS[k]) end
return out
"""
)

# ARGV: tid ncp cp_id* nval val_field* task_id* (distinct). Checks and seals like a write:
# a hash left empty is gone, and the head's ``keys`` list must say so.
DELETE_CHECKPOINTS = (
    _INDEX
    + _INTACT
    + """
local gone = missing(ARGV[1])
if gone then return refuse(gone) end
local n = tonumber(ARGV[2])
local i = 3
for _ = 1, n do
  redis.call('HDEL', KEYS[2], ARGV[i])
  redis.call('ZREM', KEYS[3], ARGV[i])
  i = i + 1
end
local m = tonumber(ARGV[i])
i = i + 1
for _ = 1, m do
  redis.call('HDEL', KEYS[4], ARGV[i])
  i = i + 1
end
if i <= #ARGV then
  local tasks = {}
  for j = i, #ARGV do tasks[#tasks + 1] = ARGV[j] end
  local fields = task_fields(KEYS[6], tasks)
  if #fields > 0 then chunked('HDEL', KEYS[5], fields) end
  chunked('HDEL', KEYS[6], tasks)
end
seal()
return 1
"""
)

# ARGV: tid cid ('' = no head) ver ttl ncp (id version packed)*ncp nval (field packed)*nval
#       (write_field payload)*. Returns 0 when the thread already has a head.
LOAD_THREAD = (
    _PRELUDE
    + """
if redis.call('HEXISTS', KEYS[1], 'ver') == 1 then return 0 end
local gone = missing(ARGV[1])
if gone then return refuse(gone) end
redis.call('DEL', KEYS[1])
local i = 6
for _ = 1, tonumber(ARGV[5]) do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 2])
  redis.call('ZADD', KEYS[3], ARGV[i + 1], ARGV[i])
  i = i + 3
end
local m = tonumber(ARGV[i])
i = i + 1
for _ = 1, m do
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1])
  i = i + 2
end
put_writes_from(KEYS[5], KEYS[6], i)
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'cp', ARGV[2], 'ver', ARGV[3])
  listed(ARGV[4], ARGV[1])
end
seal()
touch(ARGV[4], ARGV[1])
return 1
"""
)
