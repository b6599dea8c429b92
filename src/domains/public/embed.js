/*
 * <together-schedule org="slug" event="id" data-signup-url="https://…?shift={shiftId}">: an event's
 * shifts for a partner's page (API.md §8 "The embed"). Plain browser JavaScript with no
 * dependencies, served as /embed.js. It renders into an open shadow root, styles itself through a
 * constructable stylesheet (no <style> element, no style attribute: it works under a strict
 * style-src), sets no cookie, uses no storage, and revalidates with If-None-Match.
 */
(() => {
  const tagName = 'together-schedule';
  if (customElements.get(tagName)) return;

  // The API is where this script came from, unless the element says otherwise.
  const scriptOrigin = document.currentScript ? new URL(document.currentScript.src).origin : location.origin;

  const css = `
    :host {
      all: initial;
      display: block;
      font-family: var(--together-font, system-ui, sans-serif);
      color: var(--together-text, #1f2328);
      background: var(--together-background, transparent);
      line-height: 1.4;
    }
    :host([hidden]) { display: none; }
    [part='title'] { font-size: 1.25em; font-weight: 600; margin: 0 0 0.5em; }
    ol { list-style: none; margin: 0; padding: 0; display: grid; gap: 0.5em; }
    [part='shift'] {
      border: 1px solid color-mix(in srgb, var(--together-text, #1f2328) 20%, transparent);
      border-radius: var(--together-radius, 8px);
      padding: 0.6em 0.8em;
      display: grid;
      gap: 0.2em;
    }
    .name { font-weight: 600; }
    .when, .places { font-size: 0.9em; }
    [part='signup'] {
      justify-self: start;
      margin-top: 0.3em;
      padding: 0.3em 0.8em;
      border-radius: var(--together-radius, 8px);
      background: var(--together-accent, #0b6bcb);
      color: #fff;
      text-decoration: none;
      font-weight: 600;
    }
    [part='signup']:focus-visible { outline: 2px solid var(--together-accent, #0b6bcb); outline-offset: 2px; }
    [part='status']:empty { display: none; }
  `;
  let sheet;
  const styles = () => {
    if (!sheet) {
      sheet = new CSSStyleSheet();
      sheet.replaceSync(css);
    }
    return sheet;
  };

  const text = {
    loading: 'Loading…',
    failed: 'The schedule could not be loaded.',
    empty: 'There are no shifts to show.',
    full: 'Full',
    waitlist: 'Full · waitlist open',
    cancelled: 'Cancelled',
    closed: 'Sign-up closed',
    signup: 'Sign up',
    places: (left, of) => `${left} of ${of} ${of === 1 ? 'place' : 'places'} left`,
  };

  /** A shift can still be claimed: places left, or full with a waitlist. */
  const claimable = (shift) => shift.status === 'open' || (shift.status === 'full' && shift.waitlist);

  class TogetherSchedule extends HTMLElement {
    static observedAttributes = [
      'org',
      'event',
      'api',
      'data-signup-url',
      'available-only',
      'lang',
      'refresh',
    ];

    constructor() {
      super();
      this.root = this.attachShadow({ mode: 'open' });
      this.root.adoptedStyleSheets = [styles()];
      this.heading = document.createElement('h2');
      this.heading.setAttribute('part', 'title');
      this.list = document.createElement('ol');
      this.status = document.createElement('p');
      this.status.setAttribute('part', 'status');
      this.status.setAttribute('role', 'status');
      this.status.setAttribute('aria-live', 'polite');
      this.root.append(this.heading, this.status, this.list);
      this.tags = {};
      this.data = {};
      this.timer = undefined;
      this.started = false;
      this.onVisibility = () => this.schedule();
    }

    connectedCallback() {
      document.addEventListener('visibilitychange', this.onVisibility);
      this.started = true;
      this.load(true);
    }

    disconnectedCallback() {
      document.removeEventListener('visibilitychange', this.onVisibility);
      clearTimeout(this.timer);
    }

    attributeChangedCallback(name, before, after) {
      // The attributes an upgraded element starts with are read by connectedCallback.
      if (!this.started || before === after) return;
      if (name === 'org' || name === 'event' || name === 'api') {
        this.tags = {};
        this.data = {};
        this.load(true);
      } else this.render();
    }

    get base() {
      const org = encodeURIComponent(this.getAttribute('org') || '');
      const event = encodeURIComponent(this.getAttribute('event') || '');
      return `${(this.getAttribute('api') || scriptOrigin).replace(/\/$/, '')}/v1/public/${org}/events/${event}`;
    }

    get refreshSeconds() {
      const value = Number(this.getAttribute('refresh') ?? 60);
      return Number.isFinite(value) && value >= 0 ? value : 60;
    }

    get locale() {
      const own = this.closest('[lang]')?.getAttribute('lang');
      try {
        return Intl.getCanonicalLocales(own || navigator.language)[0];
      } catch {
        return undefined;
      }
    }

    /** The next revalidation, unless refresh is 0 or the page is hidden (then on its return). */
    schedule() {
      clearTimeout(this.timer);
      if (this.refreshSeconds === 0 || document.hidden || !this.isConnected) return;
      this.timer = setTimeout(() => this.load(false), this.refreshSeconds * 1000);
    }

    /** A conditional GET: the body when it changed, undefined on 304. */
    async fetchJson(key, url) {
      const headers = this.tags[key] ? { 'if-none-match': this.tags[key] } : {};
      const response = await fetch(url, { headers, credentials: 'omit', cache: 'no-store', mode: 'cors' });
      if (response.status === 304) return undefined;
      if (!response.ok) {
        const problem = await response.json().catch(() => ({}));
        throw Object.assign(new Error(problem.detail || response.statusText), {
          status: response.status,
          code: problem.code || null,
        });
      }
      this.tags[key] = response.headers.get('etag') || undefined;
      return response.json();
    }

    async load(first) {
      if (!this.getAttribute('org') || !this.getAttribute('event')) {
        this.fail({ status: 0, code: 'missing-attribute' }, 'The org and event attributes are required.');
        return;
      }
      if (first) this.status.textContent = text.loading;
      try {
        const [event, shifts] = await Promise.all([
          this.fetchJson('event', this.base),
          this.fetchJson('shifts', `${this.base}/shifts`),
        ]);
        if (event === undefined && shifts === undefined && !first) return this.schedule();
        if (event) this.data.event = event;
        if (shifts) this.data.shifts = shifts.data;
        this.render();
        this.dispatchEvent(
          new CustomEvent('together:loaded', {
            detail: { shifts: this.visibleShifts() },
            bubbles: true,
            composed: true,
          }),
        );
      } catch (error) {
        this.fail({ status: error.status ?? 0, code: error.code ?? null }, text.failed);
      }
      this.schedule();
    }

    fail(detail, message) {
      this.status.textContent = message;
      this.dispatchEvent(new CustomEvent('together:error', { detail, bubbles: true, composed: true }));
    }

    visibleShifts() {
      const shifts = this.data.shifts || [];
      return this.hasAttribute('available-only') ? shifts.filter(claimable) : shifts;
    }

    signupUrl(shift) {
      const template = this.getAttribute('data-signup-url');
      if (!template || !claimable(shift)) return null;
      const values = {
        shiftId: shift.id,
        eventId: this.getAttribute('event'),
        orgSlug: this.getAttribute('org'),
      };
      const url = template.replace(/\{(shiftId|eventId|orgSlug)\}/g, (_, name) =>
        encodeURIComponent(values[name]),
      );
      // Only web links: a template is the partner's, but a javascript: URL is never a sign-up.
      return /^https?:\/\//i.test(url) ? url : null;
    }

    render() {
      const event = this.data.event;
      if (!event) return;
      this.heading.textContent = event.title;
      const zone = event.timezone;
      const day = new Intl.DateTimeFormat(this.locale, { timeZone: zone, dateStyle: 'full' });
      const times = new Intl.DateTimeFormat(this.locale, {
        timeZone: zone,
        hour: 'numeric',
        minute: '2-digit',
        timeZoneName: 'short',
      });
      const items = this.visibleShifts().map((shift) => {
        const item = document.createElement('li');
        item.setAttribute('part', 'shift');
        item.dataset.shiftId = shift.id;
        item.dataset.available = String(shift.available);
        item.dataset.status = shift.status;
        const name = document.createElement('span');
        name.className = 'name';
        name.textContent = shift.title || shift.role?.name || event.title;
        const when = document.createElement('span');
        when.className = 'when';
        const start = new Date(shift.startsAt);
        const end = new Date(shift.endsAt);
        when.textContent = `${day.format(start)}, ${times.formatRange(start, end)}`;
        const places = document.createElement('span');
        places.className = 'places';
        places.textContent =
          shift.status === 'cancelled'
            ? text.cancelled
            : shift.status === 'full'
              ? shift.waitlist
                ? text.waitlist
                : text.full
              : shift.status === 'closed'
                ? text.closed
                : text.places(shift.available, shift.capacity);
        item.append(name, when, places);
        const href = this.signupUrl(shift);
        if (href) {
          const link = document.createElement('a');
          link.setAttribute('part', 'signup');
          link.href = href;
          link.textContent = text.signup;
          link.setAttribute('aria-label', `${text.signup}: ${name.textContent}, ${when.textContent}`);
          item.append(link);
        }
        return item;
      });
      this.list.replaceChildren(...items);
      this.status.textContent = items.length === 0 ? text.empty : '';
    }
  }

  customElements.define(tagName, TogetherSchedule);
})();
