"""Account: public metadata of the account (no session needed)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from quatrix_mfa.api.deps import TOKEN_HEADER, AnonymousDep, CoreDep, reply
from quatrix_mfa.api.schemas import AccountMetadataResp
from quatrix_mfa.core import site

router = APIRouter(tags=["Account"])


@router.get("/account/metadata", response_model=AccountMetadataResp)
def account_metadata(request: Request, core: CoreDep, ctx: AnonymousDep) -> JSONResponse:
    """The caller's account with a valid session, else the service's first account."""
    account = site.public_account(core, ctx, request.headers.get(TOKEN_HEADER))
    free = account.settings if account else {}
    return reply(
        AccountMetadataResp(
            status=account.status if account else "A",
            title=str(free.get("title") or (account.name if account else "Quatrix")),
            language=str(free.get("language") or "eng"),
        )
    )
