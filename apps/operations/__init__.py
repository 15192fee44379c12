"""Running the platform: health and readiness probes and the platform's own periodic and probe tasks.

The operator's console (docs/operations.md) builds on this package; `apps.core` stays free of the
rest of the project, so what needs accounts, storage or tenancy to answer lives here.
"""
