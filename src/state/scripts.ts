/**
 * Lua scripts for every state change. Each runs atomically in Redis, so two schedulers, a
 * late worker, or an API call racing a worker can never move a record from a state it has
 * already left (compare-and-set on the previous state and try number).
 */

/**
 * KEYS: 1 ti hash, 2 global occupancy zset, 3 dag occupancy zset, 4 pool occupancy zset, 5 pools hash
 * ARGV: 1 allowed from-states ("a,b" or "*"), 2 to-state, 3 expected try ("" = any),
 *       4 JSON object of other fields to set (string values; "\0" deletes the field),
 *       5 member (ti key), 6 pool name, 7 pool slots, 8 limits JSON ("" = no checks),
 *       9 events channel, 10 event payload
 * Returns {1, previous state} | {0, current state or "missing", current try} | {-1, which limit}
 */
export const TRANSITION_TI = `
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then return {0, 'missing', ''} end
local curTry = redis.call('HGET', KEYS[1], 'try_number') or ''
if ARGV[1] ~= '*' then
  local ok = false
  for s in string.gmatch(ARGV[1], '[^,]+') do if s == cur then ok = true end end
  if not ok then return {0, cur, curTry} end
end
if ARGV[3] ~= '' and curTry ~= ARGV[3] then return {0, cur, curTry} end
local to = ARGV[2]
local occupying = (to == 'queued' or to == 'running')
local member = ARGV[5]
if occupying and ARGV[8] ~= '' and not redis.call('ZSCORE', KEYS[2], member) then
  local lim = cjson.decode(ARGV[8])
  if lim.parallelism and redis.call('ZCARD', KEYS[2]) >= tonumber(lim.parallelism) then return {-1, 'parallelism'} end
  if lim.max_active_tasks and redis.call('ZCARD', KEYS[3]) >= tonumber(lim.max_active_tasks) then return {-1, 'max_active_tasks'} end
  local total
  local def = redis.call('HGET', KEYS[5], ARGV[6])
  if def then total = tonumber(cjson.decode(def).slots)
  elseif ARGV[6] == 'default_pool' then total = 128
  else return {-1, 'no_such_pool'} end
  if total >= 0 then
    local used = 0
    local rows = redis.call('ZRANGE', KEYS[4], 0, -1, 'WITHSCORES')
    for i = 2, #rows, 2 do used = used + tonumber(rows[i]) end
    if used + tonumber(ARGV[7]) > total then return {-1, 'pool'} end
  end
end
local fields = cjson.decode(ARGV[4])
for k, v in pairs(fields) do
  if v == '\\0' then redis.call('HDEL', KEYS[1], k) else redis.call('HSET', KEYS[1], k, v) end
end
redis.call('HSET', KEYS[1], 'state', to)
if occupying then
  redis.call('ZADD', KEYS[2], 1, member)
  redis.call('ZADD', KEYS[3], 1, member)
  redis.call('ZADD', KEYS[4], tonumber(ARGV[7]), member)
else
  redis.call('ZREM', KEYS[2], member)
  redis.call('ZREM', KEYS[3], member)
  redis.call('ZREM', KEYS[4], member)
end
if ARGV[9] ~= '' then redis.call('PUBLISH', ARGV[9], ARGV[10]) end
return {1, cur, curTry}
`;

/**
 * KEYS: 1 run hash, 2 active runs set
 * ARGV: 1 allowed from-states, 2 to-state, 3 fields JSON, 4 active member, 5 events channel, 6 payload
 */
export const TRANSITION_RUN = `
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then return {0, 'missing'} end
if ARGV[1] ~= '*' then
  local ok = false
  for s in string.gmatch(ARGV[1], '[^,]+') do if s == cur then ok = true end end
  if not ok then return {0, cur} end
end
local fields = cjson.decode(ARGV[3])
for k, v in pairs(fields) do
  if v == '\\0' then redis.call('HDEL', KEYS[1], k) else redis.call('HSET', KEYS[1], k, v) end
end
redis.call('HSET', KEYS[1], 'state', ARGV[2])
if ARGV[2] == 'queued' or ARGV[2] == 'running' then redis.call('SADD', KEYS[2], ARGV[4])
else redis.call('SREM', KEYS[2], ARGV[4]) end
if ARGV[5] ~= '' then redis.call('PUBLISH', ARGV[5], ARGV[6]) end
return {1, cur}
`;

/**
 * Create a DAG run and its task instances, once per run id and once per logical date.
 * KEYS: 1 run hash, 2 runs zset, 3 runs-by-date hash, 4 active set, 5 tis set
 * ARGV: 1 run id, 2 logical date ISO, 3 logical date ms, 4 run fields JSON, 5 active member,
 *       6 TI key prefix (…:ti:dag:run:), 7 TI JSON list [{task_id, map_index, fields}], 8 events channel
 * Returns {1, run id} | {0, 'run_id', existing} | {0, 'logical_date', existing run id}.
 * The logical date is checked first: a default run id (manual__<date>) derives from it, so a
 * clash on both is really a clash on the date.
 */
export const CREATE_RUN = `
local existing = redis.call('HGET', KEYS[3], ARGV[2])
if existing then return {0, 'logical_date', existing} end
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, 'run_id', ARGV[1]} end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[1])
local fields = cjson.decode(ARGV[4])
for k, v in pairs(fields) do redis.call('HSET', KEYS[1], k, v) end
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]), ARGV[1])
redis.call('SADD', KEYS[4], ARGV[5])
local tis = cjson.decode(ARGV[7])
for _, ti in ipairs(tis) do
  local key = ARGV[6] .. ti.task_id .. ':' .. ti.map_index
  for k, v in pairs(ti.fields) do redis.call('HSET', key, k, v) end
  redis.call('SADD', KEYS[5], ti.task_id .. '|' .. ti.map_index)
end
if ARGV[8] ~= '' then redis.call('PUBLISH', ARGV[8], 'run') end
return {1, ARGV[1]}
`;

/**
 * Replace a mapped task's placeholder (map index -1) by one instance per element.
 * KEYS: 1 placeholder ti hash, 2 tis set
 * ARGV: 1 ti key prefix, 2 task id, 3 JSON list of field objects (one per map index)
 * Returns 1 when expanded now, 0 when already expanded (placeholder gone or not "none").
 */
export const EXPAND_TI = `
local st = redis.call('HGET', KEYS[1], 'state')
if st ~= 'none' then return 0 end
local list = cjson.decode(ARGV[3])
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[2] .. '|-1')
for i, fields in ipairs(list) do
  local key = ARGV[1] .. ARGV[2] .. ':' .. (i - 1)
  for k, v in pairs(fields) do redis.call('HSET', key, k, v) end
  redis.call('SADD', KEYS[2], ARGV[2] .. '|' .. (i - 1))
end
return 1
`;
