from accounts.keys import key_digest, key_generate, key_mask, key_mode


def test_a_key_has_its_mode_prefix_32_random_characters_and_a_checksum():
    key = key_generate("live")
    assert key.startswith("sk_live_")
    assert len(key) == len("sk_live_") + 32 + 6
    assert key_mode(key) == "live"


def test_a_key_with_one_character_changed_fails_the_checksum():
    key = key_generate("test")
    flipped = key[:12] + ("a" if key[12] != "a" else "b") + key[13:]
    assert key_mode(flipped) is None


def test_truncated_and_foreign_keys_are_malformed():
    key = key_generate("test")
    assert key_mode(key[:-1]) is None
    assert key_mode("sk_prod_" + key[8:]) is None
    assert key_mode("") is None


def test_keys_are_random_and_only_a_digest_and_mask_are_derived():
    a, b = key_generate("test"), key_generate("test")
    assert a != b
    assert len(key_digest(a)) == 64 and a not in key_digest(a)
    assert key_mask(a).startswith("sk_test_") and a[-4:] in key_mask(a)
    assert a[8:-4] not in key_mask(a)
