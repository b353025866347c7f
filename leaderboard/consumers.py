from channels.generic.websocket import AsyncJsonWebsocketConsumer


class LeaderboardConsumer(AsyncJsonWebsocketConsumer):
    """Placeholder: the real-time issue builds the consumer."""
