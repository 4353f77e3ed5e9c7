from django.urls import path

from . import views, views_chat, views_inbox

org_urlpatterns = [
    path("preferences/", views.preferences, name="preferences"),
    path("console/send-log/", views.send_log, name="send_log"),
    path("console/chat/", views_chat.channels, name="chat_channels"),
    path("console/chat/<int:channel_pk>/", views_chat.channel, name="chat_channel"),
    path("console/chat/<int:channel_pk>/test/", views_chat.channel_test, name="chat_channel_test"),
    path("console/chat/<int:channel_pk>/delete/", views_chat.channel_delete,
         name="chat_channel_delete"),
    path("inbox/", views_inbox.inbox_page, name="inbox"),
    path("inbox/act/", views_inbox.inbox_act, name="inbox_act"),
]

urlpatterns = [
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
