"""report/references.bib: entries whose details a reviewer checked against their source."""

import re
from pathlib import Path

BIB = Path(__file__).resolve().parents[1] / "report" / "references.bib"


def _authors(key: str) -> list[str]:
    text = BIB.read_text()
    entry = text[text.index("{" + key + ","):]
    entry = entry[:entry.index("\n}")]
    field = re.search(r"author\s*=\s*\{(.*)\},?\s*$", entry, re.M).group(1)
    return [a.strip() for a in field.split(" and ")]


def test_grissom2024_lists_its_authors_in_the_arxiv_order():
    # arXiv 2402.09786 (v1-v4) lists: Alvin Grissom II, Ryan F. Lei, Matt Gusdorff,
    # Jeova Farias Sales Rocha Neto, Bailey Lin, Ryan Trotter
    assert _authors("grissom2024") == ["Grissom II, Alvin", "Lei, Ryan F.", "Gusdorff, Matt",
                                       "Farias Sales Rocha Neto, Jeova", "Lin, Bailey", "Trotter, Ryan"]
