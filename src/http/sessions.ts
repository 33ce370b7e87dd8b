/**
 * MCP sessions of remote mode. A session (its `Mcp-Session-Id`) belongs to the principal whose token
 * created it; each principal may hold a bounded number; a session with no request for the idle time is
 * closed. Sessions are not authentication: every request is authenticated on its own first.
 */

export interface SessionHandle {
  /** Close the transport and the MCP server behind it. */
  close(): Promise<void>;
}

interface Entry<T extends SessionHandle> {
  id: string;
  owner: string;
  handle: T;
  lastSeen: number;
  /** Requests (POST calls, DELETE) in progress: a session is never idle while one runs. */
  active: number;
}

export const DEFAULT_SESSION_IDLE_MS = 30 * 60_000;
export const DEFAULT_MAX_SESSIONS_PER_USER = 10;

export class SessionManager<T extends SessionHandle> {
  private readonly sessions = new Map<string, Entry<T>>();
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly opts: { idleMs?: number; maxPerOwner?: number; now?: () => number; onIdleClose?: (id: string, owner: string) => void } = {},
  ) {
    this.now = opts.now ?? Date.now;
  }

  get idleMs() {
    return this.opts.idleMs ?? DEFAULT_SESSION_IDLE_MS;
  }
  get maxPerOwner() {
    return this.opts.maxPerOwner ?? DEFAULT_MAX_SESSIONS_PER_USER;
  }
  get size() {
    return this.sessions.size;
  }

  /** Start the idle sweep (unref'd: it never keeps the process alive). */
  startSweeping(): void {
    const every = Math.max(1_000, Math.min(60_000, Math.floor(this.idleMs / 2)));
    this.timer = setInterval(() => void this.sweep(), every);
    this.timer.unref();
  }

  countFor(owner: string): number {
    let n = 0;
    for (const e of this.sessions.values()) if (e.owner === owner) n++;
    return n;
  }

  canOpen(owner: string): boolean {
    return this.countFor(owner) < this.maxPerOwner;
  }

  add(id: string, owner: string, handle: T): void {
    this.sessions.set(id, { id, owner, handle, lastSeen: this.now(), active: 0 });
  }

  /** The session, if it exists; `owner` says whether the caller may use it. */
  lookup(id: string, owner: string): { kind: 'ok'; handle: T } | { kind: 'unknown' } | { kind: 'not_owner' } {
    const e = this.sessions.get(id);
    if (!e) return { kind: 'unknown' };
    if (e.owner !== owner) return { kind: 'not_owner' };
    return { kind: 'ok', handle: e.handle };
  }

  /** Mark a request as started; the returned function marks it finished. */
  begin(id: string): () => void {
    const e = this.sessions.get(id);
    if (!e) return () => undefined;
    e.active++;
    e.lastSeen = this.now();
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      e.active--;
      e.lastSeen = this.now();
    };
  }

  /** Forget a session (its transport closed). */
  remove(id: string): void {
    this.sessions.delete(id);
  }

  /** Close sessions idle for longer than the idle time. Returns the ids closed. */
  async sweep(): Promise<string[]> {
    const cutoff = this.now() - this.idleMs;
    const idle = [...this.sessions.values()].filter((e) => e.active === 0 && e.lastSeen <= cutoff);
    for (const e of idle) {
      this.sessions.delete(e.id);
      this.opts.onIdleClose?.(e.id, e.owner);
      await e.handle.close().catch(() => undefined);
    }
    return idle.map((e) => e.id);
  }

  async closeAll(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map((e) => e.handle.close().catch(() => undefined)));
  }
}
