"""Slack HTTP-mode load: signed `app_mention` events at fixed rates against `aibot run`.

Everything real but Slack and the model, as a new user would run it: the bot is
`python -m bot.cli run --workers N` in its own process(es), in Slack HTTP mode
(SLACK_SIGNING_SECRET), on a PostgreSQL shared by its workers (the embedded server,
started here); slack_sdk talks to the fake Slack (tests/fakes/slack_server.py, in this
process) and the openai SDK to the fake model (tests/fakes/openai_server.py, in a process
of its own) which streams every answer in `--ttft + --tokens / --tps` seconds (1.5 s).

Per rate (msg/s), `min(rate * --seconds, --max-count)` mentions are sent open-loop at
fixed intervals across `--channels` channels, each a signed POST; then the run waits
until every answer is final (or `--grace` seconds). Measured per step:

- ack p50/p99: POST sent -> HTTP response (Slack retries after 3 s);
- complete %: answers whose full text was shown (chat.stopStream / final chat.update);
  error replies counted apart;
- first visible p50: the model's first token (the fake's request time + ttft) -> the first
  Slack call that showed text;
- overhead p50/p99: event sent -> final text, minus the model's own time for that answer
  (request received -> last chunk written, measured by the fake model);
- answers/s: answers completed over the step, per second from the first message sent to
  the last final text (less one answer's model time): about the rate sent while the bot
  keeps up, its capacity when it does not;
- CPU ms/msg: user+system CPU of the bot's processes during the step / messages;
- RSS: resident memory of the bot's processes at the end of the step (MB).

Baseline, in the same run: a bare slack-bolt AsyncApp (aiohttp, HTTP mode, the same
signing secret) whose `app_mention` listener does nothing, sent the same events: its
ack latency and CPU per event is the floor any bolt app pays.

    .venv/bin/python bench/load_slack.py --rates 2,12,30,60 --seconds 10 [--workers 2] [--rounds 3]
        [--workspaces 400] [--mode socket]

With `--workspaces N` (N > 1) the bot runs in OAuth distribution mode and N workspaces
install it through its own /slack/install and /slack/oauth_redirect pages before the
steps; mentions are then spread over them (Slack's rate tiers are per workspace). A
warm-up step sends one mention per workspace first. `--mode socket` delivers the same
events as Socket Mode envelopes over the fake's WebSocket (ack = the app's reply there).

Results are medians over rounds. Loopback only; bounded in count and time.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402

from tests.fakes.openai_server import FakeOpenAI, Script  # noqa: E402
from tests.fakes.slack_server import APP_TOKEN, BOT_TOKEN, BOT_USER, TEAM, FakeSlack  # noqa: E402

SECRET = "bench-signing-secret-0123456789ab"
QID = re.compile(r"\bq(\d+)x\b")
VISIBLE = {"chat.postMessage", "chat.update", "chat.appendStream", "chat.stopStream", "chat.startStream"}
TICK = os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------------- the fake model


class TimedOpenAI(FakeOpenAI):
    """The fake model, noting for each question when its request came and its stream ended."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.timing: dict[int, tuple[float, float]] = {}

    async def _chat(self, request):
        start = time.time()
        resp = await super()._chat(request)
        end = time.time()
        try:
            body = json.loads(await request.read())
            last = next(m["content"] for m in reversed(body["messages"]) if m.get("role") == "user")
            found = QID.search(str(last))
            if found:
                self.timing[int(found.group(1))] = (start, end)
        except Exception:
            pass
        return resp


def _model_process(conn, ttft: float, tps: float, tokens: int) -> None:
    text = " ".join(f"word{i}" for i in range(tokens - 1)) + " end."
    fake = TimedOpenAI(ttft=ttft, tokens_per_second=tps, responder=lambda body: Script(text=text)).start()
    conn.send(fake.base_url)
    while True:
        cmd = conn.recv()
        if cmd == "timing":
            conn.send(dict(fake.timing))
        elif cmd == "stop":
            fake.stop()
            conn.send(None)
            return


