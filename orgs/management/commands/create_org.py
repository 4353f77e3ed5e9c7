import getpass
import secrets

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.text import slugify

from orgs.services import create_organization


class Command(BaseCommand):
    help = "Create an organization and its first admin (who may already have an account)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="The organization's name, e.g. 'Acme Inc.'")
        parser.add_argument("admin_email", help="The first admin's email address.")
        parser.add_argument("--slug", help="The address part: /o/<slug>/ (default: from name).")
        parser.add_argument("--admin-name", default="", help="The admin's full name.")
        parser.add_argument("--password", help="The admin's password (asked if omitted).")

    def handle(self, *args, name, admin_email, slug=None, admin_name="", password=None, **opts):
        slug = slug or slugify(name)
        if not slug:
            raise CommandError("Give a --slug: the name has no letters to build one from.")
        generated = False
        if password is None:
            if opts.get("interactive", True) and self.stdin_isatty():
                password = getpass.getpass("Password for the admin: ")
            else:
                password, generated = secrets.token_urlsafe(12), True
        try:
            org, user = create_organization(name=name, slug=slug, admin_email=admin_email,
                                            admin_password=password, admin_name=admin_name)
        except ValidationError as e:
            raise CommandError(" ".join(e.messages)) from None
        self.stdout.write(self.style.SUCCESS(f"Created {org.name} at /o/{org.slug}/"))
        self.stdout.write(f"Admin: {user.email}" + (f"  password: {password}" if generated else ""))

    @staticmethod
    def stdin_isatty():
        import sys

        return sys.stdin is not None and sys.stdin.isatty()
