"""Queries behind linking an MS Teams tenant to a subscription (`fusion/onboarding.py` holds the rules): the
subscription's MS Teams administrator and wizard runs, and what the wizard's synchronous job steps read and
write in their own sessions (`core.db.sync_transaction`)."""

from collections.abc import Collection

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from teamsvoice.domain.calling.models import CallingJob, PbxUser
from teamsvoice.domain.consent.models import EnterpriseConsent
from teamsvoice.domain.fusion.models import FusionMsTeamsAdmin, FusionSubscription, FusionWizardRun
from teamsvoice.domain.orgs.models import Enterprise, SbcGateway
from teamsvoice.domain.provisioning.models import TeamsVoiceUser
from teamsvoice.domain.teams_users.models import FusionBulkJob, FusionResourceAccount
from teamsvoice.domain.voice_state.models import VoiceApplyJob


def _admin(subscription_id: int):  # type: ignore[no-untyped-def]
    return select(FusionMsTeamsAdmin).where(FusionMsTeamsAdmin.subscription_id == subscription_id)


async def ms_teams_admin(session: AsyncSession, subscription_id: int) -> FusionMsTeamsAdmin | None:
    return await session.scalar(_admin(subscription_id))


async def delete_ms_teams_admin(session: AsyncSession, admin: FusionMsTeamsAdmin) -> None:
    await session.delete(admin)


async def latest_wizard_run(session: AsyncSession, subscription_id: int) -> FusionWizardRun | None:
    return await session.scalar(select(FusionWizardRun).where(FusionWizardRun.subscription_id == subscription_id)
                                .order_by(FusionWizardRun.id.desc()).limit(1))


async def latest_wizard_runs(session: AsyncSession, subscription_ids: Collection[int]) -> dict[int, FusionWizardRun]:
    """`latest_wizard_run` of each of the subscriptions that has a run (the one of the highest id), in one statement."""
    if not subscription_ids:
        return {}
    latest = (select(func.max(FusionWizardRun.id)).where(FusionWizardRun.subscription_id.in_(sorted(subscription_ids)))
              .group_by(FusionWizardRun.subscription_id))
    runs = await session.scalars(select(FusionWizardRun).where(FusionWizardRun.id.in_(latest)))
    return {run.subscription_id: run for run in runs}


async def enterprise_of_wizard_run(session: AsyncSession, run_key: str) -> int | None:
    """The enterprise of the subscription of the wizard run with that key (None: no such run, e.g. its subscription
    was deleted, and its runs with it)."""
    return await session.scalar(select(FusionSubscription.enterprise_id).join(
        FusionWizardRun, FusionWizardRun.subscription_id == FusionSubscription.id).where(FusionWizardRun.job_key == run_key))


async def unfinished_jobs(session: AsyncSession, subscription_id: int, enterprise_id: int) -> list[str]:
    """The subscription's jobs that have not ended (they may still write in its tenant and its records), named as
    the job catalogue names them (`teamsvoice jobs show/cancel REF`)."""
    found = [str(i) for i in await session.scalars(select(FusionBulkJob.id).where(
        FusionBulkJob.subscription_id == subscription_id, FusionBulkJob.status.in_(("queued", "running"))))]
    found += [f"resource-account:{i}" for i in await session.scalars(select(FusionResourceAccount.id).where(
        FusionResourceAccount.subscription_id == subscription_id,
        FusionResourceAccount.status.in_(("creating", "updating", "deleting"))))]
    found += [f"sync:{i}" for i in await session.scalars(select(CallingJob.id).where(
        CallingJob.enterprise_id == enterprise_id, CallingJob.status.in_(("QUEUED", "RUNNING"))))]
    found += [f"voice-apply:{i}" for i in await session.scalars(select(VoiceApplyJob.id).where(
        VoiceApplyJob.enterprise_id == enterprise_id, VoiceApplyJob.status.in_(("queued", "running"))))]
    found += [f"wizard:{i}" for i in await session.scalars(select(FusionWizardRun.id).where(
        FusionWizardRun.subscription_id == subscription_id, FusionWizardRun.running.is_(True)))]
    return found


async def forget_tenant_records(session: AsyncSession, enterprise_id: int, subscription_id: int) -> list[tuple[str, str]]:
    """The enterprise's Teams users' records (resource accounts' included), and its consents, go (the tenant is no
    longer linked); its PBX connector users stay, no longer tied to a Teams user. Answers the numbers those records
    held, each with its holder's user principal name."""
    held = [(number, upn) for number, upn in await session.execute(select(
        TeamsVoiceUser.phone_number, TeamsVoiceUser.user_principal_name).where(
        TeamsVoiceUser.enterprise_id == enterprise_id, TeamsVoiceUser.phone_number.is_not(None)))]
    await session.execute(update(PbxUser).where(PbxUser.enterprise_id == enterprise_id, PbxUser.voice_user_id.is_not(None))
                          .values(voice_user_id=None))
    await session.execute(delete(FusionResourceAccount).where(FusionResourceAccount.subscription_id == subscription_id))
    await session.execute(delete(TeamsVoiceUser).where(TeamsVoiceUser.enterprise_id == enterprise_id))
    await session.execute(delete(EnterpriseConsent).where(EnterpriseConsent.enterprise_id == enterprise_id))
    return held


# --- the wizard's job steps (synchronous sessions) -----------------------------------------------------


def ms_teams_admin_sync(session: Session, subscription_id: int) -> FusionMsTeamsAdmin | None:
    return session.scalar(_admin(subscription_id))


def first_sbc_gateway(session: Session, reseller_id: int) -> SbcGateway | None:
    """The reseller's SBC gateway added first."""
    return session.scalar(select(SbcGateway).where(SbcGateway.reseller_id == reseller_id).order_by(SbcGateway.id))


def tenant_linked_elsewhere(session: Session, enterprise_id: int, tenant_id: str) -> bool:
    """Whether another enterprise than `enterprise_id` is linked to the Microsoft tenant."""
    return session.scalar(select(Enterprise.id).where(Enterprise.tenant_id == tenant_id, Enterprise.id != enterprise_id)) is not None


def consent_of(session: Session, enterprise_id: int, consent_name: str) -> EnterpriseConsent | None:
    return session.scalar(select(EnterpriseConsent).where(EnterpriseConsent.enterprise_id == enterprise_id,
                                                          EnterpriseConsent.consent_name == consent_name))


def wizard_run_key(session: Session, run_id: int) -> str | None:
    """A wizard run's never-reused key (its workflow id is derived from it); None if there is no such run."""
    return session.scalar(select(FusionWizardRun.job_key).where(FusionWizardRun.id == run_id))


def running_wizard_run_ids(session: Session) -> list[int]:
    return list(session.scalars(select(FusionWizardRun.id).where(FusionWizardRun.running.is_(True))))
