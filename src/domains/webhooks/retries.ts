/**
 * When a failed message is tried again (API.md §10): after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
 * 14 h, 20 h and 24 h, each ±20 % so that the retries of many messages failing together spread
 * out; a `Retry-After` of up to an hour on a 429 or 503 is honoured instead. After the tenth
 * attempt (about three days) the message is given up, but never less than 24 h after it was made:
 * a receiver whose short `Retry-After`s used the ten attempts up early gets one more at 24 h.
 */
const retryDelaysSeconds = [
  5,
  5 * 60,
  30 * 60,
  2 * 3600,
  5 * 3600,
  10 * 3600,
  14 * 3600,
  20 * 3600,
  24 * 3600,
];

/** The most attempts of one message. */
export const maxAttempts = retryDelaysSeconds.length + 1;

/** A `Retry-After` longer than this is not honoured: the schedule applies. */
const longestRetryAfterSeconds = 3600;

/** How long an endpoint may fail without a success before it is disabled (`failing`). */
export const failingDisablesAfterMs = 5 * 24 * 3600 * 1000;

/** The least time a message is retried for. */
export const retriedForAtLeastMs = 24 * 3600 * 1000;

/**
 * The delay in milliseconds before the attempt after `attempt` (counted from 1), or null when
 * `attempt` was the last. `ageMs` is how long ago the message was made; `random` is in [0, 1), as
 * Math.random's.
 */
export function retryDelayMs(
  attempt: number,
  retryAfterSeconds: number | null,
  ageMs: number,
  random: () => number = Math.random,
): number | null {
  if (attempt >= maxAttempts) return ageMs < retriedForAtLeastMs ? retriedForAtLeastMs - ageMs : null;
  if (retryAfterSeconds !== null && retryAfterSeconds <= longestRetryAfterSeconds)
    return retryAfterSeconds * 1000;
  const base = (retryDelaysSeconds[attempt - 1] ?? 0) * 1000;
  return Math.round(base * (0.8 + 0.4 * random()));
}
