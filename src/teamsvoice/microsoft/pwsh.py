"""Teams PowerShell for the Microsoft cloud: each cmdlet runs in `pwsh` with the MicrosoftTeams module,
connected with certificate app auth (Connect-MicrosoftTeams -Certificate / -CertificateThumbprint
-ApplicationId -TenantId).

No value is ever put into script text or onto the command line. The script (PWSH_SCRIPT) and the argv
(`pwsh -NoProfile -NonInteractive -NoLogo -Command <PWSH_SCRIPT>`) are constants; everything variable —
the cmdlet name, its parameters, the tenant, app and certificate — travels as one JSON document on stdin.
The script checks the cmdlet against the allow-list, splats the parameters (`& $cmdlet @parameters`:
PowerShell binds them as values, it never parses them as code) and prints the output as JSON after a
marker line. (`-Command -` would make stdin the script itself, so the data could not travel there.)

Same interface as CmdletEndpointRunner: `await runner.run(cmdlet, parameters)` -> list of objects.
Selected with TEAMSVOICE_MICROSOFT_MODE=cloud; the emulator's cmdlet endpoint otherwise.
"""

import asyncio
import json
import os
import re
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from teamsvoice.core.errors import UpstreamError, ValidationFailed
from teamsvoice.microsoft.cmdlets import is_idempotent
from teamsvoice.core.metrics import record_microsoft_request
from teamsvoice.microsoft.budget import BudgetScheduler
from teamsvoice.microsoft.graph import RetryPolicy, gave_up, wait_before_retry

if TYPE_CHECKING:
    from teamsvoice.settings import Settings

# What teamsvoice runs in customer tenants. Anything else is refused before pwsh starts, and again by the script.
ALLOWED_CMDLETS = (
    "Get-CsOnlineUser", "Get-CsTenant",
    "Get-CsPhoneNumberAssignment", "Set-CsPhoneNumberAssignment", "Remove-CsPhoneNumberAssignment",
    "Get-CsOnlineVoiceRoutingPolicy", "New-CsOnlineVoiceRoutingPolicy", "Set-CsOnlineVoiceRoutingPolicy",
    "Remove-CsOnlineVoiceRoutingPolicy", "Grant-CsOnlineVoiceRoutingPolicy",
    "Get-CsOnlinePSTNGateway", "New-CsOnlinePSTNGateway", "Set-CsOnlinePSTNGateway", "Remove-CsOnlinePSTNGateway",
    "Get-CsOnlinePstnUsage", "Set-CsOnlinePstnUsage",
    "Get-CsOnlineVoiceRoute", "New-CsOnlineVoiceRoute", "Set-CsOnlineVoiceRoute", "Remove-CsOnlineVoiceRoute",
    "Get-CsTenantDialPlan", "Grant-CsTenantDialPlan", "Grant-CsCallingLineIdentity", "Grant-CsTeamsCallingPolicy",
    "Get-CsOnlineApplicationInstance", "New-CsOnlineApplicationInstance", "Set-CsOnlineApplicationInstance",
    "Sync-CsOnlineApplicationInstance",
    "Get-CsAutoAttendant", "Get-CsCallQueue",
)
RESULT_MARKER = "@@TEAMSVOICE-RESULT@@"
_PARAMETER_NAME = re.compile(r"^-?[A-Za-z][A-Za-z0-9]*$")
_RETRYABLE_HINTS = ("throttl", "toomanyrequests", "429", "serviceunavailable", "timed out", "timeout", "temporarily")

