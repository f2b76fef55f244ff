"""The licence and domain rules of Teams voice, in one place.

Licences: a user can be voice-enabled when the tenant has a subscribed, enabled SKU carrying the Teams Phone
(`MCOEV`) service plan, either the Teams Phone Standard SKU itself or a suite containing the plan (E5, ...).
Resource accounts use Teams Phone Resource Account (`PHONESYSTEM_VIRTUALUSER`, plan `MCOEV_VIRTUALUSER`):
those seats are counted separately and never make a tenant ready for users.

A number is given to a user only when it holds Teams Phone (`require_teams_phone`): Microsoft refuses the
assignment otherwise ("User '...' lacks appropriate licenses to assign a 'DirectRouting' number"), so
teamsvoice says so before it records or changes anything.

Domains: a user or resource account is created only under a domain verified in the tenant
(`require_verified_domain`; the initial `*.onmicrosoft.com` one counts). Teams accepts a PSTN gateway only
under a domain verified in the tenant, and never under the initial `*.onmicrosoft.com` one. The SBC names live
under the tenant's default verified custom domain, or its first verified custom domain when the default is the
initial one.

Voice routing policies: a policy is granted by name through Graph (`policy/getPolicyId(...,name='<name>')`), and
Microsoft reads a '/' in that name as a path separator even when sent as %2F (Graph answers 400 "Resource not
found for the segment"): a name with '/' is refused up front, naming the field (`check_policy_name`).
"""

from collections.abc import Iterable, Mapping

from teamsvoice.core.errors import ValidationFailed
from teamsvoice.microsoft.directory_ports import SubscribedSku, TenantDomain

USER_PHONE_PLAN = "MCOEV"
RESOURCE_ACCOUNT_PLAN = "MCOEV_VIRTUALUSER"
RESOURCE_ACCOUNT_SKU = "PHONESYSTEM_VIRTUALUSER"
# A user holding any of these is voice capable (a resource account holds the second one).
VOICE_PLANS = frozenset({USER_PHONE_PLAN, RESOURCE_ACCOUNT_PLAN, RESOURCE_ACCOUNT_SKU})

# Stable error codes of these rules (Fusion numbers them in api/fusion/error_codes.py).
NO_TEAMS_PHONE = "no_teams_phone_licence"


def _enabled(sku: SubscribedSku) -> bool:
    return sku.capability_status == "Enabled"


def teams_phone_skus(skus: Iterable[SubscribedSku]) -> list[SubscribedSku]:
    """The tenant's active SKUs that give users Teams Phone (seat counts aside: see `prepaid`, `available`)."""
    return [s for s in skus if _enabled(s)
            and (USER_PHONE_PLAN in s.service_plans or s.sku_part_number == USER_PHONE_PLAN)]


def resource_account_skus(skus: Iterable[SubscribedSku]) -> list[SubscribedSku]:
    return [s for s in skus if _enabled(s) and s.sku_part_number == RESOURCE_ACCOUNT_SKU]


def gives_voice(plans_and_skus: Iterable[str]) -> bool:
    """Whether a user's licences (their service plan names and SKU part numbers) include Teams Phone."""
    return not VOICE_PLANS.isdisjoint(plans_and_skus)


def licence_plans(sku_ids: Iterable[str], skus: Mapping[str, SubscribedSku]) -> set[str]:
    """The service plan names and SKU part numbers of the licences `sku_ids` (`skus`: the tenant's SKUs by
    lower-case id; a licence the tenant no longer subscribes gives nothing)."""
    plans: set[str] = set()
    for sku_id in sku_ids:
        sku = skus.get(sku_id.lower())
        if sku is not None:
            plans.update(sku.service_plans)
            plans.add(sku.sku_part_number)
    return plans


def require_teams_phone(who: str, plans_and_skus: Iterable[str], *, hint: str = "assign it first") -> None:
    """A phone number goes only to a user licensed for Teams Phone (`gives_voice`: what the users' `check` and
    `voiceEnabled: yes` answer); a 400 naming the missing licence otherwise, before anything is changed."""
    if not gives_voice(plans_and_skus):
        raise ValidationFailed(
            f"{who} has no Teams Phone licence ({USER_PHONE_PLAN}: Teams Phone Standard, or a suite that includes it, "
            f"such as Microsoft 365 E5), and Microsoft gives a phone number only to a user licensed for Teams Phone: "
            f"{hint}", code=NO_TEAMS_PHONE)


def require_verified_domain(label: str, domain: str, domains: Iterable[TenantDomain]) -> None:
    """A user or resource account is created only under a domain verified in the tenant (Microsoft refuses the
    others: Graph's POST /users at once, New-CsOnlineApplicationInstance too)."""
    if domain.lower() not in {d.name.lower() for d in domains if d.is_verified}:
        raise ValidationFailed(f"{label}: {domain} is not a verified domain of the MS Teams tenant")


def custom_domains(domains: Iterable[TenantDomain]) -> list[TenantDomain]:
    """Verified domains other than the initial *.onmicrosoft.com one."""
    return [d for d in domains if d.is_verified and not d.is_initial and not d.name.lower().endswith(".onmicrosoft.com")]


def voice_domain(domains: Iterable[TenantDomain]) -> str | None:
    """The domain the tenant's PSTN gateway names live under, or None when the tenant has none."""
    custom = custom_domains(domains)
    chosen = next((d for d in custom if d.is_default), custom[0] if custom else None)
    return chosen.name if chosen else None


def check_policy_name(field: str, name: str | None) -> str | None:
    """`name` if a voice routing policy of that name can be granted to a user; else a 400 naming `field`. Every
    place that takes a policy name to grant (both API families, the console, a resource account, a restored
    voice state) asks this, before anything is recorded or sent to Microsoft."""
    if name is not None and "/" in name:
        raise ValidationFailed(f"{field}: '{name}' contains '/', which Microsoft Graph cannot take in a voice routing "
                               "policy's name (it reads it as a path separator): name the policy without '/'")
    return name


def same_policy_name(one: str | None, other: str | None) -> bool:
    """Whether two names give the same voice routing policy as Teams reads a name: in any case, "Tag:" or not
    (None: the global policy). A record holding "intl" matches Teams' "Intl": granting it again each sync would
    change nothing in Teams but report an update."""
    def key(name: str | None) -> str:
        return (name[4:] if name[:4].lower() == "tag:" else name).lower() if name else ""
    return key(one) == key(other)
