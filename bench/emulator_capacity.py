"""How many requests per second the Microsoft 365 emulator alone serves on this machine, against
Microsoft's Teams budget (prints figures; not a test). See bench/README.md.

    .venv/bin/python bench/emulator_capacity.py [--seconds 8] [--concurrency 64] [--users 1000] [--load-processes 2]

Starts `teamsvoice emulator` as its own process with its limits off, seeds one tenant of N users with a
consented app, then for each kind of request (a Teams user configuration read, a directory user read with
$select, a Teams cmdlet) (and a `$batch` of 20 such reads, counted as 20 requests) keeps --concurrency requests in flight for --seconds over HTTPS keep-alive
connections, from --load-processes processes with a bare HTTP/1.1 client (so that the client is not what is
measured), and prints requests/second, the ratio to Microsoft's Teams budget (30/s per app per tenant,
300/s per app across tenants) and the emulator's CPU use.
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "emulator"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from emulator_support import ADMIN_PASSWORD, TEAMS_ADMIN_API, Browser, app_token, authorize_url, register_app, seed_tenant  # noqa: E402
from tests.support.postgres import free_port  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drive(url: str, ca: str, token: str, kind: str, ids: list[str], seconds: float, connections: int) -> int:
    """One load process: `connections` HTTPS keep-alive connections, each sending its next request as soon as the
    last one's answer is read, for `seconds`; answers how many were answered 200. Plain HTTP/1.1 over asyncio's TLS
    streams (no HTTP client library): a Python client (httpx, 140 requests/s per process) would be the bottleneck,
    and the figure is the emulator's."""
    import ssl

    host, port = url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=ca)

    def request() -> bytes:
        method, path, body = make_request(kind, ids)
        payload = json.dumps(body).encode() if body is not None else b""
        head = (f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n")
        return head.encode() + payload

    async def connection(deadline: float) -> int:
        reader, writer = await asyncio.open_connection(host, int(port), ssl=context)
        done = 0
        while time.monotonic() < deadline:
            writer.write(request())
            head = await reader.readuntil(b"\r\n\r\n")
            status = head[9:12]
            length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            answer = await reader.readexactly(length)
            if status != b"200":
                raise RuntimeError(f"{status.decode()}: {answer[:300]!r}")
            done += 1
        writer.close()
        return done

    async def all_connections() -> int:
        deadline = time.monotonic() + seconds
        return sum(await asyncio.gather(*(connection(deadline) for _ in range(connections))))

    return asyncio.run(all_connections())


BATCH_SIZE = 20  # requests in each $batch call (Graph's most)


def make_request(kind: str, ids: list[str]) -> tuple[str, str, dict | None]:
    user = random.choice(ids)
    if kind == "teams":
        return "GET", f"/v1.0/admin/teams/userConfigurations/{user}", None
    if kind == "directory":
        return "GET", f"/v1.0/users/{user}?$select=id,userPrincipalName,usageLocation", None
    if kind == "batch":  # a bulk job's Teams reads, BATCH_SIZE to a call
        return "POST", "/v1.0/$batch", {"requests": [
            {"id": str(i), "method": "GET", "url": f"/admin/teams/userConfigurations/{random.choice(ids)}"}
            for i in range(BATCH_SIZE)]}
    return "POST", "/_powershell/invoke", {"cmdlet": "Get-CsOnlineUser", "parameters": {"Identity": user}}


def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="teamsvoice-emulator-bench-") as tmp:
        port = free_port()
        env = {**os.environ, "M365_EMULATOR_LIMITS": "off"}
        process = subprocess.Popen([sys.executable, "-m", "teamsvoice", "emulator", "--port", str(port), "--data-dir", tmp],
                                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url, ca = f"https://127.0.0.1:{port}", str(Path(tmp) / "emulator-ca.pem")
        try:
            for _ in range(100):
                try:
                    httpx.get(f"{url}/_admin/faults", verify=ca, timeout=1)
                    break
                except (httpx.HTTPError, OSError):
                    time.sleep(0.1)
            with httpx.Client(base_url=url, verify=ca, timeout=120) as http:
                tenant = seed_tenant(http, "capacity.example", user_count=args.users)
                app = register_app(http, "bench")
                with httpx.Client(verify=ca, timeout=30) as client:
                    Browser(client).sign_in_and_consent(authorize_url(url, tenant.tenant_id, app, "openid Directory.ReadWrite.All"),
                                                         tenant.admin, ADMIN_PASSWORD)
                graph, teams = app_token(http, tenant, app), app_token(http, tenant, app, resource=TEAMS_ADMIN_API)
                ids = [u["id"] for u in http.get("/v1.0/users", params={"$select": "id", "$top": 999},
                                                  headers={"Authorization": f"Bearer {graph}"}).json()["value"]]
            kinds = {"Teams: GET admin/teams/userConfigurations/{id}": (graph, "teams"),
                     "Directory: GET users/{id}?$select=...": (graph, "directory"),
                     "Teams cmdlet: Get-CsOnlineUser": (teams, "cmdlet"),
                     f"Teams: $batch of {BATCH_SIZE} userConfigurations reads": (graph, "batch")}
            rows = []
            per_process = max(1, args.concurrency // args.load_processes)
            with multiprocessing.get_context("fork").Pool(args.load_processes) as pool:
                for name, (token, kind) in kinds.items():
                    cpu_before, started = cpu_seconds(process.pid), time.monotonic()
                    counts = pool.starmap(drive, [(url, ca, token, kind, ids, args.seconds, per_process)] * args.load_processes)
                    elapsed = time.monotonic() - started
                    # (a $batch counts its requests: Microsoft's budget charges each of them)
                    requests = sum(counts) * (BATCH_SIZE if kind == "batch" else 1)
                    rows.append((name, requests / elapsed, (cpu_seconds(process.pid) - cpu_before) / elapsed))
        finally:
            process.terminate()
            process.wait()
    print(f"Microsoft 365 emulator alone, {args.users}-user tenant, {args.concurrency} requests in flight from "
          f"{args.load_processes} load processes, {args.seconds:.0f} s each, {os.cpu_count()} CPUs")
    print(f"{'request':<50} {'req/s':>7} {'x Teams/tenant (30)':>20} {'x Teams/app (300)':>18} {'emulator CPU':>12}")
    for name, rate, cpu in rows:
        print(f"{name:<50} {rate:>7.0f} {rate / 30:>20.1f} {rate / 300:>18.2f} {cpu:>11.0%}")


if __name__ == "__main__":
    from harness import end_children_on_exit  # bench/harness.py: what this script starts ends with it

    end_children_on_exit()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--load-processes", type=int, default=2, help="processes sending the requests")
    main(parser.parse_args())
