"""The top costs in py-spy's collapsed stacks (`py-spy record --format raw`): the share of
samples in which each function is on the stack (inclusive) and at its top (self), and
the same grouped by package, so "what bounds it" reads off one table.

    .venv/bin/python bench/profile_top.py /tmp/load.spy.0 [--top 25] [--idle]

Samples of idle threads (the event loop waiting in `select`/`epoll`, executor threads
waiting for work) are left out unless `--idle`: they are not CPU.
"""
from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

IDLE = re.compile(r"\b(select|poll|epoll|_worker|wait)\b \(")
FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:]*)(?::\d+)?\)$")


def package(path: str) -> str:
    """The package a frame's file belongs to: py-spy names files from their sys.path entry
    (`sqlalchemy/engine/base.py`, `asyncio/events.py`); the project's own by two levels
    (`bot/core`, `adapters/slack`)."""
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    parts = path.split("/")
    if parts[0] in ("bot", "adapters", "patterns") and len(parts) > 2:
        return "/".join(parts[:2])
    return parts[0].removesuffix(".py")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--idle", action="store_true", help="count idle samples too")
    args = p.parse_args()
    total = 0
    inclusive: Counter[str] = Counter()
    self_: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    for f in args.files:
        for line in f.read_text().splitlines():
            stack, _, n = line.rpartition(" ")
            if not stack or not n.isdigit():
                continue
            frames = [fr for fr in stack.split(";") if FRAME.match(fr) and not fr.startswith(("process ", "thread "))]
            if not frames:
                continue
            if not args.idle and IDLE.search(frames[-1]):
                continue
            count = int(n)
            total += count
            seen = set()
            for fr in frames:
                if fr not in seen:
                    inclusive[fr] += count
                    seen.add(fr)
            self_[frames[-1]] += count
            m = FRAME.match(frames[-1])
            packages[package(m.group("file")) if m else frames[-1]] += count
    print(f"{total} samples (100 per second per process)\n")
    print("| self % | package (by the frame at the top of the stack) |\n|---|---|")
    for name, n in packages.most_common(args.top):
        print(f"| {100 * n / total:.1f} | {name} |")
    print("\n| inclusive % | self % | function |\n|---|---|---|")
    for name, n in inclusive.most_common(args.top):
        print(f"| {100 * n / total:.1f} | {100 * self_[name] / total:.1f} | {name[:140]} |")


if __name__ == "__main__":
    main()
