/**
 * The server as a user runs it, on the embedded engine: its own PostgreSQL cluster under DATA_DIR,
 * kept across restarts, stopped on SIGTERM, reaped after a SIGKILL, never shared by two processes,
 * run as an unprivileged user under a folder that user cannot enter; graceful shutdown with a
 * request in flight; bad configuration.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import request from 'supertest';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { removeUnheldCluster, unprivilegedUser } from '../src/db/embedded.ts';
import { postgresBinaries } from '../src/db/embedded-binaries.ts';
import { bearer, createTestDatabase } from './support/app.ts';
import { testDatabaseUrl } from './support/postgres.ts';
import {
  eventually,
  killAllServers,
  repositoryRoot,
  runCli,
  spawnServer,
  startServer,
} from './support/server-process.ts';

const folders: string[] = [];
const strays: ChildProcess[] = [];
afterEach(() => {
  killAllServers();
  for (const child of strays.splice(0)) child.kill('SIGKILL');
});
afterAll(() => {
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
});

/** A fresh folder, mode 700 as mkdtemp makes it: as root, the cluster's user cannot enter it. */
function privateFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'together-process-'));
  folders.push(dir);
  return dir;
}

const organization = (slug: string) => ({
  name: 'Process Org',
  slug,
  timezone: 'Europe/Berlin',
  contactEmail: 'p@example.org',
});

