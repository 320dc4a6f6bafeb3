"""The monthly report pack: built from published figures only, every trust named with its
figures exactly as the API gives them, no count of 1 to 7 in any table or CSV below
national level, charts that render, an A4 tagged PDF under 2 MB, and the national pack at
national scale in under 10 s. Use cases on the in-memory fakes; the route and the command
over the real service are in test_pack_service.py."""

from __future__ import annotations

import csv
import io
import os
import random
import re
import subprocess
import time
import zipfile
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pdfplumber
import pytest
from pdfminer.pdftypes import resolve1
from PIL import Image

from services.reporting.checks import Malformed, NotFound
from services.reporting.domain.figures import PROFESSIONS, fold_site
from services.reporting.domain.months import fold_months, months_between, steps
from services.reporting.names import Names, load_names
from services.reporting.pack import Pack, change, headline, monthly_pack
from services.reporting.pack_render import LEAGUE, SITE_COLUMNS, csv_zip, html, pdf, shown
from services.reporting.reports import Reporting
from shared.followup import Timepoint, follow_up_window
from tests.fakes.reporting import FakeGenerationStore
from tests.reporting.test_application import EVENTS, applied

MONTH = "2025-05"
A4 = (595.0, 842.0)
MAX_BYTES = 2 * 1024 * 1024
ID_COLUMNS = {"level", "trustcode", "sitecode", "as_of", "name", "month", "figure", "label"}


def pdf_lines(document: bytes) -> list[str]:
    """The PDF's text as pdfplumber reads it, one line each, spaces collapsed."""
    with pdfplumber.open(io.BytesIO(document)) as doc:
        text = "\n".join(page.extract_text() or "" for page in doc.pages)
    return [re.sub(r"\s+", " ", line).strip() for line in text.splitlines()]


def pdftotext(document: bytes, tmp_path: Path) -> str:
    path = tmp_path / "pack.pdf"
    path.write_bytes(document)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout


def rendered_page(document: bytes, page: int, tmp_path: Path) -> list[tuple[int, int, int]]:
    """One page drawn by poppler's pdftoppm, as RGB pixels."""
    (tmp_path / "pack.pdf").write_bytes(document)
    prefix = tmp_path / f"page-{page}"
    pages = ["-f", str(page), "-l", str(page)]
    subprocess.run(
        [
            "pdftoppm",
            *pages,
            "-r",
            "60",
            "-png",
            "-singlefile",
            str(tmp_path / "pack.pdf"),
            str(prefix),
        ],
        check=True,
    )
    with Image.open(prefix.with_suffix(".png")) as image:
        rgb = image.convert("RGB")
        return [rgb.getpixel((x, y)) for y in range(rgb.height) for x in range(rgb.width)]  # type: ignore[misc]


