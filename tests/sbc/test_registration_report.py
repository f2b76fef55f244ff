"""The SBC registration report without a SIP server: Kamailio's flags read as states, and drift."""

from typing import Any

from teamsvoice.api.connecttoteams.calling_wire import render_registrations
from teamsvoice.domain.sbc.ports import HeldRegistration
from teamsvoice.domain.sbc.service import NO_SBC, UserRow, report as registration_report
from teamsvoice.sbc.kamailio import registration_state


def report(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """The domain's report as getSbcRegistrations (and `teamsvoice sbc status --json`) answer it."""
    return render_registrations(registration_report(*args, **kwargs))


def held(key: str, state: str = "REGISTERED", matches: bool = True) -> HeldRegistration:
    return HeldRegistration(key=key, number="+14139300001", pbx_user_id="104", pbx_domain="pbx.example",
                            proxy="sip:pbx.example:5060", state=state, refresh_in=30, matches=matches)  # type: ignore[arg-type]


USERS = [UserRow(1, 7, "ada@contoso.example", "104", "HQ"), UserRow(2, 7, "bob@contoso.example", "105", "HQ"),
         UserRow(3, 7, "cy@contoso.example", "106", "HQ"), UserRow(4, 7, "di@contoso.example", "107", "HQ")]


def test_kamailio_flags_read_as_states() -> None:
    assert registration_state({"flags": 0}) == "PENDING"
    assert registration_state({"flags": 16 | 2}) == "REGISTERING"
    assert registration_state({"flags": 16 | 8}) == "REGISTERING"
    assert registration_state({"flags": 16 | 4}) == "REGISTERED"
    assert registration_state({"flags": 16}) == "FAILED"
    assert registration_state({"flags": 16 | 4 | 1}) == "DISABLED"


def test_drift_names_what_differs() -> None:
    found = report(USERS, [held("tv-1"), held("tv-2", matches=False), held("tv-3", "FAILED"), held("tv-99")],
                   sbc="kamailio", error=None, all_keys={"tv-1", "tv-2", "tv-3", "tv-4"})
    states = {u["teamsUserId"]: (u["registration"], u["upToDate"]) for u in found["users"]}
    assert states == {"ada@contoso.example": ("REGISTERED", True), "bob@contoso.example": ("REGISTERED", False),
                      "cy@contoso.example": ("FAILED", True), "di@contoso.example": ("NOT_HELD", None)}
    kinds = sorted((d["kind"], d.get("teamsUserId") or d.get("registration")) for d in found["drift"])
    assert kinds == [("NOT_HELD", "di@contoso.example"), ("ORPHANED", "tv-99"), ("OUTDATED", "bob@contoso.example"),
                     ("REGISTRATION_FAILED", "cy@contoso.example")]
    # For one enterprise (all_keys unknown), a registration of someone else is not reported.
    assert "ORPHANED" not in {d["kind"] for d in report(USERS[:1], [held("tv-1")], sbc="kamailio", error=None)["drift"]}


def test_without_an_sbc_or_when_it_does_not_answer_the_report_says_so() -> None:
    none = report(USERS[:1], None, sbc=None, error=None)
    assert none["sbcAttached"] is False and none["message"] == NO_SBC and none["users"][0]["registration"] == "NO_SBC"
    down = report(USERS[:1], None, sbc="kamailio", error="connection refused")
    assert down["sbcAttached"] is True and down["reachable"] is False and "connection refused" in down["message"]
    assert down["users"][0]["registration"] == "UNKNOWN"


def test_the_answer_keeps_its_field_names_and_order() -> None:
    found = report(USERS[:1], [held("tv-1"), held("tv-99")], sbc="kamailio", error=None, all_keys={"tv-1"})
    assert list(found) == ["sbcAttached", "sbc", "reachable", "message", "users", "drift"]
    assert found["users"] == [{"id": 1, "enterpriseId": 7, "teamsUserId": "ada@contoso.example", "pbxUserId": "104",
                               "pbxLocation": "HQ", "registration": "REGISTERED", "proxy": "sip:pbx.example:5060",
                               "nextRegisterIn": 30, "upToDate": True}]
    assert list(found["users"][0]) == ["id", "enterpriseId", "teamsUserId", "pbxUserId", "pbxLocation", "registration",
                                       "proxy", "nextRegisterIn", "upToDate"]
    assert found["drift"] == [{"registration": "tv-99", "kind": "ORPHANED", "number": "+14139300001",
                               "detail": "the SBC registers 104@pbx.example for a user teamsvoice no longer has"}]
    assert list(found["drift"][0]) == ["registration", "kind", "number", "detail"]
    missing = report(USERS[1:2], [], sbc="kamailio", error=None)["drift"]
    assert missing == [{"teamsUserId": "bob@contoso.example", "kind": "NOT_HELD",
                        "detail": "teamsvoice has this PBX user; the SBC holds no registration for it"}]
