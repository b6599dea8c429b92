import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../../core/errors.ts';
import { problems } from '../../core/openapi.ts';

const status = z
  .object({ status: z.literal('ok') })
  .meta({ id: 'HealthStatus', examples: [{ status: 'ok' }] });

/** How long readiness waits for the database before calling it unreachable. */
const readinessTimeoutMs = 2_000;

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Probes for load balancers and orchestrators; not rate-limited. */
export const healthRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/health/live',
    {
      config: { auth: 'public', rateLimit: false },
      schema: {
        operationId: 'getLiveness',
        tags: ['health'],
        summary: 'Liveness: the process is up',
        description: 'Answers 200 as long as the process serves HTTP, whatever the state of the database.',
        response: { 200: status, ...problems({ 500: 'internal' }) },
      },
    },
    () => ({ status: 'ok' as const }),
  );

  app.get(
    '/health/ready',
    {
      config: { auth: 'public', rateLimit: false },
      schema: {
        operationId: 'getReadiness',
        tags: ['health'],
        summary: 'Readiness: the database answers',
        description: '`503 unavailable` while the database is unreachable.',
        response: { 200: status, ...problems({ 503: 'unavailable', 500: 'internal' }) },
      },
    },
    async (request) => {
      try {
        await withTimeout(app.database.ping(), readinessTimeoutMs);
      } catch (error) {
        request.log.warn({ err: error }, 'readiness check failed');
        throw new AppError('unavailable', 'The database is unreachable.', {
          headers: { 'retry-after': '5' },
        });
      }
      return { status: 'ok' as const };
    },
  );
};
