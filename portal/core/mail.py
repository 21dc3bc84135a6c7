"""The embedded default's email backend: each message as a file under var/mail/, and one line
on the console so that someone running `make run` sees mail go out."""

import sys

from django.core.mail.backends.filebased import EmailBackend


class FileAndConsoleBackend(EmailBackend):
    def send_messages(self, email_messages):
        count = super().send_messages(email_messages)
        for message in email_messages or []:
            sys.stdout.write(f"[mail] to {', '.join(message.to)}: {message.subject} (saved under {self.file_path})\n")
        sys.stdout.flush()
        return count