PWSH_SCRIPT = (
    """$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$marker = '""" + RESULT_MARKER + """'
$allowed = @(""" + ", ".join(f"'{name}'" for name in ALLOWED_CMDLETS) + """)
function Write-Result($document) {
    [Console]::Out.WriteLine($marker + (ConvertTo-Json -InputObject $document -Depth 8 -Compress))
}
try {
    $request = [Console]::In.ReadToEnd() | ConvertFrom-Json -AsHashtable
    $cmdlet = [string]$request['cmdlet']
    if ($allowed -notcontains $cmdlet) {
        Write-Result @{ error = @{ errorId = 'CmdletNotAllowed'; category = 'PermissionDenied'; message = "The cmdlet '$cmdlet' is not allowed." } }
        exit 2
    }
    $parameters = $request['parameters']
    if ($null -eq $parameters) { $parameters = @{} }
    $connection = $request['connection']
    Import-Module MicrosoftTeams -ErrorAction Stop
    if ($connection['certificatePath']) {
        $certificate = [System.Security.Cryptography.X509Certificates.X509Certificate2]::new(
            [string]$connection['certificatePath'], [string]$connection['certificatePassword'])
        Connect-MicrosoftTeams -Certificate $certificate -ApplicationId $connection['applicationId'] -TenantId $connection['tenantId'] | Out-Null
    } else {
        Connect-MicrosoftTeams -CertificateThumbprint $connection['certificateThumbprint'] -ApplicationId $connection['applicationId'] -TenantId $connection['tenantId'] | Out-Null
    }
    $output = @(& $cmdlet @parameters)
    Write-Result @{ output = $output }
    exit 0
} catch {
    Write-Result @{ error = @{ errorId = [string]$_.FullyQualifiedErrorId; category = [string]$_.CategoryInfo.Category; message = [string]$_.Exception.Message } }
    exit 1
}
"""
)


