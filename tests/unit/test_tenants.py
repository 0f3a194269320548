"""Tenants and API keys (issue 3, item 6): random keys stored as HMAC-SHA256 under a pepper, a bounded cache,
revocation within the documented TTL."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from spool.domain import limits
from spool.domain.errors import InvalidInput, NotFound, Unauthorized
from spool.domain.ports import ApiKeyRecord
from spool.domain.tenants import KEY_PREFIX, Tenants, hash_key
from tests.fakes import FakeRepo
from tests.unit.conftest import PEPPER, ApiHarness

START = 1_776_162_600.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def repo() -> FakeRepo:
    return FakeRepo()


@pytest.fixture
def tenants(repo: FakeRepo, clock: Clock) -> Tenants:
    return Tenants(repo, lambda: PEPPER, clock=clock)


# --- keys and hashing ------------------------------------------------------------------------------------------


def test_new_tenant_gets_a_key_that_authenticates_as_that_tenant(tenants: Tenants) -> None:
    tenant, key = tenants.create_tenant("acme")

    assert tenants.authenticate(key) == tenant.id


def test_keys_carry_the_spool_prefix_and_enough_randomness(tenants: Tenants) -> None:
    _, key = tenants.create_tenant("acme")

    assert key.startswith(KEY_PREFIX)
    assert len(key) - len(KEY_PREFIX) >= 43  # 32 random bytes, URL-safe base64


def test_every_key_is_different(tenants: Tenants) -> None:
    tenant, first = tenants.create_tenant("acme")
    keys = {first, *(tenants.create_key(tenant.id)[1] for _ in range(20))}

    assert len(keys) == 21


def test_stored_hash_is_hmac_sha256_of_the_key_under_the_pepper(tenants: Tenants, repo: FakeRepo) -> None:
    _, key = tenants.create_tenant("acme")

    [(_, stored_hash)] = repo.keys.values()

    assert stored_hash == hmac.new(PEPPER, key.encode(), hashlib.sha256).hexdigest()


def test_the_key_itself_is_stored_nowhere(tenants: Tenants, repo: FakeRepo) -> None:
    tenant, key = tenants.create_tenant("acme")

    [(record, stored_hash)] = repo.keys.values()

    assert key not in repr(repo.keys)
    assert key not in repr(repo.tenants)
    assert stored_hash != key
    assert key[len(KEY_PREFIX) :] not in stored_hash
    assert record.tenantId == tenant.id


def test_hash_depends_on_the_pepper() -> None:
    assert hash_key(b"pepper-one", "spool_abc") != hash_key(b"pepper-two", "spool_abc")


def test_hash_is_not_a_plain_sha256_of_the_key() -> None:
    assert hash_key(PEPPER, "spool_abc") != hashlib.sha256(b"spool_abc").hexdigest()


def test_key_stops_working_when_the_pepper_changes(repo: FakeRepo, clock: Clock) -> None:
    pepper = [b"old-pepper"]
    tenants = Tenants(repo, lambda: pepper[0], clock=clock, cache_seconds=0)
    _, key = tenants.create_tenant("acme")
    pepper[0] = b"new-pepper"

    with pytest.raises(Unauthorized):
        tenants.authenticate(key)


# --- authenticate ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, ""])
def test_missing_key_is_refused(tenants: Tenants, key: str | None) -> None:
    with pytest.raises(Unauthorized, match="missing"):
        tenants.authenticate(key)


@pytest.mark.parametrize(
    "key",
    ["spool_" + "x" * 43, "sk_live_" + "x" * 43, "x" * 49, KEY_PREFIX + "x" * 123],
    ids=["unknown", "foreign-prefix", "no-prefix", "over-128"],
)
def test_unknown_or_malformed_key_is_refused(tenants: Tenants, key: str) -> None:
    tenants.create_tenant("acme")

    with pytest.raises(Unauthorized):
        tenants.authenticate(key)


def test_malformed_key_is_refused_without_a_repository_lookup(
    tenants: Tenants, repo: FakeRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_up: list[str] = []
    monkeypatch.setattr(repo, "find_key", looked_up.append)

    with pytest.raises(Unauthorized):
        tenants.authenticate("not-a-spool-key")

    assert looked_up == []


def test_two_keys_of_one_tenant_both_work(tenants: Tenants) -> None:
    tenant, first = tenants.create_tenant("acme")
    _, second = tenants.create_key(tenant.id)

    assert tenants.authenticate(first) == tenants.authenticate(second) == tenant.id


def test_keys_of_two_tenants_authenticate_as_their_own_tenant(tenants: Tenants) -> None:
    acme, acme_key = tenants.create_tenant("acme")
    globex, globex_key = tenants.create_tenant("globex")

    assert (tenants.authenticate(acme_key), tenants.authenticate(globex_key)) == (acme.id, globex.id)


def test_answers_are_cached_so_repeated_calls_skip_the_repository(
    tenants: Tenants, repo: FakeRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, key = tenants.create_tenant("acme")
    looked_up: list[str] = []
    find_key = repo.find_key

    def counting(key_hash: str) -> ApiKeyRecord | None:
        looked_up.append(key_hash)
        return find_key(key_hash)

    monkeypatch.setattr(repo, "find_key", counting)
    for _ in range(10):
        tenants.authenticate(key)

    assert len(looked_up) == 1


def test_cached_answer_is_looked_up_again_after_the_ttl(
    tenants: Tenants, repo: FakeRepo, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, key = tenants.create_tenant("acme")
    looked_up: list[str] = []
    find_key = repo.find_key

    def counting(key_hash: str) -> ApiKeyRecord | None:
        looked_up.append(key_hash)
        return find_key(key_hash)

    monkeypatch.setattr(repo, "find_key", counting)
    tenants.authenticate(key)
    clock.now += tenants.cache_seconds
    tenants.authenticate(key)

    assert len(looked_up) == 2


# --- revocation ------------------------------------------------------------------------------------------------


def test_documented_key_cache_ttl_is_at_most_60_seconds() -> None:
    assert 0 < limits.API_KEY_CACHE_SECONDS <= 60


def test_revoked_key_that_was_never_cached_is_refused_at_once(tenants: Tenants) -> None:
    tenant, key = tenants.create_tenant("acme")
    [record] = tenants.repo.list_keys(tenant.id)
    tenants.revoke_key(tenant.id, record.keyId)

    with pytest.raises(Unauthorized):
        tenants.authenticate(key)


def test_revoked_key_may_work_until_the_cache_ttl_passes(tenants: Tenants, clock: Clock) -> None:
    tenant, key = tenants.create_tenant("acme")
    tenants.authenticate(key)
    [record] = tenants.repo.list_keys(tenant.id)
    tenants.revoke_key(tenant.id, record.keyId)

    clock.now += tenants.cache_seconds - 0.001

    assert tenants.authenticate(key) == tenant.id


def test_revoked_key_is_refused_once_the_cache_ttl_has_passed(tenants: Tenants, clock: Clock) -> None:
    tenant, key = tenants.create_tenant("acme")
    tenants.authenticate(key)
    [record] = tenants.repo.list_keys(tenant.id)
    tenants.revoke_key(tenant.id, record.keyId)

    clock.now += tenants.cache_seconds

    with pytest.raises(Unauthorized):
        tenants.authenticate(key)


def test_revoking_one_key_leaves_the_tenants_other_key_working(tenants: Tenants, clock: Clock) -> None:
    tenant, first = tenants.create_tenant("acme")
    record, second = tenants.create_key(tenant.id)
    tenants.revoke_key(tenant.id, record.keyId)
    clock.now += tenants.cache_seconds

    assert tenants.authenticate(first) == tenant.id
    with pytest.raises(Unauthorized):
        tenants.authenticate(second)


def test_revoking_an_unknown_key_raises_not_found(tenants: Tenants) -> None:
    tenant, _ = tenants.create_tenant("acme")

    with pytest.raises(NotFound):
        tenants.revoke_key(tenant.id, "key_unknown")


def test_revoking_another_tenants_key_raises_not_found_and_leaves_it_working(tenants: Tenants, clock: Clock) -> None:
    acme, acme_key = tenants.create_tenant("acme")
    globex, _ = tenants.create_tenant("globex")
    [record] = tenants.repo.list_keys(acme.id)

    with pytest.raises(NotFound):
        tenants.revoke_key(globex.id, record.keyId)
    clock.now += tenants.cache_seconds
    assert tenants.authenticate(acme_key) == acme.id


def test_revoked_key_answers_401_at_the_api_after_the_cache_ttl(harness: ApiHarness) -> None:
    clock = Clock()
    tenants: Tenants = harness.services.tenants
    tenants.clock = clock
    assert harness.call("GET", "/api/v1/endpoints").status == 200
    [record] = tenants.repo.list_keys(harness.tenant_id)
    tenants.revoke_key(harness.tenant_id, record.keyId)

    clock.now += limits.API_KEY_CACHE_SECONDS
    reply = harness.call("GET", "/api/v1/endpoints")

    assert reply.status == 401
    assert reply.json()["error"]["code"] == "unauthorized"


def test_unknown_key_answers_401_at_the_api(harness: ApiHarness) -> None:
    reply = harness.call("GET", "/api/v1/endpoints", key=KEY_PREFIX + "x" * 43)

    assert reply.status == 401


# --- tenants and key management --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "   ", "x" * 129])
def test_tenant_name_must_be_1_to_128_characters(tenants: Tenants, name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        tenants.create_tenant(name)

    assert caught.value.field == "name"


def test_tenant_name_is_stored_trimmed(tenants: Tenants) -> None:
    tenant, _ = tenants.create_tenant("  acme  ")

    assert tenant.name == "acme"
    assert tenants.repo.get_tenant(tenant.id) == tenant


def test_tenant_ids_carry_the_ten_prefix(tenants: Tenants) -> None:
    tenant, _ = tenants.create_tenant("acme")

    assert tenant.id.startswith("ten_")


def test_key_for_an_unknown_tenant_is_not_created(tenants: Tenants, repo: FakeRepo) -> None:
    with pytest.raises(NotFound):
        tenants.create_key("ten_unknown")

    assert repo.keys == {}


def test_adopted_key_authenticates_as_its_tenant(tenants: Tenants) -> None:
    tenant, _ = tenants.create_tenant("acme")
    chosen = KEY_PREFIX + "local-dev-key-kept-across-restarts-000"

    tenants.adopt_key(tenant.id, chosen)

    assert tenants.authenticate(chosen) == tenant.id


@pytest.mark.parametrize(
    "key", ["spool_short", "dev_" + "x" * 40, KEY_PREFIX + "x" * 123], ids=["short", "no-prefix", "too-long"]
)
def test_adopted_key_must_look_like_a_spool_key(tenants: Tenants, key: str) -> None:
    tenant, _ = tenants.create_tenant("acme")

    with pytest.raises(InvalidInput):
        tenants.adopt_key(tenant.id, key)


def test_key_is_not_adopted_for_an_unknown_tenant(tenants: Tenants, repo: FakeRepo) -> None:
    with pytest.raises(NotFound):
        tenants.adopt_key("ten_unknown", KEY_PREFIX + "local-dev-key-kept-across-restarts-000")

    assert repo.keys == {}
