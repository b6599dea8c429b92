/**
 * The embedded engine: without DATABASE_URL, Together runs a PostgreSQL cluster of its own under
 * DATA_DIR, as a child process, and stops it when it stops.
 *
 *   DATA_DIR/postgres/       the cluster (initdb on first start); also holds its Unix socket
 *   DATA_DIR/postgres.log    the server's log (the previous start's is kept as postgres.log.1)
 *
 * - Private: no TCP listener at all (`listen_addresses = ''`); the socket lives in the cluster
 *   folder, mode 700, so only its owner and root can connect (they can read the files anyway, which
 *   is why local connections are trusted without a password).
 * - One owner: a Together process holds DATA_DIR while it runs (a lock that the kernel releases when
 *   the process dies, however it dies). A second server or an operator command refuses, naming it.
 * - Orphans: a Node process killed with SIGKILL leaves its postmaster running. The next start finds
 *   it through `postmaster.pid`, makes sure from the process itself (its executable is `postgres`
 *   and its working directory is this cluster) that it is not a recycled pid, and stops it with a
 *   fast shutdown (WAL keeps every commit) before starting afresh. A pid that is not ours is never
 *   signalled; its stale lock files are removed.
 * - Root: PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` user
 *   (created as a system user when missing), owning the cluster's files. That user may not be able
 *   to reach DATA_DIR (a checkout in /root, or under a 700 folder): the server is started with its
 *   working directory already inside the cluster (Node changes directory before it drops to that
 *   user) and given `/proc/self/cwd` as its data directory, so it never walks the parents.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
} from 'node:fs';
import net from 'node:net';
import { platform } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { canTraverse, type PostgresBinaries, postgresBinaries, type RunAs } from './embedded-binaries.ts';

export interface EmbeddedCluster {
  /** A node-postgres connection string for the application database, through the socket. */
  connectionString: string;
  /** Connection string of the maintenance database `postgres` (to create databases). */
  adminConnectionString: string;
  /** The postmaster's pid. */
  pid: number;
  /** Fast shutdown; resolves once the postmaster has exited. */
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  dataDir: string;
  /** Extra server settings (`name = value`), applied on the command line; tests use them. */
  settings?: Record<string, string | number>;
  log?: { info(object: unknown, message?: string): void; warn(object: unknown, message?: string): void };
}

/** Raised when another process holds the data directory. */
export class DataDirectoryInUseError extends Error {
  constructor(
    readonly dataDir: string,
    readonly ownerPid: number | undefined,
  ) {
    super(
      `The embedded database in ${dataDir} is in use by ${ownerPid ? `process ${ownerPid}` : 'another process'}; stop it first, or point DATA_DIR elsewhere.`,
    );
    this.name = 'DataDirectoryInUseError';
  }
}

const databaseName = 'together';
const superuser = 'postgres';
const socketPort = 5432; // part of the socket file's name only: nothing listens on TCP
const maxSocketPath = 100; // sun_path is 108 bytes on Linux, 104 on macOS
const logRotateBytes = 10 * 1024 * 1024;

/**
 * Defaults for one application on a small machine, written to postgresql.conf at initdb so that an
 * operator can change them there (exported for bench/footprint.ts, whose bare cluster runs them too).
 */
export const clusterSettings = {
  shared_buffers: '64MB',
  max_connections: '100',
  // One synchronous I/O path instead of PostgreSQL 18's three I/O worker processes.
  io_method: 'sync',
  // No replication from this cluster: less WAL; back up with pg_dump or a stopped copy of DATA_DIR.
  wal_level: 'minimal',
  max_wal_senders: '0',
  max_logical_replication_workers: '0',
  // Client errors (a refused duplicate, a full shift) are the API's to report, not the log's; and
  // no statement text, which carries volunteers' details, goes to the log.
  log_min_messages: 'log',
  log_min_error_statement: 'panic',
  log_checkpoints: 'off',
} as const;

const clusterDefaults = `
# ── Together's embedded defaults (edit freely; restart Together to apply) ──
${Object.entries(clusterSettings)
  .map(([name, value]) => `${name} = ${value}`)
  .join('\n')}
`;

