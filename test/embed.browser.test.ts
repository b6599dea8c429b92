/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The embed in a real browser (API.md §8 "The embed"): Debian's Chromium, driven by playwright-core,
 * on a partner page served from a second origin under a strict Content-Security-Policy. What a
 * partner would see: the shifts, their places, the links, a count that follows a claim, their
 * colours, and no console error, CSP violation or serious accessibility violation.
 *
 * Without /usr/bin/chromium (apt-get install chromium) the tests skip and say why; .ci/run installs it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createOrg } from './support/app.ts';
import { fixtures, useTestApp } from './support/fixtures.ts';

const chromiumPath = '/usr/bin/chromium';
const haveBrowser = existsSync(chromiumPath);
if (!haveBrowser)
  console.log(`embed browser tests skipped: ${chromiumPath} is missing (apt-get install chromium)`);

const suite = useTestApp({ RATE_LIMIT_PER_MINUTE: 0 });
const { createEvent, createShift, createVolunteer } = fixtures(suite);
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const accent = 'rgb(160, 20, 70)';
const nonce = 'partner-page-nonce';

/** The partner's page: its own styles by nonce, the API's script, nothing inline. */
function partnerPage(apiOrigin: string, attributes: string): string {
  return `<!doctype html>
<html lang="en-US">
<head>
  <meta charset="utf-8">
  <title>Riverside volunteers</title>
  <style nonce="${nonce}">
    body { font-family: serif; color: rgb(0, 90, 0); }
    a { color: rgb(255, 0, 0); }
    li { border: 3px dashed rgb(255, 0, 255); }
    together-schedule { --together-accent: ${accent}; --together-radius: 2px; }
    together-schedule::part(title) { letter-spacing: 2px; }
  </style>
  <script src="${apiOrigin}/embed.js" defer></script>
</head>
<body>
  <main>
    <h1>Help at the food bank</h1>
    <together-schedule ${attributes}></together-schedule>
    <ul><li>Our own list item</li></ul>
  </main>
</body>
</html>`;
}

let browser: Browser | undefined;
let partner: Server | undefined;
let partnerOrigin = '';
let pageHtml = '';

beforeAll(async () => {
  if (!haveBrowser) return;
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  partner = createServer((_request, response) => {
    const api = new URL(suite.baseUrl).origin;
    response.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': `default-src 'none'; script-src 'self' ${api}; style-src 'self' ${api} 'nonce-${nonce}'; connect-src ${api}; img-src 'self'`,
    });
    response.end(pageHtml);
  });
  await new Promise<void>((resolve) => partner?.listen(0, 'localhost', resolve));
  partnerOrigin = `http://localhost:${(partner.address() as AddressInfo).port}`;
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => (partner ? partner.close(resolve) : resolve(undefined)));
});

interface Rendered {
  id: string;
  available: string | undefined;
  text: string;
  link: string | null;
}

/** Opens the partner page and collects what goes wrong on it. */
async function openPartnerPage(attributes: string) {
  if (!browser) throw new Error('no browser');
  pageHtml = partnerPage(new URL(suite.baseUrl).origin, attributes);
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  // Before the page's own scripts: what the CSP blocked, and the widget's events.
  await page.addInitScript(() => {
    const seen = window as unknown as {
      violations: string[];
      togetherEvents: { type: string; detail: unknown }[];
    };
    seen.violations = [];
    seen.togetherEvents = [];
    document.addEventListener('securitypolicyviolation', (event) => {
      seen.violations.push(`${event.violatedDirective} ${event.blockedURI}`);
    });
    for (const type of ['together:loaded', 'together:error']) {
      document.addEventListener(type, (event) => {
        seen.togetherEvents.push({ type, detail: (event as CustomEvent).detail });
      });
    }
  });
  await page.goto(partnerOrigin);
  return { page, problems };
}

