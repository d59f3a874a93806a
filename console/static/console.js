// Wulin console: live updates over server-sent events. No framework, no build step.
"use strict";

function followJob(pre) {
  const result = document.getElementById("result");
  const es = new EventSource(pre.dataset.events);
  pre.textContent = "";
  es.addEventListener("step", (ev) => { pre.textContent += JSON.parse(ev.data) + "\n"; });
  es.addEventListener("done", (ev) => {
    const d = JSON.parse(ev.data);
    result.textContent = nameOf("state-names", d.state) + ": " + (d.message || "");
    result.className = "result " + (d.ok ? "ok" : "error");
    result.dataset.state = d.state;
    es.close();
  });
}

// Translated names come from a <template> the server rendered in the page's language.
function nameOf(templateId, key) {
  const names = document.getElementById(templateId);
  const el = names ? names.content.querySelector('[data-name="' + key + '"]') : null;
  return el ? el.textContent : key;
}

function when(iso) {
  if (!iso) { return "-"; }
  return new Date(iso).toLocaleString(document.documentElement.lang, { timeZone: "UTC" }) + " UTC";
}

function followCockpit(box) {
  const colours = { plan: "#2e9e44", fallback: "#e5b400", alarm: "#c8342b", offline: "#777" };
  const es = new EventSource(box.dataset.events);
  es.addEventListener("status", (ev) => {
    const data = JSON.parse(ev.data);
    const table = document.getElementById("signals");
    for (const s of data.signals) {
      const dot = document.getElementById("sig-" + s.signal_id);
      if (dot) { dot.querySelector("circle:not(.queue)").setAttribute("fill", colours[s.mode] || "#999"); }
      let row = table.querySelector('tr[data-signal="' + CSS.escape(s.signal_id) + '"]');
      if (!row) {
        row = table.insertRow(-1);
        row.dataset.signal = s.signal_id;
        for (let i = 0; i < 7; i++) { row.insertCell(-1); }
      }
      const cells = [s.signal_id, nameOf("mode-names", s.mode), s.pattern === null ? "-" : String(s.pattern),
                     s.health, when(s.last_contact), s.live_plan || "-", s.address];
      cells.forEach((text, i) => { row.cells[i].textContent = text; });
      row.cells[1].className = "mode " + s.mode;
    }
    if (data.live) { showLive(data.live); }
    box.dataset.version = data.version;
  });
}

// The live simulation: status line, a row per signal (queue, coloured signal state) and on the
// map a red disc that grows with the queue.
function showLive(live) {
  const status = document.getElementById("live-status");
  const kind = live.error ? "error" : live.done ? "done" : live.starting ? "starting" : "running";
  let text = nameOf("live-names", kind);
  if (live.time !== undefined && live.time !== null) {
    const t = Math.floor(live.time);
    const hms = [t / 3600, (t % 3600) / 60, t % 60].map((v) => String(Math.floor(v)).padStart(2, "0")).join(":");
    text += " · " + nameOf("live-names", "time") + " " + hms;
  }
  if (live.error || (typeof live.done === "string")) { text += " · " + (live.error || live.done); }
  status.textContent = text;
  status.dataset.state = kind;
  if (!live.signals) { return; }
  const table = document.getElementById("live");
  for (const [sid, s] of Object.entries(live.signals)) {
    let row = table.querySelector('tr[data-signal="' + CSS.escape(sid) + '"]');
    if (!row) {
      row = table.insertRow(-1);
      row.dataset.signal = sid;
      for (let i = 0; i < 3; i++) { row.insertCell(-1); }
      row.cells[0].textContent = sid;
    }
    row.cells[1].textContent = String(s.queue);
    row.cells[2].replaceChildren(...Array.from(s.state, (c) => {
      const span = document.createElement("span");
      span.className = "light light-" + c.toLowerCase();
      span.textContent = c;
      return span;
    }));
    queueDisc(sid, s.queue);
  }
}

function queueDisc(sid, queue) {
  const dot = document.getElementById("sig-" + sid);
  if (!dot) { return; }
  let disc = dot.querySelector("circle.queue");
  if (!disc) {
    const c = dot.querySelector("circle:not(.queue)");
    disc = document.createElementNS("http://www.w3.org/2000/svg", "circle");
    disc.setAttribute("class", "queue");
    disc.setAttribute("cx", c.getAttribute("cx"));
    disc.setAttribute("cy", c.getAttribute("cy"));
    dot.insertBefore(disc, c);
  }
  disc.setAttribute("r", String(9 + 4 * Math.sqrt(queue)));
  disc.dataset.queue = String(queue);
}

document.addEventListener("DOMContentLoaded", () => {
  const pre = document.getElementById("steps");
  if (pre && pre.dataset.running) { followJob(pre); }
  const box = document.querySelector(".cockpit[data-events]");
  if (box) { followCockpit(box); }
});
