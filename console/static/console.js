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
      if (dot) { dot.querySelector("circle").setAttribute("fill", colours[s.mode] || "#999"); }
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
    box.dataset.version = data.version;
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const pre = document.getElementById("steps");
  if (pre && pre.dataset.running) { followJob(pre); }
  const box = document.querySelector(".cockpit[data-events]");
  if (box) { followCockpit(box); }
});
