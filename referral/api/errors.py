"""The app's errors under /api/ as problem details (never an HTML page): unknown URLs, 405, 413, 429,
500, outages. The app's error handlers (referral/__init__.py, outages.py) ask `under_api()` first."""

from __future__ import annotations

from flask import Response, request

from .problems import problem

PREFIX = "/api/"

TEXTS = {
    400: ("Ungültige Anfrage", "Die Anfrage konnte nicht verarbeitet werden."),
    401: ("Nicht angemeldet", "Es fehlt ein gültiges Zugriffstoken."),
    403: ("Keine Berechtigung", "Dieser Zugang darf das nicht."),
    404: ("Nicht gefunden", "Diese Adresse gibt es in der Schnittstelle nicht, oder das Objekt ist nicht sichtbar."),
    405: ("Methode nicht erlaubt", "Diese HTTP-Methode ist für diese Adresse nicht vorgesehen."),
    406: ("Nicht annehmbar", "Die Schnittstelle antwortet nur mit JSON (oder der Datei selbst)."),
    409: ("Gleichzeitige Änderung", "Die Mitteilung wurde gleichzeitig geändert. Bitte neu laden und erneut senden."),
    413: ("Anfrage zu groß", "Die gesendeten Daten sind zu groß."),
    415: ("Format nicht unterstützt", "Dieses Format der Anfrage wird nicht unterstützt."),
    429: (
        "Zu viele Anfragen",
        "Dieser Zugang hat zu viele Anfragen gesendet. Bitte nach Retry-After erneut versuchen.",
    ),
    500: ("Interner Fehler", "Es ist ein Fehler aufgetreten. Der Fehler ist protokolliert; bitte erneut versuchen."),
    503: ("Vorübergehend nicht erreichbar", "Die Schnittstelle ist gerade nicht erreichbar. Bitte später erneut."),
}


def under_api() -> bool:
    return request.path.startswith(PREFIX)


def http_problem(code: int, headers: dict[str, str] | None = None, detail: str | None = None) -> Response:
    title, text = TEXTS.get(code, (f"Fehler {code}", "Die Anfrage konnte nicht verarbeitet werden."))
    if code == 429:
        from .token import retry_after

        headers = {"Retry-After": str(retry_after()), **(headers or {})}
    kind = {404: "not-found", 429: "rate-limited", 503: "unavailable", 409: "concurrent-change"}.get(code, "")
    return problem(code, title, detail or text, kind, headers=headers)
