"""The terms that change an answer although they barely change an embedding: numbers
and years, names (products, people, places, regions, acronyms) and polarity words
(enable/disable, add/remove, with/without, not). Two questions whose key terms differ
are never the same question for the semantic cache, however close their vectors are;
synonyms ("turn on" / "enable") share a label, so paraphrases still match."""
from __future__ import annotations

import re
from collections import Counter

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_TOKEN = re.compile(r"[A-Za-z][\w.+#-]*[\w+#]|[A-Za-z]")
# nouns whose lower-case qualifier names one of several ("the billing team", "the pro plan")
_UNITS = set("team teams department dept group squad office plan tier region channel project server cluster "
             "environment org organisation organization unit account".split())
_NOT_A_NAME = set("the a an our my your their his her its this that which what whose same whole entire new old "
                  "each every any whole".split())
_ASKS = [("who", re.compile(r"\bwho(m|se)?\b")), ("why", re.compile(r"\bwhy\b|\bhow come\b")),
         ("when", re.compile(r"\bwhen\b|\bsince when\b|\bhow long\b|\bwhat time\b")),
         ("whether", re.compile(r"^\s*(did|do|does|is|are|was|were|can|should|must)\b.*\b(meet|met|need|needed|allowed|required)\b"))]
_POLARITY: dict[str, str] = {}
for label, words in {
    "on": "enable enabled enables enabling activate activated turn-on switch-on",
    "off": "disable disabled disables disabling deactivate deactivated turn-off switch-off",
    "add": "add adding added create creating insert",
    "remove": "remove removing removed delete deleting deleted drop erase",
    "allow": "allow allowed allowing permit permitted grant granting",
    "deny": "deny denied block blocked blocking forbid forbidden revoke revoking",
    "up": "increase increasing raise raising higher upgrade upgrading more",
    "down": "decrease decreasing lower lowering reduce reducing downgrade downgrading less fewer",
    "before": "before prior earlier",
    "after": "after following later",
    "start": "start starting begin beginning open opening",
    "stop": "stop stopping end ending close closing cancel cancelling",
    "in": "import importing upload uploading download inbound incoming receive",
    "out": "export exporting outbound outgoing send sending",
    "lock": "lock locking encrypt encrypting",
    "unlock": "unlock unlocking decrypt decrypting",
    "install": "install installing installed",
    "uninstall": "uninstall uninstalling uninstalled",
    "max": "max maximum most largest biggest",
    "min": "min minimum least smallest",
    "with": "with including",
    "without": "without excluding except",
    "public": "public external",
    "private": "private internal",
    "neg": "not no never cannot can't don't doesn't isn't aren't won't shouldn't",
}.items():
    for w in words.split():
        _POLARITY[w.replace("-", " ")] = label
_PHRASES = [p for p in _POLARITY if " " in p]


def key_terms(text: str) -> Counter:
    """The answer-changing terms of a question, as comparable labels."""
    terms: Counter = Counter()
    low = text.lower()
    for phrase in _PHRASES:
        if phrase in low:
            terms["pol:" + _POLARITY[phrase]] += low.count(phrase)
            low = low.replace(phrase, " ")
    # what kind of answer is asked for: a person, a reason, a time ("how do I" and "what are
    # the steps" are the same kind; "who", "why" and "when" are not)
    for kind, pattern in _ASKS:
        if pattern.search(low):
            terms["ask:" + kind] += 1
    for n in _NUMBER.findall(text):
        terms["num:" + n.replace(",", "")] += 1
    words = _TOKEN.findall(text)
    for i, w in enumerate(words):
        lw = w.lower()
        if lw in _POLARITY:
            terms["pol:" + _POLARITY[lw]] += 1
        elif lw.endswith("n't") and lw[:-3] in ("do", "does", "is", "are", "wo", "should", "ca", "did", "was"):
            terms["pol:neg"] += 1
        elif _is_name(w, first=(i == 0 or _after_stop(text, w))):
            terms["name:" + lw] += 1
    # the word naming which team, plan or office is a name even in lower case ("billing team")
    for prev, noun in zip(words, words[1:]):
        unit, which = noun.lower().removesuffix("'s"), prev.lower()
        if unit in _UNITS and which not in _NOT_A_NAME and which not in _POLARITY and "name:" + which not in terms:
            terms["name:" + which] += 1
    return terms


def _is_name(word: str, *, first: bool) -> bool:
    if len(word) > 1 and (word.isupper() or any(c.isdigit() for c in word) or any(c.isupper() for c in word[1:])):
        return True  # EU, SSO, S3, iOS, GitHub
    # a capitalised word opening a sentence is grammar, not a name ("Reset my password ...")
    return word[0].isupper() and not first and word != "I"


def _after_stop(text: str, word: str) -> bool:
    """The word opens a sentence (after . ? ! or a line break)."""
    at = text.find(word)
    before = text[:at].rstrip()
    return not before or before[-1] in ".?!:\n"


_WORDS = re.compile(r"[a-z][a-z'-]+")
# words whose swap for another rephrases rather than changes a question
_FILLER = set(
    "how what which where when who whom does do can could would should is are the a an to for of in on at by with "
    "from steps step way ways there supported available allowed permitted possible please tell me i my "
    "our we you your it its this that get got have has into per each every any some use using "
    "were was be been being did done list give show tell explain find see know need want like much many".split()
)


def _content(text: str) -> set[str]:
    """Content words, without the polarity words (compared as key terms already)."""
    low = text.lower()
    for phrase in _PHRASES:
        low = low.replace(phrase, " ")
    return {w.strip("'-").removesuffix("'s") for w in _WORDS.findall(low)} - _FILLER - set(_POLARITY)


def one_word_swapped(a: str, b: str) -> bool:
    """Both questions say the same thing but one word each ("contractors" / "employees",
    "billing team" / "platform team"): likely a different question, not a rewording."""
    ca, cb = _content(a), _content(b)
    return len(ca - cb) == 1 and len(cb - ca) == 1 and len(ca & cb) >= 2


def same_key_terms(a: str, b: str) -> bool:
    """True when neither question names a number, name or polarity the other does not,
    and they do not differ by exactly one swapped content word."""
    return key_terms(a) == key_terms(b) and not one_word_swapped(a, b)
