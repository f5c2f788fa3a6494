"""The Server API against its own OpenAPI document, property-based (schemathesis).

Starts a private single-tenant host with API_KEY, points schemathesis at its
/api/v1/openapi.json and runs every operation with generated requests (valid and not):
no response may be a 5xx, and every response (status, content type, body) must match
the document.
"""

import os
import subprocess
import sys
import unittest
from pathlib import Path

from test_auth_client import Host

HERE = Path(__file__).resolve().parent
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


class ApiConformsToItsOpenApiDocument(unittest.TestCase):
    def test_no_5xx_and_every_response_matches_the_schema(self):
        host = Host(extra_env={"API_KEY": "schemathesis-key"})
        self.addCleanup(host.stop)
        run = subprocess.run(
            [
                str(SCHEMATHESIS),
                "--config-file",
                str(HERE / "schemathesis.toml"),
                "run",
                f"{host.url}/api/v1/openapi.json",
                "-H",
                "Authorization: Bearer schemathesis-key",
                "--checks",
                "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
                "--max-examples",
                "100",
                "--seed",
                os.environ.get("RTM_SCHEMATHESIS_SEED", "1"),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        summary = [line for line in run.stdout.splitlines() if "generated" in line]
        print(f"schemathesis: {summary[-1].strip() if summary else run.stdout[-400:]}")
        self.assertEqual(run.returncode, 0, run.stdout[-4000:] + run.stderr[-2000:])


if __name__ == "__main__":
    unittest.main()
