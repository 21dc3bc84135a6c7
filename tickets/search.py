"""Ticket search: staff in the queue (every ticket they may see, internal notes included) and
customers on their ticket list (their organisation's tickets, public messages only).

What a search looks at: the ticket's number ("#123" finds ticket 123 alone; "123" finds it first,
then the texts with the word 123), its subject,
description and steps, its messages, the organisation's name and the filer's email (its beginning:
"alice" finds alice@acme.example's tickets).

PostgreSQL: full-text search. Each ticket stores its document (subject, weight A; description and
steps, C; messages, D), written here alone (`documents_refresh`, called by the services that file a
ticket or add a message; tickets/migrations/0015 filled the older tickets' with its own copy of the
statement), and found through a GIN index;
a query is read as `websearch_to_tsquery` reads it (words, "a phrase", -word, or) and ranked by
`ts_rank`. `search_document` holds everything staff see; `search_public` the same without internal
notes, kept only for the tickets that have some (NULL: the customer's document is search_document),
so customers never find a ticket by a word of a note. The organisation's name and the filer's email
are matched where they live (a rename is found at once): the query's organisations and filers are
read first, in one query, and their tickets join the text's.

SQLite (the embedded default): the same fields with icontains, each word (or "phrase") somewhere in
them, -word in none; the same tickets as PostgreSQL for plain words (PostgreSQL also finds a word's
other forms and ignores stop words). Ranked only by whether the subject has the first word.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.db import connection
from django.db.models import Case, Exists, F, FloatField, OuterRef, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce

from contracts.models import Organisation
from portal.core.batch import before_commit
from portal.core.ids import as_id
from portal.models import User

from .models import Ticket, TicketMessage

CONFIG = "english"  # the text search configuration: English stems and stop words
MAX_LENGTH = 200  # characters of a query
MESSAGES_TEXT = 200_000  # characters of a ticket's messages in its document (a tsvector holds 1 MB)
RANKED = 1000  # matches ranked at most (best_first); beyond, the list's own order
NUMBER = re.compile(r"#?\s*(\d{1,18})")


class WordsQuery(SearchQuery):
    """websearch_to_tsquery with the words written into the statement instead of bound to it, for
    the customer's list. PostgreSQL keeps a statement prepared after five runs (portal/settings.py)
    and may then plan it once for any parameters. The customer's search is two conditions whose
    best plan depends on both values, the organisation and the words: after a few searches the one
    plan read a big organisation's 50,000 tickets one by one, 190 ms for a common word that its own
    plan finds in 36 (bench/RESULTS.md, session 13). Written in, each search is planned for its
    words. The staff queue's search goes through the words' index alone, one plan fits every search
    (measured the same), and keeps its parameter: planned once, its page is 0.6 ms faster."""

    def as_sql(self, compiler, connection, **extra_context):
        sql, params = super().as_sql(compiler, connection, **extra_context)
        # Quoted by the driver; "%" doubled: the statement still goes through placeholder parsing.
        return connection.ops.compose_sql(sql, params).replace("%", "%%"), []


class SearchError(ValueError):
    """A query that cannot be searched: the page says why and shows no tickets."""


@dataclass(frozen=True)
class Search:
    text: str
    number: int | None  # "123" or "#123": ticket 123


def parse(raw: str | None) -> Search | None:
    """What a person typed in a search box; None when there is nothing to search."""
    text = " ".join((raw or "").split())
    if not text:
        return None
    if len(text) > MAX_LENGTH:
        raise SearchError(f"Search with at most {MAX_LENGTH} characters (this was {len(text):,}).")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text):
        raise SearchError("The search has characters that cannot be searched for.")
    if not any(ch.isalnum() for ch in text):
        raise SearchError("Type a word, a phrase or a ticket number to search for.")
    if not any(wanted for _, wanted in _terms(text)):
        raise SearchError("Say what to find, not only what to leave out (-word).")
    match = NUMBER.fullmatch(text)
    return Search(text=text, number=as_id(match.group(1)) if match else None)


def postgres() -> bool:
    return connection.vendor == "postgresql"


# --- Finding ---------------------------------------------------------------------------------------
def tickets_search(qs: QuerySet[Ticket], search: Search, *, staff: bool) -> QuerySet[Ticket]:
    """`qs` (already scoped and filtered) narrowed to the tickets `search` finds, annotated with
    `search_rank` (higher first; the ticket a number names first of all). Staff find internal
    notes' words; customers never do, and never another organisation's ticket: `qs` is theirs."""
    if search.number is None:
        orgs, filers = _people(search, staff=staff)
        found = Q(organisation_id__in=orgs) | Q(created_by_id__in=filers)
    else:  # a number is a ticket's (or a word in a text), not an organisation's or an address's
        found = Q(pk=search.number)
        if search.text.startswith("#"):  # "#123": that ticket alone
            return qs.filter(found).annotate(search_rank=Value(1.0, output_field=FloatField()))
    if postgres():
        query = (SearchQuery if staff else WordsQuery)(search.text, config=CONFIG, search_type="websearch")
        if staff:
            found |= Q(search_document=query)
            document = F("search_document")
        else:
            found |= Q(search_public__isnull=True, search_document=query) | Q(search_public=query)
            document = Coalesce(F("search_public"), F("search_document"))
        rank = SearchRank(document, query)
    else:
        found |= _contains_terms(search.text, staff=staff)
        first = _terms(search.text)[0]
        rank = Case(When(subject__icontains=first[0], then=Value(1.0)), default=Value(0.0), output_field=FloatField())
    if search.number is not None:
        rank = Case(When(pk=search.number, then=Value(1e6)), default=rank, output_field=FloatField())
    return qs.filter(found).annotate(search_rank=rank)


def best_first(
    found: QuerySet[Ticket], *order, cap: int = RANKED, count: int | None = None
) -> tuple[QuerySet[Ticket], int]:
    """`found` (from tickets_search) best match first, then in `order`, when it holds at most `cap`
    tickets; beyond, in `order` alone: ranking means reading every match (a word in a sixth of the
    100,000 active tickets: 16,000 rows read and ranked for a page of 25, bench/RESULTS.md session 8),
    and nobody reads a thousand results by rank: more words rank them. Returns the ordered tickets
    and how many there are, counted up to cap + 1 (the queue's paginator takes that count), unless
    the caller counted them all already (`count`: the API's pages say how many there are)."""
    if count is None:
        count = found.order_by().values("pk")[: cap + 1].count()
    return (found.order_by("-search_rank", *order) if count <= cap else found.order_by(*order)), count


def no_results(qs: QuerySet[Ticket]) -> QuerySet[Ticket]:
    """What a search that cannot run shows: nothing, ordered as a search's results are."""
    return qs.annotate(search_rank=Value(0.0, output_field=FloatField())).none()


def _people(search: Search, *, staff: bool) -> tuple[list[int], list[int]]:
    """The organisations whose name the query matches (staff only: a customer's are all one) and
    the filers whose email starts with it (no spaces: "alice", "alice@acme.example"), in one query."""
    text = search.text
    if postgres():
        orgs = Organisation.objects.annotate(found=SearchVector("name", config=CONFIG)).filter(
            found=SearchQuery(text, config=CONFIG, search_type="websearch")
        )
    else:
        orgs = Organisation.objects.filter(name__icontains=text)
    orgs = orgs.annotate(kind=Value("o")).values_list("kind", "pk").order_by()
    users = User.objects.filter(is_staff=False, email__istartswith=text) if " " not in text else User.objects.none()
    users = users.annotate(kind=Value("u")).values_list("kind", "pk").order_by()
    rows = list(orgs.union(users, all=True)) if staff else list(users)
    return [pk for kind, pk in rows if kind == "o"], [pk for kind, pk in rows if kind == "u"]


def _terms(text: str) -> list[tuple[str, bool]]:
    """(term, wanted) pairs of a query as websearch reads it: "a phrase" is one term, -word is
    unwanted, "or" is dropped (SQLite: every term must be there)."""
    terms = []
    for phrase, word in re.findall(r'"([^"]*)"|(\S+)', text):
        term = phrase or word
        wanted = not (word.startswith("-") and len(word) > 1)
        term = term if wanted else term[1:]
        term = term.strip("\"'")
        if term and term.lower() != "or":
            terms.append((term, wanted))
    return terms or [(text, True)]


def _contains_terms(text: str, *, staff: bool) -> Q:
    found = Q()
    for term, wanted in _terms(text):
        messages = TicketMessage.objects.filter(ticket=OuterRef("pk"), body__icontains=term)
        if not staff:
            messages = messages.filter(internal=False)
        anywhere = (
            Q(subject__icontains=term)
            | Q(description__icontains=term)
            | Q(steps_to_reproduce__icontains=term)
            | Q(Exists(messages))
        )
        found &= anywhere if wanted else ~anywhere
    return found


# --- Keeping the documents ------------------------------------------------------------------------
# Subject (A), description and steps (C), messages (D): public ones in both documents, internal
# notes only in search_document; search_public only where the ticket has notes.
_REFRESH = f"""
UPDATE tickets_ticket t
   SET search_document = d.head || setweight(to_tsvector('{CONFIG}', coalesce(d.public, '')), 'D')
                         || setweight(to_tsvector('{CONFIG}', coalesce(d.notes, '')), 'D'),
       search_public = CASE WHEN d.notes IS NULL THEN NULL
                            ELSE d.head || setweight(to_tsvector('{CONFIG}', coalesce(d.public, '')), 'D') END
  FROM (SELECT x.id,
               setweight(to_tsvector('{CONFIG}', x.subject), 'A')
               || setweight(to_tsvector('{CONFIG}', x.description || ' ' || x.steps_to_reproduce), 'C') AS head,
               (SELECT left(string_agg(m.body, ' ' ORDER BY m.id), {MESSAGES_TEXT}) FROM tickets_ticketmessage m
                 WHERE m.ticket_id = x.id AND NOT m.internal) AS public,
               (SELECT left(string_agg(m.body, ' ' ORDER BY m.id), {MESSAGES_TEXT}) FROM tickets_ticketmessage m
                 WHERE m.ticket_id = x.id AND m.internal) AS notes
          FROM tickets_ticket x WHERE {{where}}) d
 WHERE t.id = d.id
"""  # noqa: S608 - constants only; the ids are parameters


def documents_refresh(ticket_ids) -> None:
    """Write the search documents of these tickets from their rows and messages (PostgreSQL; the
    SQLite fallback reads the rows themselves). One statement, whatever the number of tickets:
    inside a portal.core.batch, one for the batch's tickets before its commit."""
    ids = list(ticket_ids)
    if ids and postgres() and not before_commit(_refresh, ids):
        _refresh(ids)


def _refresh(ids: list[int]) -> None:
    if ids:
        with connection.cursor() as cursor:
            cursor.execute(_REFRESH.format(where="x.id = ANY(%s)"), [ids])


def documents_fill(*, batch: int = 20_000) -> int:
    """Every ticket's documents, in batches of ids (the bench datasets, whose rows bypass the
    services). Returns how many batches ran."""
    if not postgres():
        return 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(min(id), 0), coalesce(max(id), -1) FROM tickets_ticket")
        low, high = cursor.fetchone()
        runs = 0
        for start in range(low, high + 1, batch):
            cursor.execute(_REFRESH.format(where="x.id >= %s AND x.id < %s"), [start, start + batch])
            runs += 1
    return runs
