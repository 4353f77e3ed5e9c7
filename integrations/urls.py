from django.urls import path

from . import views

org_urlpatterns = [
    path("key-results/<int:key_result_pk>/data-source/", views.data_source, name="data_source"),
    path("key-results/<int:key_result_pk>/data-source/secret/", views.data_source_secret,
         name="data_source_secret"),
    path("key-results/<int:key_result_pk>/data-source/pull/", views.data_source_pull,
         name="data_source_pull"),
    path("key-results/<int:key_result_pk>/data-source/values/", views.data_source_values,
         name="data_source_values"),
    path("key-results/<int:key_result_pk>/data-source/remove/", views.data_source_remove,
         name="data_source_remove"),
    path("console/webhooks/", views.subscriptions, name="webhooks"),
    path("console/webhooks/settings/", views.integration_settings, name="integration_settings"),
    path("console/webhooks/<int:subscription_pk>/", views.subscription, name="webhook"),
    path("console/webhooks/<int:subscription_pk>/secret/", views.subscription_secret,
         name="webhook_secret"),
    path("console/webhooks/<int:subscription_pk>/delete/", views.subscription_delete,
         name="webhook_delete"),
    path("console/webhooks/deliveries/<int:delivery_pk>/", views.delivery,
         name="webhook_delivery"),
    path("console/webhooks/deliveries/<int:delivery_pk>/redeliver/", views.delivery_redeliver,
         name="webhook_redeliver"),
]

urlpatterns = [
    path("hooks/key-results/<str:token>/", views.data_source_webhook,
         name="data_source_webhook"),
]
