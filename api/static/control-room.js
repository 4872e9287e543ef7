// Control room: live alerts over SSE, priority colour and sound, crop, map, acknowledge / escalate / close.
"use strict";
const rows = new Map();
let map = null, marker = null, audio = null;

function beep(priority) {
  try {
    audio = audio || new AudioContext();
    const osc = audio.createOscillator(); const gain = audio.createGain();
    osc.frequency.value = priority === 1 ? 1200 : 800; gain.gain.value = 0.1;
    osc.connect(gain).connect(audio.destination); osc.start(); osc.stop(audio.currentTime + (priority === 1 ? 0.6 : 0.2));
  } catch (e) { /* no audio device: the visual flash still shows */ }
}

async function cropImage(hit) {
  if (!hit.has_crop) return el("span", {}, "no crop");
  const img = el("img", { class: "crop", alt: "plate crop " + hit.plate_read });
  Cordon.api("/api/v1/hits/" + hit.alert_id + "/crop.jpg").then(r => r.blob()).then(b => { img.src = URL.createObjectURL(b); }).catch(() => {});
  return img;
}

function showOnMap(hit) {
  document.getElementById("selected").textContent = hit.plate_read + " at " + (hit.camera_name || hit.camera_id) + (hit.road ? " on " + hit.road : "") + (hit.direction ? ", travelling " + hit.direction : "");
  if (!window.L || hit.latitude == null) return;
  if (!map) { map = L.map("map"); }
  map.setView([hit.latitude, hit.longitude], 15);
  if (marker) marker.remove();
  marker = L.circleMarker([hit.latitude, hit.longitude], { radius: 10, color: "#d00000" }).addTo(map).bindPopup(hit.plate_read).openPopup();
}

async function act(hit, action) {
  let outcome = "";
  if (action === "close") { outcome = prompt("Outcome (e.g. stopped, no further action):") || ""; if (!outcome) return; }
  try {
    const updated = await Cordon.json("/api/v1/hits/" + hit.alert_id + "/actions", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ action, outcome }) });
    render(updated, false);
  } catch (err) { alert(err.message); }
}

async function render(hit, fresh) {
  const tbody = document.querySelector("#hits tbody");
  const buttons = el("td", {});
  if (hit.status === "new") buttons.append(el("button", { class: "ack", onclick: () => act(hit, "acknowledge") }, "Acknowledge"));
  if (hit.status === "new" || hit.status === "acknowledged") buttons.append(el("button", { onclick: () => act(hit, "escalate") }, "Escalate"));
  if (hit.status !== "closed") buttons.append(el("button", { onclick: () => act(hit, "close") }, "Close"));
  const row = el("tr", { class: "p" + hit.priority + " " + hit.status + (fresh ? " flash" : ""), "data-alert": hit.alert_id, "data-plate": hit.plate_read, onclick: () => showOnMap(hit) },
    el("td", {}, "P" + hit.priority),
    el("td", {}, el("span", { class: "plate" }, hit.plate_read), hit.plate_read !== hit.hotlist_plate ? " (listed " + hit.hotlist_plate + ", " + hit.match_kind + ")" : ""),
    el("td", {}, await cropImage(hit)),
    el("td", {}, hit.hotlist + ": " + hit.category, el("br"), el("small", {}, hit.information)),
    el("td", {}, el("strong", {}, hit.action)),
    el("td", {}, hit.camera_name || hit.camera_id, el("br"), el("small", {}, (hit.road || "") + (hit.direction ? " " + hit.direction : ""))),
    el("td", {}, new Date(hit.captured_at).toLocaleTimeString() + (hit.sighting > 1 ? " (sighting " + hit.sighting + ")" : "")),
    el("td", { class: "status" }, hit.status + (hit.handled_by ? " by " + hit.handled_by : "") + (hit.outcome ? ": " + hit.outcome : "")),
    buttons);
  const old = rows.get(hit.alert_id);
  if (old) old.replaceWith(row); else tbody.prepend(row);
  rows.set(hit.alert_id, row);
  if (fresh && hit.status === "new") { beep(hit.priority); if (hit.priority <= 2) showOnMap(hit); }
}

startPage(async () => {
  const state = document.getElementById("stream-state");
  const recent = await Cordon.json("/api/v1/hits?limit=50");
  let last = 0;
  for (const hit of recent.items.reverse()) { await render(hit, false); last = Math.max(last, hit.seq); }
  for (;;) {
    try {
      state.textContent = "live"; state.className = "badge up";
      await Cordon.stream("/api/v1/hits/stream?after=" + last, async (event, data) => {
        if (event !== "hit") return;
        const hit = JSON.parse(data); last = Math.max(last, hit.seq); await render(hit, true);
      });
    } catch (err) { /* dropped: reconnect below */ }
    state.textContent = "reconnecting"; state.className = "badge down";
    await new Promise(r => setTimeout(r, 2000));
  }
});
