"""Request and response bodies, named and shaped as the upstream spec's definitions.

Unknown request fields are ignored (the spec's clients may send more than we
read); types are strict (no "yes" for a boolean, no "5" or NaN for a number);
every string refuses control characters, lone surrogates, bidi controls and
invisible zero-width characters (joiners, used by emoji, are fine).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from quatrix_mfa.core.text import is_control

MAX_TEXT = 255


# Bidi controls (Trojan Source: text that shows in another order than it is)
# and invisible characters that make look-alike names and emails. Not ZWNJ and
# ZWJ (U+200C, U+200D): scripts and emoji sequences need them.
_INVISIBLE = frozenset(
    "\u061c\u180e\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff"
)


def _clean(value: str, allowed: str = "") -> str:
    for char in value:
        if (is_control(char) or 0xD800 <= ord(char) <= 0xDFFF) and char not in allowed:
            raise ValueError("contains a control character or an unpaired surrogate")
        if char in _INVISIBLE:
            raise ValueError("contains a bidi control or an invisible character")
    return value


def _clean_lines(value: str) -> str:
    """Multi-line text (an email footer): line breaks and tabs are fine."""
    return _clean(value, allowed="\n\r\t")


def _integer(value: Any) -> Any:
    """A JSON integer, not 8.0 or true (a Literal compares by equality)."""
    if type(value) is not int:
        raise ValueError("must be an integer")
    return value


Text = Annotated[str, Field(max_length=MAX_TEXT), AfterValidator(_clean)]
LongText = Annotated[str, Field(max_length=4096), AfterValidator(_clean_lines)]
Code = Annotated[str, Field(max_length=64), AfterValidator(_clean)]
Secret = Annotated[str, Field(max_length=1024), AfterValidator(_clean)]
Id = Annotated[
    str, Field(max_length=64, json_schema_extra={"format": "uuid"}), AfterValidator(_clean)
]
Ids = Annotated[list[Id], Field(max_length=1000)]
AuthType = Literal["2FA", "PIN"]


STRICT = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)


class Request(BaseModel):
    model_config = STRICT


# Requests ---------------------------------------------------------------


class SessionLoginPostResp(Request):
    """The spec names the POST /session/login *request* body this way."""

    auth_type: AuthType
    code: Code
    # Issue 13: trust this device (X-Device-Token) if this is the last factor.
    remember_device: bool | None = None


class ProfileSetPasswordReq(Request):
    password: Secret
    new_password: Secret


class ProfileSetMfaReq(Request):
    auth_type: AuthType
    code: Code


class ProfileRemoveMfaReq(Request):
    auth_type: AuthType


class RecoveryCodesReq(Request):
    """Our extension: a new set of recovery codes, proven by a current TOTP code."""

    code: Code


class UserFields(Request):
    name: Text | None = None
    email: Text | None = None
    parent_id: Id | None = None
    quota: float | None = None
    status: Literal["A", "D"] | None = None
    super_admin: Literal["Y", "N"] | None = None
    home_id: Id | None = None
    user_operations: float | None = None
    home_operations: float | None = None
    language: Annotated[str, Field(max_length=32), AfterValidator(_clean)] | None = None
    groups: Ids | None = None
    services: Ids | None = None
    custom_sftp_home: bool | None = None


class UserCreateReq(UserFields):
    name: Annotated[str, Field(min_length=1, max_length=MAX_TEXT), AfterValidator(_clean)]
    email: Text


class UserEditReq(UserFields):
    ids: Ids


class UserDeleteReq(Request):
    ids: Ids
    delete_home: bool | None = None


class UserSetMfaReq(Request):
    ids: Ids
    auth_type: AuthType
    code: Code


class UserRemoveMfaReq(Request):
    ids: Ids
    auth_type: AuthType


class UserIdsReq(Request):
    ids: Annotated[list[Id], Field(min_length=1, max_length=1000)]


class RecoverMfaResp(BaseModel):
    """A lost-device recovery started (issue 12): when it may complete."""

    ready_at: str


class UserResetMfaReq(Request):
    ids: Ids
    auth_type: Literal["2FA"]


class ShareTypes(BaseModel):
    model_config = STRICT

    public_share: bool | None = None
    tracked_share: bool | None = None
    restricted_share: bool | None = None


class SettingsSetReq(Request):
    title: Text | None = None
    bcc: Annotated[list[Text], Field(max_length=100)] | None = None
    billing_emails: Annotated[list[Text], Field(max_length=100)] | None = None
    email_footer: LongText | None = None
    language: Annotated[str, Field(max_length=32), AfterValidator(_clean)] | None = None
    pgp_enabled: bool | None = None
    share_types: ShareTypes | None = None
    auth_methods: Annotated[list[Literal["IP", "2FA"]], Field(max_length=2)] | None = None
    # Staged 2FA (issue 12): days users without 2FA keep signing in without it.
    mfa_grace_days: Annotated[int, Field(ge=0, le=90)] | None = None
    # Whether users may start a lost-device recovery themselves.
    mfa_self_recovery: bool | None = None
    # Issue 13: days a trusted device skips the second factor (0: off, ends every trust).
    trusted_device_days: Annotated[int, Field(ge=0, le=365)] | None = None
    # The TOTP parameters of new enrollments (issue 13); each seed keeps its own.
    totp_algorithm: Literal["SHA1", "SHA256", "SHA512"] | None = None
    totp_digits: Annotated[Literal[6, 8], BeforeValidator(_integer)] | None = None
    totp_period: Annotated[Literal[30, 60], BeforeValidator(_integer)] | None = None
    ip_whitelist: (
        Annotated[
            list[Annotated[str, Field(max_length=64), AfterValidator(_clean)]],
            Field(max_length=1000),
        ]
        | None
    ) = None


class ResetPasswordRequestReq(Request):
    email: Annotated[list[Text], Field(min_length=1, max_length=50)]


class ResetPasswordResetReq(Request):
    password: Secret


# Responses --------------------------------------------------------------


class ErrorModel(BaseModel):
    code: int
    msg: str
    details: dict[str, Any] | None = None


class SessionLoginResp(BaseModel):
    session_id: str = Field(json_schema_extra={"format": "uuid"})


class ProfileSetPasswordResp(BaseModel):
    email: str


class ProfileSetMfaResp(BaseModel):
    session_ids: str = Field(json_schema_extra={"format": "uuid"})
    recovery_codes: list[str] | None = None


class ProfileRemoveMfaResp(BaseModel):
    status: Literal["success"] = "success"


class RecoveryCodesResp(BaseModel):
    recovery_codes: list[str] = Field(description="The new codes, shown once")


class RecoveryCodesLeftResp(BaseModel):
    remaining: int = Field(description="Unused recovery codes")


class TotpGenerateResp(BaseModel):
    secret: str
    uri: str
    qr: str = Field(description="PNG image of the otpauth URI, base64-encoded")


class ShortUserService(BaseModel):
    id: str | None = None
    service_key: str | None = None


class ProfileResp(BaseModel):
    id: str
    name: str
    email: str
    super_admin: Literal["Y", "N"]
    account_id: str
    created: float
    modified: float
    status: str
    language: str
    auth_methods: list[str]
    forced_auth: list[str]
    account_status: Literal["A", "S"]
    has_key: bool = False
    pgp_enabled: bool = False
    is_contact: bool = False
    quota: float = 0
    operations: float = 0
    services: list[ShortUserService] = []
    share_types: ShareTypes = ShareTypes()
    # Upstream fields this service has no data for: documented, never sent.
    home_id: str | None = None
    max_file_size: float | None = None
    max_files_per_share: float | None = None
    plan: str | None = None
    channel_id: str | None = None
    storage_id: str | None = None
    uid: float | None = None
    gid: float | None = None
    message_signature: str | None = None
    outgoing_id: str | None = None
    incoming_id: str | None = None
    unique_login: str | None = None
    sftp_url: str | None = None


class GroupMetadata(BaseModel):
    is_system: bool | None = None
    translation_id: str | None = None
    visual_order: float | None = None


class Group(BaseModel):
    id: str | None = None
    metadata: GroupMetadata | None = None
    name: str | None = None


class UserResp(BaseModel):
    id: str
    name: str
    email: str
    super_admin: Literal["Y", "N"]
    status: str
    language: str
    created: float
    modified: float
    last_login: float | None = None
    auth_methods: list[str]
    forced_auth: list[str]
    quota: float = 0
    storage_used: float = 0
    user_operations: float = 0
    effective_operations: float = 0
    home_operations: float = 0
    has_key: bool = False
    readonly: bool = False
    custom_sftp_home: bool = False
    groups: list[Group] = []
    services: list[ShortUserService] = []
    # Upstream fields this service has no data for: documented, never sent.
    parent_id: str | None = None
    home_id: str | None = None
    home_name: str | None = None
    storage_id: str | None = None
    unique_login: str | None = None
    sftp_home: str | None = None


class JobResp(BaseModel):
    job_id: str = Field(json_schema_extra={"format": "uuid"})


class SettingsResp(BaseModel):
    title: str
    bcc: list[str] = []
    billing_emails: list[str] = []
    email_footer: str = ""
    modified: float
    language: str = "eng"
    pgp_enabled: bool = False
    share_types: dict[str, Any] = {}
    auth_methods: list[str]
    ip_whitelist: list[str]
    # RFC 3339 UTC: until when users without 2FA may still sign in without it.
    mfa_enroll_by: str | None = None
    mfa_self_recovery: bool = True
    trusted_device_days: int = 30
    totp_algorithm: str = "SHA1"
    totp_digits: int = 6
    totp_period: int = 30


class MfaImpactUser(BaseModel):
    id: str
    email: str
    name: str


class MfaImpactResp(BaseModel):
    """What forcing 2FA would do now (issue 12, the impact preview)."""

    users: int
    users_without_2fa: int
    sessions_to_end: int
    first_users: list[MfaImpactUser]


class SettingsAuthMethodsRespItems(BaseModel):
    rank: int
    id: str = Field(json_schema_extra={"format": "uuid"})
    key: str
    # On the 2FA method while its forcing waits for a deadline (RFC 3339 UTC).
    enroll_by: str | None = None


class AccountMetadataResp(BaseModel):
    status: str
    title: str
    language: str
    default_logo: bool = True


class ResetPasswordRequestResp(BaseModel):
    email: list[str]


class ResetPasswordMetadataResp(BaseModel):
    id: str = Field(json_schema_extra={"format": "uuid"})
    multiple_accounts: bool = False


class IdResp(BaseModel):
    id: str = Field(json_schema_extra={"format": "uuid"})


# Trusted devices (issue 13) ------------------------------------------------


class TrustedDeviceResp(BaseModel):
    id: str = Field(json_schema_extra={"format": "uuid"})
    label: str
    address: str | None = None
    created: float
    last_used: float | None = None
    expires: float


class DevicesDeleteReq(Request):
    ids: Annotated[list[Id], Field(min_length=1, max_length=1000)]


class DevicesDeleteResp(BaseModel):
    deleted: int
