"""Who is calling: a bearer token (a person's or the organization's), or a signed-in session
for same-site calls (CSRF checked on writes by ninja's cookie auth)."""

from ninja.errors import AuthenticationError
from ninja.security import HttpBearer, SessionAuth

from .tokens import TokenRefused, token_for


class TokenRefusedError(AuthenticationError):
    def __init__(self, message):
        super().__init__(401, message)


class BearerToken(HttpBearer):
    """``Authorization: Bearer okrp_…`` (or ``okrs_…``). A header naming a token that is unknown,
    revoked or expired is refused at once (401), not passed on to the session."""

    def authenticate(self, request, token):
        try:
            return token_for(token)
        except TokenRefused as e:
            raise TokenRefusedError(str(e)) from e

    def __call__(self, request):
        header = request.headers.get("Authorization", "")
        if header and not header.lower().startswith("bearer "):
            raise TokenRefusedError("Send the token as “Authorization: Bearer <token>”.")
        return super().__call__(request)


AUTH = [BearerToken(), SessionAuth(csrf=True)]
