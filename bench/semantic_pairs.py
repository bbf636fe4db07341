"""Generate the labelled evaluation set of the semantic answer cache from templates (no
network, no model): question pairs a team bot sees, each either a true paraphrase
(label 1: the same answer is right for both) or a hard negative that differs in one
answer-changing thing (label 0): region (EU vs US), year (2025 vs 2026), polarity
(enable vs disable, add vs remove, max vs min), product, person, a number, a
lower-case role word (contractors vs employees), or the question itself with the same
names and numbers ("why does enabling SSO in Okta fail?" vs "how do I enable SSO in
Okta?"), which only the similarity threshold can tell apart.

    .venv/bin/python bench/semantic_pairs.py        # writes bench/data/semantic_pairs.jsonl
"""
from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

OUT = Path(__file__).parent / "data" / "semantic_pairs.jsonl"

PRODUCTS = ["Okta", "Jira", "Confluence", "Salesforce", "GitHub", "Zendesk", "HubSpot", "Workday", "Notion", "Figma"]
FEATURES = ["SSO", "two-factor authentication", "dark mode", "audit logging", "email notifications",
            "auto-renewal", "guest access", "single sign-on", "API access", "data export"]
REGIONS = ["EU", "US", "UK", "Canada", "Australia", "Japan", "Germany", "France"]
YEARS = ["2024", "2025", "2026", "2027"]
PEOPLE = ["Alice Martin", "Bob Chen", "Priya Patel", "Diego Ramos", "Mei Tanaka", "Omar Haddad", "Sara Novak"]
TEAMS = ["platform", "billing", "security", "mobile", "data", "support"]
PLANS = ["Pro", "Enterprise", "Business", "Starter"]
ROLES = [("contractors", "employees"), ("interns", "managers"), ("guests", "admins"), ("vendors", "customers")]
SYSTEMS = ["the VPN", "the staging database", "the payroll system", "the CRM", "the build servers"]

# each intent: phrasings that all mean the same, with slots; `swap` names the slot a hard negative changes
INTENTS = [
    dict(kind="polarity", slots=dict(on=[("enable", "disable"), ("turn on", "turn off"), ("activate", "deactivate")],
                                     feature=FEATURES, product=PRODUCTS),
         phrasings=["How do I {on} {feature} in {product}?", "How can I {on} {feature} in {product}?",
                    "What are the steps to {on} {feature} in {product}?", "Where do I {on} {feature} for {product}?",
                    "Steps to {on} {feature} in {product}?", "how do i {on} {feature} in {product}"]),
    dict(kind="product", slots=dict(feature=FEATURES, product=PRODUCTS),
         phrasings=["Does {product} support {feature}?", "Is {feature} available in {product}?",
                    "Can {product} do {feature}?", "Is there {feature} support in {product}?"]),
    dict(kind="region", slots=dict(region=REGIONS),
         phrasings=["What is the VAT rate for digital services in the {region}?",
                    "How much VAT do we charge on digital services in the {region}?",
                    "Which VAT rate applies to digital services sold in the {region}?",
                    "VAT percentage for digital services in the {region}?"]),
    dict(kind="region", slots=dict(region=REGIONS),
         phrasings=["Where is customer data stored for accounts in the {region}?",
                    "In which data centre do we keep customer data for {region} accounts?",
                    "Which region hosts the customer data of {region} customers?"]),
    dict(kind="year", slots=dict(year=YEARS, team=TEAMS),
         phrasings=["What were the {team} team's OKRs for {year}?", "What OKRs did the {team} team have in {year}?",
                    "List the {team} team OKRs for {year}.", "Which objectives did the {team} team set for {year}?"]),
    dict(kind="year", slots=dict(year=YEARS),
         phrasings=["Which public holidays does the company observe in {year}?",
                    "What are the company holidays for {year}?", "List the office holidays in {year}."]),
    dict(kind="person", slots=dict(person=PEOPLE),
         phrasings=["Who approves expense reports for {person}'s team?",
                    "Who signs off on expenses submitted by {person}'s team?",
                    "Which manager approves expenses for the team of {person}?"]),
    dict(kind="person", slots=dict(person=PEOPLE, team=TEAMS),
         phrasings=["What is {person}'s role on the {team} team?", "What does {person} do in the {team} team?",
                    "Which role does {person} have on the {team} team?"]),
    dict(kind="product", slots=dict(plan=PLANS, product=PRODUCTS),
         phrasings=["How much does the {plan} plan of {product} cost per user?",
                    "What is the per-user price of {product} {plan}?",
                    "Per seat, what does {product}'s {plan} plan cost?"]),
    dict(kind="polarity", slots=dict(add=[("add", "remove")], product=PRODUCTS),
         phrasings=["How do I {add} a user in {product}?", "How can I {add} a user in {product}?",
                    "What is the way to {add} a user in {product}?"]),
    dict(kind="polarity", slots=dict(mx=[("maximum", "minimum")], product=PRODUCTS),
         phrasings=["What is the {mx} file upload size in {product}?", "What's the {mx} upload size for files in {product}?",
                    "How large can uploads be in {product} at the {mx}?"]),
    dict(kind="number", slots=dict(n=["1", "2", "3", "5", "10"]),
         phrasings=["How many vacation days do employees get after {n} years?",
                    "How much paid leave does an employee have after {n} years of service?",
                    "What is the annual leave allowance after {n} years at the company?"]),
    dict(kind="role", slots=dict(role=ROLES, system=SYSTEMS),
         phrasings=["Can {role} access {system} from home?", "Are {role} allowed to use {system} remotely?",
                    "Is remote access to {system} permitted for {role}?"]),
]


