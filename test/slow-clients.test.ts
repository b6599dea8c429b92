/**
 * Slow clients (issue 14, abuse limits): a request whose headers, or whose body, never finish
 * arriving does not hold its connection for ever. The limits are short here (HEADERS_TIMEOUT_MS,
 * REQUEST_TIMEOUT_MS); the server answers 408 and closes the connection.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { useTestApp } from './support/fixtures.ts';

// The request's limit well above the headers', so that the first test shows the headers' own.
const suite = useTestApp({ HEADERS_TIMEOUT_MS: 1_000, REQUEST_TIMEOUT_MS: 5_000 });

/** Sends `text` and then nothing; what the server answered and after how long it closed. */
function trickle(text: string): Promise<{ answer: string; closedAfterMs: number }> {
  const { hostname, port } = new URL(suite.baseUrl);
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = net.connect(Number(port), hostname, () => socket.write(text));
    let answer = '';
    socket.on('data', (chunk) => {
      answer += chunk.toString();
    });
    socket.on('error', reject);
    socket.on('close', () => resolve({ answer, closedAfterMs: Date.now() - started }));
    // A guard: the test fails (the connection stayed open) rather than hangs.
    setTimeout(() => {
      socket.destroy();
      resolve({ answer, closedAfterMs: Number.POSITIVE_INFINITY });
    }, 15_000).unref();
  });
}

describe('slow clients', () => {
  it('headers that never end: 408 and closed, within the headers timeout (and its checking interval)', async () => {
    const { answer, closedAfterMs } = await trickle(
      'GET /health/live HTTP/1.1\r\nHost: together.test\r\nX-Slow: ',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    // The headers' 1 s and Node's 1 s checking interval, before the request's 5 s.
    expect(closedAfterMs).toBeLessThan(4_000);
  });

  it('a body that never ends: 408 and closed, within the request timeout', async () => {
    const { answer, closedAfterMs } = await trickle(
      'POST /v1/organizations HTTP/1.1\r\nHost: together.test\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"name":',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    expect(closedAfterMs).toBeLessThan(10_000);
  });
});
