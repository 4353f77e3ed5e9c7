from django_scopes import scopes_disabled


class PlatformAdminScopeMiddleware:
    """The Django admin is for platform operators working across organizations: no scope there."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/django-admin/"):
            with scopes_disabled():
                return self.get_response(request)
        return self.get_response(request)
