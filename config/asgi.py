"""ASGI entry point: HTTP and WebSocket (CONTRACT §1: config.asgi:application)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Set up Django (apps, models) before importing anything that touches them.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from config import daphne_close_codes  # noqa: E402
from leaderboard.auth import TicketOrSessionAuth  # noqa: E402
from leaderboard.routing import websocket_urlpatterns  # noqa: E402

daphne_close_codes.install()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            TicketOrSessionAuth(URLRouter(websocket_urlpatterns))
        ),
    }
)
