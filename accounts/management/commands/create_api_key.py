from django.core.management.base import BaseCommand, CommandError

from accounts.services import api_key_create, user_get_or_create


class Command(BaseCommand):
    help = "Create an API key (and the user, if needed); prints the key alone on stdout."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True)
        parser.add_argument("--mode", required=True, choices=["test", "live"])
        parser.add_argument("--name", default="")

    def handle(self, *args, email: str, mode: str, name: str, **options):
        if "@" not in email:
            raise CommandError(f"Not an email address: {email!r}")
        user = user_get_or_create(email=email)
        _, secret = api_key_create(user=user, mode=mode, name=name or f"{mode} key")
        self.stdout.write(secret)
