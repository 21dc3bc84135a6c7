from django.urls import path

from credits.views import contract_uptime_page

from . import views

urlpatterns = [
    path("<int:pk>/", views.contract_detail, name="contract-detail"),
    path("<int:pk>/uptime/", contract_uptime_page, name="contract-uptime"),
]
