/**
 * The embedded default as a new user meets it (issue 9): `npm start` with no DATABASE_URL, on a
 * data directory that does not exist yet, then restarted on it.
 *
 *   - time from spawning `npm start` to the first 200 from /health/ready: the first start (initdb
 *     included) and restarts, median of BENCH_ROUNDS (default 3) fresh directories
 *   - resident memory while idle (after the pool's 30 s idle timeout closed its connections), once
 *     after a first start and once after a restart: the server's Node process and every process of
 *     its cluster, as RSS (which counts shared pages once per process, so it over-counts) and as
 *     PSS (shared pages divided between the processes that map them)
 *   - that an organisation created before the restart is there after it
 *
 * Ceilings measured in the same run, the simplest things doing the same jobs: the same PostgreSQL
 * binaries run by hand (initdb, then start until ready; no database created, no migrations), and
 * a bare node:http server started to its first response. The ratio is Together's time over the
 * sum of both: what npm, the build, loading the app, creating the database and migrating add.
 *
 *   npm run bench:footprint     (BENCH_ROUNDS=3, BENCH_IDLE_SECONDS=35)
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { postgresBinaries } from '../src/db/embedded-binaries.ts';
import { freePort, repositoryRoot } from '../test/support/server-process.ts';

const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const idleSeconds = Number(process.env.BENCH_IDLE_SECONDS ?? 35);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

interface Started {
  npm: ChildProcess;
  port: number;
  ms: number;
}

/** `npm start` exactly as the README says, with DATA_DIR pointing at the bench's folder. */
async function npmStart(dataDir: string): Promise<Started> {
  const port = await freePort();
  const begin = performance.now();
  const npm = spawn('npm', ['start'], {
    cwd: repositoryRoot,
    env: { ...process.env, DATA_DIR: dataDir, PORT: String(port), LOG_LEVEL: 'warn', DATABASE_URL: '' },
    stdio: ['ignore', 'ignore', 'inherit'],
    detached: true,
  });
  for (;;) {
    if (npm.exitCode !== null) throw new Error(`npm start exited with ${npm.exitCode}`);
    const ready = await fetch(`http://127.0.0.1:${port}/health/ready`)
      .then((response) => response.ok)
      .catch(() => false);
    if (ready) return { npm, port, ms: performance.now() - begin };
    await sleep(10);
  }
}

function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

function commandOf(pid: number): string {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
}

/** Every live descendant of `root`. */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    try {
      const parent = parentOf(pid);
      children.set(parent, [...(children.get(parent) ?? []), pid]);
    } catch {
      // exited meanwhile
    }
  }
  const found: number[] = [];
  const walk = (pid: number) => {
    for (const child of children.get(pid) ?? []) {
      found.push(child);
      walk(child);
    }
  };
  walk(root);
  return found;
}

function memoryKb(pid: number): { rss: number; pss: number } {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  return { rss: field('Rss'), pss: field('Pss') };
}

interface Footprint {
  serverRss: number;
  serverPss: number;
  clusterRss: number;
  clusterPss: number;
  clusterProcesses: number;
  npmRss: number;
}

/** The server (the node process running dist/server.js), its cluster, and npm's wrapper apart. */
function footprint(npm: ChildProcess): Footprint {
  const all = descendants(npm.pid as number);
  const server = all.find(
    (pid) =>
      readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'node' &&
      commandOf(pid).includes('dist/server.js'),
  );
  if (!server) throw new Error('no server process under npm start');
  const cluster = descendants(server);
  const sum = (pids: number[], key: 'rss' | 'pss') =>
    pids.reduce((total, pid) => total + memoryKb(pid)[key], 0);
  const wrappers = [npm.pid as number, ...all.filter((pid) => pid !== server && !cluster.includes(pid))];
  return {
    serverRss: memoryKb(server).rss,
    serverPss: memoryKb(server).pss,
    clusterRss: sum(cluster, 'rss'),
    clusterPss: sum(cluster, 'pss'),
    clusterProcesses: cluster.length,
    npmRss: sum(wrappers, 'rss'),
  };
}

async function stop(npm: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => npm.once('exit', resolve));
  process.kill(-(npm.pid as number), 'SIGTERM'); // the group, as a terminal's Ctrl-C reaches it
  await exited;
  await sleep(200);
}

async function createOrganization(port: number): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/v1/organizations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      name: 'Bench',
      slug: 'bench-org',
      timezone: 'UTC',
      contactEmail: 'b@example.org',
    }),
  });
  if (response.status !== 201) throw new Error(`create organisation: ${response.status}`);
  return ((await response.json()) as { apiKey: { token: string } }).apiKey.token;
}

/**
 * Ceiling 1: the same PostgreSQL binaries run by hand (initdb, then the postmaster until its
 * postmaster.pid says ready), as the unprivileged user when this is root. None of Together's code.
 */
