"""The original web client's Users, profile, password and preferences calls (/api/identity/*), with the bodies
its pages send (reference: the client's api/agent.ts and lib/types), over the real middleware, authentication
and routing, on PostgreSQL."""

import asyncio
import re

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from notifications.framing import REVOKED
from notifications.groups import user_group
from notifications.services import CLOSE_MESSAGE_TYPE
from tenants.models import ROOT_TENANT_ID, Role, User
from tests.support.factories import TenantFactory, UserFactory
from tests.support.tenant_databases import ADMIN_PASSWORD
from tests.support.users import client_for, make_root_user

USER_KEYS = {"id", "firstName", "lastName", "email", "phoneNumber", "isActive", "roleId", "imageUrl", "createdOn"}
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
PASSWORD = "User-Password-123!"
NEW_PASSWORD = "Brand-New-Pass-2026!"
# Secrets that must never be in an answer: a password, or any hash of one (its scheme, its separator).
SECRET_MARKS = ("pbkdf2", "argon2", "$", PASSWORD, NEW_PASSWORD)


def register_body(**changes):
    """What the client's Users page posts (RegisterUserRequest)."""
    return {
        "firstName": "Maria",
        "lastName": "Lopez",
        "email": "maria@acme.test",
        "password": "Maria-Strong-Pass-9!",
        "phoneNumber": "+506 8888 0000",
        "roleId": "basic",
        **changes,
    }


def whole_user(api, user_id):
    """The User object as the client holds it, which it PUTs back whole after an edit."""
    response = api.get(f"/api/identity/users/{user_id}")
    assert response.status_code == 200, response.content
    return response.json()["data"]


def assert_refused(response, status, *messages):
    assert response.status_code == status, response.content
    body = response.json()
    assert (body["succeeded"], body["data"]) == (False, None)
    if messages:
        assert body["messages"] == list(messages)
    return body


def assert_no_secret(response):
    text = response.content.decode()
    for mark in SECRET_MARKS:
        assert mark not in text, mark


@pytest.fixture
def acme(db):
    return TenantFactory(id="acme", name="Acme")


@pytest.fixture
def admin(acme):
    return UserFactory(tenant_id="acme", email="boss@acme.test", roles=[Role.ADMIN], first_name="Boss")


@pytest.fixture
def admin_api(admin):
    return client_for(admin, tenant="acme")


@pytest.fixture
def member(acme):
    return UserFactory(tenant_id="acme", email="member@acme.test", roles=[Role.BASIC], phone_number="123")


@pytest.fixture
def other_tenant_user(db):
    TenantFactory(id="globex")
    return UserFactory(tenant_id="globex", email="someone@globex.test", roles=[Role.ADMIN])


# --- the Users page: an admin's ------------------------------------------------------------------------------


def test_the_list_is_the_tenants_users_only_in_the_original_shape(admin_api, admin, member, other_tenant_user):
    response = admin_api.get("/api/identity/users")
    assert response.status_code == 200
    body = response.json()
    assert (body["succeeded"], body["messages"]) == (True, [])
    users = body["data"]
    assert [user["email"] for user in users] == ["member@acme.test", "boss@acme.test"]  # newest first
    assert all(set(user) == USER_KEYS for user in users)
    listed = users[0]
    assert TIMESTAMP.match(listed.pop("createdOn"))
    assert listed == {
        "id": str(member.pk),
        "firstName": "",
        "lastName": "",
        "email": "member@acme.test",
        "phoneNumber": "123",
        "isActive": True,
        "roleId": "basic",
        "imageUrl": "",
    }
    assert_no_secret(response)


def test_an_admin_creates_a_user_with_the_clients_body(admin_api):
    response = admin_api.post("/api/identity/users", register_body(), format="json")
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert set(data) == USER_KEYS
    assert (data["email"], data["roleId"], data["phoneNumber"], data["isActive"]) == (
        "maria@acme.test",
        "basic",
        "+506 8888 0000",
        True,
    )
    user = User.objects.get(pk=data["id"])
    assert (user.tenant_id, user.roles, user.first_name) == ("acme", ["basic"], "Maria")
    assert user.check_password("Maria-Strong-Pass-9!")
    assert_no_secret(response)
    signed_in = client_for(tenant="acme").post(
        "/api/tokens", {"email": "maria@acme.test", "password": "Maria-Strong-Pass-9!"}, format="json"
    )
    assert signed_in.status_code == 200


