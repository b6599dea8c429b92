/**
 * Input no route should ever see (issue 14), refused as `400 validation-failed` before any
 * recursive work or any query:
 *
 * - a NUL character anywhere in the URL (a path segment or a query value, `%00` or raw): PostgreSQL
 *   text cannot hold one, and it reached SQL as a 500;
 * - in a JSON body, a NUL inside a string (`\u0000`), a lone surrogate (`\ud800` without its pair,
 *   which jsonb refuses) and nesting deeper than `maxJsonDepth`, found by one linear scan of the
 *   text before it is parsed (parsing, hashing and canonicalising a body of thousands of nested
 *   arrays recursed until they failed).
 *
 * Headers need nothing here: Node's HTTP parser refuses a NUL in a header value itself (400).
 */
import { AppError } from './errors.ts';

/** Deeper than any body of API.md (a shift's eligibility inside a bulk create is four levels). */
export const maxJsonDepth = 32;

/** Throws `400 validation-failed` for a URL with a NUL in it. */
export function assertCleanUrl(url: string): void {
  if (url.includes('%00') || url.includes('\u0000'))
    throw new AppError(
      'validation-failed',
      'The URL contains a NUL character (%00), which no value may hold.',
    );
}

/**
 * Throws `400 validation-failed` for a JSON text whose strings hold a NUL or whose arrays and
 * objects nest deeper than `maxJsonDepth`. One pass, no recursion: it only follows string quotes,
 * escapes and brackets, and leaves the rest of the syntax to the parser.
 */
export function assertCleanJson(text: string): void {
  let depth = 0;
  let inString = false;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (inString) {
      if (code === 0x5c /* \ */) {
        if (text.charCodeAt(index + 1) === 0x75 /* u */) {
          const unit = Number.parseInt(text.slice(index + 2, index + 6), 16);
          if (unit === 0)
            throw new AppError(
              'validation-failed',
              'A string in the body contains a NUL character (\\u0000).',
            );
          if (unit >= 0xd800 && unit <= 0xdfff) {
            // A high surrogate must be followed at once by a low one, escaped too.
            const next = text.startsWith('\\u', index + 6)
              ? Number.parseInt(text.slice(index + 8, index + 12), 16)
              : Number.NaN;
            if (unit > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff))
              throw new AppError(
                'validation-failed',
                'A string in the body contains a lone UTF-16 surrogate.',
              );
            index += 6; // past the first escape and the second's backslash: its letters are plain text
            continue;
          }
        }
        index++; // the escaped character
      } else if (code === 0x22 /* " */) inString = false;
      else if (code === 0)
        throw new AppError('validation-failed', 'A string in the body contains a NUL character.');
      continue;
    }
    if (code === 0x22) inString = true;
    else if (code === 0x5b /* [ */ || code === 0x7b /* { */) {
      if (++depth > maxJsonDepth)
        throw new AppError('validation-failed', `The body nests deeper than ${maxJsonDepth} levels.`);
    } else if (code === 0x5d /* ] */ || code === 0x7d /* } */) depth--;
  }
}
