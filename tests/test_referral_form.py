"""The school's form: drafts, validation that keeps what was typed and writes nothing, submission, attachments."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from referral.cases.models import Attachment, AttachmentChunk, Referral
from referral.cases.process import State
from referral.cases.vocabulary import SchoolActionKind
from referral.extensions import db

from . import factories


@pytest.fixture
def teacher(world, login, app):
    app.config["WTF_CSRF_ENABLED"] = False
    return login(world.teacher)


def complete_form(**overrides) -> dict:
    data = {
        "child_first_name": "Henrietta",
        "child_last_name": "Quastenflosser",
        "child_birth_date": "2018-03-01",
        "child_class": "2a",
        "child_address": "Teststraße 1",
        "child_language": "Deutsch",
        "interpreter_needed": "no",
        "persons-0-kind": "mother",
        "persons-0-first_name": "Maria",
        "persons-0-last_name": "Quastenflosser",
        "persons-0-relation": "birth",
        "persons-0-custody": "yes",
        "persons-1-kind": "father",
        "persons-1-first_name": "",
        "persons-1-last_name": "",
        "categories": ["neglect", "physical_abuse"],
        "observed_on": "2026-11-02",
        "observed_by": "Tina Teacher",
        "observation_source": "selbst gesehen",
        "observation": "Blaue Flecken am Oberarm.",
        "child_words": "„Papa war sauer.“",
        "body_marks": ["front:left_upper_arm", "back:upper_back"],
        "affected_informed": "no_endangers",
        "affected_informed_reason": "Der Vater würde das Kind bestrafen.",
        "urgency": "urgent",
        "reporter_name": "Tina Teacher",
        "reporter_function": "teacher",
        "reporter_phone": "0123 456",
        "reporter_reachable": "vormittags",
    }
    for i, kind in enumerate(SchoolActionKind):
        data[f"school_actions-{i}-kind"] = kind.value
        data[f"school_actions-{i}-done"] = "yes"
        data[f"school_actions-{i}-done_on"] = "2026-11-01"
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def referral_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Referral))


def field_error(html: str, field_id: str) -> str:
    """The error text tied to a field by aria-describedby; empty when there is none."""
    tag = re.search(rf'<(?:input|textarea|select|fieldset)[^>]*(?:id|name)="{re.escape(field_id)}[^"]*"[^>]*>', html)
    match = re.search(rf'id="{re.escape(field_id)}-fehler">([^<]*)<', html)
    if match and tag:
        return match.group(1)
    return ""


def test_new_referral_page_shows_the_duty_phone_and_110(teacher, world):
    html = teacher.get("/referrals/new").get_data(as_text=True)
    assert "02325 111" in html and ">110<" in html
    assert "Vernachlässigung" in html and "Grundbedürfnisse" in html  # help text with examples per category


def test_save_an_incomplete_draft_and_continue_later(teacher, world):
    response = teacher.post(
        "/referrals/new",
        data={
            "child_first_name": "Henrietta",
            "save": "1",
            **{f"school_actions-{i}-kind": k.value for i, k in enumerate(SchoolActionKind)},
            "persons-0-kind": "mother",
        },
    )
    assert response.status_code == 302
    referral = db.session.scalars(select(Referral)).one()
    assert referral.state is State.DRAFT and referral.number is None and referral.child_first_name == "Henrietta"
    page = teacher.get(response.headers["Location"]).get_data(as_text=True)
    assert 'value="Henrietta"' in page


def test_submitting_incomplete_shows_errors_next_to_fields_keeps_input_and_writes_nothing(teacher, world):
    data = complete_form(child_last_name="", urgency="acute", observation="Ein sehr wichtiger Satz.")
    data["submit"] = "1"
    response = teacher.post("/referrals/new", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert referral_count() == 0
    assert "Bitte den Nachnamen des Kindes angeben." in field_error(html, "child_last_name")
    assert 'aria-describedby="child_last_name-fehler"' in html and 'aria-invalid="true"' in html
    assert "wann Sie den ASD angerufen haben" in field_error(html, "phone_call_at")
    assert "Ein sehr wichtiger Satz." in html and 'value="Henrietta"' in html
    assert 'value="front:left_upper_arm" checked' in html
    assert "Es wurde nichts gespeichert" in html


def test_an_existing_draft_is_unchanged_after_a_failed_submission(teacher, world):
    teacher.post("/referrals/new", data=complete_form(save="1", child_first_name="Vorher"))
    referral = db.session.scalars(select(Referral)).one()
    response = teacher.post(
        f"/referrals/{referral.id}/edit", data=complete_form(child_first_name="Nachher", urgency="", submit="1")
    )
    assert response.status_code == 422
    db.session.expire_all()
    stored = db.session.get(Referral, referral.id)
    assert stored.child_first_name == "Vorher" and stored.state is State.DRAFT and stored.urgency is not None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("child_birth_date", "2018-13-45", "gültiges Datum"),
        ("child_first_name", "x" * 101, "Höchstens 100 Zeichen"),
        ("observed_on", "2999-01-01", "nicht in der Zukunft"),
        ("urgency", "sofort", "angebotenen Möglichkeiten"),
        ("categories", ["neglect", "aliens"], "angebotenen Möglichkeiten"),
        ("body_marks", ["back:face"], "angebotenen Möglichkeiten"),  # the face is not on the back
        ("child_birth_date", "1900-01-01", "zwischen 4 und 14"),
        ("phone_call_at", "2999-01-01T10:00", "nicht in der Zukunft"),
        ("persons-0-kind", "alien", "angebotenen Möglichkeiten"),
        ("persons-0-birth_date", "kein Datum", "Datum"),
    ],
)
def test_bad_input_gets_a_german_message_and_nothing_is_saved(teacher, world, field, value, message):
    response = teacher.post("/referrals/new", data=complete_form(**{field: value}, save="1"))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert referral_count() == 0
    assert field_error(html, field), f"no error tied to {field}"
    assert message in field_error(html, field)
    assert "Traceback" not in html and "Not a valid" not in html and "not a valid" not in html


def test_complete_submission_gets_a_case_number(teacher, world):
    response = teacher.post("/referrals/new", data=complete_form(submit="1"))
    assert response.status_code == 302
    referral = db.session.scalars(select(Referral)).one()
    assert referral.state is State.SUBMITTED
    assert re.fullmatch(r"WE-\d{4}-0001", referral.number)
    assert {m.region.value for m in referral.body_marks} == {"left_upper_arm", "upper_back"}
    assert len(referral.persons) == 1, "the blank father entry is not stored"
    assert [a.done for a in referral.school_actions_in_order] == [True] * 6
    page = teacher.get(response.headers["Location"]).get_data(as_text=True)
    assert referral.number in page and "übermittelt" in page


def test_no_with_reason_is_required_for_each_school_action(teacher, world):
    data = complete_form(**{"school_actions-3-done": "no", "school_actions-3-done_on": ""}, submit="1")
    html = teacher.post("/referrals/new", data=data).get_data(as_text=True)
    assert "nein, weil" in field_error(html, "school_actions-3-reason")
    data["school_actions-3-reason"] = "Keine InsoFa erreichbar."
    assert teacher.post("/referrals/new", data=data).status_code == 302
    action = db.session.scalars(select(Referral)).one().school_actions_in_order[3]
    assert action.kind is SchoolActionKind.INSOFA_CONSULTED
    assert (action.done, action.done_on, action.reason) == (False, None, "Keine InsoFa erreichbar.")


def test_adding_a_person_keeps_everything_and_saves_nothing(teacher, world):
    response = teacher.post("/referrals/new", data=complete_form(add_person="1"))
    html = response.get_data(as_text=True)
    assert 'id="persons-2-kind"' in html and 'value="Maria"' in html
    assert referral_count() == 0


def test_delete_draft_is_gone_for_good(teacher, world):
    teacher.post("/referrals/new", data=complete_form(save="1"))
    referral = db.session.scalars(select(Referral)).one()
    assert teacher.post(f"/referrals/{referral.id}/delete", data={"confirmed": "yes"}).status_code == 302
    assert referral_count() == 0


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _png() -> bytes:
    from io import BytesIO

    from PIL import Image

    out = BytesIO()
    Image.new("RGB", (8, 8), "blue").save(out, format="PNG")
    return out.getvalue()


PNG = _png()


@pytest.fixture
def draft_id(teacher, world):
    teacher.post("/referrals/new", data=complete_form(save="1"))
    return db.session.scalars(select(Referral.id)).one()


def upload(client, referral_id, name, content, **typed):
    """Upload with the draft form, as the page does: what was typed is saved with it."""
    from io import BytesIO

    data = complete_form(upload="1", attachment=(BytesIO(content), name), **typed)
    return client.post(
        f"/referrals/{referral_id}/edit", data=data, content_type="multipart/form-data", follow_redirects=True
    )


def test_attachments_are_checked_by_content_and_served_as_download(teacher, draft_id, app):
    assert "hinzugefügt" in upload(teacher, draft_id, "befund.pdf", PDF).get_data(as_text=True)
    assert "hinzugefügt" in upload(teacher, draft_id, "foto.png", PNG).get_data(as_text=True)
    refused = upload(teacher, draft_id, "harmlos.pdf", b"MZ\x90\x00 not a pdf").get_data(as_text=True)
    assert "Nur PDF-, JPEG- und PNG-Dateien" in refused
    attachments = db.session.scalars(select(Attachment).order_by(Attachment.id)).all()
    assert [(a.filename, a.content_type) for a in attachments] == [
        ("befund.pdf", "application/pdf"),
        ("foto.png", "image/png"),
    ]
    response = teacher.get(f"/referrals/{draft_id}/attachments/{attachments[0].id}")
    assert response.data == PDF
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["Cache-Control"] == "no-store"
    assert not __import__("pathlib").Path(app.config["UPLOAD_FOLDER"]).exists(), "in the database, not on disk"
    chunks = db.session.scalars(select(AttachmentChunk.data)).all()
    assert chunks and not any(PDF[5:] in bytes(c) for c in chunks), "stored encrypted"


def test_attachment_size_is_limited(teacher, draft_id, app):
    app.config["MAX_ATTACHMENT_BYTES"] = 1024
    html = upload(teacher, draft_id, "gross.pdf", PDF + b"0" * 2048).get_data(as_text=True)
    assert "zu groß" in html
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0


def test_request_over_the_limit_gets_a_german_page(teacher, draft_id, app):
    app.config["MAX_CONTENT_LENGTH"] = 2048
    response = upload(teacher, draft_id, "riesig.pdf", PDF + b"0" * 10_000)
    assert response.status_code == 413 and "zu groß" in response.get_data(as_text=True)


def test_deleting_a_draft_removes_its_files(teacher, draft_id, app):
    upload(teacher, draft_id, "befund.pdf", PDF)
    assert db.session.scalar(select(func.count()).select_from(AttachmentChunk)) == 1
    teacher.post(f"/referrals/{draft_id}/delete", data={"confirmed": "yes"})
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0
    assert db.session.scalar(select(func.count()).select_from(AttachmentChunk)) == 0


def test_a_tampered_form_gets_a_german_message_not_a_crash(teacher, world):
    data = complete_form(**{"school_actions-2-kind": "hacked"}, save="1")
    response = teacher.post("/referrals/new", data=data)
    assert response.status_code == 422 and "Seite neu laden" in response.get_data(as_text=True)
    assert referral_count() == 0


def test_at_most_twelve_persons_and_the_input_stays(teacher, world):
    data = complete_form(add_person="1", child_first_name="Bleibt")
    for i in range(2, 12):
        data[f"persons-{i}-kind"] = "household"
    html = teacher.post("/referrals/new", data=data).get_data(as_text=True)
    assert "Höchstens 12 Personen" in html and 'value="Bleibt"' in html
    assert 'name="add_person"' not in html
    assert referral_count() == 0


def test_a_double_click_on_submit_sends_one_referral(teacher, world):
    data = complete_form(submit="1", client_token="form-token-1234567890abcd")
    first = teacher.post("/referrals/new", data=data)
    second = teacher.post("/referrals/new", data=data, follow_redirects=True)
    assert referral_count() == 1
    referral = db.session.scalars(select(Referral)).one()
    assert first.headers["Location"].endswith(f"/referrals/{referral.id}")
    assert f"Diese Mitteilung wurde bereits eingereicht: {referral.number}" in second.get_data(as_text=True)


def test_submitting_a_draft_twice_explains_instead_of_refusing(teacher, world):
    teacher.post("/referrals/new", data=complete_form(save="1"))
    referral = db.session.scalars(select(Referral)).one()
    assert teacher.post(f"/referrals/{referral.id}/edit", data=complete_form(submit="1")).status_code == 302
    again = teacher.post(f"/referrals/{referral.id}/edit", data=complete_form(submit="1"), follow_redirects=True)
    html = again.get_data(as_text=True)
    assert again.status_code == 200 and "nicht möglich" in html and "Aktueller Status: „Eingereicht“" in html
    assert referral_count() == 1


def test_uploading_keeps_what_was_typed(teacher, draft_id):
    html = upload(teacher, draft_id, "befund.pdf", PDF, observation="Neu getippt vor dem Hochladen.").get_data(
        as_text=True
    )
    assert "Anhang hinzugefügt" in html
    db.session.expire_all()
    assert db.session.get(Referral, draft_id).observation == "Neu getippt vor dem Hochladen."


def test_a_refused_upload_is_shown_at_the_file_field(teacher, draft_id):
    from io import BytesIO

    data = complete_form(upload="1", attachment=(BytesIO(b"GIF89a"), "bild.gif"))
    response = teacher.post(f"/referrals/{draft_id}/edit", data=data, content_type="multipart/form-data")
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "Nur PDF-, JPEG- und PNG-Dateien" in field_error(html, "attachment")
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0


def test_ogs_referrals_have_a_feedback_deadline_too(teacher, world):
    teacher.post("/referrals/new", data=complete_form(submit="1", reporter_function="ogs"))
    referral = db.session.scalars(select(Referral)).one()
    assert referral.feedback_due_at is not None and not referral.feedback_owed


# --- Saving while typing (referral-form.js posts the form every few seconds) -------------------


def test_autosave_creates_the_draft_once_and_then_updates_it(world, as_user):
    from sqlalchemy import func, select

    from referral.cases.models import Referral, StateChange

    from .conftest import csrf_token
    from .test_permissions import draft_form

    client = as_user(world.teacher)
    page = client.get("/referrals/new").get_data(as_text=True)
    token = re.search(r'name="client_token"[^>]*value="([^"]+)"', page).group(1)
    data = {**draft_form(world), "client_token": token, "csrf_token": csrf_token(client, "/referrals/new")}
    data.pop("save")
    first = client.post(
        f"/referrals/new/autosave?school={world.schools['a'].id}", data={**data, "child_first_name": "Ha"}
    )
    assert first.status_code == 200 and first.json["saved"] is True
    again = client.post(
        f"/referrals/new/autosave?school={world.schools['a'].id}", data={**data, "child_first_name": "Han"}
    )
    assert again.json["edit_url"] == first.json["edit_url"], "the same form never makes a second draft"
    referral_id = int(first.json["edit_url"].split("/")[2])
    later = client.post(first.json["autosave_url"], data={**data, "child_first_name": "Hannah"})
    assert later.json["saved"] is True
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Referral)) == 1
    assert db.session.get(Referral, referral_id).child_first_name == "Hannah"
    edits = db.session.scalar(
        select(func.count()).select_from(StateChange).where(StateChange.referral_id == referral_id)
    )
    assert edits == 1, "one history entry per sitting, not one per automatic save"

    too_long = client.post(first.json["autosave_url"], data={**data, "child_first_name": "ä" * 101})
    assert too_long.status_code == 422 and too_long.json["saved"] is False and "pausiert" in too_long.json["message"]
    db.session.expire_all()
    assert db.session.get(Referral, referral_id).child_first_name == "Hannah", "an invalid form is not saved"


def test_autosave_does_not_touch_a_submitted_referral(world, as_user):
    from .conftest import csrf_token
    from .test_permissions import draft_form

    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    client = as_user(world.teacher)
    response = client.post(
        f"/referrals/{referral.id}/autosave",
        data={**draft_form(world), "child_first_name": "Anders", "csrf_token": csrf_token(client, "/referrals")},
    )
    assert response.status_code == 409 and response.json["saved"] is False
    assert response.json["message"].startswith(f"Diese Mitteilung wurde bereits eingereicht: {referral.number}.")
    db.session.expire_all()
    assert db.session.get(type(referral), referral.id).child_first_name == factories.CHILD_FIRST


def test_submitting_the_new_form_after_an_autosave_submits_that_draft(teacher, world):
    token = "form-token-autosave-123456"
    saved = teacher.post(
        f"/referrals/new/autosave?school={world.schools['a'].id}",
        data=complete_form(client_token=token, child_first_name="Zuerst"),
    )
    assert saved.json["saved"] is True
    submitted = teacher.post("/referrals/new", data=complete_form(submit="1", client_token=token))
    referral = db.session.scalars(select(Referral)).one()
    assert submitted.status_code == 302 and submitted.headers["Location"].endswith(f"/referrals/{referral.id}")
    assert referral.state is State.SUBMITTED and referral_count() == 1
