from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView

from config import health, metrics

urlpatterns = [
    # Probes and the scrape (docs/operations.md): no session, no rate limit.
    path("healthz", health.healthz),
    path("readyz", health.readyz),
    path("metrics", metrics.metrics_view),
    # Browsers and tools ask for /favicon.ico whatever the pages link to.
    # Lazy: a hashed static name is known only once the manifest is loaded.
    path("favicon.ico", RedirectView.as_view(url=lazy(static, str)("img/favicon.ico"))),
    path("admin/", admin.site.urls),
    path("api/auth/", include("accounts.api_urls")),
    path("api/", include("games.api_urls")),
    path("", include("games.page_urls")),
]

# An outage outside any view (a session saved by its middleware) is a 503 too.
handler500 = "config.outages.server_error"
