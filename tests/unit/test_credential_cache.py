"""core/credential_cache.py's rules, with a fake clock: an entry never outlives its token nor the TTL, TTL 0
keeps nothing, a change committed while a caller was being resolved leaves it unstored, and which statements
count as a change to a caller."""

from sqlalchemy import delete, insert, select, text, update

import teamsvoice.models  # noqa: F401  (every table of ours in Base.metadata)
from teamsvoice.core.credential_cache import CREDENTIAL_TABLES, HOLD_SECONDS, CredentialCache, changes_credentials
from teamsvoice.core.db import Base
from teamsvoice.domain.fusion.models import FusionSession, FusionTenant, FusionUser
from teamsvoice.domain.orgs.models import Enterprise, OAuthToken, PortalUser, Reseller


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_ends_with_its_token_or_the_ttl_whichever_is_first() -> None:
    clock = Clock()
    cache: CredentialCache[str] = CredentialCache(5, clock=clock)
    cache.put("ctt", "a", "caller-a", token_lifetime_seconds=2, generation=cache.generation())
    cache.put("ctt", "b", "caller-b", token_lifetime_seconds=3600, generation=cache.generation())
    cache.put("ctt", "c", "caller-c", token_lifetime_seconds=0, generation=cache.generation())  # expired already
    assert cache.get("ctt", "a") == "caller-a" and cache.get("ctt", "b") == "caller-b" and cache.get("ctt", "c") is None
    assert cache.get("fusion", "a") is None  # the families do not share entries
    clock.now += 2
    assert cache.get("ctt", "a") is None and cache.get("ctt", "b") == "caller-b"
    clock.now += 3
    assert cache.get("ctt", "b") is None


def test_ttl_zero_keeps_nothing() -> None:
    cache: CredentialCache[str] = CredentialCache(0, clock=Clock())
    cache.put("ctt", "a", "caller", token_lifetime_seconds=3600, generation=cache.generation())
    assert cache.get("ctt", "a") is None and not cache.enabled


def test_a_change_while_resolving_or_just_after_leaves_the_caller_unstored() -> None:
    clock = Clock()
    cache: CredentialCache[str] = CredentialCache(60, clock=clock)
    cache.put("ctt", "a", "caller", token_lifetime_seconds=3600, generation=cache.generation())
    before = cache.generation()
    cache.clear()  # a credential change committed while a request was reading the old rows
    assert cache.get("ctt", "a") is None
    cache.put("ctt", "a", "stale", token_lifetime_seconds=3600, generation=before)
    assert cache.get("ctt", "a") is None
    cache.put("ctt", "a", "read-around-the-commit", token_lifetime_seconds=3600, generation=cache.generation())
    assert cache.get("ctt", "a") is None  # within the hold after the change
    clock.now += HOLD_SECONDS
    cache.put("ctt", "a", "fresh", token_lifetime_seconds=3600, generation=cache.generation())
    assert cache.get("ctt", "a") == "fresh"


def test_which_statements_change_a_caller() -> None:
    assert CREDENTIAL_TABLES <= set(Base.metadata.tables)
    for model in (OAuthToken, PortalUser, FusionSession, FusionUser, FusionTenant, Reseller):
        assert changes_credentials(update(model).values(id=1)) and changes_credentials(delete(model))
    assert changes_credentials(insert(Reseller))  # a new node widens the scopes above it
    assert not changes_credentials(insert(OAuthToken)) and not changes_credentials(insert(FusionSession))
    assert not changes_credentials(select(OAuthToken)) and not changes_credentials(update(Enterprise).values(id=1))
    assert changes_credentials(text("DELETE FROM oauth_tokens")) and not changes_credentials(text("DELETE FROM enterprises"))
