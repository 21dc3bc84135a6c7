"""Upload checks shared by the portal forms and the API: a size limit and an allow-list of
types decided on the content (the filetype package reads the magic bytes), not on the name; and
the one way a stored file is served back (attachment_response)."""

from __future__ import annotations

import filetype
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404

# Binary types recognised by their magic bytes.
ALLOWED_BINARY = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "application/pdf": ".pdf",
    "application/zip": ".zip",
    "application/gzip": ".gz",
}
# Every type a stored file may have, and so the Content-Type of its download.
STORED_TYPES = (*ALLOWED_BINARY, "text/plain")
TEXT_SUFFIXES = (".txt", ".log", ".csv", ".json", ".xml", ".yaml", ".yml", ".conf", ".ini")
ACCEPTED = f"images (PNG, JPEG, GIF, WebP), PDF, ZIP/GZip, or text ({', '.join(TEXT_SUFFIXES)})"
MAX_FILES = 5
# A refused type in a person's words, never its MIME type: programs, then filetype's families.
EXECUTABLES = {
    "application/x-msdownload", "application/x-executable", "application/x-mach-binary", "application/x-deb",
    "application/x-rpm", "application/x-google-chrome-extension", "application/wasm", "application/x-shockwave-flash",
}  # fmt: skip
FAMILIES = {"image": "an image", "video": "a video", "audio": "a sound file", "font": "a font",
            "document": "an office document"}  # fmt: skip


def kind_in_words(kind) -> str:
    """“an executable file”, “a video (MP4)”, “a file of type RAR”: what filetype recognised, for the
    person whose upload it refuses."""
    if kind.mime in EXECUTABLES:
        return "an executable file"
    letters = kind.extension.upper()
    family = FAMILIES.get(type(kind).__module__.rsplit(".", 1)[-1])
    if family:
        return f"{family} ({letters})"
    return f"a file of type {letters}"


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        if exc.start < len(head) - 4:
            return False
        text = head[: exc.start].decode("utf-8")
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\r\n\f")
    return controls == 0


def validate_upload(upload) -> str:
    """Return the content type to store, or raise ValidationError with a message for the user."""
    limit = settings.ATTACHMENT_MAX_BYTES
    if upload.size > limit:
        raise ValidationError(f"“{upload.name}” is {upload.size // 1024} KB; the limit is {limit // (1024 * 1024)} MB.")
    if upload.size == 0:
        raise ValidationError(f"“{upload.name}” is empty.")
    upload.seek(0)
    head = upload.read(8192)
    upload.seek(0)
    kind = filetype.guess(head)
    if kind is not None:
        if kind.mime in ALLOWED_BINARY:
            return kind.mime
        raise ValidationError(f"“{upload.name}” is {kind_in_words(kind)}, which is not accepted: {ACCEPTED}.")
    if upload.name.lower().endswith(TEXT_SUFFIXES) and _is_text(head):
        return "text/plain"
    raise ValidationError(f"“{upload.name}” is not an accepted type: {ACCEPTED}.")


def validate_uploads(uploads) -> list[tuple[object, str]]:
    uploads = list(uploads)
    if len(uploads) > MAX_FILES:
        raise ValidationError(f"At most {MAX_FILES} files at once.")
    return [(u, validate_upload(u)) for u in uploads]


def attachment_response(attachment) -> FileResponse:
    """A stored file (a ticket's or a claim's attachment) as a download, never rendered as a page of
    ours whatever its bytes say: every download, the customer's, the staff's, a vulnerability
    reporter's link."""
    try:
        handle = attachment.file.open("rb")
    except FileNotFoundError:
        raise Http404("The file is missing.") from None
    response = FileResponse(
        handle, as_attachment=True, filename=attachment.original_name, content_type=attachment.content_type
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response
