from django.contrib.auth import views as auth_views
from django.urls import path

from okrs import views_closing

from . import views

urlpatterns = [
    path("", views.root, name="root"),
    path("orgs/", views.switch_org, name="switch_org"),
    path("invitations/<str:token>/", views.accept_invitation, name="accept_invitation"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True),
         name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password-reset/", views.PasswordResetView.as_view(),
         name="password_reset"),
    path("accounts/password-reset/sent/", auth_views.PasswordResetDoneView.as_view(),
         name="password_reset_done"),
    path("accounts/reset/<uidb64>/<token>/", views.PasswordResetConfirmView.as_view(),
         name="password_reset_confirm"),
    path("accounts/reset/done/", auth_views.PasswordResetCompleteView.as_view(),
         name="password_reset_complete"),
]

console_urlpatterns = [
    path("", views.console_home, name="console"),
    path("members/", views.console_members, name="console_members"),
    path("members/<int:membership_pk>/", views.console_member_edit, name="console_member_edit"),
    path("members/<int:membership_pk>/remove/", views.console_member_remove,
         name="console_member_remove"),
    path("invitations/<int:invitation_pk>/revoke/", views.console_invitation_revoke,
         name="console_invitation_revoke"),
    path("teams/", views.console_teams, name="console_teams"),
    path("teams/new/", views.console_team_form, name="console_team_new"),
    path("teams/<int:team_pk>/", views.console_team_form, name="console_team_edit"),
    path("cycles/", views.console_cycles, name="console_cycles"),
    path("cycles/new/", views.console_cycle_form, name="console_cycle_new"),
    path("cycles/<int:cycle_pk>/", views.console_cycle_form, name="console_cycle_edit"),
    path("cycles/<int:cycle_pk>/close/", views_closing.console_cycle_close,
         name="console_cycle_close"),
]

# A unit kept by its leads, and the KPIs of its scorecard (orgs/views_units.py).
from . import views_units  # noqa: E402

unit_urlpatterns = [
    path("teams/<int:team_pk>/edit/", views_units.unit_edit, name="unit_edit"),
    path("teams/<int:team_pk>/edit/unit/", views_units.unit_structure, name="unit_structure"),
    path("teams/<int:team_pk>/edit/new/", views_units.unit_new, name="unit_new"),
    path("teams/<int:team_pk>/edit/members/<int:membership_pk>/remove/",
         views_units.unit_member_remove, name="unit_member_remove"),
    path("teams/<int:team_pk>/edit/kpis/<int:kpi_pk>/", views_units.unit_kpi_edit,
         name="unit_kpi_edit"),
    path("teams/<int:team_pk>/edit/kpis/<int:kpi_pk>/remove/", views_units.unit_kpi_remove,
         name="unit_kpi_remove"),
    path("kpis/<int:kpi_pk>/values/", views_units.kpi_value, name="kpi_value"),
    path("kpis/<int:kpi_pk>/recovery/", views_units.kpi_recovery, name="kpi_recovery"),
]
