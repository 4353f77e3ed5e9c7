from django.urls import path

from . import views
from .endpoints import api

# Under /o/<org>/.
org_urlpatterns = [
    path("api-tokens/", views.api_tokens, name="api_tokens"),
    path("api-tokens/<int:token_pk>/revoke/", views.api_token_revoke, name="api_token_revoke"),
]
console_urlpatterns = [
    path("api-tokens/", views.service_tokens, name="service_tokens"),
    path("api-tokens/<int:token_pk>/revoke/", views.service_token_revoke,
         name="service_token_revoke"),
]
urlpatterns = [
    path("api/v1/", api.urls),
    path("api/docs/", views.docs, name="api_docs"),
]
