from django.apps import AppConfig


class OrgsConfig(AppConfig):
    name = "orgs"
    verbose_name = "Organizations"

    def ready(self):
        from . import formfields, versions

        formfields.install()  # a form's choice list is one query, not a server-side cursor
        versions.connect()  # cached reads (the nav's count, the cycle review) see every write
