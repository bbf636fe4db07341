"""`aibot tenant export|delete|status PLATFORM:TENANT`: a workspace's data from the command
line (the operator's side of a data request)."""
from __future__ import annotations

import json
import sys

USAGE = "name the tenant as PLATFORM:TENANT, e.g. slack:T012AB3CD or discord:81384788765712384"


def add(cli) -> None:
    p = cli.add("tenant", help="export or delete one workspace's data")
    sub = p.add_subparsers(dest="tenant_command", required=True, metavar="ACTION")
    e = sub.add_parser("export", help="print the workspace's documents, settings, schedules and usage as JSON")
    e.add_argument("tenant", metavar="PLATFORM:TENANT")
    e.add_argument("-o", "--output", help="write to this file instead of stdout")
    e.set_defaults(run=export)
    d = sub.add_parser("delete", help="delete all of the workspace's data now")
    d.add_argument("tenant", metavar="PLATFORM:TENANT")
    d.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    d.set_defaults(run=delete)
    s = sub.add_parser("status", help="whether the workspace removed the bot, and when its data goes")
    s.add_argument("tenant", metavar="PLATFORM:TENANT")
    s.set_defaults(run=status)


def split(raw: str) -> tuple[str, str] | None:
    platform, sep, tenant = raw.partition(":")
    return (platform, tenant) if sep and platform and tenant else None


async def export(args, rt) -> int:
    found = split(args.tenant)
    if found is None:
        print(f"aibot: {USAGE}", file=sys.stderr)
        return 2
    async with rt.open() as bot:
        data = await bot.services.tenants.export(*found)
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    else:
        print(text)
    return 0


async def delete(args, rt) -> int:
    found = split(args.tenant)
    if found is None:
        print(f"aibot: {USAGE}", file=sys.stderr)
        return 2
    if not args.yes:
        if not sys.stdin.isatty():
            print("aibot: add --yes to delete without being asked", file=sys.stderr)
            return 2
        if input(f"Delete every document, setting, schedule and usage row of {args.tenant}? [y/N] ").strip().lower() != "y":
            print("Nothing deleted.")
            return 1
    async with rt.open() as bot:
        counts = await bot.services.tenants.delete(*found, reason="aibot tenant delete")
    print(f"Deleted from {args.tenant}: " + (", ".join(f"{n} {what}" for what, n in counts.items()) or "nothing"))
    return 0


async def status(args, rt) -> int:
    found = split(args.tenant)
    if found is None:
        print(f"aibot: {USAGE}", file=sys.stderr)
        return 2
    async with rt.open() as bot:
        state = await bot.services.tenants.status(*found)
    if state is None:
        print(f"{args.tenant}: active (no removal recorded)")
    else:
        print(json.dumps(state, indent=2, default=str))
    return 0
