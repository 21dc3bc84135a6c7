"""The page a rating link opens (tickets.satisfaction): no sign-in, the signed token is the proof.

A GET only shows the page, the link's rating chosen, with a comment box and one button: mail
scanners follow every link of an email, so a GET records nothing (docs/decisions.md, "Satisfaction
ratings"). The POST records the rating, or changes the one recorded; it needs no session and no
CSRF token, as the unsubscribe page (the token rates exactly one ticket, as its filer).
"""

from django import forms
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from .models import TicketRating
from .satisfaction import RATING_MAX_AGE, BadToken, ticket_rate, token_read

Rating = TicketRating.Rating


class RatingForm(forms.Form):
    rating = forms.ChoiceField(
        label="Your rating", choices=Rating.choices, widget=forms.RadioSelect,
        error_messages={"required": "Choose good or bad.", "invalid_choice": "Choose good or bad."},
    )  # fmt: skip
    comment = forms.CharField(
        label="Comment", required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 4}),
        help_text="What went well, or what we should have done better. Our support team reads it.",
    )  # fmt: skip


@csrf_exempt
@never_cache  # it names a person's ticket; no shared cache keeps it
@require_http_methods(["GET", "POST"])
def ticket_rate_page(request, token: str):
    try:
        target = token_read(token)
    except BadToken as exc:
        return render(request, "tickets/rating_invalid.html", {"reason": str(exc)}, status=400)
    current = TicketRating.objects.filter(ticket=target.ticket).first()
    context = {"ticket": target.ticket, "current": current, "valid_days": RATING_MAX_AGE.days}
    if request.method == "GET":
        chosen = request.GET.get("rating")
        initial = {
            "rating": chosen if chosen in Rating.values else (current.rating if current else None),
            "comment": current.comment if current else "",
        }
        return render(request, "tickets/rating.html", {**context, "form": RatingForm(initial=initial)})
    form = RatingForm(request.POST)
    if not form.is_valid():
        return render(request, "tickets/rating.html", {**context, "form": form}, status=400)
    rating = ticket_rate(
        ticket=target.ticket, user=target.user, rating=form.cleaned_data["rating"], comment=form.cleaned_data["comment"]
    )
    done = {**context, "current": rating, "done": True, "changed": current is not None}
    return render(
        request,
        "tickets/rating.html",
        {**done, "form": RatingForm(initial={"rating": rating.rating, "comment": rating.comment})},
    )
