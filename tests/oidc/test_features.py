"""The feature table (idp.features): what an application serves, and what a client may register."""

from __future__ import annotations

from idp import features
from idp.oidc.registration import AUTH_METHODS, GRANT_TYPES
from idp.settings import Settings


def test_a_client_may_register_exactly_what_the_table_can_serve() -> None:
    grants = {grant.grant_type for grant in features.grants(features.FEATURES)}
    methods = {method.name for method in features.client_auth_methods(features.FEATURES)}
    assert grants == set(GRANT_TYPES)
    assert methods == set(AUTH_METHODS)


def test_each_feature_and_direct_path_is_listed_once() -> None:
    names = [feature.name for feature in features.FEATURES]
    assert len(names) == len(set(names))
    paths = [(route.method, route.path) for route in features.direct_routes(features.FEATURES)]
    assert len(paths) == len(set(paths))


def test_a_switched_off_feature_is_left_out() -> None:
    settings = Settings()
    switched = features.Feature("example", features.FEATURES[0].router, switch="direct_routes")
    table = (*features.FEATURES, switched)
    assert switched in features.enabled(settings, table)
    off = settings.model_copy(update={"direct_routes": False})
    assert switched not in features.enabled(off, table)
    assert features.enabled(off, table) == features.enabled(off)


def test_every_switch_is_a_boolean_setting() -> None:
    switches = {feature.switch for feature in features.FEATURES if feature.switch is not None}
    assert switches, "the table has switched features"
    for switch in switches:
        field = Settings.model_fields.get(switch)
        if field is not None:
            assert field.annotation is bool, switch
        else:  # a property derived from settings, as whether certificates can arrive
            assert isinstance(getattr(Settings, switch), property), switch
            assert isinstance(getattr(Settings(), switch), bool), switch


def test_mutual_tls_is_served_and_advertised_only_behind_a_trusted_proxy() -> None:
    """RFC 8705's certificate reaches Hoviyat only through a trusted proxy's header:
    without one, the methods would be advertised and could never succeed."""
    alone = Settings()
    behind = alone.model_copy(update={"trusted_proxies": ["10.0.0.5"]})
    names = {feature.name for feature in features.enabled(alone)}
    assert "mutual-tls" not in names
    assert "mutual-tls" in {feature.name for feature in features.enabled(behind)}
    methods = {method.name for method in features.client_auth_methods(features.enabled(alone))}
    assert not methods & {"tls_client_auth", "self_signed_tls_client_auth"}
