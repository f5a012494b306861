"""`dvc plots show` draws every chart of dvc.yaml's `plots:` offline, in headless Chromium.

The page comes from the project's template (.dvc/config `plots.html_template`, .dvc/plots/page.html), which loads
vega, vega-lite and vega-embed from node_modules/ (`make js`). The test renders the committed plot files in a scratch
repository (no pipeline run) and opens the page with every host name unresolvable, so a chart that needed a CDN
stays blank and fails the test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, git_init, run_in
from dvc_render.base import Renderer
from dvc_render.image import ImageRenderer

CHROMIUM = shutil.which("chromium")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not IN_CI,
    reason="chromium not installed (apt-get install chromium; .ci/run installs it); with CI=true this fails instead",
)

# As root Chromium needs --no-sandbox; the --disable-* flags stop its own background fetches, and the resolver rule
# fails any fetch the page makes.
CHROMIUM_FLAGS = [
    *("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"),
    *("--disable-background-networking", "--disable-component-update", "--disable-sync"),
    *("--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=15000", "--dump-dom"),
]
# A script, stylesheet or image the page would fetch from a host rather than from disk.
REMOTE = re.compile(r"""\b(?:src|href)\s*=\s*["']?\s*(?:[a-z]+:)?//(?!/)""", re.IGNORECASE)


def plot_entries(repo: Path) -> list[tuple[str, dict]]:
    """dvc.yaml's top-level `plots:` as (name, properties) pairs; a bare path has no properties."""
    entries = yaml.safe_load((repo / "dvc.yaml").read_text())["plots"]
    return [next(iter(e.items())) if isinstance(e, dict) else (e, {}) for e in entries]


def declared_charts(repo: Path) -> dict[str, str]:
    """The page's chart containers that dvc.yaml's top-level `plots:` declares: DVC's div id -> "vega" or "image".

    A named entry (its `y` maps files to columns) is one chart; a file is one chart; a folder, one per file in it.
    """
    charts = {}
    for name, props in plot_entries(repo):
        if isinstance((props or {}).get("y"), dict):
            files = [name]
        elif (repo / name).is_dir():
            files = sorted(p.relative_to(repo).as_posix() for p in (repo / name).rglob("*") if p.is_file())
        else:
            files = [name]
        for file in files:
            kind = "image" if Path(file).suffix.lower() in ImageRenderer.EXTENSIONS else "vega"
            charts[Renderer.remove_special_chars(file)] = kind
    return charts


class ChartScan(HTMLParser):
    """Reads a rendered page: per chart container (a `<div>` whose id is in `ids`), the SVG roots vega drew, the
    items inside its data marks (`g.role-mark`) and its `<img>` sources; and the page's `p.plot-error` notes."""

    VOID = frozenset(["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"])

    def __init__(self, ids: set[str]):
        super().__init__()
        self.ids = ids
        self.charts: dict[str, dict] = {}
        self.notes: list[str] = []
        self.open: list[tuple[str, str | None, bool, bool]] = []  # tag, chart id, inside a mark, inside a note

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        chart, in_mark, in_note = self.open[-1][1:] if self.open else (None, False, False)
        if tag == "div" and attrs.get("id") in self.ids:
            chart = attrs["id"]
            self.charts[chart] = {"svg": 0, "items": 0, "images": []}
        if chart is not None:
            found = self.charts[chart]
            found["svg"] += tag == "svg" and "marks" in classes
            found["items"] += in_mark and (tag in {"text", "image"} or (tag == "path" and bool(attrs.get("d"))))
            if tag == "img":
                found["images"].append(attrs.get("src") or "")
        if tag == "p" and "plot-error" in classes:
            self.notes.append("")
            in_note = True
        if tag not in self.VOID:
            self.open.append((tag, chart, in_mark or "role-mark" in classes, in_note))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.open.pop()

    def handle_endtag(self, tag):
        while self.open and self.open.pop()[0] != tag:
            pass

    def handle_data(self, data):
        if self.open and self.open[-1][3]:
            self.notes[-1] += data


def scratch_repo(repo: Path) -> Path:
    """A git repository holding the project's plot definitions and the committed files they plot."""
    for name in ("dvc.yaml", "params.yaml", ".dvc/config"):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, repo / name)
    shutil.copytree(ROOT / ".dvc" / "plots", repo / ".dvc" / "plots")
    for name, props in plot_entries(ROOT):
        y = (props or {}).get("y")
        for source in map(Path, y if isinstance(y, dict) else [name]):
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, repo / source, dirs_exist_ok=True)
            elif (ROOT / source).is_file():
                (repo / source).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / source, repo / source)
    git_init(repo)
    # After the commit: node_modules/ is the checkout's, as `make js` installed it.
    (repo / "node_modules").symlink_to(ROOT / "node_modules", target_is_directory=True)
    return repo


def test_every_declared_chart_draws_offline(tmp_path):
    assert CHROMIUM, "chromium not installed, and CI is set: apt-get install chromium (as .ci/run does)"
    repo = scratch_repo(tmp_path / "repo")
    shown = run_in(repo, "dvc", "plots", "show", timeout=120)
    assert shown.returncode == 0, shown.stderr
    page = repo / "dvc_plots" / "index.html"
    html = page.read_text()
    assert not REMOTE.findall(html), f"{page} fetches from the network: {REMOTE.findall(html)}"

    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    argv = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", page.as_uri()]
    browser = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=90)
    assert browser.returncode == 0, browser.stderr[-2000:]

    charts = declared_charts(repo)
    scan = ChartScan(set(charts))
    scan.feed(browser.stdout)
    failures = []
    for chart, kind in charts.items():
        found = scan.charts.get(chart)
        if found is None:
            failures.append(f"{chart}: not on the page (is its file committed?)")
        elif kind == "vega" and not (found["svg"] == 1 and found["items"] > 0):
            failures.append(f"{chart}: {found['svg']} vega SVG roots, {found['items']} drawn mark items")
        elif kind == "image" and not any(src and (page.parent / src).is_file() for src in found["images"]):
            failures.append(f"{chart}: no <img> of a file beside the page ({found['images']})")
    assert not failures and not scan.notes, "\n".join(["charts that did not draw:", *failures, *scan.notes])
