from django.urls import path, re_path

from config.errors import api_not_found
from games import api, import_api
from leaderboard import sse_view

urlpatterns = [
    path("ceremonies", api.CeremonyListView.as_view()),
    path("ceremonies/import", import_api.CeremonyImportView.as_view()),
    path("ceremonies/<int:ceremony_id>", api.CeremonyDetailView.as_view()),
    path("categories/<int:category_id>/winner", api.CategoryWinnerView.as_view()),
    path("games", api.GameListView.as_view()),
    path("games/join", api.GameJoinView.as_view()),
    path("games/<int:game_id>", api.GameDetailView.as_view()),
    path("games/<int:game_id>/participants/<int:user_id>", api.ParticipantView.as_view()),
    path("games/<int:game_id>/picks", api.PickListView.as_view()),
    path("games/<int:game_id>/picks/<int:category_id>", api.PickView.as_view()),
    path("games/<int:game_id>/leaderboard", api.LeaderboardView.as_view()),
    path("games/<int:game_id>/pick-counts", api.PickCountsView.as_view()),
    path("games/<int:game_id>/events", sse_view.game_events),
    # Last: any other /api/ path answers 404 in the API's error shape.
    re_path(r"^.*$", api_not_found),
]
