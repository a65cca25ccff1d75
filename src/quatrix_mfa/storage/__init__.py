"""SQLAlchemy 2 implementation of the core repository protocols, with Alembic migrations."""
