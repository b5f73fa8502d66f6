"""The comparison page: what `localctrl report` writes beside the tables, looked at in a real browser (headless Chromium)."""

import re

import numpy as np
from browser import rendered_dom, screenshot
from PIL import Image

from reports.mask_bins import bin_of
from tests.reports.conftest import ITEMS


def rows_of(dom: str) -> list[str]:
    """The items the rendered table shows, in order (the table's body, not the script that builds it)."""
    body = dom[dom.index('<table class="items"'):dom.index("</table>", dom.index('<table class="items"'))]
    return re.findall(r'<tr data-item="([^"]+)"', body)


def test_the_page_and_its_outlined_images_are_written_and_logged(built):
    page = built.out / "comparison.html"
    assert page in built.files and "comparison.html" in (built.out / "report.md").read_text()
    images = sorted((built.out / "comparison").iterdir())
    assert len(images) == ITEMS * (1 + 6) and all(path in built.files for path in images)  # condition + 6 methods per item
    outlined = np.array(Image.open(built.out / "comparison" / "scene-000000-condition.png").convert("RGB"))
    assert (outlined == (230, 30, 30)).all(axis=-1).sum() > 0  # the mask's outline, drawn in red
    assert "<script" in page.read_text() and "{{" not in page.read_text()  # a rendered template, data inlined


def test_in_a_browser_the_table_images_and_controls_render(built):
    url = (built.out / "comparison.html").as_uri()
    dom = rendered_dom(url)
    assert rows_of(dom) == [f"scene-{k:06d}" for k in range(ITEMS)]  # every item, in order
    table = dom[dom.index('<table class="items"'):dom.index("<script")]
    assert len(re.findall(r'<th data-method="', table)) == 6 and table.count('<img src="comparison/') == ITEMS * 7
    assert f"{ITEMS} of {ITEMS} items" in dom
    for control in ('id="view"', 'id="metric"', 'id="bin"', 'id="method-a"', 'id="method-b"', 'name="method"'):
        assert control in dom, control
    # under each image, its own per-sample scores: the global adapter's edge F1 on the first item, as the scores say
    from bench.metrics.registry import label
    from reports.runs import load_suite_run, per_sample

    run = load_suite_run(built.runs[0].run_id)
    scores = per_sample(next(m for m in run.methods if m.name == "global")).query("seed == 0").set_index("item_id")
    first_row = table[table.index('data-item="scene-000000"'):table.index('data-item="scene-000001"')]
    assert f'data-key="edge_f1_in">{label("edge_f1_in")}: {scores.loc["scene-000000", "edge_f1_in"]:.3f}' in first_row
    assert screenshot(url, "comparison-page.png").stat().st_size > 10_000


def test_in_a_browser_the_views_sort_and_filter_as_the_scores_say(built):
    from reports.runs import load_suite_run, per_sample

    run = load_suite_run(built.runs[0].run_id)
    frames = {m.name: per_sample(m).query("seed == 0").set_index("item_id") for m in run.methods}
    url = (built.out / "comparison.html").as_uri()
    worst = rows_of(rendered_dom(url + "#view=worst&metric=edge_f1_in&a=global"))
    assert worst == list(frames["global"]["edge_f1_in"].sort_values().index)  # higher is better: lowest first
    difference = (frames["global"]["edge_f1_in"] - frames["text-only"]["edge_f1_in"]).abs()
    diff = rows_of(rendered_dom(url + "#view=diff&metric=edge_f1_in&a=global&b=text-only"))
    assert diff == list(difference.sort_values(ascending=False).index)
    areas = {f"scene-{k:06d}": (16 * (16 + 2 * k)) / 32**2 for k in range(ITEMS)}
    large = rows_of(rendered_dom(url + "#bin=large&hide=masked,z0"))
    assert large == [item for item, area in areas.items() if bin_of(area) == "large"] and 0 < len(large) < ITEMS
    hidden = rendered_dom(url + "#hide=masked,z0")
    hidden = hidden[hidden.index('<table class="items"'):hidden.index("<script")]
    assert len(re.findall(r'<th data-method="', hidden)) == 4 and 'data-method="masked"' not in hidden
