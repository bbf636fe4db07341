"""Read-only SQL for the agent, in layers (any one of them stops a write):

1. a lexical check: one statement, starting with SELECT or WITH, no write/DDL/session
   keywords, no `FOR UPDATE/SHARE`, function calls only to an allow-list of built-ins
   (FUNCTIONS) and operators only built-in ones, comments and string literals ignored
   while checking;
2. the planner's view: `EXPLAIN (FORMAT JSON)` lists every relation the query would
   read (views expanded, CTEs and subqueries included); one outside the allow-list, or
   outside its schema, refuses the query;
3. execution in a `READ ONLY` transaction with `statement_timeout`, through a cursor
   that fetches at most `max_rows + 1` rows (so "truncated" is known without reading
   everything), and a wall-clock limit on the client side (`timeout + grace`) that drops
   the connection when the server does not stop in time;
4. in the database: the role behind AGENT_SQL_URL has SELECT on the allowed tables only,
   `default_transaction_read_only = on`, and no EXECUTE on functions in `public`
   (`aibot agent load-sample` creates it so).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import json
import logging
import re
import time
from dataclasses import dataclass, field

import asyncpg
from sqlalchemy.engine import make_url

from bot.core.db import normalize_url, redact

log = logging.getLogger(__name__)

MAX_SQL_CHARS = 5_000

# Inside one SELECT/WITH statement only these can write or change the session; words
# like END (CASE ... END) or START stay usable.
_FORBIDDEN = {
    "insert", "update", "delete", "merge", "drop", "alter", "create", "truncate", "grant", "revoke", "copy",
    "call", "do", "set", "reset", "lock", "commit", "rollback", "begin", "into", "vacuum", "execute", "prepare",
}
_FUNCTION_DENY = re.compile(
    r"^(pg_\w*|lo_\w*|dblink\w*|set_config|current_setting|nextval|setval|currval|lastval|"
    r"query_to_xml\w*|cursor_to_xml\w*|table_to_xml\w*|schema_to_xml\w*|database_to_xml\w*|txid_\w*|"
    r"binary_upgrade_\w*|brin_\w*|gin_clean_pending_list|make_interval_sleep|version)$"
)
# Function calls: built-ins that only compute on their arguments, by name. Anything else
# (a user function in `public`, maybe SECURITY DEFINER, reading what the role cannot) is
# refused before the query reaches the database; the role recipe revokes EXECUTE too.
FUNCTIONS = frozenset("""
count sum avg min max string_agg array_agg bool_and bool_or every stddev stddev_pop stddev_samp variance
var_pop var_samp percentile_cont percentile_disc mode corr covar_pop covar_samp json_agg jsonb_agg
row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value nth_value
abs ceil ceiling floor round trunc sign sqrt cbrt power exp ln log log10 mod div greatest least width_bucket
coalesce nullif length char_length character_length octet_length lower upper initcap trim btrim ltrim rtrim
substr substring left right lpad rpad replace concat concat_ws position strpos split_part repeat reverse md5
format to_char to_number to_date to_timestamp regexp_replace regexp_match regexp_like starts_with translate
date_trunc date_part extract age make_date make_time make_timestamp make_timestamptz make_interval date_bin
justify_days justify_hours justify_interval isfinite timezone array_length cardinality unnest
array_position array_to_string string_to_array generate_series json_build_object jsonb_build_object
json_build_array jsonb_build_array to_json to_jsonb grouping rollup cube
""".split())
# Words that take a parenthesis without being a function call.
_PAREN_WORDS = frozenset("""
select from where and or not in exists values as over filter cast any all some array row using on by when then
else case is like ilike between within group lateral distinct join union intersect except with having limit
offset recursive sets partition order materialized nulls escape similar to returning
""".split())
# Operators built into PostgreSQL that the tool's queries need; a user-defined operator
# runs a function of its own, so any other spelling is refused like a call.
_OPERATORS = frozenset(
    "+ - * / % ^ < > <= >= = <> != || ~ ~* !~ !~* ~~ ~~* !~~ !~~* :: -> ->> #> #>> @> <@ && ? ?| ?&".split()
)
_OPERATOR_CHARS = set("+-*/<>=~!@#%^&|`?:")
_TOKENS = re.compile(
    r"""(?P<ws>\s+)|(?P<line>--[^\n]*)|(?P<block>/\*)|(?P<dollar>\$(?:[A-Za-z_]\w*)?\$)|"""
    r"""(?P<str>[eE]?'(?:[^']|'')*')|(?P<ident>"(?:[^"]|"")*")|(?P<word>[A-Za-z_][\w$]*)|(?P<semi>;)|(?P<other>.)""",
    re.DOTALL,
)


