from django.apps import AppConfig


class OrgsConfig(AppConfig):
    name = "orgs"
    verbose_name = "Organizations"

    def ready(self):
        from . import versions

        versions.connect()  # cached reads (the nav's count, the cycle review) see every write
