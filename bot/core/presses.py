"""What each answer control does when pressed (`bot.core.answers.Press`); the router
calls `handle_press` for presses, outside the per-thread lock (Stop must not wait for
the answer it stops). The reply, if any, is for the presser only.

An answer written in this process is stopped or regenerated here directly. Any other is
looked up in the database (`bot.core.answer_store`): Stop is sent to the process writing
it, Regenerate answers the stored question again here, in a conversation the press's
own conversation opens for it (`for_question`), else the platform's channel opener."""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from bot.core.answers import BAD, GOOD, REASON, REGENERATE, STOP, Press, fresh

if TYPE_CHECKING:
    from bot.core.router import Router

log = logging.getLogger(__name__)

GONE = "I no longer have that question (I may have restarted since); please ask again."
FINISHED = "That answer has already finished."
NOT_ASKER_STOP = "Only the person who asked can stop this answer."
NOT_ASKER_AGAIN = "Only the person who asked can regenerate this answer."
STILL_RUNNING = "That answer is still being written; stop it first or wait for it."
UNREACHABLE = ("I couldn't reach the process writing that answer (it may be restarting); "
               "it stops on its own when it finishes.")
STOP_ACK_SECONDS = 5.0  # how long a Stop sent to another process waits for that answer to end


async def handle_press(router: "Router", press: Press, conv) -> str | None:
    """Do what `press` asks; return the note for the presser, if any."""
    services = router.services
    if press.action == STOP:
        note = await _stop(services.answers, await _named(services.answers, press))
        return None if press.quiet else note
    if press.action == REGENERATE:
        return await _regenerate(router, press, conv)
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


async def _named(answers, press: Press) -> Press:
    """A press that names the answer's message (a reaction) with the answer's id filled in."""
    if press.answer or not press.message:
        return press
    local = answers.on_message(press.platform, press.message)
    if local is not None:
        return replace(press, answer=local.id)
    found = await answers.store.by_message(press.platform, press.channel, press.message) if answers.store else None
    return replace(press, answer=found.id if found else "")


async def _stop(answers, press: Press) -> str | None:
    if not press.answer:
        return FINISHED  # not an answer (of the last AIBOT_ANSWER_RETENTION_DAYS)
    answer = answers.get(press.answer)
    if answer is not None:
        if not answer.running:
            return FINISHED
        if press.user != answer.msg.user:
            return NOT_ASKER_STOP
        answer.stop()
        return None  # the answer's message closes itself with what was written
    store = answers.store
    found = await store.find(press.answer) if store is not None else None
    if found is None or not found.running:
        return FINISHED
    if press.user != found.asker:
        return NOT_ASKER_STOP
    if not await store.request_stop(found.id):
        return FINISHED
    if not await store.wait_finished(found.id, timeout=STOP_ACK_SECONDS):
        log.warning("a Stop sent to another process for answer %s was not heard", found.id)
        return UNREACHABLE
    return None


async def _regenerate(router: "Router", press: Press, conv) -> str | None:
    answers = router.services.answers
    answer = answers.get(press.answer)
    if answer is not None:
        if answer.running:
            return STILL_RUNNING
        if press.user != answer.msg.user:
            return NOT_ASKER_AGAIN
        question, target = answer.msg, answer.conv
    else:
        found = await answers.store.find(press.answer) if answers.store is not None else None
        if found is None:
            return GONE
        if found.running:
            return STILL_RUNNING
        if press.user != found.asker:
            return NOT_ASKER_AGAIN
        question = found.question
        target = await _conversation_for(router, question, conv)
        if target is None:
            return GONE
    with fresh():  # the new task inherits it: every model call skips the caches
        router.submit(replace(question, dedupe_key=None), target)
    return None


async def _conversation_for(router: "Router", question, conv):
    """Where an answer to a stored question goes, from this process."""
    opener = getattr(conv, "for_question", None)
    if opener is not None:
        return await opener(question)
    try:
        return router.services.channels.open(question.platform, tenant=question.tenant, channel=question.channel,
                                             thread=question.thread)
    except KeyError:
        return None
