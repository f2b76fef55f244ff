"""A Teams user's changes are parsed once, by the domain's neutral parser (`service.parse_changes`, keyed by
UserUpdate's fields); Fusion's request bodies (`api/fusion/msteams_users.parse_update`) and stored bulk items
(`bulk.parse_item`, under the names the client sent) map their names onto it, and errors name the caller's field."""

import pytest

from teamsvoice.api.fusion import msteams_users
from teamsvoice.core.errors import ValidationFailed
from teamsvoice.domain.teams_users import bulk, service, templates


def test_the_neutral_parser_reads_the_update_fields_and_names_them_as_labelled() -> None:
    update = service.parse_changes({"phone_number": "+32 2 200 00 00", "vrp": None, "groups": [" Sales "]})
    assert (update.phone_number, update.vrp, update.groups) == ("+3222000000", None, ["Sales"])
    assert update.display_name is service.UNSET and update.licenses is service.UNSET
    with pytest.raises(ValidationFailed, match="^phone_number: "):
        service.parse_changes({"phone_number": "not a number"})
    with pytest.raises(ValidationFailed, match="^Number: "):
        service.parse_changes({"phone_number": "not a number"}, {"phone_number": "Number"})
    with pytest.raises(ValueError, match="phoneNumber"):  # a caller's mapping mistake, not a request's
        service.parse_changes({"phoneNumber": "+3222000000"})


def test_fusion_bodies_are_parsed_in_fusion_names() -> None:
    update = msteams_users.parse_update({"phoneNumber": "+3222000000", "customerLicenses": None, "displayName": "Ada"})
    assert (update.phone_number, update.customer_licenses, update.display_name) == ("+3222000000", [], "Ada")
    with pytest.raises(ValidationFailed, match="^phoneNumber: "):
        msteams_users.parse_update({"phoneNumber": 32})
    with pytest.raises(ValidationFailed, match="^number: unknown field"):
        msteams_users.parse_update({"number": "+3222000000"})
    with pytest.raises(ValidationFailed, match="^vrp: unknown field"):  # only the fields the route names
        msteams_users.parse_update({"vrp": "x"}, {"displayName": "display_name"})
    with pytest.raises(ValidationFailed, match="^body: "):
        msteams_users.parse_update(["phoneNumber"])


def test_the_users_filters_query() -> None:
    parsed = msteams_users.parse_filters('[{"country": "be"}, {"have_number": "yes"}]')
    assert parsed == service.UserFilters(frozenset({"BE"}), None, "yes")
    assert msteams_users.parse_filters(None) == service.UserFilters()
    with pytest.raises(ValidationFailed, match="unknown filter type"):
        msteams_users.parse_filters('{"type": "x"}')
    with pytest.raises(ValidationFailed, match="is_voice_enabled"):
        msteams_users.parse_filters('{"is_voice_enabled": "sometimes"}')


def test_a_stored_bulk_item_is_parsed_under_its_own_names_with_the_item_code() -> None:
    update = bulk.parse_item({"upn": "ada@contoso.com", "number": "+3222000000", "country": "be", "template": "x"})
    assert (update.phone_number, update.location) == ("+3222000000", "BE")
    with pytest.raises(ValidationFailed, match="^number: ") as caught:
        bulk.parse_item({"upn": "ada@contoso.com", "number": "0032"})
    assert caught.value.code == service.INVALID_ITEM
    with pytest.raises(ValidationFailed, match="^phoneNumber: unknown field") as caught:
        bulk.parse_item({"upn": "ada@contoso.com", "phoneNumber": "+3222000000"})
    assert caught.value.code == service.INVALID_ITEM


def test_a_template_fills_what_the_user_lacks_unless_it_overrides() -> None:
    template = templates.Template(7, "BE", "be", None, "BE", "World", ("g1",), ("sku",))
    current = templates.TemplatedProperties(["g0"], [], "NL", "Global")
    kept = templates.update_from(template, override=False, current=current)
    assert (kept.location, kept.vrp, kept.groups, kept.replace_groups) == (service.UNSET, "World", ["g1"], False)
    replaced = templates.update_from(template, override=True, current=current)
    assert (replaced.location, replaced.vrp, replaced.replace_groups, replaced.replace_licenses) == ("BE", "World", True, True)
    assert templates.update_from(templates.DEFAULT, override=False).licenses == ["MCOEV"]
    # The default template manages no groups, and its licence only where the user has no Teams Phone: never replaced.
    held = templates.update_from(templates.DEFAULT, override=True, holds_teams_phone=True)
    assert (held.groups, held.licenses) == (service.UNSET, service.UNSET)
    lacking = templates.update_from(templates.DEFAULT, override=True)
    assert (lacking.groups, lacking.licenses, lacking.replace_licenses) == (service.UNSET, ["MCOEV"], False)


