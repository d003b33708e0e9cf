import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def random_token(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def job_id_new(*, livemode: bool) -> str:
    return ("job_" if livemode else "job_test_") + random_token(24)
