// The projections page: where the projector stands per partition (refreshing), the rebuild
// with its progress, and the dead letters with their payload and error, retried or discarded.

import { operate, view } from "./api";
import { $, clearErrors, keyed, showError, status, tableRow } from "./forms";
import { shell } from "./shell";

interface Partition {
  partition: number;
  committed_offset: number;
  high_watermark: number | null;
  lag_events: number | null;
  lag_seconds: number | null;
  events_per_second: number;
  assigned_here: boolean;
}

interface Rebuild {
  id: number;
  status: "running" | "swapped" | "failed";
  started_at: string;
  finished_at: string | null;
  applied_offsets: Record<string, number> | null;
  error: string | null;
}

interface Position {
  topic: string;
  partitions: Partition[];
  total_lag_events: number | null;
  parked_dead_letters: number;
  rebuild: Rebuild | null;
}

interface Letter {
  id: number;
  partition: number;
  kafka_offset: number;
  error: string;
  attempts: number;
  parked_at: string;
  payload: unknown;
  event_type: string | null;
  aggregate_id: string | null;
  aggregate_version: number | null;
}

interface Outcome {
  outcome: string;
  applied_versions?: number[] | null;
}

const REFRESH_MS = 2000;
const LETTERS = 50;
/** The parked count the letter list was last loaded for. */
let parkedSeen = -1;

const show = (value: number | null) => (value === null ? "unknown" : String(value));

function renderPosition(position: Position): void {
  $("#partitions").replaceChildren(
    ...position.partitions.map((p) =>
      tableRow([
        String(p.partition),
        String(p.committed_offset),
        show(p.high_watermark),
        show(p.lag_events),
        p.lag_seconds === null ? "unknown" : p.lag_seconds.toFixed(1),
        p.events_per_second.toFixed(1),
        p.assigned_here ? "yes" : "no",
      ]),
    ),
  );
  $("#summary").textContent =
    `Topic ${position.topic}: ${show(position.total_lag_events)} events behind in total, ` +
    `${position.parked_dead_letters} dead letters parked ` +
    `(at ${new Date().toLocaleTimeString()}).`;
  renderRebuild(position.rebuild, position.partitions);
}

/** The latest rebuild; while it runs, its applied offsets against the topic's high watermarks. */
function renderRebuild(rebuild: Rebuild | null, partitions: Partition[]): void {
  const bar = $<HTMLProgressElement>("#rebuild-progress");
  $<HTMLButtonElement>("#start-rebuild").disabled = rebuild?.status === "running";
  bar.hidden = rebuild?.status !== "running";
  if (!rebuild) {
    $("#rebuild-state").textContent = "No rebuild has run.";
    return;
  }
  const started = new Date(rebuild.started_at).toLocaleString();
  const finished = rebuild.finished_at ? new Date(rebuild.finished_at).toLocaleString() : "";
  const applied = Object.values(rebuild.applied_offsets ?? {}).reduce((a, b) => a + b, 0);
  const total = partitions.reduce((sum, p) => sum + (p.high_watermark ?? p.committed_offset), 0);
  const share = total > 0 ? Math.min(applied / total, 1) : 0;
  bar.value = share;
  bar.textContent = `${Math.round(share * 100)} %`;
  $("#rebuild-state").textContent = {
    running: `Rebuild ${rebuild.id} started ${started}: ${applied} of ${total} events applied.`,
    swapped: `Rebuild ${rebuild.id} (started ${started}) was swapped in at ${finished}.`,
    failed: `Rebuild ${rebuild.id} (started ${started}) failed: ${rebuild.error ?? "unknown"}.`,
  }[rebuild.status];
}

function payloadText(payload: unknown): string {
  return typeof payload === "string" ? payload : JSON.stringify(payload, null, 2);
}