class SqlRefused(Exception):
    """The query is not allowed; the message says why (shown to the model)."""


@dataclass
class SqlResult:
    columns: list[str]
    rows: list[tuple]
    truncated: bool
    sql: str

    def as_text(self) -> str:
        """Rows as compact JSON lines for the model, with the truncated flag."""
        head = {"columns": self.columns, "row_count": len(self.rows), "truncated": self.truncated}
        lines = [json.dumps(head)]
        lines += [json.dumps([_plain(v) for v in row], ensure_ascii=False) for row in self.rows]
        return "\n".join(lines)


def _plain(v):
    if isinstance(v, decimal.Decimal):
        return int(v) if v == v.to_integral_value() and abs(v) < 10**15 else float(v)
    if isinstance(v, (dt.date, dt.datetime, dt.time)):
        return v.isoformat()
    if isinstance(v, (int, float, str, bool)) or v is None:
        return v
    return str(v)


def tokens(sql: str) -> list[tuple[str, str]]:
    """(kind, text) tokens, with comments dropped and literals kept whole."""
    out: list[tuple[str, str]] = []
    pos, n = 0, len(sql)
    while pos < n:
        m = _TOKENS.match(sql, pos)
        assert m is not None
        kind = m.lastgroup or "other"
        if kind == "block":  # nested block comments, as PostgreSQL allows
            depth, i = 1, m.end()
            while depth and i < n:
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            if depth:
                raise SqlRefused("unterminated comment")
            pos = i
            continue
        if kind == "dollar":  # $tag$ ... $tag$ string
            end = sql.find(m.group(), m.end())
            if end < 0:
                raise SqlRefused("unterminated $-quoted string")
            out.append(("str", sql[pos : end + len(m.group())]))
            pos = end + len(m.group())
            continue
        if kind == "other" and m.group() in "'\"":
            raise SqlRefused("unterminated quoted string")
        if kind not in ("ws", "line"):
            out.append((kind, m.group()))
        pos = m.end()
    return out


def check(sql: str) -> str:
    """The statement to run (trailing `;` removed), or SqlRefused with the reason."""
    text = sql.strip()
    if not text:
        raise SqlRefused("the query is empty")
    if len(text) > MAX_SQL_CHARS:
        raise SqlRefused(f"the query is longer than {MAX_SQL_CHARS} characters")
    toks = tokens(text)
    while toks and toks[-1][0] == "semi":
        toks.pop()
    if any(kind == "semi" for kind, _ in toks):
        raise SqlRefused("only one statement is allowed (found a ';' in the middle)")
    words = [(i, t.lower()) for i, (kind, t) in enumerate(toks) if kind == "word"]
    for i, word in words:
        if word in _FORBIDDEN:
            raise SqlRefused(f"{word.upper()} is not allowed: this tool only reads")
        if word == "for" and i + 1 < len(toks) and toks[i + 1][1].lower() in ("update", "share", "no", "key"):
            raise SqlRefused("row locks (FOR UPDATE/SHARE) are not allowed")
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if nxt is not None and nxt[1] == "(" and _FUNCTION_DENY.match(word):
            raise SqlRefused(f"the function {word}() is not allowed")
    for kind, t in toks:  # a quoted identifier used as a function name
        if kind == "ident" and _FUNCTION_DENY.match(t.strip('"').lower()):
            raise SqlRefused(f"the function {t} is not allowed")
    _check_calls(toks)
    _check_operators(toks)
    if not words or words[0][1] not in ("select", "with"):
        raise SqlRefused("only SELECT queries (optionally starting with WITH) are allowed")
    end = len(text)
    while text[:end].rstrip().endswith(";"):
        end = len(text[:end].rstrip()) - 1
    return text[:end].rstrip()


