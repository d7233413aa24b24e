"""Property-based run of the REST API against its own OpenAPI document (schemathesis).

Bounded (20 examples per operation); every answer must be documented and none a 5xx.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mmoda_ext.server.rest import openapi_path

schema = schemathesis.openapi.from_path(str(openapi_path()))


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_rest_api_no_server_error_and_conforms(case, server):
    case.call_and_validate(base_url=server.url, checks=[not_a_server_error, status_code_conformance,
                                   content_type_conformance, response_schema_conformance])
