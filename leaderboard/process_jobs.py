"""Jobs run once per server process (per hub, or at shutdown), not once per
socket: a timer or a shutdown hook per socket would cost every idle socket
memory.

Registered with every new hub (leaderboard.fanout.on_new_hub) when this
module is imported, which the app's ready() does.
"""

from __future__ import annotations

import asyncio

from leaderboard.fanout import Hub, current_hub, on_new_hub
from leaderboard.presence import REFRESH_SECONDS, SocketGames, get_presence
from server.extension import on_shutdown

# Time for the close frames to reach the wire before the reactor drops the
# connections.
CLOSE_FLUSH_SECONDS = 0.2


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
    """When the server is told to stop, close every local socket with 1012
    before the connections drop, so clients reconnect at once and resume.
    Our server runs the hook (server/extension.py), once per process; others
    never do."""
    hub = current_hub()
    if hub is None:
        return  # no socket ever connected
    sockets = hub.followers()
    await asyncio.gather(*(s.restart_notice() for s in sockets), return_exceptions=True)
    await asyncio.sleep(CLOSE_FLUSH_SECONDS)