class ModelProcess:
    def __init__(self, *, ttft: float, tps: float, tokens: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_model_process, args=(child, ttft, tps, tokens), daemon=True)
        self.proc.start()
        self.base_url = self.conn.recv()

    def timing(self) -> dict[int, tuple[float, float]]:
        self.conn.send("timing")
        return self.conn.recv()

    def stop(self) -> None:
        self.conn.send("stop")
        self.conn.recv()
        self.proc.join(5)


# ----------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree(pid: int) -> list[int]:
    """`pid` and its descendants (Linux /proc)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def cpu_seconds(pid: int) -> float:
    total = 0.0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICK
        except OSError:
            pass
    return total


def rss_mb(pid: int) -> float:
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


async def wait_http(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"process exited with {proc.returncode}")
            try:
                async with s.get(url) as r:
                    if r.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError(url)


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def baseline_server(port: int, api_url: str, mode: str) -> None:
    """A bare bolt app acking `app_mention` (run in its own process: `--baseline-server`),
    over HTTP or, with `mode` "socket", over a Socket Mode connection to the fake."""
    from aiohttp import web
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
    from slack_bolt.app.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    async def main() -> None:
        socket = mode == "socket"
        bolt = AsyncApp(client=AsyncWebClient(token=BOT_TOKEN, base_url=api_url),
                        signing_secret=None if socket else SECRET, request_verification_enabled=not socket,
                        process_before_response=True, ignoring_self_events_enabled=False)

        @bolt.event("app_mention")
        async def nothing() -> None:
            return None

        handler = None
        if socket:
            handler = AsyncSocketModeHandler(bolt, APP_TOKEN)
            await handler.connect_async()

        async def handle(request):
            return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

        async def health(request):
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/slack/events", handle)
        app.router.add_get("/healthz", health)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        if handler is not None:
            await handler.close_async()
        await runner.cleanup()

    asyncio.run(main())


# ----------------------------------------------------------------------------- load


def signed(body: str) -> dict:
    ts = str(int(time.time()))
    sig = "v0=" + hmac.new(SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig, "Content-Type": "application/json"}


def ts_of(qid: int) -> str:
    return f"{1_700_000_000 + qid // 1_000_000}.{qid % 1_000_000:06d}"


def mention(qid: int, channels: int, teams: list[tuple[str, str]]) -> dict:
    """Question `qid` as Slack sends it: in workspace `teams[qid % len(teams)]` (team id,
    the bot's user id there), one of `channels` channels."""
    team, bot_user = teams[qid % len(teams)]
    ts = ts_of(qid)
    return {
        "token": "x", "team_id": team, "api_app_id": "A0BENCH", "type": "event_callback",
        "event_id": f"EvLoad{qid}", "event_time": int(time.time()), "authed_users": [bot_user],
        "authorizations": [{"enterprise_id": None, "team_id": team, "user_id": bot_user, "is_bot": True,
                            "is_enterprise_install": False}],
        "event": {"type": "app_mention", "user": "U061F7AUR", "text": f"<@{bot_user}> question q{qid}x please",
                  "ts": ts, "channel": f"C{(qid // len(teams)) % channels:08d}", "event_ts": ts},
    }


def throughput(sent: list[float], finals: list[float], model_times: list[float]) -> float | None:
    """Answers completed per second over a step: completed answers over the time from the
    first message sent to the last answer's final text, less one answer's model time."""
    if not finals or not sent or not model_times:
        return None
    span = max(finals) - min(sent) - statistics.median(model_times)
    return len(finals) / span if span > 0 else None


async def settled(args, collect) -> dict[int, dict]:
    """Poll `collect()` ({question: {"final", "error", ...}}) until every answer is final
    or an error (or the model's time plus `--grace` has passed); its last result."""
    deadline = time.monotonic() + args.ttft + args.tokens / args.tps + args.grace
    while time.monotonic() < deadline:
        if all(o["final"] or o["error"] for o in collect().values()):
            break
        await asyncio.sleep(0.25)
    await asyncio.sleep(0.5)  # CPU of the last writes
    return collect()


def answer_figures(args, seen: dict[int, dict], sent: dict[int, float], timing: dict[int, tuple[float, float]],
                   n: int) -> dict:
    """A step's answer figures from what the platform saw per question (`seen`: first and
    final visible times, error, answers posted), when each was sent, and the fake model's
    (start, end) per question."""
    done = [q for q, o in seen.items() if o["final"]]
    overhead, first = [], []
    for q in done:
        if q in timing:
            m_start, m_end = timing[q]
            overhead.append((seen[q]["final"] - sent[q] - (m_end - m_start)) * 1000)
            if seen[q]["first"] is not None:
                first.append((seen[q]["first"] - (m_start + args.ttft)) * 1000)
    return {
        "complete_pct": 100.0 * len(done) / n,
        "errors": sum(1 for o in seen.values() if o["error"]),
        "twice": sum(1 for o in seen.values() if o["answers"] > 1),
        "first_p50": pct(first, 0.5),
        "overhead_p50": pct(overhead, 0.5),
        "overhead_p99": pct(overhead, 0.99),
        # answers finished per second: a rate kept up with gives about the rate sent
        "answers_per_s": throughput(list(sent.values()), [seen[q]["final"] for q in done],
                                    [timing[q][1] - timing[q][0] for q in done if q in timing]),
    }


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


async def send_step(session: aiohttp.ClientSession, url: str, fake: FakeSlack, rate: float, n: int,
                    first_qid: int, channels: int, *, teams: list[tuple[str, str]], socket: bool,
                    answers: bool) -> dict[int, tuple[float, float | None, int]]:
    """Send `n` mentions at `rate`/s, each a signed POST to `url` or (`socket`) a Socket
    Mode envelope from the fake; {qid: (sent at (time.time), ack ms or None, status)}."""
    acks: dict[int, tuple[float, float | None, int]] = {}
    envelopes: dict[int, str] = {}

    async def one(qid: int) -> None:
        payload = mention(qid, channels, teams)
        if answers:
            fake.deliver(payload)
        sent = time.time()
        if socket:
            envelopes[qid] = await fake.send_envelope("events_api", payload)
            acks[qid] = (sent, None, 0)
            return
        body = json.dumps(payload)
        t0 = time.perf_counter()
        try:
            async with session.post(url, data=body, headers=signed(body)) as resp:
                await resp.read()
                status = resp.status
        except aiohttp.ClientError:
            status = 0
        acks[qid] = (sent, (time.perf_counter() - t0) * 1000, status)

    start = time.perf_counter()
    tasks = []
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(first_qid + i)))
    await asyncio.gather(*tasks)
    if socket:  # the ack is the app's reply on the WebSocket (Slack redelivers after 3 s without one)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(fake.envelopes[e].acked_at is None for e in envelopes.values()):
            await asyncio.sleep(0.05)
        for qid, env_id in envelopes.items():
            env = fake.envelopes[env_id]
            if env.acked_at is not None:
                acks[qid] = (acks[qid][0], (env.acked_at - env.sent_at) * 1000, 200)
    return acks


