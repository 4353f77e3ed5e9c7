from django.urls import path

from . import views

urlpatterns = [
    path("workflows/", views.workflow_list, name="workflows"),
    path("workflows/<int:workflow_pk>/", views.workflow_detail, name="workflow"),
    path("workflows/<int:workflow_pk>/act/", views.workflow_act, name="workflow_act"),
    path("workflows/<int:workflow_pk>/outputs/", views.workflow_outputs,
         name="workflow_outputs"),
    path("workflows/<int:workflow_pk>/outputs.md", views.workflow_outputs_markdown,
         name="workflow_outputs_md"),
    path("learnings/", views.learnings, name="learnings"),
]
