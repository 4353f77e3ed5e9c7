from django.urls import path

from . import views, views_cascade

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

urlpatterns += [
    path("review/", views_cascade.review_queue, name="review"),
    path("review/publish/", views_cascade.publish, name="publish_cycle"),
    path("objectives/<int:objective_pk>/review/", views_cascade.review_act, name="review_act"),
    path("alignment/report/", views_cascade.misalignment_report, name="report"),
    path("alignment/recascade/", views_cascade.recascade_page, name="recascade"),
    path("alignment/recascade/<int:flag_pk>/", views_cascade.recascade_act,
         name="recascade_act"),
    path("alignment/matrix/", views_cascade.matrix, name="matrix"),
    path("alignment/map/", views_cascade.network_map, name="network_map"),
    path("alignment/settings/", views_cascade.alignment_settings, name="alignment_settings"),
]