class Outcomes:
    """What the fake Slack saw for each question's thread, read from its call log."""

    def __init__(self, fake: FakeSlack) -> None:
        self.fake = fake
        self.offset = time.time() - time.monotonic()

    def thread_of(self, call) -> str | None:
        args = call.args
        if call.method in ("chat.postMessage", "chat.startStream"):
            return args.get("thread_ts")
        msg = self.fake.messages.get((args.get("channel", ""), args.get("ts", "")))
        return msg.thread_ts if msg is not None else None

    def collect(self, start_index: int, qids: set[int]) -> dict[int, dict]:
        by_ts = {ts_of(q): q for q in qids}
        out: dict[int, dict] = {q: {"first": None, "final": None, "error": False, "answers": 0} for q in qids}
        for call in self.fake.calls[start_index:]:
            if call.method not in VISIBLE or not call.ok:
                continue
            q = by_ts.get(self.thread_of(call) or "")
            if q is None:
                continue
            at = call.at + self.offset
            text = call.args.get("text") or call.args.get("markdown_text") or ""
            rec = out[q]
            if call.method in ("chat.startStream", "chat.postMessage"):
                rec["answers"] += 1  # more than one: answered twice
            if text and rec["first"] is None:
                rec["first"] = at
            if call.method == "chat.stopStream" or (text.rstrip().endswith("end.")):
                rec["final"] = at
            elif call.method == "chat.postMessage" and ("wrong" in text or "sorry" in text.lower()):
                rec["error"] = True
        return out


