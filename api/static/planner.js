// Planner: parameter form, background job with progress, map of the result, downloads.
"use strict";
async function download(job, name) {
  const blob = await (await Cordon.api("/api/v1/plans/" + job + "/" + name)).blob();
  return URL.createObjectURL(blob);
}
startPage(() => {
  const form = document.getElementById("plan-form");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { cameras: +form.cameras.value, radius_m: +form.radius_m.value, boundary_prefix: form.boundary_prefix.value,
                   anpr_budget: form.anpr_budget.value ? +form.anpr_budget.value : null };
    const state = document.getElementById("plan-state"), bar = document.getElementById("plan-progress");
    try {
      let job = await Cordon.json("/api/v1/plans", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      bar.hidden = false;
      while (job.state === "queued" || job.state === "running") {
        state.textContent = job.state + ": " + job.message; bar.value = job.progress;
        await new Promise(r => setTimeout(r, 1000));
        job = await Cordon.json("/api/v1/plans/" + job.job_id);
      }
      state.textContent = job.state + ": " + job.message; bar.value = job.progress;
      if (job.state !== "done") return;
      document.getElementById("plan-summary").textContent = JSON.stringify(job.summary, null, 2);
      const links = document.getElementById("downloads"); links.replaceChildren();
      for (const name of ["sites.geojson", "sites.csv", "map.html"]) links.append(el("a", { href: await download(job.job_id, name), download: name }, "Download " + name), " ");
      const frame = document.getElementById("plan-map"); frame.src = await download(job.job_id, "map.html"); frame.hidden = false; frame.style.height = "520px";
    } catch (err) { state.textContent = "error: " + err.message; }
  });
});
