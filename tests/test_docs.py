"""The docs site builds (strict: no broken link, no page left out of the nav, the Slack
manifest included) and the README's relative links lead to files that exist."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent

# [text](target) or ![alt](target "title"), and reference definitions `[label]: target`
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
FENCED_CODE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def test_docs_site_builds_strict(tmp_path):
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")  # only silences material's banner
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}{done.stderr}"
    for page in (
        "index.html",
        "setup/slack/index.html",
        "setup/models/index.html",
        "patterns/index.html",
        "configuration/index.html",
        "commands/index.html",
    ):
        assert (site / page).is_file(), f"{page} is missing from the built site"
    slack = (site / "setup/slack/index.html").read_text(encoding="utf-8")
    assert "socket_mode_enabled" in slack, "deploy/slack-manifest.yaml was not included in the Slack page"


def relative_links(markdown: str) -> list[str]:
    text = INLINE_CODE.sub("", FENCED_CODE.sub("", markdown))
    targets = INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text)
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.I) and not t.startswith("#")]


def test_readme_relative_links_point_to_files():
    links = relative_links((ROOT / "README.md").read_text(encoding="utf-8"))
    assert links, "README.md has no relative links; expected links to the docs pages"
    missing = [link for link in links if not (ROOT / unquote(link.split("#", 1)[0])).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"