def _check_calls(toks: list[tuple[str, str]]) -> None:
    """Every `name(` is a built-in of FUNCTIONS, or a keyword, type modifier or column
    list that only looks like a call."""
    for i, (kind, t) in enumerate(toks[:-1]):
        if toks[i + 1][1] != "(" or kind not in ("word", "ident"):
            continue
        name = t.strip('"').lower() if kind == "ident" else t.lower()
        prev = toks[i - 1][1].lower() if i else ""
        if kind == "word" and name in _PAREN_WORDS:
            continue
        if prev == ":" or prev == "as":  # `::numeric(10,2)`, `CAST(x AS numeric(10,2))`, `AS t(a, b)`
            continue
        if prev == ".":
            schema = toks[i - 2][1].strip('"').lower() if i >= 2 else ""
            if schema == "pg_catalog" and name in FUNCTIONS:
                continue
            raise SqlRefused(f"the function {toks[i - 2][1]}.{t}() is not allowed: only built-in functions may be called")
        if _column_list(toks, i + 1):  # WITH name(a, b) AS (...)
            continue
        if name not in FUNCTIONS:
            raise SqlRefused(
                f"the function {t}() is not allowed: only built-in functions such as count, sum, avg, round, "
                "date_trunc, extract, coalesce, lower may be called"
            )


def _column_list(toks: list[tuple[str, str]], open_at: int) -> bool:
    """Whether the parenthesis at `open_at` closes right before AS (a CTE's column list)."""
    depth = 0
    for j in range(open_at, len(toks)):
        depth += {"(": 1, ")": -1}.get(toks[j][1], 0)
        if depth == 0:
            return j + 1 < len(toks) and toks[j + 1][1].lower() == "as" and toks[j + 1][0] == "word"
    return False


def _check_operators(toks: list[tuple[str, str]]) -> None:
    """Every run of operator characters is an operator PostgreSQL has built in."""
    run: list[str] = []
    for kind, t in [*toks, ("end", "")]:
        if kind == "other" and t in _OPERATOR_CHARS:
            run.append(t)
            continue
        if run:
            op = "".join(run)
            # `a=-1`, `x*-2`, `a<>-b`: a trailing sign belongs to the number or expression
            while len(op) > 1 and op not in _OPERATORS and op[-1] in "+-" and op[:-1] in _OPERATORS:
                op = op[:-1]
            if op not in _OPERATORS:
                raise SqlRefused(f"the operator {''.join(run)} is not allowed: only built-in operators may be used")
            run = []


