"""Size and speed of the showcase page: file size, load time, click-to-redraw time.

For each synthetic row count a seeded release of the demo data (20,000 generated case rows,
25 released columns, 32 encoded) is made with ``release.rows`` set to that count; its
``showcase.html`` is opened in the system Chromium (headless, offline, every request failed)
and timed:

* **build**: ``ptsynth.showcase.render`` in this process (wall and CPU seconds);
* **load**: navigation start to the page's data decoded and every explorer chart drawn
  (``performance.now()`` when the page marks itself ready), median of ``--loads`` fresh pages;
* **click**: a bar click (a JavaScript ``click()`` on a random bar) until every chart is
  redrawn and laid out (the click handler redraws synchronously; the time includes a forced
  layout), median of ``--clicks`` clicks, each toggling a filter on (the filters accumulate
  up to three, then are cleared). ``next frame`` adds the wait for the following animation frame.

Usage::

    python benchmarks/showcase.py --rows 20000 200000 1000000 [--synthesizer pgm] \\
        [--work DIR] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import ptsynth
from ptsynth.demo import demo_config_path, generate_demo
from ptsynth.release.bundle import Bundle
from ptsynth.showcase.build import render

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]

CLICK = """async (seed) => {
  const bars = Array.from(document.querySelectorAll('g.bar'));
  const el = bars[Math.floor(seed * bars.length) % bars.length];
  const t0 = performance.now();
  el.dispatchEvent(new MouseEvent('click', {bubbles: true}));
  document.body.offsetHeight;  // force style and layout of the redrawn charts
  const t1 = performance.now();
  await new Promise(r => requestAnimationFrame(() => r()));
  return [t1 - t0, performance.now() - t0];
}"""


def bundle_for(rows: int, synthesizer: str, work: Path, epsilon: float) -> tuple[Path, float]:
    data = work / "demo.csv"
    if not data.exists():
        generate_demo(20_000, 3, data)
    out = work / f"{synthesizer}-{rows}"
    seconds = float("nan")
    if not (out / "showcase.html").exists():
        t0 = time.perf_counter()
        ptsynth.release(data, demo_config_path(), out, seed=1, rows=rows, epsilon=epsilon,
                        synthesizer=synthesizer, evaluate_release=False, overwrite=True)
        seconds = time.perf_counter() - t0
    return out, seconds


def measure(page_path: Path, chromium: str, loads: int, clicks: int) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    url = page_path.resolve().as_uri()
    load_ms, click_ms, frame_ms = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        for i in range(loads):
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.set_offline(True)
            context.route("**/*", lambda r: r.continue_() if r.request.url == url else r.abort())
            page = context.new_page()
            page.goto(url)
            page.wait_for_function("document.documentElement.getAttribute('data-showcase-ready')",
                                   timeout=300_000)
            load_ms.append(page.evaluate("window.ptsynthShowcase.loadMs"))
            if i == loads - 1:
                for c in range(clicks):
                    if c % 4 == 3:
                        page.evaluate("document.querySelector('button.clear') && "
                                      "document.querySelector('button.clear').click()")
                        continue
                    done, frame = page.evaluate(CLICK, (c * 0.618) % 1.0)
                    click_ms.append(done)
                    frame_ms.append(frame)
            context.close()
        browser.close()
    return {"load_ms": statistics.median(load_ms), "load_ms_all": load_ms,
            "click_ms": statistics.median(click_ms), "click_ms_max": max(click_ms),
            "frame_ms": statistics.median(frame_ms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[20_000, 200_000, 1_000_000])
    parser.add_argument("--synthesizer", default="pgm")
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--loads", type=int, default=3)
    parser.add_argument("--clicks", type=int, default=12)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="ptsynth-showcase-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print("| synthetic rows | synthesizer | file MB | build s (CPU s) | load ms (median) | "
          "click ms (median / max) | click + next frame ms |")
    print("|---|---|---|---|---|---|---|")
    for rows in args.rows:
        out, _ = bundle_for(rows, args.synthesizer, work, args.epsilon)
        bundle = Bundle.load(out)
        t0, c0 = time.perf_counter(), time.process_time()
        html = render(bundle)
        build_s, build_cpu = time.perf_counter() - t0, time.process_time() - c0
        page = work / f"showcase-{args.synthesizer}-{rows}.html"
        page.write_text(html, encoding="utf-8")
        m = measure(page, args.chromium, args.loads, args.clicks)
        print(f"| {bundle.synthetic_table.n_records:,} | {args.synthesizer} | "
              f"{page.stat().st_size / 1e6:.1f} | {build_s:.1f} ({build_cpu:.1f}) | "
              f"{m['load_ms']:.0f} | {m['click_ms']:.0f} / {m['click_ms_max']:.0f} | "
              f"{m['frame_ms']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