def steps(spec: str, seconds: float) -> list[tuple[float, float]]:
    """`--rates`: "12,30" or, for a step of its own length, "30,60@60,30" (60 msg/s for 60 s)."""
    out = []
    for item in spec.split(","):
        rate, _, length = item.partition("@")
        out.append((float(rate), float(length) if length else seconds))
    return out


async def run_step(args, url: str, pid: int, fake: FakeSlack, model: ModelProcess | None, step: tuple[float, float],
                   first_qid: int, *, answers: bool, teams: list[tuple[str, str]]) -> dict:
    rate, seconds = step
    n = int(min(rate * seconds, args.max_count))
    start_index = len(fake.calls)
    cpu0, wall0 = cpu_seconds(pid), time.monotonic()
    fakes0 = time.process_time() + (cpu_seconds(model.proc.pid) if model else 0.0)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        acks = await send_step(session, url, fake, rate, n, first_qid, args.channels, teams=teams,
                               socket=args.mode == "socket", answers=answers)
    qids = set(acks)
    res: dict = {"rate": rate, "seconds": seconds, "n": n}
    if answers:
        outcomes = Outcomes(fake)
        seen = await settled(args, lambda: outcomes.collect(start_index, qids))
        res |= answer_figures(args, seen, {q: a[0] for q, a in acks.items()}, model.timing(), n)
    else:
        await asyncio.sleep(0.5)
    cpu = cpu_seconds(pid) - cpu0
    fakes = time.process_time() + (cpu_seconds(model.proc.pid) if model else 0.0) - fakes0
    ack_ms = [a[1] for a in acks.values() if a[2] == 200 and a[1] is not None]
    res |= {
        "acked_pct": 100.0 * len(ack_ms) / n,
        "ack_p50": pct(ack_ms, 0.5),
        "ack_p99": pct(ack_ms, 0.99),
        "cpu_ms_per_msg": cpu * 1000 / n,
        "cpu_pct": 100.0 * cpu / (time.monotonic() - wall0),  # of one core, over the step (sending to last answer)
        "fakes_cpu_ms_per_msg": fakes * 1000 / n,  # this process (fake Slack, load) + the fake model
        "rss_mb": rss_mb(pid),
    }
    return res


# ----------------------------------------------------------------------------- the run


