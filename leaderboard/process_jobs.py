"""Jobs run once per server process (per hub, or at shutdown), not once per
socket: a timer or a shutdown hook per socket would cost every idle socket
memory.

Registered with every new hub (leaderboard.fanout.on_new_hub) when this
module is imported, which the app's ready() does.
"""

from __future__ import annotations

import asyncio
import logging
import time

from django.conf import settings

from config import metrics
from leaderboard import events
from leaderboard.fanout import Hub, current_hub, on_new_hub
from leaderboard.presence import REFRESH_SECONDS, SocketGames, get_presence
from server.extension import on_shutdown

logger = logging.getLogger(__name__)

# Time for the close frames to reach the wire before the reactor drops the
# connections.
CLOSE_FLUSH_SECONDS = 0.2


@on_new_hub
def refresh_gauges(hub: Hub) -> None:
    """This process's socket and pool gauges for /metrics (config.metrics)."""

    async def refresh() -> None:
        metrics.refresh_gauges(hub)

    hub.every(metrics.GAUGE_SECONDS, refresh)


@on_new_hub
def refresh_presence_of_local_sockets(hub: Hub) -> None:
    """Every REFRESH_SECONDS, push forward the presence entries of every
    local socket that follows a game, in one call for the process."""

    async def refresh() -> None:
        await get_presence().refresh(
            [
                SocketGames(list(follower.games), follower.user_id, follower.socket_id)
                for follower in hub.followers()
                if follower.games and follower.user_id is not None
            ]
        )

    hub.every(REFRESH_SECONDS, refresh)


@on_shutdown
async def close_with_1012() -> None:
    """The drain (docs/operations.md), when the server is told to stop: it
    already answers /readyz 503 and refuses upgrades (server/extension.py).
    After ENVELOPE_DRAIN_NOTICE_SECONDS, deliver what committed (the outbox
    flushed, one catch-up from the event log for every followed game), then
    close every local socket with 1012 so clients reconnect at once and
    resume; all within ENVELOPE_DRAIN_SECONDS. Our server runs the hook,
    once per process; others never do."""
    started = time.monotonic()
    bound = settings.ENVELOPE_DRAIN_SECONDS
    hub = current_hub()
    logger.info(
        "drain started: %d sockets, at most %.1f s",
        len(hub.followers()) if hub else 0,
        bound,
    )
    await asyncio.sleep(settings.ENVELOPE_DRAIN_NOTICE_SECONDS)
    if hub is not None:
        remaining = bound - (time.monotonic() - started) - 2 * CLOSE_FLUSH_SECONDS
        try:
            await asyncio.wait_for(_deliver_committed(hub), max(remaining, 0.01))
        except Exception as error:  # the bound passed, or the database is away
            logger.warning("drain: delivering committed events stopped: %r", error)
        sockets = hub.followers()
        await asyncio.gather(*(s.restart_notice() for s in sockets), return_exceptions=True)
    await asyncio.sleep(CLOSE_FLUSH_SECONDS)
    metrics.process_exiting()
    logger.info("drain done in %.2f s", time.monotonic() - started)


async def _deliver_committed(hub: Hub) -> None:
    """Events committed before now reach this process's sockets: what this
    process queued goes to the channel layer (the other processes' sockets
    get it from there), and the event log is read once for the games
    followed here, whatever the channel layer lost or has not brought yet."""
    await events.outbox_flushed()
    await hub.catch_up_now()
