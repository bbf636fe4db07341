"""Where the bot keeps its local data (the embedded PostgreSQL, the console's history):
one directory per user, so `aibot kb list` finds the same knowledge base from any
working directory.

`AIBOT_DATA_DIR` decides when set. Otherwise the platform's user data directory
(platformdirs: `~/.local/share/aibot` on Linux or `$XDG_DATA_HOME/aibot`,
`~/Library/Application Support/aibot` on macOS, `%LOCALAPPDATA%\\aibot` on Windows),
except that a `./.aibot` holding a database (where older releases kept it) is
still used, with a note saying how to move it.
"""
from __future__ import annotations

from pathlib import Path

import platformdirs

APP = "aibot"
LEGACY = Path(".aibot")  # in the working directory, before the per-user default


def user_data_dir() -> Path:
    return platformdirs.user_data_path(APP, appauthor=False)


def default() -> tuple[Path, str | None]:
    """The data directory when AIBOT_DATA_DIR is unset, and a note when it is the legacy one."""
    legacy = LEGACY.resolve()
    if (legacy / "pg").is_dir():
        home = user_data_dir()
        return legacy, (
            f"using the database in {legacy} (older releases kept it in ./.aibot of the working "
            f"directory; aibot now uses {home} from anywhere). To keep one database, move it: "
            f"mkdir -p {home.parent} && mv {legacy} {home} (or set AIBOT_DATA_DIR={legacy})."
        )
    return user_data_dir(), None
