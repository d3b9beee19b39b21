"""Web view heatmap drawing in headless Chromium: the page's way (the matrix painted into one
image, drawn by an ECharts custom series) against ECharts' own heatmap series (one rectangle
per bucket), on a synthetic 240 × 2,000 matrix, both measured in this run.

    python bench/webview_bench.py [--rows 2000] [--repeat 3]

Prints per method the median time of a full draw (setOption, then a synchronous repaint) and of
one zoom step (dataZoom to the middle half, repaint), and the ratios baseline / page. Needs the
system chromium and playwright (the test extras)."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import Config  # noqa: E402
from bot.web.server import replay_view  # noqa: E402
from tests.bot.browser import chromium, open_page  # noqa: E402

JS = """async ([nt, np, method]) => {
  const d = {shape: [nt, np], time_ms: [], prices: [], close: [], values: new Array(nt * np),
             tape: []};
  let seed = 7; const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  for (let t = 0; t < nt; t++) { d.time_ms.push(1.5e12 + t * 3.6e6); d.close.push(1000 + np / 2); }
  for (let j = 0; j < np; j++) d.prices.push(1000 + j);
  for (let i = 0; i < nt * np; i++) {
    d.values[i] = rnd() < 0.1 ? 0 : Math.round(Math.exp(rnd() * 12));
  }
  const el = document.getElementById('heatmap');
  const chart = echarts.init(el, null, {renderer: 'canvas'});
  const t0 = performance.now();
  let option;
  if (method === 'page') {
    option = liqbot.build.heatmapOption(d, liqbot.build.matrixImage(d));
  } else {
    const data = [];
    for (let t = 0; t < nt; t++) for (let j = 0; j < np; j++) {
      const v = d.values[t * np + j]; if (v > 0) data.push([t, j, v]); }
    option = liqbot.build.heatmapOption(d, liqbot.build.matrixImage({shape: [1, 1], values: [1]}));
    option.series[0] = {name: 'Estimate', type: 'heatmap', data, progressive: 0,
                        progressiveThreshold: 1e9, emphasis: {disabled: true}};
    option.visualMap = {type: 'continuous', min: 0, max: 160000, show: false, seriesIndex: 0};
  }
  chart.setOption(option, {notMerge: true});
  chart.getZr().refreshImmediately();
  const t1 = performance.now();
  chart.dispatchAction({type: 'dataZoom', dataZoomIndex: 0, start: 25, end: 75});
  chart.dispatchAction({type: 'dataZoom', dataZoomIndex: 1, start: 25, end: 75});
  chart.getZr().refreshImmediately();
  const t2 = performance.now();
  chart.dispose();
  return [t1 - t0, t2 - t1];
}"""


async def main(rows: int, repeat: int) -> None:
    view = await replay_view(Config(), None, "BTC/USDT:USDT")
    base = (await view.start("127.0.0.1", 0))[0]
    try:
        async with chromium() as browser:
            page, _ = await open_page(browser, f"{base}/s/BTC?window=12h")
            times: dict[str, list[tuple[float, float]]] = {"page": [], "echarts-heatmap": []}
            for _ in range(repeat):
                for method in times:
                    times[method].append(tuple(await page.evaluate(JS, [240, rows, method])))
    finally:
        await view.stop()
        view.core.store.close()
    med = {m: (statistics.median(a for a, _ in ts), statistics.median(b for _, b in ts))
           for m, ts in times.items()}
    print(f"240 x {rows} heatmap in headless chromium, median of {repeat}:")
    for m, (draw, zoom) in med.items():
        print(f"  {m:<16} draw {draw:8.1f} ms   zoom step {zoom:8.1f} ms")
    (bd, bz), (pd, pz) = med["echarts-heatmap"], med["page"]
    print(f"  ratio echarts-heatmap / page: draw {bd / pd:.1f}x, zoom step {bz / pz:.1f}x")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    asyncio.run(main(args.rows, args.repeat))