function renderLetter(letter: Letter): HTMLElement {
  const article = document.createElement("article");
  article.className = "letter";
  article.dataset.letter = String(letter.id);
  const heading = document.createElement("h3");
  const what = letter.event_type ?? "unreadable message";
  const which = letter.aggregate_id ? ` of ${letter.aggregate_id} v${letter.aggregate_version}` : "";
  heading.textContent = `#${letter.id}: ${what}${which}`;
  const facts = document.createElement("p");
  facts.textContent =
    `Partition ${letter.partition}, offset ${letter.kafka_offset}; parked ` +
    `${new Date(letter.parked_at).toLocaleString()} after ${letter.attempts} attempt(s).`;
  const error = document.createElement("pre");
  error.className = "error";
  error.textContent = letter.error;
  const form = document.createElement("form");
  const original = payloadText(letter.payload);
  form.innerHTML = `
    <label>Payload <textarea name="payload" rows="8" spellcheck="false"></textarea></label>
    <button name="retry">Retry</button>
    <button name="discard" type="button">Discard</button>
    <p role="status"></p>`;
  for (const action of ["retry", "discard"]) {
    const label = `${action === "retry" ? "Retry" : "Discard"} dead letter ${letter.id}`;
    form.querySelector(`[name=${action}]`)!.setAttribute("aria-label", label);
  }
  const payload = form.querySelector("textarea")!;
  payload.textContent = original;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void act(form, letter.id, "retry", () => {
      // Unchanged: apply the stored payload again (after a fix was deployed).
      if (payload.value === original) return undefined;
      return JSON.parse(payload.value) as unknown;
    });
  });
  form.querySelector("[name=discard]")!.addEventListener("click", () => {
    void act(form, letter.id, "discard", () => undefined);
  });
  article.append(heading, facts, error, form);
  return article;
}

async function act(
  form: HTMLFormElement,
  id: number,
  action: "retry" | "discard",
  body: () => unknown,
): Promise<void> {
  clearErrors(form);
  let corrected: unknown;
  try {
    corrected = body();
  } catch (error) {
    status(form, `The edited payload is not JSON: ${String(error)}`);
    return;
  }
  try {
    const done = await operate<Outcome>(`/admin/dead-letters/${id}/${action}`, corrected);
    const applied = done.applied_versions ?? [];
    const versions = applied.length ? `: versions ${applied.join(", ")}` : "";
    await loadLetters().catch(() => {});
    status($("#letters"), `Dead letter ${id}: ${done.outcome.replace("_", " ")}${versions}.`);
  } catch (error) {
    showError(form, error);
  }
}

/** Shows the parked letters (the first 50); a letter already shown keeps its edited payload. */
async function loadLetters(): Promise<void> {
  const page = await view<{ items: Letter[]; next_after: number | null }>(
    `/admin/dead-letters?status=parked&limit=${LETTERS}`,
  );
  keyed($("#letter-list"), page.items, (letter) => String(letter.id), renderLetter);
  $("#no-letters").hidden = page.items.length > 0;
  $("#more-letters").hidden = page.next_after === null;
}

/** Reads the position, and the letters when their number changed. */
async function refresh(): Promise<void> {
  try {
    const position = await view<Position>("/admin/projections");
    renderPosition(position);
    status($("#position"), "");
    if (position.parked_dead_letters !== parkedSeen) {
      await loadLetters();
      parkedSeen = position.parked_dead_letters;
    }
  } catch (error) {
    showError($("#position"), error);
  }
}

/** Refreshes every REFRESH_MS, one request at a time. */
async function keepRefreshing(): Promise<void> {
  await refresh();
  setTimeout(() => void keepRefreshing(), REFRESH_MS);
}

shell("backoffice");
$("#start-rebuild").addEventListener("click", async () => {
  clearErrors($("#rebuild"));
  try {
    const started = await operate<{ rebuild_id: number }>("/admin/projections/rebuild");
    status($("#rebuild"), `Rebuild ${started.rebuild_id} started.`);
    $<HTMLButtonElement>("#start-rebuild").disabled = true;
  } catch (error) {
    showError($("#rebuild"), error);
  }
});
$("#reload-letters").addEventListener("click", () => {
  clearErrors($("#letters"));
  loadLetters().catch((error) => showError($("#letters"), error));
});
void keepRefreshing();
