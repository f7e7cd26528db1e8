"""Alembic migrations for the data-centre store (run by ``datacenter.store.engine.upgrade``)."""
