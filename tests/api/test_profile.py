"""Profile self-service over HTTP: GET /profile, POST /profile/set-password and
GET /profile/2fa/generate (the pending TOTP secret and its QR code)."""

from __future__ import annotations

import base64
import struct
import uuid
import zlib
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import segno

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, alive
from tests.support import outbox
from tests.support.encoding import b64

NEW_PASSWORD = "a brand new passphrase é✓"
USER_EMAIL = "member@example.com"
USER_PASSWORD = "member password 123"


def change_password(api: Api, token: str, current: str, new: str) -> object:
    return api.post(
        "/profile/set-password", {"password": b64(current), "new_password": b64(new)}, token
    )


# GET /profile ---------------------------------------------------------------


def test_profile_describes_the_caller(api: Api, admin_token: str) -> None:
    response = api.get("/profile", admin_token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert str(uuid.UUID(body["id"])) == body["id"]
    assert body["email"] == ADMIN_EMAIL
    assert body["super_admin"] == "Y"
    assert body["auth_methods"] == []
    assert body["forced_auth"] == []
    listed = {u["email"]: u["id"] for u in api.get("/user", admin_token).json()}
    assert listed[ADMIN_EMAIL] == body["id"]

    api.create_user(admin_token, USER_EMAIL, USER_PASSWORD)
    member = api.get("/profile", api.full_session(USER_EMAIL, USER_PASSWORD)).json()
    assert member["email"] == USER_EMAIL
    assert member["super_admin"] == "N"
    assert member["id"] != body["id"]


def test_profile_reflects_own_and_forced_factors(api: Api, admin_token: str) -> None:
    user_id = api.create_user(admin_token, USER_EMAIL, USER_PASSWORD)
    token, secret, _ = api.enroll_totp(api.full_session(USER_EMAIL, USER_PASSWORD))
    profile = api.get("/profile", token).json()
    assert profile["auth_methods"] == ["2FA"]
    assert profile["forced_auth"] == []

    forced = {"ids": [user_id], "auth_type": "2FA", "code": "000000"}
    assert api.post("/user/set-mfa", forced, admin_token).status_code == 200
    pending = api.login(USER_EMAIL, USER_PASSWORD)
    assert pending.status_code == 207 and pending.headers["Mfa-Code"] == "1"
    body = {"auth_type": "2FA", "code": api.code(secret)}
    full = api.post("/session/login", body, pending.json()["session_id"])
    assert full.status_code == 200, full.text
    profile = api.get("/profile", full.json()["session_id"]).json()
    assert profile["auth_methods"] == ["2FA"]
    assert profile["forced_auth"] == ["2FA"]

    # A PIN the user sets is active but not forced.
    pin = api.post("/profile/set-mfa", {"auth_type": "PIN", "code": "4829"}, admin_token)
    assert pin.status_code == 200, pin.text
    profile = api.get("/profile", pin.json()["session_ids"]).json()
    assert profile["auth_methods"] == ["PIN"]
    assert profile["forced_auth"] == []


def test_profile_needs_a_live_full_session(api: Api, admin_token: str) -> None:
    missing = api.get("/profile")
    assert missing.status_code == 401 and missing.json()["code"] == 1
    unknown = api.get("/profile", str(uuid.uuid4()))
    assert unknown.status_code == 401 and unknown.json()["code"] == 1
    api.enroll_totp(admin_token)
    pending = api.login(ADMIN_EMAIL, ADMIN_PASSWORD).json()["session_id"]
    refused = api.get("/profile", pending)
    assert refused.status_code == 401 and refused.json()["code"] == 10


# POST /profile/set-password --------------------------------------------------


def test_set_password_keeps_the_caller_and_closes_other_sessions(
    api: Api, admin_token: str
) -> None:
    other = api.full_session()
    response = change_password(api, admin_token, ADMIN_PASSWORD, NEW_PASSWORD)
    assert response.status_code == 200, response.text
    assert response.json()["email"] == ADMIN_EMAIL
    assert alive(api, admin_token)
    assert api.get("/profile", admin_token).status_code == 200
    assert not alive(api, other)
    assert api.login(ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 401
    assert api.login(ADMIN_EMAIL, NEW_PASSWORD).status_code == 200


def test_set_password_mails_the_user_a_notice(api: Api, admin_token: str) -> None:
    change_password(api, admin_token, ADMIN_PASSWORD, NEW_PASSWORD)
    mails = outbox.mails(api.core, ADMIN_EMAIL)
    assert [m.subject for m in mails] == ["Your Quatrix password was changed"]
    assert NEW_PASSWORD not in mails[0].body and ADMIN_PASSWORD not in mails[0].body


def test_wrong_current_password_is_refused_and_changes_nothing(api: Api, admin_token: str) -> None:
    other = api.full_session()
    response = change_password(api, admin_token, "not my password", NEW_PASSWORD)
    assert response.status_code == 400
    assert response.json()["code"] == 2
    assert "password" in response.json()["details"]
    assert alive(api, other)
    assert api.login(ADMIN_EMAIL, NEW_PASSWORD).status_code == 401
    assert api.login(ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 200


def test_weak_new_password_is_refused(api: Api, admin_token: str) -> None:
    for weak in ("password", "short1", "aaaaaaaaaaaa", ADMIN_EMAIL):
        response = change_password(api, admin_token, ADMIN_PASSWORD, weak)
        assert response.status_code == 400, weak
        assert response.json()["code"] == 32, weak
        assert api.login(ADMIN_EMAIL, weak).status_code == 401
    assert api.login(ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 200


def test_passwords_that_are_not_base64_are_refused(api: Api, admin_token: str) -> None:
    raw = {"password": ADMIN_PASSWORD, "new_password": b64(NEW_PASSWORD)}
    response = api.post("/profile/set-password", raw, admin_token)
    assert response.status_code == 400 and response.json()["code"] == 2
    assert "password" in response.json()["details"]
    raw = {"password": b64(ADMIN_PASSWORD), "new_password": "%%% not base64 %%%"}
    response = api.post("/profile/set-password", raw, admin_token)
    assert response.status_code == 400 and response.json()["code"] == 2
    assert "new_password" in response.json()["details"]
    not_utf8 = base64.b64encode(b"\xff\xfe\xfa").decode()
    raw = {"password": b64(ADMIN_PASSWORD), "new_password": not_utf8}
    assert api.post("/profile/set-password", raw, admin_token).status_code == 400
    assert api.login(ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 200


@pytest.mark.parametrize("control", ["\x00", "\n", "\x1b", "\x7f", "\x85"])
def test_new_password_with_a_control_character_is_refused_as_in_a_reset(
    api: Api, admin_token: str, control: str
) -> None:
    raw = {"password": b64(ADMIN_PASSWORD), "new_password": b64(f"a long pass{control}phrase")}
    response = api.post("/profile/set-password", raw, admin_token)
    assert response.status_code == 400 and "new_password" in response.json()["details"]
    assert api.login(ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 200


def test_set_password_is_throttled_after_ten_wrong_current_passwords(
    api: Api, admin_token: str
) -> None:
    for attempt in range(10):
        response = change_password(api, admin_token, f"guess number {attempt}", NEW_PASSWORD)
        assert response.status_code == 400, attempt
    blocked = change_password(api, admin_token, ADMIN_PASSWORD, NEW_PASSWORD)
    assert blocked.status_code == 429
    assert blocked.json()["code"] == 13
    wait = int(blocked.headers["Retry-After"])
    assert wait > 0
    # Blocked means blocked: the old password is still the current one.
    api.clock.advance(wait + 1)
    assert change_password(api, admin_token, ADMIN_PASSWORD, NEW_PASSWORD).status_code == 200
    assert api.login(ADMIN_EMAIL, NEW_PASSWORD).status_code == 200


# GET /profile/2fa/generate -----------------------------------------------------


def _png_chunks(data: bytes) -> dict[bytes, bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    chunks: dict[bytes, bytes] = {}
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + length
    assert b"IHDR" in chunks and b"IDAT" in chunks and b"IEND" in chunks
    return chunks


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def png_dark_pixels(data: bytes) -> list[list[bool]]:
    """Decode a non-interlaced PNG (PNG spec §7-9) into rows of "is dark"."""
    chunks = _png_chunks(data)
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert width > 0 and height > 0 and interlace == 0
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color]
    bpp = max(1, depth * channels // 8)
    stride = (width * depth * channels + 7) // 8
    raw = zlib.decompress(chunks[b"IDAT"])
    assert len(raw) == height * (stride + 1)
    rows, prev = [], bytearray(stride)
    for y in range(height):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            a, b = line[i - bpp] if i >= bpp else 0, prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + (0, a, b, (a + b) // 2, _paeth(a, b, c))[kind]) & 0xFF
        rows.append(line)
        prev = line
    palette = chunks.get(b"PLTE", b"")

    def value(line: bytearray, x: int) -> int:
        if depth < 8:
            bit = x * depth
            sample = (line[bit // 8] >> (8 - depth - bit % 8)) & ((1 << depth) - 1)
            return palette[sample * 3] if color == 3 else sample * 255 // ((1 << depth) - 1)
        sample = line[x * channels * depth // 8]
        return palette[sample * 3] if color == 3 else sample

    return [[value(line, x) < 128 for x in range(width)] for line in rows]


def qr_modules(pixels: list[list[bool]]) -> list[list[bool]]:
    """Sample the QR modules, locating the top-left finder pattern (7 modules wide)."""
    y0 = next(y for y, row in enumerate(pixels) if any(row))
    x0 = pixels[y0].index(True)
    run = next((i for i, dark in enumerate(pixels[y0][x0:]) if not dark), len(pixels[y0]) - x0)
    scale = run // 7
    assert scale > 0 and run == 7 * scale
    size = (len(pixels[0]) - 2 * x0) // scale
    half = scale // 2
    return [
        [pixels[y0 + r * scale + half][x0 + c * scale + half] for c in range(size)]
        for r in range(size)
    ]


def encodes(modules: list[list[bool]], text: str) -> bool:
    for level in "lmqh":
        expected = [
            [bool(m) for m in row] for row in segno.make(text, error=level, micro=False).matrix
        ]
        if expected == modules:
            return True
    return False


def test_generate_returns_a_secret_its_uri_and_a_qr_png(api: Api, admin_token: str) -> None:
    response = api.get("/profile/2fa/generate", admin_token)
    assert response.status_code == 200, response.text
    body = response.json()
    secret = body["secret"]
    raw = base64.b32decode(secret + "=" * (-len(secret) % 8))
    assert len(raw) >= 16  # at least 128 bits (RFC 4226 asks for 160)

    uri = urlsplit(body["uri"])
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert ADMIN_EMAIL in unquote(uri.path)
    query = {key: values[0] for key, values in parse_qs(uri.query).items()}
    assert query["secret"] == secret
    assert query["issuer"]
    assert query["digits"] == "6"
    assert query["period"] == "30"
    assert query["algorithm"] == "SHA1"

    png = base64.b64decode(body["qr"], validate=True)
    modules = qr_modules(png_dark_pixels(png))
    assert len(modules) >= 21 and (len(modules) - 17) % 4 == 0
    assert encodes(modules, body["uri"])
    assert not encodes(modules, body["uri"].replace(secret, secret[::-1]))


def test_each_generate_gives_a_new_secret(api: Api, admin_token: str) -> None:
    first = api.get("/profile/2fa/generate", admin_token).json()
    second = api.get("/profile/2fa/generate", admin_token).json()
    assert first["secret"] != second["secret"]
    assert first["qr"] != second["qr"]


def test_a_second_generate_replaces_the_first_pending_secret(api: Api, admin_token: str) -> None:
    first = api.get("/profile/2fa/generate", admin_token).json()["secret"]
    second = api.get("/profile/2fa/generate", admin_token).json()["secret"]
    stale = api.post("/profile/set-mfa", {"auth_type": "2FA", "code": api.code(first)}, admin_token)
    assert stale.status_code == 401 and stale.json()["code"] == 11
    ok = api.post("/profile/set-mfa", {"auth_type": "2FA", "code": api.code(second)}, admin_token)
    assert ok.status_code == 200, ok.text


def test_active_secret_keeps_working_until_set_mfa_succeeds(api: Api, admin_token: str) -> None:
    token, active, _ = api.enroll_totp(admin_token)
    pending_secret = api.get("/profile/2fa/generate", token).json()["secret"]

    def login_with(secret: str) -> int:
        pending = api.login(ADMIN_EMAIL, ADMIN_PASSWORD).json()["session_id"]
        body = {"auth_type": "2FA", "code": api.code(secret)}
        return int(api.post("/session/login", body, pending).status_code)

    assert login_with(pending_secret) == 401
    assert login_with(active) == 200
    api.clock.advance(30)
    body = {"auth_type": "2FA", "code": api.code(pending_secret)}
    assert api.post("/profile/set-mfa", body, token).status_code == 200
    api.clock.advance(30)
    assert login_with(active) == 401
    assert login_with(pending_secret) == 200


def test_enrollment_expires_after_ten_minutes(api: Api, admin_token: str) -> None:
    secret = api.get("/profile/2fa/generate", admin_token).json()["secret"]
    api.clock.advance(600)
    body = {"auth_type": "2FA", "code": api.code(secret)}
    expired = api.post("/profile/set-mfa", body, admin_token)
    assert expired.status_code == 400 and expired.json()["code"] == 14
    assert api.login(ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 200

    secret = api.get("/profile/2fa/generate", admin_token).json()["secret"]
    api.clock.advance(590)
    body = {"auth_type": "2FA", "code": api.code(secret)}
    assert api.post("/profile/set-mfa", body, admin_token).status_code == 200


def test_generate_is_refused_to_a_session_waiting_for_a_code(api: Api, admin_token: str) -> None:
    api.enroll_totp(admin_token)
    pending = api.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    assert pending.headers["Mfa-Code"] == "1"
    refused = api.get("/profile/2fa/generate", pending.json()["session_id"])
    assert refused.status_code == 401 and refused.json()["code"] == 10