@pytest.mark.parametrize("role", ["admin", "editor", "basic"])
def test_each_role_of_the_clients_form_may_be_given(admin_api, role):
    response = admin_api.post("/api/identity/users", register_body(roleId=role), format="json")
    assert (response.status_code, response.json()["data"]["roleId"]) == (201, role)


def test_without_a_role_the_user_is_basic_and_the_phone_is_optional(admin_api):
    body = register_body()
    del body["roleId"], body["phoneNumber"]
    response = admin_api.post("/api/identity/users", body, format="json")
    assert response.status_code == 201
    assert (response.json()["data"]["roleId"], response.json()["data"]["phoneNumber"]) == ("basic", "")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"password": "short"}, "password"),
        ({"password": "maria@acme.test"}, "password"),
        ({"roleId": "root"}, "roleId"),
        ({"roleId": "superuser"}, "roleId"),
        ({"firstName": 7}, "firstName"),
        ({"email": None}, "email"),
    ],
)
def test_a_bad_new_user_is_400_in_the_envelope_and_nothing_is_created(admin_api, change, field):
    before = User.objects.count()
    body = assert_refused(admin_api.post("/api/identity/users", register_body(**change), format="json"), 400)
    assert field in body["errors"]
    assert User.objects.count() == before


def test_an_email_the_tenant_has_is_409(admin_api, member):
    response = admin_api.post("/api/identity/users", register_body(email="Member@acme.test"), format="json")
    assert_refused(response, 409, "Email already in use")


