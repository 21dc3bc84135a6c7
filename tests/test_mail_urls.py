"""The inbound mailbox's URL (portal.domain.mail_urls) and the IMAP date-time the poller reads
(tickets.mailbox_poll.internaldate): pure, without a server."""

from datetime import UTC, datetime

import pytest

from portal.domain.mail_urls import imap_url
from tickets import mailbox_poll


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "imaps://support%40kaluari.com:p%40ss%3Aw%2Frd@mail.example.com/Support%20In",
            {
                "SSL": True,
                "HOST": "mail.example.com",
                "PORT": 993,
                "USER": "support@kaluari.com",
                "PASSWORD": "p@ss:w/rd",
                "FOLDER": "Support In",
            },
        ),
        (
            "imap://alice:secret@127.0.0.1:1143",
            {"SSL": False, "HOST": "127.0.0.1", "PORT": 1143, "USER": "alice", "PASSWORD": "secret", "FOLDER": "INBOX"},
        ),
        ("", None),
    ],
)
def test_the_imap_url_is_read_like_a_database_url(url, expected):
    assert imap_url(url) == expected


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("pop3://a:b@host/INBOX", "imap:// or imaps://"),
        ("imaps://host/INBOX", "names the user, the password and the host"),
        ("imaps://a@host/INBOX", "names the user, the password and the host"),
        ("imaps://a:b@host:99999/INBOX", "port"),
    ],
)
def test_a_bad_imap_url_says_what_is_wrong(url, error):
    with pytest.raises(ValueError, match=error):
        imap_url(url)


def test_internaldate_is_read_in_utc_whatever_the_locale():
    assert mailbox_poll.internaldate(b" 6-Dec-2026 09:00:00 +0130") == datetime(2026, 12, 6, 7, 30, tzinfo=UTC)
    with pytest.raises(ValueError):
        mailbox_poll.internaldate(b"2026-12-06T09:00:00Z")
