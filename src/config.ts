import { z } from 'zod';

const booleanFlag = z
  .enum(['true', 'false', '1', '0', ''])
  .default('false')
  .transform((value) => value === 'true' || value === '1');

const commaList = z
  .string()
  .default('')
  .transform((value) =>
    value
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item.length > 0),
  );

/** The environment, as documented in README.md and ARCHITECTURE.md §1. Parsed once at start-up. */
const environmentSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// connection string')
    .optional()
    .or(z.literal('').transform(() => undefined)),
  /** Where the embedded PostgreSQL keeps its cluster when DATABASE_URL is unset. */
  DATA_DIR: z.string().min(1).default('./data'),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(1000).default(10),
  ADMIN_TOKEN: z
    .string()
    .min(16, 'must be at least 16 characters')
    .optional()
    .or(z.literal('').transform(() => undefined)),
  CORS_ORIGINS: commaList,
  RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(0).default(600),
  /** Sign-in attempts per 15 minutes for one email (ten times as many per IP address); 0 turns it off. */
  LOGIN_ATTEMPTS_PER_15_MINUTES: z.coerce.number().int().min(0).default(10),
  WEBHOOK_ALLOW_PRIVATE: booleanFlag,
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(10_000),
  /**
   * Slow clients (a connection held open by a request that never finishes): its headers must
   * arrive within HEADERS_TIMEOUT_MS, the whole request within REQUEST_TIMEOUT_MS, or the server
   * answers 408 and closes the connection.
   */
  HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).default(30_000),
  /** Apply migrations at start-up. Behind PgBouncer in transaction mode, set false and run `npm run db:migrate` directly. */
  MIGRATE_ON_START: booleanFlag.default(true),
  /**
   * Which proxies may set X-Forwarded-For, so that per-IP limits see the client's address: `false`
   * (default), or a comma-separated list of the proxies' addresses or CIDR ranges (proxy-addr's
   * names `loopback`, `linklocal`, `uniquelocal` too). `true` trusts every hop, which lets clients
   * forge their address: avoid it. A hop count is refused: it cannot tell the proxy from a client
   * that sends the header itself, and Fastify ignores one (every client would share the proxy's
   * address, and its limits).
   */
  TRUST_PROXY: z
    .string()
    .default('false')
    .transform((value, context): boolean | string[] => {
      const text = value.trim();
      if (text === '' || text === 'false' || text === '0') return false;
      if (text === 'true') return true;
      if (/^\d+$/.test(text)) {
        context.addIssue({
          code: 'custom',
          message:
            "a hop count cannot tell the proxy from a client that sends X-Forwarded-For itself; give the proxies' addresses or ranges (e.g. 10.0.0.0/8, loopback)",
        });
        return z.NEVER;
      }
      return text
        .split(',')
        .map((item) => item.trim())
        .filter(Boolean);
    }),
});

export type Config = z.output<typeof environmentSchema>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((line) => `  ${line}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses the environment; throws a ConfigError whose lines each name the offending variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const result = environmentSchema.safeParse(env);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => `${issue.path.join('.') || '(environment)'}: ${issue.message}`),
    );
  }
  return result.data;
}

/** A config for tests and tools: defaults, then the given overrides. */
export function configWith(overrides: Partial<Config>): Config {
  return { ...loadConfig({}), ...overrides };
}