def bot_env(args, *, port: int, slack: FakeSlack, model_url: str, database_url: str, data_dir: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AIBOT_", "OPENAI_", "DISCORD_"))}
    env.update({
        "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": slack.base_url,
        "SLACK_HTTP_PORT": str(port), "AIBOT_HTTP_PORT": str(port), "OPENAI_BASE_URL": model_url,
        "OPENAI_API_KEY": "bench", "DATABASE_URL": database_url, "AIBOT_DATA_DIR": data_dir, "AIBOT_CACHE_TTL": "0",
        "AIBOT_LOG_LEVEL": args.log_level, "AIBOT_EMBEDDING_PROVIDER": "openai", "HF_HUB_OFFLINE": "1",
    })
    if args.workspaces > 1:  # OAuth distribution: each workspace installs the app (`install`)
        env.update({"SLACK_CLIENT_ID": slack.client_id, "SLACK_CLIENT_SECRET": slack.client_secret,
                    "SLACK_INSTALLATION_KEY": Fernet.generate_key().decode(), "SLACK_AUTHORIZE_URL": f"{slack.origin}/oauth/v2/authorize"})
    else:
        env["SLACK_BOT_TOKEN"] = BOT_TOKEN
    if args.mode == "socket":
        env["SLACK_APP_TOKEN"] = APP_TOKEN
    env.update(dict(kv.split("=", 1) for kv in args.env))
    return env


async def install(base: str, fake: FakeSlack, count: int, first: int) -> list[tuple[str, str]]:
    """`count` workspaces install the bot as installers do: the Add to Slack page, Slack's
    consent (the fake's `approve`), the redirect back with the code and state. Returns
    [(team id, the bot's user id there)]."""
    teams: list[tuple[str, str]] = []
    gate = asyncio.Semaphore(8)

    async def one(i: int) -> None:
        team = f"T{first + i:08d}"
        async with gate, aiohttp.ClientSession() as s:  # one installer's browser
            async with s.get(f"{base}/slack/install", allow_redirects=False) as resp:
                page = await resp.text()
                cookie = resp.headers.get("Set-Cookie", "").split(";")[0]  # bolt's state cookie
            link = re.search(r'<a href="([^"]+)"', page).group(1).replace("&amp;", "&")
            state = parse_qs(urlparse(link).query)["state"][0]
            async with s.get(f"{base}/slack/oauth_redirect", params={"code": fake.approve(team), "state": state},
                             headers={"Cookie": cookie}, allow_redirects=False) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"install of {team} failed: {resp.status} {await resp.text()}")
        teams.append((team, fake.workspaces[fake.token_of(team)].bot_user))

    await asyncio.gather(*(one(i) for i in range(count)))
    return sorted(teams)


