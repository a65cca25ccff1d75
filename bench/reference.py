"""The idiomatic reference (issue 14): a session check as the FastAPI and
SQLAlchemy tutorials write one, served like quatrix-mfa.

``GET /api/1.0/profile`` takes ``X-Auth-Token`` through a security
dependency, gets a SQLAlchemy session from a ``yield`` dependency, reads the
one session row by its token's hash (SHA-256), joined with its user, through
the same driver (pysqlite), and answers a response model. Its database
(``REFERENCE_DB``) holds a session per seeded user (``bench.py`` writes it
from the same users as quatrix-mfa's). Nothing else: no expiry write, no
audit, no metrics, no log line; what quatrix-mfa does beyond this is its own
cost, which the ratio to this shows.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import APIKeyHeader
from pydantic import BaseModel
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

engine = create_engine(
    f"sqlite:///{os.environ.get('REFERENCE_DB', 'reference.db')}",
    connect_args={"check_same_thread": False},
)
SessionLocal = sessionmaker(engine)
app = FastAPI()
token_header = APIKeyHeader(name="X-Auth-Token", auto_error=False)

SCHEMA = (
    "CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL)",
    "CREATE TABLE sessions (token_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL"
    " REFERENCES users(id), expires_at REAL NOT NULL)",
)


class Profile(BaseModel):
    id: str
    name: str
    email: str


def get_db() -> Iterator[Session]:
    with SessionLocal() as db:
        yield db


def current_user(
    token: Annotated[str | None, Depends(token_header)],
    db: Annotated[Session, Depends(get_db)],
) -> Profile:
    if not token:
        raise HTTPException(401, "Not authenticated")
    hashed = hashlib.sha256(token.encode()).hexdigest()
    row = db.execute(
        text(
            "SELECT users.id, users.name, users.email FROM sessions"
            " JOIN users ON users.id = sessions.user_id"
            " WHERE sessions.token_hash = :hashed AND sessions.expires_at > strftime('%s')"
        ),
        {"hashed": hashed},
    ).first()
    if row is None:
        raise HTTPException(401, "Not authenticated")
    return Profile(id=row.id, name=row.name, email=row.email)


@app.get("/api/1.0/profile")
def profile(user: Annotated[Profile, Depends(current_user)]) -> Profile:
    return user
