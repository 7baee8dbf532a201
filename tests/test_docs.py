"""The docs: the MkDocs site in docs/ builds with --strict (mkdocs.yml turns a broken link or
anchor, and a page left out of the nav, into a warning, which --strict makes an error), and the
README stays short and links only to files that exist."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
#: The README keeps the pitch, the two commands, the demo's output, the pipeline map and links;
#: reference material goes to docs/.
README_MAX_BYTES = 10 * 1024

# [text](target) and [text](target "title"); images too. Reference-style links are not used.
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def test_site_builds_strictly(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's banner about MkDocs 2.0, not a warning
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    assert (tmp_path / "site" / "index.html").is_file()


def test_readme_is_short():
    size = README.stat().st_size
    assert size < README_MAX_BYTES, f"README.md is {size} bytes (< {README_MAX_BYTES}): move reference material to docs/"


def _relative_links(text: str) -> list[str]:
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks hold no links
    targets = [m.group(1) for m in _LINK.finditer(text)]
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.I) and not t.startswith("#")]


def test_readme_links_resolve():
    links = _relative_links(README.read_text(encoding="utf-8"))
    assert links, "README.md links into docs/"
    missing = [t for t in links if not (README.parent / t.split("#", 1)[0]).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_link_finder():
    text = ('[a](docs/x.md) [b](docs/y.md#part) ![c](img.png "t") [d](https://e.org) [f](#top)\n'
            "```\n[g](not/a/link.md)\n```\n")
    assert _relative_links(text) == ["docs/x.md", "docs/y.md#part", "img.png"]
