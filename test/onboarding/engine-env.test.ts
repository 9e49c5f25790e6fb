/**
 * The engine (and so the Pulumi program and every provider) never gets the
 * service's own secrets: the webhook secret, the API token, SMTP credentials,
 * the control database's URL and the tenants repository's URL (which may
 * carry credentials).
 */
import { describe, expect, it } from "vitest";
import { SERVICE_SECRETS } from "../../onboarding/secrets";
import { engineEnvVars } from "../../onboarding/deployer";

describe("the engine's environment", () => {
  it("keeps what the engine needs and withholds every service secret", () => {
    const env = {
      PATH: "/usr/bin",
      PULUMI_BACKEND_URL: "postgres://state",
      PULUMI_CONFIG_PASSPHRASE: "pass",
      DATABASE_URL: "postgresql://control",
      TENANTS_GIT_URL: "https://user:token@git.example.com/fleet.git",
      WEBHOOK_SECRET: "whsec",
      API_TOKEN: "token",
      SMTP_URL: "smtp://user:pw@mail",
      SMTP_USER: "user",
      SMTP_PASS: "pw",
      UNSET: undefined,
    };
    const engine = engineEnvVars(env);
    expect(Object.keys(engine).sort()).toEqual(["PATH", "PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE"]);
    for (const name of [...SERVICE_SECRETS, "TENANTS_GIT_URL", "DATABASE_URL"]) expect(engine).not.toHaveProperty(name);
    expect(JSON.stringify(engine)).not.toMatch(/whsec|token@|pw@/);
  });
});
