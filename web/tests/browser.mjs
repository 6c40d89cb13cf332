// The frontends in a real browser (Debian's chromium, driven by playwright-core) against the
// real services: WEB_URL serves the pages, which call the services cross-origin.
//   WEB_URL (http://127.0.0.1:8082), CHROMIUM (/usr/bin/chromium), SCREENSHOTS (a directory)
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";

const web = process.env.WEB_URL ?? "http://127.0.0.1:8082";
const screenshots = process.env.SCREENSHOTS;
if (screenshots) mkdirSync(screenshots, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
const failures = [];

async function test(name, body) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const started = Date.now();
  try {
    await body(context);
    console.log(`PASS ${name} (${Date.now() - started} ms)`);
  } catch (error) {
    failures.push(name);
    console.log(`FAIL ${name}\n${error.stack ?? error}`);
  } finally {
    await context.close();
  }
}

async function shot(page, name) {
  if (screenshots) await page.screenshot({ path: `${screenshots}/${name}.png`, fullPage: true });
}

/** Registers a new customer in `page` (the storefront) and returns their email. */
async function register(page) {
  const email = `ada.${Date.now()}.${Math.floor(Math.random() * 1e6)}@example.com`;
  await page.getByLabel("Name").first().fill("Ada Lovelace");
  await page.getByLabel("Email").fill(email);
  await page.getByRole("button", { name: "Register" }).click();
  await page.locator("#register [role=status]").filter({ hasText: "Registered." }).waitFor();
  return email;
}

/** Places a confirmed order of one line in the storefront `page`; returns its id. */
async function placeConfirmedOrder(page) {
  const cart = page.locator("#cart-form");
  await cart.getByLabel("SKU").fill("A-1");
  await cart.getByLabel("Product").fill("Widget");
  await cart.getByLabel("Quantity").fill("2");
  await cart.getByLabel("Unit price (EUR)").fill("12.50");
  await cart.getByRole("button", { name: "Add to cart" }).click();
  await page.getByRole("button", { name: "Place order" }).click();
  // Read with the command's consistency token: there at once, no polling.
  await page.locator("#order-status").filter({ hasText: "pending" }).waitFor();
  await page.getByRole("button", { name: "Confirm" }).click();
  await page.locator("#order-status").filter({ hasText: "confirmed" }).waitFor();
  return (await page.locator("#order-id").textContent()).trim();
}

/** The Ship form of `orderId`'s row in the back office `page`. */
function shipForm(page, orderId) {
  return page.locator(`tr[data-order="${orderId}"] form.ship`);
}

await test("a customer registers, orders, and sees the back office ship it live", async (context) => {
  const store = await context.newPage();
  await store.goto(`${web}/index.html`);
  await register(store);
  await shot(store, "storefront-registered");
  const orderId = await placeConfirmedOrder(store);
  await shot(store, "storefront-order");

  const office = await context.newPage();
  await office.goto(`${web}/backoffice.html`);
  const form = shipForm(office, orderId);
  await form.waitFor();
  await shot(office, "backoffice-shipping");
  await form.getByLabel("Carrier").fill("UPS");
  await form.getByLabel("Tracking number").fill("1Z999AA10123456784");
  const clicked = Date.now();
  await form.getByRole("button", { name: "Ship" }).click();
  await store.locator("#order-status").filter({ hasText: "shipped" }).waitFor();
  console.log(`  ship click → storefront live update: ${Date.now() - clicked} ms`);
  assert.match(await store.locator("#order-shipment").textContent(), /UPS, tracking number 1Z999/);
  await shot(store, "storefront-shipped");
});

await test("two back-office tabs ship one order: one wins, the other sees the conflict", async (context) => {
  const store = await context.newPage();
  await store.goto(`${web}/index.html`);
  await register(store);
  const orderId = await placeConfirmedOrder(store);
  const [first, second] = [await context.newPage(), await context.newPage()];
  for (const tab of [first, second]) {
    await tab.goto(`${web}/backoffice.html`);
    await shipForm(tab, orderId).waitFor();
  }
  for (const [tab, carrier] of [[first, "UPS"], [second, "DHL"]]) {
    const form = shipForm(tab, orderId);
    await form.getByLabel("Carrier").fill(carrier);
    await form.getByLabel("Tracking number").fill(`${carrier}-1`);
  }
  await shipForm(first, orderId).getByRole("button", { name: "Ship" }).click();
  await store.locator("#order-status").filter({ hasText: "shipped" }).waitFor();
  await shipForm(second, orderId).getByRole("button", { name: "Ship" }).click();
  const conflict = second.locator("#shipping [role=status]").first();
  await conflict.filter({ hasText: "changed meanwhile" }).waitFor();
  assert.match(await conflict.textContent(), /not at the version in If-Match/);
  await shot(second, "backoffice-conflict");
  // Nothing was overwritten: the first tab's shipment stands.
  assert.match(await store.locator("#order-shipment").textContent(), /^UPS/);
  assert.equal(await shipForm(second, orderId).count(), 0);
});

await test("a field error is shown next to the field it names", async (context) => {
  const store = await context.newPage();
  await store.goto(`${web}/index.html`);
  await store.getByLabel("Email").fill("not an address");
  await store.getByRole("button", { name: "Register" }).click();
  const form = store.locator("#register");
  const error = form.locator('[data-error-for="email"]');
  await error.filter({ hasText: "email address" }).waitFor();
  assert.match(await form.locator('[data-error-for="name"]').textContent(), /characters/);
  assert.equal(await form.getByLabel("Email").getAttribute("aria-invalid"), "true");
  await shot(store, "storefront-field-errors");
});

await test("a request with a bearer token passes the browser's CORS preflight", async (context) => {
  const store = await context.newPage();
  await store.goto(`${web}/index.html`);
  await store.getByLabel("Bearer token").fill("local-development-token");
  await store.getByRole("button", { name: "Save" }).click();
  // Authorization (and Idempotency-Key) are not CORS-safelisted: the browser sends the POST
  // only after the service's preflight allowed them from this origin.
  const answered = store.waitForResponse(
    (r) => r.url().endsWith("/customers") && r.request().method() === "POST",
  );
  await register(store);
  const response = await answered;
  assert.equal(response.status(), 201);
  assert.equal(response.request().headers().authorization, "Bearer local-development-token");
});

await browser.close();
if (failures.length) {
  console.log(`${failures.length} browser test(s) failed: ${failures.join("; ")}`);
  process.exit(1);
}
