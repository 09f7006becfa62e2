// gristmill review: the page's script. No framework, no network but this server; every value is shown as
// text (textContent), never parsed as HTML. Keyboard shortcuts are listed on the page (from /api/session).
"use strict";

const TOKEN = document.querySelector('meta[name="review-token"]').content;
const $ = (id) => document.getElementById(id);
const S = {session: null, queues: [], queue: null, page: 1, size: 25, items: [], total: 0, pages: 1, sel: 0,
           detail: null, mode: null, prompt: null,
           filter: {status: "todo", rule: "", where: "", q: "", min: "", max: "", sort: "order"}};

history.replaceState(null, "", "/");  // the token stays in the page and the cookie, not in the address bar

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function say(text, bad) {
  const s = $("status");
  s.textContent = text;
  s.className = bad ? "bad" : "good";
}

async function api(path, body) {
  const opts = {headers: {"X-Review-Token": TOKEN}, credentials: "same-origin"};
  if (body !== undefined) {
    opts.method = "POST";
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  const data = await r.json().catch(() => ({error: r.statusText}));
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}

function query() {
  const p = new URLSearchParams({queue: S.queue || "", page: S.page, size: S.size});
  for (const [k, v] of Object.entries(S.filter)) if (v !== "") p.set(k, v);
  return p;
}

// ---- loading ---------------------------------------------------------------------------------
async function loadQueues() {
  S.queues = (await api("/api/queues")).queues;
  const list = $("queue-list");
  list.replaceChildren();
  for (const q of S.queues) {
    const item = el("li", {class: q.queue === S.queue ? "current" : "", "data-queue": q.queue},
                    el("span", {class: "title", text: q.title}),
                    el("span", {class: "counts", text: `${q.todo} / ${q.total}`}));
    item.addEventListener("click", () => chooseQueue(q.queue));
    list.append(item);
  }
}

async function chooseQueue(queue) {
  S.queue = queue; S.page = 1; S.sel = 0;
  await loadQueues();
  await loadItems();
}

async function loadItems(keepKey) {
  if (!S.queue) return;
  const data = await api("/api/items?" + query());
  S.items = data.items; S.total = data.total; S.pages = data.pages; S.page = data.page;
  if (S.sel >= S.items.length) S.sel = Math.max(0, S.items.length - 1);
  renderItems();
  await loadDetail();
}

function statusText(it) {
  const parts = [];
  if (it.mine) parts.push("you: " + it.mine);
  else if (it.skipped) parts.push("skipped");
  for (const [r, a] of Object.entries(it.others || {})) parts.push(`${r}: ${a}`);
  if (it.sent_back) parts.push("sent back");
  return parts.join(", ") || "open";
}

function renderItems() {
  const body = $("items").querySelector("tbody");
  body.replaceChildren();
  S.items.forEach((it, i) => {
    const tr = el("tr", {class: i === S.sel ? "sel" : "", "data-key": it.key},
      el("td", {text: String((S.page - 1) * S.size + i + 1)}),
      el("td", {text: it.score === null ? "" : Number(it.score).toPrecision(3)}),
      el("td", {text: it.rule || ""}),
      el("td", {}, el("div", {class: "note", text: it.note || ""}), el("div", {class: "snippet", text: it.text})),
      el("td", {class: "state", text: statusText(it)}));
    tr.addEventListener("click", () => { S.sel = i; renderItems(); loadDetail(); });
    body.append(tr);
  });
  $("page-info").textContent = `page ${S.page} of ${S.pages} · ${S.total} matching`;
  $("matches").textContent = `${S.total} items match the filter`;
  const row = body.children[S.sel];
  if (row) row.scrollIntoView({block: "nearest"});
}

async function loadDetail() {
  const it = S.items[S.sel];
  S.mode = null;
  if (!it) { S.detail = null; $("detail").replaceChildren(el("p", {class: "muted", text: "Nothing to review here with this filter."})); return; }
  S.detail = await api("/api/items/" + it.iid);
  renderDetail();
}

// ---- the item --------------------------------------------------------------------------------
function marked(text, spans) {
  // the text with PII spans (code-point offsets) and redaction tags (<EMAIL_ADDRESS>) marked
  const chars = Array.from(text || "");
  const out = el("pre", {class: "text"});
  const cuts = (spans || []).filter((s) => s.end > s.start).sort((a, b) => a.start - b.start);
  let pos = 0;
  const plain = (s) => {
    const re = /<[A-Z][A-Z_]+>/g;
    let last = 0, m;
    while ((m = re.exec(s)) !== null) {
      out.append(s.slice(last, m.index), el("mark", {class: "tag", title: "redacted", text: m[0]}));
      last = m.index + m[0].length;
    }
    out.append(s.slice(last));
  };
  for (const s of cuts) {
    if (s.start < pos) continue;
    plain(chars.slice(pos, s.start).join(""));
    out.append(el("mark", {class: "pii", title: `${s.type} (${s.detector || ""})`,
                           text: chars.slice(s.start, s.end).join("")}));
    pos = s.end;
  }
  plain(chars.slice(pos).join(""));
  return out;
}

function diffView(d) {
  const left = el("pre", {class: "text"}), right = el("pre", {class: "text"});
  for (const [op, a, b] of d.diff) {
    if (op === "equal") { left.append(a + " "); right.append(b + " "); continue; }
    if (a) left.append(el("del", {text: a}), " ");
    if (b) right.append(el("ins", {text: b}), " ");
  }
  return el("div", {class: "pair"},
    el("div", {}, el("h4", {text: `kept: ${d.partner.key} (${d.partner.where})`}), left),
    el("div", {}, el("h4", {text: `this row: ${d.key}`}), right));
}

function renderDetail() {
  const d = S.detail, box = $("detail");
  const head = el("div", {class: "head"},
    el("h2", {text: d.key}),
    el("span", {class: "muted", text: ` ${d.where} · hash ${d.hash}${d.source ? " · " + d.source : ""}`}));
  const flags = el("ul", {class: "flags"});
  for (const q of d.queues) flags.append(el("li", {text: `${q.title}${q.rule ? " · " + q.rule : ""}${q.note ? ": " + q.note : ""}`}));
  const state = el("p", {class: "state", text: statusText(d) + (d.sent_back ? ` — sent back by ${d.sent_back.by}: ${d.sent_back.note || ""}` : "")});
  const parts = [head, flags, state];
  if (d.diff && d.partner) parts.push(diffView(d));
  const fields = el("div", {class: "fields", id: "fields"});
  const shown = ["text", "instruction", "input", "output", "prompt", "completion", "chosen", "rejected", "raw"];
  for (const f of shown) {
    const v = d.fields[f];
    if (typeof v !== "string") continue;
    if (S.mode === "edit" && d.editable.includes(f)) {
      fields.append(el("h4", {text: f}), el("textarea", {"data-field": f, rows: Math.min(16, 3 + v.length / 80)}));
      fields.lastChild.value = v;
    } else {
      fields.append(el("h4", {text: f}), marked(v, f === "text" ? d.spans : []));
    }
  }
  for (const f of ["messages", "conversations"]) {
    if (!Array.isArray(d.fields[f])) continue;
    fields.append(el("h4", {text: f}));
    for (const t of d.fields[f]) fields.append(el("pre", {class: "text turn", text: `${t.role || t.from}: ${t.content || t.value}`}));
  }
  if (d.label !== null && d.label !== undefined) fields.append(el("h4", {text: "label"}), el("p", {class: "label", text: String(d.label)}));
  if (Array.isArray(d.tokens)) fields.append(el("h4", {text: "tokens and tags"}), tagGrid(d));
  parts.push(fields);
  const others = Object.fromEntries(Object.entries(d.fields).filter(([k]) => !shown.includes(k) &&
    !["messages", "conversations", "tokens", "tags", "label", "id"].includes(k)));
  parts.push(el("details", {}, el("summary", {text: "other columns"}),
                el("pre", {class: "json", text: JSON.stringify(others, null, 1)})));
  const hist = el("ol", {class: "history"});
  for (const x of d.decisions) {
    hist.append(el("li", {}, el("span", {text: `${x.time.slice(0, 19)} ${x.reviewer}: ${x.action}${x.reason ? " — " + x.reason : ""}`}),
                       x.diff ? el("pre", {class: "diff", text: x.diff}) : null));
  }
  parts.push(el("h3", {text: "Decisions"}), d.decisions.length ? hist : el("p", {class: "muted", text: "none yet"}));
  if (S.mode === "edit") parts.splice(3, 0, el("p", {class: "hint", text: "Editing: Ctrl+Enter saves, Esc cancels."}));
  if (S.mode === "tags") parts.splice(3, 0, el("p", {class: "hint", text: "Tagging: Tab / Shift+Tab moves, Ctrl+Enter saves, Esc cancels."}));
  box.replaceChildren(...parts);
  const first = box.querySelector("textarea, input.tag");
  if (first && S.mode) first.focus();
}

function tagGrid(d) {
  const grid = el("div", {class: "tokens"});
  d.tokens.forEach((tok, i) => {
    const tag = (d.tags || [])[i] || "O";
    const cell = el("span", {class: "tok" + (tag !== "O" ? " ent" : "")}, el("span", {class: "word", text: String(tok)}));
    if (S.mode === "tags") {
      const input = el("input", {class: "tag", list: "tagset", size: 7, "data-i": i});
      input.value = tag;
      cell.append(input);
    } else {
      cell.append(el("span", {class: "tagname", text: tag}));
    }
    grid.append(cell);
  });
  return grid;
}

// ---- actions ---------------------------------------------------------------------------------
function ask(label, list) {
  return new Promise((resolve) => {
    const box = $("prompt"), input = $("prompt-input");
    $("prompt-label").textContent = label;
    input.value = "";
    input.setAttribute("list", list || "");
    box.hidden = false;
    S.prompt = (value) => { box.hidden = true; S.prompt = null; resolve(value); };
    input.focus();
  });
}

async function decide(action, extra) {
  const d = S.detail;
  if (!d) return;
  try {
    await api("/api/decide", Object.assign({iid: d.iid, hash: d.hash, action}, extra || {}));
    if (extra && extra.reason) rememberReason(extra.reason);
  } catch (e) { say(e.message, true); return; }
  S.mode = null;
  await loadQueues();
  await loadItems();
  say(`${action}: ${d.key}`);  // after the reload: the page shows the next item when this appears
}

function rememberReason(reason) {
  const list = $("reasons");
  if (![...list.options].some((o) => o.value === reason)) list.append(el("option", {value: reason}));
}

async function reject() {
  const reason = await ask("Reason for rejecting:", "reasons");
  if (reason !== null && reason.trim()) await decide("reject", {reason});
}

async function saveEdit() {
  const after = {};
  for (const t of document.querySelectorAll("#fields textarea")) {
    if (t.value !== S.detail.fields[t.dataset.field]) after[t.dataset.field] = t.value;
  }
  if (!Object.keys(after).length) { say("nothing changed", true); return; }
  await decide("edit", {after});
}

async function saveTags() {
  const tags = [...document.querySelectorAll("#fields input.tag")].map((i) => i.value.trim() || "O");
  await decide("label", {tags});
}

async function bulk(action) {
  let reason = null;
  if (action === "reject") {
    reason = await ask(`Reason for rejecting all ${S.total} matching items:`, "reasons");
    if (reason === null || !reason.trim()) return;
  } else {
    const ok = await ask(`Accept all ${S.total} matching items? Type yes:`, "");
    if (ok === null || ok.trim().toLowerCase() !== "yes") return;
  }
  try {
    const body = Object.assign({queue: S.queue, action, reason}, S.filter);
    var r = await api("/api/bulk", body);
  } catch (e) { say(e.message, true); return; }
  await loadQueues();
  await loadItems();
  say(`${action}: ${r.decided} items`);
}

async function figures() {
  const box = $("figures");
  if (!box.hidden) { box.hidden = true; return; }
  const f = await api("/api/figures");
  const e = f.error_rate, a = f.agreement;
  const pct = (v) => v === null || v === undefined ? "—" : (100 * v).toFixed(1) + "%";
  const k = (v) => v === null || v === undefined ? "undefined" : v.toFixed(3);
  const rows = [
    ["decisions", `${f.decisions} by ${f.reviewers.join(", ") || "nobody"}`],
    ["pending", `${f.pending} of ${f.queued} queued rows`],
    ["error rate (acceptance sample)", e.n ? `${pct(e.value)} (95% ${pct(e.ci95[0])} – ${pct(e.ci95[1])}), ${e.errors} of ${e.n} reviewed` : "no sample row reviewed"],
    ["agreement", a.items ? `Fleiss κ ${k(a.fleiss.kappa)} on ${a.fleiss.items} rows; ` + a.cohen.map((p) => `Cohen κ ${p.a}/${p.b} ${k(p.kappa)} (${p.items})`).join("; ") : "no shared rows"],
  ];
  for (const [q, p] of Object.entries(f.precision)) rows.push([`precision · ${q}`, `${pct(p.value)} (${p.k} of ${p.n})`]);
  box.replaceChildren(el("h2", {text: "Figures (g closes)"}),
    el("table", {}, ...rows.map(([a1, b1]) => el("tr", {}, el("th", {text: a1}), el("td", {text: b1})))));
  box.hidden = false;
}

function cycle(key, values) {
  const i = values.indexOf(S.filter[key]);
  S.filter[key] = values[(i + 1) % values.length];
  $("f-" + key).value = S.filter[key];
  S.page = 1; S.sel = 0;
  return loadItems();
}

function move(delta) {
  const next = S.sel + delta;
  if (next < 0 && S.page > 1) { S.page -= 1; S.sel = S.size - 1; return loadItems(); }
  if (next >= S.items.length && S.page < S.pages) { S.page += 1; S.sel = 0; return loadItems(); }
  S.sel = Math.max(0, Math.min(S.items.length - 1, next));
  renderItems();
  return loadDetail();
}

function nextQueue(delta) {
  const i = S.queues.findIndex((q) => q.queue === S.queue);
  const q = S.queues[(i + delta + S.queues.length) % S.queues.length];
  return q ? chooseQueue(q.queue) : null;
}

const KEYS = {
  "j": () => move(1), "ArrowDown": () => move(1), "k": () => move(-1), "ArrowUp": () => move(-1),
  "n": () => { if (S.page < S.pages) { S.page += 1; S.sel = 0; return loadItems(); } },
  "p": () => { if (S.page > 1) { S.page -= 1; S.sel = 0; return loadItems(); } },
  "]": () => nextQueue(1), "[": () => nextQueue(-1),
  "a": () => decide("accept"), "r": reject, "s": () => decide("skip"),
  "e": () => { if (S.detail && S.detail.editable.length) { S.mode = "edit"; renderDetail(); } else say("nothing to edit here", true); },
  "t": () => { if (S.detail && Array.isArray(S.detail.tokens)) { S.mode = "tags"; renderDetail(); } else say("this row has no tokens", true); },
  "l": async () => { const v = await ask("New label:", "labels"); if (v !== null && v.trim()) await decide("label", {label: v.trim()}); },
  "b": async () => { const v = await ask("Send back: note for the next reviewer (optional):", ""); if (v !== null) await decide("send_back", {reason: v}); },
  "/": () => $("f-q").focus(),
  "f": () => cycle("status", S.session.statuses), "o": () => cycle("sort", S.session.sorts),
  "A": () => bulk("accept"), "R": () => bulk("reject"), "g": figures,
  "?": () => $("keys").scrollIntoView(),
};

document.addEventListener("keydown", async (ev) => {
  const t = ev.target;
  const typing = t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement;
  if (S.prompt) {
    if (ev.key === "Enter") { ev.preventDefault(); S.prompt($("prompt-input").value); }
    else if (ev.key === "Escape") { ev.preventDefault(); S.prompt(null); }
    return;
  }
  if (S.mode) {
    if (ev.key === "Escape") { ev.preventDefault(); S.mode = null; renderDetail(); }
    else if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); await (S.mode === "edit" ? saveEdit() : saveTags()); }
    return;
  }
  if (typing) {
    if (ev.key === "Escape" || ev.key === "Enter") { ev.preventDefault(); t.blur(); await applyFilters(); }
    return;
  }
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const handler = KEYS[ev.key];
  if (!handler) return;
  ev.preventDefault();
  if (S.busy) { say("busy: one moment", true); return; }  // a key during a reload would act on the old item
  S.busy = true;
  document.body.dataset.busy = "1";
  try { await handler(); } catch (e) { say(e.message, true); } finally { S.busy = false; delete document.body.dataset.busy; }
});

