"""Domain logic: factors, sessions, policy, throttling and audit.

Plain Python over the repository protocols of :mod:`quatrix_mfa.core.ports`;
nothing here imports a web framework or an ORM (an import-linter contract
and a test enforce it).
"""
