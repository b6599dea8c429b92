/**
 * One delivery attempt (API.md §10): an HTTP POST of the JSON message, signed as Standard Webhooks
 * specifies (by the `standardwebhooks` package), with every current secret. It fails on an answer
 * other than 2xx, on a redirect (never followed: node:http does not follow them), on a connection
 * error, and when the whole answer has not arrived within 15 s.
 *
 * The connection goes only to an address that destinations.ts allows, checked on the address
 * actually connected: a host name is resolved by our own lookup, which refuses it when any of its
 * addresses is forbidden (a DNS answer that changed since registration, "rebinding"), and a
 * literal address, which no lookup sees, is checked before connecting.
 */
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { Webhook } from 'standardwebhooks';
import { forbiddenRange, type Resolver } from './destinations.ts';

/** The answer must be whole within this time. */
export const attemptTimeoutMs = 15_000;
/** Of a receiver's answer, only this much is read (and thrown away). */
const answerReadLimit = 64 * 1024;

export interface Message {
  /** The `webhook-id`: the same for every attempt of one message. */
  id: string;
  type: string;
  /** When the change happened (the payload's `timestamp`). */
  timestamp: Date;
  data: Record<string, unknown>;
}

export interface AttemptResult {
  /** The receiver's status; null when none came. */
  responseStatus: number | null;
  durationMs: number;
  ok: boolean;
  /** Why it failed, in a line; null when it succeeded. */
  error: string | null;
  /** A `Retry-After` of a 429 or 503, in seconds. */
  retryAfterSeconds: number | null;
}

/** A `Retry-After` in seconds: its delay-seconds or its HTTP date (RFC 9110 §10.2.3); null otherwise. */
export function retryAfterSecondsOf(header: string | undefined): number | null {
  const value = header?.trim() ?? '';
  if (/^\d+$/.test(value)) return Number(value);
  // The IMF-fixdate form, `Sun, 06 Nov 1994 08:49:37 GMT` (Date.parse alone takes "1.5" for a date).
  if (!/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(value)) return null;
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

/** The body of a message: `{ type, timestamp, data }`. */
export function bodyOf(message: Message): string {
  return JSON.stringify({
    type: message.type,
    timestamp: message.timestamp.toISOString(),
    data: message.data,
  });
}

/** The Standard Webhooks headers of one attempt, signed with each secret, newest first. */
export function signedHeaders(message: Message, body: string, secrets: string[], at = new Date()) {
  const signatures = secrets.map((secret) => new Webhook(secret).sign(message.id, at, body));
  return {
    'content-type': 'application/json',
    'user-agent': 'Together-Webhooks/1',
    'webhook-id': message.id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': signatures.join(' '),
  };
}

/** A lookup for the HTTP client that refuses a host with any forbidden address. */
export function guardedLookup(resolve: Resolver): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname).then(
      (addresses) => {
        const forbidden = addresses.find((address) => forbiddenRange(address) !== null);
        if (addresses.length === 0 || forbidden) {
          const reason = forbidden
            ? `${hostname} resolves to ${forbidden}, a ${forbiddenRange(forbidden)} address`
            : `${hostname} does not resolve`;
          callback(Object.assign(new Error(reason), { code: 'EWEBHOOKDESTINATION' }), '', 0);
          return;
        }
        const entries = addresses.map((address) => ({
          address,
          family: ipaddr.parse(address).kind() === 'ipv6' ? 6 : 4,
        }));
        const wanted = options.family ? entries.filter((entry) => entry.family === options.family) : entries;
        if (options.all) callback(null, wanted as never, 0);
        else callback(null, wanted[0]?.address ?? '', wanted[0]?.family ?? 4);
      },
      (error: Error) => callback(error as NodeJS.ErrnoException, '', 0),
    );
  };
}

/** Agents that keep connections open for `idleMs` between attempts, `perHost` at most to one host. */
export function keptConnections(perHost: number, idleMs = 4_000) {
  const options = { keepAlive: true, timeout: idleMs, maxSockets: perHost };
  return { http: new http.Agent(options), https: new https.Agent(options) };
}

/** Sends one attempt of `message` to `url`. Never throws: a failure is in the result. */
export async function sendAttempt(
  url: string,
  message: Message,
  secrets: string[],
  options: {
    allowPrivate: boolean;
    resolve: Resolver;
    timeoutMs?: number;
    /** Ends the attempt early (the dispatcher stopping); the result then says it was aborted. */
    signal?: AbortSignal;
    /**
     * The agents whose connections are kept between attempts (the dispatcher's); without them each
     * attempt connects anew. A kept connection was checked when it was made, to the address it
     * still goes to.
     */
    agents?: { http: http.Agent; https: https.Agent };
  },
): Promise<AttemptResult> {
  const timeoutMs = options.timeoutMs ?? attemptTimeoutMs;
  const started = performance.now();
  const result = (fields: Omit<AttemptResult, 'durationMs'>): AttemptResult => ({
    ...fields,
    durationMs: Math.round(performance.now() - started),
  });
  const failed = (error: string, responseStatus: number | null = null) =>
    result({ responseStatus, ok: false, error, retryAfterSeconds: null });
  const target = new URL(url);
  const host = target.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!options.allowPrivate && ipaddr.isValid(host) && forbiddenRange(host))
    return failed(`refused: ${host} is a ${forbiddenRange(host)} address`);
  const reasonOf = (error: Error) =>
    error.name === 'AbortError' || error.name === 'TimeoutError'
      ? `no whole answer within ${timeoutMs / 1000} s`
      : error.message;
  const body = bodyOf(message);
  const client = target.protocol === 'https:' ? https : http;
  return new Promise<AttemptResult>((resolve) => {
    const request = client.request(
      target,
      {
        method: 'POST',
        headers: { ...signedHeaders(message, body, secrets), 'content-length': Buffer.byteLength(body) },
        signal: options.signal
          ? AbortSignal.any([options.signal, AbortSignal.timeout(timeoutMs)])
          : AbortSignal.timeout(timeoutMs),
        ...(options.allowPrivate ? {} : { lookup: guardedLookup(options.resolve) }),
        agent: options.agents ? options.agents[target.protocol === 'https:' ? 'https' : 'http'] : false,
      },
      (response) => {
        let read = 0;
        response.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read > answerReadLimit) response.destroy();
        });
        const finish = () => {
          const status = response.statusCode ?? 0;
          const retryAfter = retryAfterSecondsOf(response.headers['retry-after']);
          resolve(
            result({
              responseStatus: status,
              ok: status >= 200 && status < 300,
              error:
                status >= 300 && status < 400
                  ? `redirected to ${response.headers.location ?? 'nowhere'} (not followed)`
                  : status >= 200 && status < 300
                    ? null
                    : `answered ${status}`,
              retryAfterSeconds: status === 429 || status === 503 ? retryAfter : null,
            }),
          );
        };
        response.on('end', finish);
        response.on('close', finish);
        response.on('error', (error) => resolve(failed(reasonOf(error), response.statusCode ?? null)));
      },
    );
    request.on('error', (error) => resolve(failed(reasonOf(error))));
    request.end(body);
  });
}