async function applyFilters() {
  for (const k of Object.keys(S.filter)) S.filter[k] = $("f-" + k).value.trim();
  S.page = 1; S.sel = 0;
  await loadItems();
}

async function init() {
  S.session = await api("/api/session");
  const s = S.session.settings;
  $("settings").textContent = `${s.per_item} reviewer(s) per row${s.blind ? ", blind" : ""}`;
  $("keys").replaceChildren(...S.session.shortcuts.flatMap(([k, what]) => [el("dt", {}, el("kbd", {text: k})), el("dd", {text: what})]));
  for (const v of S.session.statuses) $("f-status").append(el("option", {value: v, text: v}));
  for (const v of S.session.sorts) $("f-sort").append(el("option", {value: v, text: v.replace("_", " ")}));
  for (const v of S.session.label_options) $("labels").append(el("option", {value: v}));
  for (const v of new Set(["O", ...S.session.tag_options])) $("tagset").append(el("option", {value: v}));
  for (const id of ["f-status", "f-where", "f-sort"]) $(id).addEventListener("change", applyFilters);
  $("prev").addEventListener("click", KEYS.p);
  $("next").addEventListener("click", KEYS.n);
  $("bulk-accept").addEventListener("click", () => bulk("accept"));
  $("bulk-reject").addEventListener("click", () => bulk("reject"));
  await loadQueues();
  const first = S.queues.find((q) => q.todo > 0) || S.queues[0];
  if (first) await chooseQueue(first.queue); else $("detail").replaceChildren(el("p", {text: "This run has nothing to review."}));
  document.body.dataset.ready = "1";
}

init().catch((e) => say(e.message, true));
