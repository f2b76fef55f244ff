"""One rule for how a unit of a durable job (a user, an operation, a bulk item, a resource account) fails:
jobs.runtime.unit_failure."""

import logging

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from teamsvoice.core.errors import NotFound, UpstreamError
from teamsvoice.jobs.runtime import failure_message, unit_failure


def test_a_domain_error_is_the_units_outcome() -> None:
    assert unit_failure(NotFound("Microsoft 365 user 'x' not found"), "user x") == {
        "kind": "not_found", "code": "not_found", "message": "Microsoft 365 user 'x' not found"}
    assert unit_failure(UpstreamError("Graph: 503", retryable=True, status=503), "user x")["retryable"] is True


def test_a_defect_is_named_by_its_type_and_logged_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="teamsvoice.jobs"):
        assert failure_message(KeyError("secret detail"), "calling job 7: user a@b") == "Unexpected error: KeyError"
        assert failure_message(IntegrityError("INSERT", {}, Exception("duplicate")), "bulk item 3") \
            == "Unexpected error: IntegrityError"
    [first, _] = caplog.records
    assert first.getMessage() == "calling job 7: user a@b failed unexpectedly" and first.exc_info is not None


def test_a_transient_database_failure_is_no_outcome_its_step_runs_again() -> None:
    locked = OperationalError("UPDATE x", {}, Exception("database is locked"))
    with pytest.raises(OperationalError):
        unit_failure(locked, "voice apply job 1: op")
    with pytest.raises(OperationalError):
        failure_message(locked, "resource account 2")
