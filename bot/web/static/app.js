// liqbot web view: fills the page from /api/v1 (values go into the DOM as text only).
"use strict";
(function () {
  const VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89",
    "#35b779", "#6ece58", "#b5de2b", "#fde725"];  // the PNGs' colormap
  const LEVERAGE = ["#0072B2", "#56B4E9", "#CC79A7", "#E69F00", "#F0E442", "#D55E00", "#009E73"];
  const TEXT = "#d1d4dc", MUTED = "#8a8f98", GRID = "#2a2e39";
  const CONFIRMED = "#ff4df2";  // the confirmed layer's outlines (real positions, Hyperliquid)
  const $ = (id) => document.getElementById(id);
  const name = decodeURIComponent(location.pathname.split("/").pop() || "");
  const query = new URLSearchParams(location.search);
  // Telegram passes the signed launch data in the fragment; the server checks it (see README).
  const initData = new URLSearchParams(location.hash.slice(1)).get("tgWebAppData") || "";
  const state = { heatmap: null, map: null, levels: null, showConfirmed: true };
  state.build = { heatmapOption: (d, image) => heatmapOption(d, image),
    matrixImage: (d) => matrixImage(d) };  // for bench/webview_bench.py
  window.liqbot = state;

  function num(v, digits) {
    return Number(v).toLocaleString("en-US",
      { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }
  function usd(v) { return "$" + num(v, 0); }
  function pct(v) { return (v >= 0 ? "+" : "") + v.toFixed(1) + " %"; }
  function utc(ms) { return new Date(ms).toISOString().slice(0, 16).replace("T", " "); }
  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;",
      '"': "&quot;", "'": "&#39;" })[c]);
  }

  async function get(path) {
    const headers = initData ? { "X-Telegram-Init-Data": initData } : {};
    const sep = path.includes("?") ? "&" : "?";
    const resp = await fetch(`/api/v1/${path}${sep}symbol=${encodeURIComponent(name)}`,
      { headers, credentials: "omit" });
    const body = await resp.json();
    if (!resp.ok) throw new Error(body.error || resp.statusText);
    return body;
  }
  function fail(err) { const e = $("error"); e.textContent = String(err.message || err); e.hidden = false; }

  // Fractional row index of a price on the (ascending) bucket axis.
  function rowOf(prices, p) {
    let lo = 0, hi = prices.length - 1;
    if (p <= prices[0]) return 0;
    if (p >= prices[hi]) return hi;
    while (hi - lo > 1) { const m = (lo + hi) >> 1; if (prices[m] <= p) lo = m; else hi = m; }
    return lo + (p - prices[lo]) / (prices[hi] - prices[lo]);
  }

  function hex(c) { return [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)); }
  const RAMP = VIRIDIS.map(hex);
  function colour(f) {  // f in [0, 1] → [r, g, b] on the viridis ramp
    const x = Math.min(1, Math.max(0, f)) * (RAMP.length - 1), i = Math.min(Math.floor(x), RAMP.length - 2);
    return RAMP[i].map((a, k) => Math.round(a + (RAMP[i + 1][k] - a) * (x - i)));
  }

  // The matrix as one image (a pixel block per bucket; empty buckets transparent): drawn by a
  // custom series at the cells' coordinates, so zoom and pan move it with the axes.
  function matrixImage(d) {
    const [nt, np] = d.shape;
    let max = 1;
    for (const v of d.values) if (v > max) max = v;
    const top = Math.log10(max), bottom = top - 3;
    const sx = Math.max(1, Math.ceil(1200 / nt)), sy = Math.max(1, Math.ceil(1200 / np));
    const canvas = document.createElement("canvas");
    canvas.width = nt * sx; canvas.height = np * sy;
    const ctx = canvas.getContext("2d"), img = ctx.createImageData(canvas.width, canvas.height);
    for (let t = 0; t < nt; t++) {
      for (let j = 0; j < np; j++) {
        const v = d.values[t * np + j];
        if (v <= 0) continue;
        const [r, g, b] = colour((Math.log10(v) - bottom) / (top - bottom));
        for (let y = (np - 1 - j) * sy; y < (np - j) * sy; y++) {
          for (let x = t * sx; x < (t + 1) * sx; x++) {
            const o = (y * canvas.width + x) * 4;
            img.data[o] = r; img.data[o + 1] = g; img.data[o + 2] = b; img.data[o + 3] = 255;
          }
        }
      }
    }
    ctx.putImageData(img, 0, 0);
    return { canvas, max, min: Math.pow(10, bottom) };
  }

  function heatmapOption(d, image) {
    const [nt, np] = d.shape;
    const series = [
      { name: "Estimate", type: "custom", data: [[0, 0]], silent: true, z: 1,
        renderItem: (params, api) => {
          const p0 = api.coord([0, 0]), cell = api.size([1, 1]), cs = params.coordSys;
          const w = cell[0] * nt, h = cell[1] * np;
          return { type: "group", clipPath: { type: "rect", shape: { x: cs.x, y: cs.y, width: cs.width, height: cs.height } },
            children: [{ type: "image", style: { image: image.canvas, x: p0[0] - cell[0] / 2,
              y: p0[1] + cell[1] / 2 - h, width: w, height: h } }] };
        } },
      { name: "Price", type: "line", data: d.close.map((c, t) => [t, rowOf(d.prices, c)]), z: 3,
        showSymbol: false, lineStyle: { color: "#ffffff", width: 1.2 }, silent: true },
    ];
    const conf = d.confirmed;
    if (conf) {  // real positions' liquidation levels, outlined at the right edge (newest column)
      const lo = d.prices[0], hi = d.prices[np - 1];
      series.push({ name: conf.label, type: "custom", z: 5, silent: true, clip: true,
        itemStyle: { color: CONFIRMED },  // the legend's swatch
        data: conf.levels.filter((c) => c.high >= lo && c.low <= hi)
          .map((c) => [rowOf(d.prices, c.low), rowOf(d.prices, c.high), c.notional_usd]),
        renderItem: (params, api) => {
          const cell = api.size([1, 1]), right = api.coord([nt - 1, 0])[0] + cell[0] / 2;
          const w = Math.max(14, cell[0] * Math.max(2, nt * 0.06));
          const y0 = api.coord([0, api.value(0)])[1] + cell[1] / 2;
          const y1 = api.coord([0, api.value(1)])[1] - cell[1] / 2;
          return { type: "rect", shape: { x: right - w, y: Math.min(y0, y1), width: w,
            height: Math.max(3, Math.abs(y0 - y1)) },
          style: { fill: "none", stroke: CONFIRMED, lineWidth: 2 } };
        } });
    }
    if (d.tape.length) {
      series.push({ name: "Real liquidations", type: "scatter", z: 4, silent: true,
        data: d.tape.map(([ms, p, u, side]) => [
          Math.min(nt - 1, Math.max(0, (ms - d.time_ms[0]) / ((d.time_ms[nt - 1] - d.time_ms[0]) || 1) * (nt - 1))),
          rowOf(d.prices, p), u, side]),
        symbolSize: (v) => Math.max(4, Math.min(24, Math.sqrt(v[2] / 1e5))),
        itemStyle: { color: (p) => (p.value[3] === "long" ? "#26a69a" : "#ef5350"),
          borderColor: "#ffffff", borderWidth: 0.5 } });
    }
    return {
      backgroundColor: "#131722", animation: false,
      textStyle: { color: TEXT },
      legend: { top: 4, textStyle: { color: TEXT }, data: series.map((s) => s.name),
        selected: conf ? { [conf.label]: state.showConfirmed } : {} },
      grid: { left: 80, right: 30, top: 36, bottom: 70 },
      tooltip: { show: false },
      xAxis: { type: "category", data: d.time_ms.map(utc), axisLabel: { color: MUTED },
        axisLine: { lineStyle: { color: GRID } } },
      yAxis: { type: "category", data: d.prices.map((p) => num(p, 2)),
        axisLabel: { color: MUTED, interval: Math.max(0, Math.ceil(np / 24) - 1) },
        axisLine: { lineStyle: { color: GRID } } },
      dataZoom: [
        { type: "inside", xAxisIndex: 0, filterMode: "none" },
        { type: "inside", yAxisIndex: 0, filterMode: "none" },
        { type: "slider", xAxisIndex: 0, bottom: 16, height: 18, filterMode: "none",
          textStyle: { color: MUTED } },
        { type: "slider", yAxisIndex: 0, left: 8, width: 14, filterMode: "none", showDetail: false },
      ],
      series,
    };
  }

  // Hover: bucket USD, distance from the column's close, cumulative from that close to here.
  function tipLines(d, t, j) {
    const np = d.shape[1], v = d.values[t * np + j];
    const close = d.close[t], price = d.prices[j];
    const from = Math.round(rowOf(d.prices, close));
    let cum = 0;
    for (let k = Math.min(from, j); k <= Math.max(from, j); k++) cum += d.values[t * np + k];
    return [
      `${utc(d.time_ms[t])} UTC · ${num(price, 2)}`,
      `Bucket: ${usd(v)}`,
      `Distance from price: ${pct((price / close - 1) * 100)}`,
      `Cumulative to this price: ${usd(cum)}`,
    ];
  }

  function hover(e) {
    const tip = $("tip"), d = state.heatmapData, chart = state.heatmap;
    const at = [e.offsetX, e.offsetY];
    if (!d || !chart.containPixel({ gridIndex: 0 }, at)) { tip.hidden = true; return; }
    const [x, y] = chart.convertFromPixel({ gridIndex: 0 }, at).map(Math.round);
    if (!(x >= 0 && x < d.shape[0] && y >= 0 && y < d.shape[1])) { tip.hidden = true; return; }
    tip.replaceChildren(...tipLines(d, x, y).map((line) => {
      const div = document.createElement("div"); div.textContent = line; return div;
    }));
    tip.dataset.t = x; tip.dataset.j = y;
    tip.style.left = Math.min(e.offsetX + 14, $("heatmap").clientWidth - 260) + "px";
    tip.style.top = (e.offsetY + 14) + "px";
    tip.hidden = false;
  }

  function mapOption(m) {
    const j = m.prices.findIndex((p) => p >= m.price * 0.85);
    let k = m.prices.findIndex((p) => p > m.price * 1.15);
    if (k < 0) k = m.prices.length - 1;
    const series = [];
    m.leverage.forEach((lev, i) => {
      const colour = LEVERAGE[i % LEVERAGE.length];
      series.push({ name: `${lev}x`, type: "bar", stack: "book", data: m.prices.map(
        (p, b) => (p < m.price ? m.long[i][b] : m.short[i][b])), itemStyle: { color: colour },
        barCategoryGap: "5%", large: true });
    });
    const conf = m.confirmed;
    if (conf) {  // real positions by liquidation price: outlines over the estimate, not stacked
      series.push({ name: conf.label, type: "bar", barGap: "-100%", z: 5,
        data: m.prices.map((p, b) => conf.long[b] + conf.short[b]),
        itemStyle: { color: "rgba(0,0,0,0)", borderColor: CONFIRMED, borderWidth: 1.5 } });
    }
    const estimate = (ps) => ps.filter((q) => !conf || q.seriesName !== conf.label);
    const real = (ps) => ps.filter((q) => conf && q.seriesName === conf.label);
    return {
      backgroundColor: "#131722", animation: false, textStyle: { color: TEXT },
      legend: { top: 4, textStyle: { color: TEXT },
        selected: conf ? { [conf.label]: state.showConfirmed } : {} },
      grid: { left: 80, right: 30, top: 36, bottom: 60 },
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, backgroundColor: "#1b1f27",
        borderColor: GRID, textStyle: { color: TEXT },
        formatter: (ps) => esc(`${ps[0].name}: ${usd(estimate(ps).reduce((a, q) => a + q.value, 0))} ` +
          (Number(m.prices[ps[0].dataIndex]) < m.price ? "longs" : "shorts") + " (estimate)") +
          real(ps).map((q) => "<br>" + esc(`${conf.label}: ${usd(q.value)}`)).join("") },
      xAxis: { type: "category", data: m.prices.map((p) => num(p, 2)), axisLabel: { color: MUTED } },
      yAxis: { type: "value", axisLabel: { color: MUTED, formatter: (v) => usd(v) },
        splitLine: { lineStyle: { color: GRID } } },
      dataZoom: [{ type: "inside", startValue: Math.max(j, 0), endValue: k },
        { type: "slider", bottom: 10, height: 16, startValue: Math.max(j, 0), endValue: k }],
      series,
    };
  }

  function fillLevels(l) {
    const body = $("levels").querySelector("tbody");
    body.replaceChildren();
    for (const r of l.levels) {
      const tr = document.createElement("tr");
      tr.dataset.id = r.id;
      const cells = [r.side, num(r.low, 2), num(r.high, 2), num(r.price, 2), usd(r.notional_usd),
        pct(r.distance_pct), r.id];
      cells.forEach((text, i) => {
        const td = document.createElement("td");
        td.textContent = text;
        if (i === 0) td.className = r.side;
        tr.appendChild(td);
      });
      body.appendChild(tr);
    }
  }

  function fillConfirmed(c) {  // the confirmed layer's own table (never the estimate's)
    const body = $("confirmed-levels").querySelector("tbody");
    body.replaceChildren();
    for (const r of c.levels) {
      const tr = document.createElement("tr");
      [r.side, num(r.low, 2), num(r.high, 2), usd(r.notional_usd), pct(r.distance_pct),
        r.wallets].forEach((text, i) => {
        const td = document.createElement("td");
        td.textContent = text;
        if (i === 0) td.className = r.side;
        tr.appendChild(td);
      });
      body.appendChild(tr);
    }
    const t = c.totals;
    $("confirmed-sub").textContent = `${c.coin} · ${t.positions} positions in ${t.wallets} ` +
      `wallets · longs ${usd(t.long_usd)}, shorts ${usd(t.short_usd)} · as of ${utc(c.as_of_ms)} UTC`;
    $("confirmed-caveat").textContent = c.caveat;
    $("confirmed-label").textContent = c.label;
  }

  // One switch for the layer: the checkbox, both charts' legends and the confirmed table.
  function showConfirmed(on) {
    const c = state.levelsData && state.levelsData.confirmed;
    if (!c) return;
    state.showConfirmed = on;
    $("confirmed").checked = on;
    $("confirmed-section").hidden = !on;
    for (const chart of [state.heatmap, state.map])  // (emits legendselected, not ...changed)
      chart.dispatchAction({ type: on ? "legendSelect" : "legendUnSelect", name: c.label });
    document.body.dataset.confirmed = on ? "shown" : "hidden";
  }

  async function loadHeatmap(window_) {
    const d = await get(`heatmap?window=${encodeURIComponent(window_)}`);
    state.heatmapData = d;
    const image = matrixImage(d);
    state.heatmap.setOption(heatmapOption(d, image), { notMerge: true });
    $("cmin").textContent = usd(image.min);
    $("cmax").textContent = usd(image.max);
    const n = d.time_ms.length;
    $("range").textContent = `${d.window} · ${utc(d.time_ms[0])} → ${utc(d.time_ms[n - 1])} UTC · ${d.bucket}` +
      (d.proxy ? " · volume proxy (no open interest)" : "");
    $("heatmap").dataset.window = d.window;
  }

  async function main() {
    if (!window.echarts) { fail("the chart library did not load"); return; }
    state.heatmap = echarts.init($("heatmap"), null, { renderer: "canvas" });
    state.map = echarts.init($("map"), null, { renderer: "canvas" });
    state.heatmap.getZr().on("mousemove", hover);
    state.heatmap.getZr().on("globalout", () => { $("tip").hidden = true; });
    addEventListener("resize", () => { state.heatmap.resize(); state.map.resize(); });
    const sel = $("window");
    const w = query.get("window");
    sel.value = w && [...sel.options].some((o) => o.value === w) ? w : "24h";
    sel.addEventListener("change", () => loadHeatmap(sel.value).catch(fail));
    try {
      const [l, m] = await Promise.all([get("levels"), get("map")]);
      state.levelsData = l;
      $("title").textContent = `${l.symbol} liquidation heatmap`;
      $("sub").textContent = `price ${num(l.price, 2)} · as of ${utc(l.as_of_ms)} UTC` +
        (l.proxy ? " · volume proxy (no open interest)" : "");
      fillLevels(l);
      state.map.setOption(mapOption(m));
      if (l.confirmed) {
        fillConfirmed(l.confirmed);
        $("confirmed-toggle").hidden = false;
        $("confirmed-section").hidden = false;
        $("confirmed").addEventListener("change", (e) => showConfirmed(e.target.checked));
        for (const chart of [state.heatmap, state.map]) {
          chart.on("legendselectchanged", (e) => {
            if (e.name === l.confirmed.label) showConfirmed(e.selected[e.name]);
          });
        }
        document.body.dataset.confirmed = "shown";
      }
      $("maptime").textContent = `book at ${utc(m.as_of_ms)} UTC · ${m.bucket}`;
      await loadHeatmap(sel.value);
      document.body.dataset.ready = "1";
    } catch (err) { fail(err); }
  }
  document.addEventListener("DOMContentLoaded", main);
})();
