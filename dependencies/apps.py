from django.apps import AppConfig


class DependenciesConfig(AppConfig):
    name = "dependencies"
    verbose_name = "Network and dependencies"
