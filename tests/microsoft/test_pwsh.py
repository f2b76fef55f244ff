"""The pwsh runner (cloud mode): the exact script and argv, values only on stdin, the missing-pwsh refusal,
and a round trip through a stand-in `pwsh` executable on PATH."""

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from teamsvoice.core.errors import UpstreamError, ValidationFailed
from teamsvoice.microsoft.connector import MicrosoftConnector
from teamsvoice.microsoft.pwsh import (
    ALLOWED_CMDLETS,
    PWSH_SCRIPT,
    RESULT_MARKER,
    PwshConfig,
    PwshRunner,
    PwshUnavailable,
    stdin_document,
)
from teamsvoice.settings import Settings

HOSTILE = '"; Remove-Item -Recurse / #'
TENANT = "7d1c8a7e-0000-4000-8000-000000000001"

# A stand-in for pwsh: records its argv, and answers with what it read on stdin (or an error on demand).
FAKE_PWSH = f"""#!{sys.executable}
import json, os, sys
document = json.loads(sys.stdin.read())
with open(os.environ["FAKE_PWSH_LOG"], "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "stdin": document}}) + "\\n")
print("WARNING: chatter on stdout before the result")
if document["parameters"].get("Fail"):
    print({RESULT_MARKER!r} + json.dumps({{"error": {{"errorId": "BadRequest", "category": "InvalidOperation",
          "message": "Telephone Number has already been assigned to another user"}}}}))
    sys.exit(1)
print({RESULT_MARKER!r} + json.dumps({{"output": [{{"cmdlet": document["cmdlet"], "parameters": document["parameters"]}}]}}))
"""


@pytest.fixture
def fake_pwsh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    executable = bin_dir / "pwsh"
    executable.write_text(FAKE_PWSH)
    executable.chmod(executable.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_PWSH_LOG", str(log))
    return log


@pytest.fixture
def certificate(tmp_path: Path) -> Path:
    path = tmp_path / "app.pfx"
    path.write_bytes(b"not really a certificate")
    return path


def test_script_and_argv_are_constants(fake_pwsh: Path, certificate: Path) -> None:
    config = PwshConfig.resolve(application_id="app-id", certificate_path=str(certificate), certificate_password="cert-secret-42")
    assert config.argv == [config.executable, "-NoProfile", "-NonInteractive", "-NoLogo", "-Command", PWSH_SCRIPT]
    assert "Import-Module MicrosoftTeams" in PWSH_SCRIPT
    assert "Connect-MicrosoftTeams -Certificate $certificate -ApplicationId" in PWSH_SCRIPT
    assert "$request = [Console]::In.ReadToEnd() | ConvertFrom-Json -AsHashtable" in PWSH_SCRIPT
    assert "if ($allowed -notcontains $cmdlet)" in PWSH_SCRIPT
    assert "$output = @(& $cmdlet @parameters)" in PWSH_SCRIPT
    for name in ALLOWED_CMDLETS:
        assert f"'{name}'" in PWSH_SCRIPT
    document = stdin_document(config, TENANT, "set-csphonenumberassignment",
                              {"Identity": HOSTILE, "PhoneNumber": "+3222222222", "-PhoneNumberType": "DirectRouting"})
    decoded = json.loads(document)
    assert decoded == {
        "cmdlet": "Set-CsPhoneNumberAssignment",
        "parameters": {"Identity": HOSTILE, "PhoneNumber": "+3222222222", "PhoneNumberType": "DirectRouting"},
        "connection": {"tenantId": TENANT, "applicationId": "app-id", "certificatePath": str(certificate),
                       "certificatePassword": "cert-secret-42", "certificateThumbprint": None},
    }
    for value in (HOSTILE, "Remove-Item", "+3222222222", TENANT, "app-id", "cert-secret-42"):
        assert value not in PWSH_SCRIPT
        assert all(value not in argument for argument in config.argv)


def test_refuses_cmdlets_and_names_outside_the_allow_list(fake_pwsh: Path, certificate: Path) -> None:
    config = PwshConfig.resolve(application_id="app-id", certificate_path=str(certificate))
    with pytest.raises(ValidationFailed, match="Remove-Item"):
        stdin_document(config, TENANT, "Remove-Item", {"Path": "/"})
    with pytest.raises(ValidationFailed, match="not a PowerShell parameter name"):
        stdin_document(config, TENANT, "Get-CsOnlineUser", {"Identity; rm": "x"})
    with pytest.raises(ValidationFailed, match="only JSON values"):
        stdin_document(config, TENANT, "Get-CsOnlineUser", {"Identity": object()})


def test_refuses_to_start_without_pwsh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, certificate: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PwshUnavailable, match=r"PowerShell 7 \('pwsh'\) was not found"):
        PwshConfig.resolve(application_id="app-id", certificate_path=str(certificate))
    settings = Settings(data_dir=tmp_path, microsoft_mode="cloud", microsoft_client_id="app-id",
                        microsoft_certificate_path=str(certificate))
    with pytest.raises(PwshUnavailable, match="TEAMSVOICE_MICROSOFT_MODE=emulator"):
        MicrosoftConnector(settings)


def test_refuses_to_start_without_a_certificate(fake_pwsh: Path, tmp_path: Path) -> None:
    with pytest.raises(PwshUnavailable, match="needs a certificate"):
        PwshConfig.resolve(application_id="app-id")
    with pytest.raises(PwshUnavailable, match="no such file"):
        PwshConfig.resolve(application_id="app-id", certificate_path=str(tmp_path / "missing.pfx"))


async def test_round_trip_through_a_pwsh_on_path(fake_pwsh: Path, certificate: Path, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, microsoft_mode="cloud", microsoft_client_id="app-id",
                        microsoft_certificate_path=str(certificate), microsoft_graph_url="https://graph.invalid/v1.0")
    connector = MicrosoftConnector(settings)
    try:
        connection = connector.connect(TENANT)
        assert isinstance(connection.cmdlets, PwshRunner)
        output = await connection.cmdlets.run("Set-CsPhoneNumberAssignment", {"Identity": HOSTILE, "PhoneNumber": "+3222222222",
                                                                              "PhoneNumberType": "DirectRouting"})
        assert output == [{"cmdlet": "Set-CsPhoneNumberAssignment",
                           "parameters": {"Identity": HOSTILE, "PhoneNumber": "+3222222222", "PhoneNumberType": "DirectRouting"}}]
        with pytest.raises(UpstreamError, match="already been assigned to another user") as refused:
            await connection.cmdlets.run("Set-CsPhoneNumberAssignment", {"Identity": "a@b.c", "Fail": True})
        assert refused.value.retryable is False and refused.value.upstream_code == "BadRequest"
    finally:
        await connector.aclose()
    calls = [json.loads(line) for line in fake_pwsh.read_text().splitlines()]
    assert len(calls) == 2  # a refusal that is not retryable is not repeated
    assert calls[0]["argv"] == ["-NoProfile", "-NonInteractive", "-NoLogo", "-Command", PWSH_SCRIPT]
    assert calls[0]["stdin"]["parameters"]["Identity"] == HOSTILE
    assert calls[0]["stdin"]["connection"]["tenantId"] == TENANT
