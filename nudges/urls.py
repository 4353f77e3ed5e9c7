from django.urls import path

from . import views

org_urlpatterns = [
    path("preferences/", views.preferences, name="preferences"),
    path("console/send-log/", views.send_log, name="send_log"),
]

urlpatterns = [
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
