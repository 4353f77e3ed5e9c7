from django.urls import path, register_converter

from . import views


class NodeKindConverter:
    regex = "[ok]"

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


register_converter(NodeKindConverter, "node")

urlpatterns = [
    path("network/", views.network_overview, name="network"),
    path("network/<node:kind>/<int:pk>/why/", views.why_at_risk, name="why_at_risk"),
    path("network/<node:kind>/<int:pk>/depends-on/", views.dependency_create,
         name="dependency_new"),
    path("dependencies/<int:dependency_pk>/", views.dependency_detail, name="dependency"),
    path("dependencies/<int:dependency_pk>/answer/", views.dependency_answer,
         name="dependency_answer"),
    path("objectives/<int:objective_pk>/shares/", views.share_add, name="share_add"),
    path("shares/<int:share_pk>/remove/", views.share_remove, name="share_remove"),
    path("key-results/<int:key_result_pk>/contributes-to/", views.key_result_link,
         name="key_result_link"),
    path("contributions/<int:contribution_pk>/answer/", views.contribution_answer,
         name="contribution_answer"),
    path("contributions/<int:contribution_pk>/stop/", views.contribution_stop,
         name="contribution_stop"),
    path("objectives/<int:objective_pk>/recovery/", views.recovery_add, name="recovery_add"),
    path("recovery/<int:action_pk>/done/", views.recovery_done, name="recovery_done"),
    path("alerts/", views.notifications, name="notifications"),
    path("alerts/read/", views.notifications_read, name="notifications_read"),
]
