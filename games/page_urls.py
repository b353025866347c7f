"""Page routes (README, Pages), included at the site root."""

from django.urls import path

from games import pages

urlpatterns = [
    path("", pages.home, name="home"),
    path("join/<str:code>", pages.join, name="join"),
    path("games/<int:game_id>/picks", pages.picks, name="picks"),
    path("games/<int:game_id>/live", pages.live, name="live"),
    path("games/<int:game_id>/host", pages.host, name="host"),
]
