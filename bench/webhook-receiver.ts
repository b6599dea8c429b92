/**
 * The partner's endpoint of bench/webhooks.ts, in a process of its own (so that its work does not
 * slow the load generator): answers 204, notes when each message arrived, and verifies the
 * signature of one message in fifty with the `standardwebhooks` package. Driven over IPC:
 * `{ secret }` sets the key, `{ report: true }` answers with the arrivals so far and forgets them.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

const arrivals: { id: string; latencyMs: number }[] = [];
let secret = '';
let badSignatures = 0;
let seen = 0;

const server = http.createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    const body = Buffer.concat(chunks).toString();
    const { timestamp } = JSON.parse(body) as { timestamp: string };
    arrivals.push({
      id: String(request.headers['webhook-id']),
      latencyMs: Date.now() - Date.parse(timestamp),
    });
    if (seen++ % 50 === 0) {
      try {
        new Webhook(secret).verify(body, request.headers as Record<string, string>);
      } catch {
        badSignatures++;
      }
    }
    response.writeHead(204).end();
  });
});
server.keepAliveTimeout = 10_000;
server.listen(0, '127.0.0.1', () => {
  process.send?.({ port: (server.address() as AddressInfo).port });
});
process.on('message', (message: { secret?: string; report?: boolean }) => {
  if (message.secret) secret = message.secret;
  if (message.report) process.send?.({ arrivals: arrivals.splice(0), badSignatures });
});
process.on('disconnect', () => process.exit(0));
