"""SBC adapters (the SIP server side of the PBX connector). `sbc_from_settings` answers None when no SBC
is attached: then the product works as before and says so."""

from teamsvoice.settings import Settings


def sbc_configured(settings: Settings) -> bool:
    return bool(settings.sbc_kamailio_db_url and settings.sbc_kamailio_rpc_url)


def sbc_from_settings(settings: Settings):  # type: ignore[no-untyped-def]  (KamailioSbc | None; imported lazily)
    if not sbc_configured(settings):
        return None
    from teamsvoice.sbc.kamailio import KamailioSbc

    return KamailioSbc.for_settings(settings)
