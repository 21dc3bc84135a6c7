urlpatterns: list = []  # filled by the tickets API
