"""A tiny pattern, as a new one would be written: a settings section, a command with
typed options, an admin-only command, an answerer, an HTTP route, background work and
a CLI subcommand, all in one folder. The composition root would list it as "echo"."""
from __future__ import annotations

from typing import ClassVar

from aiohttp import web

from bot.core.commands import answerer, command
from bot.core.feature import Feature
from bot.core.settings import Section, env


class EchoSettings(Section):
    title: ClassVar[str] = "Echo (the tests' dummy pattern)"

    prefix: str = env("ECHO_PREFIX", "echo:", description="what every echo starts with")


class Echo(Feature):
    name = "echo"
    settings_model = EchoSettings
    settings: EchoSettings

    def __init__(self, host) -> None:
        super().__init__(host)
        self.events: list[str] = []  # its lifecycle, for the tests to read

    @command("echo", description="Say it back")
    async def echo(self, ctx, msg, text: str, times: int = 1) -> str:
        """text: what to say back
        times: how many times"""
        return " ".join([f"{self.settings.prefix} {text}"] * times)

    @command("echo-reset", description="Forget everything (admins only)", admin_only=True, ephemeral=True)
    async def reset(self, ctx, msg) -> str:
        return "forgotten"

    @answerer
    async def parrot(self, ctx, msg):
        """Mentions that start with "parrot"; the others are for the next pattern."""
        if not msg.text.startswith("parrot "):
            return None
        return f"{self.settings.prefix} {msg.text.removeprefix('parrot ')}"

    def mount(self, http: web.Application) -> None:
        http.router.add_get("/echo", self._prefix)

    async def _prefix(self, request: web.Request) -> web.Response:
        return web.json_response({"prefix": self.settings.prefix})

    async def start(self) -> None:
        self.events.append("start")

    async def stop(self) -> None:
        self.events.append("stop")

    @classmethod
    def add_cli(cls, cli) -> None:
        p = cli.add("echo", help="say it back on the terminal")
        p.add_argument("words", nargs="+")
        p.set_defaults(run=echo_cli)


async def echo_cli(args, rt) -> int:
    async with rt.open() as bot:
        print(bot.feature(Echo).settings.prefix, " ".join(args.words))
    return 0


FEATURE = Echo