async def one_round(args, r: int, database_url: str, model: ModelProcess) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {"baseline": [], "bot": []}
    rates = steps(args.rates, args.seconds)
    fake = await FakeSlack(page_size=200).start()
    single = [(TEAM, BOT_USER)]
    # the baseline: a bare bolt app acking the same events
    port = free_port()
    base = subprocess.Popen([sys.executable, __file__, "--baseline-server", str(port), fake.base_url, args.mode],
                            cwd=ROOT)
    try:
        await wait_http(f"http://127.0.0.1:{port}/healthz", base)
        if args.mode == "socket":
            await fake.wait_connected(60)
        for i, rate in enumerate(rates):
            out["baseline"].append(await run_step(args, f"http://127.0.0.1:{port}/slack/events", base.pid, fake, None,
                                                  rate, (r * 100 + 50 + i) * 10_000, answers=False, teams=single))
    finally:
        stop_process(base)
    # the bot, as `aibot run`
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="aibot-load-")
    env = bot_env(args, port=port, slack=fake, model_url=model.base_url, database_url=database_url, data_dir=data_dir)
    profile = ["-m", "cProfile", "-o", f"{args.profile}.{r}"] if args.profile else []
    cmd = [sys.executable, *profile, "-m", "bot.cli", "run"] + (["--workers", str(args.workers)] if args.workers > 1 else [])
    rows_before = await usage_count(database_url)
    log = open(Path(data_dir) / "bot.log", "w")
    bot = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=log)
    url = f"http://127.0.0.1:{port}/slack/events"
    try:
        await wait_http(f"http://127.0.0.1:{port}/healthz", bot)
        if args.mode == "socket":
            await fake.wait_connected(60)
        teams = single
        if args.workspaces > 1:
            t0 = time.monotonic()
            teams = await install(f"http://127.0.0.1:{port}", fake, args.workspaces, first=r * 100_000)
            print(f"round {r + 1}: {len(teams)} workspaces installed in {time.monotonic() - t0:.1f} s", file=sys.stderr)
        # warm-up, one mention per workspace: connections, the first model call, and what a
        # running deployment has cached per workspace (who is asking, its settings)
        warm = await run_step(args, url, bot.pid, fake, model, (20, len(teams) / 20) if len(teams) > 1 else (4, 1),
                              (r * 100 + 99) * 10_000, answers=True, teams=teams)
        spy = None
        if args.py_spy:  # sample the bot's processes (py-spy from the `bench` extra) during the steps
            spy = subprocess.Popen([shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(bot.pid), "--subprocesses", "--nonblocking",
                                    "--rate", "100", "--format", "raw", "-o", f"{args.py_spy}.{r}"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for i, rate in enumerate(rates):
            out["bot"].append(await run_step(args, url, bot.pid, fake, model, rate, (r * 100 + i) * 10_000,
                                             answers=True, teams=teams))
            print(f"round {r + 1} {rate[0]:g} msg/s for {rate[1]:g} s: {out['bot'][-1]}", file=sys.stderr)
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            spy.wait(60)
        out["metrics"] = [await overload_metrics(f"http://127.0.0.1:{port}/metrics")]
        print(f"round {r + 1} overload counters: {out['metrics'][0]}", file=sys.stderr)
        out["rate_limited"] = [{"429s": fake.rate_limited}]
    finally:
        stop_process(bot)
        log.close()
        await fake.stop()
    rows = await usage_count(database_url) - rows_before
    answered = round(sum(row["n"] * row["complete_pct"] / 100 for row in [warm, *out["bot"]]))
    print(f"round {r + 1}: {rows} usage ledger rows written for {answered} answers; "
          f"the fake Slack answered {fake.rate_limited} calls with 429", file=sys.stderr)
    out["ledger"] = [{"rows": rows, "answered": answered}]
    errors = [ln for ln in (Path(data_dir) / "bot.log").read_text().splitlines() if " ERROR " in ln or "Traceback" in ln]
    if errors:
        print(f"bot log ({data_dir}/bot.log) has {len(errors)} error lines, e.g. {errors[0][:300]}", file=sys.stderr)
    return out


async def overload_metrics(url: str) -> dict[str, float]:
    """The bot's overload counters from /metrics (one worker's, with --workers)."""
    names = ("aibot_queued_total", "aibot_queued_notices_total", "aibot_waiting_max", "aibot_ledger_retries_total")
    async with aiohttp.ClientSession() as s:
        async with s.get(url) as resp:
            text = await resp.text()
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in names:
            found[name.removeprefix("aibot_")] = float(value)
    return found


async def usage_count(database_url: str) -> int:
    """Rows in the usage ledger (one per model call)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text("SELECT count(*) FROM usage"))).scalar_one()
    finally:
        await engine.dispose()


def median_of(rows: list[dict], key: str) -> float | None:
    vals = [row[key] for row in rows if row.get(key) is not None]
    return statistics.median(vals) if vals else None


def fmt(v, spec: str = ".0f") -> str:
    return "-" if v is None else format(v, spec)


def report(args, rounds: list[dict[str, list[dict]]]) -> str:
    rates = steps(args.rates, args.seconds)
    lines = [
        f"mode={args.mode} workspaces={args.workspaces} workers={args.workers} rounds={args.rounds} "
        f"seconds/step={args.seconds} channels/workspace={args.channels} "
        f"model={args.ttft + args.tokens / args.tps:.1f}s ({args.tokens} tokens)",
        "",
        "| rate msg/s (s) | complete % | errors / twice | ack p50 / p99 ms (baseline) | first visible p50 ms "
        "| overhead p50 / p99 ms | answers/s | CPU ms/msg (baseline) | bot CPU % of a core | fakes CPU ms/msg | RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, rate in enumerate(rates):
        bot = [rd["bot"][i] for rd in rounds]
        base = [rd["baseline"][i] for rd in rounds]
        lines.append(
            f"| {rate[0]:g} ({rate[1]:g}) | {fmt(median_of(bot, 'complete_pct'), '.1f')} | {fmt(median_of(bot, 'errors'))} / "
            f"{fmt(median_of(bot, 'twice'))} "
            f"| {fmt(median_of(bot, 'ack_p50'), '.1f')} / {fmt(median_of(bot, 'ack_p99'))} "
            f"({fmt(median_of(base, 'ack_p50'), '.1f')} / {fmt(median_of(base, 'ack_p99'))}) "
            f"| {fmt(median_of(bot, 'first_p50'))} "
            f"| {fmt(median_of(bot, 'overhead_p50'))} / {fmt(median_of(bot, 'overhead_p99'))} "
            f"| {fmt(median_of(bot, 'answers_per_s'), '.1f')} "
            f"| {fmt(median_of(bot, 'cpu_ms_per_msg'), '.1f')} ({fmt(median_of(base, 'cpu_ms_per_msg'), '.1f')}) "
            f"| {fmt(median_of(bot, 'cpu_pct'))} | {fmt(median_of(bot, 'fakes_cpu_ms_per_msg'), '.1f')} "
            f"| {fmt(median_of(bot, 'rss_mb'))} |"
        )
    ledger = [rd["ledger"][0] for rd in rounds if rd.get("ledger")]
    lines.append("")
    lines.append("usage ledger rows written / answers, per round: "
                 + ", ".join(f"{x['rows']} / {x['answered']}" for x in ledger))
    lines.append("calls the fake Slack answered 429 (rate tier exceeded), per round: "
                 + ", ".join(str(rd["rate_limited"][0]["429s"]) for rd in rounds if rd.get("rate_limited")))
    return "\n".join(lines)


async def main(args) -> None:
    from bot.core import pgembed

    pg_dir = Path(tempfile.mkdtemp(prefix="aibot-load-pg-"))
    server, database_url = await asyncio.to_thread(pgembed.start, pg_dir / "pg")
    from sqlalchemy.ext.asyncio import create_async_engine

    from bot.core.db import Database

    engine = create_async_engine(database_url)
    await Database.from_engine(engine).upgrade()  # before the first count of ledger rows
    await engine.dispose()
    model = ModelProcess(ttft=args.ttft, tps=args.tps, tokens=args.tokens)
    try:
        rounds = [await one_round(args, r, database_url, model) for r in range(args.rounds)]
    finally:
        model.stop()
        await asyncio.to_thread(pgembed.stop, server)
    text = report(args, rounds)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rounds": rounds}, indent=1))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--baseline-server":
        baseline_server(int(sys.argv[2]), sys.argv[3], sys.argv[4])
        sys.exit(0)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rates", default="2,12,30,60",
                   help="comma-separated msg/s, one step each; RATE@SECONDS for a step of its own length")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each step's sending")
    p.add_argument("--max-count", type=int, default=1200, help="at most this many messages per step")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--workers", type=int, default=1, help="bot processes (aibot run --workers N)")
    p.add_argument("--channels", type=int, default=200, help="channels per workspace")
    p.add_argument("--workspaces", type=int, default=1,
                   help="1: one workspace (SLACK_BOT_TOKEN); more: each installs the app through OAuth, mentions spread over them")
    p.add_argument("--mode", choices=("http", "socket"), default="http",
                   help="Slack HTTP mode (signed POSTs) or Socket Mode (envelopes over the fake's WebSocket)")
    p.add_argument("--ttft", type=float, default=0.3)
    p.add_argument("--tokens", type=int, default=48)
    p.add_argument("--tps", type=float, default=40.0)
    p.add_argument("--grace", type=float, default=60.0, help="seconds after the model time to wait for answers")
    p.add_argument("--log-level", default="WARNING")
    p.add_argument("--env", action="append", default=[], help="extra KEY=VALUE for the bot")
    p.add_argument("--json", help="write every step's figures here")
    p.add_argument("--profile", help="run the bot under cProfile, writing PROFILE.<round> (pstats)")
    p.add_argument("--py-spy", help="sample the bot with py-spy during the steps, writing PY_SPY.<round> "
                   "(collapsed stacks; bench/profile_top.py sums them)")
    asyncio.run(main(p.parse_args()))