def meaning(intent: int, values: dict, side: int) -> str:
    """What a question asks, whatever its wording: the intent and its slot values (the
    two words of a polarity pair as on/off, so "enable", "activate" and "turn on" agree)."""
    canon = {k: (("on", "off")[side] if k != "role" else v[side]) if isinstance(v, tuple) else v
             for k, v in sorted(values.items())}
    return f"{intent}:" + json.dumps(canon, sort_keys=True)


def _fill(phrasing: str, values: dict, side: int) -> str:
    """`side` picks the first or second word of a polarity/role pair."""
    out = {k: (v[side] if isinstance(v, tuple) else v) for k, v in values.items()}
    return phrasing.format(**out)


def generate(seed: int = 15) -> list[dict]:
    rng = random.Random(seed)
    pairs: list[dict] = []
    for n, intent in enumerate(INTENTS):
        slots = intent["slots"]
        names = list(slots)
        combos = list(itertools.product(*(slots[k] for k in names)))
        rng.shuffle(combos)
        for combo in combos[:48]:
            values = dict(zip(names, combo))
            a, b, c = (rng.sample(intent["phrasings"], 3) if len(intent["phrasings"]) > 2
                       else [*rng.sample(intent["phrasings"], 2), None])
            for side in (0, 1) if any(isinstance(v, tuple) for v in values.values()) else (0,):
                m = meaning(n, values, side)
                pairs.append(dict(a=_fill(a, values, side), b=_fill(b, values, side), label=1, kind="paraphrase",
                                  intent=n, ma=m, mb=m))
            if c is not None:
                m = meaning(n, values, 0)
                pairs.append(dict(a=_fill(b, values, 0), b=_fill(c, values, 0), label=1, kind="paraphrase", intent=n,
                                  ma=m, mb=m))
            # a hard negative: one slot changed (a pair's other word, or another value)
            slot = rng.choice(names)
            other = dict(values)
            m1 = meaning(n, values, 0)
            if isinstance(values[slot], tuple):
                q1, q2, m2 = _fill(a, values, 0), _fill(rng.choice([a, b]), values, 1), meaning(n, values, 1)
            else:
                other[slot] = rng.choice([v for v in slots[slot] if v != values[slot]])
                q1, q2, m2 = _fill(a, values, 0), _fill(rng.choice([a, b]), other, 0), meaning(n, other, 0)
            kind = intent["kind"] if isinstance(values[slot], tuple) or slot in ("region", "year", "person", "n") else slot
            pairs.append(dict(a=q1, b=q2, label=0, kind=kind, intent=n, ma=m1, mb=m2))
            # the same phrasing with another value: the hardest negative
            if not isinstance(values[slot], tuple):
                q3 = _fill(a, other, 0)
                pairs.append(dict(a=q1, b=q3, label=0, kind=kind, intent=n, ma=m1, mb=m2))
    # the same things asked about, but another question: "does Okta support SSO?" is not
    # "how do I enable SSO in Okta?"
    pairs += _other_questions(rng)
    seen: set[tuple[str, str]] = set()
    unique = []
    for p in pairs:
        key = (p["a"], p["b"])
        if p["a"] != p["b"] and key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


# the same things (names, numbers, polarity) in another question: only the threshold can
# tell these apart, the key terms are the same
OTHER_QUESTIONS = {
    0: ["Why does {on} {feature} in {product} keep failing?", "Who is allowed to {on} {feature} in {product}?",
        "How long does it take to {on} {feature} in {product}?", "What happens to existing users if I {on} {feature} in {product}?"],
    2: ["When is the VAT for digital services due in the {region}?", "Who files the VAT return for digital services in the {region}?",
        "Do we need to register for VAT on digital services in the {region}?"],
    4: ["Who set the {team} team's OKRs for {year}?", "Did the {team} team meet its OKRs for {year}?",
        "Where are the {team} team's OKRs for {year} documented?"],
    7: ["Who manages {person} on the {team} team?", "Since when has {person} been on the {team} team?",
        "How do I contact {person} from the {team} team?"],
    12: ["Who decides whether {role} can access {system} from home?", "How do {role} request access to {system}?",
         "Why can't {role} reach {system} from home?"],
}


def _other_questions(rng: random.Random) -> list[dict]:
    out = []
    for n, others in OTHER_QUESTIONS.items():
        intent = INTENTS[n]
        for _ in range(30):
            values = {k: rng.choice(v) for k, v in intent["slots"].items()}
            q1 = _fill(rng.choice(intent["phrasings"]), values, 0)
            q2 = _fill(rng.choice(others), values, 0)
            out.append(dict(a=q1, b=q2, label=0, kind="question", intent=n, ma=meaning(n, values, 0),
                            mb=f"other:{q2}"))
    return out


def main() -> None:
    pairs = generate()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8") as f:
        for p in pairs:
            f.write(json.dumps(p, ensure_ascii=False) + "\n")
    pos = sum(p["label"] for p in pairs)
    print(f"{len(pairs)} pairs ({pos} paraphrases, {len(pairs) - pos} hard negatives) -> {OUT}")


if __name__ == "__main__":
    main()