export async function startEmbeddedCluster(options: EmbeddedOptions): Promise<EmbeddedCluster> {
  const dataDir = prepareDataDirectory(options.dataDir);
  const releaseLock = await lockDataDirectory(dataDir);
  try {
    const runAs = process.getuid?.() === 0 ? unprivilegedUser() : undefined;
    const binaries = await postgresBinaries(runAs);
    const clusterDir = join(dataDir, 'postgres');
    await reapOrphanedPostmaster(clusterDir, options.log);
    if (!existsSync(join(clusterDir, 'PG_VERSION'))) {
      const begin = performance.now();
      await initialiseCluster(clusterDir, binaries, runAs);
      options.log?.info(
        { clusterDir, ms: Math.round(performance.now() - begin) },
        'created the PostgreSQL cluster',
      );
    } else checkExistingCluster(clusterDir, binaries, runAs);
    const begin = performance.now();
    const server = await startPostmaster(dataDir, clusterDir, binaries, runAs, options.settings ?? {});
    options.log?.info({ pid: server.pid, ms: Math.round(performance.now() - begin) }, 'PostgreSQL is ready');
    const host = socketHost(clusterDir, server.pid);
    const url = (database: string) =>
      `postgresql://${superuser}@localhost/${database}?host=${encodeURIComponent(host)}`;
    try {
      await ensureDatabase(url('postgres'));
    } catch (error) {
      await server.stop();
      throw error;
    }
    let stopped: Promise<void> | undefined;
    return {
      connectionString: url(databaseName),
      adminConnectionString: url('postgres'),
      pid: server.pid,
      stop: () => {
        stopped ??= server.stop().finally(releaseLock);
        return stopped;
      },
    };
  } catch (error) {
    await releaseLock();
    throw error;
  }
}

/**
 * Deletes a data directory that no process holds, stopping the postmaster a killed owner left
 * running on it first; false (and nothing touched) while a process holds it. For throw-away
 * clusters (the test runs'), whose killed runs would otherwise leave servers behind.
 */
export async function removeUnheldCluster(dataDir: string): Promise<boolean> {
  const real = realpathSync(dataDir);
  let releaseLock: () => Promise<void>;
  try {
    releaseLock = await lockDataDirectory(real);
  } catch (error) {
    if (error instanceof DataDirectoryInUseError) return false;
    throw error;
  }
  try {
    await reapOrphanedPostmaster(join(real, 'postgres'), undefined);
    rmSync(real, { recursive: true, force: true });
    return true;
  } finally {
    await releaseLock();
  }
}

/** Creates DATA_DIR if needed and returns its real path; a clear error when it cannot be used. */
function prepareDataDirectory(dataDir: string): string {
  const absolute = resolve(dataDir);
  try {
    mkdirSync(absolute, { recursive: true });
    if (!statSync(absolute).isDirectory()) throw Object.assign(new Error(), { code: 'ENOTDIR' });
    const real = realpathSync(absolute);
    // Prove it is writable now, not halfway through initdb.
    const probe = join(real, `.write-test-${process.pid}`);
    closeSync(openSync(probe, 'w'));
    unlinkSync(probe);
    return real;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOTDIR' || code === 'EEXIST'
        ? 'it (or a parent) is a file, not a directory'
        : code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
          ? 'this process may not write there'
          : ((error as Error).message ?? String(error));
    throw new Error(`DATA_DIR: cannot use ${absolute} for the embedded database: ${reason}.`);
  }
}

// ── The data-directory lock ─────────────────────────────────────────────────────────────────

/**
 * A listening Unix socket is the lock: the kernel frees it when its process dies, even by SIGKILL,
 * so a stale lock never blocks and a recycled pid never fakes an owner. On Linux it is an abstract
 * socket named after the directory (no file, no path-length limit); elsewhere a socket file in it.
 * The holder answers a connection with its pid, for the refusal message.
 */
