"""Console: the terminal (or a pipe) as one channel."""
from adapters.console.adapter import ConsoleAdapter

__all__ = ["ConsoleAdapter"]
