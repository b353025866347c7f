from django.apps import AppConfig


class LeaderboardConfig(AppConfig):
    name = "leaderboard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Receivers that turn domain changes into real-time events.
        from leaderboard import signals  # noqa: F401
