// The operations page: polls ./snapshot, fills the cards and tables, charts the history with
// uPlot (vendored: `npm run vendor`). Rates and percentiles are differences between polls.
"use strict";
(() => {
  const intervalMs = Math.max(500, 1000 * Number(document.body.dataset.interval || 1));
  const KEEP_S = 15 * 60; // the longest window
  const LAG_WINDOW_S = 60; // the cards' percentiles: over the last minute
  const $ = (id) => document.getElementById(id);
  let windowS = 5 * 60;
  let previous = null;
  let updates = 0;
  // Columns: time (s), connections, commands/s, errors/s, p50 ms, p99 ms. Kept in the tab's
  // sessionStorage too: a reload does not lose the charts (nothing is stored server-side).
  const STORED = "wscommands-ops-history";
  const { history, lagSnapshots } = restore(); // lagSnapshots: [at, summed lag buckets]

  function restore() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(STORED) || "null");
      const times = saved?.history?.[0];
      if (times?.at(-1) > Date.now() / 1000 - KEEP_S && saved.lagSnapshots?.length) return saved;
    } catch {
      // unreadable: start afresh
    }
    return { history: [[], [], [], [], [], []], lagSnapshots: [] };
  }

  function save() {
    try {
      sessionStorage.setItem(STORED, JSON.stringify({ history, lagSnapshots }));
    } catch {
      // storage full or off: the charts still work, a reload starts them again
    }
  }

  // Charts --------------------------------------------------------------------------------

  const shown = (digits) => (u, v) => (v == null ? "–" : v.toFixed(digits));
  const charts = [];
  // Tick steps of a count: whole numbers only.
  const WHOLE = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 1e6];

  function chart(id, label, unit, series, digits) {
    const element = $(id);
    const plot = new uPlot(
      {
        width: element.clientWidth || 300,
        height: 200,
        // The x range is the chosen window ending now, however few points there are.
        scales: {
          x: { time: true, range: () => [Date.now() / 1000 - windowS, Date.now() / 1000] },
          // From zero: a count, a rate or a latency read against its baseline.
          y: { range: (u, min, max) => [0, max > 0 ? max * 1.15 : 1] },
        },
        axes: [{}, { label: unit, size: 56, incrs: digits ? undefined : WHOLE }],
        series: [{}, ...series.map((s) => ({ spanGaps: true, width: 1.5, value: shown(digits), ...s }))],
        legend: { live: true },
      },
      [history[0], ...series.map(() => [])],
      element,
    );
    charts.push({ plot, element, columns: series.map((s) => s.column) });
  }

  function redraw() {
    for (const { plot, columns } of charts) {
      plot.setData([history[0], ...columns.map((c) => history[c])]);
    }
  }

  function makeCharts() {
    chart("chart-connections", "connections", "connections", [
      { label: "connections", stroke: "#2a6ebb", column: 1 },
    ], 0);
    chart("chart-rates", "rates", "per second", [
      { label: "commands/s", stroke: "#2a6ebb", column: 2 },
      { label: "errors/s", stroke: "#c0392b", column: 3 },
    ], 1);
    chart("chart-lag", "latency", "ms", [
      { label: "p50", stroke: "#2a6ebb", column: 4 },
      { label: "p99", stroke: "#e67e22", column: 5 },
    ], 2);
    // Charts follow their container's width (a phone turned, a window resized).
    const resize = new ResizeObserver(() => {
      for (const { plot, element } of charts) plot.setSize({ width: element.clientWidth, height: 200 });
    });
    for (const { element } of charts) resize.observe(element);
  }

  for (const button of document.querySelectorAll(".window button")) {
    button.addEventListener("click", () => {
      windowS = 60 * Number(button.dataset.minutes);
      for (const other of document.querySelectorAll(".window button")) {
        other.setAttribute("aria-pressed", String(other === button));
      }
      redraw();
    });
  }

  // Figures ---------------------------------------------------------------------------------

  /** The q-quantile (0..1) of a histogram (counts per bucket, +Inf last), as Prometheus does. */
  function quantile(q, counts, bounds) {
    const total = counts.reduce((a, b) => a + b, 0);
    if (!total) return null;
    const rank = q * total;
    let below = 0;
    for (let i = 0; i < counts.length; i++) {
      if (counts[i] > 0 && below + counts[i] >= rank) {
        if (i >= bounds.length) return bounds[bounds.length - 1];
        const low = i ? bounds[i - 1] : 0;
        return low + (bounds[i] - low) * ((rank - below) / counts[i]);
      }
      below += counts[i];
    }
    return bounds[bounds.length - 1];
  }

  const minus = (a, b) => a.map((v, i) => Math.max(0, v - (b[i] || 0)));
  const ms = (seconds) => (seconds == null ? null : 1000 * seconds);
  const fmt = (n, digits = 1) => (n == null || !Number.isFinite(n) ? "–" : n.toFixed(digits));

  function uptime(seconds) {
    if (seconds == null) return "–";
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  }

  const headers = (tableId) =>
    [...$(tableId).querySelectorAll("thead th")].map((th) => th.textContent);

  function fill(tableId, rows) {
    const labels = headers(tableId);
    $(tableId).querySelector("tbody").replaceChildren(
      ...rows.map(({ cells, attrs = {}, title }) => {
        const tr = document.createElement("tr");
        Object.assign(tr.dataset, attrs);
        if (title) tr.title = title;
        cells.forEach(([text, cls], i) => {
          const td = document.createElement("td");
          td.textContent = text;
          td.dataset.label = labels[i]; // shown before the value on narrow screens
          if (cls) td.className = cls;
          tr.appendChild(td);
        });
        return tr;
      }),
    );
  }

  function render(snap) {
    const t = snap.totals;
    $("ops-processes-count").textContent = snap.live;
    $("ops-lost-count").hidden = !snap.lost;
    $("ops-lost-count").textContent = `${snap.lost} lost`;
    $("ops-connections").textContent = snap.connections;
    $("ops-commands-total").textContent = t.commands;
    $("ops-errors-total").textContent = t.errors;
    $("ops-refused-total").textContent = t.refused;

    let commandsRate = null, errorsRate = null, p50 = null, p99 = null;
    if (previous) {
      const dt = Math.max(1e-3, snap.at - previous.at);
      commandsRate = Math.max(0, t.commands - previous.totals.commands) / dt;
      errorsRate = Math.max(0, t.errors - previous.totals.errors) / dt;
      const step = minus(t.lag_buckets, previous.totals.lag_buckets);
      p50 = ms(quantile(0.5, step, snap.lag_bounds));
      p99 = ms(quantile(0.99, step, snap.lag_bounds));
    }
    $("ops-commands-rate").textContent = fmt(commandsRate);
    $("ops-errors-rate").textContent = fmt(errorsRate);
    lagSnapshots.push([snap.at, t.lag_buckets]);
    while (lagSnapshots.length > 2 && lagSnapshots[1][0] <= snap.at - LAG_WINDOW_S) lagSnapshots.shift();
    const minute = minus(t.lag_buckets, lagSnapshots[0][1]);
    $("ops-lag-p50").textContent = fmt(ms(quantile(0.5, minute, snap.lag_bounds)), 2);
    $("ops-lag-p99").textContent = fmt(ms(quantile(0.99, minute, snap.lag_bounds)), 2);

    for (const [i, v] of [snap.at, snap.connections, commandsRate, errorsRate, p50, p99].entries()) {
      history[i].push(v);
    }
    while (history[0].length && history[0][0] < snap.at - KEEP_S) history.forEach((c) => c.shift());
    save();
    redraw();

    fill("ops-processes", snap.processes.map((p) => ({
      attrs: { state: p.lost ? "lost" : "live", pid: String(p.pid) },
      title: p.process, // the channel name, as in the server's logs
      cells: [
        [p.host], [String(p.pid), "num"], [p.lost ? "lost" : "live", "state"],
        // A lost process's uptime stops at its last report.
        [p.started == null ? "–" : uptime((p.lost ? p.at : snap.at) - p.started), "num"],
        [String(p.connections), "num"], [String(p.anonymous), "num"],
        [String(p.group_count), "num"], [String(p.totals.commands), "num"],
        [String(p.totals.errors), "num"],
        [fmt(ms(p.totals.layer_round_trip), 2), "num"], [fmt(snap.at - p.at), "num"],
      ],
    })));
    fill("ops-users", snap.users.map((u) => ({ cells: [[u.username], [String(u.connections), "num"]] })));
    fill("ops-groups", snap.groups.map((g) => ({ cells: [[g.group], [String(g.members), "num"]] })));
    previous = snap;
  }

  async function tick() {
    const status = $("status");
    try {
      const response = await fetch("snapshot", { credentials: "same-origin", cache: "no-store" });
      if (response.status === 403) {
        // Signed out meanwhile: the page itself sends to the sign-in page.
        location.reload();
        return;
      }
      const body = await response.json();
      if (!response.ok) throw new Error(body.error || response.status);
      render(body);
      updates += 1;
      status.dataset.state = "live";
      status.dataset.updates = String(updates);
      status.textContent = "live, " + new Date().toLocaleTimeString();
    } catch (error) {
      status.dataset.state = "error";
      status.textContent = "cannot read the figures: " + error.message;
    }
    setTimeout(tick, intervalMs);
  }

  makeCharts();
  window.ops = { charts }; // for the console (and the browser tests)
  tick();
})();
