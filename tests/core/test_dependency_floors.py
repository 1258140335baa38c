"""Lower bounds in pyproject.toml that keep known security fixes in: the live view serves HTTP
and WebSockets with aiohttp, so no aiohttp release whose HTTP parser lacks the published
request-smuggling fixes may satisfy the ``view`` extra."""

from pathlib import Path

import tomllib
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]

AIOHTTP_WITHOUT_PARSER_FIXES = [
    "3.9.0",  # lenient header separators (CVE-2024-23829, fixed 3.9.2)
    "3.10.10",  # newlines in chunk extensions (CVE-2024-52304, fixed 3.10.11)
    "3.12.13",  # unparsed chunked trailer sections (CVE-2025-53643, fixed 3.12.14)
    "3.13.2",  # non-ASCII case folding in framing headers (CVE-2025-69224, fixed 3.13.3)
    "3.13.3",  # unlimited trailer headers, duplicate Host (CVE-2026-22815/-34525, fixed 3.13.4)
    "3.14.2",  # request smuggling through the WebSocket upgrade (CVE-2026-69243, fixed 3.14.3)
]


def _extra(name: str) -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["optional-dependencies"][name]]


def test_the_view_extra_admits_no_aiohttp_without_the_parser_fixes():
    (aiohttp,) = [r for r in _extra("view") if r.name == "aiohttp"]
    admitted = [v for v in AIOHTTP_WITHOUT_PARSER_FIXES if aiohttp.specifier.contains(v)]
    assert admitted == [], f"{aiohttp} admits {admitted}"
    assert aiohttp.specifier.contains("3.14.5"), "the release the suite runs on stays allowed"