def test_an_admin_reads_one_user_and_another_tenants_user_is_not_found(admin_api, member, other_tenant_user):
    assert whole_user(admin_api, member.pk)["email"] == "member@acme.test"
    for user_id in (other_tenant_user.pk, "not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        assert_refused(admin_api.get(f"/api/identity/users/{user_id}"), 404, "Not Found")


def test_an_admin_edits_a_user_with_the_whole_user_object(admin_api, member):
    user = whole_user(admin_api, member.pk)
    user.update(firstName="Mem", lastName="Ber", email="renamed@acme.test", phoneNumber="555", roleId="editor")
    response = admin_api.put(f"/api/identity/users/{member.pk}", user, format="json")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert {k: data[k] for k in ("firstName", "lastName", "email", "phoneNumber", "roleId", "isActive")} == {
        "firstName": "Mem",
        "lastName": "Ber",
        "email": "renamed@acme.test",
        "phoneNumber": "555",
        "roleId": "editor",
        "isActive": True,
    }
    member.refresh_from_db()
    assert (member.email, member.roles, member.tenant_id) == ("renamed@acme.test", ["editor"], "acme")


def test_a_deactivated_user_is_signed_out_at_once(admin_api, member):
    member_api = client_for(member, tenant="acme")
    assert member_api.get("/api/identity/profile").status_code == 200
    user = whole_user(admin_api, member.pk)
    response = admin_api.put(f"/api/identity/users/{member.pk}", {**user, "isActive": False}, format="json")
    assert (response.status_code, response.json()["data"]["isActive"]) == (200, False)
    assert_refused(member_api.get("/api/identity/profile"), 401)


@pytest.mark.parametrize(
    ("change", "field"),
    [({"email": "nope"}, "email"), ({"isActive": "yes"}, "isActive"), ({"roleId": "root"}, "roleId")],
)
def test_a_bad_edit_is_400_and_changes_nothing(admin_api, member, change, field):
    user = whole_user(admin_api, member.pk)
    body = assert_refused(admin_api.put(f"/api/identity/users/{member.pk}", {**user, **change}, format="json"), 400)
    assert field in body["errors"]
    member.refresh_from_db()
    assert (member.email, member.is_active, member.roles) == ("member@acme.test", True, ["basic"])


def test_an_edit_to_an_email_in_use_is_409(admin_api, admin, member):
    user = whole_user(admin_api, member.pk)
    response = admin_api.put(f"/api/identity/users/{member.pk}", {**user, "email": admin.email}, format="json")
    assert_refused(response, 409, "Email already in use")
    member.refresh_from_db()
    assert member.email == "member@acme.test"


def test_an_admin_may_not_edit_or_delete_itself(admin_api, admin):
    user = whole_user(admin_api, admin.pk)
    response = admin_api.put(f"/api/identity/users/{admin.pk}", {**user, "roleId": "basic"}, format="json")
    assert_refused(response, 400, "Cannot edit current user")
    assert_refused(admin_api.delete(f"/api/identity/users/{admin.pk}"), 400, "Cannot delete current user")
    admin.refresh_from_db()
    assert admin.roles == ["admin"]


def test_a_root_user_is_neither_edited_nor_deleted(root_api):
    other_root = make_root_user()
    user = whole_user(root_api, other_root.pk)
    response = root_api.put(f"/api/identity/users/{other_root.pk}", {**user, "roleId": "admin"}, format="json")
    assert_refused(response, 400, "Cannot edit root user")
    assert_refused(root_api.delete(f"/api/identity/users/{other_root.pk}"), 400, "Cannot delete root user")
    assert User.objects.get(pk=other_root.pk).roles == [Role.ROOT]


def test_root_manages_the_root_tenants_users_only(root_api, member):
    assert [u["roleId"] for u in root_api.get("/api/identity/users").json()["data"]] == ["root"]
    assert_refused(root_api.get(f"/api/identity/users/{member.pk}"), 404)
    root = User.objects.get(tenant_id=ROOT_TENANT_ID)
    assert_refused(client_for(root, tenant="acme").get("/api/identity/users"), 403)


def test_an_admin_deletes_a_user_and_gets_its_id(admin_api, member):
    response = admin_api.delete(f"/api/identity/users/{member.pk}")
    assert response.status_code == 200
    assert response.json()["data"] == str(member.pk)
    assert not User.objects.filter(pk=member.pk).exists()
    assert_refused(admin_api.delete(f"/api/identity/users/{member.pk}"), 404)


def test_another_tenants_user_is_not_found_for_an_edit_or_a_deletion(admin_api, other_tenant_user):
    body = {"firstName": "X", "lastName": "Y", "email": "x@globex.test", "isActive": False, "roleId": "basic"}
    assert_refused(admin_api.put(f"/api/identity/users/{other_tenant_user.pk}", body, format="json"), 404)
    assert_refused(admin_api.delete(f"/api/identity/users/{other_tenant_user.pk}"), 404)
    other_tenant_user.refresh_from_db()
    assert (other_tenant_user.email, other_tenant_user.is_active) == ("someone@globex.test", True)


def test_a_token_of_one_tenant_with_another_tenants_header_is_403(admin, other_tenant_user):
    assert_refused(client_for(admin, tenant="globex").get("/api/identity/users"), 403, "Not Authorized")


@pytest.mark.parametrize("role", [Role.BASIC, Role.EDITOR])
def test_a_user_who_is_no_admin_may_not_manage_users(acme, member, role):
    user = UserFactory(tenant_id="acme", email=f"{role}@acme.test", roles=[role])
    api = client_for(user, tenant="acme")
    assert_refused(api.get("/api/identity/users"), 403, "Not Authorized")
    assert_refused(api.post("/api/identity/users", register_body(), format="json"), 403)
    assert_refused(api.get(f"/api/identity/users/{member.pk}"), 403)
    assert_refused(api.put(f"/api/identity/users/{member.pk}", {}, format="json"), 403)
    assert_refused(api.delete(f"/api/identity/users/{member.pk}"), 403)
    assert User.objects.filter(pk=member.pk).exists()


def test_anonymous_calls_are_401(api, member):
    for method, path in [
        ("get", "/api/identity/users"),
        ("post", "/api/identity/users"),
        ("get", f"/api/identity/users/{member.pk}"),
        ("delete", f"/api/identity/users/{member.pk}"),
        ("put", "/api/identity/profile"),
        ("put", "/api/identity/change-password"),
        ("put", "/api/identity/preferences"),
    ]:
        assert_refused(getattr(api, method)(path, {}, format="json", HTTP_TENANT="acme"), 401, "Not Authorized")


def test_the_users_of_an_isolated_tenant_live_in_its_own_database(isolated):
    isolated("solo")
    admin = User.objects.using("default").filter(tenant_id="solo").first()
    assert admin is None  # the tenant's admin is in its own database, not the main one
    signed_in = client_for(tenant="solo").post(
        "/api/tokens", {"email": "admin@solo.test", "password": ADMIN_PASSWORD}, format="json"
    )
    api = client_for(tenant="solo")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {signed_in.json()['data']['token']}")
    created = api.post("/api/identity/users", register_body(email="maria@solo.test"), format="json")
    assert created.status_code == 201, created.content
    assert [u["email"] for u in api.get("/api/identity/users").json()["data"]] == ["maria@solo.test", "admin@solo.test"]
    assert not User.objects.using("default").filter(email="maria@solo.test").exists()
    assert whole_user(api, created.json()["data"]["id"])["roleId"] == "basic"


# --- every user's own profile, password and preferences -------------------------------------------------------


def profile_body(user, **changes):
    """What the client's profile page sends (UpdateProfileRequest)."""
    return {"id": str(user.pk), "firstName": "Mem", "lastName": "Ber", "email": user.email, "phoneNumber": "777"} | (
        changes
    )


def test_a_user_updates_its_own_profile_and_gets_itself_back(member):
    api = client_for(member, tenant="acme")
    response = api.put("/api/identity/profile", profile_body(member, email="new@acme.test"), format="json")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert set(data) == USER_KEYS | {"preferences"}
    assert (data["id"], data["firstName"], data["email"], data["phoneNumber"], data["roleId"]) == (
        str(member.pk),
        "Mem",
        "new@acme.test",
        "777",
        "basic",
    )
    member.refresh_from_db()
    assert (member.first_name, member.last_name, member.email) == ("Mem", "Ber", "new@acme.test")
    assert_no_secret(response)


def test_the_profiles_id_is_always_the_signed_in_users(member, admin):
    api = client_for(member, tenant="acme")
    response = api.put("/api/identity/profile", profile_body(member, id=str(admin.pk)), format="json")
    assert response.json()["data"]["id"] == str(member.pk)
    admin.refresh_from_db()
    assert admin.first_name == "Boss"


@pytest.mark.parametrize(("change", "field"), [({"email": "nope"}, "email"), ({"firstName": None}, "firstName")])
def test_a_bad_profile_is_400_and_changes_nothing(member, change, field):
    api = client_for(member, tenant="acme")
    body = assert_refused(api.put("/api/identity/profile", profile_body(member, **change), format="json"), 400)
    assert field in body["errors"]
    member.refresh_from_db()
    assert (member.first_name, member.phone_number) == ("", "123")


def test_a_profile_with_an_email_in_use_is_409(member, admin):
    api = client_for(member, tenant="acme")
    assert_refused(api.put("/api/identity/profile", profile_body(member, email=admin.email), format="json"), 409)


def test_the_root_users_email_stays_the_configured_one(root_api, root_user):
    body = assert_refused(
        root_api.put("/api/identity/profile", profile_body(root_user, email="me@else.test"), format="json"), 400
    )
    assert "email" in body["errors"]
    renamed = root_api.put("/api/identity/profile", profile_body(root_user, firstName="Ada"), format="json")
    assert (renamed.status_code, renamed.json()["data"]["firstName"]) == (200, "Ada")


def change_password_body(current=PASSWORD, new=NEW_PASSWORD, confirm=None):
    """What the client's password tab sends (ChangePasswordRequest)."""
    return {"password": current, "newPassword": new, "confirmNewPassword": new if confirm is None else confirm}


def test_a_user_changes_its_password_and_every_older_token_stops_working(member):
    api = client_for(member, tenant="acme")
    response = api.put("/api/identity/change-password", change_password_body(), format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["succeeded"], response.json()["data"]) == (True, None)
    assert_no_secret(response)
    member.refresh_from_db()
    assert member.check_password(NEW_PASSWORD)
    assert_refused(api.get("/api/identity/profile"), 401)
    signed_in = client_for(tenant="acme").post(
        "/api/tokens", {"email": member.email, "password": NEW_PASSWORD}, format="json"
    )
    assert signed_in.status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (change_password_body(current="Wrong-Current-1!"), "password"),
        (change_password_body(confirm="Something-Else-2!"), "confirmNewPassword"),
        (change_password_body(new="abc", confirm="abc"), "newPassword"),
        (change_password_body(new="member@acme.test", confirm="member@acme.test"), "newPassword"),
        ({"newPassword": NEW_PASSWORD, "confirmNewPassword": NEW_PASSWORD}, "password"),
    ],
)
def test_a_refused_password_change_is_400_and_keeps_the_password_and_the_token(member, body, field):
    api = client_for(member, tenant="acme")
    response = api.put("/api/identity/change-password", body, format="json")
    assert field in assert_refused(response, 400)["errors"]
    assert_no_secret(response)
    member.refresh_from_db()
    assert member.check_password(PASSWORD)
    assert api.get("/api/identity/profile").status_code == 200


