// The jobs list, live: one event stream for the whole tab (/v1/events), never one per row, so
// the browser's six connections per origin stay free. Rows of this page are updated in place;
// a job submitted since the page loaded is announced with a link to see it.
(() => {
  "use strict";
  const rows = new Map([...document.querySelectorAll("#jobs tr[data-job]")].map((r) => [r.dataset.job, r]));
  const notice = document.getElementById("list-notice");
  const FINAL = new Set(["succeeded", "failed", "cancelled", "pruned"]);
  const fresh = new Set();

  function cell(row, name) {
    return row.querySelector(`[data-cell="${name}"]`);
  }

  function number(value) {
    return typeof value === "number" && Number.isFinite(value) ? value.toPrecision(4).replace(/\.?0+$/, "") : "–";
  }

  function duration(seconds) {
    if (seconds == null) return "–";
    if (seconds < 60) return `${seconds.toFixed(1)} s`;
    const minutes = Math.floor(seconds / 60);
    return minutes < 60 ? `${minutes} min ${String(Math.floor(seconds % 60)).padStart(2, "0")} s`
      : `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
  }

  const source = new EventSource("/v1/events");
  source.addEventListener("status", (event) => {
    const data = JSON.parse(event.data);
    const row = rows.get(data.job);
    if (!row) {
      if (data.status === "queued" && !fresh.has(data.job)) {
        fresh.add(data.job);
        notice.innerHTML = `<a href="${location.pathname}${location.search}"></a>`;
        notice.firstChild.textContent = `${fresh.size} new job${fresh.size === 1 ? "" : "s"} since this page loaded: show`;
      }
      return;
    }
    row.dataset.status = data.status;
    const state = cell(row, "state");
    state.replaceChildren(Object.assign(document.createElement("span"), {
      className: `state state-${data.status}`, textContent: data.status,
    }));
    if (FINAL.has(data.status)) {
      row.querySelectorAll("form[action$='/cancel']").forEach((form) => form.remove());
      cell(row, "eta").textContent = "–";
    }
  });
  source.addEventListener("progress", (event) => {
    const data = JSON.parse(event.data);
    const row = rows.get(data.job);
    if (!row || !data.epochs) return;
    const percent = Math.round((100 * data.epoch) / data.epochs);
    cell(row, "progress").textContent = `epoch ${data.epoch}/${data.epochs} (${percent}%)`;
    cell(row, "eta").textContent = duration(data.eta_s);
  });
  source.addEventListener("epoch", (event) => {
    const data = JSON.parse(event.data);
    const row = rows.get(data.job);
    if (!row) return;
    cell(row, "progress").textContent = `epoch ${data.epoch}/${data.epochs} (${Math.round((100 * data.epoch) / data.epochs)}%)`;
    cell(row, "loss").textContent = number(data.logs.loss);
    if ("val_loss" in data.logs) cell(row, "val_loss").textContent = number(data.logs.val_loss);
  });
})();
