"""What every route needs: settings, the document store and the token signing key."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from .faults import Faults
from .identity.keys import SigningKey
from .settings import EmulatorSettings
from .store import Store


@dataclass
class Emulator:
    settings: EmulatorSettings
    store: Store
    keys: SigningKey
    faults: Faults

    def issuer(self, tenant_id: str) -> str:
        return f"{self.settings.base_url}/{tenant_id}/v2.0"


async def get_emulator(request: Request) -> Emulator:
    """Async, as the other dependencies that do not wait: FastAPI runs a plain `def` dependency in its thread
    pool, a thread hop per request for a lookup."""
    return request.app.state.emulator


EmulatorDep = Annotated[Emulator, Depends(get_emulator)]
