from django.urls import path

from . import views

urlpatterns = [
    path("objectives/<int:objective_pk>/history/", views.objective_history,
         name="objective_history"),
    path("key-results/<int:key_result_pk>/history/", views.key_result_history,
         name="key_result_history"),
    path("teams/<int:team_pk>/history/", views.team_history, name="team_history"),
    path("dependencies/<int:dependency_pk>/history/", views.dependency_history,
         name="dependency_history"),
    path("workflows/<int:workflow_pk>/history/", views.workflow_history,
         name="workflow_history"),
    path("console/history/", views.console_history, name="console_history"),
    path("console/history.csv", views.console_history_csv, name="console_history_csv"),
]
