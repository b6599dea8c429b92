/**
 * The folder of package.json, found by walking up from this module. It is the same answer from
 * `src/` (run through tsx), from the bundle in `dist/`, and from a container's /app, which a path
 * relative to the compiled file would not be.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findPackageRoot(start: string): string {
  let folder = dirname(fileURLToPath(start));
  while (!existsSync(join(folder, 'package.json'))) {
    const parent = dirname(folder);
    if (parent === folder) throw new Error(`no package.json above ${fileURLToPath(start)}`);
    folder = parent;
  }
  return folder;
}

export const packageRoot = findPackageRoot(import.meta.url);

/** A path inside the package, such as `migrations` or `openapi/openapi.json`. */
export const packagePath = (...parts: string[]): string => join(packageRoot, ...parts);
