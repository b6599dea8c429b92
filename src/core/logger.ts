/**
 * The pino logger every process uses: JSON lines (pretty on a terminal), secrets redacted, errors
 * serialised without the database's quoted values. Its own module so that the server can log
 * before the app's modules have loaded.
 */
import type { FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import type { Config } from '../config.ts';
import { driverErrorOf } from '../db/errors.ts';

/** The JSON log: one line per event, request id on each, secrets redacted; pretty on a terminal. */
export function createLogger(config: Config, destination?: pino.DestinationStream): FastifyBaseLogger {
  const options: pino.LoggerOptions = {
    level: config.LOG_LEVEL,
    serializers: { err: serializeErrorForLog },
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'headers.authorization',
        'headers.cookie',
        '*.password',
        '*.token',
        '*.secret',
        '*.passwordHash',
        '*.tokenHash',
      ],
      censor: '[redacted]',
    },
  };
  if (!destination && process.stdout.isTTY) {
    return pino({ ...options, transport: { target: 'pino-pretty' } });
  }
  return destination ? pino(options, destination) : pino(options);
}

/**
 * Errors as they are logged: without the SQL text and bound parameters that drizzle puts on
 * query errors (they would carry emails, names, token hashes into the log), keeping the SQLSTATE,
 * constraint and table that explain the failure.
 */
export function serializeErrorForLog(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { message: String(error) };
  const driverError = driverErrorOf(error);
  const isQueryError = 'query' in error && 'params' in error;
  const cause = (error as { cause?: unknown }).cause;
  return {
    type: error.name,
    // PostgreSQL quotes the offending value in some messages (invalid input syntax for type uuid: "…").
    message: isQueryError
      ? `database query failed: ${cause instanceof Error ? cause.message.replace(/"[^"]*"/g, '"…"') : 'unknown cause'}`
      : error.message,
    stack: isQueryError ? undefined : error.stack,
    code: driverError?.code,
    constraint: driverError?.constraint,
    table: (driverError as { table?: string } | undefined)?.table,
    ...(cause && !isQueryError ? { cause: serializeErrorForLog(cause) } : {}),
  };
}
