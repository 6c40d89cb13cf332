// Bundles the pages' scripts (one per page, what they share in one chunk) and copies the static
// files to dist/: plain files that need nothing from the internet at run time.
import { build } from "esbuild";
import { cpSync, mkdirSync, rmSync } from "node:fs";

rmSync("dist", { recursive: true, force: true });
mkdirSync("dist");
cpSync("public", "dist", { recursive: true });
await build({
  entryPoints: ["storefront", "backoffice", "orders", "sales", "projections"].map(
    (page) => `src/${page}.ts`,
  ),
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  splitting: true,
  sourcemap: true,
  outdir: "dist",
  logLevel: "warning",
});