function postmasterPid(dataDir: string): number {
  return Number(readFileSync(join(dataDir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0]);
}

/** Alive, and not a zombie waiting for its new parent to reap it. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

const isRoot = process.getuid?.() === 0;

describe('npm start on the embedded engine', () => {
  it("builds (the build script's own command, without a second npm) and runs the compiled server", () => {
    const { scripts } = JSON.parse(readFileSync(join(repositoryRoot, 'package.json'), 'utf8'));
    expect(scripts.start).toBe(`${scripts.build} && ${scripts['start:dist']}`);
    expect(scripts['start:dist']).toMatch(/^node .*dist\/server\.js$/);
  });

  it('runs a cluster under the default ./data, keeps data across a restart, and stops it on SIGTERM', async () => {
    // A fresh working directory stands for a fresh clone: no DATA_DIR, so the default applies.
    const workingDir = privateFolder();
    const first = await startServer({}, { cwd: workingDir });
    const dataDir = join(workingDir, 'data');
    await request(first.url).get('/health/ready').expect(200);
    const created = await request(first.url)
      .post('/v1/organizations')
      .send(organization('kept-org'))
      .expect(201);
    const firstPostmaster = postmasterPid(dataDir);
    expect(isAlive(firstPostmaster)).toBe(true);
    expect(await first.stop('SIGTERM')).toBe(0);
    expect(isAlive(firstPostmaster)).toBe(false);
    expect(existsSync(join(dataDir, 'postgres', 'PG_VERSION'))).toBe(true);
    expect(existsSync(join(dataDir, 'postgres', 'postmaster.pid'))).toBe(false); // a clean shutdown

    const second = await startServer({}, { cwd: workingDir });
    const read = await request(second.url)
      .get('/v1/organization')
      .set(bearer(created.body.apiKey.token))
      .expect(200);
    expect(read.body.slug).toBe('kept-org');
    const secondPostmaster = postmasterPid(dataDir);
    expect(await second.stop('SIGINT')).toBe(0);
    expect(isAlive(secondPostmaster)).toBe(false);
  });

  it('listens on no TCP port: the cluster is reached through a socket in its own folder', async () => {
    const dataDir = join(privateFolder(), 'data');
    const server = await startServer({ DATA_DIR: dataDir });
    const pid = postmasterPid(dataDir);
    const socket = join(dataDir, 'postgres', '.s.PGSQL.5432');
    expect(statSync(socket).isSocket()).toBe(true);
    expect(statSync(join(dataDir, 'postgres')).mode & 0o777).toBe(0o700);
    const listening = readFileSync('/proc/net/tcp', 'utf8') + readFileSync('/proc/net/tcp6', 'utf8');
    const inodes = new Set(
      execFileSync('ls', ['-l', `/proc/${pid}/fd`], { encoding: 'utf8' }).match(/socket:\[(\d+)\]/g) ?? [],
    );
    for (const line of listening.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[3] === '0A') expect(inodes.has(`socket:[${fields[9]}]`)).toBe(false); // 0A: LISTEN
    }
    expect(await server.stop()).toBe(0);
  });

  it('SIGTERM during start-up, while the cluster is being made, stops it too', async () => {
    const dataDir = join(privateFolder(), 'data');
    const server = spawnServer({ DATA_DIR: dataDir });
    const pidFile = join(dataDir, 'postgres', 'postmaster.pid');
    await eventually(
      async () => existsSync(pidFile) && postmasterPid(dataDir) > 0,
      30_000,
      'the postmaster to start',
    );
    const pid = postmasterPid(dataDir);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(server.output()).not.toContain('Together is serving');
    await eventually(async () => !isAlive(pid), 10_000, 'the postmaster to stop');
  });

  it('after a SIGKILL, the next start stops the orphaned postmaster and loses nothing acknowledged', async () => {
    const dataDir = join(privateFolder(), 'data');
    const first = await startServer({ DATA_DIR: dataDir });
    const created = await request(first.url)
      .post('/v1/organizations')
      .send(organization('before-kill'))
      .expect(201);
    const orphan = postmasterPid(dataDir);
    expect(await first.stop('SIGKILL')).toBeNull();
    expect(isAlive(orphan)).toBe(true); // a plain child: it outlives the killed Node process

    const second = await startServer({ DATA_DIR: dataDir });
    expect(isAlive(orphan)).toBe(false);
    expect(second.output()).toContain(
      'stopping the PostgreSQL server a previous Together process left running',
    );
    await request(second.url).get('/v1/organization').set(bearer(created.body.apiKey.token)).expect(200);
    expect(postmasterPid(dataDir)).not.toBe(orphan);
    expect(await second.stop()).toBe(0);
  });

  it("a cluster left by a killed process is removed only once no process holds it (the test runs' clean-up)", async () => {
    const dataDir = join(privateFolder(), 'data');
    const server = await startServer({ DATA_DIR: dataDir });
    const pid = postmasterPid(dataDir);
    expect(await removeUnheldCluster(dataDir)).toBe(false);
    expect(isAlive(pid)).toBe(true);
    await request(server.url).get('/health/ready').expect(200);
    expect(await server.stop('SIGKILL')).toBeNull();
    expect(isAlive(pid)).toBe(true);
    expect(await removeUnheldCluster(dataDir)).toBe(true);
    expect(isAlive(pid)).toBe(false);
    expect(existsSync(dataDir)).toBe(false);
  });

  it('never signals a process that took over the pid in a stale postmaster.pid, even another postgres', async () => {
    const dataDir = join(privateFolder(), 'data');
    const first = await startServer({ DATA_DIR: dataDir });
    const pidFile = readFileSync(join(dataDir, 'postgres', 'postmaster.pid'), 'utf8');
    expect(await first.stop()).toBe(0);

    // An unrelated process, and a postgres backend of another cluster (the test run's), each
    // holding the pid the stale file names, as after a power cut and a reboot.
    const sleeper = spawn('sleep', ['120'], { stdio: 'ignore' });
    strays.push(sleeper);
    const other = new pg.Client({ connectionString: testDatabaseUrl });
    await other.connect();
    try {
      const backend = (await other.query('select pg_backend_pid() as pid')).rows[0].pid as number;
      for (const pid of [sleeper.pid as number, backend]) {
        const lines = pidFile.split('\n');
        lines[0] = String(pid);
        writeFileSync(join(dataDir, 'postgres', 'postmaster.pid'), lines.join('\n'));
        const server = await startServer({ DATA_DIR: dataDir });
        await request(server.url).get('/health/ready').expect(200);
        expect(server.output()).not.toContain('left running');
        expect(isAlive(pid)).toBe(true);
        expect(await server.stop()).toBe(0);
      }
      expect((await other.query('select 1 as one')).rows[0].one).toBe(1); // the backend was never signalled
    } finally {
      await other.end();
    }
  });

  it('refuses a second server and the operator commands on the same data directory, naming it', async () => {
    const dataDir = join(privateFolder(), 'data');
    const server = await startServer({ DATA_DIR: dataDir });
    const pid = postmasterPid(dataDir);
    const second = spawnServer({ DATA_DIR: dataDir });
    expect(await second.exited).toBe(1);
    expect(second.output()).toContain(
      `The embedded database in ${dataDir} is in use by process ${server.child.pid}`,
    );
    const seed = await runCli(['seed'], { DATA_DIR: dataDir });
    expect(seed.code).toBe(1);
    expect(seed.output).toContain(`${dataDir} is in use`);
    // Neither touched the running cluster.
    expect(postmasterPid(dataDir)).toBe(pid);
    await request(server.url).get('/health/ready').expect(200);
    expect(await server.stop()).toBe(0);

    const after = await runCli(['seed'], { DATA_DIR: dataDir });
    expect(after.code).toBe(0);
    expect(after.output).toMatch(/Admin key \(shown once\): tg_key_/);
  });

  it('a DATA_DIR that cannot hold a cluster stops start-up with a message naming it, leaving nothing running', async () => {
    const folder = privateFolder();
    const file = join(folder, 'not-a-directory');
    writeFileSync(file, 'x');
    const onFile = spawnServer({ DATA_DIR: file });
    expect(await onFile.exited).toBe(1);
    expect(onFile.output()).toContain(`DATA_DIR: cannot use ${file}`);

    const foreign = join(folder, 'foreign');
    execFileSync('mkdir', ['-p', join(foreign, 'postgres')]);
    writeFileSync(join(foreign, 'postgres', 'notes.txt'), 'not a cluster');
    const onForeign = spawnServer({ DATA_DIR: foreign });
    expect(await onForeign.exited).toBe(1);
    expect(onForeign.output()).toContain('holds no PostgreSQL cluster');
    expect(readFileSync(join(foreign, 'postgres', 'notes.txt'), 'utf8')).toBe('not a cluster');
  });

  it.skipIf(!isRoot)(
    'as root, under a parent the cluster user cannot enter, the cluster runs as that user and owns its files',
    async () => {
      const parent = privateFolder();
      expect(statSync(parent).mode & 0o777).toBe(0o700);
      const dataDir = join(parent, 'deep', 'data');
      const server = await startServer({ DATA_DIR: dataDir });
      const user = unprivilegedUser();
      const pid = postmasterPid(dataDir);
      expect(statSync(`/proc/${pid}`).uid).toBe(user.uid);
      expect(statSync(join(dataDir, 'postgres', 'PG_VERSION')).uid).toBe(user.uid);
      const created = await request(server.url)
        .post('/v1/organizations')
        .send(organization('root-org'))
        .expect(201);
      expect(await server.stop()).toBe(0);
      // A copy restored by root (owned by root) is handed back to the cluster's user.
      execFileSync('chown', ['-R', 'root:root', join(dataDir, 'postgres')]);
      const again = await startServer({ DATA_DIR: dataDir });
      await request(again.url).get('/v1/organization').set(bearer(created.body.apiKey.token)).expect(200);
      expect(await again.stop()).toBe(0);
    },
  );

  it.skipIf(!isRoot)(
    'as root, binaries installed under a folder the cluster user cannot enter are mirrored where it can',
    async () => {
      const user = unprivilegedUser();
      const installed = (await postgresBinaries()).root.replace(/\/native$/, '');
      const hidden = join(privateFolder(), 'platform-package');
      execFileSync('cp', ['-a', installed, hidden]);
      const binaries = await postgresBinaries(user, hidden);
      expect(binaries.root.startsWith(hidden)).toBe(false);
      const version = execFileSync(binaries.postgres, ['--version'], {
        uid: user.uid,
        gid: user.gid,
        encoding: 'utf8',
      });
      expect(version).toContain(`PostgreSQL) ${binaries.version}`);
    },
  );
});

describe('the binaries as npm 11 installs them (dependency install scripts blocked)', () => {
  it("the library symlinks the platform package's postinstall would make are made at start-up", async () => {
    const installed = (await postgresBinaries()).root.replace(/\/native$/, '');
    const copy = join(privateFolder(), 'platform-package');
    execFileSync('cp', ['-a', installed, copy]);
    const links = JSON.parse(readFileSync(join(copy, 'native', 'pg-symlinks.json'), 'utf8')) as {
      target: string;
    }[];
    for (const link of links) rmSync(join(copy, link.target));
    expect(() =>
      execFileSync(join(copy, 'native', 'bin', 'initdb'), ['--version'], { stdio: 'pipe' }),
    ).toThrow(/error while loading shared libraries/);
    const binaries = await postgresBinaries(undefined, copy);
    expect(binaries.root).toBe(join(copy, 'native'));
    expect(execFileSync(binaries.initdb, ['--version'], { encoding: 'utf8' })).toContain(binaries.version);
  });
});

describe('graceful shutdown', () => {
  it('SIGTERM while a slow request is in flight: the request completes, then the process exits 0', async () => {
    const testDb = await createTestDatabase();
    const server = await startServer({ DATABASE_URL: testDb.url });
    const body = JSON.stringify(organization('slow-org'));
    const url = new URL(server.url);
    const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const outgoing = http.request(
        {
          host: url.hostname,
          port: url.port,
          method: 'POST',
          path: '/v1/organizations',
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (incoming) => {
          let text = '';
          incoming.on('data', (chunk) => {
            text += chunk;
          });
          incoming.on('end', () => resolve({ status: incoming.statusCode ?? 0, body: text }));
        },
      );
      outgoing.on('error', reject);
      // A slow client: half the body now, the rest after the server was told to stop.
      outgoing.write(body.slice(0, 20));
      setTimeout(() => {
        server.child.kill('SIGTERM');
        setTimeout(() => outgoing.end(body.slice(20)), 700);
      }, 300);
    });
    const result = await response;
    expect(result.status).toBe(201);
    expect(JSON.parse(result.body).organization.slug).toBe('slow-org');
    expect(await server.exited).toBe(0);
    expect(server.output()).toContain('shutting down');
    await testDb.drop();
  });
});

describe('configuration', () => {
  it('a bad value stops start-up with a message naming the variable', async () => {
    const { exited, output } = spawnServer({ PORT: 'not-a-port', LOG_LEVEL: 'chatty' });
    expect(await exited).toBe(1);
    expect(output()).toContain('PORT');
    expect(output()).toContain('LOG_LEVEL');
  });

  it('a port already taken stops start-up with exit 1 and stops the embedded cluster', async () => {
    const dataDir = join(privateFolder(), 'data');
    const first = await startServer({ DATA_DIR: join(privateFolder(), 'data') });
    const port = new URL(first.url).port;
    const second = spawnServer({ DATA_DIR: dataDir, PORT: port });
    expect(await second.exited).toBe(1);
    expect(second.output()).toContain('could not listen');
    await eventually(
      async () => !existsSync(join(dataDir, 'postgres', 'postmaster.pid')),
      10_000,
      'the cluster stopped',
    );
    expect(await first.stop()).toBe(0);
  });
});
