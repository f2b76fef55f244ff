"""A subscription's Fusion licences (vendor-notes 2.9): `msTeamsUsers` is an enforced quota, `sipTrunkChannels`
is enforced by call admission control at runtime (recorded here, nothing counts it).

The quota: a subscription cannot have more voice-enabled MS Teams users (users holding a number; resource
accounts are not users) than `msTeamsUsers.assigned`. `assigned` 0 means no limit is set: that is
what every subscription created without `licenses` has, so existing subscriptions keep working unchanged, and it
is ConnecttoTeams' `userLimit` convention on the enterprise backing the subscription (kept equal: PUT .../licenses
sets both, and so does editEnterprise's `userLimit`, `keep_user_limit_equal`, under the same rule).
`check_user_quota` is the one place the rule lives: every write that gives a user of an enterprise its first
number calls it after flushing that change (single updates, bulk items, ConnecttoTeams' updateUserDetails and
configureUser / configureValetUser, and voice state's adopt and restore, once for all the users they voice-enable).
"""

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.errors import ValidationFailed
from teamsvoice.domain.fusion import repository_licences as repository
from teamsvoice.domain.fusion.models import FusionSubscription
from teamsvoice.domain.fusion.scope import SubscriptionAccess

QUOTA_EXCEEDED = "licence_quota_exceeded"
BELOW_IN_USE = "licences_below_in_use"
MAX_LICENCES = 1_000_000


def check_count(value: object, field: str) -> int:
    """The one rule of a licence count, wherever one is set (a subscription's creation, PUT .../licenses, the
    console's new customer, ConnecttoTeams' userLimit of an enterprise, kept equal to msTeamsUsers): a whole
    number from 0 (no limit) to MAX_LICENCES, or 400 naming `field` and the rule."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_LICENCES:
        raise ValidationFailed(f"{field}: must be an integer from 0 (no limit) to {MAX_LICENCES}")
    return value


async def users_in_use(session: AsyncSession, enterprise_id: int) -> int:
    """Users holding a number; resource accounts (call queues, auto attendants) hold numbers but no user licence."""
    return await repository.users_holding_numbers(session, enterprise_id)


@dataclass(frozen=True)
class Licences:
    """A subscription's licences: MS Teams users assigned (0: no limit) and holding a number, SIP trunk channels
    assigned."""

    users_assigned: int
    users_in_use: int
    channels_assigned: int


async def licences(session: AsyncSession, access: SubscriptionAccess) -> Licences:
    subscription = access.subscription
    return Licences(subscription.ms_teams_users, await users_in_use(session, access.enterprise.id),
                    subscription.sip_trunk_channels)


async def update_licences(session: AsyncSession, access: SubscriptionAccess, *, users: int | None,
                          channels: int | None) -> Licences:
    """Sets the counts given (each from 0, no limit, to MAX_LICENCES). The MS Teams users quota cannot go below
    the users voice-enabled now (free their numbers first)."""
    if users is not None:
        check_count(users, "msTeamsUsers.assigned")
    if channels is not None:
        check_count(channels, "sipTrunkChannels.assigned")
    subscription = await _locked(session, access.subscription.id)
    if users is not None:
        await _set_users(session, subscription, access.enterprise.id, users, "msTeamsUsers.assigned")
        access.enterprise.user_limit = users
    if channels is not None:
        subscription.sip_trunk_channels = channels
    await session.flush()
    return await licences(session, access)


async def keep_user_limit_equal(session: AsyncSession, enterprise_id: int, user_limit: int) -> None:
    """ConnecttoTeams' `userLimit` of an enterprise set by editEnterprise: for one backing a Fusion subscription it
    is the subscription's `msTeamsUsers.assigned`, set under the same rule as `update_licences` (the row locked,
    not below the users voice-enabled now: 400 naming userLimit), so both families enforce one figure. The caller
    sets the enterprise's own `user_limit`. Nothing to do for a ConnecttoTeams-only enterprise."""
    found = await repository.user_limit_of_enterprise(session, enterprise_id)
    if found is None:
        return
    await _set_users(session, await _locked(session, found[0]), enterprise_id, user_limit, "userLimit")


async def _set_users(session: AsyncSession, subscription: FusionSubscription, enterprise_id: int, users: int,
                     field: str) -> None:
    """The MS Teams users quota of the (locked) subscription, refused below the users voice-enabled now."""
    in_use = await users_in_use(session, enterprise_id)
    if users and users < in_use:
        raise ValidationFailed(f"{field}: {users} is below the {in_use} MS Teams users voice-enabled now; remove "
                               "numbers from users first", code=BELOW_IN_USE)
    subscription.ms_teams_users = users


async def _locked(session: AsyncSession, subscription_id: int) -> FusionSubscription:
    """The subscription row, locked until commit (PostgreSQL; SQLite serialises writers itself), so that two
    writers cannot both take the last licence."""
    return await repository.locked_subscription(session, subscription_id)


async def check_user_quota(session: AsyncSession, enterprise_id: int, *, known: tuple[int, int] | None = None) -> None:
    """Raises when the enterprise's Fusion subscription now has more voice-enabled users than its licences.
    Call it after flushing the change that gives a user its number, inside the same transaction. `known`: the
    subscription's (id, MS Teams users assigned) as the caller read it, perhaps seconds ago (a bulk job's items
    share one read): without a limit it saves reading them here (the limit is read again under the row's share
    lock, which also finds a subscription deleted since); with one, they are read afresh as without `known`."""
    found = (known if known is not None and not known[1]
             else await repository.user_limit_of_enterprise(session, enterprise_id))
    if found is None:
        return  # a ConnecttoTeams-only enterprise: its userLimit rules apply elsewhere
    subscription_id, users_assigned = found
    # Without a limit (0) the row is only share-locked (PostgreSQL's FOR KEY SHARE: a licence change waits for
    # this commit, other users' changes do not), so the items of a bulk job do not queue on one row lock while
    # holding pooled connections; with a limit, writers take it exclusively and count in turn.
    if not users_assigned and not await repository.user_limit_key_shared(session, subscription_id):
        return
    subscription = await _locked(session, subscription_id)
    if not subscription.ms_teams_users:
        return
    in_use = await users_in_use(session, enterprise_id)
    if in_use > subscription.ms_teams_users:
        raise ValidationFailed(
            f"msTeamsUsers licence exceeded: subscription {subscription.id} has {subscription.ms_teams_users} MS Teams "
            f"user licence(s), all in use; raise licenses.msTeamsUsers.assigned or free a user's number first",
            code=QUOTA_EXCEEDED)