def test_the_wrong_current_password_says_so(member):
    api = client_for(member, tenant="acme")
    response = api.put("/api/identity/change-password", change_password_body("Nope-Nope-1!"), format="json")
    body = assert_refused(response, 400)
    assert body["errors"]["password"] == ["Current password is incorrect"]


def test_preferences_are_saved_and_come_back_with_the_profile(member):
    api = client_for(member, tenant="acme")
    before = api.get("/api/identity/profile").json()["data"]["preferences"]
    assert before == {"darkModeDefault": False, "pageSizeDefault": 10}
    response = api.put("/api/identity/preferences", {"darkModeDefault": True, "pageSizeDefault": 25}, format="json")
    assert response.status_code == 200
    assert (response.json()["succeeded"], response.json()["data"]) == (True, None)
    assert api.get("/api/identity/profile").json()["data"]["preferences"] == {
        "darkModeDefault": True,
        "pageSizeDefault": 25,
    }
    member.refresh_from_db()
    assert member.preferences == {"dark_mode_default": True, "page_size_default": 25}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"darkModeDefault": "true", "pageSizeDefault": 25}, "darkModeDefault"),
        ({"darkModeDefault": True, "pageSizeDefault": "25"}, "pageSizeDefault"),
        ({"darkModeDefault": True, "pageSizeDefault": 0}, "pageSizeDefault"),
        ({"darkModeDefault": True, "pageSizeDefault": 1000}, "pageSizeDefault"),
        ({"darkModeDefault": True}, "pageSizeDefault"),
    ],
)
def test_bad_preferences_are_400_and_keep_the_saved_ones(member, body, field):
    member.preferences = {"dark_mode_default": True, "page_size_default": 50}
    member.save()
    api = client_for(member, tenant="acme")
    assert field in assert_refused(api.put("/api/identity/preferences", body, format="json"), 400)["errors"]
    member.refresh_from_db()
    assert member.preferences == {"dark_mode_default": True, "page_size_default": 50}


