"""The composition root: builds the services once, composes the features and platforms
that `bot.app.composition` lists, and runs them. The top layer with the CLI: nothing in
the core, a pattern or an adapter imports it."""
from bot.app.app import App
from bot.app.composition import PATTERNS, PLATFORMS, features, platforms
from bot.app.runtime import Runtime

__all__ = ["App", "PATTERNS", "PLATFORMS", "Runtime", "features", "platforms"]