class PwshUnavailable(UpstreamError):
    """Cloud mode without a usable PowerShell 7 (or without the certificate settings it needs)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


@dataclass(frozen=True)
class PwshConfig:
    executable: str  # resolved path of pwsh
    application_id: str
    certificate_path: str | None = None
    certificate_password: str | None = None
    certificate_thumbprint: str | None = None
    timeout: float = 300.0

    @classmethod
    def resolve(
        cls, *, pwsh: str = "pwsh", application_id: str, certificate_path: str | None = None,
        certificate_password: str | None = None, certificate_thumbprint: str | None = None, timeout: float = 300.0,
    ) -> "PwshConfig":
        """Checks what cloud mode needs; raises PwshUnavailable naming what is missing."""
        executable = shutil.which(pwsh)
        if executable is None:
            raise PwshUnavailable(
                f"PowerShell 7 ('{pwsh}') was not found on PATH: cloud mode runs Teams cmdlets with pwsh and the "
                "MicrosoftTeams module. Install them, set TEAMSVOICE_MICROSOFT_PWSH_PATH, or use "
                "TEAMSVOICE_MICROSOFT_MODE=emulator."
            )
        if not application_id:
            raise PwshUnavailable("TEAMSVOICE_MICROSOFT_CLIENT_ID is required for Teams PowerShell app auth")
        if not certificate_path and not certificate_thumbprint:
            raise PwshUnavailable(
                "Teams PowerShell app auth needs a certificate: set TEAMSVOICE_MICROSOFT_CERTIFICATE_PATH "
                "(with _PASSWORD if it has one) or TEAMSVOICE_MICROSOFT_CERTIFICATE_THUMBPRINT"
            )
        if certificate_path and not os.path.isfile(certificate_path):
            raise PwshUnavailable(f"TEAMSVOICE_MICROSOFT_CERTIFICATE_PATH: no such file: {certificate_path}")
        return cls(executable, application_id, certificate_path, certificate_password, certificate_thumbprint, timeout)

    @classmethod
    def of_settings(cls, settings: "Settings") -> "PwshConfig":
        """`resolve` with the TEAMSVOICE_MICROSOFT_* settings, as the connector resolves them in cloud mode (a start
        checks them before it creates anything: `runner.check_microsoft`)."""
        return cls.resolve(
            pwsh=settings.microsoft_pwsh_path, application_id=settings.microsoft_client_id,
            certificate_path=settings.microsoft_certificate_path,
            certificate_password=settings.microsoft_certificate_password,
            certificate_thumbprint=settings.microsoft_certificate_thumbprint,
            timeout=settings.microsoft_cmdlet_timeout_seconds,
        )

    @property
    def argv(self) -> list[str]:
        return [self.executable, "-NoProfile", "-NonInteractive", "-NoLogo", "-Command", PWSH_SCRIPT]


def canonical_cmdlet(cmdlet: str) -> str:
    for name in ALLOWED_CMDLETS:
        if name.lower() == cmdlet.lower():
            return name
    raise ValidationFailed(f"cmdlet: '{cmdlet}' is not a Teams cmdlet teamsvoice may run")


def stdin_document(config: PwshConfig, tenant_id: str, cmdlet: str, parameters: dict[str, Any]) -> bytes:
    """The only input of the script: the cmdlet, its parameters (as data) and the connection."""
    for name in parameters:
        if not isinstance(name, str) or not _PARAMETER_NAME.match(name):
            raise ValidationFailed(f"parameters: '{name}' is not a PowerShell parameter name")
    document = {
        "cmdlet": canonical_cmdlet(cmdlet),
        "parameters": {name.lstrip("-"): value for name, value in parameters.items()},
        "connection": {
            "tenantId": tenant_id, "applicationId": config.application_id,
            "certificatePath": config.certificate_path, "certificatePassword": config.certificate_password,
            "certificateThumbprint": config.certificate_thumbprint,
        },
    }
    try:
        return json.dumps(document).encode()
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(f"parameters: only JSON values can be passed to {cmdlet} ({exc})") from exc


def parse_result(cmdlet: str, returncode: int, stdout: bytes, stderr: bytes) -> list[dict[str, Any]]:
    result = None
    for line in reversed(stdout.decode(errors="replace").splitlines()):
        if line.startswith(RESULT_MARKER):
            try:
                result = json.loads(line[len(RESULT_MARKER):])
            except ValueError:
                result = None
            break
    if not isinstance(result, dict):
        detail = stderr.decode(errors="replace").strip()[-500:] or f"exit code {returncode}, no result"
        raise UpstreamError(f"{cmdlet} failed: pwsh gave no result ({detail})", retryable=False)
    if "error" in result:
        error = result["error"] or {}
        message = str(error.get("message") or "unknown error")
        code = str(error.get("errorId") or "")
        retryable = any(hint in f"{code} {message}".lower() for hint in _RETRYABLE_HINTS)
        raise UpstreamError(f"{cmdlet} failed: {message}", retryable=retryable, upstream_code=code or None)
    output = result.get("output")
    if output is None:
        return []
    return [item if isinstance(item, dict) else {"value": item} for item in (output if isinstance(output, list) else [output])]


def _failure_status(error: UpstreamError) -> int | None:
    """The HTTP status a retryable pwsh failure stands for (for the wait metrics): 429 when Microsoft
    throttled, None when it did not answer in time, else 503."""
    text = f"{error.upstream_code or ''} {error.message}".lower()
    if any(hint in text for hint in ("throttl", "toomanyrequests", "429")):
        return 429
    return None if "timed out" in text or "timeout" in text else 503


class PwshRunner:
    def __init__(
        self, config: PwshConfig, tenant_id: str, *, retry: RetryPolicy | None = None,
        budget: BudgetScheduler | None = None,
    ) -> None:
        self.config = config
        self.tenant_id = tenant_id
        self.retry = retry or RetryPolicy()
        self.budget = budget

    async def _invoke(self, cmdlet: str, document: bytes) -> list[dict[str, Any]]:
        process = await asyncio.create_subprocess_exec(
            *self.config.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(document), self.config.timeout)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()
            record_microsoft_request("pwsh", self.tenant_id, "timeout")
            raise UpstreamError(f"{cmdlet} timed out after {self.config.timeout:g} s", retryable=True) from None
        try:
            output = parse_result(cmdlet, process.returncode or 0, stdout, stderr)
        except UpstreamError:
            record_microsoft_request("pwsh", self.tenant_id, "error")
            raise
        record_microsoft_request("pwsh", self.tenant_id, "ok")
        return output

    async def run(
        self, cmdlet: str, parameters: dict[str, Any], *, idempotent: bool | None = None
    ) -> list[dict[str, Any]]:
        document = stdin_document(self.config, self.tenant_id, cmdlet, parameters)
        repeatable = is_idempotent(cmdlet) if idempotent is None else idempotent
        waited, attempt = 0.0, 0
        while True:
            attempt += 1
            try:
                if self.budget is None:
                    return await self._invoke(cmdlet, document)
                async with self.budget.request(self.tenant_id, self.budget.teams_charge(self.tenant_id)) as ticket:
                    try:
                        output = await self._invoke(cmdlet, document)
                    except UpstreamError as exc:
                        ticket.answered(_failure_status(exc) if exc.retryable else 400)
                        raise
                    ticket.answered(200)
                    return output
            except UpstreamError as exc:
                if not (exc.retryable and repeatable):
                    raise
                delay = self.retry.delay(None, attempt - 1)
                if attempt >= self.retry.max_attempts or waited + delay > self.retry.max_total_wait:
                    raise gave_up(attempt, exc) from exc
                await wait_before_retry("pwsh", _failure_status(exc), delay)
                waited += delay
