/**
 * Webhook signatures: HMAC-SHA256 over `${timestamp}.${payload}` with the
 * shared secret, hex-encoded, optionally prefixed `sha256=`. The timestamp is
 * Unix seconds and must be within the tolerance of the server's clock.
 *
 * For POST the payload is the raw request body, byte for byte. For GET (no
 * body) it is `GET ${path}`, so a signature for one tenant cannot be used to
 * read another.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";

export const TIMESTAMP_HEADER = "x-signature-timestamp";
export const SIGNATURE_HEADER = "x-signature";
export const DEFAULT_TOLERANCE_SECONDS = 300;

export function sign(secret: string, timestamp: number | string, payload: string): string {
  return createHmac("sha256", secret).update(`${timestamp}.${payload}`).digest("hex");
}

/** Headers for a signed request, for clients and tests. */
export function signedHeaders(secret: string, payload: string, now = Date.now()): Record<string, string> {
  const timestamp = Math.floor(now / 1000);
  return { [TIMESTAMP_HEADER]: String(timestamp), [SIGNATURE_HEADER]: `sha256=${sign(secret, timestamp, payload)}` };
}

export type SignatureCheck = { ok: true; digest: string; timestamp: number } | { ok: false; reason: string };

/**
 * Checks the headers against the payload. `digest` identifies the signature
 * for replay protection (a hash of it, so the table holds nothing reusable).
 */
export function verifySignature(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  payload: string,
  options: { now?: number; toleranceSeconds?: number } = {},
): SignatureCheck {
  const rawTimestamp = headers[TIMESTAMP_HEADER];
  const rawSignature = headers[SIGNATURE_HEADER];
  if (typeof rawTimestamp !== "string" || typeof rawSignature !== "string") {
    return { ok: false, reason: `missing signature: send ${TIMESTAMP_HEADER} and ${SIGNATURE_HEADER}` };
  }
  if (!/^\d{1,12}$/.test(rawTimestamp)) return { ok: false, reason: `${TIMESTAMP_HEADER} must be Unix seconds` };
  const timestamp = Number(rawTimestamp);
  const now = Math.floor((options.now ?? Date.now()) / 1000);
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (Math.abs(now - timestamp) > tolerance) {
    return { ok: false, reason: `stale signature: ${TIMESTAMP_HEADER} is more than ${tolerance} s from the server's clock` };
  }
  const given = rawSignature
    .trim()
    .replace(/^sha256=/i, "")
    .toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(given)) return { ok: false, reason: `${SIGNATURE_HEADER} must be 64 hex digits (optionally prefixed sha256=)` };
  const expected = Buffer.from(sign(secret, timestamp, payload), "hex");
  if (!timingSafeEqual(expected, Buffer.from(given, "hex"))) return { ok: false, reason: "wrong signature" };
  return { ok: true, timestamp, digest: createHash("sha256").update(given).digest("hex") };
}

/** Constant-time comparison of a bearer token. */
export function tokenMatches(expected: string, authorization: string | undefined): boolean {
  const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? "");
  if (!match) return false;
  const a = createHash("sha256").update(expected).digest();
  const b = createHash("sha256").update(match[1]!).digest();
  return timingSafeEqual(a, b);
}
