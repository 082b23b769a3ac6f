// Cairn's dashboard: the few things that need JavaScript (buttons that act,
// live progress, the claim's wait for the button). Pages read without it.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf"]')?.content || "";

async function call(method, url, body) {
  const opts = { method, headers: { "X-CSRF-Token": csrf() }, credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(url, opts);
  const text = await r.text();
  let data = {};
  try { data = text ? JSON.parse(text) : {}; } catch (e) { data = { error: text }; }
  if (!r.ok) throw new Error(data.error || `${r.status} ${r.statusText}`);
  return data;
}

// A form's fields as JSON: "a.b" names nest, checkboxes are booleans,
// data-type="number" are numbers, empty fields are left out.
function fields(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name || el.name === "password2") continue;
    let v;
    if (el.type === "checkbox") v = el.checked;
    else if (el.dataset.type === "lines") v = el.value.split("\n").map((l) => l.trim()).filter((l) => l);
    else if (el.value === "") continue;
    else if (el.dataset.type === "bool") v = el.value === "true";
    else v = el.dataset.type === "number" ? Number(el.value) : el.value;
    const keys = el.name.split(".");
    let o = out;
    for (const k of keys.slice(0, -1)) o = o[k] = o[k] || {};
    o[keys[keys.length - 1]] = v;
  }
  return out;
}

function say(scope, text, bad) {
  const el = scope.querySelector(".result") || scope.parentElement.querySelector(".result");
  if (!el) return;
  el.textContent = text;
  el.className = bad ? "result error" : "result";
}

// <form data-api="/api/x" data-then="/next">: POST the fields as JSON.
for (const form of document.querySelectorAll("form[data-api]")) {
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    say(form, "Working…");
    try {
      const data = await call("POST", form.dataset.api, fields(form));
      // `next` is where to go (setup's answers); the schedule's answer has
      // a `next` too, its next runs (a list), which is no address.
      const next = (typeof data.next === "string" && data.next) || form.dataset.then;
      if (next) location.href = next; else say(form, data.message || "Done.");
    } catch (e) { say(form, e.message, true); }
  });
}

// <button data-post="/api/x" data-body='{…}'>
for (const b of document.querySelectorAll("button[data-post]")) {
  b.addEventListener("click", async () => {
    say(b.parentElement, "Working…");
    try {
      const data = await call("POST", b.dataset.post, b.dataset.body ? JSON.parse(b.dataset.body) : undefined);
      say(b.parentElement, data.id ? `Queued as job ${data.id}${data.merged ? " (merged with one waiting)" : ""}.` : data.message || "Done.");
    } catch (e) { say(b.parentElement, e.message, true); }
  });
}

for (const b of document.querySelectorAll("[data-print]")) b.addEventListener("click", () => window.print());

// The wizard's connection test.
for (const b of document.querySelectorAll("button[data-test]")) {
  b.addEventListener("click", async () => {
    const f = fields(b.form);
    say(b.form, "Connecting…");
    try {
      const data = await call("POST", "/api/setup/test",
        { target: f.target || "", target_password: f.target_password, passphrase: f.passphrase, s3: f.s3 });
      say(b.form, data.message);
    } catch (e) { say(b.form, e.message, true); }
  });
}

// "Check": the form's change checked (and its target connected to), nothing saved.
for (const b of document.querySelectorAll("button[data-dry-run]")) {
  b.addEventListener("click", async () => {
    say(b.form, "Checking…");
    try {
      const data = await call("POST", b.form.dataset.api, Object.assign(fields(b.form), { dry_run: true }));
      say(b.form, data.message);
    } catch (e) { say(b.form, e.message, true); }
  });
}

// A schedule's next runs, as it is typed.
for (const input of document.querySelectorAll("input[data-preview]")) {
  let timer;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const out = document.getElementById(input.dataset.preview);
      try {
        const d = await call("GET", "/api/schedule/preview?expr=" + encodeURIComponent(input.value));
        out.textContent = `${d.describe.replace(/\.+$/, "")}. Next: ${d.next.join("; ")}`;
        out.className = "hint";
      } catch (e) { out.textContent = e.message; out.className = "hint error"; }
    }, 300);
  });
}

