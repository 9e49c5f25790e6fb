/**
 * findEngine (engine/pulumi.ts), the one way every caller finds the engine,
 * when it may not build: a new enough `pulumi` on PATH is used as is, and
 * with nothing found it fails saying what to run instead of building.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

let root: string;
const saved = { PATH: process.env.PATH, DGP_TOOLCHAIN_CACHE: process.env.DGP_TOOLCHAIN_CACHE };

/** A fresh engine/pulumi.ts: findEngine remembers what it found for the life of the process. */
async function freshFindEngine() {
  vi.resetModules();
  return import("../engine/pulumi");
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "dgp-find-engine-"));
  process.env.DGP_TOOLCHAIN_CACHE = join(root, "empty-cache");
});

afterEach(() => {
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  rmSync(root, { recursive: true, force: true });
});

describe("findEngine({ mayBuild: false })", () => {
  it("uses a pulumi on PATH of the toolchain's version or newer, with its plugins next to it", async () => {
    const bin = join(root, "official", "bin");
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, "pulumi"), "#!/bin/sh\necho v3.260.1\n");
    for (const plugin of ["pulumi-language-nodejs", "pulumi-resource-pulumi-nodejs", "pulumi-resource-random"]) writeFileSync(join(bin, plugin), "#!/bin/sh\n");
    for (const name of ["pulumi", "pulumi-language-nodejs", "pulumi-resource-pulumi-nodejs", "pulumi-resource-random"]) chmodSync(join(bin, name), 0o755);
    process.env.PATH = `${bin}:/usr/bin:/bin`;
    const { findEngine } = await freshFindEngine();
    expect(findEngine({ mayBuild: false })).toBe(bin);
  });

  it("builds nothing when there is no engine: it throws, naming the command to run", async () => {
    process.env.PATH = "/usr/bin:/bin";
    const { findEngine, EngineNotFoundError } = await freshFindEngine();
    expect(() => findEngine({ mayBuild: false })).toThrow(EngineNotFoundError);
    expect(() => findEngine({ mayBuild: false })).toThrow(/the offline toolchain is not built.*; run: bash toolchain\/build\.sh/);
  });

  it("does not take an older pulumi on PATH", async () => {
    const bin = join(root, "old", "bin");
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, "pulumi"), "#!/bin/sh\necho v3.100.0\n", { mode: 0o755 });
    process.env.PATH = `${bin}:/usr/bin:/bin`;
    const { findEngine, EngineNotFoundError } = await freshFindEngine();
    expect(() => findEngine({ mayBuild: false })).toThrow(EngineNotFoundError);
  });
});
