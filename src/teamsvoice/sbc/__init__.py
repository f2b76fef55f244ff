"""SBC adapters (the SIP server side of the PBX connector). `sbc_from_settings` answers None when no SBC
is attached: then the product works as before and says so."""

from typing import TYPE_CHECKING

from teamsvoice.settings import Settings

if TYPE_CHECKING:
    from teamsvoice.sbc.kamailio import KamailioSbc


def sbc_configured(settings: Settings) -> bool:
    return bool(settings.sbc_kamailio_db_url and settings.sbc_kamailio_rpc_url)


def sbc_from_settings(settings: Settings) -> "KamailioSbc | None":
    if not sbc_configured(settings):
        return None
    from teamsvoice.sbc.kamailio import KamailioSbc  # httpx and SQLAlchemy Core only when an SBC is attached

    return KamailioSbc.for_settings(settings)
