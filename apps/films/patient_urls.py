from django.urls import path

from apps.films import patient_views as views

urlpatterns = [
    path("<str:token>", views.film_page, name="film-page"),
    path("<str:token>/sheets/<int:number>.jpg", views.film_sheet, name="film-sheet"),
    path("<str:token>/film.pdf", views.film_sheets_pdf, name="film-sheets-pdf"),
    path("<str:token>/report.pdf", views.film_report_pdf, name="film-report-pdf"),
    path("<str:token>/series/<int:series_index>/<int:image_index>.jpg", views.film_frame, name="film-frame"),
    path("<str:token>/images.zip", views.film_download, name="film-download"),
]
