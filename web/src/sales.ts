// The daily-sales report as a chart: one bar chart of net sales per currency, a bar per UTC
// day of the range (days without sales are zero), and the report's numbers in a table below.

import { view } from "./api";
import { $, clearErrors, money, optional, showError, status, tableRow } from "./forms";
import { shell } from "./shell";

interface Day {
  date: string;
  currency: string;
  gross_cents: number;
  cancelled_cents: number;
  net_cents: number;
  items_sold: number;
  orders_placed: number;
  orders_confirmed: number;
  orders_cancelled: number;
}

interface Report {
  from: string;
  to: string;
  days: Day[];
}

const SVG = "http://www.w3.org/2000/svg";
const DAY_MS = 86_400_000;
const form = $<HTMLFormElement>("#range");

function svg<K extends keyof SVGElementTagNameMap>(
  name: K,
  attributes: Record<string, string | number>,
): SVGElementTagNameMap[K] {
  const element = document.createElementNS(SVG, name);
  for (const [key, given] of Object.entries(attributes)) element.setAttribute(key, String(given));
  return element;
}

/** The UTC days from `from` to `to`, inclusive, as YYYY-MM-DD. */
function daysBetween(from: string, to: string): string[] {
  const days = [];
  for (let t = Date.parse(from); t <= Date.parse(to); t += DAY_MS) {
    days.push(new Date(t).toISOString().slice(0, 10));
  }
  return days;
}

/** A bar chart of `currency`'s net sales per day; negative days (refunds) go below the axis. */
function chart(report: Report, currency: string): HTMLElement {
  const days = daysBetween(report.from, report.to);
  const net = new Map(
    report.days.filter((d) => d.currency === currency).map((d) => [d.date, d.net_cents]),
  );
  const values = days.map((day) => net.get(day) ?? 0);
  const best = Math.max(...values);
  const top = Math.max(1, best);
  const bottom = Math.min(0, ...values);
  const [width, height, pad] = [days.length * 12, 160, 4];
  const y = (cents: number) => pad + ((top - cents) / (top - bottom)) * (height - 2 * pad);
  const figure = document.createElement("figure");
  const caption = document.createElement("figcaption");
  const highest = best > 0 ? ` (highest ${money(best, currency)})` : "";
  caption.textContent = `Net sales per day, ${currency}${highest}`;
  const plot = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart" });
  plot.setAttribute("aria-label", caption.textContent);
  days.forEach((day, i) => {
    const [a, b] = [y(Math.max(values[i], 0)), y(Math.min(values[i], 0))];
    const bar = svg("rect", { x: i * 12 + 1, y: a, width: 10, height: Math.max(b - a, 0.5) });
    bar.classList.add(values[i] < 0 ? "negative" : "positive");
    const title = svg("title", {});
    title.textContent = `${day}: ${money(values[i], currency)}`;
    bar.append(title);
    plot.append(bar);
  });
  plot.append(svg("line", { x1: 0, x2: width, y1: y(0), y2: y(0), class: "axis" }));
  figure.append(caption, plot);
  return figure;
}

async function load(): Promise<void> {
  clearErrors(form);
  const params = new URLSearchParams();
  for (const name of ["from", "to"]) {
    const given = optional(form, name);
    if (given) params.set(name, given);
  }
  try {
    const report = await view<Report>(`/reports/daily-sales?${params}`);
    const currencies = [...new Set(report.days.map((d) => d.currency))].sort();
    $("#charts").replaceChildren(...currencies.map((currency) => chart(report, currency)));
    $("#days").replaceChildren(
      ...report.days.map((d) =>
        tableRow([
          d.date,
          d.currency,
          money(d.gross_cents, d.currency),
          money(d.cancelled_cents, d.currency),
          money(d.net_cents, d.currency),
          String(d.items_sold),
          String(d.orders_placed),
          String(d.orders_confirmed),
          String(d.orders_cancelled),
        ]),
      ),
    );
    // Show the range the report covers (the service's default when none was given).
    form.querySelector<HTMLInputElement>("[name=from]")!.value = report.from;
    form.querySelector<HTMLInputElement>("[name=to]")!.value = report.to;
    const range = `${report.from} to ${report.to}`;
    status(form, currencies.length ? `Sales from ${range}.` : `No sales from ${range}.`);
  } catch (error) {
    showError(form, error);
  }
}

shell("backoffice");
form.addEventListener("submit", (event) => {
  event.preventDefault();
  void load();
});
void load();
