"""Answer controls on Slack: Block Kit buttons under an answer, their `block_actions`
payloads turned into the core's `Press`, the modal that asks why an answer was bad, and
Stop by a 🛑 reaction on an answer streamed natively (`reaction_added`).

Action ids are fixed (`aibot_stop`, ...) and the button's `value` is the answer id, so a
press still finds its answer after a restart (Regenerate then says it is gone)."""
from __future__ import annotations

import json

from bot.core.answers import BAD, GOOD, REASON, REGENERATE, STOP, Controls, Press

PREFIX = "aibot_"
# Stop on a native stream: Slack's chat streaming takes no buttons until chat.stopStream, so
# while an answer streams the bot puts a 🛑 reaction under it, and the asker adding that
# reaction (a click on it) stops the answer; :stop_button: (⏹) works the same
STOP_HINT = "octagonal_sign"
STOP_REACTIONS = frozenset({STOP_HINT, "stop_button"})
ACTION_IDS = {f"{PREFIX}{a}": a for a in (STOP, REGENERATE, GOOD, BAD)}
REASON_CALLBACK = "aibot_feedback_reason"  # callback_id of the 👎 modal
REASON_BLOCK, REASON_INPUT = "reason", "reason_input"
MAX_MARKDOWN = 12_000  # a markdown block's limit


def _button(action: str, label: str, answer: str, *, style: str | None = None) -> dict:
    b = {"type": "button", "action_id": f"{PREFIX}{action}", "value": answer,
         "text": {"type": "plain_text", "text": label, "emoji": True}}
    if style:
        b["style"] = style
    return b


def actions_block(controls: Controls) -> dict:
    """The buttons: Stop while the answer is written, then Regenerate, 👍 and 👎."""
    if controls.running:
        elements = [_button(STOP, "■ Stop", controls.answer, style="danger")]
    else:
        elements = [_button(REGENERATE, "↻ Regenerate", controls.answer), _button(GOOD, "👍", controls.answer),
                    _button(BAD, "👎", controls.answer)]
    # a new block_id per state: Slack asks for one per iteration of an updated message
    return {"type": "actions", "block_id": f"aibot_controls_{'run' if controls.running else 'done'}",
            "elements": elements}


def message_blocks(markdown: str, controls: Controls | None) -> list[dict]:
    """An answer message as blocks: its Markdown text, then the controls (if any)."""
    blocks = [{"type": "markdown", "text": markdown[:MAX_MARKDOWN] or " "}]
    if controls is not None:
        blocks.append(actions_block(controls))
    return blocks


def from_action(body: dict) -> Press | None:
    """A `block_actions` payload of one of our buttons as a `Press`."""
    action = next((a for a in body.get("actions") or [] if a.get("action_id") in ACTION_IDS), None)
    if action is None or not action.get("value"):
        return None
    container = body.get("container") or {}
    return Press(
        action=ACTION_IDS[action["action_id"]],
        answer=str(action["value"])[:64],
        platform="slack",
        tenant=(body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id", ""),
        channel=(body.get("channel") or {}).get("id") or container.get("channel_id", ""),
        user=(body.get("user") or {}).get("id", ""),
        raw=body,
    )


def thread_of(body: dict) -> str | None:
    """The thread of the message the button is on (where a note to the presser goes)."""
    message = body.get("message") or {}
    container = body.get("container") or {}
    return message.get("thread_ts") or container.get("thread_ts") or None


def reason_modal(press: Press, thread: str | None) -> dict:
    """The modal a 👎 opens: one optional text input."""
    meta = json.dumps({"answer": press.answer, "channel": press.channel, "thread": thread})
    return {
        "type": "modal",
        "callback_id": REASON_CALLBACK,
        "private_metadata": meta,
        "title": {"type": "plain_text", "text": "What went wrong?"},
        "submit": {"type": "plain_text", "text": "Send"},
        "close": {"type": "plain_text", "text": "Skip"},
        "blocks": [{
            "type": "input",
            "block_id": REASON_BLOCK,
            "optional": True,
            "label": {"type": "plain_text", "text": "Tell us what was wrong (optional)"},
            "element": {"type": "plain_text_input", "action_id": REASON_INPUT, "multiline": True, "max_length": 2000},
        }],
    }


def from_view_submission(body: dict) -> tuple[Press, str | None] | None:
    """The 👎 modal's submission as a REASON `Press`, and the thread it came from."""
    view = body.get("view") or {}
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return None
    if not meta.get("answer"):
        return None
    value = (((view.get("state") or {}).get("values") or {}).get(REASON_BLOCK) or {}).get(REASON_INPUT) or {}
    press = Press(
        action=REASON,
        answer=str(meta["answer"])[:64],
        platform="slack",
        tenant=(body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id", ""),
        channel=meta.get("channel") or "",
        user=(body.get("user") or {}).get("id", ""),
        reason=value.get("value") or None,
        raw=body,
    )
    return press, meta.get("thread")


def from_reaction(body: dict, bot_user: str | None) -> Press | None:
    """A `reaction_added` event as a (quiet) Stop of the answer it was added to: a 🛑 or
    ⏹ on one of the bot's messages; None for any other reaction."""
    event = body.get("event") or {}
    item = event.get("item") or {}
    if event.get("reaction") not in STOP_REACTIONS or item.get("type") != "message" or not item.get("ts"):
        return None
    if not bot_user or event.get("item_user") != bot_user or event.get("user") == bot_user:
        return None  # not on the bot's message, or the bot's own hint
    return Press(action=STOP, answer="", platform="slack", tenant=body.get("team_id") or "",
                 channel=item.get("channel") or "", user=event.get("user") or "", message=str(item["ts"]),
                 quiet=True, raw=body)
