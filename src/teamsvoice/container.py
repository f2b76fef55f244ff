"""The long-lived objects one process shares: settings, database, keys, the Microsoft connector."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from teamsvoice.core.credential_cache import CredentialCache
from teamsvoice.core.db import create_engine, session_factory
from teamsvoice.core.security import Keyring, load_or_create_master_key
from teamsvoice.microsoft.connector import MicrosoftConnector
from teamsvoice.settings import Settings


@dataclass
class Container:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    keyring: Keyring
    connector: MicrosoftConnector
    credentials: CredentialCache[Any]  # bearer tokens verified by this process (api/deps.cached_caller)

    @classmethod
    def build(cls, settings: Settings) -> "Container":
        engine = create_engine(settings.effective_database_url, pool_size=settings.database_pool_size)
        return cls(
            settings=settings, engine=engine, sessions=session_factory(engine),
            keyring=Keyring(load_or_create_master_key(settings.secret_key, settings.data_dir)),
            connector=MicrosoftConnector(settings), credentials=CredentialCache(settings.credential_cache_seconds),
        )

    async def aclose(self) -> None:
        await self.connector.aclose()
        await self.engine.dispose()
