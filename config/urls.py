from django.contrib import admin
from django.urls import include, path

import alignment.urls
import dependencies.urls
import integrations.urls
import nudges.urls
import okrs.urls
import orgs.pickers
import orgs.urls
from config import health

org_urlpatterns = [
    *okrs.urls.urlpatterns,
    *dependencies.urls.urlpatterns,
    *alignment.urls.urlpatterns,
    *nudges.urls.org_urlpatterns,
    *integrations.urls.org_urlpatterns,
    *orgs.pickers.urlpatterns,
    path("console/", include(orgs.urls.console_urlpatterns)),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("django-admin/", admin.site.urls),
    path("o/<slug:org_slug>/", include(org_urlpatterns)),
    *orgs.urls.urlpatterns,
    *nudges.urls.urlpatterns,
    *integrations.urls.urlpatterns,
]
