/**
 * What only the service's HTTP side and its mailer need. The service reads them
 * once at start and then drops them from its environment, so the engine, the
 * program, a deployment runner, git or any other child never carries them
 * (a tenant-facing program has no business seeing the webhook secret).
 */
export const SERVICE_SECRETS = ["WEBHOOK_SECRET", "API_TOKEN", "SMTP_URL", "SMTP_USER", "SMTP_PASS"] as const;
/** The control database's URL: the service and each runner read it once; the engine never needs it. */
export const CONTROL_DATABASE_VARIABLE = "DATABASE_URL";
