/**
 * A real redis-server for the suites that test shared state: started on a Unix socket in a temporary
 * folder, without persistence, and stopped after. On a machine without redis-server those suites are
 * skipped (and listed at the end of the run with the command that installs it), unless
 * MDE_TEST_REQUIRE_REDIS=1 (CI), which makes that a failure.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe } from 'vitest';

export const INSTALL_REDIS = 'apt-get update && apt-get install -y redis-server';
export const REDIS_REQUIRED = process.env.MDE_TEST_REQUIRE_REDIS === '1';

export function redisServerInstalled(): boolean {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('Redis server');
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A free TCP port on loopback (for the suites that want TCP as well as the socket). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export class RedisServer {
  private process: ChildProcess | undefined;
  private constructor(
    readonly dir: string,
    readonly socketPath: string,
    readonly port: number,
  ) {}

  /** `unix:///…/redis.sock` */
  get url(): string {
    return `unix://${this.socketPath}`;
  }

  /** `redis://127.0.0.1:port` (only when started with `tcp: true`). */
  get tcpUrl(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(opts: { tcp?: boolean } = {}): Promise<RedisServer> {
    const dir = mkdtempSync(join(tmpdir(), 'mde-redis-'));
    const server = new RedisServer(dir, join(dir, 'redis.sock'), opts.tcp ? await freePort() : 0);
    await server.restart();
    return server;
  }

  /** Start (again) on the same socket and port, with empty state, as a restarted Redis would be. */
  async restart(): Promise<void> {
    if (this.process) return;
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--unixsocket', this.socketPath, '--save', '', '--appendonly', 'no', '--dir', this.dir];
    const child = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.process = child;
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    for (let i = 0; i < 200; i++) {
      if (child.exitCode !== null) throw new Error(`redis-server exited at start (${child.exitCode}): ${stderr}`);
      if (existsSync(this.socketPath) && (await this.ping())) return;
      await sleep(25);
    }
    throw new Error(`redis-server did not answer on ${this.socketPath}: ${stderr}`);
  }

  /** Stop the server (SIGKILL with `crash`), waiting until it is gone. */
  async stop(opts: { crash?: boolean } = {}): Promise<void> {
    const child = this.process;
    if (!child) return;
    this.process = undefined;
    if (child.exitCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill(opts.crash ? 'SIGKILL' : 'SIGTERM');
      await exited;
    }
    rmSync(this.socketPath, { force: true });
  }

  /** Stop for good and remove the temporary folder. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Send one raw command (inline form) over the socket; resolves with the raw RESP reply. */
  command(line: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect(this.socketPath);
      let reply = '';
      socket.on('data', (chunk) => (reply += chunk.toString()));
      // QUIT makes Redis answer +OK and close: everything before that is the reply.
      socket.on('end', () => resolve(reply.replace(/\+OK\r\n$/, '')));
      socket.on('error', reject);
      socket.write(`${line}\r\nQUIT\r\n`);
    });
  }

  private async ping(): Promise<boolean> {
    return this.command('PING').then(
      (reply) => reply.startsWith('+PONG'),
      () => false,
    );
  }
}

/**
 * A describe block that needs redis-server: it gets a fresh server (started before its tests, stopped
 * after). Without redis-server the block is skipped and recorded for the end-of-run note; with
 * MDE_TEST_REQUIRE_REDIS=1 the global set-up has already failed the run.
 */
export function describeWithRedis(name: string, body: (redis: () => RedisServer) => void, opts: { tcp?: boolean } = {}): void {
  const title = `${name} [redis-server]`;
  if (!redisServerInstalled()) {
    const log = process.env.MDE_TEST_REDIS_SKIPS;
    if (log) appendFileSync(log, `${title}\n`);
    describe.skip(title, () => body(() => undefined as never));
    return;
  }
  describe(title, () => {
    let server: RedisServer | undefined;
    beforeAll(async () => {
      server = await RedisServer.start(opts);
    });
    afterAll(async () => {
      await server?.dispose();
    });
    body(() => server!);
  });
}