class FigureCells(HTMLParser):
    """Every table cell that holds a figure: (its level, its text)."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[tuple[str, str]] = []
        self._level: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "td" and found.get("class") == "fig":
            self._level = found.get("data-level") or ""
            self.cells.append((self._level, ""))

    def handle_data(self, data: str) -> None:
        if self._level is not None:
            level, text = self.cells[-1]
            self.cells[-1] = (level, text + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._level = None


def small_count(text: str) -> bool:
    return bool(re.fullmatch(r"-?[1-7]", text.strip()))


def assert_no_small_counts(pack: Pack, document: str, archive: bytes) -> None:
    """No figure below national level is a count from 1 to 7, in the tables or the CSVs."""
    parser = FigureCells()
    parser.feed(document)
    below = [(lvl, t) for lvl, t in parser.cells if lvl in ("trust", "site")]
    assert below, "the pack has figure cells below national level"
    assert not [c for c in below if small_count(c[1])]
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        for name in z.namelist():
            if name == "definitions.csv":
                continue
            for row in csv.DictReader(io.StringIO(z.read(name).decode())):
                if row["level"] not in ("trust", "site"):
                    continue
                bad = {k: v for k, v in row.items() if k not in ID_COLUMNS and small_count(v)}
                assert not bad, (name, row["trustcode"], row["sitecode"], bad)


async def demo() -> Reporting:
    reports = await applied(EVENTS)
    reports.names = load_names()
    return reports


def test_change_is_shown_only_between_two_published_numbers() -> None:
    assert change(30, 25) == 5
    assert change("*", 25) is None
    assert change(30, "*") is None
    assert change(None, 0.5) is None
    assert change(0.75, 0.5) == 0.25
    series = {
        "months": ["2026-10", "2026-11"],
        "figures": {"clinicians_enrolled": ["*", 10], "clinicians_completed": [5, 15]},
    }
    rows = {r.figure: r for r in headline(series, "2026-11")}
    assert rows["clinicians_enrolled"].change is None
    assert rows["clinicians_completed"].change == 10


@pytest.mark.slow
async def test_national_pack_names_every_trust_with_its_published_figures(
    tmp_path: Path,
) -> None:
    reports = await demo()
    pack = await monthly_pack(reports, reports.names, MONTH)
    published = (await reports.trusts(False))["trusts"]
    document = pdf(pack)
    assert document.startswith(b"%PDF") and len(document) < MAX_BYTES
    lines = pdf_lines(document)
    layout = pdftotext(document, tmp_path)
    assert "Oxford University Hospitals" in layout and "Manchester University" in layout
    for t in published:
        name = reports.names.trust(t["trustcode"])
        row = " ".join([t["trustcode"], name, *(shown(t["figures"].get(c)) for c in LEAGUE)])
        assert row in lines, row
    # the headline, as the national months series publishes it
    months = await reports.months.report(None, None, False, None, MONTH)
    enrolled = months["figures"]["clinicians_enrolled"]
    assert f"Clinicians enrolled {enrolled[-1]} {enrolled[-2]} {enrolled[-1] - enrolled[-2]}" in (
        lines
    )
    assert_no_small_counts(pack, html(pack), csv_zip(pack))


@pytest.mark.slow
async def test_trust_pack_has_its_sites_and_suppressed_values_shown_as_suppressed() -> None:
    reports = await demo()
    pack = await monthly_pack(reports, reports.names, MONTH, "rth")
    assert pack.place == "Oxford University Hospitals (RTH)"
    published = await reports.trust("RTH", False)
    document = pdf(pack)
    lines = pdf_lines(document)
    assert any("Oxford University Hospitals (RTH)" in line for line in lines)
    for s in published["sites"]:
        row = " ".join([s["sitecode"], *(shown(s["figures"].get(c)) for c in SITE_COLUMNS)])
        assert row in lines, row
    suppressed = [k for k, v in published["figures"].items() if v == "*"]
    assert suppressed, "the demo trust has suppressed figures"
    text = html(pack)
    assert "* suppressed: 1 to 7 people" in text
    assert_no_small_counts(pack, text, csv_zip(pack))


@pytest.mark.slow
async def test_pdf_is_a4_tagged_with_text_alternatives_and_its_charts_render(
    tmp_path: Path,
) -> None:
    reports = await demo()
    pack = await monthly_pack(reports, reports.names, MONTH)
    document = pdf(pack)
    with pdfplumber.open(io.BytesIO(document)) as doc:
        assert all((round(p.width), round(p.height)) == A4 for p in doc.pages)
        catalog = doc.doc.catalog
        assert "StructTreeRoot" in catalog and resolve1(catalog["MarkInfo"])["Marked"]
        assert doc.metadata.get("Title", b"")
    assert 'alt="Line chart of clinicians for England' in html(pack)
    # Page 2 holds the charts: rendered by poppler, it shows the funnel's NHS-blue line.
    pixels = rendered_page(document, 2, tmp_path)
    blue = sum(1 for r, g, b in pixels if r < 40 and abs(g - 94) < 40 and b > 150)
    assert blue > 200, f"only {blue} chart-blue pixels on the charts' page"


async def test_a_month_not_yet_begun_or_malformed_is_refused() -> None:
    reports = await demo()
    with pytest.raises(NotFound, match="has not begun"):
        await monthly_pack(reports, Names(), "2025-07")
    with pytest.raises(Malformed, match="not a month"):
        await monthly_pack(reports, Names(), "2025-13")
    with pytest.raises(Malformed, match="before the programme"):
        await monthly_pack(reports, Names(), "0000-01")


class Today:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def national_scale(trusts: int = 160, per_trust: int = 8, span: int = 24) -> Reporting:
    """Site summaries and series for `trusts` trusts at national scale, stored directly in
    the fake generation as the bench (bench/reporting_months.py) stores them."""
    rng = random.Random(31)
    now = datetime(2026, 12, 3, 12, tzinfo=UTC)
    months = months_between("2025-01", "2026-12")[-span:]
    store = FakeGenerationStore()
    generation = store.generation(1)
    for t in range(trusts):
        trust = f"T{t:02d}"[:3] if t < 100 else f"U{t - 100:02d}"
        for s in range(per_trust):
            site = f"{trust}{s:02d}"
            clinicians, patients, lines = [], [], []
            for _ in range(rng.randrange(5, 40)):
                i = rng.randrange(len(months))
                stage = {"enrolled": True, "started": rng.random() < 0.6}
                stage["completed"] = stage["started"] and rng.random() < 0.6
                stage["intending"] = stage["completed"] and rng.random() < 0.8
                stage["delivering"] = stage["intending"] and rng.random() < 0.5
                state = {f"clinicians_{k}": int(v) for k, v in stage.items()}
                clinicians.append(
                    {"trust": trust, "site": site, "profession": rng.choice(PROFESSIONS), **stage}
                )
                lines.append([[months[i], state]])
            for _ in range(rng.randrange(0, 60)):
                i = rng.randrange(len(months))
                baseline = date.fromisoformat(f"{months[i]}-01") + timedelta(days=rng.randrange(28))
                due = {
                    tp: follow_up_window(baseline, Timepoint(tp)).due.isoformat()
                    for tp in ("month_3", "month_12")
                }
                recorded = {"month_3": rng.random() < 0.7, "month_12": rng.random() < 0.5}
                patients.append(
                    {"trust": trust, "site": site, "recorded": recorded, "due": due, "outcomes": {}}
                )
                lines.append(
                    [
                        [
                            months[i],
                            {
                                "patients_baseline": 1,
                                "patients_month_3": 0,
                                "patients_month_12": 0,
                                "due_month_3": due["month_3"],
                                "due_month_12": due["month_12"],
                            },
                        ]
                    ]
                )
            classes = [{"trust": trust, "site": site} for _ in range(rng.randrange(0, 6))]
            generation.sites[site] = {
                "_id": site,
                "summary": fold_site(site, trust, clinicians, patients, classes),
                "months": fold_months(steps(line) or [] for line in lines),
            }
    generation.as_of, generation.changes = now, len(generation.sites)
    return Reporting(store, Today(now), [])


@pytest.mark.slow
async def test_national_pack_at_national_scale_renders_in_under_10_seconds() -> None:
    """Timed in CPU seconds of this process (the pack is drawn on one thread), since the
    machine running the suite is shared; the wall time and load are printed beside it."""
    reports = national_scale()
    started, cpu = time.perf_counter(), time.process_time()
    pack = await monthly_pack(reports, Names(), "2026-12")
    document = pdf(pack)
    took, wall = time.process_time() - cpu, time.perf_counter() - started
    print(
        f"national pack: {len(pack.places)} trusts, PDF {len(document):,} bytes, "
        f"{took:.2f} CPU s ({wall:.2f} s wall; load {os.getloadavg()[0]:.1f})"
    )
    assert len(pack.places) == 160
    assert len(document) < MAX_BYTES
    assert took < 10, f"{took:.1f} CPU seconds"
    lines = pdf_lines(document)
    for t in pack.places[::20]:
        row = " ".join([t["trustcode"], t["name"], *(shown(t["figures"].get(c)) for c in LEAGUE)])
        assert row in lines, row
    assert_no_small_counts(pack, html(pack), csv_zip(pack))
