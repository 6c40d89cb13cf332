// Builds dist/: each page of pages/ in the one layout (head, header), the pages' scripts
// bundled (one per page, what they share in one chunk) and the static files of public/. Plain
// files that need nothing from the internet at run time.
import { build } from "esbuild";
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";

/** Each page: its file, its script (src/<script>.ts), its title and heading. */
const PAGES = [
  { page: "index", script: "storefront", title: "Storefront", heading: "Storefront" },
  { page: "backoffice", script: "backoffice", title: "Shipping · Back office", heading: "Back office" },
  { page: "orders", script: "orders", title: "Orders · Back office", heading: "Back office" },
  { page: "sales", script: "sales", title: "Daily sales · Back office", heading: "Back office" },
  { page: "projections", script: "projections", title: "Projections · Back office", heading: "Back office" },
];

const layout = ({ script, title, heading }, main) => `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${title} · Order platform</title>
  <link rel="stylesheet" href="style.css">
  <script src="config.js"></script>
  <script type="module" src="${script}.js"></script>
</head>
<body>
  <header>
    <h1>${heading}</h1>
  </header>
${main.trimEnd()}
</body>
</html>
`;

rmSync("dist", { recursive: true, force: true });
mkdirSync("dist");
cpSync("public", "dist", { recursive: true });
for (const page of PAGES) {
  writeFileSync(`dist/${page.page}.html`, layout(page, readFileSync(`pages/${page.page}.html`, "utf8")));
}
await build({
  entryPoints: PAGES.map(({ script }) => `src/${script}.ts`),
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  splitting: true,
  sourcemap: true,
  outdir: "dist",
  logLevel: "warning",
});
