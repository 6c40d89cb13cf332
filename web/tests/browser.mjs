// The frontends in a real browser (Debian's chromium, driven by playwright-core) against the
// real services with authentication on: WEB_URL serves the pages, which call the services
// cross-origin with bearer tokens from scripts/dev-token; the poison event goes to the topic
// with Kafka's console producer (scripts/kafka/produce).
//   WEB_URL (http://127.0.0.1:8082), CHROMIUM (/usr/bin/chromium), SCREENSHOTS (a directory),
//   KAFKA_BROKERS, KAFKA_TOPIC (order-events), AUTH_JWT_* (as the services have them)
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import {
  launch,
  newContext,
  placeConfirmedOrder,
  placeOrder,
  register,
  scripts,
  shipForm,
  signIn,
  token,
  web,
} from "./flows.mjs";

const screenshots = process.env.SCREENSHOTS;
if (screenshots) mkdirSync(screenshots, { recursive: true });
const browser = await launch();
const failures = [];

async function test(name, body, viewport) {
  const context = await newContext(browser, viewport);
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

await test("a customer registers, orders, and sees the back office ship it live", async (context) => {
  const store = await context.newPage();
  await store.goto(`${web}/index.html`);
  await register(store);
  await shot(store, "storefront-registered");
  const orderId = await placeConfirmedOrder(store);
  await shot(store, "storefront-order");

  const office = await context.newPage();
  await office.goto(`${web}/backoffice.html`);
  const form = await shipForm(office, orderId, "UPS");
  await shot(office, "backoffice-shipping");
  const clicked = Date.now();
  await form.getByRole("button", { name: "Ship" }).click();
  await store.locator("#order-status").filter({ hasText: "shipped" }).waitFor();
  console.log(`  ship click → storefront live update: ${Date.now() - clicked} ms`);
  assert.match(await store.locator("#order-shipment").textContent(), /UPS, tracking number UPS-/);
  await shot(store, "storefront-shipped");
});

await test("two back-office tabs ship one order: one wins, the other sees the conflict", async (context) => {
  const store = await context.newPage();
  await store.goto(`${web}/index.html`);
  await register(store);
  const orderId = await placeConfirmedOrder(store);
  const [first, second] = [await context.newPage(), await context.newPage()];
  const forms = [];
  for (const [tab, carrier] of [[first, "UPS"], [second, "DHL"]]) {
    await tab.goto(`${web}/backoffice.html`);
    forms.push(await shipForm(tab, orderId, carrier));
  }
  await forms[0].getByRole("button", { name: "Ship" }).click();
  await store.locator("#order-status").filter({ hasText: "shipped" }).waitFor();
  await forms[1].getByRole("button", { name: "Ship" }).click();
  const conflict = second.locator("#shipping [role=status]").first();
  await conflict.filter({ hasText: "changed meanwhile" }).waitFor();
  assert.match(await conflict.textContent(), /not at the version in If-Match/);
  await shot(second, "backoffice-conflict");
  // Nothing was overwritten: the first tab's shipment stands.
  assert.match(await store.locator("#order-shipment").textContent(), /^UPS/);
  assert.equal(await forms[1].count(), 0);
});

await test("a pending order's lines are added and removed, a bad line refused by field", async (context) => {
  const store = await context.newPage();
  await store.goto(`${web}/index.html`);
  await register(store);
  await placeOrder(store);
  const add = store.locator("#add-line");
  const lines = store.locator("#order-lines li");
  await add.getByLabel("SKU").fill("B-2");
  await add.getByLabel("Product").fill("Gadget");
  await add.getByLabel("Unit price (EUR)").fill("5");
  await add.getByRole("button", { name: "Add" }).click();
  await store.locator("#order-total").filter({ hasText: "30.00" }).waitFor();
  assert.equal(await lines.count(), 2);
  await store.getByRole("button", { name: "Remove Widget from the order" }).click();
  await store.locator("#order-total").filter({ hasText: "5.00" }).waitFor();
  assert.equal(await lines.count(), 1);
  assert.match(await lines.first().textContent(), /Gadget/);
  await add.getByLabel("SKU").fill("C-3");
  await add.getByLabel("Product").fill("Gizmo");
  await add.getByLabel("Quantity").fill("0");
  await add.getByLabel("Unit price (EUR)").fill("1");
  await add.getByRole("button", { name: "Add" }).click();
  await add.locator('[data-error-for="quantity"]').filter({ hasText: /./ }).waitFor();
  assert.equal(await add.getByLabel("Quantity").getAttribute("aria-invalid"), "true");
  assert.equal(await lines.count(), 1);
});

await test("a field error is shown next to the field it names, the form used by keyboard", async (context) => {
  const store = await context.newPage();
  await store.goto(`${web}/index.html`);
  await signIn(store, token("customer"));
  await store.getByLabel("Email").focus();
  await store.keyboard.type("not an address");
  await store.keyboard.press("Enter");
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
  // Authorization (and Idempotency-Key) are not CORS-safelisted: the browser sends the POST
  // only after the service's preflight allowed them from this origin.
  const answered = store.waitForResponse(
    (r) => r.url().endsWith("/customers") && r.request().method() === "POST",
  );
  const customerId = await register(store);
  const response = await answered;
  assert.equal(response.status(), 201);
  assert.match(response.request().headers().authorization, /^Bearer eyJ/);
  assert.equal((await response.json()).customer_id, customerId);
});

await test("the back office finds orders by filter, page by page, and charts the day's sales", async (context) => {
  const store = await context.newPage();
  await store.goto(`${web}/index.html`);
  const customerId = await register(store);
  const placed = [await placeConfirmedOrder(store), await placeConfirmedOrder(store)];
  const office = await context.newPage();
  await office.goto(`${web}/orders.html`);
  const search = office.locator("#search");
  await search.getByLabel("Customer id").fill(customerId);
  await search.getByLabel("Status").selectOption("confirmed");
  await search.getByLabel("Per page").fill("1");
  await search.getByRole("button", { name: "Search" }).click();
  // Newest first, one per page: the second order, then the first, then no next page.
  const rows = office.locator("#results tr");
  await office.locator(`#results tr[data-order="${placed[1]}"]`).waitFor();
  await office.getByRole("button", { name: "Next page" }).click();
  await office.locator(`#results tr[data-order="${placed[0]}"]`).waitFor();
  assert.equal(await rows.count(), 1);
  assert.match(await office.locator("#page-info").textContent(), /Page 2/);
  await office.getByRole("button", { name: "Next page" }).waitFor({ state: "hidden" });
  await search.getByLabel("Per page").fill("1000");
  await search.getByRole("button", { name: "Search" }).click();
  await search.locator('[data-error-for="limit"]').filter({ hasText: /./ }).waitFor();
  await search.getByLabel("Per page").fill("20");
  await search.getByRole("button", { name: "Search" }).click();
  await office.locator(`#results tr[data-order="${placed[0]}"]`).waitFor();
  await shot(office, "backoffice-orders");

  await office.goto(`${web}/sales.html`);
  const today = new Date().toISOString().slice(0, 10);
  const todayEur = office.locator("#days tr").filter({ hasText: today }).filter({ hasText: "EUR" });
  await todayEur.waitFor();
  assert.ok((await office.locator("#charts figure svg rect.positive").count()) >= 1);
  assert.match(await office.locator("#charts figcaption").first().textContent(), /EUR/);
  await shot(office, "backoffice-sales");
});

await test("a rebuild started from the projections page shows its progress until swapped in", async (context) => {
  const office = await context.newPage();
  await office.goto(`${web}/projections.html`);
  await office.locator("#partitions tr").first().waitFor();
  await office.getByRole("button", { name: "Rebuild the views" }).click();
  const started = office.locator("#rebuild > [role=status]").filter({ hasText: /Rebuild \d+ started/ });
  await started.waitFor();
  const id = (await started.textContent()).match(/Rebuild (\d+)/)[1];
  // The page follows it (a small topic's rebuild may be done before the first refresh).
  const swapped = new RegExp(`Rebuild ${id} \\(started .*\\) was swapped in`);
  await office.locator("#rebuild-state").filter({ hasText: swapped }).waitFor({ timeout: 60_000 });
  assert.equal(await office.getByRole("button", { name: "Rebuild the views" }).isDisabled(), false);
});

await test("a poison event's dead letter is discarded or retried, corrected, from the projections page", async (context) => {
  const store = await context.newPage();
  await store.goto(`${web}/index.html`);
  const customerId = await register(store);
  // An OrderPlaced the views refuse (no such currency as EURO), and a message that is no event.
  const orderId = randomUUID();
  const garbage = `not an event ${randomUUID()}`;
  const at = new Date().toISOString();
  const envelope = {
    event_id: randomUUID(),
    event_type: "OrderPlaced",
    schema_version: 1,
    aggregate_type: "order",
    aggregate_id: orderId,
    aggregate_version: 1,
    partition_key: customerId,
    occurred_at: at,
    data: {
      order_id: orderId,
      customer_id: customerId,
      currency: "EURO",
      items: [{ sku: "P-1", name: "Poison", quantity: 1, unit_price_cents: 700 }],
      item_count: 1,
      total_cents: 700,
      shipping_address: null,
      placed_at: at,
    },
  };
  execFileSync(
    `${scripts}kafka/produce`,
    [process.env.KAFKA_BROKERS, process.env.KAFKA_TOPIC ?? "order-events"],
    { input: `${customerId}\t${garbage}\n${customerId}\t${JSON.stringify(envelope)}\n` },
  );

  const office = await context.newPage();
  await office.goto(`${web}/projections.html`);
  const letter = (text) => office.locator("article.letter").filter({ hasText: text });
  await letter(orderId).waitFor();
  await letter(garbage).waitFor();
  assert.match(await letter(orderId).locator("pre.error").textContent(), /currency/);
  await shot(office, "backoffice-projections");

  await letter(garbage).getByRole("button", { name: "Discard" }).click();
  await office.locator("#letters > [role=status]").filter({ hasText: "discarded" }).waitFor();
  const payload = letter(orderId).getByLabel("Payload");
  await payload.fill((await payload.inputValue()).replace('"EURO"', '"EUR"'));
  await letter(orderId).getByRole("button", { name: "Retry" }).click();
  await office.locator("#letters > [role=status]").filter({ hasText: "applied: versions 1" }).waitFor();
  await letter(orderId).waitFor({ state: "detached" });

  // The corrected event is in the views: the order search finds it.
  await office.goto(`${web}/orders.html`);
  await office.locator("#search").getByLabel("Customer id").fill(customerId);
  await office.getByRole("button", { name: "Search" }).click();
  const row = office.locator(`#results tr[data-order="${orderId}"]`);
  await row.waitFor();
  assert.match(await row.textContent(), /pending/);
});

await test("every page reads on a phone-width window without sideways scrolling", async (context) => {
  const page = await context.newPage();
  for (const path of ["index.html", "backoffice.html", "orders.html", "sales.html", "projections.html"]) {
    await page.goto(`${web}/${path}`);
    await page.locator("header nav").waitFor();
    await page.waitForLoadState("networkidle");
    const [scrollWidth, innerWidth] = await page.evaluate(() => [
      document.documentElement.scrollWidth,
      window.innerWidth,
    ]);
    assert.ok(scrollWidth <= innerWidth, `${path}: ${scrollWidth} px wide in a ${innerWidth} px window`);
  }
  await page.goto(`${web}/index.html`);
  await shot(page, "storefront-phone");
}, { width: 390, height: 844 });

await browser.close();
if (failures.length) {
  console.log(`${failures.length} browser test(s) failed: ${failures.join("; ")}`);
  process.exit(1);
}
