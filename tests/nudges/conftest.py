from tests.dependencies.conftest import revenue  # noqa: F401 - the shared scenario
