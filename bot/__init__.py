"""aibot: the core (bot.core), the composition root (bot.app) and the `aibot` command
(bot.cli). Patterns live in patterns/, platform adapters in adapters/."""

__version__ = "0.1.0"
