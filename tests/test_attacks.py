from .conftest import csrf_token
from . import factories
from .test_referral_form import complete_form
from referral.cases.process import State

def test_explore(app, world, as_user, client):
    app.config["WTF_CSRF_ENABLED"] = False
    t = as_user(world.teacher)
    for extra in ({"urgency": "acute", "phone_call_at": "0001-01-01T00:30", "phone_call_with": "x"},
                  {"observed_on": "0001-01-01"},{"school_actions-0-done_on": "0001-01-01"},
                  {"persons-0-birth_date": "0001-01-01"},
                  ):
        for btn in ("save", "submit"):
          try:
            r = t.post("/referrals/new", data=complete_form(**{btn: "1"}, **extra))
            print(extra, btn, r.status_code, r.location)
            if r.location:
                r2 = t.get(r.location)
                print("  get", r2.status_code)
          except Exception as e:
            print(extra, "EXC", type(e), str(e)[:200])
