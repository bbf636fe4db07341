"""The composition root's lists: the only place that names the patterns and platforms.

Each is found by name: a pattern is the package `patterns/<name>/` exporting its
feature class as `FEATURE`, a platform the package `adapters/<name>/` exporting its
descriptor as `PLATFORM`. Adding one is its folder plus its name below. A dotted name
is a module path, for a unit that lives elsewhere (a plugin, or the tests' dummies).
"""
from __future__ import annotations

import importlib

from bot.core.errors import ConfigError
from bot.core.feature import Feature, Platform
from bot.core.usage import UsageStats

# The order in which they are asked to answer a mention or DM: the cheapest pattern that
# fits first, each deciding without a model call; plain streamed chat last, it takes the rest.
# `workspace` (per-workspace settings) comes first: it turns away mentions in channels the
# workspace excluded before any pattern answers them.
PATTERNS = ("workspace", "summarize", "batch", "agent", "rag", "chat")

# Every platform whose settings are there runs; the fallback (the console) when none is.
PLATFORMS = ("slack", "discord", "console")

BUILT_IN: tuple[type[Feature], ...] = (UsageStats,)  # the core's own: /ai-stats, `aibot stats`


def features(names: tuple[str, ...] = PATTERNS) -> tuple[type[Feature], ...]:
    return BUILT_IN + tuple(_load(_module("patterns", name), "FEATURE", Feature) for name in names)


def platforms(names: tuple[str, ...] = PLATFORMS) -> tuple[type[Platform], ...]:
    return tuple(_load(_module("adapters", name), "PLATFORM", Platform) for name in names)


def _module(home: str, name: str) -> str:
    return name if "." in name else f"{home}.{name}"


def _load(module: str, attr: str, kind: type) -> type:
    try:
        package = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        raise ConfigError(f"there is no package {module}: check the names in bot/app/composition.py") from None
    found = getattr(package, attr, None)
    if not (isinstance(found, type) and issubclass(found, kind)):
        raise ConfigError(f"{module} must export its {kind.__name__} subclass as {attr}")
    return found
