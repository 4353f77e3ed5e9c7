from django.urls import path

from . import views, views_inbox

org_urlpatterns = [
    path("preferences/", views.preferences, name="preferences"),
    path("console/send-log/", views.send_log, name="send_log"),
    path("inbox/", views_inbox.inbox_page, name="inbox"),
    path("inbox/act/", views_inbox.inbox_act, name="inbox_act"),
]

urlpatterns = [
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