async function bareCluster(): Promise<{ firstMs: number; restartMs: number }> {
  const binaries = await postgresBinaries(); // the files npm installed, symlinks made
  const user =
    process.getuid?.() === 0
      ? { uid: Number(run('id', ['-u', 'postgres'])), gid: Number(run('id', ['-g', 'postgres'])) }
      : {};
  const parent = mkdtempSync(join(tmpdir(), 'together-bench-bare-'));
  chmodSync(parent, 0o755);
  const dataDir = join(parent, 'pg');
  mkdirSync(dataDir, { mode: 0o700 });
  if ('uid' in user) chownSync(dataDir, user.uid as number, user.gid as number);
  const binary = (name: string) => join(binaries.root, 'bin', name);
  const startPostmaster = async () => {
    const child = spawn(binary('postgres'), ['-D', dataDir, '-k', dataDir, '-c', 'listen_addresses='], {
      ...user,
      stdio: 'ignore',
    });
    for (;;) {
      try {
        if (readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[7]?.trim() === 'ready')
          return child;
      } catch {
        // not written yet
      }
      await sleep(5);
    }
  };
  const stopPostmaster = (child: ChildProcess) =>
    new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGINT');
    });
  try {
    let begin = performance.now();
    await new Promise<void>((resolve, reject) => {
      const initdb = spawn(
        binary('initdb'),
        ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--locale=C', '-E', 'UTF8'],
        { ...user, stdio: 'ignore' },
      );
      initdb.once('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`initdb exited with ${code}`)),
      );
    });
    let postmaster = await startPostmaster();
    const firstMs = performance.now() - begin;
    await stopPostmaster(postmaster);
    begin = performance.now();
    postmaster = await startPostmaster();
    const restartMs = performance.now() - begin;
    await stopPostmaster(postmaster);
    return { firstMs, restartMs };
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
}

function run(file: string, args: string[]): string {
  return execFileSync(file, args, { encoding: 'utf8' }).trim();
}

/** Ceiling 2: a bare node:http server, from spawn to its first response. */
async function bareNode(): Promise<number> {
  const port = await freePort();
  const begin = performance.now();
  const child = spawn(
    process.execPath,
    ['-e', `require('node:http').createServer((q, s) => s.end('ok')).listen(${port}, '127.0.0.1')`],
    { stdio: 'ignore' },
  );
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${port}/`)
      .then((response) => response.ok)
      .catch(() => false);
    if (ok) break;
    await sleep(10);
  }
  const ms = performance.now() - begin;
  child.kill();
  return ms;
}

const mb = (kb: number) => `${(kb / 1024).toFixed(1)} MB`;

function report(label: string, print: Footprint) {
  console.log(
    `${label}: server ${mb(print.serverRss)} RSS (${mb(print.serverPss)} PSS) + cluster of ${print.clusterProcesses} processes ${mb(print.clusterRss)} RSS (${mb(print.clusterPss)} PSS) = ${mb(print.serverRss + print.clusterRss)} RSS, ${mb(print.serverPss + print.clusterPss)} PSS   [npm's own wrapper processes: ${mb(print.npmRss)} RSS]`,
  );
}

async function main() {
  const firsts: number[] = [];
  const restarts: number[] = [];
  const bare = { cluster: [] as number[], clusterRestart: [] as number[], node: [] as number[] };
  let idleAfterFirst: Footprint | undefined;
  let idleAfterRestart: Footprint | undefined;
  for (let round = 0; round < rounds; round++) {
    const dataDir = join(mkdtempSync(join(tmpdir(), 'together-bench-footprint-')), 'data');
    try {
      const first = await npmStart(dataDir);
      firsts.push(first.ms);
      const token = await createOrganization(first.port);
      if (round === 0) {
        await sleep(idleSeconds * 1000);
        idleAfterFirst = footprint(first.npm);
      }
      await stop(first.npm);

      const again = await npmStart(dataDir);
      restarts.push(again.ms);
      const read = await fetch(`http://127.0.0.1:${again.port}/v1/organization`, {
        headers: { authorization: `Bearer ${token}` },
      });
      if (read.status !== 200)
        throw new Error(`the organisation did not survive the restart: ${read.status}`);
      if (round === 0) {
        await sleep(idleSeconds * 1000);
        idleAfterRestart = footprint(again.npm);
      }
      await stop(again.npm);
    } finally {
      rmSync(join(dataDir, '..'), { recursive: true, force: true });
    }
    const cluster = await bareCluster();
    bare.cluster.push(cluster.firstMs);
    bare.clusterRestart.push(cluster.restartMs);
    bare.node.push(await bareNode());
    console.log(
      `round ${round + 1}: npm start first ${firsts[round]?.toFixed(0)} ms, restart ${restarts[round]?.toFixed(0)} ms; ceiling: cluster alone ${cluster.firstMs.toFixed(0)} / ${cluster.restartMs.toFixed(0)} ms, bare node ${bare.node[round]?.toFixed(0)} ms`,
    );
  }
  const first = median(firsts);
  const restart = median(restarts);
  const ceilingFirst = median(bare.cluster) + median(bare.node);
  const ceilingRestart = median(bare.clusterRestart) + median(bare.node);
  console.log(
    `\nfirst start to ready: ${first.toFixed(0)} ms (goal ≤ 3000), ceiling ${ceilingFirst.toFixed(0)} ms, ratio ${(first / ceilingFirst).toFixed(2)}`,
  );
  console.log(
    `restart to ready:     ${restart.toFixed(0)} ms (goal ≤ 1500), ceiling ${ceilingRestart.toFixed(0)} ms, ratio ${(restart / ceilingRestart).toFixed(2)}`,
  );
  if (idleAfterFirst) report(`idle after the first start (${idleSeconds} s)`, idleAfterFirst);
  if (idleAfterRestart) report(`idle after a restart (${idleSeconds} s)     `, idleAfterRestart);
  console.log('goal: server + cluster ≤ 150 MB resident while idle; the organisation survived every restart');
}

await main();
