/**
 * The Lua scripts that make each shared-state operation atomic in Redis. Redis runs a script without
 * interleaving other commands, so check-then-write needs no lock of its own. Every script takes the
 * time from Redis (`TIME`): replicas' clocks may differ, Redis's is the one they share.
 */
import { createHash } from 'node:crypto';

export interface Script {
  source: string;
  sha1: string;
}

const script = (source: string): Script => ({ source, sha1: createHash('sha1').update(source).digest('hex') });

const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/**
 * The budget: src/store/budget.ts planSlot, line for line, over sorted sets (score = slot time).
 * KEYS: slots, pause, user slots. ARGV: perMinute, perHour, maxWaitMs (what is left of it), member,
 * perUserPerMinute (0: none), minuteMs, hourMs.
 * Returns {1, waitMs, at} granted and reserved; {0, waitMs} refused; {2, waitMs} the user's share is
 * spent (nothing reserved).
 */
export const BUDGET = script(`${NOW}
local perMinute, perHour, maxWait = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local perUser, minute, hour = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local function scoreAt(key, i)
  return tonumber(redis.call('ZRANGE', key, i, i, 'WITHSCORES')[2])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - hour)
local n = redis.call('ZCARD', KEYS[1])
local at = now
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused > at then at = paused end
if n > 0 then at = math.max(at, scoreAt(KEYS[1], n - 1)) end
if n >= perMinute then at = math.max(at, scoreAt(KEYS[1], n - perMinute) + minute) end
if n >= perHour then at = math.max(at, scoreAt(KEYS[1], n - perHour) + hour) end
if perUser > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - minute)
  local un = redis.call('ZCARD', KEYS[3])
  if un >= perUser then
    local userAt = scoreAt(KEYS[3], un - perUser) + minute
    if userAt > at then return {2, userAt - now} end
  end
end
if at - now > maxWait then return {0, at - now} end
redis.call('ZADD', KEYS[1], at, ARGV[4])
redis.call('PEXPIRE', KEYS[1], at - now + hour)
if perUser > 0 then
  redis.call('ZADD', KEYS[3], at, ARGV[4])
  redis.call('PEXPIRE', KEYS[3], at - now + minute)
end
return {1, at - now, at}
`);

/** KEYS: slots. ARGV: minuteMs, hourMs. Returns {slots in the rolling minute, in the rolling hour} up to now (for metrics). */
export const USAGE = script(`${NOW}
return {redis.call('ZCOUNT', KEYS[1], '(' .. (now - tonumber(ARGV[1])), now), redis.call('ZCOUNT', KEYS[1], '(' .. (now - tonumber(ARGV[2])), now)}
`);

/** KEYS: pause. ARGV: ms. Holds every replica's calls until Redis's now + ms (never shortens a pause). */
export const PAUSE = script(`${NOW}
local untilMs = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if untilMs > current then redis.call('SET', KEYS[1], untilMs, 'PX', tonumber(ARGV[1]) + 1000) end
return 1
`);

/**
 * After waiting for a slot: if a pause (an upstream 429, on any replica) began meanwhile and still holds,
 * give the slot back so the caller reserves again after the pause. KEYS: slots, pause, user slots.
 * ARGV: member. Returns 1 when the slot was given back.
 */
export const RECHECK_PAUSE = script(`${NOW}
if tonumber(redis.call('GET', KEYS[2]) or '0') > now then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 1
end
return 0
`);

/**
 * Take a device lock, or learn that someone holds it, or (for a caller waiting since Redis time ARGV[4])
 * get the result of a write that finished after it started waiting.
 * KEYS: lock, dirty, result, known (the namespace's marker that Redis still holds its lock state).
 * ARGV: owner, lockTtlMs, dirtyTtlMs, waiting since ('' if not waiting).
 * Returns {1, previous dirty owner or nil}: taken (a dirty marker means its last holder never finished;
 * without the known marker Redis lost its state, or no lock was taken for a while, so a write may be in
 * flight that left no marker: 'state-lost' tells the holder to look first too);
 * {0, now}: held by someone else; {2, json}: a result to share.
 */
export const LOCK_ACQUIRE = script(`${NOW}
if ARGV[4] ~= '' then
  local r = redis.call('GET', KEYS[3])
  if r then
    local sep = string.find(r, '\\n', 1, true)
    if sep and tonumber(string.sub(r, 1, sep - 1)) >= tonumber(ARGV[4]) then return {2, string.sub(r, sep + 1)} end
  end
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local previous = redis.call('GET', KEYS[2])
  if not previous and redis.call('EXISTS', KEYS[4]) == 0 then previous = 'state-lost' end
  redis.call('SET', KEYS[4], '1', 'PX', ARGV[3])
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
  return {1, previous}
end
return {0, now}
`);

/** KEYS: lock. ARGV: owner, ttlMs. Extends the lock only if the caller still holds it. */
export const LOCK_RENEW = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`);

/**
 * Release a lock (only the owner's), publish the holder's result for waiters (stamped with Redis's time),
 * and clear the dirty marker when the write finished cleanly.
 * KEYS: lock, dirty, result. ARGV: owner, result ('' = none), resultTtlMs, clean ('1' or '0').
 * Returns 1 if the caller still held the lock.
 */
export const LOCK_RELEASE = script(`${NOW}
local held = redis.call('GET', KEYS[1]) == ARGV[1]
if held then redis.call('DEL', KEYS[1]) end
if ARGV[4] == '1' and redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
if ARGV[2] ~= '' then redis.call('SET', KEYS[3], now .. '\\n' .. ARGV[2], 'PX', ARGV[3]) end
if held then return 1 end
return 0
`);
