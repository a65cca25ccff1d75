"""quatrix-mfa: the Quatrix API 1.0 login, session and MFA service."""

__version__ = "0.1.0"
