from django.urls import path

from . import views, views_closing, views_review, views_strategy

urlpatterns = [
    path("", views.home, name="home"),
    path("tree/", views.tree, name="tree"),
    path("tree/<int:objective_pk>/children/", views.tree_children, name="tree_children"),
    path("teams/<int:team_pk>/", views.team_detail, name="team"),
    path("objectives/new/", views.objective_create, name="objective_new"),
    path("objectives/<int:objective_pk>/", views.objective_detail, name="objective"),
    path("objectives/<int:objective_pk>/edit/", views.objective_edit, name="objective_edit"),
    path("objectives/<int:objective_pk>/retire/", views.objective_retire, name="objective_retire"),
    path("objectives/<int:objective_pk>/key-results/new/", views.key_result_create,
         name="key_result_new"),
    path("key-results/<int:key_result_pk>/edit/", views.key_result_edit, name="key_result_edit"),
    path("key-results/<int:key_result_pk>/check-in/", views.check_in, name="check_in"),
    path("key-results/<int:key_result_pk>/aligned-to/", views.key_result_align,
         name="key_result_align"),
    path("key-results/<int:key_result_pk>/delete/", views.key_result_delete,
         name="key_result_delete"),
    path("objectives/<int:objective_pk>/unretire/", views.objective_unretire,
         name="objective_unretire"),
    path("check-ins/<int:check_in_pk>/correct/", views.check_in_correct,
         name="check_in_correct"),
    path("check-ins/<int:check_in_pk>/delete/", views.check_in_delete, name="check_in_delete"),
    path("cycles/<int:cycle_pk>/review/", views_review.cycle_review, name="cycle_review"),
    path("cycles/<int:cycle_pk>/review.md", views_review.cycle_review_markdown,
         name="cycle_review_md"),
    path("cycles/<int:cycle_pk>/review.csv", views_review.cycle_review_csv,
         name="cycle_review_csv"),
]

urlpatterns += [
    path("objectives/<int:objective_pk>/score/", views_closing.objective_score,
         name="objective_score"),
    path("objectives/<int:objective_pk>/close/", views_closing.objective_close,
         name="objective_close"),
    path("objectives/<int:objective_pk>/carry-over/", views_closing.objective_carry_over,
         name="objective_carry_over"),

    path("strategy/", views_strategy.strategy_page, name="strategy"),
    path("console/strategy/", views_strategy.console_strategy, name="console_strategy"),
    path("console/strategy/perspectives/<int:perspective_pk>/",
         views_strategy.console_perspective, name="console_perspective"),
    path("console/strategy/perspectives/<int:perspective_pk>/remove/",
         views_strategy.console_perspective_remove, name="console_perspective_remove"),
    path("console/strategy/goals/new/", views_strategy.console_goal_form,
         name="console_goal_new"),
    path("console/strategy/goals/<int:goal_pk>/", views_strategy.console_goal_form,
         name="console_goal_edit"),
    path("console/strategy/goals/<int:goal_pk>/archive/", views_strategy.console_goal_archive,
         name="console_goal_archive"),
]
