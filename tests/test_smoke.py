from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api


def test_login_and_enroll(api: Api, admin_token: str) -> None:
    r = api.get("/profile", admin_token)
    assert r.status_code == 200, r.text
    token, secret, codes = api.enroll_totp(admin_token)
    assert len(codes) == 10
    r = api.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    assert r.status_code == 207 and r.headers["Mfa-Code"] == "1"
    pending = r.json()["session_id"]
    r = api.post("/session/login", {"auth_type": "2FA", "code": api.code(secret)}, pending)
    assert r.status_code == 200, r.text
