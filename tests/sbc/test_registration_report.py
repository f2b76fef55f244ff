"""The SBC registration report without a SIP server: Kamailio's flags read as states, and drift."""

from teamsvoice.domain.sbc.ports import HeldRegistration
from teamsvoice.domain.sbc.service import NO_SBC, UserRow, report
from teamsvoice.sbc.kamailio import registration_state


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
