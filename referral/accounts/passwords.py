"""The password policy's messages in German.

Flask-Security-Too checks length and asks zxcvbn for a strength estimate; zxcvbn explains its
verdict in English only, so its fixed warnings are translated here.
"""

from __future__ import annotations

import re

from flask import current_app
from flask_security import PasswordUtil

TOO_WEAK = (
    "Das Passwort ist zu leicht zu erraten. Wählen Sie mindestens {length} Zeichen, am besten einige "
    "Wörter, die nicht zusammengehören (zum Beispiel „Fuchs-Laterne-Mondsichel-47“)."
)

ZXCVBN_GERMAN = {
    "This is a top-10 common password.": "Es gehört zu den häufigsten Passwörtern.",
    "This is a top-100 common password.": "Es gehört zu den häufigsten Passwörtern.",
    "This is a very common password.": "Es ist ein sehr häufiges Passwort.",
    "This is similar to a commonly used password.": "Es ähnelt einem häufig verwendeten Passwort.",
    "A word by itself is easy to guess.": "Ein einzelnes Wort ist leicht zu erraten.",
    "Names and surnames by themselves are easy to guess.": "Namen allein sind leicht zu erraten.",
    "Common names and surnames are easy to guess.": "Häufige Namen sind leicht zu erraten.",
    "Straight rows of keys are easy to guess.": "Tastenreihen sind leicht zu erraten.",
    "Short keyboard patterns are easy to guess.": "Kurze Tastaturmuster sind leicht zu erraten.",
    'Repeats like "aaa" are easy to guess.': "Wiederholungen wie „aaa“ sind leicht zu erraten.",
    'Repeats like "abcabcabc" are only slightly harder to guess than "abc".': (
        "Wiederholungen wie „abcabcabc“ sind kaum schwerer zu erraten als „abc“."
    ),
    'Sequences like "abc" or "6543" are easy to guess.': "Folgen wie „abc“ oder „6543“ sind leicht zu erraten.",
    "Recent years are easy to guess.": "Jahreszahlen sind leicht zu erraten.",
    "Dates are often easy to guess.": "Daten sind oft leicht zu erraten.",
}


def personal_words(is_register: bool, kwargs: dict) -> dict[str, str]:
    """The person's name, e-mail address and phone, whole and in parts ("nora", "neumann"), so that
    zxcvbn treats a password built from them as easy to guess."""
    user = kwargs.get("user")
    if not is_register and user is not None:
        values = [user.name, user.email, getattr(user, "phone", "")]
    else:
        values = [v for v in kwargs.values() if isinstance(v, str)]
    words = set()
    for value in filter(None, values):
        value = value.strip().lower()
        words.add(value)
        words.add(re.sub(r"[^a-zäöüß0-9]+", "", value.split("@")[0]))  # "adamadler"
        words.update(part for part in re.split(r"[^a-zäöüß0-9]+", value.split("@")[0]) if len(part) >= 3)
        if "@" in value:
            words.update(part for part in re.split(r"[^a-z0-9]+", value.split("@")[1]) if len(part) >= 4)
    return {f"info{i}": word for i, word in enumerate(sorted(words))}


OWN_NAME = (
    "Das Passwort besteht im Wesentlichen aus Ihrem Namen oder Ihrer E-Mail-Adresse. Wählen Sie "
    "bitte Wörter, die nichts mit Ihnen zu tun haben."
)


def mostly_personal(password: str, words: dict[str, str]) -> bool:
    """What is left of the password without the person's own words, digits and separators is tiny."""
    rest = password.lower()
    for word in sorted(words.values(), key=len, reverse=True):
        if len(word) >= 3:
            rest = rest.replace(word, "")
    return len(re.sub(r"[^a-zäöüß]", "", rest)) < 4


class GermanPasswordUtil(PasswordUtil):
    def validate(self, password: str, is_register: bool, **kwargs):
        words = personal_words(is_register, kwargs)
        problems, normalized = super().validate(password, True, **words)
        if not problems and normalized and words and mostly_personal(normalized, words):
            return [OWN_NAME], normalized
        if problems:
            translated = [ZXCVBN_GERMAN.get(str(p), str(p)) for p in problems]
            if any(str(p) in ZXCVBN_GERMAN or str(p).isascii() for p in problems):
                too_weak = TOO_WEAK.format(length=current_app.config["SECURITY_PASSWORD_LENGTH_MIN"])
                translated = [t for t in translated if not t.isascii()] + [too_weak]
            problems = translated
        return problems, normalized


def forgot_password_form():
    """Flask-Security's "forgot password" form, telling a typing mistake apart from an unknown address.

    Errors of the e-mail field are suppressed by Flask-Security (so as not to reveal accounts); a
    missing or malformed address says nothing about accounts, so it comes back as a form error."""
    from flask_security.forms import ForgotPasswordForm

    class GermanForgotPasswordForm(ForgotPasswordForm):
        def validate(self, **kwargs):
            value = (self.email.data or "").strip()
            if not value:
                self.form_errors.append("Bitte die E-Mail-Adresse angeben.")
                return False
            if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
                self.form_errors.append("Bitte eine gültige E-Mail-Adresse angeben, z. B. name@schule.example.")
                return False
            return super().validate(**kwargs)

    return GermanForgotPasswordForm