def test_preferences_are_each_users_own(member, admin):
    client_for(member, tenant="acme").put(
        "/api/identity/preferences", {"darkModeDefault": True, "pageSizeDefault": 5}, format="json"
    )
    admin.refresh_from_db()
    assert admin.preferences == {}


@pytest.mark.parametrize(("role", "status"), [("editor", 201), ("admin", 201), ("root", 400)])
def test_api_users_gives_the_roles_the_users_page_gives(admin_api, role, status):
    body = {"email": f"{role}@acme.test", "password": "Maria-Strong-Pass-9!", "role": role}
    response = admin_api.post("/api/users", body, format="json")
    assert response.status_code == status
    assert User.objects.filter(email=f"{role}@acme.test").exists() is (status == 201)


def _listen_to_sockets_of(user):
    """A channel in the user's group, as each of its open sockets has (notifications.groups)."""
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(user_group(str(user.pk)), channel)

    async def next_message():
        return await asyncio.wait_for(layer.receive(channel), timeout=10)

    return lambda: async_to_sync(next_message)()


@pytest.mark.parametrize("action", ["new password", "deactivation", "deletion"])
def test_the_users_open_sockets_are_closed_at_once(admin_api, member, action):
    next_message = _listen_to_sockets_of(member)
    if action == "new password":
        response = client_for(member, tenant="acme").put(
            "/api/identity/change-password", change_password_body(), format="json"
        )
    elif action == "deactivation":
        user = whole_user(admin_api, member.pk)
        response = admin_api.put(f"/api/identity/users/{member.pk}", {**user, "isActive": False}, format="json")
    else:
        response = admin_api.delete(f"/api/identity/users/{member.pk}")
    assert response.status_code == 200
    assert next_message() == {"type": CLOSE_MESSAGE_TYPE, "code": REVOKED}
