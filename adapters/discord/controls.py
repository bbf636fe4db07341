"""Answer controls on Discord: message components under an answer (Stop while it is
written, then Regenerate, 👍, 👎) and the modal that asks why an answer was bad.

The buttons are discord.py `DynamicItem`s: their custom_id (`aibot:<action>:<answer>`)
carries everything needed, so they keep working after a restart and no view is kept per
message."""
from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

import discord

from bot.core.answers import BAD, GOOD, REGENERATE, STOP, Controls

log = logging.getLogger(__name__)

TEMPLATE = r"aibot:(?P<action>stop|regenerate|good|bad):(?P<answer>[0-9a-f]{1,64})"
_LOOK = {
    STOP: ("Stop", "■", discord.ButtonStyle.danger),
    REGENERATE: ("Regenerate", "↻", discord.ButtonStyle.secondary),
    GOOD: (None, "👍", discord.ButtonStyle.secondary),
    BAD: (None, "👎", discord.ButtonStyle.secondary),
}
REASON_PREFIX = "aibot:reason:"

OnPress = Callable[[discord.Interaction, str, str], Awaitable[None]]  # (interaction, action, answer id)


def button_class(on_press: OnPress) -> type[discord.ui.DynamicItem]:
    """The control button type, bound to the adapter's handler (register it with
    `client.add_dynamic_items`)."""

    class ControlButton(discord.ui.DynamicItem[discord.ui.Button], template=TEMPLATE):
        def __init__(self, action: str, answer: str) -> None:
            label, emoji, style = _LOOK[action]
            super().__init__(discord.ui.Button(custom_id=f"aibot:{action}:{answer}", label=label, emoji=emoji, style=style))
            self.action = action
            self.answer = answer

        @classmethod
        async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str]):
            return cls(match["action"], match["answer"])

        async def callback(self, interaction: discord.Interaction) -> None:
            await on_press(interaction, self.action, self.answer)

    return ControlButton


def controls_view(button: type[discord.ui.DynamicItem], controls: Controls) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for action in ([STOP] if controls.running else [REGENERATE, GOOD, BAD]):
        view.add_item(button(action, controls.answer))  # type: ignore[call-arg]
    return view


class ReasonModal(discord.ui.Modal):
    """What a 👎 opens: one optional paragraph."""

    reason: discord.ui.TextInput = discord.ui.TextInput(
        label="What was wrong? (optional)", style=discord.TextStyle.paragraph, required=False, max_length=2000,
        custom_id="reason",
    )

    def __init__(self, answer: str, on_submit: Callable[[discord.Interaction, str, str], Awaitable[None]]) -> None:
        super().__init__(title="What went wrong?", timeout=600, custom_id=f"{REASON_PREFIX}{answer}")
        self.answer = answer
        self._submit = on_submit

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self._submit(interaction, self.answer, self.reason.value or "")