async function rendered(page: Page): Promise<Rendered[]> {
  return page.evaluate(() => {
    const root = document.querySelector('together-schedule')?.shadowRoot;
    return [...(root?.querySelectorAll('[part="shift"]') ?? [])].map((item) => ({
      id: (item as HTMLElement).dataset.shiftId ?? '',
      available: (item as HTMLElement).dataset.available,
      text: item.textContent ?? '',
      link: item.querySelector('a[part="signup"]')?.getAttribute('href') ?? null,
    }));
  });
}

describe.skipIf(!haveBrowser)('the embed in Chromium on a partner page under a strict CSP', () => {
  it('shows the shifts, their places and the links a partner expects, in their colours, with no error and no serious axe violation', async () => {
    const org = await createOrg(suite.http);
    const admin = bearer(org.adminToken);
    const event = await createEvent(admin, {
      title: 'Saturday food sort',
      status: 'published',
      visibility: 'unlisted',
      timezone: 'America/New_York',
    });
    const times = (day: number) => ({
      startsAt: `2033-06-0${day}T13:00:00.000Z`,
      endsAt: `2033-06-0${day}T15:00:00.000Z`,
    });
    const open = await createShift(admin, event.id, { ...times(1), capacity: 3, title: 'Morning sort' });
    const full = await createShift(admin, event.id, {
      ...times(2),
      capacity: 1,
      waitlist: false,
      title: 'Packing',
    });
    const waitlisted = await createShift(admin, event.id, { ...times(3), capacity: 1, title: 'Driving' });
    const cancelled = await createShift(admin, event.id, { ...times(4), title: 'Cleaning' });
    await suite.http.post(`/v1/shifts/${cancelled.id}/cancel`).set(admin).expect(200);
    for (const shiftId of [full.id, waitlisted.id]) {
      const volunteerId = await createVolunteer(admin);
      await suite.http.post(`/v1/shifts/${shiftId}/signups`).set(admin).send({ volunteerId }).expect(201);
    }

    const template = 'https://partner.example/join?shift={shiftId}&event={eventId}&org={orgSlug}';
    const { page, problems } = await openPartnerPage(
      `org="${org.slug}" event="${event.id}" data-signup-url="${template}" refresh="1"`,
    );
    await page.waitForFunction(
      () =>
        (document.querySelector('together-schedule')?.shadowRoot?.querySelectorAll('[part="shift"]').length ??
          0) > 0,
    );
    const shifts = await rendered(page);
    expect(shifts.map((shift) => shift.id)).toEqual([open.id, full.id, waitlisted.id, cancelled.id]);
    const [openShift, fullShift, waitShift, cancelledShift] = shifts;
    expect(openShift?.available).toBe('3');
    expect(openShift?.text).toContain('3 of 3 places left');
    expect(openShift?.text).toContain('9:00');
    expect(openShift?.text).toContain('EDT');
    expect(openShift?.link).toBe(
      `https://partner.example/join?shift=${open.id}&event=${event.id}&org=${encodeURIComponent(org.slug)}`,
    );
    expect(fullShift?.text).toContain('Full');
    expect(fullShift?.link).toBeNull();
    expect(waitShift?.text).toContain('waitlist open');
    expect(waitShift?.link).not.toBeNull();
    expect(cancelledShift?.text).toContain('Cancelled');
    expect(cancelledShift?.link).toBeNull();
    const title = await page.evaluate(
      () =>
        document.querySelector('together-schedule')?.shadowRoot?.querySelector('[part="title"]')?.textContent,
    );
    expect(title).toBe('Saturday food sort');

    // Their colours in, no style out: the accent on the links, the page's own rules stay outside.
    const styles = await page.evaluate(() => {
      const root = document.querySelector('together-schedule')?.shadowRoot;
      const link = root?.querySelector('a[part="signup"]') as Element;
      const item = root?.querySelector('[part="shift"]') as Element;
      const ownItem = document.querySelector('main > ul > li') as Element;
      return {
        linkBackground: getComputedStyle(link).backgroundColor,
        linkColor: getComputedStyle(link).color,
        itemBorder: getComputedStyle(item).borderTopStyle,
        itemFont: getComputedStyle(item).fontFamily,
        pageFont: getComputedStyle(document.body).fontFamily,
        ownItemBorder: getComputedStyle(ownItem).borderTopStyle,
        titleSpacing: getComputedStyle(root?.querySelector('[part="title"]') as Element).letterSpacing,
        styleElements:
          document.querySelectorAll('style').length + (root?.querySelectorAll('style').length ?? 0),
        styledElements: root?.querySelectorAll('[style]').length,
        cookies: document.cookie,
      };
    });
    expect(styles.linkBackground).toBe(accent);
    expect(styles.linkColor).not.toBe('rgb(255, 0, 0)');
    expect(styles.itemBorder).toBe('solid');
    expect(styles.itemFont).not.toBe('serif');
    expect(styles.pageFont).toBe('serif');
    expect(styles.ownItemBorder).toBe('dashed');
    expect(styles.titleSpacing).toBe('2px');
    expect(styles.styleElements).toBe(1); // the page's own
    expect(styles.styledElements).toBe(0);
    expect(styles.cookies).toBe('');

    // A claim elsewhere: the widget revalidates (refresh=1) and shows the new count.
    const volunteerId = await createVolunteer(admin);
    await suite.http.post(`/v1/shifts/${open.id}/signups`).set(admin).send({ volunteerId }).expect(201);
    await page.waitForFunction(
      (shiftId) =>
        (
          document
            .querySelector('together-schedule')
            ?.shadowRoot?.querySelector(`[data-shift-id="${shiftId}"]`) as HTMLElement
        )?.dataset.available === '2',
      open.id,
      { timeout: 10_000 },
    );
    expect((await rendered(page))[0]?.text).toContain('2 of 3 places left');

    await page.evaluate(axeSource);
    const axe = await page.evaluate(async () => {
      const result = await (
        window as unknown as {
          axe: { run(context: unknown): Promise<{ violations: { id: string; impact: string }[] }> };
        }
      ).axe.run({ include: [['together-schedule']] });
      return result.violations.map((violation) => `${violation.impact} ${violation.id}`);
    });
    expect(axe.filter((violation) => /^(serious|critical)/.test(violation))).toEqual([]);

    const seen = await page.evaluate(() => {
      const { violations, togetherEvents } = window as unknown as {
        violations: string[];
        togetherEvents: { type: string; detail: { shifts?: { id: string }[] } }[];
      };
      return { violations, togetherEvents };
    });
    expect(seen.violations).toEqual([]);
    const loaded = seen.togetherEvents.filter((event) => event.type === 'together:loaded');
    expect(loaded.length).toBeGreaterThanOrEqual(2); // the first render, and the one after the claim
    expect(loaded[0]?.detail.shifts?.map((shift) => shift.id)).toEqual([
      open.id,
      full.id,
      waitlisted.id,
      cancelled.id,
    ]);
    expect(problems).toEqual([]);

    if (process.env.EMBED_SCREENSHOT) {
      await page.locator('together-schedule').screenshot({ path: process.env.EMBED_SCREENSHOT });
    }
    await page.close();
  }, 60_000);

  it('available-only keeps the shifts that can be claimed; lang sets the language of the dates', async () => {
    const org = await createOrg(suite.http);
    const admin = bearer(org.adminToken);
    const event = await createEvent(admin, { status: 'published', timezone: 'Europe/Berlin' });
    const times = (day: number) => ({
      startsAt: `2033-06-0${day}T07:00:00.000Z`,
      endsAt: `2033-06-0${day}T09:00:00.000Z`,
    });
    const open = await createShift(admin, event.id, { ...times(1), capacity: 2, title: 'Open' });
    const full = await createShift(admin, event.id, {
      ...times(2),
      capacity: 1,
      waitlist: false,
      title: 'Full',
    });
    const waitlisted = await createShift(admin, event.id, { ...times(3), capacity: 1, title: 'Waitlist' });
    for (const shiftId of [full.id, waitlisted.id]) {
      const volunteerId = await createVolunteer(admin);
      await suite.http.post(`/v1/shifts/${shiftId}/signups`).set(admin).send({ volunteerId }).expect(201);
    }
    const { page, problems } = await openPartnerPage(
      `org="${org.slug}" event="${event.id}" available-only lang="de-DE" refresh="0"`,
    );
    await page.waitForFunction(
      () =>
        (document.querySelector('together-schedule')?.shadowRoot?.querySelectorAll('[part="shift"]').length ??
          0) > 0,
    );
    const shifts = await rendered(page);
    expect(shifts.map((shift) => shift.id)).toEqual([open.id, waitlisted.id]);
    // 2033-06-01 is a Wednesday; 07:00 UTC is 09:00 in Berlin (summer time).
    expect(shifts[0]?.text).toContain('Mittwoch');
    expect(shifts[0]?.text).toContain('09:00');
    // Without data-signup-url, no links at all.
    expect(shifts.map((shift) => shift.link)).toEqual([null, null]);
    expect(problems).toEqual([]);
    await page.close();
  }, 60_000);

  it('stops revalidating while the page is hidden and starts again when it is shown', async () => {
    const org = await createOrg(suite.http);
    const admin = bearer(org.adminToken);
    const event = await createEvent(admin, { status: 'published' });
    await createShift(admin, event.id, {
      startsAt: '2033-06-01T07:00:00.000Z',
      endsAt: '2033-06-01T09:00:00.000Z',
      title: 'Sorting',
    });
    const { page, problems } = await openPartnerPage(`org="${org.slug}" event="${event.id}" refresh="1"`);
    const fetches: number[] = [];
    page.on('request', (request) => {
      if (new URL(request.url()).pathname.endsWith('/shifts')) fetches.push(Date.now());
    });
    const countSince = (since: number) => fetches.filter((at) => at >= since).length;
    // The page's visibility as the browser reports it, switched the way a hidden tab would.
    const setHidden = (hidden: boolean) =>
      page.evaluate((value) => {
        for (const [name, get] of [
          ['hidden', () => value],
          ['visibilityState', () => (value ? 'hidden' : 'visible')],
        ] as const) {
          Object.defineProperty(document, name, { configurable: true, get });
        }
        document.dispatchEvent(new Event('visibilitychange'));
      }, hidden);

    // Visible: a revalidation about every second.
    let since = Date.now();
    await page.waitForTimeout(2_500);
    expect(countSince(since)).toBeGreaterThanOrEqual(1);

    // Hidden: none at all for three refresh periods (a request already on its way may finish).
    await setHidden(true);
    await page.waitForTimeout(300);
    since = Date.now();
    await page.waitForTimeout(3_000);
    expect(countSince(since)).toBe(0);

    // Shown again: revalidation resumes.
    since = Date.now();
    await setHidden(false);
    await page.waitForTimeout(2_500);
    expect(countSince(since)).toBeGreaterThanOrEqual(1);
    expect(problems).toEqual([]);
    await page.close();
  }, 60_000);

  it('says so in its status region, and dispatches together:error, when the event is not there', async () => {
    const org = await createOrg(suite.http);
    const { page, problems } = await openPartnerPage(
      `org="${org.slug}" event="0192f1c4-5b7e-7cc1-9a4e-1f2a3b4c5d6e" refresh="0"`,
    );
    const status = await page.waitForFunction(() => {
      const region = document
        .querySelector('together-schedule')
        ?.shadowRoot?.querySelector('[part="status"]');
      return region && region.textContent !== 'Loading…' ? region : null;
    });
    expect(
      await status.evaluate((region) => [region?.getAttribute('role'), region?.getAttribute('aria-live')]),
    ).toEqual(['status', 'polite']);
    expect(await status.evaluate((region) => region?.textContent)).toBe('The schedule could not be loaded.');
    const events = await page.evaluate(
      () => (window as unknown as { togetherEvents: { type: string; detail: unknown }[] }).togetherEvents,
    );
    expect(events).toEqual([{ type: 'together:error', detail: { status: 404, code: 'not-found' } }]);
    // The failed fetch is the only console error: the browser reports the 404 itself.
    expect(problems.filter((problem) => !problem.includes('404'))).toEqual([]);
    await page.close();
  }, 60_000);
});
