"""Slow and stuck clients (issue 15 item 7), against a real ``serve`` process:
a request must arrive within QUATRIX_MFA_BODY_TIMEOUT_SECONDS (else 408 and the
connection closed), an idle connection closes after the keep-alive bound, and
many stuck clients at once do not keep anyone else from logging in."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, basic, fresh_database
from tests.servers import Server, init_admin, server_env

BODY_TIMEOUT = 1
KEEPALIVE = 2
SET_PASSWORD = "/profile/set-password"  # any POST route
STUCK_CLIENTS = 60


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, db_kind: str, database_template: str
) -> Iterator[Server]:
    """One node for the module (each test uses its own connections)."""
    folder = tmp_path_factory.mktemp("slow")
    env = server_env(folder, db_kind, fresh_database(db_kind, database_template, folder))
    init_admin(env)
    env["QUATRIX_MFA_BODY_TIMEOUT_SECONDS"] = str(BODY_TIMEOUT)
    env["QUATRIX_MFA_KEEPALIVE_SECONDS"] = str(KEEPALIVE)
    node = Server(env, log=folder / "serve.log")
    node.start()
    try:
        node.wait_healthy()
        yield node
    finally:
        node.stop()


def connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def post_head(path: str, *headers: str) -> bytes:
    lines = [f"POST /api/1.0{path} HTTP/1.1", "Host: 127.0.0.1", *headers, "", ""]
    return "\r\n".join(lines).encode()


def assert_408(answer: bytes) -> str:
    """A 408 ErrorModel that closes the connection; its request id."""
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer[:200]
    fields = head.lower().split(b"\r\n")
    assert b"connection: close" in fields
    assert b"cache-control: no-store" in fields  # as every answer of the app
    assert json.loads(body)["code"] == 2
    [request_id] = [f.split(b":", 1)[1].strip() for f in fields if f.startswith(b"x-request-id:")]
    return request_id.decode()


def request_lines(server: Server, request_id: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The server's request log lines with ``request_id``, once there is one
    (the app writes its line when it has given up on the body)."""
    assert server.log is not None
    deadline = time.monotonic() + timeout
    while True:
        text = server.log.read_text().splitlines()
        lines = [json.loads(line) for line in text if line.startswith("{")]  # not the banner
        found = [
            line
            for line in lines
            if line.get("logger") == "quatrix_mfa.request" and line.get("request_id") == request_id
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def assert_one_line(server: Server, request_id: str, status: int) -> None:
    """One request, one line: the status the client got (or 499), never a 500."""
    lines = request_lines(server, request_id)
    assert [(line["method"], line["status"]) for line in lines] == [("POST", status)], lines
    time.sleep(0.3)  # nothing more comes for it
    assert len(request_lines(server, request_id)) == 1


def test_a_chunked_body_never_finished_is_answered_408_and_closed(server: Server) -> None:
    sock = connect(server)
    sock.sendall(
        post_head(SET_PASSWORD, "Transfer-Encoding: chunked", "Content-Type: application/json")
    )
    sock.sendall(b'5\r\n{"a":\r\n')  # a first chunk; the last (0) never comes
    started = time.monotonic()
    request_id = assert_408(read_until_closed(sock))
    assert BODY_TIMEOUT - 0.2 <= time.monotonic() - started < BODY_TIMEOUT + 3
    assert_one_line(server, request_id, 408)


def test_a_body_shorter_than_its_content_length_is_answered_408(server: Server) -> None:
    sock = connect(server)
    sock.sendall(post_head(SET_PASSWORD, "Content-Length: 100", "Content-Type: application/json"))
    sock.sendall(b'{"email": ')
    assert_one_line(server, assert_408(read_until_closed(sock)), 408)


def test_a_client_that_leaves_mid_body_is_logged_once_as_499(server: Server) -> None:
    sock = connect(server)
    request_id = "client-left-mid-body"
    sock.sendall(
        post_head(
            SET_PASSWORD,
            "Content-Length: 100",
            "Content-Type: application/json",
            f"X-Request-Id: {request_id}",
        )
    )
    sock.sendall(b'{"email": ')
    time.sleep(0.2)  # the app is reading the body
    sock.close()
    assert_one_line(server, request_id, 499)


def test_a_bad_chunk_in_the_heads_own_packet_keeps_the_clients_request_id(
    server: Server,
) -> None:
    sock = connect(server)
    head = post_head(
        SET_PASSWORD,
        "Transfer-Encoding: chunked",
        "Content-Type: application/json",
        "X-Request-Id: bad-chunk-at-once",
    )
    sock.sendall(head + b'5\r\n{"a":\r\nZZZ\r\n')  # before the app has begun
    answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b"\r\nx-request-id: bad-chunk-at-once\r\n" in answer.lower()
    assert_one_line(server, "bad-chunk-at-once", 400)


def test_a_chunked_body_that_turns_unparseable_is_one_400_line(server: Server) -> None:
    sock = connect(server)
    sock.sendall(
        post_head(SET_PASSWORD, "Transfer-Encoding: chunked", "Content-Type: application/json")
    )
    time.sleep(0.3)  # the app has the head and waits for the body
    sock.sendall(b"zz\r\n")  # not a chunk size
    answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    request_id = answer.split(b"x-request-id: ", 1)[1].split(b"\r\n", 1)[0].decode()
    assert_one_line(server, request_id, 400)


def test_a_head_sent_a_byte_at_a_time_is_answered_408(server: Server) -> None:
    sock = connect(server)
    started = time.monotonic()
    answer = b""
    for byte in b"GET /api/1.0/profile HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ":
        sock.sendall(bytes([byte]))
        time.sleep(0.05)
        try:  # the answer arrives while the client is still sending
            sock.setblocking(False)
            answer = sock.recv(65536)
            break
        except BlockingIOError:
            pass
        finally:
            sock.setblocking(True)
    assert_408(answer + read_until_closed(sock))
    assert time.monotonic() - started < BODY_TIMEOUT + 3


def test_a_connection_that_sends_nothing_is_closed_after_the_keep_alive_bound(
    server: Server,
) -> None:
    sock = connect(server)
    started = time.monotonic()
    assert read_until_closed(sock) == b""
    assert KEEPALIVE - 0.2 <= time.monotonic() - started < KEEPALIVE + 3


def test_an_idle_kept_alive_connection_is_closed_after_the_keep_alive_bound(
    server: Server,
) -> None:
    sock = connect(server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    first = b""
    while not first.endswith(b'{"status":"ok"}'):
        first += sock.recv(65536)
    assert first.startswith(b"HTTP/1.1 200 ")
    started = time.monotonic()
    assert read_until_closed(sock) == b""
    assert KEEPALIVE - 0.2 <= time.monotonic() - started < KEEPALIVE + 3


def test_a_complete_request_on_a_slow_link_is_served(server: Server) -> None:
    """The bound is on the whole request, not on each byte: a body that
    arrives in pieces, in time, is answered normally."""
    sock = connect(server)
    body = b'{"email": "x"}'
    sock.sendall(post_head(SET_PASSWORD, f"Content-Length: {len(body)}", "Connection: close"))
    for piece in (body[:5], body[5:]):
        time.sleep(BODY_TIMEOUT / 4)
        sock.sendall(piece)
    answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]  # no session: not a 408


def test_many_stuck_clients_do_not_stop_a_login_and_each_gets_408(server: Server) -> None:
    stuck = []
    for _ in range(STUCK_CLIENTS):
        sock = connect(server)
        sock.sendall(post_head(SET_PASSWORD, "Transfer-Encoding: chunked"))
        sock.sendall(b"1\r\n{\r\n")
        stuck.append(sock)
    started = time.monotonic()
    auth = {"Authorization": basic(ADMIN_EMAIL, ADMIN_PASSWORD)}
    login = httpx.get(f"{server.api}/session/login", headers=auth, timeout=10)
    assert login.status_code == 200, login.text
    assert time.monotonic() - started < BODY_TIMEOUT / 2
    for sock in stuck:
        assert_408(read_until_closed(sock))
    assert httpx.get(f"{server.root}/readyz", timeout=5).status_code == 200
