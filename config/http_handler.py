"""Django's ASGI handler, with a request for a sync view answered in one trip
to a thread.

Under ASGI Django runs its middleware chain in async mode. Each middleware
built on MiddlewareMixin (Django's own, django-csp's) hands its
process_request and process_response to a thread one after the other, and a
sync-only one (WhiteNoise's) hands the rest of the chain back to the event
loop: a request for a sync view made 18 trips between the event loop and a
thread, and a staff's reveal waited for all of them before its transaction
began (bench/README.md, "One trip per request").

Every API view and page is sync. For them this handler runs the chain that
Django builds for WSGI — the same middleware, in the same order — and the
view in one trip to the request's thread. Async views (the SSE stream,
/readyz, /metrics) keep Django's async chain: they wait on the event loop,
not in a thread.
"""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.http import HttpRequest, HttpResponseBase
from django.urls import Resolver404, resolve


class OneTripASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self._sync = BaseHandler()
        self._sync.load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        if view_is_async(request):
            return await super().get_response_async(request)
        # thread_sensitive: the request's own thread, as Django's chain uses.
        return await sync_to_async(self._sync.get_response, thread_sensitive=True)(request)


def view_is_async(request: HttpRequest) -> bool:
    """Whether the request's URL resolves to an async view (an unknown URL
    is answered by the sync chain, as a 404). Before any middleware: the
    project's URLconf (no middleware here sets `request.urlconf`)."""
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return False
    return iscoroutinefunction(match.func)
