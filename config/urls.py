from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/auth/", include("accounts.api_urls")),
    path("api/", include("games.api_urls")),
    path("", include("games.page_urls")),
]

# An outage outside any view (a session saved by its middleware) is a 503 too.
handler500 = "config.outages.server_error"
