"""A tenant's voice configuration and readiness, whichever API family asks.

- `rules`: what counts as a Teams Phone licence and which verified domain hosts the SBC names (one rule each).
- `configuration`: the Direct Routing objects a tenant should have (gateways, PSTN usages, voice routes, voice
  routing policies), compared with what Teams holds and converged through the `DirectRouting` port. Used by
  ConnecttoTeams' provisionDirectRouting, Fusion's onboarding wizard and the desired-state planner.
- `readiness`: the checks that say whether a tenant can be served (consents, domain, licences, Teams admin API).
"""
