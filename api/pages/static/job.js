// One job's page: its events stream in over one EventSource; each epoch becomes a row of
// #epochs and points of the charts. The view (x-axis, log scales, smoothing, zoom, compared
// jobs) lives in the URL, so a reload or a reconnect shows the same thing.
(() => {
  "use strict";
  const boot = JSON.parse(document.getElementById("job-data").textContent);
  // Okabe–Ito: told apart with every common kind of colour blindness.
  const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442"];
  const FINAL = new Set(boot.final);
  const ID = /^[A-Za-z0-9_-]+$/;

  const params = new URLSearchParams(location.search);
  const view = {
    x: ["epoch", "step", "time"].includes(params.get("x")) ? params.get("x") : "epoch",
    smooth: Math.min(Math.max(parseFloat(params.get("smooth")) || 0, 0), 0.95),
    log: new Set((params.get("log") || "").split(",").filter(Boolean)),
    zoom: (params.get("zoom") || "").split(",").map(Number).filter(Number.isFinite),
    compare: (params.get("compare") || "").split(",").filter((id) => ID.test(id) && id !== boot.id),
  };
  if (view.zoom.length !== 2 || !(view.zoom[0] < view.zoom[1])) view.zoom = [];

  function saveView() {
    const out = new URLSearchParams();
    if (view.x !== "epoch") out.set("x", view.x);
    if (view.smooth) out.set("smooth", String(view.smooth));
    if (view.log.size) out.set("log", [...view.log].sort().join(","));
    if (view.zoom.length) out.set("zoom", view.zoom.map((v) => +v.toPrecision(6)).join(","));
    if (view.compare.length) out.set("compare", view.compare.join(","));
    const query = out.toString();
    history.replaceState(null, "", query ? `?${query}` : location.pathname);
  }

  // ---- runs: each job's epochs and batches, with the three x coordinates of each point
  function newRun(id, index) {
    return { id, index, points: [], stepsDone: 0, secondsDone: 0, seen: 0, lastEvent: Date.now() };
  }
  const runs = [newRun(boot.id, 0), ...view.compare.map((id, i) => newRun(id, i + 1))];

  function xOf(point) {
    return view.x === "step" ? point.step : view.x === "time" ? point.time : point.epoch;
  }

  function addEpoch(run, data) {
    if (data.epoch <= run.seen) return null; // a replayed event already shown
    run.seen = data.epoch;
    const steps = data.steps ?? 0;
    run.stepsDone += steps;
    run.secondsDone += data.seconds ?? 0;
    const point = {
      epoch: data.epoch, step: run.stepsDone, time: run.secondsDone, logs: data.logs, batch: false,
    };
    run.points.push(point);
    return point;
  }

  function addBatch(run, data) {
    if (!data.steps || !data.step || data.loss == null || data.epoch < run.seen) return null;
    const point = {
      epoch: data.epoch + data.step / data.steps,
      step: run.stepsDone + data.step,
      time: data.elapsed_s ?? run.secondsDone,
      logs: { loss: data.loss },
      batch: true,
    };
    run.points.push(point);
    return point;
  }

  // ---- charts: one per metric, train solid and validation dashed
  const chartsBox = document.getElementById("charts");
  const charts = new Map(); // base name -> {plot, series: [[run, key, smoothed]], data, ema}
  const css = getComputedStyle(document.body);
  const ink = () => css.getPropertyValue("--ink").trim() || "#222";
  const grid = () => css.getPropertyValue("--grid").trim() || "#8884";

  function baseOf(key) {
    return key.startsWith("val_") ? key.slice(4) : key;
  }

  function seriesFor(base) {
    const out = [];
    for (const run of runs) {
      for (const key of [base, `val_${base}`]) {
        if (!run.points.some((p) => key in p.logs)) continue;
        out.push([run, key, false]);
        if (view.smooth) out.push([run, key, true]);
      }
    }
    return out;
  }

  function smoothing(previous, value) {
    if (value == null || !Number.isFinite(value)) return previous;
    return previous == null ? value : view.smooth * previous + (1 - view.smooth) * value;
  }

  function columns(base, series) {
    const rows = [];
    for (const run of runs) for (const p of run.points) rows.push([run, p]);
    rows.sort((a, b) => xOf(a[1]) - xOf(b[1]));
    const data = [rows.map(([, p]) => xOf(p)), ...series.map(() => [])];
    const ema = series.map(() => null);
    for (const [run, p] of rows) {
      series.forEach(([r, key, smoothed], i) => {
        let value = r === run && key in p.logs ? p.logs[key] : null;
        if (smoothed && value != null) value = ema[i] = smoothing(ema[i], value);
        data[i + 1].push(value);
      });
    }
    return { data, ema };
  }

  function chartWidth(box) {
    return Math.max(box.clientWidth, 280);
  }

  function buildChart(base) {
    const old = charts.get(base);
    if (old) old.plot.destroy();
    let box = document.getElementById(`chart-${base}`);
    if (!box) {
      box = document.createElement("figure");
      box.id = `chart-${base}`;
      box.className = "chart";
      box.innerHTML = `<figcaption><span class="metric"></span>
        <label><input type="checkbox" class="log"> log scale</label></figcaption><div></div>`;
      box.querySelector(".metric").textContent = base;
      const toggle = box.querySelector(".log");
      toggle.addEventListener("change", () => {
        if (toggle.checked) view.log.add(base); else view.log.delete(base);
        saveView();
        buildChart(base);
      });
      chartsBox.appendChild(box);
    }
    box.querySelector(".log").checked = view.log.has(base);
    const series = seriesFor(base);
    const { data, ema } = columns(base, series);
    const uSeries = [{ label: view.x }];
    for (const [run, key, smoothed] of series) {
      const colour = PALETTE[run.index % PALETTE.length];
      const faint = view.smooth && !smoothed;
      uSeries.push({
        label: `${run.index ? run.id + " " : ""}${key}${smoothed ? " (smoothed)" : ""}`,
        stroke: faint ? `${colour}55` : colour,
        width: faint ? 1 : 2,
        dash: key.startsWith("val_") ? [6, 4] : undefined,
        spanGaps: true,
        points: { show: false },
      });
    }
    const axis = { stroke: ink(), grid: { stroke: grid() }, ticks: { stroke: grid() } };
    const plot = new uPlot(
      {
        width: chartWidth(box),
        height: 220,
        series: uSeries,
        scales: { x: { time: false }, y: view.log.has(base) ? { distr: 3 } : {} },
        axes: [{ ...axis, label: view.x === "time" ? "seconds" : view.x }, axis],
        hooks: { setSelect: [zoomed] },
        cursor: { drag: { x: true, y: false } },
      },
      data,
      box.querySelector("div"),
    );
    if (view.zoom.length) plot.setScale("x", { min: view.zoom[0], max: view.zoom[1] });
    charts.set(base, { plot, series, data, ema });
  }

  function zoomed(plot) {
    if (plot.select.width < 2) return;
    const min = plot.posToVal(plot.select.left, "x");
    const max = plot.posToVal(plot.select.left + plot.select.width, "x");
    view.zoom = [min, max];
    saveView();
    for (const { plot: other } of charts.values()) if (other !== plot) other.setScale("x", { min, max });
  }

  function resetZoom() {
    view.zoom = [];
    saveView();
    for (const base of charts.keys()) buildChart(base);
  }

  function rebuildAll() {
    const bases = new Set();
    for (const run of runs) for (const p of run.points) for (const k of Object.keys(p.logs)) bases.add(baseOf(k));
    for (const base of bases) buildChart(base);
  }

  // The fast path: a point of the main run, right of everything drawn, with known series.
  function appendPoint(run, point) {
    for (const key of Object.keys(point.logs)) {
      const chart = charts.get(baseOf(key));
      const known = chart && chart.series.some(([r, k]) => r === run && k === key);
      const x = xOf(point);
      const xs = chart ? chart.data[0] : [];
      if (!known || (xs.length && x < xs[xs.length - 1])) {
        buildChart(baseOf(key));
        continue;
      }
      if (xs[xs.length - 1] === x && chart.lastPoint === point) continue; // done for a sibling key
      xs.push(x);
      chart.series.forEach(([r, k, smoothed], i) => {
        let value = r === run && k in point.logs ? point.logs[k] : null;
        if (smoothed && value != null) value = chart.ema[i] = smoothing(chart.ema[i], value);
        chart.data[i + 1].push(value);
      });
      chart.lastPoint = point;
      chart.plot.setData(chart.data, !view.zoom.length);
    }
  }
  window.remotefitChart = { appendPoint, runs, charts }; // for bench/ measurements

  // ---- the epoch table, the status line and the warnings
  const table = document.getElementById("epochs");
  const status = document.getElementById("status-line");
  const warnings = document.getElementById("warnings");

  function headerKeys() {
    return [...table.tHead.rows[0].cells].slice(1).map((c) => c.textContent);
  }

  function format(value) {
    if (value == null) return "–";
    return typeof value === "number" && Number.isFinite(value) ? value.toPrecision(4).replace(/\.?0+$/, "") : String(value);
  }

  function addRow(data) {
    if (table.tBodies[0].querySelector(`tr[data-epoch="${data.epoch}"]`)) return;
    let keys = headerKeys();
    if (!keys.length) {
      keys = Object.keys(data.logs);
      for (const key of keys) {
        const th = document.createElement("th");
        th.scope = "col";
        th.className = "num";
        th.textContent = key;
        table.tHead.rows[0].appendChild(th);
      }
    }
    const row = table.tBodies[0].insertRow();
    row.dataset.epoch = data.epoch;
    const head = document.createElement("th");
    head.scope = "row";
    head.textContent = data.epoch;
    row.appendChild(head);
    for (const key of keys) {
      const cell = row.insertCell();
      cell.className = "num";
      cell.textContent = format(data.logs[key]);
    }
  }

  const warned = new Set();
  function warn(code, text) {
    if (warned.has(code)) return;
    warned.add(code);
    const item = document.createElement("li");
    item.textContent = text;
    warnings.appendChild(item);
  }

  function checkEpoch(run) {
    const last = run.points.filter((p) => !p.batch);
    const latest = last[last.length - 1].logs;
    for (const [key, value] of Object.entries(latest)) {
      if (value == null || (typeof value === "number" && !Number.isFinite(value)) || value === "NaN") {
        warn(`nan-${key}`, `${key} is ${value}: training has diverged (try a lower learning rate).`);
      }
    }
    const val = last.slice(-4).map((p) => p.logs.val_loss);
    if (val.length === 4 && val.every((v, i) => i === 0 || v > val[i - 1])) {
      warn("val-rising", "val_loss has risen for 3 epochs in a row: the model may be overfitting.");
    }
  }

  function setState(text) {
    const state = document.getElementById("state");
    state.textContent = text;
    state.className = `state state-${text.split(" ")[0]}`;
  }

  async function finished(state) {
    document.querySelectorAll("form[action$='/cancel']").forEach((form) => form.remove());
    const response = await fetch(`/v1/jobs/${boot.id}`);
    if (!response.ok) return;
    const job = await response.json();
    if (state === "cancelled") {
      document.getElementById("kept").textContent = job.links.weights
        ? "The weights of the last whole epoch were kept."
        : "No weights were kept (no epoch had finished).";
    }
    const downloads = document.getElementById("downloads");
    if (job.links.weights && !downloads.querySelector("a[href*='/weights']")) {
      const item = document.createElement("li");
      item.innerHTML = `Weights (HDF5): <a download>Keras 3</a>, <a download>Keras 2</a>`;
      const [k3, k2] = item.querySelectorAll("a");
      k3.href = `${job.links.weights}?format=keras3`;
      k2.href = `${job.links.weights}?format=keras2`;
      downloads.prepend(item);
    }
  }

  // ---- the streams
  function listen(run) {
    const source = new EventSource(`/v1/jobs/${run.id}/events`);
    const main = run.index === 0;
    source.addEventListener("epoch", (event) => {
      const data = JSON.parse(event.data);
      run.lastEvent = Date.now();
      const point = addEpoch(run, data);
      if (!point) return;
      appendPoint(run, point);
      if (!main) return;
      addRow(data);
      checkEpoch(run);
      const logs = Object.entries(data.logs).map(([k, v]) => `${k} ${format(v)}`).join(", ");
      status.textContent = `Epoch ${data.epoch} of ${data.epochs}: ${logs}.`;
      const progress = document.getElementById("progress");
      if (progress) progress.textContent = `epoch ${data.epoch} of ${data.epochs}`;
    });
    source.addEventListener("progress", (event) => {
      run.lastEvent = Date.now();
      const point = addBatch(run, JSON.parse(event.data));
      if (point) appendPoint(run, point);
    });
    source.addEventListener("status", (event) => {
      const data = JSON.parse(event.data);
      run.lastEvent = Date.now();
      if (!FINAL.has(data.status)) {
        if (main) setState(data.status);
        return;
      }
      source.close(); // the stream ends here; EventSource would otherwise reconnect for ever
      if (!main) return;
      setState(data.status);
      status.textContent = `Job ${data.status}.`;
      finished(data.status);
    });
    source.addEventListener("deleted", () => {
      source.close();
      if (main) setState("deleted");
    });
  }

  // ---- controls
  const form = document.getElementById("view");
  form.x.value = view.x;
  form.smooth.value = String(view.smooth);
  form.x.addEventListener("change", () => { view.x = form.x.value; view.zoom = []; saveView(); rebuildAll(); });
  form.smooth.addEventListener("change", () => { view.smooth = +form.smooth.value; saveView(); rebuildAll(); });
  const reset = document.createElement("button");
  reset.type = "button";
  reset.textContent = "Reset zoom";
  reset.addEventListener("click", resetZoom);
  form.appendChild(reset);
  form.addEventListener("submit", (event) => event.preventDefault());

  document.getElementById("show-summary").addEventListener("click", async (event) => {
    const out = document.getElementById("summary");
    event.target.disabled = true;
    const spec = await (await fetch(`/v1/jobs/${boot.id}/spec`)).json();
    const response = await fetch("/v1/models/inspect", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ model: spec.model }),
    });
    const body = await response.json();
    out.textContent = response.ok ? body.summary : body.detail?.message ?? JSON.stringify(body);
    out.hidden = false;
  });

  setInterval(() => {
    const main = runs[0];
    if (document.getElementById("state").textContent.startsWith("running") && Date.now() - main.lastEvent > 120000) {
      warn("stalled", "No progress for 2 minutes: the worker may be stuck or lost.");
    }
  }, 10000);

  window.addEventListener("resize", () => {
    for (const [base, { plot }] of charts) {
      plot.setSize({ width: chartWidth(document.getElementById(`chart-${base}`)), height: 220 });
    }
  });

  if (view.log.size || view.smooth || view.x !== "epoch" || view.compare.length) saveView();
  runs.forEach(listen);
})();
