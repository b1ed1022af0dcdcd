"""The floor of `benchmarks/scale.py`: a bare Flask + Jinja app that serves the inbox's HTML.

    FLOOR_TEMPLATE=/path/inbox.html gunicorn -c gunicorn.conf.py benchmarks.floor:app

The template is the real inbox page as the app rendered it once (scale.py captures it), the logout
form's token made a template variable again: the same bytes over the same gunicorn settings, with
no database, no session and no extensions. What any Flask page costs at the least.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask, render_template

template = Path(os.environ["FLOOR_TEMPLATE"])
app = Flask(__name__, template_folder=str(template.parent))


@app.get("/inbox")
def inbox():
    return render_template(template.name, token=secrets.token_urlsafe(40))
