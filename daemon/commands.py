"""The `vgw` subcommands other than validate (see daemon/cli.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
import time
from datetime import datetime, timezone

from .config import ConfigError, load_config
from .control import request

EXIT_OK, EXIT_ERROR, EXIT_CONFIG = 0, 1, 2
log = logging.getLogger("vgw")


def _setup_logging() -> None:
    level = os.environ.get("VGW_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=getattr(logging, level, logging.INFO), stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(message)s")


def run(args) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    from .tunnel import TEST_LIMITS_ENV, limits_from_env
    try:
        limits_override = limits_from_env(os.environ)   # tests only
    except ValueError as exc:
        print(f"vgw: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    _setup_logging()
    _log_warnings(config, args.config)
    if limits_override is not None:
        log.warning("%s is set: tunnels that emulate AWS's limits enforce %d packets/s and %d bit/s instead"
                    " (a setting for tests only)", TEST_LIMITS_ENV, limits_override.packets_per_second,
                    limits_override.bits_per_second)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(_run(config, args.config, limits_override))
    except KeyboardInterrupt:
        return EXIT_OK


def _log_warnings(config, source: str) -> None:
    for warning in config.warnings:
        log.warning("%s", warning.format(source))


def _loop_factory():
    """uvloop for the daemon's own event loop when it is installed (`pip install
    vgw[fast]`); VGW_UVLOOP=0 keeps asyncio's. Only this loop: pyroute2's helper
    threads open netlink sockets, which uvloop cannot, in plain asyncio loops.
    Measured: vgw <-> vgw TCP 2.43/2.69/1.26 Gbit/s with it against 1.85/1.78/1.44
    without (same run), and ~1 us less per wake-up."""
    if os.environ.get("VGW_UVLOOP", "1") == "0":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _run(config, path: str, limits_override=None) -> int:
    from .gateway import Gateway, StartupError
    from .metrics import MetricsServer
    from .systemd import Notifier, tunnels_summary
    loop = asyncio.get_running_loop()
    gw = Gateway(config, loop, limits_override)
    notifier = Notifier()   # sd_notify; does nothing outside systemd (daemon/systemd.py)
    try:
        await gw.start()
    except ConfigError as exc:
        # the file is valid alone but takes what the EC2 API's connections hold
        print(ConfigError(path, exc.issues), file=sys.stderr)
        return EXIT_CONFIG
    except (StartupError, OSError) as exc:
        # StartupError says what to change; an OSError here (e.g. the control
        # socket in use, netlink refused) carries its own message
        print(f"vgw: {exc}", file=sys.stderr)
        return EXIT_ERROR
    metrics = MetricsServer(gw)
    await metrics.apply(gw.config.metrics)
    gw.on_state_change.append(lambda: notifier.status(tunnels_summary(gw.tunnels.values())))
    notifier.ready(tunnels_summary(gw.tunnels.values()))
    notifier.start_watchdog(loop)
    stop = asyncio.Event()
    reloads: list[asyncio.Task] = []
    one_at_a_time = asyncio.Lock()   # two quick SIGHUPs apply in order, the last file wins

    async def apply_reload() -> None:
        async with one_at_a_time:
            await reload_once()

    async def reload_once() -> None:
        notifier.reloading()
        try:
            try:
                new = await read_config_off_loop(path)
            except (ConfigError, OSError) as exc:
                log.error("reload refused, the running configuration stays: %s", exc)
                return
            _log_warnings(new, path)
            try:
                gw.reload(new)
            except ConfigError as exc:
                log.error("reload refused, the running configuration stays: %s", ConfigError(path, exc.issues))
                return
            except StartupError as exc:
                log.error("reload refused, the running configuration stays: %s", exc)
                return
            await metrics.apply(new.metrics)
        except Exception:  # noqa: BLE001 - a failed reload must not take the gateway down
            log.exception("reload failed part-way; `vgw status` shows what runs now")
        finally:
            notifier.ready(tunnels_summary(gw.tunnels.values()))

    def reload() -> None:
        reloads.append(loop.create_task(apply_reload()))

    gw.install_signal_handlers(stop.set, reload)
    await stop.wait()
    notifier.stopping()
    log.info("vgw is stopping: deleting SAs, removing routes and TUN devices")
    for task in reloads:
        if not task.done():
            await task
    await metrics.close()
    await gw.stop()
    notifier.close()
    return EXIT_OK


async def read_config_off_loop(path: str):
    """load_config in a worker thread: the event loop goes on moving packets and
    answering IKE while the file is read, parsed and its certificates loaded
    (bounded by daemon/config/yaml_safe.py's limits: ~2 s of CPU for 1 MiB at worst). The
    result is applied on the loop by the caller."""
    return await asyncio.get_running_loop().run_in_executor(None, load_config, path)


def _ask(args, payload: dict) -> dict | None:
    try:
        answer = request(args.control, payload)
    except (ConnectionError, OSError) as exc:
        print(f"vgw: {exc}", file=sys.stderr)
        return None
    if not answer.get("ok"):
        print(f"vgw: {answer.get('error', 'request failed')}", file=sys.stderr)
        return None
    return answer


def status(args) -> int:
    answer = _ask(args, {"cmd": "status"})
    if answer is None:
        return EXIT_ERROR
    if args.json:
        # {"tunnels": [...]} (docs/design.md §6.3), plus what belongs to the whole gateway:
        # IKE_SA_INIT defences, data path drops no tunnel could be charged with
        gateway = {k: v for k, v in answer.items() if k not in ("ok", "tunnels")}
        print(json.dumps({"tunnels": answer["tunnels"], "gateway": gateway}, indent=2, default=str))
    else:
        from .statusfmt import render
        print(render(answer))
    return EXIT_OK


def routes(args) -> int:
    """`vgw routes`: the VPC route table as DescribeRouteTables shows it (docs/aws.md §7)."""
    answer = _ask(args, {"cmd": "routes"})
    if answer is None:
        return EXIT_ERROR
    if args.json:
        print(json.dumps({"routes": answer["routes"]}, indent=2, default=str))
    else:
        from .statusfmt import render_routes
        print(render_routes(answer["routes"]))
    return EXIT_OK


def tunnel(args) -> int:
    answer = _ask(args, {"cmd": "tunnel", "action": args.action, "tunnel": args.tunnel})
    if answer is None:
        return EXIT_ERROR
    print(f"tunnel {args.tunnel}: {args.action}" + (f" ({answer['note']})" if answer.get("note") else ""))
    return EXIT_OK


def rekey(args) -> int:
    answer = _ask(args, {"cmd": "rekey", "tunnel": args.tunnel, "sa": args.sa})
    if answer is None:
        return EXIT_ERROR
    print(f"tunnel {args.tunnel}: {args.sa} rekey started")
    return EXIT_OK


_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_time(text: str, now: float) -> float:
    """--apply-after: a duration from now (90s, 10m, 2h, 7d) or an ISO 8601 time (UTC
    when it names no zone); ValueError says what is accepted."""
    found = _DURATION.fullmatch(text.strip())
    if found:
        return now + float(found.group(1)) * _UNIT[found.group(2)]
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--apply-after {text!r}: give a duration (90s, 10m, 2h, 7d) or an ISO 8601 time"
                         " (2026-12-08T10:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def maintenance(args) -> int:
    """`vgw maintenance schedule|apply|status` (docs/aws.md §1.10, §13)."""
    payload = {"cmd": "maintenance", "action": args.action}
    if args.action in ("schedule", "apply"):
        payload.update(connection=args.connection, tunnel=args.tunnel)
    if args.action == "schedule" and args.apply_after:
        try:
            payload["apply_after"] = parse_time(args.apply_after, time.time())
        except ValueError as exc:
            print(f"vgw: {exc}", file=sys.stderr)
            return EXIT_CONFIG
    answer = _ask(args, payload)
    if answer is None:
        return EXIT_ERROR
    if args.action == "status":
        if args.json:
            print(json.dumps({"maintenance": answer["maintenance"]}, indent=2, default=str))
        else:
            from .statusfmt import maintenance_table
            print(maintenance_table(answer["maintenance"]))
        return EXIT_OK
    for ip in answer.get("applied", []):
        print(f"{answer['connection']} {ip}: maintenance applied (endpoint replaced)")
    for ip in answer.get("pending", []):
        when = datetime.fromtimestamp(answer["apply_after"]).astimezone().isoformat(timespec="seconds")
        print(f"{answer['connection']} {ip}: maintenance pending (lifecycle control on), applied after {when}"
              " unless applied before")
    if not answer.get("applied") and not answer.get("pending"):
        print(f"{answer['connection']}: no maintenance pending")
    return EXIT_OK
