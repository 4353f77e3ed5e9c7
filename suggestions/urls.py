from django.urls import path

from . import views

urlpatterns = [
    path("objectives/suggestions/", views.objective_suggestions, name="objective_suggestions"),
]
