def portal(request):
    user = getattr(request, "user", None)
    organisation = getattr(user, "organisation", None) if getattr(user, "is_authenticated", False) else None
    return {"current_organisation": organisation}
