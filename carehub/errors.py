"""The one error type that services raise; admin and API turn it into a message or a 4xx."""


class DomainError(Exception):
    """A request the domain refuses. The message is shown to the user as is."""

    status_code = 400


class NotAllowed(DomainError):
    """The actor may not do this to this record."""

    status_code = 403


class Conflict(DomainError):
    """The record is not in a state that allows the change."""

    status_code = 409
