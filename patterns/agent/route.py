"""Does a mention need the agent? A cheap, conservative text test (no model call).

The agent costs several model calls; the seed's lesson is never to use it for a simple
task. So a mention goes to the agent only when it asks for *figures from data* and for
*work on them* in the same message, e.g. "total sales last month and growth vs the
month before", or when it asks outright for a calculation with numbers in it, or to
query the database. Anything else ("what is our refund policy?", "hi", "summarize
this") goes to the cheaper patterns. `/agent <task>` always uses the agent.
"""
from __future__ import annotations

import re

_I = re.IGNORECASE
# what the data is about
DATA = re.compile(
    r"\b(sales|revenue|turnover|orders?|units sold|products?|regions?|customers?|spend(ing)?|income|"
    r"figures|numbers|metrics?|kpis?|bookings|deals)\b", _I
)
# work on figures: aggregates, comparisons, trends, rankings
WORK = re.compile(
    r"\b(total|sum|average|avg|mean|median|growth|grow|grew|increase|decrease|decline|change|compare|compared|"
    r"comparison|versus|vs|trend|breakdown|top\s+\d+|best[- ]selling|rank|ranking|how\s+(many|much)|count|"
    r"percent|percentage|share|ratio|calculate|compute)\b|%", _I
)
# an explicit calculation with numbers in it
CALC = re.compile(r"\b(calculate|compute|work out)\b.*\d.*[-+*/^×÷%].*\d", _I | re.DOTALL)
# an explicit request to query data
QUERY = re.compile(r"\b(run|write|use)\s+(an?\s+)?(sql|query)\b|\bquery\s+the\s+(database|db|data)\b", _I)


def needs_tools(text: str) -> bool:
    """True when the message asks for figures from data plus work on them, an explicit
    calculation, or a database query."""
    text = text.strip()
    if not text or len(text) > 2_000:  # long pastes are for summaries and chat
        return False
    if QUERY.search(text) or CALC.search(text):
        return True
    return bool(DATA.search(text) and WORK.search(text))


# asks for something only the web knows now: news, "latest", "search the web"
WEB = re.compile(
    r"\b(search|look\s+up|check)\s+(the\s+)?(web|internet|online)\b|\b(google|web\s+search)\b|"
    r"\b(latest|current|today'?s|breaking)\s+(news|version|release|price|status|headlines)\b|"
    r"\bnews\s+(about|on)\b",
    _I,
)


def wants_web(text: str) -> bool:
    """True when the message asks for current information from the web (only consulted
    when AGENT_WEB_SEARCH is on)."""
    text = text.strip()
    return bool(text) and len(text) <= 2_000 and bool(WEB.search(text))
