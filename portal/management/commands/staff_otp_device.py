import io

import qrcode
from django.core.management.base import BaseCommand, CommandError
from django_otp import user_has_device

from portal.core.staff_otp import device_from_command
from portal.models import User


class Command(BaseCommand):
    help = (
        "Give a staff member an authenticator app (TOTP) and recovery codes: prints the otpauth:// URL, "
        "its QR code and the codes. For the first superuser, or one who lost their phone (--replace)."
    )

    def add_arguments(self, parser):
        parser.add_argument("email", help="the staff member's email")
        parser.add_argument(
            "--replace",
            action="store_true",
            help="replace the devices the staff member already has (they stop working)",
        )
        parser.add_argument("--no-qr", action="store_true", help="print the URL without drawing its QR code")

    def handle(self, *args, email, replace, no_qr, **options):
        user = User.objects.filter(email__iexact=email.strip()).first()
        if user is None:
            raise CommandError(f"No user {email}.")
        if not user.is_staff:
            raise CommandError(f"{user.email} is not staff: only staff sign in with a second factor.")
        if user_has_device(user, confirmed=True) and not replace:
            raise CommandError(
                f"{user.email} already has a device. --replace makes a new one; the current one stops working."
            )
        device, codes = device_from_command(user=user)
        url = device.config_url
        self.stdout.write(f"Authenticator app for {user.email}: scan the QR code, or open this URL on the phone:")
        self.stdout.write(f"  {url}")
        if not no_qr:
            qr = qrcode.QRCode(border=2)
            qr.add_data(url)
            drawing = io.StringIO()
            qr.print_ascii(out=drawing, invert=True)
            self.stdout.write(drawing.getvalue())
        self.stdout.write(
            "Recovery codes (each signs in once in place of the app's code; keep them away from the phone):"
        )
        for code in codes:
            self.stdout.write(f"  {code}")
        self.stdout.write(self.style.SUCCESS("Done: the staff site now asks for the app's code after the password."))
