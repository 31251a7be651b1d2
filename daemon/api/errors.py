"""AWS's EC2 API errors: a code, a message and an HTTP status.

EC2's service model carries no error shapes (botocore's ec2 model has none), so
the codes are those of AWS's EC2 error reference
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html);
botocore raises them as ClientError with response['Error']['Code'] set. Where
AWS does not publish its exact wording, the message is vgw's and says what to
change.
"""

from __future__ import annotations

# HTTP status per code (AWS answers 400 for every client error not listed).
_STATUS = {
    "AuthFailure": 401,
    "SignatureDoesNotMatch": 403,
    "UnauthorizedOperation": 403,
    "DryRunOperation": 412,
    "RequestEntityTooLarge": 413,
    "InternalError": 500,
    "RequestLimitExceeded": 503,
    "ServiceUnavailable": 503,
}


class ApiError(Exception):
    """A request AWS would refuse; the server answers it with AWS's error XML."""

    def __init__(self, code: str, message: str, status: int | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status if status is not None else _STATUS.get(code, 400)


def invalid_value(message: str) -> ApiError:
    return ApiError("InvalidParameterValue", message)


def bad_value(value: object, parameter: str, why: str = "") -> ApiError:
    """InvalidParameterValue in AWS's usual form: Value (x) for parameter P is invalid."""
    text = f"Value ({value}) for parameter {parameter} is invalid."
    return invalid_value(f"{text} {why}".strip())


def combination(message: str) -> ApiError:
    return ApiError("InvalidParameterCombination", message)


def missing(parameter: str) -> ApiError:
    return ApiError("MissingParameter", f"The request must contain the parameter {parameter}")


def not_found(kind: str, resource_id: str) -> ApiError:
    """InvalidVpnConnectionID.NotFound and its siblings."""
    nouns = {
        "InvalidCustomerGatewayID": "customer gateway",
        "InvalidVpnGatewayID": "virtual private gateway",
        "InvalidVpnConnectionID": "vpn connection",
        "InvalidVpcID": "vpc",
        "InvalidRouteTableID": "route table",
    }
    noun = nouns.get(kind, "resource")
    return ApiError(f"{kind}.NotFound", f"The {noun} ID '{resource_id}' does not exist")


def incorrect_state(message: str) -> ApiError:
    return ApiError("IncorrectState", message)
