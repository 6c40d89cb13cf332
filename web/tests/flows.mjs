// What the browser tests and the ship-latency measurement do in the pages, as a person would:
// the browser, tokens, signing in, registering, ordering, the Ship form.
//   WEB_URL (http://127.0.0.1:8082), CHROMIUM (/usr/bin/chromium), AUTH_JWT_* (as the services)
import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export const web = process.env.WEB_URL ?? "http://127.0.0.1:8082";
export const scripts = fileURLToPath(new URL("../../scripts/", import.meta.url));

/** Debian's chromium, headless (the machine cannot download a browser of its own). */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox"],
  });
}

/** A bearer token of `scope` (customer or admin) the services accept. */
export function token(scope) {
  return execFileSync(`${scripts}dev-token`, [scope], { encoding: "utf8" }).trim();
}

/** A browser context whose back-office pages find an admin's token where their sign-in form
 * keeps it. */
export async function newContext(browser, viewport = { width: 1100, height: 900 }) {
  const context = await browser.newContext({ viewport });
  await context.addInitScript((t) => localStorage.setItem("orders.token.backoffice", t), token("admin"));
  return context;
}

/** Signs `page` in with `bearer` through its sign-in form. */
export async function signIn(page, bearer) {
  await page.getByLabel("Bearer token").fill(bearer);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#sign-in [role=status]").filter({ hasText: "Signed in" }).waitFor();
}

/** Signs a new customer in to the storefront `page`, registers them, returns their id. */
export async function register(page) {
  await signIn(page, token("customer"));
  const email = `ada.${Date.now()}.${Math.floor(Math.random() * 1e6)}@example.com`;
  await page.getByLabel("Name").first().fill("Ada Lovelace");
  await page.getByLabel("Email").fill(email);
  await page.getByRole("button", { name: "Register" }).click();
  await page.locator("#register [role=status]").filter({ hasText: "Registered." }).waitFor();
  return (await page.locator("#customer-id").textContent()).trim();
}

/** Places an order of one line (2 × A-1 at 12.50) in the storefront `page`; returns its id. */
export async function placeOrder(page) {
  const cart = page.locator("#cart-form");
  await cart.getByLabel("SKU").fill("A-1");
  await cart.getByLabel("Product").fill("Widget");
  await cart.getByLabel("Quantity").fill("2");
  await cart.getByLabel("Unit price (EUR)").fill("12.50");
  await cart.getByRole("button", { name: "Add to cart" }).click();
  await page.getByRole("button", { name: "Place order" }).click();
  // Read with the command's consistency token: there at once, no polling.
  await page.locator("#order-status").filter({ hasText: "pending" }).waitFor();
  return (await page.locator("#order-id").textContent()).trim();
}

/** Places and confirms an order of one line in the storefront `page`; returns its id. */
export async function placeConfirmedOrder(page) {
  const orderId = await placeOrder(page);
  await page.getByRole("button", { name: "Confirm" }).click();
  await page.locator("#order-status").filter({ hasText: "confirmed" }).waitFor();
  return orderId;
}

/** The Ship form of `orderId`'s row in the back office `page`, filled in. */
export async function shipForm(page, orderId, carrier = "UPS") {
  const form = page.locator(`tr[data-order="${orderId}"] form.ship`);
  await form.waitFor();
  await form.getByLabel("Carrier").fill(carrier);
  await form.getByLabel("Tracking number").fill(`${carrier}-${orderId.slice(0, 8)}`);
  return form;
}
