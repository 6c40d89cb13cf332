// What every page has: its title, the links between the pages, and the sign-in form that
// keeps the page's bearer token (from the identity provider; locally `scripts/dev-token`).

import { bearer, setBearer, tokenSlot } from "./api";
import { status, value } from "./forms";

const PAGES = [
  ["index.html", "Storefront"],
  ["backoffice.html", "Shipping"],
  ["orders.html", "Orders"],
  ["sales.html", "Daily sales"],
  ["projections.html", "Projections"],
];

const HINTS = {
  storefront: "a customer token from <code>scripts/dev-token customer</code>; you then register as that customer",
  backoffice: "an admin token from <code>scripts/dev-token admin</code>",
};

/** Fills the page's `<header>` and chooses its token slot; call before any request.
 * `onSignIn` runs after the token changed. */
export function shell(slot: "storefront" | "backoffice", onSignIn = () => {}): void {
  tokenSlot(slot);
  const header = document.querySelector("header")!;
  const here = location.pathname.split("/").pop() || "index.html";
  const nav = document.createElement("nav");
  nav.setAttribute("aria-label", "Pages");
  for (const [href, label] of PAGES) {
    const link = document.createElement("a");
    link.href = href;
    link.textContent = label;
    if (href === here) link.setAttribute("aria-current", "page");
    nav.append(link);
  }
  const form = document.createElement("form");
  form.id = "sign-in";
  form.innerHTML = `
    <label>Bearer token <input name="token" type="password" autocomplete="off"></label>
    <button>Sign in</button>
    <p class="hint">Leave empty when the services run with authentication off (the default of
      <code>scripts/stack</code>); with <code>AUTH_MODE=jwt</code>, paste ${HINTS[slot]}.</p>
    <p role="status"></p>`;
  form.querySelector<HTMLInputElement>("[name=token]")!.value = bearer() ?? "";
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setBearer(value(form, "token"));
    status(form, bearer() ? "Signed in: the token goes with every request." : "Signed out.");
    onSignIn();
  });
  header.append(nav, form);
}