// Retention: what keeping N chains would delete at the target now.
for (const b of document.querySelectorAll("button[data-retention]")) {
  b.addEventListener("click", async () => {
    const n = b.form.elements.keep_full.value;
    say(b.form, "Asking the target…");
    try {
      const p = await call("GET", `/api/retention/preview?plan=${encodeURIComponent(b.dataset.retention)}&keep_full=${encodeURIComponent(n)}`);
      const gone = p.removed_chains;
      say(b.form, gone.length
        ? `Of ${p.chains} chains, it would delete ${gone.length} (${p.files} files): those ending ${gone.join("; ")}.`
        : `Of ${p.chains} chains, it would delete none now.`);
    } catch (e) { say(b.form, e.message, true); }
  });
}

// Waits for the appliance's button: the LEDs alternate until it is pressed.
// Waiting again sends the last wait's id: only one browser may wait, and a
// second one asking turns the button off for a while.
let lastWait = null;
async function waitForPress(start, poll, state) {
  const body = Object.assign({}, start.body || {}, lastWait ? { previous: lastWait } : {});
  const w = await call("POST", start.url, body);
  lastWait = w.id;
  state.textContent = "Now press the appliance's button (its LEDs blink in turn)…";
  for (let i = 0; i < w.seconds; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    const s = await call("GET", poll + encodeURIComponent(w.id));
    if (s.pressed || s.unlocked) { state.textContent = "Button pressed."; return w.id; }
    if (!s.waiting) break;
  }
  throw new Error("no press came; try again");
}

// The claim: a press (or the token), then the password.
for (const form of document.querySelectorAll("form[data-claim]")) {
  const state = form.querySelector(".press-state");
  form.querySelector("[data-press]").addEventListener("click", async () => {
    try {
      form.elements.claim.value = await waitForPress({ url: "/setup/claim/button" }, "/setup/claim/button?id=", state);
    } catch (e) { state.textContent = e.message; }
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (form.elements.password.value !== form.elements.password2.value) return say(form, "The passwords differ.", true);
    try {
      await call("POST", "/setup/claim", fields(form));
      location.href = "/setup";
    } catch (e) { say(form, e.message, true); }
  });
}

// The recovery kit again: the password, then a press.
for (const form of document.querySelectorAll("form[data-unlock]")) {
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const state = form.querySelector(".result");
    try {
      await waitForPress({ url: "/api/kit/unlock", body: fields(form) }, "/api/kit/unlock?id=", state);
      location.reload();
    } catch (e) { say(form, e.message, true); }
  });
}

// Live progress: the status as the server pushes it.
const live = document.querySelector("[data-live]");
if (live && window.EventSource) {
  // The jobs page says what it was drawn from ("running id/newest finished
  // id"), so a job that ends before this stream's first event still reloads
  // it; without that, the first event is taken as the starting point.
  const drawn = live.dataset.key;
  let wasRunning = null;
  const es = new EventSource("/api/events");
  es.addEventListener("status", (ev) => {
    const s = JSON.parse(ev.data);
    const r = s.running;
    const running = r ? r.job.id : null;
    if (drawn !== undefined) {
      const [drawnRunning, drawnFinished] = drawn.split("/");
      const finished = s.finished.length ? String(s.finished[0].job.id) : "";
      const ended = drawnRunning !== "" && String(running ?? "") !== drawnRunning;
      if (finished !== drawnFinished || ended) { es.close(); location.reload(); return; }
    } else if (wasRunning !== null && running !== wasRunning) { es.close(); location.reload(); return; }
    wasRunning = running;
    if (!r) return;
    const p = r.progress;
    const secs = Math.max(1, s.now - r.started);
    const rate = p.bytes_done / secs;
    const pct = p.bytes_total ? Math.floor((p.bytes_done * 100) / p.bytes_total) : null;
    const left = rate > 0 && p.bytes_total ? Math.round((p.bytes_total - p.bytes_done) / rate) : null;
    live.textContent = `Running: ${r.job.kind} of plan ${r.job.plan}: ${mb(p.bytes_done)} of ${mb(p.bytes_total)}` +
      (pct !== null ? ` (${pct} %)` : "") + `, ${mb(rate)}/s` + (left !== null ? `, about ${left} s left` : "") +
      `, ${p.volumes} volume(s) stored.`;
  });
}

function mb(b) { return (b / 1e6).toFixed(1) + " MB"; }
