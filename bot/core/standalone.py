"""Is a question answerable the same way for anyone, any time? Only such questions may
be answered from the semantic answer cache; one that leans on the conversation
("what about it?", "and the one above") or on the date ("today", "latest") is not."""
from __future__ import annotations

import re

_I = re.IGNORECASE
# words that point back into the conversation
CONTEXT = re.compile(
    r"\b(it|its|it's|that|this|these|those|they|them|their|theirs|he|she|him|her|his|hers|above|below|"
    r"earlier|previous(ly)?|before|again|same|aforementioned|former|latter|else|instead|too|also|"
    r"you said|you mentioned|as discussed)\b", _I
)
# a message that continues the previous one
FOLLOW_UP = re.compile(r"^\s*(and|but|so|or|also|then|what about|how about|why not|ok(ay)?|yes|no|thanks)\b", _I)
# words that make the answer depend on when it is asked
TIME = re.compile(
    r"\b(today|tonight|tomorrow|yesterday|now|right now|currently|current|latest|recent(ly)?|newest|"
    r"this (week|month|quarter|year|morning|afternoon|evening)|next|last|upcoming|so far|yet|still|"
    r"news|status|weather|stock price|share price|exchange rate|deadline)\b", _I
)
# the asker's own things ("my balance", "can you hear me") differ per asker; a how-to in
# the first person ("how do I reset my password?") does not
PERSONAL = re.compile(r"\b(?i:i|i'm|i've|me|my|mine|myself|we|our|ours)\b|\bus\b")  # "US" is a country
HOW_TO = re.compile(r"^\s*(how|where|what|when|which|who)\b.{0,20}?\b(do|can|should|could|would|must)\s+(i|we)\b", _I)
_WORD = re.compile(r"\w+")
MIN_WORDS = 3


def dependence(text: str) -> str | None:
    """Why `text` is not a standalone question ("context", "time", "personal", "short"),
    or None when it is."""
    if len(_WORD.findall(text)) < MIN_WORDS:
        return "short"
    if FOLLOW_UP.search(text) or CONTEXT.search(text):
        return "context"
    if TIME.search(text):
        return "time"
    if PERSONAL.search(text) and not HOW_TO.search(text):
        return "personal"
    return None


def is_standalone(text: str) -> bool:
    return dependence(text) is None


_STOP = set(
    "what when where which while with would could should about after again also been before being between "
    "does doing from have having here into just like more most much only other over same some such than that "
    "their them then there these they this those through under very were will your yours ours please thanks "
    "know need want make made tell explain anyone someone something".split()
)


def content_words(text: str) -> set[str]:
    return {w for w in (m.lower() for m in _WORD.findall(text)) if len(w) >= 4 and w not in _STOP and not w.isdigit()}


def discussed(question: str, statements: list[str]) -> bool:
    """True when the conversation's recent statements (not questions) talk about what the
    question asks: "the launch moved to Thursday" grounds "when is the launch?", so that
    question is answered with the conversation, not from the cache."""
    words = content_words(question)
    for text in statements:
        if not text.rstrip().endswith("?") and words & content_words(text):
            return True
    return False
