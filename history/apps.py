from django.apps import AppConfig


class HistoryConfig(AppConfig):
    name = "history"
    verbose_name = "History"

    def ready(self):
        from . import capture, context

        capture.connect()
        context.connect_celery()
