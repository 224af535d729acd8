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
    assert features.enabled(off, table) == features.FEATURES


def test_every_switch_is_a_boolean_setting() -> None:
    switches = {feature.switch for feature in features.FEATURES if feature.switch is not None}
    assert switches, "the table has switched features"
    for switch in switches:
        assert Settings.model_fields[switch].annotation is bool
