"""Referrals as the API's JSON: what the ASD of the referral's district sees on its page (templates/cases/show.html).

Field names are English snake_case; vocabularies are their stored codes (the OpenAPI document lists each
enum with its German labels). Times are UTC in ISO 8601 with "Z", dates are YYYY-MM-DD. The schema of
every field is in openapi.py (additionalProperties: false, so the contract tests catch any drift).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from ..cases.models import Referral
from ..cases.process import history_for


def when(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value else None


def day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def code(value: Any) -> str | None:
    return value.value if value is not None else None


def _district(referral: Referral) -> dict[str, Any]:
    return {"id": referral.district.id, "code": referral.district.code, "name": referral.district.name}


def summary(referral: Referral) -> dict[str, Any]:
    """A row of the list: process data only, no child data (the case software reads the referral itself)."""
    return {
        "id": referral.id,
        "number": referral.number,
        "version": referral.version,
        "state": code(referral.state),
        "urgency": code(referral.urgency),
        "school": {"id": referral.school.id, "name": referral.school.name},
        "district": _district(referral),
        "case_reference": referral.case_reference,
        "submitted_at": when(referral.submitted_at),
        "received_at": when(referral.received_at),
        "acknowledge_due_at": when(referral.acknowledge_due_at),
        "acknowledged_at": when(referral.acknowledged_at),
        "feedback_due_at": when(referral.feedback_due_at),
        "feedback_at": when(referral.feedback_at),
        "closed_at": when(referral.closed_at),
        "updated_at": when(referral.updated_at),
    }


def _person_name(user: Any) -> str | None:
    return user.name if user is not None else None


def detail(referral: Referral) -> dict[str, Any]:
    """Every section of the form, messages, history, assessment and feedback, as the ASD sees them."""
    body = summary(referral)
    assessment = referral.assessment
    feedback = referral.feedback
    body.update(
        {
            "assignee": _person_name(referral.assignee),
            "acknowledged_by": _person_name(referral.acknowledged_by),
            "purged_at": when(referral.purged_at),
            "child": {
                "first_name": referral.child_first_name,
                "last_name": referral.child_last_name,
                "birth_date": day(referral.child_birth_date),
                "gender": referral.child_gender,
                "school_class": referral.child_class,
                "address": referral.child_address,
                "language": referral.child_language,
                "interpreter_needed": referral.interpreter_needed,
            },
            "household": [
                {
                    "kind": code(person.kind),
                    "first_name": person.first_name,
                    "last_name": person.last_name,
                    "birth_date": day(person.birth_date),
                    "relation": code(person.relation),
                    "custody": person.custody,
                    "address": person.address,
                    "phone": person.phone,
                }
                for person in referral.persons
            ],
            "observations": {
                "categories": [code(c) for c in referral.category_codes],
                "observed_on": day(referral.observed_on),
                "observed_by": referral.observed_by,
                "source": referral.observation_source,
                "description": referral.observation,
                "child_words": referral.child_words,
                "body_marks": [
                    {"side": code(mark.side), "region": code(mark.region)}
                    for mark in sorted(referral.body_marks, key=lambda m: (m.side.value, m.region.value))
                ],
            },
            "school_actions": [
                {
                    "kind": code(action.kind),
                    "done": action.done,
                    "done_on": day(action.done_on),
                    "reason": action.reason,
                    "detail": action.detail,
                }
                for action in referral.school_actions_in_order
            ],
            "affected_informed": {
                "status": code(referral.affected_informed),
                "informed_on": day(referral.affected_informed_on),
                "reason": referral.affected_informed_reason,
            },
            "phone_call": (
                {"at": when(referral.phone_call_at), "with": referral.phone_call_with or ""}
                if referral.phone_call_at
                else None
            ),
            "reporter": {
                "name": referral.reporter_name,
                "function": code(referral.reporter_function),
                "phone": referral.reporter_phone,
                "reachable": referral.reporter_reachable,
            },
            "attachments": [attachment(a) for a in referral.attachments],
            "messages": [
                {
                    "id": message.id,
                    "kind": code(message.kind),
                    "body": message.body,
                    "author": message.author.name,
                    "created_at": when(message.created_at),
                }
                for message in referral.messages
            ],
            "history": [
                {
                    "at": when(entry.at),
                    "action": code(entry.action),
                    "from_state": code(entry.from_state),
                    "to_state": code(entry.to_state),
                    "actor": entry.actor.name,
                    "assignee": _person_name(entry.assignee),
                    "from_district": entry.from_district.code if entry.to_district else None,
                    "to_district": entry.to_district.code if entry.to_district else None,
                    "reason": entry.reason,
                }
                for entry in history_for(referral, asd_side=True)
            ],
            "assessment": (
                {
                    "result": code(assessment.result),
                    "specialists": [u.name for u in assessment.specialists]
                    + [line for line in assessment.other_specialists.splitlines() if line.strip()],
                    "school_involved": assessment.school_involved,
                    "measures": [code(m) for m in assessment.measure_codes],
                    "recorded_at": when(assessment.recorded_at),
                }
                if assessment
                else None
            ),
            "feedback": (
                {
                    "indications_confirmed": feedback.indications_confirmed,
                    "asd_became_active": feedback.asd_became_active,
                    "asd_still_active": feedback.asd_still_active,
                    "contact_name": feedback.contact_name,
                    "contact_phone": feedback.contact_phone,
                    "affected_informed": code(feedback.affected_informed),
                    "affected_informed_on": day(feedback.affected_informed_on),
                    "affected_informed_reason": feedback.affected_informed_reason,
                    "given_at": when(feedback.given_at),
                }
                if feedback
                else None
            ),
        }
    )
    return body


def attachment(item: Any) -> dict[str, Any]:
    return {
        "id": item.id,
        "filename": item.filename,
        "content_type": item.content_type,
        "size": item.size,
        "uploaded_at": when(item.uploaded_at),
    }
