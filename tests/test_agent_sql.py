"""The agent's sql_query tool against the real sample database and its read-only role:
every write, lock, escape and side channel is refused or cut off, and the data is
byte-for-byte unchanged afterwards."""
from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from patterns.agent.sample import DATABASE, ROLE, TABLES, checksum, readonly_url
from patterns.agent.sql import SqlRefused, SqlRunner, connect_args


@pytest.fixture
async def runner(sales_db) -> SqlRunner:
    return SqlRunner(url=readonly_url(sales_db), tables=TABLES, timeout=0.5, max_rows=50)


@pytest.fixture
async def unchanged(sales_db):
    """Fails the test if the sample database changed in any way during it."""
    before = await checksum(sales_db)
    yield
    assert await checksum(sales_db) == before


ATTACKS = [
    "DROP TABLE orders",
    "DELETE FROM orders",
    "UPDATE orders SET amount = 0",
    "INSERT INTO regions VALUES (99, 'Moon')",
    "TRUNCATE orders",
    "COMMIT; DELETE FROM orders",
    "SELECT 1; SELECT 2",
    "select * from orders /* harmless; */ ; delete from orders",
    "WITH gone AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM gone",
    "WITH x AS (UPDATE products SET unit_price = 0 RETURNING id) SELECT * FROM x",
    "SELECT * FROM orders FOR UPDATE",
    "SELECT * FROM orders FOR SHARE",
    "COPY (SELECT 1) TO PROGRAM 'touch /tmp/aibot-pwned'",
    "SELECT pg_sleep(60)",
    'SELECT "pg_sleep"(60)',
    "SELECT set_config('default_transaction_read_only', 'off', false)",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT * FROM staff_salaries",
    "SELECT o.id, s.salary FROM orders o JOIN staff_salaries s ON true",
    "SELECT * FROM (SELECT * FROM public.staff_salaries) s",
    "SELECT * FROM pg_catalog.pg_authid",
    "SELECT table_name FROM information_schema.tables",
    "SELECT * INTO stolen FROM orders",
    "SELECT lo_import('/etc/passwd')",
    "SELECT 1 $$; DELETE FROM orders; $$",
    "",
    "EXPLAIN ANALYZE DELETE FROM orders",
]


@pytest.mark.parametrize("sql", ATTACKS)
async def test_writes_locks_side_channels_and_foreign_tables_are_refused(runner, unchanged, sql):
    t0 = time.monotonic()
    with pytest.raises(SqlRefused) as err:
        await runner.query(sql)
    assert time.monotonic() - t0 < 3
    assert str(err.value)  # a reason the model can read


async def test_a_query_running_too_long_is_cut_off_by_statement_timeout(runner, unchanged):
    t0 = time.monotonic()
    with pytest.raises(SqlRefused, match="longer than 0.5 s"):
        await runner.query("SELECT count(*) FROM orders a, orders b, orders c")
    assert time.monotonic() - t0 < 3


async def test_rows_are_capped_with_a_truncated_flag(runner):
    capped = await runner.query("SELECT id FROM orders ORDER BY id")
    assert len(capped.rows) == 50 and capped.truncated
    assert '"truncated": true' in capped.as_text()
    whole = await runner.query("SELECT name FROM regions ORDER BY id;")
    assert [r[0] for r in whole.rows] == ["North", "South", "East", "West"] and not whole.truncated


async def test_reads_with_joins_ctes_and_case_work(runner):
    result = await runner.query(
        "WITH m AS (SELECT r.name, sum(o.amount) AS total FROM orders o JOIN regions r ON r.id = o.region_id GROUP BY 1)\n"
        "SELECT name, CASE WHEN total > 0 THEN 'sold' END AS status FROM m ORDER BY name -- done"
    )
    assert result.columns == ["name", "status"]
    assert sorted(r[0] for r in result.rows) == ["East", "North", "South", "West"]


async def test_the_database_itself_refuses_writes_from_the_agent_role(sales_db, unchanged):
    """Even with the SQL check bypassed, the role behind AGENT_SQL_URL cannot write or
    read outside its grants."""
    conn = await asyncpg.connect(**connect_args(readonly_url(sales_db)))
    try:
        assert await conn.fetchval("SHOW default_transaction_read_only") == "on"
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await conn.execute("DELETE FROM orders")
        await conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM orders")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE public.mine (x int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM staff_salaries")
    finally:
        await conn.close()


async def test_a_wider_allow_list_is_still_bounded_by_the_role_grants(sales_db, unchanged):
    loose = SqlRunner(url=readonly_url(sales_db), tables=(*TABLES, "staff_salaries"), timeout=1)
    with pytest.raises(SqlRefused, match="permission denied"):
        await loose.query("SELECT * FROM staff_salaries")


async def test_the_tool_describes_the_allowed_tables_and_columns(runner):
    text = await runner.describe()
    assert "orders(" in text and "amount numeric" in text and "regions(" in text
    assert "staff_salaries" not in text


async def test_an_unreachable_database_is_a_clear_refusal(sales_db):
    broken = SqlRunner(url=readonly_url(sales_db).replace(DATABASE, "no_such_db"), tables=TABLES)
    with pytest.raises(SqlRefused, match="not reachable"):
        await broken.query("SELECT 1")


