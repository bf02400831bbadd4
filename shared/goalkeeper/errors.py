"""Domain errors. HTTP statuses for them live in one registry (goalkeeper.http)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    field: str
    reason: str


class GoalkeeperError(Exception):
    code = "internal_error"

    def __init__(self, message: str, fields: list[FieldProblem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or []


class InvalidInput(GoalkeeperError):
    code = "invalid_request"


class PayloadTooLarge(GoalkeeperError):
    code = "payload_too_large"


class Unauthenticated(GoalkeeperError):
    code = "unauthenticated"


class Forbidden(GoalkeeperError):
    code = "forbidden"


class NotFound(GoalkeeperError):
    code = "not_found"


class Conflict(GoalkeeperError):
    code = "conflict"


class EventIdConflict(GoalkeeperError):
    """An event id already names an event with other content, stored or earlier in the batch."""

    code = "event_id_conflict"


class StoreUnavailable(GoalkeeperError):
    """The table could not be reached after bounded retries; nothing was confirmed."""

    code = "store_unavailable"


class WriteRejected(GoalkeeperError):
    """DynamoDB refused a write as invalid (ValidationException): a defect of ours, not
    a busy store. Retrying cannot help; it is logged and counted for an alarm."""

    code = "internal_error"
