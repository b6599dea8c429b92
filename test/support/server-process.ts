/**
 * Real server processes for start-up, shutdown and fault tests: `node --import tsx src/server.ts`
 * (the sources `npm start` bundles), started directly so that signals reach the server itself
 * (killing an `npx tsx …` wrapper would leave the real node process running).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const repositoryRoot = fileURLToPath(new URL('../..', import.meta.url));
/** tsx by absolute URL, so that a server may run with another working directory. */
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  /** Everything the process printed so far. */
  output(): string;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const running = new Set<ChildProcess>();

/** Kills whatever a failed test left running. */
export function killAllServers(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

export function spawnServer(
  env: Record<string, string | undefined>,
  cwd = repositoryRoot,
  script: string[] = ['src/server.ts'],
  /**
   * Where the server's stdout and stderr go instead of this process. A benchmark's load generator
   * must not also be the reader of every access-log line (at `info`, one per request): a file is
   * what a deployed server writes to, and it costs the load generator nothing.
   */
  logFile?: string,
): {
  child: ChildProcess;
  exited: Promise<number | null>;
  output: () => string;
} {
  const baseEnv = { ...process.env };
  for (const name of ['TEST_DATABASE_URL', 'DATABASE_URL', 'DATA_DIR', 'ADMIN_TOKEN']) delete baseEnv[name];
  const [entry, ...args] = script;
  // Built JavaScript runs on plain node with the flags of `npm run start:dist`; the TypeScript
  // sources through the tsx loader.
  const loader = entry?.endsWith('.js')
    ? ['--max-semi-space-size=4', '--heap-growing-percent=30']
    : ['--import', tsxLoader];
  // For a benchmark's diagnosis, e.g. BENCH_NODE_FLAGS='--cpu-prof --cpu-prof-dir=/tmp/prof' (Node 20
  // refuses --cpu-prof in NODE_OPTIONS).
  const diagnosis = process.env.BENCH_NODE_FLAGS?.split(/\s+/).filter(Boolean) ?? [];
  const logFd = logFile === undefined ? undefined : openSync(logFile, 'w');
  const child = spawn(
    process.execPath,
    [...loader, ...diagnosis, join(repositoryRoot, entry ?? 'src/server.ts'), ...args],
    {
      cwd,
      env: {
        ...baseEnv,
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
        RATE_LIMIT_PER_MINUTE: '0',
        ...env,
      },
      stdio: logFd === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', logFd, logFd],
    },
  );
  if (logFd !== undefined) closeSync(logFd);
  running.add(child);
  let text = '';
  child.stdout?.on('data', (chunk) => {
    text += chunk.toString();
  });
  child.stderr?.on('data', (chunk) => {
    text += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      running.delete(child);
      resolve(code);
    });
  });
  return { child, exited, output: () => (logFile === undefined ? text : readFileSync(logFile, 'utf8')) };
}

/** Runs an operator command (src/cli.ts) to its end. */
export async function runCli(args: string[], env: Record<string, string | undefined>) {
  const { exited, output } = spawnServer(env, repositoryRoot, ['src/cli.ts', ...args]);
  return { code: await exited, output: output() };
}

/** A port that was free a moment ago (for servers whose log level hides the start-up line). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Starts a server and resolves once it serves: from its start-up log line, or, when a PORT is
 * given, by polling /health/live (so that quieter log levels work too).
 */
export async function startServer(
  env: Record<string, string | undefined>,
  /** `compiled`: run the build (`npm run build`, dist/server.js) as production does, not the sources. */
  options: { cwd?: string; timeoutMs?: number; compiled?: boolean; logFile?: string } = {},
): Promise<ServerProcess> {
  const timeoutMs = options.timeoutMs ?? 90_000;
  const { child, exited, output } = spawnServer(
    env,
    options.cwd,
    options.compiled ? ['dist/server.js'] : undefined,
    options.logFile,
  );
  const givenPort = env.PORT && env.PORT !== '0' ? env.PORT : undefined;
  const url = await new Promise<string>((resolve, reject) => {
    let done = false;
    const finish = (error: Error | null, address?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearInterval(poller);
      if (error) reject(error);
      else resolve(address as string);
    };
    const timer = setTimeout(
      () => finish(new Error(`server did not start in ${timeoutMs} ms:\n${output()}`)),
      timeoutMs,
    );
    const poller = setInterval(() => {
      if (givenPort) {
        const address = `http://127.0.0.1:${givenPort}`;
        fetch(`${address}/health/live`)
          .then((response) => response.ok && finish(null, address))
          .catch(() => {});
        return;
      }
      for (const line of output().split('\n')) {
        if (!line.startsWith('{')) continue;
        const record = JSON.parse(line) as { msg?: string; address?: string };
        if (record.msg === 'Together is serving' && record.address) finish(null, record.address);
      }
    }, 50);
    exited.then((code) => finish(new Error(`server exited with ${code} before serving:\n${output()}`)));
  });
  return {
    url,
    child,
    output,
    exited,
    stop: (signal = 'SIGTERM') => {
      child.kill(signal);
      return exited;
    },
  };
}

/** Polls `probe` until it returns true, or fails after `timeoutMs`. */
export async function eventually(
  probe: () => Promise<boolean>,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${what} did not hold within ${timeoutMs} ms`);
}
