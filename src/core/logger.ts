/**
 * The pino logger every process uses: JSON lines (pretty on a terminal), secrets redacted, errors
 * serialised without the database's quoted values. Its own module so that the server can log
 * before the app's modules have loaded.
 */
import { type FastifyBaseLogger, type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import pino from 'pino';
import type { Config } from '../config.ts';
import { driverErrorOf } from '../db/errors.ts';

/** The JSON log: one line per event, request id on each, secrets redacted; pretty on a terminal. */
export function createLogger(config: Config, destination?: pino.DestinationStream): FastifyBaseLogger {
  const options: pino.LoggerOptions = {
    level: config.LOG_LEVEL,
    serializers: { err: serializeErrorForLog, req: requestForLog },
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
  return pino(options, destination ?? linesPerTurn(pino.destination({ dest: 1, sync: true })));
}

/** What linesPerTurn needs of a writer: one that writes before it returns (sonic-boom, sync). */
interface LineWriter {
  write(text: string): unknown;
}

/**
 * A destination that writes the lines of one turn of the event loop in one synchronous write.
 * Line by line, a synchronous write costs a system call per line; pino's asynchronous sonic-boom
 * appends each line to its pending chunk and measures the whole chunk again (`Buffer.byteLength`
 * of a string built by `+=`, which copies it), so while a write was in flight every line cost a
 * copy of up to 16 kB (on a popular schedule's revalidations, one access line each, 6–8 % of the
 * server's CPU profile and much of its garbage), and a chunk in flight when the process exits is
 * cut short (a fatal line before `process.exit` lost, or half written to a pipe). Here a line is
 * copied once, a turn costs one system call, and what is pending at exit is written before it.
 */
export function linesPerTurn(stream: LineWriter): pino.DestinationStream {
  let pending: string[] = [];
  const writeNow = () => {
    if (pending.length === 0) return;
    const text = pending.join('');
    pending = [];
    stream.write(text);
  };
  process.once('exit', writeNow);
  return {
    write(line: string) {
      if (pending.push(line) === 1) setImmediate(writeNow);
    },
    // logger.flush() reaches the stream through these.
    flush(callback?: (error?: Error) => void) {
      writeNow();
      callback?.();
    },
    flushSync: writeNow,
  } as pino.DestinationStream;
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

/**
 * The static beginnings of the paths whose next segment is a secret: those of the routes that
 * declare `config.secretInPath` (app.ts's onRoute hook), so that a path under one that reaches no
 * route (a mistyped feed URL) is masked too. Routes are the same in every app of a process.
 */
const secretPathPrefixes = new Set<string>();

/** Notes that the parameter of `routeUrl` (`/v1/calendar/:feedToken.ics`) is a secret. */
export function declareSecretPath(routeUrl: string): void {
  const parameterAt = routeUrl.indexOf(':');
  if (parameterAt > 0) secretPathPrefixes.add(routeUrl.slice(0, parameterAt));
}

/**
 * A URL as logs show it: the query's values elided (a search term can be an email address), and a
 * route whose path carries a secret (`config.secretInPath`, the volunteer's calendar feed) shown by
 * its pattern. A path under a secret prefix that matched no route (a mistyped feed URL) has that
 * segment replaced too, so the secret never reaches the log.
 */
export function urlForLog(url: string, secretRoute?: string): string {
  const queryAt = url.indexOf('?');
  const path = queryAt === -1 ? url : url.slice(0, queryAt);
  const query = queryAt === -1 ? '' : url.slice(queryAt).replace(/=[^&]*/g, '=…');
  if (secretRoute) return secretRoute + query;
  for (const prefix of secretPathPrefixes)
    if (path.startsWith(prefix))
      return `${prefix}${path.slice(prefix.length).replace(/^[^/]*/, '[secret]')}${query}`;
  return path + query;
}

/** The request as every log line shows it: method, URL (`urlForLog`), host and client. */
export function requestForLog(request: FastifyRequest) {
  const route = request.routeOptions;
  return {
    method: request.method,
    url: urlForLog(request.url, route?.config?.secretInPath ? route.url : undefined),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  };
}

/**
 * The access log: one line per request when its answer is complete, with the request
 * (`requestForLog`), the status and the response time.
 *
 * - Fastify's default also writes an "incoming request" line, which the completed line repeats;
 *   it is kept at `debug`, for following a request that never completes.
 * - The line goes through a child logger without the redaction paths: its fields are the ones
 *   listed here and none of them is a header, a body or a secret, while the redaction (which
 *   walks every logged object for the wildcard paths) cost about three times the rest of the line,
 *   on every request of a popular public schedule (bench/reads.ts). Every other line, errors
 *   included, is still redacted.
 */
export class AccessLog extends LogController {
  readonly #access: FastifyBaseLogger | undefined;

  constructor(
    options: ConstructorParameters<typeof LogController>[0] & { logger: FastifyBaseLogger | false },
  ) {
    super(options);
    this.#access = options.logger ? options.logger.child({}, { redact: { paths: [] } }) : undefined;
  }

  override incomingRequest(request: FastifyRequest): void {
    if (!this.isLogDisabled(request)) request.log.debug({ req: request }, 'incoming request');
  }

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    if (this.isLogDisabled(request)) return;
    if (error) {
      reply.log.error(
        { req: request, res: reply, err: error, responseTime: reply.elapsedTime },
        'request errored',
      );
      return;
    }
    this.#access?.info(
      {
        [this.requestIdLogLabel]: request.id,
        // Serialised once, by the logger's `req` serializer (requestForLog), which the child inherits.
        req: request,
        res: { statusCode: reply.statusCode },
        responseTime: reply.elapsedTime,
      },
      'request completed',
    );
  }
}
