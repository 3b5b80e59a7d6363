"""``manage.py wscommands_schema``: the API as AsyncAPI 3.0 and TypeScript, no server needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.module_loading import import_string

from ... import Registry, __version__, registry
from ...schema.asyncapi import asyncapi
from ...schema.document import api_document
from ...schema.typescript import typescript


class Command(BaseCommand):
    """Write the registered commands and declared pushes as AsyncAPI 3.0 and/or TypeScript."""

    help = (
        "Write the API (every registered command and declared push) as an AsyncAPI 3.0 JSON "
        "document and/or TypeScript declarations for the browser client. With neither "
        "option, the AsyncAPI document goes to standard output."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--asyncapi", metavar="FILE", help="write AsyncAPI 3.0 (JSON) here")
        parser.add_argument("--typescript", metavar="FILE", help="write the .d.ts here")
        parser.add_argument("--title", default="", help="info.title (default: the settings module)")
        parser.add_argument(
            "--api-version", dest="api_version", default=__version__, help="info.version"
        )
        parser.add_argument("--address", default="/ws/", help="the WebSocket's path (default /ws/)")
        parser.add_argument(
            "--registry",
            metavar="DOTTED.PATH",
            help="a Registry, or a consumer class serving one (default: the one @command fills)",
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="write nothing; fail if the files differ from what would be written",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        chosen = registry
        if options["registry"]:
            try:
                found = import_string(options["registry"])
            except ImportError as exc:
                raise CommandError(f"--registry {options['registry']}: {exc}") from None
            chosen = getattr(found, "registry", found)
            if not isinstance(chosen, Registry):
                raise CommandError(
                    f"--registry {options['registry']} is neither a Registry nor a consumer "
                    "class with a registry attribute"
                )
        document = api_document(chosen)
        source = settings.SETTINGS_MODULE or "the project"
        outputs: dict[str, str] = {}
        if options["typescript"]:
            outputs[options["typescript"]] = typescript(document, source)
        if options["asyncapi"] or not options["typescript"]:
            spec = asyncapi(
                document,
                title=options["title"] or f"{source} WebSocket commands",
                version=options["api_version"],
                address=options["address"],
            )
            text = json.dumps(spec, indent=2, ensure_ascii=False) + "\n"
            if not options["asyncapi"]:
                self.stdout.write(text, ending="")
                return
            outputs[options["asyncapi"]] = text
        stale = []
        for path, text in outputs.items():
            target = Path(path)
            if options["check"]:
                if not target.exists() or target.read_text() != text:
                    stale.append(path)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            self.stdout.write(f"wrote {path}")
        if stale:
            raise CommandError(
                f"out of date: {', '.join(stale)}. Run manage.py wscommands_schema again "
                "without --check and commit the result."
            )
