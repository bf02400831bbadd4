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


class KeyLimitReached(Conflict):
    """The account already holds the most active keys of a role it may."""

    def __init__(self, role: str, limit: int) -> None:
        super().__init__(f"this account already has {limit} active {role} keys; revoke one first")


class LastActiveKey(Conflict):
    """Revoking the key would leave its role without an active key."""

    def __init__(self, role: str) -> None:
        super().__init__(f"this is the account's last active {role} key; issue a new one first")


class GoalLimitReached(Conflict):
    """The account already holds the most goals it may."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"this account already has {limit} goals, the most an account may hold "
            "(deactivated goals count too); replace one with PUT /v1/goals/{goal_id} instead"
        )


class JobRunning(Conflict):
    """Another job holds the goal or funnel (one not yet ended): `job_id` is that job.
    `field` names what it holds: "goal_id" or "funnel_id"."""

    def __init__(self, field: str, ident: str, job_id: str) -> None:
        super().__init__(
            f"a backfill of {field.removesuffix('_id')} {ident!r} is already running (job "
            f"{job_id}); wait for it to end (GET /v1/jobs/{{job_id}})",
            [FieldProblem(field, f"has a backfill running: {job_id}")],
        )
        self.job_id = job_id


class WebhookLimitReached(Conflict):
    """The account already holds the most webhooks it may (deleted ones do not count)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"this account already has {limit} webhooks, the most an account may hold; "
            "delete one first (DELETE /v1/webhooks/{webhook_id})"
        )


class JobMovedOn(GoalkeeperError):
    """Another write reached the job first: that write's record drives the job now.
    Never an answer to a request (jobs run from the stream)."""
