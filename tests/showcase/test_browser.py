"""The showcase in real headless Chromium (Playwright driving the system browser), offline.

Every network request is intercepted and failed (and recorded: there must be none). Clicking
bars filters every other chart, and every chart's numbers equal what ``Bundle.count`` answers for
the same filter; the map draws one shape per country with data; the trend one point per
period; the keyboard works; the filtered rows download matches the synthetic records. A
screenshot of each page goes to ``test-artifacts/``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import ptsynth
from ptsynth.demo import demo_config_path
from ptsynth.release.bundle import Bundle
from ptsynth.showcase.layout import world

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists()
                                        else None)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed "
                               "(pip install -e '.[test]')")
if CHROMIUM is None:
    pytest.skip("chromium not installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module", params=["pgm", "aggregate"])
def bundle(request, demo_csv: Path, tmp_path_factory) -> Bundle:
    out = tmp_path_factory.mktemp("showcase") / "bundle"
    ptsynth.release(demo_csv, demo_config_path(), out, seed=5, epsilon=2.0,
                    synthesizer=request.param, evaluate_release=False)
    return Bundle.load(out)


@pytest.fixture()
def page(browser, bundle):
    context = browser.new_context(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
    context.set_offline(True)
    requests: list[str] = []
    url = (bundle.path / "showcase.html").resolve().as_uri()

    def route(r):
        if r.request.url == url:
            r.continue_()
        else:
            requests.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(url)
    pg.wait_for_function("document.documentElement.getAttribute('data-showcase-ready')",
                         timeout=60_000)
    assert pg.evaluate("document.documentElement.getAttribute('data-showcase-ready')") == "1", \
        pg.evaluate("window.ptsynthShowcase.error")
    yield pg
    assert not errors, errors
    assert pg.evaluate("window.ptsynthShowcase.error") is None
    assert requests == [], f"the page tried the network: {requests[:3]}"
    context.close()


def _check_all_charts(pg, bundle: Bundle, where: dict[str, list[str]]) -> int:
    """Every bar on the explorer equals Bundle.count(where minus the bar's column, by=column)."""
    bars = pg.eval_on_selector_all(
        "g.bar", "els => els.map(e => [e.closest('svg').dataset.chart, e.getAttribute("
        "'aria-label'), e.dataset.value, e.dataset.source, e.dataset.suppressed, +e.dataset.label])")
    by_chart: dict[str, list] = {}
    for chart, _aria, value, source, suppressed, li in bars:
        by_chart.setdefault(chart, []).append((li, value, source, suppressed))
    columns = pg.evaluate("window.ptsynthShowcase.columns")
    assert set(by_chart) == set(columns)
    checked = 0
    for col, got in by_chart.items():
        others = {c: v for c, v in where.items() if c != col}
        result = bundle.count(where=others, by=[col])
        labels = [r.cell[col] for r in result.rows]
        want = {labels.index(r.cell[col]): r for r in result.rows}
        assert len(got) == len(result.rows)
        for li, value, source, suppressed in got:
            r = want[li]
            assert source == r.source, (col, labels[li])
            assert (suppressed == "true") == r.suppressed, (col, labels[li])
            if not r.suppressed:
                assert float(value) == pytest.approx(r.estimate, abs=0.11), (col, labels[li])
            checked += 1
    return checked


def _click(pg, column: str, value: str, bundle: Bundle) -> None:
    labels = [r.cell[column] for r in bundle.count(by=[column]).rows]
    ci = pg.evaluate("window.ptsynthShowcase.columns").index(column)
    before = pg.evaluate("window.ptsynthShowcase.renders")
    pg.click(f'g.bar[data-col="{ci}"][data-label="{labels.index(value)}"]')
    pg.wait_for_function(f"window.ptsynthShowcase.renders > {before}")


def _shot(pg, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"showcase-{name}.png"
    pg.evaluate("window.scrollTo(0, 0)")
    pg.screenshot(path=str(path), full_page=False)
    assert path.stat().st_size > 10_000
    return path


def test_clicking_bars_filters_every_chart_as_bundle_count(page, bundle) -> None:
    where: dict[str, list[str]] = {}
    assert _check_all_charts(page, bundle, where) > 100
    _shot(page, f"{bundle.synthesizer}-explore")
    steps = [("gender", "Woman"), ("CountryOfExploitation", "USA"),
             ("CountryOfExploitation", "MEX"), ("typeOfSex", "Prostitution")]
    for column, value in steps:
        _click(page, column, value, bundle)
        where.setdefault(column, []).append(value)
        chips = page.locator(".chip").count()
        assert chips == sum(len(v) for v in where.values())
        _check_all_charts(page, bundle, where)
    _shot(page, f"{bundle.synthesizer}-explore-filtered")
    # a chip's remove button drops that value only
    ci = page.evaluate("window.ptsynthShowcase.columns").index("CountryOfExploitation")
    page.click(f'.chip[data-col="{ci}"] button >> nth=0')
    where["CountryOfExploitation"] = ["MEX"]
    _check_all_charts(page, bundle, where)
    page.click("button.clear")
    assert page.locator(".chip").count() == 0
    _check_all_charts(page, bundle, {})


def test_keyboard_filters_and_moves_between_bars(page, bundle) -> None:
    ci = page.evaluate("window.ptsynthShowcase.columns").index("gender")
    first = page.locator(f'g.bar[data-col="{ci}"]').first
    first.focus()
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelectorAll('.chip').length === 1")
    focused = page.evaluate("document.activeElement.dataset.col")
    assert focused == str(ci)  # focus stays on the bar that was pressed
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.classList.contains('bar')")
    page.keyboard.press(" ")
    page.wait_for_function("document.querySelectorAll('.chip').length === 2")
    # tabs: arrow keys move between pages
    page.focus("#tab-explore")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.querySelector('main').dataset.page") == "trend"


def test_map_draws_one_shape_per_country_with_data(page, bundle) -> None:
    page.click("#tab-map")
    shapes = page.eval_on_selector_all(
        "svg.map path.mark", "els => els.map(e => [e.dataset.code, e.dataset.value, "
        "e.dataset.suppressed])")
    result = bundle.count(by=["CountryOfExploitation"])
    known = world()["shapes"]
    want = {r.cell["CountryOfExploitation"]: r for r in result.rows
            if r.cell["CountryOfExploitation"] in known}
    assert sorted(code for code, _, _ in shapes) == sorted(want)
    for code, value, suppressed in shapes:
        r = want[code]
        assert (suppressed == "true") == r.suppressed
        if not r.suppressed:
            assert float(value) == pytest.approx(r.estimate, abs=0.11)
    base = page.locator("svg.map path.base").count()
    assert base + len(shapes) == len(known)
    _shot(page, f"{bundle.synthesizer}-map")


def test_trend_has_one_point_per_period(page, bundle) -> None:
    page.click("#tab-trend")
    points = page.eval_on_selector_all(
        "svg.trend circle.point", "els => els.map(e => [e.dataset.period, e.dataset.value])")
    result = bundle.count(by=["yearOfRegistration"])
    assert [p for p, _ in points] == [r.cell["yearOfRegistration"] for r in result.rows]
    for (_, value), r in zip(points, result.rows, strict=True):
        if not r.suppressed:
            assert float(value) == pytest.approx(r.estimate, abs=0.11)
    # one band per run of shown periods: nothing is drawn across a "fewer than k" period
    flags = [r.suppressed for r in result.rows]
    runs = sum(1 for i, f in enumerate(flags) if not f and (i == 0 or flags[i - 1]))
    assert page.eval_on_selector_all("svg.trend polygon", "els => els.length") == runs
    _shot(page, f"{bundle.synthesizer}-trend")


def test_breakdown_pages_render_and_match(page, bundle) -> None:
    page.click("#tab-demographics")
    marks = page.eval_on_selector_all(
        "svg[data-chart=demographics] .mark",
        "els => els.map(e => [e.dataset.row, e.dataset.series, e.dataset.value])")
    assert len(marks) == 9 * 3  # age bands x genders
    for row, series, value in marks[:6]:
        r = bundle.count(where={"gender": [series]}, by=["ageBroad"]).rows
        cell = next(x for x in r if x.cell["ageBroad"] == row)
        if not cell.suppressed:
            assert float(value) == pytest.approx(cell.estimate, abs=0.11)
    _shot(page, f"{bundle.synthesizer}-demographics")
    page.click("#tab-split")
    assert page.locator("svg[data-chart=split] .mark").count() == 3 * 3
    _shot(page, f"{bundle.synthesizer}-split")
    page.click("#tab-crosstab")
    cells = page.locator("svg[data-chart=crosstab] .mark").count()
    assert cells == 3 * 9
    _shot(page, f"{bundle.synthesizer}-crosstab")
    page.click('button[data-action=table][data-card=crosstab]')
    assert page.locator("table.data tbody tr").count() == 27
    page.click("#tab-about")
    text = page.inner_text("main")
    assert "ε (epsilon)" in text and "not real people" in text and "TEST bundle" in text
    assert "one person" in text and "fewer than" in text
    _shot(page, f"{bundle.synthesizer}-about")


def test_download_of_filtered_rows_matches_the_synthetic_records(page, bundle) -> None:
    _click(page, "gender", "Man", bundle)
    page.click("button[data-action=dl-rows]")
    text = page.evaluate("window.ptsynthShowcase.lastDownload.text")
    lines = text.strip().split("\r\n")
    syn = bundle.synthetic
    assert len(lines) - 1 == int((syn["gender"] == "Man").sum())
    assert lines[0].split(",")[:3] == list(syn.columns[:3])
    page.click("button[data-action=dl-numbers]")
    numbers = page.evaluate("window.ptsynthShowcase.lastDownload.text")
    assert numbers.startswith("chart,value,estimate,low_95,high_95,source")
    assert "gender in {Man}" in numbers
