from django.urls import path

from credits.views import contract_uptime_page
from portal.site import contract_views as views
from portal.site.people_views import contract_contacts, contract_make_default

urlpatterns = [
    path("", views.contract_list, name="contract-list"),
    path("<int:pk>/", views.contract_detail, name="contract-detail"),
    path("<int:pk>/contacts/", contract_contacts, name="contract-contacts"),
    path("<int:pk>/default/", contract_make_default, name="contract-make-default"),
    path("<int:pk>/uptime/", contract_uptime_page, name="contract-uptime"),
    path("<int:pk>/statement/", views.contract_statement_pick, name="contract-statement-pick"),
    path("<int:pk>/statement/<str:month>/", views.contract_statement_page, name="contract-statement"),
    path("<int:pk>/statement/<str:month>.pdf", views.contract_statement_pdf, name="contract-statement-pdf"),
]
