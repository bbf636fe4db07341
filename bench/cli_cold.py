"""Wall-clock time of `aibot` commands started fresh (a new Python process each run, as a
user types them): median and spread over several rounds, commands interleaved so that a
noisy neighbour on a shared machine affects them alike.

    .venv/bin/python bench/cli_cold.py --data-dir /tmp/aibot-cli --rounds 7

The data directory gets a three-file knowledge base first (`aibot kb add`, which also
makes the ONNX copy of the embedding model), so `kb search` measures the usual case: the
embedded PostgreSQL started by the command, the query embedded by ONNX Runtime.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AIBOT = str(Path(sys.executable).with_name("aibot"))
COMMANDS = {
    "--help": ["--help"],
    "kb list": ["kb", "list"],
    "kb search": ["kb", "search", "how does wing flutter start"],
}


def run(args: list[str], env: dict) -> float:
    t = time.perf_counter()
    subprocess.run([AIBOT, *args], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    data = args.data_dir or Path(tempfile.mkdtemp(prefix="aibot-cli-"))
    env = {**os.environ, "AIBOT_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1"}
    for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "DATABASE_URL", "SLACK_BOT_TOKEN", "DISCORD_BOT_TOKEN"):
        env.pop(key, None)
    docs = Path(tempfile.mkdtemp(prefix="aibot-cli-docs-"))
    for i, text in enumerate(("Wing flutter starts when aerodynamic forces couple with the wing's elastic modes.",
                              "Boundary layer transition depends on the Reynolds number.",
                              "Library catalogues index documents by subject headings.")):
        (docs / f"note{i}.md").write_text(f"# Note {i}\n\n{text}\n")
    subprocess.run([AIBOT, "kb", "add", str(docs)], env=env, check=True, stdout=subprocess.DEVNULL)
    for name, cmd in COMMANDS.items():  # warm the file cache once
        run(cmd, env)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.rounds):
        for name, cmd in COMMANDS.items():
            times[name].append(run(cmd, env))
    out = {name: {"median_s": round(statistics.median(v), 3), "min_s": round(min(v), 3), "max_s": round(max(v), 3),
                  "runs": len(v)} for name, v in times.items()}
    out["load_average_after"] = os.getloadavg()[0]
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
