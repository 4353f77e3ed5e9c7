"""Emails with a one-click unsubscribe link.

A ``List-Unsubscribe`` header holds one long URL with no space in it. Under the default policy
(lines of 78 characters) Python folds such a header into RFC 2047 encoded words, which mail
clients do not read as a URL. RFC 5322 allows lines up to 998 characters, so these messages
are rendered with that limit and the header stays a plain ``<https://...>``.
"""

import email.policy

from django.core.mail import EmailMultiAlternatives

RFC5322_MAX_LINE = 998


class LongLineEmail(EmailMultiAlternatives):
    """What the outbox hands to the mail server."""

    def message(self, *, policy=email.policy.default):
        # Whatever policy the backend asks for (SMTP passes its own), keep long lines whole.
        return super().message(policy=policy.clone(max_line_length=RFC5322_MAX_LINE))


class UnsubscribableEmail(LongLineEmail):
    def __init__(self, subject, body, to, *, unsubscribe_url):
        super().__init__(subject, body, None, to, headers={
            "List-Unsubscribe": f"<{unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        })
