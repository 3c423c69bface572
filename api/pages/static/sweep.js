// One sweep's page: the objective of every trial by epoch, overlaid on one uPlot chart, and the
// trials' table; both refreshed while the sweep runs.
(() => {
  "use strict";
  const boot = JSON.parse(document.getElementById("sweep-data").textContent);
  const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442"];
  const RUNNING = new Set(["queued", "running"]);
  const box = document.getElementById("curves");
  const histories = new Map(); // job id -> [values], kept once the trial has ended
  let plot = null;

  async function json(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`${url}: ${response.status}`);
    return response.json();
  }

  function cell(text, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    return td;
  }

  function renderTable(sweep) {
    const body = document.querySelector("#trials tbody");
    const names = Object.keys(sweep.parameters);
    body.replaceChildren(...sweep.trials.map((t) => {
      const row = document.createElement("tr");
      row.dataset.trial = t.number;
      const head = document.createElement("th");
      head.scope = "row";
      head.textContent = t.number;
      const state = document.createElement("td");
      state.innerHTML = `<span class="state"></span>`;
      state.firstChild.textContent = t.status;
      state.firstChild.classList.add(`state-${t.status}`);
      const job = document.createElement("td");
      if (t.job) {
        const link = document.createElement("a");
        link.href = `/jobs/${t.job}`;
        link.textContent = t.job.slice(0, 8);
        job.appendChild(link);
      }
      row.append(head, state, cell(t.value == null ? "–" : t.value.toPrecision(4), "num"),
        cell(String(t.epochs), "num"), ...names.map((n) => cell(JSON.stringify(t.params[n]))), job);
      return row;
    }));
    const state = document.getElementById("state");
    state.textContent = sweep.status;
    state.className = `state state-${sweep.status}`;
  }

  async function curves(sweep) {
    const trials = sweep.trials.filter((t) => t.job);
    await Promise.all(trials.map(async (t) => {
      if (histories.has(t.job) && !RUNNING.has(t.status)) return;
      try {
        const job = await json(`/v1/jobs/${t.job}`);
        histories.set(t.job, job.history[boot.metric] || []);
      } catch (error) { /* deleted meanwhile: drawn without it */ }
    }));
    const longest = Math.max(0, ...trials.map((t) => (histories.get(t.job) || []).length));
    const data = [Array.from({ length: longest }, (_, i) => i + 1)];
    const series = [{ label: "epoch" }];
    trials.forEach((t, index) => {
      const values = histories.get(t.job) || [];
      data.push(data[0].map((_, i) => (i < values.length ? values[i] : null)));
      series.push({
        label: `#${t.number} ${t.status}`,
        stroke: PALETTE[index % PALETTE.length],
        dash: t.status === "pruned" ? [4, 4] : undefined,
        width: sweep.best && sweep.best.number === t.number ? 3 : 1.5,
        spanGaps: false,
      });
    });
    if (plot) plot.destroy();
    if (typeof uPlot === "undefined" || longest === 0) return;
    plot = new uPlot({
      width: Math.max(box.clientWidth, 280), height: 320, series,
      axes: [{ label: "epoch" }, { label: boot.metric }], scales: { x: { time: false } },
    }, data, box);
  }

  async function refresh() {
    let sweep;
    try {
      sweep = await json(`/v1/sweeps/${boot.id}`);
    } catch (error) {
      return;
    }
    renderTable(sweep);
    await curves(sweep);
    const busy = RUNNING.has(sweep.status) || sweep.trials.some((t) => RUNNING.has(t.status));
    if (busy) setTimeout(refresh, 2000);
  }

  const cancel = document.getElementById("cancel-sweep");
  if (cancel) {
    cancel.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!window.confirm(cancel.dataset.question)) return;
      await fetch(cancel.action, { method: "POST" });
      cancel.remove();
      refresh();
    });
  }
  refresh();
})();
