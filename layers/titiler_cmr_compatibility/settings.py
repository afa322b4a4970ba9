"""Every setting of the tool, in one typed place, read once from the environment (or `.env`)."""

from __future__ import annotations

from functools import cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

AccessType = Literal["direct", "external"]

PRODUCTION_CMR = "https://cmr.earthdata.nasa.gov"
# Where the Earthdata token may go (a host matches a name or is a subdomain of it): Earthdata
# itself and the DAACs' data and s3credentials hosts. Any other host a granule names is read
# without it.
EARTHDATA_HOSTS = (
    "earthdata.nasa.gov",  # URS, CMR, archive.podaac, data.ornldaac, data.gesdisc, opendap, ...
    "earthdatacloud.nasa.gov",  # data.lpdaac, data.laadsdac, data.nsidc, ...
    "eosdis.nasa.gov",  # ladsweb.modaps, goldsmr4.gesdisc, cddis, ...
    "asf.alaska.edu",
    "ecs.nsidc.org",
    "nsidc.org",
    "cr.usgs.gov",
    "daac.ornl.gov",
    "ghrc.nsstc.nasa.gov",
    # Earthdata-Login hosts outside those domains that the predecessor's survey met.
    "asdc.larc.nasa.gov",
    "oceandata.sci.gsfc.nasa.gov",
    "cddis.nasa.gov",
    "sips-data.ssec.wisc.edu",
)
UAT_CMR = "https://cmr.uat.earthdata.nasa.gov"


class Settings(BaseSettings):
    """Environment variables use the field names in upper case (`CMR_URL`, `CHECK_TIMEOUT`, ...)."""

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", case_sensitive=False, populate_by_name=True
    )

    cmr_url: str = Field(PRODUCTION_CMR, description="CMR root; UAT works the same")
    cmr_client_id: str = "titiler-cmr-compatibility"
    cmr_timeout: float = Field(
        60.0, gt=0, description="seconds per CMR request, its whole answer included (a page of 2,000 "
        "collections is ~20 MB)"
    )
    cmr_retries: int = Field(4, ge=0, description="retries on 429/5xx/connection errors")
    cmr_backoff: float = Field(1.0, ge=0, description="first retry delay, doubled each time")
    cmr_max_retry_after: float = Field(60.0, ge=0, description="longest wait a Retry-After header is obeyed for")
    setup_timeout: float = Field(
        600.0, gt=0, description="seconds for a survey's setup (listing ~10,800 collections takes a few "
        "minutes): within the setup Lambda's 900 s, with time left for its requeue"
    )

    check_timeout: float = Field(120.0, gt=0, description="seconds for one collection check")
    data_request_timeout: float = Field(30.0, gt=0, description="seconds per data range request")
    check_memory_mb: int = Field(
        640, ge=64, description="MB a check's process may add to the one that starts it: a 1024 MB "
        "worker holds ~250 MB of engines, and the largest measured check adds ~100 MB"
    )
    access_type: AccessType = Field(
        "external",
        description="direct (s3://, only inside AWS us-west-2) or external (https)",
    )
    titiler_endpoint: str = Field(
        "https://staging.openveda.cloud/api/titiler-cmr",
        description="titiler-cmr deployment that tiles_url points at",
    )

    earthdata_token: SecretStr | None = None
    earthdata_username: str | None = None
    earthdata_password: SecretStr | None = None
    # In Lambda the credentials come from SSM SecureString parameters with these names.
    earthdata_token_parameter: str | None = None
    earthdata_username_parameter: str | None = None
    earthdata_password_parameter: str | None = None
    urs_url: str = "https://urs.earthdata.nasa.gov"
    token_hosts: list[str] = Field(
        default_factory=lambda: list(EARTHDATA_HOSTS),
        description="hosts (and their subdomains) the Earthdata token may be sent to",
    )
    # Link-local, private and loopback addresses named by a granule are refused before any
    # request; the tests and the demo serve data on 127.0.0.1 and opt in to loopback only.
    allow_loopback_hosts: bool = False

    # s3:// links normally go to AWS; tests point them at moto.
    s3_endpoint_url: str | None = Field(None, validation_alias="AWS_ENDPOINT_URL_S3")

    # The serverless app (environment of its Lambda functions, set by template.yaml).
    survey_store: str = Field("survey-output", description="a local directory or s3://bucket/prefix")
    max_attempts: int = Field(3, ge=1, description="attempts per collection before a terminal result")
    batch_size: int = Field(4, ge=1, description="collections per Lithops call")
    # A call's budget is its checks' time plus this: Lithops stops a local call past it, and the
    # survey counts it as a failed attempt; in Lambda the function's timeout must leave room.
    worker_overhead: float = Field(
        60.0, gt=0, description="seconds a worker call needs besides its checks (start, imports, writes)"
    )
    start_grace: float = Field(
        60.0, gt=0, description="seconds a local call may take to start while none of its wave runs; "
        "a call not started by then is a failed attempt"
    )
    lithops_runtime: str = "titiler-cmr-compat-worker"
    lithops_runtime_memory: int = Field(
        1024, ge=128, description="MB per worker: 3.5x the largest measured check peak (295 MB)"
    )
    lithops_runtime_timeout: int = Field(900, ge=60, le=900, description="seconds per worker call")
    worker_concurrency: int = Field(
        1000, ge=1, description="worker calls at once: a wave's size in calls, and Lithops' max_workers "
        "(keep it within the account's Lambda concurrency, 1,000 by default)"
    )
    lithops_execution_role: str | None = None
    lithops_storage_bucket: str | None = None
    lithops_user_id: str = "titiler-cmr-compat"
    # Worker functions are named <namespace>-lithops-worker-<35 more characters>, within 64.
    lithops_namespace: str = Field("titiler-cmr-compat", max_length=29, pattern=r"^[a-z0-9][a-z0-9-]*$")
    aws_region: str = Field("us-west-2", validation_alias="AWS_REGION")

    @field_validator("titiler_endpoint", "urs_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("cmr_url")
    @classmethod
    def _cmr_root(cls, value: str) -> str:
        """Accept `https://cmr.../search/` as well as the root: the client appends `/search/...`."""
        return value.rstrip("/").removesuffix("/search")


@cache
def get_settings() -> Settings:
    return Settings()
