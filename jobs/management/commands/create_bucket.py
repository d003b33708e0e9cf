import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "Create the results bucket (AWS_STORAGE_BUCKET_NAME) unless it exists, waiting up to "
        "--wait seconds for its S3 endpoint to answer (a SeaweedFS or MinIO starting beside)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--wait", type=float, default=0.0, metavar="SECONDS")

    def handle(self, *args: Any, wait: float, **options: Any) -> None:
        name = getattr(default_storage, "bucket_name", None)  # django-storages' S3Storage
        if not name:
            raise CommandError("Results are local files: set AWS_STORAGE_BUCKET_NAME.")
        client = default_storage.connection.meta.client  # type: ignore[attr-defined]
        deadline = time.monotonic() + wait
        while True:
            try:
                client.head_bucket(Bucket=name)
                self.stdout.write(f"Bucket {name} exists.")
                return
            except ClientError as err:
                status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                if status == 404:
                    region = client.meta.region_name
                    location = (
                        {"CreateBucketConfiguration": {"LocationConstraint": region}}
                        if region and region != "us-east-1"
                        else {}
                    )
                    client.create_bucket(Bucket=name, **location)
                    self.stdout.write(f"Bucket {name} created.")
                    return
                if status < 500 or time.monotonic() > deadline:  # 403: not ours to fix
                    raise CommandError(f"Bucket {name}: {err}") from err
            except BotoCoreError as err:  # nothing listens yet
                if time.monotonic() > deadline:
                    raise CommandError(f"Bucket {name}: {err}") from err
            time.sleep(0.5)
