"""Domain errors: each carries the contract's error code and HTTP status."""

from __future__ import annotations


class DomainError(Exception):
    code = "ERROR"
    status = 400
    default_message = "The request could not be completed."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class NotFound(DomainError):
    code, status, default_message = "NOT_FOUND", 404, "Not found."


class InvalidCode(DomainError):
    code, status, default_message = "INVALID_CODE", 404, "No game has that access code."


class GameNotJoinable(DomainError):
    code, status, default_message = "GAME_NOT_JOINABLE", 409, "This game can no longer be joined."


class NotParticipant(DomainError):
    code, status, default_message = "NOT_PARTICIPANT", 403, "You are not a player in this game."


class Forbidden(DomainError):
    code, status, default_message = "FORBIDDEN", 403, "You are not allowed to do that."


class PicksLocked(DomainError):
    code, status, default_message = "PICKS_LOCKED", 409, "Picks are locked for this game."


class NominationNotInCategory(DomainError):
    code, status, default_message = (
        "NOMINATION_NOT_IN_CATEGORY",
        400,
        "That nominee is not in this category.",
    )


class AlreadyRevealed(DomainError):
    code, status, default_message = (
        "ALREADY_REVEALED",
        409,
        "This category already has a different winner: undo it first.",
    )


class InvalidTransition(DomainError):
    code, status, default_message = (
        "INVALID_TRANSITION",
        409,
        "That status change is not allowed.",
    )


class ValidationFailed(DomainError):
    code, status, default_message = "VALIDATION_ERROR", 400, "Invalid input."


class ImportInvalid(DomainError):
    code, status, default_message = (
        "IMPORT_INVALID",
        400,
        "The ceremony could not be imported.",
    )
