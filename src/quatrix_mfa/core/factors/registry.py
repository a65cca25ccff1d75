"""The one place core looks factors up: by name, by login step, by the
contract's ``auth_type``. Auth, profile, admin and policy ask here instead of
branching on TOTP, PIN or recovery codes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from quatrix_mfa.core.factors import SecondFactor, UnknownFactor
from quatrix_mfa.core.model import Step


class FactorRegistry:
    """Registered factors in order of precedence: where two answer one step (a
    recovery code stands in for a TOTP code), the first that accepts a code
    checks it, and the last of them is the step's own."""

    def __init__(self, factors: Sequence[SecondFactor[Any]]) -> None:
        self._factors = tuple(factors)
        self._by_name = {factor.name: factor for factor in self._factors}

    def __iter__(self) -> Iterator[SecondFactor[Any]]:
        return iter(self._factors)

    def __getitem__(self, name: str) -> SecondFactor[Any]:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownFactor(name) from None

    def for_step(self, step: Step, code: str) -> SecondFactor[Any]:
        """The factor that checks ``code`` at ``step``."""
        candidates = [f for f in self._factors if f.step is step]
        if not candidates:
            raise UnknownFactor(step)
        for factor in candidates:
            if factor.accepts(code):
                return factor
        return candidates[-1]

    def for_auth_type(self, auth_type: str) -> SecondFactor[Any]:
        """The factor an ``auth_type`` names ("2FA": TOTP, "PIN": the PIN)."""
        owners = [f for f in self._factors if f.auth_type == auth_type]
        if not owners:
            raise UnknownFactor(auth_type)
        return owners[-1]

    def auth_type_of(self, step: Step) -> str:
        """The ``auth_type`` a client sends to answer ``step``."""
        for factor in self._factors:
            if factor.step is step:
                return factor.auth_type
        raise UnknownFactor(step)
