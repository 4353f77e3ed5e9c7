import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("okr_alignment")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Log lines carry their organization; failed and retried tasks are logged with it.
import config.logs  # noqa: E402, F401
