/**
 * Whose role and database a test's builtin-provider call makes (their marker,
 * infra/naming.ts tenantMarker): the tenant ID in the name, of stack "test".
 */
import { DEFAULT_APP_NAME, tenantIdOfDatabase } from "../../infra/naming";

export const TEST_STACK = "test";

export function testOwner(name: string, options: { adoptLegacy?: boolean; stack?: string } = {}) {
  return { tenantId: tenantIdOfDatabase(DEFAULT_APP_NAME, name) ?? "00000000", stack: options.stack ?? TEST_STACK, ...options };
}
