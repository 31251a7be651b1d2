"""SigV4 verification: recompute the client's signature with botocore's signer.

The Authorization header names the access key, the credential scope
(date/region/service) and the headers that were signed; vgw rebuilds that
request (method, path, query, those headers, the body), signs it with
botocore.auth.SigV4Auth under the configured secret at the client's own
X-Amz-Date, and compares. An unknown key is AWS's AuthFailure; a signature that
does not match is SignatureDoesNotMatch; a request more than 15 minutes from
vgw's clock is RequestExpired (AWS's SigV4 window).
"""

from __future__ import annotations

import hmac
import re
from datetime import datetime, timezone

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .errors import ApiError
from ..config.api import ApiConfig

MAX_SKEW_SECONDS = 15 * 60
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request\s*,"
    r"\s*SignedHeaders=([^,\s]+)\s*,\s*Signature=([0-9a-f]{64})\s*$")


def _auth_failure(message: str) -> ApiError:
    return ApiError("AuthFailure", message)


def verify(settings: ApiConfig, method: str, target: str, headers: dict[str, str], body: bytes, now: float) -> None:
    """Raise AWS's error unless the request is signed by a configured key.

    `target` is the request line's path and query; `headers` are lower-cased."""
    if not settings.access_keys:
        return  # no keys configured: any signature (or none) is accepted; loopback only
    header = headers.get("authorization")
    if header is None:
        raise _auth_failure("The request is not signed; sign it with SigV4 (vgw has api.access_keys)")
    match = _AUTHORIZATION.match(header)
    if match is None:
        raise _auth_failure("The Authorization header is not an AWS4-HMAC-SHA256 signature")
    key_id, scope_date, region, service, signed, signature = match.groups()
    secret = settings.secret_for(key_id)
    if secret is None:
        raise _auth_failure("AWS was not able to validate the provided access credentials")
    stamp = headers.get("x-amz-date", "")
    try:
        when = datetime.strptime(stamp, SIGV4_TIMESTAMP).replace(tzinfo=timezone.utc)
    except ValueError:
        raise _auth_failure("The request has no valid X-Amz-Date header") from None
    if abs(when.timestamp() - now) > MAX_SKEW_SECONDS:
        raise ApiError("RequestExpired", f"Request has expired: its X-Amz-Date {stamp} is more than 15 minutes"
                       " from vgw's clock")
    signed_names = signed.split(";")
    if "host" not in signed_names or any(name not in headers for name in signed_names):
        raise ApiError("SignatureDoesNotMatch", "The signed headers must include host and be present")
    request = AWSRequest(method=method, url=f"http://{headers['host']}{target}", data=body,
                         headers={name: headers[name] for name in signed_names})
    request.context["timestamp"] = stamp
    signer = SigV4Auth(Credentials(key_id, secret), service, region)
    # the client's scope date must be the date of its timestamp (the signer derives it so)
    if stamp[:8] != scope_date:
        raise ApiError("SignatureDoesNotMatch", "The credential scope date is not the X-Amz-Date's date")
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, signature):
        raise ApiError("SignatureDoesNotMatch", "The request signature we calculated does not match the signature"
                       " you provided. Check your AWS Secret Access Key and signing method.")
