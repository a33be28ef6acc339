"""Which parts of a URL are credentials, how a URL is masked, and how a masked URL gets its
credentials back (connectors/url_credentials.py)."""

from __future__ import annotations

import pytest

from connectors.base import Option
from connectors.url_credentials import (
    MASK,
    mask_url,
    mask_url_options,
    moved_url_errors,
    restore_url,
    secret_parameter,
    split_url_options,
    url_secrets,
)

URL = "https://bob:pw-1@hooks.example.com/in?token=abc&x=1&api_key=k%20y&page=2&sig=&flag"
MASKED = (
    f"https://{MASK}:{MASK}@hooks.example.com/in?token={MASK}&x=1&api_key={MASK}&page=2&sig=&flag"
)
DECLARED = (
    Option("url", "URL", type="url"),
    Option("secret", "Secret", type="secret"),
    Option("n", "N"),
)


@pytest.mark.parametrize(
    "name",
    [
        "token",
        "access_token",
        "api_key",
        "apiKey",
        "API-KEY",
        "key",
        "secret",
        "client_secret",
        "password",
        "pass",
        "pwd",
        "sig",
        "signature",
        "X-Amz-Signature",
        "X-Amz-Credential",
        "auth",
        "authorization",
        "session_id",
        "hmac_sign",
        "pw",
        "jwt",
        "id_jwt",
        "hmac",
        "private",
        "private_token_id",
        "hash",
        "code",
        "auth_code",
        "otpCode",
        "access_key_id",
        "AWSAccessKeyId",
    ],
)
def test_credential_like_parameter_names_are_secret(name):
    assert secret_parameter(name)


@pytest.mark.parametrize("name", ["page", "format", "x", "id", "lang", "callback", "utm_source"])
def test_other_parameter_names_are_not(name):
    assert not secret_parameter(name)


def test_user_info_and_token_values_are_masked_and_the_rest_kept_as_written():
    assert mask_url(URL) == MASKED
    assert mask_url("https://TOKEN123@h.example/x") == f"https://{MASK}@h.example/x"
    assert mask_url("https://h.example/x?page=1") == "https://h.example/x?page=1"
    assert mask_url("not a url") == "not a url"
    assert url_secrets(URL) == ["k%20y", "pw-1", "abc", "bob", "k y"]


def test_a_masked_url_gets_its_credentials_back_from_the_stored_one():
    assert restore_url(MASKED, URL) == URL
    # the non-secret parts may change: path, other parameters, the order of the query
    changed = f"https://{MASK}:{MASK}@hooks.example.com/other?page=3&token={MASK}"
    assert restore_url(changed, URL) == "https://bob:pw-1@hooks.example.com/other?page=3&token=abc"
    # a new credential replaces the stored one
    assert (
        restore_url(f"https://{MASK}:new-pw@hooks.example.com/in", URL)
        == "https://bob:new-pw@hooks.example.com/in"
    )
    # the default port spelled out is the same address
    assert restore_url(f"https://{MASK}:{MASK}@HOOKS.example.com:443/in", URL).startswith(
        "https://bob:pw-1@"
    )


@pytest.mark.parametrize(
    "submitted, stored",
    [
        (MASKED, None),  # nothing stored
        (MASKED.replace("hooks.example.com", "evil.example.com"), URL),  # another host
        (MASKED.replace("https://", "http://"), URL),  # another scheme
        (MASKED.replace("hooks.example.com", "hooks.example.com:8443"), URL),  # another port
        (f"https://hooks.example.com/in?password={MASK}", URL),  # no such stored parameter
        (
            f"https://{MASK}:{MASK}@hooks.example.com/in",
            "https://hooks.example.com/in",
        ),  # no user info stored
    ],
)
def test_a_mask_with_nothing_to_stand_for_or_moved_to_another_address_is_refused(submitted, stored):
    with pytest.raises(ValueError) as info:
        restore_url(submitted, stored)
    assert (
        MASK in str(info.value) and "pw-1" not in str(info.value) and "abc" not in str(info.value)
    )
    # The message starts with words, not with the mask, and says what to do.
    assert str(info.value).startswith("The URL's masked parts (********)")
    assert "type the credentials again" in str(info.value)


def test_url_options_keep_the_masked_url_in_plain_options_and_the_whole_url_in_secrets():
    plain, secrets, errors = split_url_options(DECLARED, {"url": URL, "n": 1}, {"secret": "s3"})
    assert (plain, secrets, errors) == ({"url": MASKED, "n": 1}, {"secret": "s3", "url": URL}, {})
    # sending back what is shown keeps everything; splitting again changes nothing
    stored = {**plain, **secrets}
    assert split_url_options(DECLARED, plain, {"secret": "s3"}, stored) == (plain, secrets, {})
    assert split_url_options(DECLARED, plain, secrets, stored) == (plain, secrets, {})
    # a URL without credentials drops the secret copy
    assert split_url_options(DECLARED, {"url": "https://h.example/x"}, secrets, stored) == (
        {"url": "https://h.example/x"},
        {"secret": "s3"},
        {},
    )
    # a mask that cannot be filled in is an error on the option
    _, _, errors = split_url_options(DECLARED, {"url": MASKED}, {})
    assert list(errors) == ["url"]
    assert mask_url_options(DECLARED, {"url": URL, "n": "https://u:p@x.example/"}) == {
        "url": MASKED,
        "n": "https://u:p@x.example/",
    }


def test_secrets_bound_to_a_url_do_not_follow_it_to_another_host():
    bound = {"url": ("authorization", "secret")}
    stored = {"url": "https://hooks.example.com/in", "secret": "s", "authorization": "a"}
    secrets = {"secret": "s", "authorization": "a"}

    def errors(url, given=(), kept=secrets, before=stored):
        return moved_url_errors(bound, {"url": url}, kept, before, given)

    for same in ("https://hooks.example.com/other?x=1", "https://HOOKS.example.com:443/in"):
        assert errors(same) == {}
    for moved in (
        "https://evil.example.com/in",
        "http://hooks.example.com/in",
        "https://hooks.example.com:8443/in",
    ):
        assert errors(moved) == {
            "url": "The URL now points at another host: give authorization and secret again, "
            "as they were set for the old one."
        }
    moved = "https://evil.example.com/in"
    assert "give secret again, as it was" in errors(moved, given=["authorization"])["url"]
    assert errors(moved, given=["authorization", "secret"]) == {}
    assert errors(moved, kept={}) == {}  # cleared: nothing follows the URL
    assert errors(moved, before={}) == {}  # a new object keeps nothing from before
