from django.urls import path

from . import views

urlpatterns = [
    path("cycles/<int:cycle_pk>/export/okrs.csv", views.download,
         {"what": "okrs", "fmt": "csv"}, name="export_okrs_csv"),
    path("cycles/<int:cycle_pk>/export/okrs.xlsx", views.download,
         {"what": "okrs", "fmt": "xlsx"}, name="export_okrs_xlsx"),
    path("cycles/<int:cycle_pk>/export/check-ins.csv", views.download,
         {"what": "check-ins", "fmt": "csv"}, name="export_check_ins_csv"),
    path("cycles/<int:cycle_pk>/export/check-ins.xlsx", views.download,
         {"what": "check-ins", "fmt": "xlsx"}, name="export_check_ins_xlsx"),
    path("cycles/<int:cycle_pk>/export/matrix.csv", views.download,
         {"what": "matrix", "fmt": "csv"}, name="export_matrix_csv"),
    path("cycles/<int:cycle_pk>/import/", views.import_page, name="okr_import"),
    path("cycles/<int:cycle_pk>/import/template.csv", views.import_template,
         name="okr_import_template"),
]
