"""Single sign-on settings (issue 14): read from OIDC_<NAME>_* and LOCAL_LOGIN_ROLES; a wrong setting
stops the start with a sentence that names it; without any of them the app works as before."""

from __future__ import annotations

import pytest

from referral.config import ConfigError, load
from referral.signon.settings import Provider

STRONG = "k" * 48
CITY = {
    "OIDC_STADT_HERNE_ISSUER": "https://login.herne.example/realms/stadt",
    "OIDC_STADT_HERNE_CLIENT_ID": "mitteilungen",
    "OIDC_STADT_HERNE_CLIENT_SECRET": "geheim",
    "OIDC_STADT_HERNE_LABEL": "Mit dem Konto der Stadt Herne anmelden",
    "OIDC_STADT_HERNE_MFA_VALUES": "mfa, otp hwk",
    "OIDC_STADT_HERNE_ROLES": "asd_worker,asd_lead,coordinator,admin",
}


def settings(tmp_path, **env):
    return load(tmp_path, {"SECRET_KEY": STRONG, **env})


def test_without_any_setting_there_is_no_provider_and_everyone_may_use_a_password(tmp_path):
    config = settings(tmp_path)
    assert config["OIDC_PROVIDERS"] == {}
    assert config["LOCAL_LOGIN_ROLES"] is None


def test_a_provider_from_its_variables(tmp_path):
    config = settings(tmp_path, **CITY, LOCAL_LOGIN_ROLES="admin")
    assert config["OIDC_PROVIDERS"] == {
        "stadt_herne": Provider(
            name="stadt_herne",
            issuer="https://login.herne.example/realms/stadt",
            client_id="mitteilungen",
            client_secret="geheim",
            label="Mit dem Konto der Stadt Herne anmelden",
            mfa_values=frozenset({"mfa", "otp", "hwk"}),
            roles=frozenset({"asd_worker", "asd_lead", "coordinator", "admin"}),
        )
    }
    assert config["LOCAL_LOGIN_ROLES"] == frozenset({"admin"})
    assert config["OIDC_PROVIDERS"]["stadt_herne"].origin == "https://login.herne.example"


def test_an_empty_local_login_roles_lets_nobody_log_in_with_a_password(tmp_path):
    assert settings(tmp_path, LOCAL_LOGIN_ROLES="")["LOCAL_LOGIN_ROLES"] == frozenset()


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"OIDC_STADT_HERNE_CLIENT_SECRET": ""}, "OIDC_STADT_HERNE_CLIENT_SECRET must be set"),
        ({"OIDC_STADT_HERNE_CLIENT_ID": ""}, "OIDC_STADT_HERNE_CLIENT_ID must be set"),
        ({"OIDC_STADT_HERNE_ISSUER": "login.herne.example"}, "must be the provider's issuer URL"),
        ({"OIDC_STADT_HERNE_ROLES": "asd_worker,chef"}, "unknown role"),
        ({"LOCAL_LOGIN_ROLES": "root"}, "LOCAL_LOGIN_ROLES: unknown role"),
        ({"OIDC_LAND_CLIENT_ID": "x"}, "OIDC_LAND_CLIENT_ID is set, but OIDC_LAND_ISSUER is not"),
        ({"OIDC_STÄDT_ISSUER": "https://x.example"}, "may hold only A-Z"),
    ],
)
def test_a_wrong_setting_stops_the_start_and_names_itself(tmp_path, change, complaint):
    with pytest.raises(ConfigError, match=complaint):
        settings(tmp_path, **{**CITY, **change})


def test_production_wants_https_for_the_provider(tmp_path):
    env = {
        "REFERRAL_ENV": "production",
        "DATABASE_URL": "postgresql://db/referral",
        "SERVER_NAME": "referral.example",
        "REFERRAL_DATA_KEYS": "Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg=",
        **CITY,
        "OIDC_STADT_HERNE_ISSUER": "http://login.herne.example/realms/stadt",
    }
    with pytest.raises(ConfigError, match="must use https in production"):
        settings(tmp_path, **env)
    env["OIDC_STADT_HERNE_ISSUER"] = "https://login.herne.example/realms/stadt"
    assert settings(tmp_path, **env)["OIDC_PROVIDERS"]["stadt_herne"].issuer.startswith("https://")
