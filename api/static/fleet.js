// Fleet: boxes, cameras, last heartbeat, spool depth, fps, and "camera down" / "box silent" alerts.
"use strict";
async function refresh() {
  const fleet = await Cordon.json("/api/v1/fleet");
  const alerts = document.getElementById("alerts"); alerts.replaceChildren();
  for (const a of fleet.alerts) alerts.append(el("li", { class: "error" }, a.kind.replace("_", " ") + ": " + a.box_id + (a.camera_id ? " / " + a.camera_id : "") + " — " + a.detail));
  if (!fleet.alerts.length) alerts.append(el("li", {}, "none"));
  const tbody = document.querySelector("#boxes tbody"); tbody.replaceChildren();
  for (const b of fleet.boxes) {
    const cams = el("td", {});
    for (const c of b.cameras) cams.append(el("div", {}, el("span", { class: "badge " + c.state }, c.camera_id + " " + c.state), " " + c.fps.toFixed(1) + " fps, " + c.processed_fps.toFixed(1) + " processed, " + c.frames_dropped + " dropped, " + c.reconnects + " reconnects"));
    tbody.append(el("tr", { "data-box": b.box_id }, el("td", {}, b.box_id + (b.registered ? "" : " (unregistered)")),
      el("td", {}, b.last_heartbeat ? new Date(b.last_heartbeat).toLocaleString() + " (" + Math.round(b.silent_s) + " s ago)" : "never"),
      el("td", {}, b.spool_depth ?? "-"), el("td", {}, b.spool_dropped ?? "-"), cams));
  }
  document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
}
startPage(async () => { for (;;) { try { await refresh(); } catch (e) { document.getElementById("updated").textContent = e.message; } await new Promise(r => setTimeout(r, 5000)); } });