def relations(plan) -> set[tuple[str, str]]:
    """Every (schema, relation) an EXPLAIN (FORMAT JSON, VERBOSE) plan reads."""
    found: set[tuple[str, str]] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            if "Relation Name" in node:
                found.add((node.get("Schema", ""), node["Relation Name"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(plan)
    return found


def connect_args(url: str) -> dict:
    """asyncpg connect() arguments from a SQLAlchemy-style or libpq URL."""
    u = make_url(normalize_url(url))
    host = u.host or u.query.get("host")
    return {
        "user": u.username, "password": u.password, "database": u.database,
        "host": host, "port": u.port,
    }


@dataclass
class SqlRunner:
    """Runs checked queries against one database, one short connection per query (no
    pool to leak, no session state carried from one query to the next)."""

    url: str
    tables: tuple[str, ...]
    schema: str = "public"
    timeout: float = 5.0
    max_rows: int = 200
    connect_timeout: float = 5.0
    grace: float = 1.0  # wall-clock slack after `timeout` before the client drops the connection
    _described: str | None = field(default=None, repr=False)
    _unreachable_until: float = field(default=0.0, repr=False)

    async def connect(self) -> asyncpg.Connection:
        try:
            return await asyncpg.connect(
                **connect_args(self.url), timeout=self.connect_timeout,
                server_settings={"application_name": "aibot-agent"},
            )
        except Exception as exc:
            log.warning("agent SQL database %s unreachable: %s", redact(self.url), type(exc).__name__)
            raise SqlRefused(
                "the SQL database is not reachable (an admin should check AGENT_SQL_URL, "
                "or run `aibot agent load-sample` for the demo database)"
            ) from None

    async def query(self, sql: str) -> SqlResult:
        statement = check(sql)
        conn = await self.connect()
        work = asyncio.ensure_future(self._run(conn, statement))
        try:
            # statement_timeout is checked only where the server looks for interrupts (not
            # inside one huge string_agg/repeat) and not while a result is on the wire, so
            # the client gives up too, a little later, and drops the connection.
            done, _ = await asyncio.wait({work}, timeout=self.timeout + self.grace)
            if not done:
                log.warning("agent SQL query still running %.1f s after its timeout; connection dropped", self.grace)
                conn.terminate()
                work.cancel()
                await asyncio.wait({work}, timeout=2)
                work.add_done_callback(lambda t: t.cancelled() or t.exception())
                raise SqlRefused(f"the query ran longer than {self.timeout:g} s and was cancelled")
            return work.result()
        finally:
            if not conn.is_closed():
                await conn.close(timeout=5)

    async def _run(self, conn: asyncpg.Connection, statement: str) -> SqlResult:
        ms = int(self.timeout * 1000)
        try:
            async with conn.transaction(readonly=True, isolation="repeatable_read"):
                await conn.execute(f"SET LOCAL statement_timeout = {ms}; SET LOCAL lock_timeout = {ms}")
                plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON, VERBOSE) {statement}")
                self._allowed(relations(json.loads(plan) if isinstance(plan, str) else plan))
                cur = await conn.cursor(statement)
                records = await cur.fetch(self.max_rows + 1)
                columns = list(records[0].keys()) if records else [a.name for a in cur.get_attributes()]
        except SqlRefused:
            raise
        except asyncpg.QueryCanceledError:
            raise SqlRefused(f"the query ran longer than {self.timeout:g} s and was cancelled") from None
        except asyncpg.PostgresError as exc:
            raise SqlRefused(f"the database refused the query: {_first_line(exc)}") from None
        rows = [tuple(r.values()) for r in records[: self.max_rows]]
        return SqlResult(columns=columns, rows=rows, truncated=len(records) > self.max_rows, sql=statement)

    def _allowed(self, used: set[tuple[str, str]]) -> None:
        bad = sorted(f"{s}.{r}" if s else r for s, r in used if r not in self.tables or (s and s != self.schema))
        if bad:
            raise SqlRefused(
                f"the query reads {', '.join(bad)}, which is not allowed; allowed tables: {', '.join(self.tables)}"
            )

    async def describe(self) -> str:
        """The allowed tables and their columns, for the model's instructions (cached)."""
        if self._described is not None:
            return self._described
        unknown = "Tables: " + ", ".join(self.tables) + " (columns unknown: the database is not reachable now)."
        if time.monotonic() < self._unreachable_until:  # do not make every run wait for a dead server
            return unknown
        try:
            conn = await self.connect()
            try:
                rows = await conn.fetch(
                    "SELECT table_name, column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = $1 AND table_name = ANY($2::text[]) ORDER BY table_name, ordinal_position",
                    self.schema, list(self.tables),
                )
            finally:
                await conn.close(timeout=5)
        except (SqlRefused, OSError, asyncpg.PostgresError):
            self._unreachable_until = time.monotonic() + 60
            return unknown
        cols: dict[str, list[str]] = {}
        for r in rows:
            cols.setdefault(r["table_name"], []).append(f"{r['column_name']} {r['data_type']}")
        text = "Tables (PostgreSQL): " + "; ".join(f"{t}({', '.join(c)})" for t, c in cols.items()) + "."
        self._described = text
        return text


def _first_line(exc: BaseException) -> str:
    msg = (getattr(exc, "message", None) or str(exc)).strip().splitlines()
    return (msg[0] if msg else type(exc).__name__)[:300]
