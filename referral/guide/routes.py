"""Pages of the guide: the current version, old versions, and the coordinator's editor."""

from __future__ import annotations

from flask import Blueprint

from . import models  # noqa: F401  # the tables belong to the app's metadata

blueprint = Blueprint("guide", __name__, url_prefix="/leitfaden")
