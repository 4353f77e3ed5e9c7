from django.apps import AppConfig
from django.core.signals import request_finished


class NudgesConfig(AppConfig):
    name = "nudges"
    verbose_name = "Weekly nudges"

    def ready(self):
        from . import inbox

        # The nav's count, counted again after the response rather than before it.
        request_finished.connect(inbox.after_response, dispatch_uid="inbox:after_response")
