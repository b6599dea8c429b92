/**
 * Where a webhook may point (API.md §10): a public address over https. A partner's URL is fetched
 * by our servers, so a URL that reaches the loopback, the private network or a cloud's metadata
 * service would let anyone with an admin key probe our side of the network (SSRF). Addresses are
 * judged by ipaddr.js's ranges: only `unicast` (public) passes. `WEBHOOK_ALLOW_PRIVATE=true` (tests,
 * intranets) allows every address and plain http.
 *
 * The check runs at registration on every address the host resolves to, and again when a delivery
 * connects, on the address actually connected (a DNS answer may change in between: rebinding).
 */
import { lookup } from 'node:dns/promises';
import ipaddr from 'ipaddr.js';
import { AppError } from '../../core/errors.ts';

/** The addresses a host name resolves to (injected by tests: a resolver that rebinds). */
export type Resolver = (host: string) => Promise<string[]>;

export const systemResolver: Resolver = async (host) =>
  (await lookup(host, { all: true, verbatim: true })).map((entry) => entry.address);

/**
 * Cloud metadata and host services on addresses ipaddr.js calls public (the others, such as
 * 169.254.169.254 and fd00:ec2::254, are link-local or unique-local already): Azure's.
 */
const metadataAddresses = new Set(['168.63.129.16']);

/**
 * Why `address` may not receive webhooks (its ipaddr.js range: `loopback`, `private`,
 * `carrierGradeNat`, `linkLocal` — the metadata services' 169.254.169.254 among them —,
 * `uniqueLocal`, `ipv4Mapped`, `unspecified`, `multicast`, `reserved`, …), or null for a public one.
 */
export function forbiddenRange(address: string): string | null {
  if (!ipaddr.isValid(address)) return 'invalid';
  const parsed = ipaddr.parse(address);
  const range = parsed.range();
  if (range !== 'unicast') return range;
  // ipaddr.js calls the deprecated IPv4-compatible addresses (::/96, e.g. ::a9fe:a9fe for
  // 169.254.169.254) unicast, though they carry an IPv4 address as IPv4-mapped ones do.
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).parts.slice(0, 6).every((part) => part === 0))
    return 'ipv4Compatible';
  if (metadataAddresses.has(parsed.toNormalizedString())) return 'metadata';
  return null;
}

const refused = (message: string) =>
  new AppError('validation-failed', `body.url: ${message}`, { errors: [{ path: 'body.url', message }] });

/** Refuses (400 validation-failed on `body.url`) a URL that webhooks may not be sent to. */
export async function assertWebhookDestination(
  url: string,
  options: { allowPrivate: boolean; resolve: Resolver },
): Promise<void> {
  const parsed = new URL(url);
  const schemes = options.allowPrivate ? ['https:', 'http:'] : ['https:'];
  if (!schemes.includes(parsed.protocol))
    throw refused(`must use ${options.allowPrivate ? 'http or https' : 'https'}`);
  if (options.allowPrivate) return;
  // The URL parser writes an IPv6 literal in brackets and normalises IPv4 forms (0x7f.1 → 127.0.0.1).
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  const addresses = ipaddr.isValid(host) ? [host] : await options.resolve(host).catch(() => []);
  if (addresses.length === 0) throw refused(`the host ${host} does not resolve`);
  for (const address of addresses) {
    const range = forbiddenRange(address);
    if (range)
      throw refused(`resolves to ${address}, a ${range} address; webhooks go to public addresses only`);
  }
}