async function lockDataDirectory(dataDir: string): Promise<() => Promise<void>> {
  const address =
    platform() === 'linux'
      ? `\0together-data-dir-${createHash('sha256').update(dataDir).digest('hex').slice(0, 40)}`
      : join(dataDir, '.together.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    const server = net.createServer((socket) => socket.end(`${process.pid}\n`));
    try {
      await new Promise<void>((resolveListen, rejectListen) => {
        server.once('error', rejectListen);
        server.listen(address, () => resolveListen());
      });
      server.unref();
      return () => new Promise<void>((done) => server.close(() => done()));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      const owner = await askLockOwner(address);
      if (owner !== 'gone') throw new DataDirectoryInUseError(dataDir, owner);
      rmSync(address, { force: true }); // a socket file left by a process that is gone
    }
  }
  throw new DataDirectoryInUseError(dataDir, undefined);
}

function askLockOwner(address: string): Promise<number | undefined | 'gone'> {
  return new Promise((resolveOwner) => {
    let text = '';
    const socket = net.connect(address);
    socket.setTimeout(2_000, () => socket.destroy());
    socket.on('data', (chunk) => {
      text += chunk.toString();
    });
    socket.on('close', () => resolveOwner(Number(text.trim()) || undefined));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED' || error.code === 'ENOENT') resolveOwner('gone');
    });
  });
}

// ── Root: the unprivileged user ─────────────────────────────────────────────────────────────

const createdUserName = 'postgres';

