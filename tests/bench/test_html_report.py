"""Self-contained HTML reports: conversion, embedding, and a real headless browser."""

import re
import shutil
import subprocess

import pytest

from beyondsgd.bench.html import markdown_to_html, write_html_report
from beyondsgd.bench.io import write_atomic

# A 1x1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e221bc330000000049454e44ae426082"
)

MD = """# Title *here*

Some `code <b>` and **bold** text,
continued [a link](https://example.org).

| a | b |
|---|---|
| 1 | x |

- one
- two

![plot](plot.png)

```text
<raw> stays escaped
```
"""


def test_markdown_conversion_and_embedding(tmp_path):
    (tmp_path / "plot.png").write_bytes(PNG)
    page = markdown_to_html(MD, tmp_path, "T")
    assert page.startswith("<!DOCTYPE html>") and "<title>T</title>" in page
    assert "<h1>Title <em>here</em></h1>" in page
    assert "<code>code &lt;b&gt;</code>" in page and "<strong>bold</strong>" in page
    assert '<a href="https://example.org">a link</a>' in page
    assert "<th>a</th><th>b</th>" in page and "<td>1</td><td>x</td>" in page
    assert "<ul><li>one</li><li>two</li></ul>" in page
    assert '<img alt="plot" src="data:image/png;base64,' in page and "plot.png" not in page
    assert "&lt;raw&gt; stays escaped" in page


def test_block_quote_is_a_blockquote_not_a_literal_marker(tmp_path):
    page = markdown_to_html("Before.\n\n> Verdict rule: **holds**\n> when p < 0.05.\n\nAfter.", tmp_path)
    assert "<blockquote><p>Verdict rule: <strong>holds</strong> when p &lt; 0.05.</p></blockquote>" in page
    assert "&gt; Verdict" not in page and "<p>Before.</p>" in page and "<p>After.</p>" in page


def test_missing_image_is_a_visible_note_not_a_broken_link(tmp_path):
    page = markdown_to_html("![x](nope.png)", tmp_path)
    assert "<img" not in page and "image not found: nope.png" in page


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


# Appended to a copy of the page: after load, count images that failed to decode.
_PROBE = (
    "<script>window.addEventListener('load',()=>{const im=[...document.images];"
    "document.body.setAttribute('data-images',im.length);"
    "document.body.setAttribute('data-broken',im.filter(i=>!i.complete||i.naturalWidth===0).length);});</script>"
)


def _broken_images(browser: str, page_path) -> tuple[int, int]:
    probe = page_path.with_name("probe.html")
    probe.write_text(page_path.read_text().replace("</body>", _PROBE + "</body>"))
    proc = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=5000",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    m = re.search(r'data-images="(\d+)"\s+data-broken="(\d+)"', proc.stdout)
    assert m, f"no probe result from the browser: {proc.stderr[-1500:]}"
    return int(m.group(1)), int(m.group(2))


def test_report_has_no_broken_image_in_headless_chromium(tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip("no Chromium/Chrome found (Debian: apt-get install chromium; .ci/run installs it)")
    from beyondsgd.bench.plots import plot_metric_grid

    rows = [
        {
            "algorithm": a,
            "seed": 0,
            "step": s,
            "epoch": s,
            "train_loss": 1.0 / (s + 1),
            "test_loss": 1.2 / (s + 1),
            "test_accuracy": s / 4,
        }
        for a in ("sgd", "adam")
        for s in range(4)
    ]
    plot_metric_grid(rows, tmp_path / "curves.png", "epoch")
    write_atomic(tmp_path / "report.md", "# r\n\n![curves](curves.png)\n\n![tiny](tiny.png)\n")
    (tmp_path / "tiny.png").write_bytes(PNG)
    page = write_html_report(tmp_path / "report.md")
    (tmp_path / "curves.png").unlink()  # the page must not need the files next to it
    (tmp_path / "tiny.png").unlink()
    assert _broken_images(browser, page) == (2, 0)
    # The check can fail: a page with a plain link to a missing file has a broken image.
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><img src="gone.png"></body></html>')
    assert _broken_images(browser, bad) == (1, 1)


def test_compare_report_renders_verdict_bold_and_plots_in_headless_chromium(tmp_path):
    """The compare report as a reader sees it: verdict block, bold best values, both plots decoded."""
    browser = _browser()
    if browser is None:
        pytest.skip("no Chromium/Chrome found (Debian: apt-get install chromium; .ci/run installs it)")
    from beyondsgd.bench.compare import CompareConfig, run_compare

    cfg = CompareConfig(
        algorithms=["sgd", "adam", "hb", "m_sgd"],
        seeds=2,
        epochs=2,
        dataset_options={"n_train": 200},
        model_options={"widths": (16,)},
        out=tmp_path / "cmp",
    )
    run_compare(cfg, progress=False)
    page = tmp_path / "cmp" / "report.html"
    assert _broken_images(browser, page) == (2, 0)
    dom = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "<h2>Verdict</h2>" in dom and "Best final test accuracy" in dom and "Holm-adjusted" in dom
    assert re.search(r"<td><strong>0\.\d{4} \[", dom)  # the best mean of a column is bold in the table
    assert "Each family's best member against the best baseline" in dom
