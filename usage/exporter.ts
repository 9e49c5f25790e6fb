/**
 * A bare Prometheus endpoint (`GET /metrics`) for `npm run usage -- --serve`:
 * the per-tenant metrics without the onboarding service.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import { errorMessage } from "../lib/errors";

export interface Exporter {
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startExporter(registries: readonly Registry[], options: { host?: string; port?: number } = {}): Promise<Exporter> {
  const server = createServer((request, response) => {
    if (request.method !== "GET" || (request.url ?? "").split("?")[0] !== "/metrics") {
      response.writeHead(404, { "content-type": "text/plain" }).end("see /metrics\n");
      return;
    }
    Promise.all(registries.map((registry) => registry.metrics())).then(
      (texts) => response.writeHead(200, { "content-type": registries[0]!.contentType }).end(texts.join("")),
      (error) => response.writeHead(500, { "content-type": "text/plain" }).end(`${errorMessage(error)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const { address, port } = server.address() as AddressInfo;
  return {
    url: `http://${address.includes(":") ? `[${address}]` : address}:${port}`,
    port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
