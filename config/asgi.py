"""ASGI entry point: HTTP and WebSocket (README, Configuration: config.asgi:application).

Served by `python -m server` (daphne with Envelope's server classes, server/)
in production and tests, and by `manage.py runserver` in development.
"""

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Set up Django (apps, models) before importing anything that touches them,
# as django.core.asgi.get_asgi_application does.
django.setup(set_prefix=False)

from config.http_handler import OneTripASGIHandler  # noqa: E402

django_asgi_app = OneTripASGIHandler()

from channels.routing import ProtocolTypeRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from config.http_limits import BodySizeLimit  # noqa: E402
from config.metrics import forget_dead_processes  # noqa: E402
from config.proxies import TrustedProxyHeaders  # noqa: E402
from leaderboard.auth import TicketOrSessionAuth  # noqa: E402
from leaderboard.routing import websocket_application  # noqa: E402

application = TrustedProxyHeaders(
    ProtocolTypeRouter(
        {
            "http": BodySizeLimit(django_asgi_app, settings.MAX_REQUEST_BODY_BYTES),
            "websocket": AllowedHostsOriginValidator(TicketOrSessionAuth(websocket_application)),
        }
    ),
    trusted=settings.TRUSTED_PROXIES,
)

# Live gauges left by processes killed without a drain (docs/operations.md).
forget_dead_processes()

# Garbage collection pauses the whole event loop. With 2,000 sockets a full
# collection took 0.3-0.4 s, and the collector ran one each time long-lived
# objects grew by a quarter, so during a join burst a reveal often waited for
# one (bench/fanout.py). Objects loaded at startup are moved out of its reach,
# and a full collection waits for 10x more young collections than the default.
# Reference counting still frees everything that is not in a cycle at once.
gc.freeze()
gc.set_threshold(700, 10, 100)
