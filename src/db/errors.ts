/**
 * The shape of node-postgres errors, as drizzle hands them over: what the rest of the code asks of
 * an error that came from the database.
 */

// SQLSTATE classes and node/pg error codes that mean "the database cannot be reached right now".
const unavailableSqlStates = new Set([
  '57P01',
  '57P02',
  '57P03',
  '53300',
  '08000',
  '08001',
  '08003',
  '08006',
]);
const unavailableNodeCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  // The embedded cluster's socket file is gone while it restarts.
  'ENOENT',
]);
const unavailableMessages = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error',
  'Cannot use a pool after calling end',
];

export interface DriverError {
  code?: string;
  constraint?: string;
  message?: string;
  cause?: unknown;
}

/** drizzle ≥ 0.44 wraps driver errors in DrizzleQueryError: walk the cause chain to the one with a SQLSTATE. */
export function driverErrorOf(error: unknown): DriverError | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current && typeof current === 'object'; depth++) {
    const candidate = current as DriverError;
    if (typeof candidate.code === 'string' && candidate.code !== 'FST_ERR_INTERNAL') return candidate;
    current = candidate.cause;
  }
  return undefined;
}

export function isDatabaseUnavailable(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current && typeof current === 'object'; depth++) {
    const candidate = current as DriverError;
    if (
      candidate.code &&
      (unavailableSqlStates.has(candidate.code) || unavailableNodeCodes.has(candidate.code))
    ) {
      return true;
    }
    if (candidate.message && unavailableMessages.some((text) => candidate.message?.includes(text)))
      return true;
    current = candidate.cause;
  }
  return false;
}

/** The constraint a database error names, if any. */
export function constraintOf(error: unknown): string | undefined {
  return driverErrorOf(error)?.constraint;
}
