from django.apps import AppConfig


class LeaderboardConfig(AppConfig):
    name = "leaderboard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Receivers that turn domain changes into real-time events, and the
        # per-process jobs every hub starts (registered on import).
        from leaderboard import process_jobs, signals  # noqa: F401
