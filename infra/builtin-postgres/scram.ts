/**
 * SCRAM-SHA-256 password verifiers (RFC 5802, RFC 7677) in PostgreSQL's
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` format. Sending
 * the verifier instead of the password in CREATE/ALTER ROLE means the plain
 * password never reaches the server, so no server log (log_statement, or the
 * STATEMENT line of a failing command) can ever contain it. PostgreSQL stores
 * a verifier it is given as is (pg_authid.rolpassword).
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";

/** PostgreSQL's default (scram_iterations) and the RFC's minimum. */
const SCRAM_ITERATIONS = 4096;
const SALT_BYTES = 16;

/**
 * PostgreSQL runs the password through SASLprep (RFC 4013) first. For
 * printable ASCII SASLprep changes nothing, and for ASCII with control
 * characters PostgreSQL falls back to the raw bytes, which is also what we
 * hash; other text would need the full Unicode tables, so it is refused
 * rather than hashed differently from the server (a role that cannot log in).
 */
function normalisedPassword(password: string): Buffer {
  // eslint-disable-next-line no-control-regex -- the ASCII range is exactly what is checked
  if (!/^[\x00-\x7f]*$/.test(password)) {
    throw new Error("role passwords must be ASCII (the generated ones are letters and digits); choose an ASCII password");
  }
  return Buffer.from(password, "ascii");
}

const hmac = (key: Buffer, text: string) => createHmac("sha256", key).update(text).digest();

export function scramSha256Verifier(password: string, salt: Buffer = randomBytes(SALT_BYTES), iterations = SCRAM_ITERATIONS): string {
  const salted = pbkdf2Sync(normalisedPassword(password), salt, iterations, 32, "sha256");
  const storedKey = createHash("sha256").update(hmac(salted, "Client Key")).digest();
  const serverKey = hmac(salted, "Server Key");
  return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}