def test_sample_rows_are_deterministic_and_cover_the_two_years_up_to_this_month():
    from datetime import date

    from patterns.agent.sample import order_rows

    rows = order_rows(date(2026, 11, 24))
    assert rows == order_rows(date(2026, 11, 24))
    months = sorted({r[1].replace(day=1) for r in rows})
    assert len(months) == 24 and months[0] == date(2024, 12, 1) and months[-1] == date(2026, 11, 1)
    assert all(r[5] > 0 and 1 <= r[2] <= 4 for r in rows)


@pytest.fixture
async def definer_function(sales_db):
    """A SECURITY DEFINER function in public, owned by the admin, that reads the table the
    agent must never see (as an analytics database might well have)."""
    conn = await asyncpg.connect(**(connect_args(sales_db) | {"database": DATABASE}))
    await conn.execute(
        "CREATE FUNCTION public.payroll() RETURNS SETOF staff_salaries LANGUAGE sql SECURITY DEFINER "
        "AS 'SELECT * FROM staff_salaries'; "
        "CREATE FUNCTION public.eq3(int, int) RETURNS boolean LANGUAGE sql SECURITY DEFINER "
        "AS 'SELECT (SELECT count(*) FROM staff_salaries) > 0'; "
        "CREATE OPERATOR public.=== (LEFTARG = int, RIGHTARG = int, FUNCTION = public.eq3)"
    )
    yield
    await conn.execute("DROP OPERATOR public.=== (int, int); DROP FUNCTION public.payroll(); DROP FUNCTION public.eq3(int, int)")
    await conn.close()


@pytest.mark.parametrize("sql", [
    "SELECT * FROM payroll()",
    "SELECT name FROM public.payroll()",
    'SELECT * FROM "payroll"()',
    "SELECT (payroll()).salary",
    "SELECT id FROM orders WHERE id === 1",
])
async def test_user_functions_and_operators_are_refused_even_security_definer_ones(runner, definer_function, unchanged, sql):
    with pytest.raises(SqlRefused, match="not allowed: only built-in"):
        await runner.query(sql)


async def test_the_agent_role_cannot_execute_functions_in_public_even_with_the_check_bypassed(sales_db, definer_function):
    conn = await asyncpg.connect(**connect_args(readonly_url(sales_db)))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM payroll()")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT 1 === 2")
    finally:
        await conn.close()


@pytest.mark.parametrize("sql", [
    "SELECT date_trunc('month', order_date)::date AS month, round(sum(amount), 2) FROM orders GROUP BY 1 ORDER BY 1",
    "WITH t(n) AS (SELECT count(*) FROM regions) SELECT n FROM t",
    "SELECT CAST(amount AS numeric(10,2)), extract(year FROM order_date) FROM orders WHERE quantity > -1 LIMIT 3",
    "SELECT count(*) FILTER (WHERE quantity >= 2), coalesce(max(amount), 0) FROM orders",
    "SELECT name, rank() OVER (ORDER BY unit_price DESC) FROM products WHERE name ILIKE '%o%' OR id IN (1, 2)",
    "SELECT lower(r.name) || '-' || upper(p.category) FROM regions r CROSS JOIN products p WHERE r.id <> 2",
])
async def test_ordinary_analytics_queries_still_pass_the_function_check(runner, sql):
    assert (await runner.query(sql)).rows


class StallingProxy:
    """TCP on 127.0.0.1 to the embedded server's Unix socket; once the client has sent a
    query containing STALL, nothing more comes back (a result stuck on the wire, or a
    server past its statement_timeout that does not stop)."""

    STALL = b"stall-here"

    def __init__(self, socket_path: str) -> None:
        self.socket_path, self.server, self.port = socket_path, None, 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _client(self, creader, cwriter) -> None:
        sreader, swriter = await asyncio.open_unix_connection(self.socket_path)
        stalled = asyncio.Event()

        async def up() -> None:
            while data := await creader.read(65536):
                if self.STALL in data:
                    stalled.set()
                swriter.write(data)
            swriter.close()

        async def down() -> None:
            while data := await sreader.read(65536):
                if not stalled.is_set():
                    cwriter.write(data)
            cwriter.close()

        await asyncio.gather(up(), down(), return_exceptions=True)

    async def stop(self) -> None:
        self.server.close()


async def test_a_query_whose_answer_never_arrives_is_cut_off_on_the_client_wall_clock(sales_db):
    """statement_timeout cannot help when the server does not stop (one huge
    string_agg(repeat(...)) checks for interrupts too rarely) or the result is stuck on
    the wire; the client gives up 1 s after the timeout."""
    args = connect_args(sales_db)
    proxy = StallingProxy(f"{args['host']}/.s.PGSQL.{args['port'] or 5432}")
    await proxy.start()
    try:
        url = f"postgresql://{ROLE}@127.0.0.1:{proxy.port}/{DATABASE}"
        runner = SqlRunner(url=url, tables=TABLES, timeout=0.5)
        assert (await runner.query("SELECT count(*) FROM regions")).rows == [(4,)]  # the proxy itself works
        t0 = time.monotonic()
        with pytest.raises(SqlRefused, match="longer than 0.5 s and was cancelled"):
            await runner.query("SELECT string_agg(repeat(name, 1000), 'stall-here') FROM regions")
        assert time.monotonic() - t0 < 3
        assert (await runner.query("SELECT count(*) FROM regions")).rows == [(4,)]
    finally:
        await proxy.stop()
