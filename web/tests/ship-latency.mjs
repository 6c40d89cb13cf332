// Measures, in the browser, the time from the back office's Ship click to the storefront's live
// update of that order (the command, the relay, Kafka, the projector, the stream): RUNS orders
// (20), each clock read in the pages themselves. Against a running stack: `npm run latency`.
//   RUNS (20), and what tests/flows.mjs reads
import { launch, newContext, placeConfirmedOrder, register, shipForm, web } from "./flows.mjs";

const runs = Number(process.env.RUNS ?? 20);
const browser = await launch();
const context = await newContext(browser);
const store = await context.newPage();
await store.goto(`${web}/index.html`);
await register(store);
const office = await context.newPage();
const times = [];
for (let run = 0; run < runs; run += 1) {
  const orderId = await placeConfirmedOrder(store);
  await office.goto(`${web}/backoffice.html`);
  const form = await shipForm(office, orderId);
  // Both pages read the same clock: the click's time in the back office, the update's in the
  // storefront, when the status shown becomes "shipped".
  await store.evaluate(() => {
    const status = document.querySelector("#order-status");
    window.shipped = new Promise((resolve) => {
      new MutationObserver(() => status.textContent === "shipped" && resolve(Date.now())).observe(
        status,
        { childList: true, characterData: true, subtree: true },
      );
    });
  });
  await form.getByRole("button", { name: "Ship" }).evaluate((button) =>
    button.addEventListener("click", () => (window.clicked = Date.now()), { capture: true }),
  );
  await form.getByRole("button", { name: "Ship" }).click();
  const shipped = await store.evaluate(() =>
    Promise.race([
      window.shipped,
      new Promise((_, reject) => setTimeout(() => reject(new Error("no live update in 30 s")), 30_000)),
    ]),
  );
  times.push(shipped - (await office.evaluate(() => window.clicked)));
}
await browser.close();

const sorted = [...times].sort((a, b) => a - b);
const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const median = (sorted[(runs - 1) >> 1] + sorted[runs >> 1]) / 2;
console.log(`ship click → storefront live update over ${runs} orders (ms): ${times.join(" ")}`);
console.log(`median ${median} ms, p90 ${at(0.9)} ms, min ${sorted[0]} ms, max ${sorted.at(-1)} ms`);
