"""What each answer control does when pressed (`bot.core.answers.Press`); the router
calls `handle_press` for presses, outside the per-thread lock (Stop must not wait for
the answer it stops). The reply, if any, is for the presser only."""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from bot.core.answers import BAD, GOOD, REASON, REGENERATE, STOP, Press, fresh

if TYPE_CHECKING:
    from bot.core.router import Router

log = logging.getLogger(__name__)

GONE = "I no longer have that question (I may have restarted since); please ask again."


async def handle_press(router: "Router", press: Press, conv) -> str | None:
    """Do what `press` asks; return the note for the presser, if any."""
    services = router.services
    answers = services.answers
    answer = answers.get(press.answer)
    if press.action == STOP:
        if answer is None or not answer.running:
            return "That answer has already finished."
        if press.user != answer.msg.user:
            return "Only the person who asked can stop this answer."
        answer.stop()
        return None  # the answer's message closes itself with what was written
    if press.action == REGENERATE:
        if answer is None:
            return GONE
        if answer.running:
            return "That answer is still being written; stop it first or wait for it."
        if press.user != answer.msg.user:
            return "Only the person who asked can regenerate this answer."
        with fresh():  # the new task inherits it: every model call skips the caches
            router.submit(replace(answer.msg, dedupe_key=None), answer.conv)
        return None
    if press.action in (GOOD, BAD):
        if services.feedback is None:
            return None
        await services.feedback.rate(press, 1 if press.action == GOOD else -1)
        if press.action == GOOD:
            return "Thanks for the 👍."
        return None  # the adapter asks for a reason; the thanks comes with it
    if press.action == REASON:
        if services.feedback is not None and press.reason and await services.feedback.reason(press):
            return "Thanks, that helps."
        return None
    log.info("unknown answer control %r ignored", press.action)
    return None