async def test_the_default_template_asks_whether_the_user_holds_teams_phone_of_its_licences() -> None:
    """The default template's licence goes only to a user without Teams Phone (`templates.update_for`: the
    single-user apply's rule and a bulk item's). The single-user apply reads the tenant's SKUs; a bulk item decides
    from those this process remembers (`refresh=False`: no read of its own), read again only when the user holds a
    licence they do not name (subscribed since); a template without the requirement reads none."""
    from teamsvoice.microsoft.directory_ports import SubscribedSku
    from tests.unit.tenant_fakes import FakeDirectory

    suite = SubscribedSku("sku-e5", "SPE_E5", 5, 0, "Enabled", ("MCOEV", "TEAMS1"))
    e3 = SubscribedSku("sku-e3", "SPE_E3", 5, 0, "Enabled", ("TEAMS1",))
    directory, reads, remembered = FakeDirectory(skus=[suite, e3]), [], [e3]  # remembered before E5 was subscribed
    read = directory.subscribed_skus

    async def subscribed_skus(*, refresh: bool = True) -> list[SubscribedSku]:
        reads.append(refresh)
        return await read() if refresh else list(remembered)

    directory.subscribed_skus = subscribed_skus  # type: ignore[method-assign]
    e5_user = directory.add_user("ada@contoso.com", skus=["sku-e5"])
    e3_user = directory.add_user("bo@contoso.com", skus=["sku-e3"])

    async def update(template: templates.Template, user: object, **how: bool) -> service.UserUpdate:
        reads.clear()
        return await templates.update_for(template, directory, user, override=False, **how)  # type: ignore[arg-type]

    assert (await update(templates.DEFAULT, e5_user, remembered=True)).licenses is service.UNSET
    assert reads == [False, True]  # E5 is not among the SKUs remembered: read again
    remembered[:] = [suite, e3]
    assert (await update(templates.DEFAULT, e5_user, remembered=True)).licenses is service.UNSET and reads == [False]
    assert (await update(templates.DEFAULT, e3_user, remembered=True)).licenses == ["MCOEV"] and reads == [False]
    assert (await update(templates.DEFAULT, e5_user)).licenses is service.UNSET and reads == [True]
    named = templates.Template(7, "BE", "be", None, "BE", None, (), ("SPE_E3",))
    assert (await update(named, e5_user, remembered=True)).licenses == ["SPE_E3"] and reads == []


def test_resource_account_bodies_and_filters_are_read_in_fusion_names() -> None:
    from teamsvoice.api.fusion import resource_accounts as wire
    from teamsvoice.domain.teams_users import resource_accounts

    fields = wire.parse_body({"accountType": "call-queue", "vrp": "EU", "phoneNumber": None}, wire.MODIFY_NAMES)
    assert fields == {"account_type": "call-queue", "voice_routing_policy": "EU", "phone_number": None}
    assert set(wire.MODIFY_NAMES.values()) == set(resource_accounts.MODIFY_FIELDS)
    assert set(wire.CREATE_NAMES.values()) == set(resource_accounts.CREATE_FIELDS)
    with pytest.raises(ValidationFailed, match="^vrp: unknown field"):
        wire.parse_body({"vrp": "EU"}, wire.CREATE_NAMES)  # a policy is set by a modify only
    with pytest.raises(ValidationFailed, match="^body: must be a JSON object"):
        wire.parse_body(["x"], wire.CREATE_NAMES)
    with pytest.raises(ValidationFailed, match="^accountType: must be call-queue or auto-attendant"):
        resource_accounts._account_type("queue", wire.LABELS["account_type"])
    with pytest.raises(ValidationFailed, match=r"^phoneNumber: a resource account cannot take a number with an extension"):
        resource_accounts._number("+3222000000;ext=12", wire.LABELS["phone_number"])

    assert wire.parse_filters(None) == resource_accounts.AccountFilters()
    assert wire.parse_filters('[{"country": "be"}, {"have_number": "no"}]') == resource_accounts.AccountFilters(
        frozenset({"BE"}), False, None)
    assert wire.parse_filters('{"have_number": "yes", "type": "auto-attendant"}').have_number is True
    for bad, message in (("{", "filters: must be a JSON object"), ('{"kind": 1}', "filters: an object with"),
                         ('{"have_number": "maybe"}', "filters.have_number"), ('{"type": "x"}', "filters.type")):
        with pytest.raises(ValidationFailed, match=f"^{message}"):
            wire.parse_filters(bad)


def test_a_users_number_with_an_extension_is_refused_not_cut() -> None:
    """A probe's user number "+14139301602;ext=12" (and "ext. 5", "x5") was stored and assigned as +14139301602,
    without a word, in both families. The inventory holds whole numbers: refused, naming the field."""
    from teamsvoice.domain.fusion import numbers
    from teamsvoice.domain.provisioning.service import normalise_phone_number

    for raw in ("+14139301602;ext=12", "+14139301603 ext. 5", "+14139301603x5"):
        with pytest.raises(ValidationFailed, match=r"^phoneNumber: .* has an extension .* give the number alone"):
            numbers.parse_full_number(raw, "phoneNumber")
        with pytest.raises(ValidationFailed, match=r"^phoneNumber: .* has an extension"):
            normalise_phone_number(raw)
    assert numbers.parse_full_number("+14139301602", "phoneNumber") == "+14139301602"


def test_csv_rows_are_named_by_the_line_an_editor_shows() -> None:
    """A probe's CSV with blank lines and a cell of two lines got its errors on the wrong lines ("line 4" for a row
    on line 8); `UPN` was refused as a column; a file separated by semicolons was told only that the first line
    must name the columns."""
    from teamsvoice.domain.teams_users.bulk_csv import parse_csv

    text = "UPN,Number\n\na@contoso.example,+3222\n\n\"b@contoso.example\",\"+32\n22\"\nc@contoso.example,\n"
    assert [(row["upn"], line) for row, _extra, line in parse_csv(text)] == [
        ("a@contoso.example", 3), ("b@contoso.example", 5), ("c@contoso.example", 7)]
    with pytest.raises(ValidationFailed, match="separated by ';'"):
        parse_csv("upn;number;vrp\nalice@contoso.example;+3222000000;EU\n")
    with pytest.raises(ValidationFailed, match="^CSV: line 3: unexpected end of data"):
        parse_csv('upn,number\nalice@contoso.example,\n"bob@contoso.example,,\n')
