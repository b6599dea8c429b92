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
 * Ceilings measured in the same run, the simplest things doing the same jobs, none of them
 * Together's code: the same PostgreSQL binaries run by hand with the same settings (initdb,
 * then start until postmaster.pid says ready; no database created, no migrations), and a bare
 * Fastify answering /health/ready with the same bytes. Times: the ratio is ceiling over ours (what
 * npm, the bundle, loading the app, creating the database and migrating cost). Memory: the bare
 * cluster idle plus the bare Fastify after its first answer, over ours.
 *
 *   npm run bench:footprint     (BENCH_ROUNDS=3, BENCH_IDLE_SECONDS=35)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterSettings, unprivilegedUser } from '../src/db/embedded.ts';
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
  /** Where the time went, from the server's own log: `initdb` (first start only), `postgres` start. */
  phases: string;
}

/** `npm start` exactly as the README says, with DATA_DIR pointing at the bench's folder. */
async function npmStart(dataDir: string): Promise<Started> {
  const port = await freePort();
  const begin = performance.now();
  const npm = spawn('npm', ['start'], {
    cwd: repositoryRoot,
    env: { ...process.env, DATA_DIR: dataDir, PORT: String(port), LOG_LEVEL: 'info', DATABASE_URL: '' },
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
  });
  const phases: string[] = [];
  npm.stdout?.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (!line.startsWith('{')) continue;
      const record = JSON.parse(line) as { msg?: string; ms?: number };
      const at = Math.round(performance.now() - begin);
      if (record.msg === 'created the PostgreSQL cluster')
        phases.push(`initdb ${record.ms} ms (done at ${at})`);
      if (record.msg === 'PostgreSQL is ready')
        phases.push(`postgres start ${record.ms} ms (ready at ${at})`);
    }
  });
  for (;;) {
    if (npm.exitCode !== null) throw new Error(`npm start exited with ${npm.exitCode}`);
    const ready = await fetch(`http://127.0.0.1:${port}/health/ready`)
      .then((response) => response.ok)
      .catch(() => false);
    if (ready) return { npm, port, ms: performance.now() - begin, phases: phases.join(', ') };
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
async function bareCluster(): Promise<{ firstMs: number; restartMs: number; idleRssKb: number }> {
  const binaries = await postgresBinaries(); // the files npm installed, symlinks made
  const runAs = process.getuid?.() === 0 ? unprivilegedUser() : undefined;
  const user: { uid?: number; gid?: number } = runAs ? { uid: runAs.uid, gid: runAs.gid } : {};
  const parent = mkdtempSync(join(tmpdir(), 'together-bench-bare-'));
  chmodSync(parent, 0o755);
  const dataDir = join(parent, 'pg');
  mkdirSync(dataDir, { mode: 0o700 });
  if (runAs) chownSync(dataDir, runAs.uid, runAs.gid);
  const binary = (name: string) => join(binaries.root, 'bin', name);
  const startPostmaster = async () => {
    // The same settings as Together's cluster (configuration, not code): a default PostgreSQL 18
    // would start three more I/O workers and a replication launcher, and so not do the same job.
    const settings = Object.entries(clusterSettings).flatMap(([name, value]) => ['-c', `${name}=${value}`]);
    const child = spawn(
      binary('postgres'),
      ['-D', dataDir, '-k', dataDir, '-c', 'listen_addresses=', ...settings],
      {
        ...user,
        stdio: 'ignore',
      },
    );
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
    await sleep(2_000);
    const pid = postmaster.pid as number;
    const idleRssKb = [pid, ...descendants(pid)].reduce((total, each) => total + memoryKb(each).rss, 0);
    await stopPostmaster(postmaster);
    return { firstMs, restartMs, idleRssKb };
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
}

/**
 * Ceiling 2: a bare Fastify answering `/health/ready` with the same bytes (`{"status":"ok"}`), from
 * spawn to its first response; and its resident memory once it has answered.
 */
async function bareFastify(): Promise<{ ms: number; rssKb: number }> {
  const port = await freePort();
  const begin = performance.now();
  const child = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import Fastify from 'fastify';
       const app = Fastify();
       app.get('/health/ready', async () => ({ status: 'ok' }));
       await app.listen({ port: ${port}, host: '127.0.0.1' });`,
    ],
    { cwd: repositoryRoot, stdio: 'ignore' },
  );
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${port}/health/ready`)
      .then(async (response) => response.ok && (await response.text()) === '{"status":"ok"}')
      .catch(() => false);
    if (ok) break;
    await sleep(10);
  }
  const ms = performance.now() - begin;
  await sleep(2_000);
  const rssKb = memoryKb(child.pid as number).rss;
  child.kill();
  return { ms, rssKb };
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
  const bare = {
    cluster: [] as number[],
    clusterRestart: [] as number[],
    clusterRss: [] as number[],
    fastify: [] as number[],
    fastifyRss: [] as number[],
  };
  let idleAfterFirst: Footprint | undefined;
  let idleAfterRestart: Footprint | undefined;
  for (let round = 0; round < rounds; round++) {
    let firstPhases = '';
    let restartPhases = '';
    const dataDir = join(mkdtempSync(join(tmpdir(), 'together-bench-footprint-')), 'data');
    try {
      const first = await npmStart(dataDir);
      firsts.push(first.ms);
      firstPhases = first.phases;
      const token = await createOrganization(first.port);
      if (round === 0) {
        await sleep(idleSeconds * 1000);
        idleAfterFirst = footprint(first.npm);
      }
      await stop(first.npm);

      const again = await npmStart(dataDir);
      restarts.push(again.ms);
      restartPhases = again.phases;
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
    console.log(`round ${round + 1} phases: first start: ${firstPhases}; restart: ${restartPhases}`);
    const cluster = await bareCluster();
    const fastify = await bareFastify();
    bare.cluster.push(cluster.firstMs);
    bare.clusterRestart.push(cluster.restartMs);
    bare.clusterRss.push(cluster.idleRssKb);
    bare.fastify.push(fastify.ms);
    bare.fastifyRss.push(fastify.rssKb);
    console.log(
      `round ${round + 1}: npm start first ${firsts[round]?.toFixed(0)} ms, restart ${restarts[round]?.toFixed(0)} ms; ceiling: cluster alone ${cluster.firstMs.toFixed(0)} / ${cluster.restartMs.toFixed(0)} ms, bare Fastify ${fastify.ms.toFixed(0)} ms`,
    );
  }
  // Ratios as fractions of the ceiling (1.0: as fast, or as small, as the bare pieces); above 1.0
  // would mean Together beats the simplest thing doing its job, a bug in this benchmark.
  const first = median(firsts);
  const restart = median(restarts);
  const ceilingFirst = median(bare.cluster) + median(bare.fastify);
  const ceilingRestart = median(bare.clusterRestart) + median(bare.fastify);
  console.log(
    `\nfirst start to ready: ${first.toFixed(0)} ms (goal ≤ 3000), ceiling ${ceilingFirst.toFixed(0)} ms, ceiling/ours ${(ceilingFirst / first).toFixed(2)}`,
  );
  console.log(
    `restart to ready:     ${restart.toFixed(0)} ms (goal ≤ 1500), ceiling ${ceilingRestart.toFixed(0)} ms, ceiling/ours ${(ceilingRestart / restart).toFixed(2)}`,
  );
  if (idleAfterFirst) report(`idle after the first start (${idleSeconds} s)`, idleAfterFirst);
  if (idleAfterRestart) report(`idle after a restart (${idleSeconds} s)     `, idleAfterRestart);
  const ceilingRss = median(bare.clusterRss) + median(bare.fastifyRss);
  console.log(
    `memory ceiling: the same PostgreSQL with the same settings, idle (${mb(median(bare.clusterRss))} RSS) + bare Fastify (${mb(median(bare.fastifyRss))} RSS) = ${mb(ceilingRss)}`,
  );
  if (idleAfterRestart) {
    const ours = idleAfterRestart.serverRss + idleAfterRestart.clusterRss;
    console.log(
      `ceiling/ours (after a restart): server ${(median(bare.fastifyRss) / idleAfterRestart.serverRss).toFixed(2)}, cluster ${(median(bare.clusterRss) / idleAfterRestart.clusterRss).toFixed(2)}, both ${(ceilingRss / ours).toFixed(2)}`,
    );
  }
  console.log('goal: server + cluster ≤ 150 MB resident while idle; the organisation survived every restart');
}

await main();
