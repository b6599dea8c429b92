/** The public answer cache (src/domains/public/answers.ts): sharing, staleness and forgetting. */
import { describe, expect, it } from 'vitest';
import { AnswerCache } from '../src/domains/public/answers.ts';
import { sleep } from './support/fixtures.ts';

/** A computation that counts its calls and resolves when told to. */
function computation(orgId = 'org') {
  let calls = 0;
  const pending: ((body: string) => void)[] = [];
  return {
    compute: () => {
      calls += 1;
      return new Promise<{ orgId: string; body: string }>((resolve) => {
        pending.push((body) => resolve({ orgId, body }));
      });
    },
    finish: (body: string) => pending.shift()?.(body),
    get calls() {
      return calls;
    },
  };
}

/** Puts `body` under `key` through `get`, as a first request would, and waits for it. */
async function ready(cache: AnswerCache, work: ReturnType<typeof computation>, body: string, key = 'k') {
  const made = cache.get(key, work.compute);
  work.finish(body);
  return made;
}

describe('AnswerCache', () => {
  it('shares one computation between concurrent requests, then serves it while fresh; the ETag is the bytes hash', async () => {
    const cache = new AnswerCache(200, 100, 10);
    const work = computation();
    const first = cache.get('k', work.compute);
    const second = cache.get('k', work.compute);
    work.finish('one');
    const [a, b] = await Promise.all([first, second]);
    expect(work.calls).toBe(1);
    expect(a).toEqual(b);
    expect((await cache.get('k', work.compute)).body).toBe('one');
    expect(work.calls).toBe(1);
    const other = new AnswerCache(200, 100, 10);
    const again = computation();
    const same = other.get('k', again.compute);
    again.finish('one');
    expect((await same).etag).toBe(a.etag);
  });

  it('past freshness serves the stale answer at once while one recomputation runs, then the new one', async () => {
    const cache = new AnswerCache(50, 500, 10);
    const work = computation();
    await ready(cache, work, 'old');
    await sleep(70);
    const during = await Promise.all([cache.get('k', work.compute), cache.get('k', work.compute)]);
    expect(during.map((answer) => answer.body)).toEqual(['old', 'old']);
    expect(work.calls).toBe(2);
    work.finish('new');
    await sleep(5);
    expect((await cache.get('k', work.compute)).body).toBe('new');
    expect(work.calls).toBe(2);
  });

  it('too stale to serve: everyone waits for one new computation', async () => {
    const cache = new AnswerCache(20, 20, 10);
    const work = computation();
    const first = cache.get('k', work.compute);
    work.finish('old');
    await first;
    await sleep(60);
    const waiting = [cache.get('k', work.compute), cache.get('k', work.compute)];
    expect(work.calls).toBe(2);
    work.finish('new');
    expect((await Promise.all(waiting)).map((answer) => answer.body)).toEqual(['new', 'new']);
  });

  it('a write of the organisation forgets its answers, and a recomputation begun before it is not kept', async () => {
    const cache = new AnswerCache(30, 1_000, 10);
    const work = computation('org-a');
    const other = computation('org-b');
    const first = cache.get('a', work.compute);
    const b = cache.get('b', other.compute);
    work.finish('before');
    other.finish('b');
    await Promise.all([first, b]);
    await sleep(40);
    expect((await cache.get('a', work.compute)).body).toBe('before'); // stale, recomputing
    cache.forgetOrganization('org-a');
    work.finish('read before the write');
    await sleep(5);
    const after = cache.get('a', work.compute);
    work.finish('after');
    expect((await after).body).toBe('after');
    expect(work.calls).toBe(3);
    expect((await cache.get('b', other.compute)).body).toBe('b');
  });

  it('peek gives what get would serve without computing: fresh, or stale while a recomputation runs', async () => {
    // Stale windows are wide: a pause of a loaded machine must not carry an entry past them.
    const cache = new AnswerCache(50, 1_000, 10);
    const work = computation();
    expect(cache.peek('k')).toBeUndefined();
    const first = cache.get('k', work.compute);
    expect(cache.peek('k')).toBeUndefined(); // being computed: get would wait for it
    work.finish('old');
    await first;
    expect(cache.peek('k')?.body).toBe('old');
    await sleep(70);
    expect(cache.peek('k')).toBeUndefined(); // stale, and nothing recomputes it: get must start that
    const during = cache.get('k', work.compute);
    expect(work.calls).toBe(2);
    expect(cache.peek('k')?.body).toBe('old'); // what get serves while the recomputation runs
    work.finish('new');
    await during;
    await sleep(5);
    expect(cache.peek('k')?.body).toBe('new');
    cache.forgetOrganization('org');
    expect(cache.peek('k')).toBeUndefined();

    const slow = new AnswerCache(20, 500, 10);
    const slowWork = computation();
    await ready(slow, slowWork, 'old');
    await sleep(40);
    const recomputing = slow.get('k', slowWork.compute);
    expect(slow.peek('k')?.body).toBe('old');
    await sleep(600);
    expect(slow.peek('k')).toBeUndefined(); // too stale to serve, even while it is recomputed
    slowWork.finish('new');
    await recomputing;
  });

  it('keeps no failed computation, and no more entries than its bound', async () => {
    const cache = new AnswerCache(1_000, 0, 2);
    await expect(cache.get('gone', () => Promise.reject(new Error('404')))).rejects.toThrow('404');
    const work = computation();
    const retried = cache.get('gone', work.compute);
    work.finish('found');
    expect((await retried).body).toBe('found');
    for (const key of ['x', 'y']) {
      const next = cache.get(key, work.compute);
      work.finish(key);
      await next;
    }
    const calls = work.calls;
    const recomputed = cache.get('gone', work.compute); // evicted first, as the oldest
    work.finish('found again');
    await recomputed;
    expect(work.calls).toBe(calls + 1);
  });
});
