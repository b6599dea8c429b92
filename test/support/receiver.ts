/**
 * A webhook receiver on the loopback for delivery tests: it records every request and answers as
 * the test says, per path (a status and headers, or no answer at all).
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface Received {
  path: string;
  headers: Record<string, string>;
  body: string;
  at: number;
}

/** How a path answers its `n`th request (from 1): a status and headers, or 'hang'. */
export type Answer = (n: number) => { status: number; headers?: Record<string, string> | undefined } | 'hang';

export interface Receiver {
  url(path: string): string;
  received: Received[];
  at(path: string): Received[];
  answer(path: string, answer: Answer): void;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  const answers = new Map<string, Answer>();
  const server = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => {
      body += chunk;
    });
    request.on('end', () => {
      const path = request.url ?? '';
      received.push({ path, headers: request.headers as Record<string, string>, body, at: Date.now() });
      const n = received.filter((item) => item.path === path).length;
      const answer = (answers.get(path) ?? ((): ReturnType<Answer> => ({ status: 204 })))(n);
      if (answer === 'hang') return;
      response.writeHead(answer.status, answer.headers ?? {}).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    received,
    at: (path) => received.filter((item) => item.path === path),
    answer: (path, answer) => answers.set(path, answer),
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** The message, verified as a partner would, with the `standardwebhooks` package. */
export function verified(
  secret: string,
  item: Received,
): { type: string; timestamp: string; data: Record<string, unknown> } {
  return new Webhook(secret).verify(item.body, item.headers) as never;
}
