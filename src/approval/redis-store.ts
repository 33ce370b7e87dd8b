/**
 * Approvals in Redis (MDE_REDIS_URL): every replica sees them and they survive a replica's restart. Each
 * approval is a hash (`json`: the record, `status`, `expiresAt` in ms) kept until a week after it
 * expires; pending ids sit in a sorted set by expiry. Deciding is one Lua script: Redis runs it without
 * interleaving, so of two replicas deciding at once exactly one wins, and the other reads who did.
 * Only the status fields of an approval ever change, so the new record is built by the caller from the
 * one it read and committed by the script only if the status it read still holds.
 */
import { createHash } from 'node:crypto';
import { applies, completed, decided, DEFAULT_RETENTION_MS, type Approval, type ApprovalStore, type Completion, type DecideResult, type Decision } from './store.js';

export interface RedisScript {
  source: string;
  sha1: string;
}
const script = (source: string): RedisScript => ({ source, sha1: createHash('sha1').update(source).digest('hex') });

/** What this store needs of a Redis connection (the shared-state client applies its failure rule). */
export interface RedisCommands {
  command(args: string[]): Promise<unknown>;
  run(s: RedisScript, keys: string[], args: (string | number)[]): Promise<unknown>;
  /** Key prefix of this app registration's namespace (hash-tagged). */
  prefix: string;
}

/** KEYS: approval, pending. ARGV: json, status, expiresAtMs, keepUntilMs, id. 0 when the id exists. */
export const APPROVAL_CREATE = script(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'json', ARGV[1], 'status', ARGV[2], 'expiresAt', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[5])
-- The set lives as long as its newest member's record: no key grows without an expiry.
local t = redis.call('TIME')
local ttl = redis.call('PTTL', KEYS[2])
if ttl < 0 or tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + ttl < tonumber(ARGV[4]) then redis.call('PEXPIREAT', KEYS[2], ARGV[4]) end
return 1
`);

/**
 * KEYS: approval, pending. ARGV: json (decided), new status, now ms, id.
 * Approve or reject needs it pending and unexpired at now; expire needs it pending and expired.
 * Returns {1} applied; {0, json} not applied (the record as it stands); {-1} no such approval.
 */
export const APPROVAL_DECIDE = script(`
local cur = redis.call('HMGET', KEYS[1], 'json', 'status', 'expiresAt')
if not cur[1] then return {-1} end
local expired = tonumber(ARGV[3]) >= tonumber(cur[3])
local ok = cur[2] == 'pending' and ((ARGV[2] == 'expired') == expired)
if not ok then return {0, cur[1]} end
redis.call('HSET', KEYS[1], 'json', ARGV[1], 'status', ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[4])
return {1}
`);

/** KEYS: approval. ARGV: json (completed), new status. Only an approved, not yet completed approval. */
export const APPROVAL_COMPLETE = script(`
local cur = redis.call('HMGET', KEYS[1], 'status', 'completed')
if cur[1] ~= 'approved' or cur[2] then return 0 end
redis.call('HSET', KEYS[1], 'json', ARGV[1], 'status', ARGV[2], 'completed', '1')
return 1
`);

export function createRedisApprovalStore(redis: RedisCommands, opts: { retentionMs?: number } = {}): ApprovalStore {
  const key = (id: string) => `${redis.prefix}approval:${id}`;
  const pendingKey = `${redis.prefix}approvals:pending`;
  const retention = opts.retentionMs ?? DEFAULT_RETENTION_MS;
  const read = async (id: string): Promise<Approval | undefined> => {
    const json = await redis.command(['HGET', key(id), 'json']);
    return json == null ? undefined : (JSON.parse(String(json)) as Approval);
  };

  return {
    async create(approval) {
      const expiresAt = Date.parse(approval.expiresAt);
      const created = await redis.run(APPROVAL_CREATE, [key(approval.id), pendingKey], [JSON.stringify(approval), approval.status, expiresAt, expiresAt + retention, approval.id]);
      if (Number(created) !== 1) throw new Error(`approval ${approval.id} exists`);
    },
    get: read,
    async pending() {
      const ids = (await redis.command(['ZRANGE', pendingKey, '0', '-1'])) as string[];
      const found = await Promise.all(ids.map(read));
      // An id whose record lapsed (retention) is dropped from the set.
      const gone = ids.filter((_, i) => !found[i]);
      if (gone.length > 0) await redis.command(['ZREM', pendingKey, ...gone]);
      return found.filter((a): a is Approval => a?.status === 'pending');
    },
    async decide(id: string, decision: Decision, nowMs: number): Promise<DecideResult | undefined> {
      const current = await read(id);
      if (!current) return undefined;
      // The same rule as the memory store, checked here for the answer and again in the script for the race.
      const rule = applies(current, decision, nowMs);
      if (!rule.ok) return { won: false, approval: current, expired: rule.expired };
      const next = decided(current, decision);
      const reply = (await redis.run(APPROVAL_DECIDE, [key(id), pendingKey], [JSON.stringify(next), next.status, nowMs, id])) as unknown[];
      if (Number(reply[0]) === 1) return { won: true, approval: next };
      if (Number(reply[0]) === -1) return undefined;
      const now = JSON.parse(String(reply[1])) as Approval;
      return { won: false, approval: now, expired: now.status === 'expired' || (now.status === 'pending' && nowMs >= Date.parse(now.expiresAt)) };
    },
    async complete(id: string, completion: Completion) {
      const current = await read(id);
      if (current?.status !== 'approved') return;
      const next = completed(current, completion);
      await redis.run(APPROVAL_COMPLETE, [key(id)], [JSON.stringify(next), next.status]);
    },
  };
}
