// Serves dist/ and /config.js (where the services are) on WEB_PORT. The pages call the command
// and query services cross-origin, as a production deployment would.
//   WEB_PORT (8082), COMMAND_URL (http://127.0.0.1:8080), QUERY_URL (http://127.0.0.1:8081)
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";

const port = Number(process.env.WEB_PORT ?? 8082);
const config = {
  command: process.env.COMMAND_URL ?? "http://127.0.0.1:8080",
  query: process.env.QUERY_URL ?? "http://127.0.0.1:8081",
};
const types = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json",
};
const root = new URL("dist/", import.meta.url).pathname;

const server = createServer(async (request, response) => {
  const path = new URL(request.url ?? "/", "http://localhost").pathname;
  if (path === "/healthz") {
    // For container health checks and probes.
    response.writeHead(200, { "Content-Type": "text/plain", "Cache-Control": "no-store" });
    response.end("ok\n");
    return;
  }
  if (path === "/config.js") {
    response.writeHead(200, { "Content-Type": types[".js"], "Cache-Control": "no-store" });
    response.end(`window.ORDERS_CONFIG = ${JSON.stringify(config)};\n`);
    return;
  }
  const file = normalize(join(root, path === "/" ? "index.html" : path));
  if (!file.startsWith(root)) {
    response.writeHead(404).end();
    return;
  }
  try {
    const body = await readFile(file);
    response.writeHead(200, {
      "Content-Type": types[extname(file)] ?? "application/octet-stream",
      "Content-Security-Policy": `default-src 'self'; connect-src 'self' ${config.command} ${config.query}`,
      "X-Content-Type-Options": "nosniff",
    });
    response.end(body);
  } catch {
    response.writeHead(404, { "Content-Type": "text/plain" }).end("not found\n");
  }
}).listen(port, "0.0.0.0", () => {
  console.log(`web: http://127.0.0.1:${port} (command ${config.command}, query ${config.query})`);
});

// Stop on SIGTERM (a container's stop; as PID 1 node has no default handler) and Ctrl-C:
// answer what is in flight, then exit.
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeIdleConnections();
  });
}
