from django.contrib import admin
from django.urls import include, path

import alignment.urls
import api.urls
import dependencies.urls
import exchange.urls
import history.urls
import integrations.urls
import nudges.urls
import okrs.urls
import orgs.pickers
import orgs.urls
import search.urls
import suggestions.urls
from config import health

org_urlpatterns = [
    *okrs.urls.urlpatterns,
    *dependencies.urls.urlpatterns,
    *alignment.urls.urlpatterns,
    *exchange.urls.urlpatterns,
    *search.urls.urlpatterns,
    *history.urls.urlpatterns,
    *suggestions.urls.urlpatterns,
    *nudges.urls.org_urlpatterns,
    *integrations.urls.org_urlpatterns,
    *orgs.pickers.urlpatterns,
    *api.urls.org_urlpatterns,
    *orgs.urls.unit_urlpatterns,
    path("console/", include(orgs.urls.console_urlpatterns + api.urls.console_urlpatterns)),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("django-admin/", admin.site.urls),
    path("o/<slug:org_slug>/", include(org_urlpatterns)),
    *orgs.urls.urlpatterns,
    *nudges.urls.urlpatterns,
    *api.urls.urlpatterns,
    *integrations.urls.urlpatterns,
]