/** The user's ids from one `id NAME` (`uid=101(postgres) gid=104(postgres) …`). */
function lookUpUser(name: string): RunAs | undefined {
  try {
    const text = execFileSync('id', [name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const uid = Number(/uid=(\d+)/.exec(text)?.[1]);
    const gid = Number(/gid=(\d+)/.exec(text)?.[1]);
    return Number.isInteger(uid) && uid > 0 && Number.isInteger(gid) ? { name, uid, gid } : undefined;
  } catch {
    return undefined;
  }
}

/** The `postgres` user, created as a system user (no home, no login shell) when it does not exist. */
export function unprivilegedUser(): RunAs {
  const existing = lookUpUser(createdUserName);
  if (existing) return existing;
  try {
    execFileSync(
      'useradd',
      ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', createdUserName],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
  } catch (error) {
    throw new Error(
      `PostgreSQL does not run as root, and no "${createdUserName}" user exists to run it; creating one failed (${(error as Error).message.trim()}). Create the user, run Together as another user, or set DATABASE_URL.`,
    );
  }
  const created = lookUpUser(createdUserName);
  if (!created) throw new Error(`could not look up the "${createdUserName}" user after creating it`);
  return created;
}

// ── Orphans ─────────────────────────────────────────────────────────────────────────────────

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

function processState(pid: number): 'gone' | 'alive' {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return 'gone';
  }
  if (platform() === 'linux') {
    try {
      // A zombie (exited, not yet reaped by its new parent) answers kill(0) but is gone.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return 'gone';
    } catch {
      return 'gone';
    }
  }
  return 'alive';
}

/**
 * True only when `pid` is a running postgres whose working directory is this cluster (a postmaster
 * changes into its data directory first thing). A pid recycled by any other process fails this.
 */
function isPostmasterOf(pid: number, clusterDir: string): boolean {
  if (processState(pid) !== 'alive') return false;
  try {
    if (platform() === 'linux') {
      const executable = readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, '');
      return executable.endsWith('/bin/postgres') && realpathSync(`/proc/${pid}/cwd`) === clusterDir;
    }
    const command = execFileSync('ps', ['-o', 'command=', '-p', String(pid)], { encoding: 'utf8' });
    return /\/bin\/postgres\b/.test(command) && command.includes(clusterDir);
  } catch {
    return false;
  }
}

function pidFileOwner(clusterDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(clusterDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function waitUntilGone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (processState(pid) === 'gone') return true;
    await sleep(20);
  }
  return processState(pid) === 'gone';
}

/** Stops a postmaster left by a killed Together process, then clears lock files no process owns. */
async function reapOrphanedPostmaster(clusterDir: string, log: EmbeddedOptions['log']): Promise<void> {
  if (!existsSync(clusterDir)) return;
  const pid = pidFileOwner(clusterDir);
  if (pid !== undefined && isPostmasterOf(pid, clusterDir)) {
    log?.warn({ pid, clusterDir }, 'stopping the PostgreSQL server a previous Together process left running');
    process.kill(pid, 'SIGINT'); // fast shutdown: roll back open transactions, checkpoint, exit
    if (!(await waitUntilGone(pid, 30_000))) {
      process.kill(pid, 'SIGQUIT'); // immediate shutdown: the next start replays the WAL
      if (!(await waitUntilGone(pid, 10_000))) {
        throw new Error(
          `The PostgreSQL server (pid ${pid}) on ${clusterDir} does not stop; stop it by hand.`,
        );
      }
    }
  }
  // Nothing runs on this cluster now (we hold DATA_DIR): PostgreSQL would take a live, recycled pid
  // in these files for a running server and refuse to start.
  for (const name of readdirSync(clusterDir)) {
    if (name === 'postmaster.pid' || name.startsWith('.s.PGSQL.'))
      rmSync(join(clusterDir, name), { force: true });
  }
}

// ── The cluster ─────────────────────────────────────────────────────────────────────────────

/** How PostgreSQL names its data directory: the real path, or its own working directory. */
function clusterPathFor(clusterDir: string, runAs: RunAs | undefined): string {
  if (!runAs || canTraverse(clusterDir, runAs)) return clusterDir;
  if (platform() !== 'linux') {
    throw new Error(
      `The "${runAs.name}" user cannot reach ${clusterDir}; give it access to the parent folders, or choose a DATA_DIR it can reach.`,
    );
  }
  return '/proc/self/cwd';
}

function run(file: string, args: string[], cwd: string, runAs: RunAs | undefined): Promise<string> {
  return new Promise((resolveRun, rejectRun) => {
    const child = spawn(file, args, {
      cwd,
      ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
      env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    child.on('error', rejectRun);
    child.on('exit', (code, signal) =>
      code === 0
        ? resolveRun(output)
        : rejectRun(new Error(`${file} failed (${signal ?? code}):\n${output.trim()}`)),
    );
  });
}

function takeOwnership(path: string, runAs: RunAs | undefined): void {
  if (!runAs) return;
  const stats = statSync(path);
  if (stats.uid === runAs.uid && stats.gid === runAs.gid) return;
  // A copy restored by root, say: hand every file to the server's user.
  const walk = (current: string) => {
    chownSync(current, runAs.uid, runAs.gid);
    if (statSync(current).isDirectory()) for (const name of readdirSync(current)) walk(join(current, name));
  };
  walk(path);
}

async function initialiseCluster(clusterDir: string, binaries: PostgresBinaries, runAs: RunAs | undefined) {
  if (existsSync(clusterDir) && readdirSync(clusterDir).length > 0) {
    throw new Error(
      `${clusterDir} is not empty but holds no PostgreSQL cluster (no PG_VERSION); move it away or choose another DATA_DIR.`,
    );
  }
  mkdirSync(clusterDir, { recursive: true, mode: 0o700 });
  chmodSync(clusterDir, 0o700);
  takeOwnership(clusterDir, runAs);
  try {
    await run(
      binaries.initdb,
      [
        '--pgdata',
        clusterPathFor(clusterDir, runAs),
        '--username',
        superuser,
        '--auth',
        'trust',
        '--encoding',
        'UTF8',
        '--locale',
        'C',
      ],
      clusterDir,
      runAs,
    );
  } catch (error) {
    // A half-made cluster would block every later start: leave the folder as we found it.
    rmSync(clusterDir, { recursive: true, force: true });
    throw error;
  }
  appendFileSync(join(clusterDir, 'postgresql.conf'), clusterDefaults);
}

function checkExistingCluster(clusterDir: string, binaries: PostgresBinaries, runAs: RunAs | undefined) {
  const major = readFileSync(join(clusterDir, 'PG_VERSION'), 'utf8').trim();
  const ours = binaries.version.split('.')[0];
  if (major !== ours) {
    throw new Error(
      `${clusterDir} holds a PostgreSQL ${major} cluster, but the embedded engine is PostgreSQL ${ours}. Dump it with that version's pg_dump and restore it into a fresh DATA_DIR.`,
    );
  }
  takeOwnership(clusterDir, runAs);
  chmodSync(clusterDir, 0o700);
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

function openLog(dataDir: string): { fd: number; path: string } {
  const path = join(dataDir, 'postgres.log');
  try {
    if (statSync(path).size > logRotateBytes) renameSync(path, `${path}.1`);
  } catch {
    // no log yet
  }
  return { fd: openSync(path, 'a', 0o600), path };
}

interface RunningPostmaster {
  pid: number;
  stop(): Promise<void>;
}

async function startPostmaster(
  dataDir: string,
  clusterDir: string,
  binaries: PostgresBinaries,
  runAs: RunAs | undefined,
  settings: Record<string, string | number>,
): Promise<RunningPostmaster> {
  const where = clusterPathFor(clusterDir, runAs);
  const log = openLog(dataDir);
  const options: Record<string, string | number> = {
    listen_addresses: '',
    unix_socket_directories: where,
    unix_socket_permissions: '0700',
    port: socketPort,
    ...settings,
  };
  let child: ChildProcess;
  try {
    child = spawn(
      binaries.postgres,
      ['-D', where, ...Object.entries(options).flatMap(([name, value]) => ['-c', `${name}=${value}`])],
      {
        cwd: clusterDir,
        ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
        env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
        stdio: ['ignore', log.fd, log.fd],
        // Its own process group: a Ctrl-C in the terminal reaches Node, which drains its requests
        // and then stops the cluster, instead of the cluster dying under in-flight requests.
        detached: true,
      },
    );
  } finally {
    closeSync(log.fd);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${binaries.postgres}`);
  let exited = false;
  const exit = new Promise<void>((done) =>
    child.once('exit', () => {
      exited = true;
      done();
    }),
  );
  child.once('error', () => {});
  // Whatever path ends this process (a failed start-up calling process.exit included), the cluster
  // is told to stop; it finishes its shutdown on its own.
  const onExit = () => {
    if (!exited) child.kill('SIGINT');
  };
  process.on('exit', onExit);
  const stop = async () => {
    process.off('exit', onExit);
    if (exited) return;
    child.kill('SIGINT');
    // Fast shutdown takes a checkpoint; past this, an immediate one (the next start replays WAL).
    const escalate = setTimeout(() => child.kill('SIGQUIT'), 30_000);
    await exit;
    clearTimeout(escalate);
  };

  const deadline = Date.now() + 60_000;
  while (!readyInPidFile(clusterDir, pid)) {
    if (exited || Date.now() > deadline) {
      await stop();
      throw new Error(`The embedded PostgreSQL did not start; the end of ${log.path}:\n${tail(log.path)}`);
    }
    await sleep(10);
  }
  return { pid, stop };
}

/** postmaster.pid's eighth line is the server's state; `ready` once it accepts connections. */
function readyInPidFile(clusterDir: string, pid: number): boolean {
  try {
    const lines = readFileSync(join(clusterDir, 'postmaster.pid'), 'utf8').split('\n');
    return Number(lines[0]) === pid && lines[7]?.trim() === 'ready';
  } catch {
    return false;
  }
}

/**
 * The folder node-postgres connects in. A socket path longer than the kernel allows (a deep
 * DATA_DIR) is reached through the postmaster's working directory instead, which is the same folder.
 */
function socketHost(clusterDir: string, pid: number): string {
  if (`${clusterDir}/.s.PGSQL.${socketPort}`.length <= maxSocketPath || platform() !== 'linux')
    return clusterDir;
  return `/proc/${pid}/cwd`;
}

async function ensureDatabase(adminUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [databaseName]);
    if (found.rowCount === 0) await client.query(`create database ${databaseName}`);
  } finally {
    await client.end();
  }
}
