from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.selectors import credit_balance
from accounts.services import credit_grant


class Command(BaseCommand):
    help = "Add credits to an account and print its new balance."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True)
        parser.add_argument("--amount", required=True, type=int)
        parser.add_argument("--note", default="Operator grant")

    def handle(self, *args, email: str, amount: int, note: str, **options):
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            raise CommandError(f"No account with the email {email}")
        if amount <= 0:
            raise CommandError("--amount must be a positive number of credits")
        credit_grant(user=user, amount=amount, note=note)
        self.stdout.write(str(credit_balance(user=user)))
