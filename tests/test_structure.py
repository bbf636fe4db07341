"""The structure is a contract: the layers in `.importlinter` hold (and the check
really fails when an import breaks them), and the generated parts of the docs and of
the Slack manifest agree with the code they are generated from."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GENERATED = [".env.example", "docs/configuration.md", "docs/commands.md", "deploy/slack-manifest.yaml"]


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "lint-imports"), "--no-cache"], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(cwd), "PATH": str(BIN)})


def test_the_layer_contract_holds():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 3 kept, 0 broken." in done.stdout


@pytest.mark.parametrize(
    "module, line, broken",
    [
        ("bot/core/messages.py", "import patterns.chat", "above the core"),  # the core importing a pattern
        ("bot/core/router.py", "import adapters.console", "above the core"),  # ... or an adapter
        ("patterns/chat/__init__.py", "import bot.app", "above the core"),  # a pattern reaching up
        ("patterns/chat/__init__.py", "import patterns.rag", "stands alone"),  # patterns depending on each other
        ("adapters/slack/normalize.py", "import adapters.discord", "stands alone"),
        ("bot/core/errors.py", "import bot.core.router", "No import cycles"),  # a cycle inside the core
    ],
)
def test_the_check_fails_when_an_import_breaks_a_layer(tmp_path, module, line, broken):
    for part in ("bot", "adapters", "patterns", ".importlinter"):
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, tmp_path / part)
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}  # the mistake under test\n")
    done = lint_imports(tmp_path)
    assert done.returncode != 0 and broken in done.stdout, done.stdout + done.stderr


def test_generated_docs_and_manifest_are_current():
    done = subprocess.run([str(BIN / "cog"), "--check", *GENERATED], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, (
        f"{done.stdout}{done.stderr}\nRegenerate with: .venv/bin/cog -r {' '.join(GENERATED)}"
    )
